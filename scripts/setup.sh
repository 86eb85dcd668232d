#!/usr/bin/env bash
# Idempotent set-up: system libraries for Qt/Xvfb (when root on Debian/Ubuntu), a virtual environment
# in .venv, the CPU build of torch on machines without an NVIDIA GPU, and this package.
#
#   bash scripts/setup.sh          # runtime + test dependencies
#   GENCAL_EXTRAS= bash scripts/setup.sh   # runtime only
#
# Environment:
#   GENCAL_VENV      where the virtual environment goes (default: .venv)
#   GENCAL_PYTHON    interpreter to create it with (default: python3.11, else python3)
#   GENCAL_TORCH     pip requirement for torch (default: CPU build 2.13.0 unless a GPU is present)
#   GENCAL_EXTRAS    pip extras to install (default: test)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${GENCAL_VENV:-.venv}"
EXTRAS="${GENCAL_EXTRAS-test}"
PY="${GENCAL_PYTHON:-$(command -v python3.11 || command -v python3)}"

log() { printf '[setup] %s\n' "$*" >&2; }

# 1. System packages: Xvfb and the GL/XCB libraries Qt 6 needs (only when we can install them).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  pkgs=(xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
        libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0
        libdbus-1-3 libfontconfig1 libglib2.0-0)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
elif ! command -v xvfb-run >/dev/null 2>&1; then
  log "note: xvfb-run not found; GUI tests need a display (install Xvfb) or will be skipped"
fi

# 2. Virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

# 3. torch: never let pip resolve an unpinned torch on a CPU machine (it would pull GBs of CUDA).
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if [ -n "${GENCAL_TORCH:-}" ]; then
    log "installing torch: $GENCAL_TORCH"
    # shellcheck disable=SC2086
    "${PIP[@]}" install -q $GENCAL_TORCH
  elif command -v nvidia-smi >/dev/null 2>&1; then
    log "NVIDIA GPU found: installing the default (CUDA) torch build"
    "${PIP[@]}" install -q "torch>=2.2"
  else
    log "no GPU: installing the CPU build of torch 2.13.0"
    "${PIP[@]}" install -q "torch==2.13.0" \
      || "${PIP[@]}" install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  fi
fi

# 4. The package itself (editable, so the repository is what runs).
spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
log "installing napari-gencal ($spec)"
"${PIP[@]}" install -q -e "$spec"
log "ready: $("$VENV/bin/python" -c 'import torch, napari_gencal; print("napari-gencal", napari_gencal.__version__, "torch", torch.__version__)')"

#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite under a virtual X server.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k tppf
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
VENV="${GENCAL_VENV:-.venv}"
"$VENV/bin/ruff" check src tests benchmarks
run=("$VENV/bin/python" -m pytest -p no:cacheprovider "$@")
if command -v xvfb-run >/dev/null 2>&1; then
  # A real (virtual) display so that canvas screenshots work; pytest's exit status is kept,
  # so "no tests collected" (exit 5) fails like any other failure.
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "${run[@]}"
else
  echo "[test] xvfb-run not found: running offscreen; tests that need a display are skipped" >&2
  QT_QPA_PLATFORM=offscreen exec "${run[@]}"
fi

#!/usr/bin/env bash
# Set up (idempotent) and run the headless demo: calibrate on the bundled sample, generate a 3D
# volume and write a comparison report into ./gencal-demo (or the folder given as first argument).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GENCAL_EXTRAS="${GENCAL_EXTRAS-}" bash scripts/setup.sh
VENV="${GENCAL_VENV:-.venv}"
exec "$VENV/bin/gencal" demo --out "${1:-gencal-demo}" "${@:2}"

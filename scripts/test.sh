#!/usr/bin/env bash
# Set up, then run the unit tests and check the notebooks' key numbers (nbval) against notebooks/*.ipynb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg
.venv/bin/python -m pytest -q tests "$@"
.venv/bin/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

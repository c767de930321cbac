#!/usr/bin/env bash
# Set up, then build the book at its small default size; any raising cell or warning fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
rm -rf _build/html _build/.doctrees
unset MPLBACKEND   # the chapters' kernels must use matplotlib's inline backend, or no figure is drawn
.venv/bin/jupyter-book build . -W --keep-going
echo "book: $(pwd)/_build/html/index.html"

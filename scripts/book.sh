#!/usr/bin/env bash
# Set up, then build the book at its small default size, and its student edition (no solutions); any
# raising cell or warning fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# a fresh cache: every chapter is executed anew (the cache lets the build and the student edition reuse it)
rm -rf _build/html _build/.doctrees _build/.jupyter_cache _build/jupyter_execute _build/student
unset MPLBACKEND   # the chapters' kernels must use matplotlib's inline backend, or no figure is drawn
# the chapters run over all cores into that cache first (a chapter that fails there is run again by the build,
# which reports it); the build then renders them from the cache
.venv/bin/python scripts/execute_chapters.py
.venv/bin/jupyter-book build . -W --keep-going
echo "book: $(pwd)/_build/html/index.html"
# the student edition: the same pages without the solutions (book/_ext/ntkuq_book.py), from the same outputs
NTKUQ_STUDENT=1 .venv/bin/jupyter-book build . -W --keep-going --path-output _build/student
echo "student edition: $(pwd)/_build/student/_build/html/index.html"

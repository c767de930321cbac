#!/usr/bin/env bash
# Set up, then lint, run the unit tests and the doctests, and check the notebooks' key numbers (nbval) against
# notebooks/*.ipynb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg
.venv/bin/ruff check --no-cache .   # lint (pyproject.toml [tool.ruff]): pyflakes, import order, Google docstrings
# over all cores (pytest-xdist; NTKUQ_TEST_JOBS=0 runs them in this one process), the slowest tests spread by
# work stealing
JOBS=${NTKUQ_TEST_JOBS:-auto}
.venv/bin/python -m pytest -q -n "$JOBS" --dist worksteal tests "$@"
# the headline functions' Examples, run as doctests
.venv/bin/python -m pytest -q -p no:cacheprovider --doctest-modules lib/ntkuq/infinite/kernels.py \
    lib/ntkuq/infinite/predict.py lib/ntkuq/infinite/lossstats.py lib/ntkuq/infinite/sweep.py \
    lib/ntkuq/finite/ensembles.py lib/ntkuq/estimate/core.py
browser_note=""
if ! command -v "${NTKUQ_CHROMIUM:-chromium}" >/dev/null && ! command -v chromium-browser >/dev/null \
    && ! command -v google-chrome >/dev/null; then
  browser_note="chromium NOT FOUND: the real-browser checks of the book (tests/test_browser.py) were SKIPPED (apt-get install chromium)"
elif [ ! -f _build/html/index.html ]; then
  browser_note="no built book: the real-browser checks of the book (tests/test_browser.py) were SKIPPED (run bash scripts/book.sh first)"
fi
# nbval: one kernel per notebook, several notebooks at once (--dist loadfile keeps a notebook's cells in order)
.venv/bin/python -m pytest -q -n "$JOBS" --dist loadfile --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
if [ -n "$browser_note" ]; then echo "NOTE: $browser_note"; fi

#!/usr/bin/env bash
# Set up, then run the unit tests and check the notebooks' key numbers (nbval) against notebooks/*.ipynb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg
.venv/bin/python -m pytest -q tests "$@"
browser_note=""
if ! command -v "${NTKUQ_CHROMIUM:-chromium}" >/dev/null && ! command -v chromium-browser >/dev/null \
    && ! command -v google-chrome >/dev/null; then
  browser_note="chromium NOT FOUND: the real-browser checks of the book (tests/test_browser.py) were SKIPPED (apt-get install chromium)"
elif [ ! -f _build/html/index.html ]; then
  browser_note="no built book: the real-browser checks of the book (tests/test_browser.py) were SKIPPED (run bash scripts/book.sh first)"
fi
.venv/bin/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
if [ -n "$browser_note" ]; then echo "NOTE: $browser_note"; fi

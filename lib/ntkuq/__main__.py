"""`python -m ntkuq ...` runs the `ntkuq` command line (see cli.py)."""
import sys

from ntkuq.estimate.cli import main

sys.exit(main())

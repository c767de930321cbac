"""The `ntkuq` command line (also `python -m ntkuq`): a thin wrapper around the library's API.

    ntkuq estimate --train TRAIN --test TEST [--target COLS] [--depth 3] [--activation relu]
                   [--lambda-ratio 10] [--sizes auto|N1,N2,...] [--standardize none|features|targets|both]
                   [--ensemble M [--width 30] [--optimizer momentum] [--steps T]]
                   [--json OUT] [--csv OUT] [--plot OUT.png]

`estimate` calls `ntkuq.estimate.estimate_files` with the options, prints `Estimate.summary()` and
writes `Estimate.to_dict()` (JSON), `Estimate.sweep_csv()` (CSV) and `Estimate.figure()` (image).
Output files are written only after the whole computation succeeded, each atomically (temporary
file, then rename), so a failed run leaves no new or partial file behind.  Exit status: 0 on
success, 1 for unusable data or a run too large for the machine (the message says why), 2 for
bad command-line usage.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

from ntkuq._src.checks import enable_float64
from ntkuq._src.storage import atomic_write_all
from ntkuq.data.userdata import STANDARDIZE
from ntkuq.errors import DataError, TooLargeError
from ntkuq.estimate.core import QUANTILE_LEVELS, estimate_files
from ntkuq.estimate.ensemble import EnsembleOptions

FIGURE_FORMATS = (".png", ".pdf", ".svg")


def _integer(minimum: int):
    """An argparse type: an integer >= minimum (argparse names the option in its error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _number(lower: float, upper: Optional[float] = None, *, lower_open: bool = False, upper_open: bool = True):
    """An argparse type: a finite number in the given range (open or closed ends)."""
    rng = f"{'>' if lower_open else '>='} {lower:g}" + (
        "" if upper is None else f" and {'<' if upper_open else '<='} {upper:g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {rng}, got {text!r}") from None
        bad = (value != value or value in (float("inf"), float("-inf")) or value < lower
               or (lower_open and value == lower)
               or (upper is not None and (value > upper or (upper_open and value == upper))))
        if bad:
            raise argparse.ArgumentTypeError(f"expected a finite number {rng}, got {text!r}")
        return value
    parse.__name__ = f"number {rng}"
    return parse


def _sizes(text: str):
    if text == "auto":
        return "auto"
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive training-set sizes, got {text!r}")
    return sizes


def _levels(text: str) -> List[float]:
    try:
        levels = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated probabilities, got {text!r}") from None
    if not levels or not all(0 < q < 1 for q in levels):
        raise argparse.ArgumentTypeError(f"expected probabilities strictly between 0 and 1, got {text!r}")
    return levels


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `ntkuq` and its `estimate` subcommand.

    Returns:
        The argparse parser, with the `estimate` subcommand and its options.
    """
    parser = argparse.ArgumentParser(prog="ntkuq", description="Initialization uncertainty of an MLP's test loss, "
                                     "exact at infinite width (NNGP/NTK kernels), on your own data.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("estimate", help="mu_L, sigma_L, eps_L and quantiles of the test loss on your data",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--train", required=True, help="training set: .npz (arrays x, y) or .csv (header row)")
    g.add_argument("--test", required=True, help="test set, same format rules as --train")
    g.add_argument("--target", default=None,
                   help="CSV target column name(s), comma-separated; other columns are features")
    g.add_argument("--standardize", choices=STANDARDIZE, default="none",
                   help="standardize features and/or targets with training-set mean and std (default: data as given)")
    g.add_argument("--test-points", type=_integer(1), default=None, help="use only the first N test points")
    g.add_argument("--keep-order", action="store_true",
                   help="nested training sets are prefixes in file order (default: a seeded random permutation)")
    g = p.add_argument_group("model")
    g.add_argument("--depth", type=_integer(1), default=3,
                   help="number of weight layers (default 3: two hidden layers)")
    g.add_argument("--activation", choices=("relu", "tanh", "erf"), default="relu",
                   help="at criticality (default relu)")
    g.add_argument("--lambda-ratio", type=_number(0.0, None), default=10.0, help="lambda_b / lambda_W (default 10)")
    g.add_argument("--diag-reg", type=_number(0.0, None), default=0.0,
                   help="ridge added to the kernel diagonal (default 0)")
    g = p.add_argument_group("statistics")
    g.add_argument("--sizes", type=_sizes, default="auto", help="nested training sizes: auto or N1,N2,... "
                   "(the headline numbers are at the largest)")
    g.add_argument("--quantiles", type=_levels, default=list(QUANTILE_LEVELS), help="levels, default 0.025,0.5,0.975")
    g.add_argument("--seed", type=_integer(0), default=0,
                   help="seed of the training-set permutation and the ensemble (default 0)")
    g = p.add_argument_group("finite-width comparison")
    g.add_argument("--ensemble", type=_integer(2), default=None, metavar="M", help="also train M networks and compare")
    g.add_argument("--width", type=_integer(1), default=30, help="their hidden width (default 30)")
    g.add_argument("--optimizer", choices=("momentum", "nesterov", "gd"), default="momentum",
                   help="full-batch optimizer (default momentum: heavy ball)")
    g.add_argument("--momentum", type=_number(0.0, 1.0), default=0.9,
                   help="the momentum coefficient beta_m of momentum / nesterov (default 0.9)")
    g.add_argument("--steps", type=_integer(1), default=None,
                   help="training steps (default: converged, i.e. the steps after "
                   "which the infinite-width mu_L and sigma_L stay within --tol of t = infinity)")
    g.add_argument("--tol", type=_number(0.0, 1.0, lower_open=True), default=0.01,
                   help="relative tolerance of 'converged' (default 0.01)")
    g.add_argument("--max-steps", type=_integer(1), default=20000, help="cap on the converged steps (default 20000)")
    g.add_argument("--converge", type=_number(0.0, 1.0), default=0.01, metavar="RTOL",
                   help="with converged steps, keep training until the members' mean train loss moves by less than "
                   "RTOL over the last quarter of the steps, up to --max-steps (default 0.01; 0: no such rule)")
    g.add_argument("--min-steps", type=_integer(0), default=0, help="train at least this many steps (default 0)")
    g.add_argument("--eta-fraction", type=_number(0.0, 1.0, lower_open=True), default=0.5,
                   help="learning rate as a fraction of the stable maximum")
    g = p.add_argument_group("limits and output")
    g.add_argument("--max-memory-gb", type=_number(0.0, None, lower_open=True), default=None,
                   help="memory limit (default 80 %% of free memory)")
    g.add_argument("--max-minutes", type=_number(0.0, None, lower_open=True), default=60.0,
                   help="time limit of the estimate (default 60)")
    g.add_argument("--json", default=None, help="write all results and settings as JSON")
    g.add_argument("--csv", default=None, help="write the nested-size table as CSV")
    g.add_argument("--plot", default=None, help=f"write the figure ({', '.join(FIGURE_FORMATS)})")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _check_outputs(paths: Dict[str, Optional[str]]) -> None:
    """Fail before computing if an output cannot be written (a folder, an unwritable place, a bad suffix)."""
    for flag, path in paths.items():
        if path is None:
            continue
        p = Path(path)
        if p.is_dir():
            raise ValueError(f"--{flag} {path}: is a folder; expected a file name")
        parent = next((a for a in [p.parent, *p.parent.parents] if a.exists()), Path("."))
        if not os.access(parent, os.W_OK):
            raise ValueError(f"--{flag} {path}: cannot write in {parent}")
        if flag == "plot" and p.suffix.lower() not in FIGURE_FORMATS:
            raise ValueError(f"--plot {path}: expected a file name ending in one of {FIGURE_FORMATS}")


def run_estimate(args: argparse.Namespace) -> int:
    """Run `estimate` as the parsed arguments say; print the report and write the requested files.

    Output files are checked before computing and written only after the whole computation succeeded, each
    atomically.

    Args:
        args: the parsed arguments of the `estimate` subcommand (`build_parser`).

    Returns:
        0, the exit status of success.
    """
    outputs = {"json": args.json, "csv": args.csv, "plot": args.plot}
    _check_outputs(outputs)
    ens = None
    if args.ensemble is not None:
        ens = EnsembleOptions(members=args.ensemble, width=args.width, steps=args.steps, optimizer=args.optimizer,
                              momentum=None if args.optimizer == "gd" else args.momentum,
                              eta_fraction=args.eta_fraction, tol=args.tol, max_steps=args.max_steps,
                              min_steps=args.min_steps, seed=args.seed, converge=args.converge or None)
    est = estimate_files(args.train, args.test, target=args.target, depth=args.depth, activation=args.activation,
                         lambda_ratio=args.lambda_ratio, sizes=args.sizes, standardize=args.standardize,
                         quantile_levels=args.quantiles, shuffle=not args.keep_order, seed=args.seed,
                         diag_reg=args.diag_reg, test_points=args.test_points, max_memory_gb=args.max_memory_gb,
                         max_minutes=args.max_minutes, ensemble=ens, progress=not args.quiet)
    blobs: Dict[str, bytes] = {}
    if args.json:
        blobs[args.json] = (json.dumps(est.to_dict(), indent=1) + "\n").encode()
    if args.csv:
        blobs[args.csv] = est.sweep_csv().encode()
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = est.figure()
        buf = io.BytesIO()
        fig.savefig(buf, format=Path(args.plot).suffix.lower()[1:], dpi=120)
        plt.close(fig)
        blobs[args.plot] = buf.getvalue()
    print(est.summary(), flush=True)
    atomic_write_all(blobs)
    for path in blobs:
        print(f"wrote {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the `ntkuq` console script.

    Args:
        argv: the command-line arguments; None (default) for sys.argv[1:].

    Returns:
        The exit status: 0 on success, 1 for unusable data or a run too large for the machine (the message,
        on stderr, says why), 2 for bad command-line usage.
    """
    enable_float64()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "estimate":
            return run_estimate(args)
    except (DataError, TooLargeError, ValueError, OSError) as exc:
        print(f"ntkuq {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["FIGURE_FORMATS", "build_parser", "main", "run_estimate"]

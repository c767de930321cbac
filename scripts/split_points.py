"""Recompute chosen training-set draws of a preset's infinite-width points so that they carry the two
parts of sigma_L^2 (var_diag, var_offdiag), without running the whole chapter.

The data, sizes and keys are those of book/scaling_infinite.md under the preset (the same pool of twice
the largest size when the preset has several draws), so `python -m ntkuq.book.runner preset NAME` later finds
these points finished.  Resumable: a draw whose points already carry the split is skipped.

    NTKUQ_MEMORY_LIMIT_GIB=18.5 .venv/bin/python scripts/split_points.py paper mnist --draws 0
"""
from __future__ import annotations

import argparse
from pathlib import Path

import ntkuq
from ntkuq import MLPSpec
from ntkuq.book import ROOT, load_preset, parameter_defaults, validate_preset
from ntkuq.data import load, subset_sizes
from ntkuq.study import ResultStore, infinite_width_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="preset name (presets/NAME.yaml)")
    parser.add_argument("task", help="mnist, cifar10 or calorimeter")
    parser.add_argument("--draws", type=int, nargs="+", default=[0], help="draw indices (default 0)")
    args = parser.parse_args()
    ntkuq.enable_float64()
    chapter = parameter_defaults(ROOT / "book" / "scaling_infinite.md")
    chapter.update(validate_preset(load_preset(args.preset), args.preset)["scaling_infinite"])
    p = chapter
    spec = MLPSpec.critical(p["activation"], depth=p["depth"], lambda_ratio=p["lambda_ratio"])
    sizes = subset_sizes(p["n_min"], p["n_max"], p["n_sizes"])
    n_pool = 2 * p["n_max"] if p["draws"] > 1 else p["n_max"]
    data = load(args.task, n_pool=n_pool, n_test=p["n_test"], seed=p["seed"], downsample=p["downsample"],
                grayscale=p["grayscale"], calorimeter_cells=p["calorimeter_cells"],
                calorimeter_layers=p["calorimeter_layers"])
    store = ResultStore(Path(ROOT) / "results" / args.preset / "points")
    for draw in args.draws:
        infinite_width_study(data, spec, sizes, draws=draw + 1, store=_OnlyDraw(store, draw), progress=True)
        print(f"{args.preset} {args.task} draw {draw}: done", flush=True)


class _OnlyDraw:
    """A store through which only one draw is recomputed: the other draws' points count as finished."""

    def __init__(self, store: ResultStore, draw: int):
        self.store, self.draw = store, draw

    def get(self, key):
        row = self.store.get(key)
        if row is not None and row.get("draw") != self.draw and row.get("var_diag") is None:
            # another draw, stored before the split: report it finished (a placeholder the study accepts;
            # nothing is written back, and this script discards the returned rows) so it is not recomputed
            return {**row, "var_diag": 0.0}
        return row

    def put(self, key, row):
        return self.store.put(key, row)


if __name__ == "__main__":
    main()

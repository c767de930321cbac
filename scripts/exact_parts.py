"""The exact bias and variance parts of mu_L for draw 0 of a preset's infinite-width sweep, for the
learning-curve chapter (the committed rows keep mu_L, not its parts).

The data, sizes and training sets are those of book/scaling_infinite.md under the preset (draw 0); the t =
infinity NTK ensemble's mu_L = bias + variance with bias = ||R||^2 / (N_T k) (the mean predictor's error)
and variance = tr S / N_T (the initialization noise).  Writes results/PRESET/spectra/TASK_parts.json with
the sizes up to --n-max; mu_L is checked against the committed row.

    NTKUQ_MEMORY_LIMIT_GIB=18.5 .venv/bin/python scripts/exact_parts.py paper mnist --n-max 9161
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import ntkuq
from ntkuq import MLPSpec
from ntkuq.book import ROOT, load_preset, parameter_defaults, validate_preset
from ntkuq.data import load, subset_sizes
from ntkuq.infinite import nested_sweep
from ntkuq.study import committed_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="preset name (presets/NAME.yaml)")
    parser.add_argument("task", help="mnist, cifar10 or calorimeter")
    parser.add_argument("--n-max", type=int, default=9161, help="the largest N_D computed (default 9161)")
    args = parser.parse_args()
    ntkuq.enable_float64()
    p = parameter_defaults(ROOT / "book" / "scaling_infinite.md")
    p.update(validate_preset(load_preset(args.preset), args.preset)["scaling_infinite"])
    spec = MLPSpec.critical(p["activation"], depth=p["depth"], lambda_ratio=p["lambda_ratio"])
    sizes = [n for n in subset_sizes(p["n_min"], p["n_max"], p["n_sizes"]) if n <= args.n_max]
    n_pool = 2 * p["n_max"] if p["draws"] > 1 else p["n_max"]
    data = load(args.task, n_pool=n_pool, n_test=p["n_test"], seed=p["seed"], downsample=p["downsample"],
                grayscale=p["grayscale"], calorimeter_cells=p["calorimeter_cells"],
                calorimeter_layers=p["calorimeter_layers"])
    x, y = data.subset(max(sizes), 0)
    points = nested_sweep(spec, x, y, data.x_test, data.y_test, sizes, methods=("ntk",), progress=True)
    committed = {int(r["n_train"]): float(r["mu"]) for r in
                 committed_rows(Path(ROOT) / "results" / args.preset / "points", task=args.task, method="ntk",
                                draw=0)}
    out = {"task": args.task, "preset": args.preset, "draw": 0, "n_test": int(len(data.x_test)), "n": [],
           "mu": [], "bias": [], "variance": [], "mu_committed": []}
    for point in points:
        s = point.stats
        bias, variance = s.bias2 / (s.n_test * s.n_out), s.trace_S / s.n_test
        if abs(bias + variance - s.mu) > 1e-10 * s.mu:
            raise SystemExit(f"N_D = {point.n_train}: bias + variance {bias + variance} != mu {s.mu}")
        for name, value in (("n", point.n_train), ("mu", s.mu), ("bias", bias), ("variance", variance),
                            ("mu_committed", committed.get(point.n_train))):
            out[name].append(value)
        print(f"{args.task} N_D = {point.n_train}: mu {s.mu:.6g} (committed {committed.get(point.n_train)}), "
              f"bias share {bias / s.mu:.4f}", flush=True)
    folder = Path(ROOT) / "results" / args.preset / "spectra"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{args.task}_parts.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""The NTK spectrum of a preset's task on a pool of P training points, for the learning-curve chapter.

The data, architecture and preprocessing are those of book/scaling_infinite.md under the preset (the same
training pool; its first P points are the spectrum's pool).  Writes results/PRESET/spectra/TASK.npz
(`ntkuq.infinite.learning_curves.Spectrum.save`) and a .json beside it with the setup.  Memory: about 6 P^2
float64 words (10.8 GB at P = 15,000) beside the data.

    NTKUQ_MEMORY_LIMIT_GIB=18.5 .venv/bin/python scripts/spectra.py paper mnist --pool 15000
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import ntkuq
from ntkuq import MLPSpec
from ntkuq.book import ROOT, load_preset, parameter_defaults, validate_preset
from ntkuq.data import load
from ntkuq.infinite.learning_curves import spectrum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="preset name (presets/NAME.yaml)")
    parser.add_argument("task", help="mnist, cifar10 or calorimeter")
    parser.add_argument("--pool", type=int, default=15_000, help="P, the pool's points (default 15,000)")
    parser.add_argument("--out", type=Path, default=None, help="folder to write to (default results/PRESET/spectra)")
    args = parser.parse_args()
    ntkuq.enable_float64()
    p = parameter_defaults(ROOT / "book" / "scaling_infinite.md")
    p.update(validate_preset(load_preset(args.preset), args.preset)["scaling_infinite"])
    spec = MLPSpec.critical(p["activation"], depth=p["depth"], lambda_ratio=p["lambda_ratio"])
    n_pool = 2 * p["n_max"] if p["draws"] > 1 else p["n_max"]
    if not 0 < args.pool <= n_pool:
        raise SystemExit(f"--pool: expected 1..{n_pool} (the preset's training pool), got {args.pool}")
    data = load(args.task, n_pool=n_pool, n_test=p["n_test"], seed=p["seed"], downsample=p["downsample"],
                grayscale=p["grayscale"], calorimeter_cells=p["calorimeter_cells"],
                calorimeter_layers=p["calorimeter_layers"])
    x, y = data.x_train[:args.pool], data.y_train[:args.pool]
    del data
    start = time.perf_counter()
    result = spectrum(spec, x, y)
    wall = time.perf_counter() - start
    folder = args.out or Path(ROOT) / "results" / args.preset / "spectra"
    folder.mkdir(parents=True, exist_ok=True)
    result.save(folder / f"{args.task}.npz")
    meta = {"task": args.task, "preset": args.preset, "pool": args.pool, "seed": p["seed"],
            "spec": dataclasses.asdict(spec),
            "features": int(x.shape[1]), "outputs": int(y.shape[1]), "wall_s": round(wall, 1),
            "ntkuq": ntkuq.__version__}
    (folder / f"{args.task}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{args.preset} {args.task}: P = {args.pool}, {wall:.0f} s, "
          f"lambda_1 = {result.eigenvalues[0]:.4g}, sum target power = {np.sum(result.target_power):.4g}")


if __name__ == "__main__":
    main()

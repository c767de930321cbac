"""Gradient descent against heavy-ball momentum, both trained until the stopping rule passes: do mu_L and the two
parts of eps_L agree within their errors?

One task and one N_D; each optimizer at half its own stable maximum rate, for at least the steps that converge
the infinite-width ensemble to `--tol` and the warmup, then until the members' mean training loss moves by less
than `--converge` over the last quarter of the steps (`ntkuq.finite.StopRule`), capped.  Both have the same
t = infinity limit at infinite width (`ntkuq.infinite.gains`), printed beside them.  Resumable: the rows are
points of `finite_width_study` in results/optimizers/points; the comparison is written to
results/optimizers/TASK_ND.json.

    .venv/bin/python scripts/optimizer_agreement.py mnist --n-train 100 --members 64
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import ntkuq
from ntkuq import MLPSpec
from ntkuq.book import ROOT
from ntkuq.data import load
from ntkuq.study import ResultStore, finite_width_study


def _parts(row: dict) -> dict:
    """eps_L's floor and population parts at the row's N_T (eps^2 = var_diag / mu^2 + var_offdiag / mu^2)."""
    mu = row["mu"]
    out = {"mu": mu, "mu_err": row.get("mu_err"), "eps": row["eps"], "eps_err": row.get("eps_err"),
           "eps_floor": float(np.sqrt(max(row["var_diag"], 0.0)) / mu),
           "eps_population": float(np.sqrt(max(row["var_offdiag"], 0.0)) / mu)}
    if row.get("var_diag_err") is not None:  # errors of the parts from the bootstrap over members
        out["eps_floor_err"] = float(row["var_diag_err"] / (2 * np.sqrt(row["var_diag"]) * mu))
        off = max(row["var_offdiag"], 1e-300)
        out["eps_population_err"] = float(row["var_offdiag_err"] / (2 * np.sqrt(off) * mu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", help="mnist, cifar10 or calorimeter")
    parser.add_argument("--n-train", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--width", type=int, default=30)
    parser.add_argument("--lambda-ratio", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--tol", type=float, default=0.01)
    parser.add_argument("--converge", type=float, default=0.01)
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--out", default=str(Path(ROOT) / "results" / "optimizers"))
    args = parser.parse_args()
    ntkuq.enable_float64()
    data = load(args.task, n_pool=args.n_train, n_test=args.n_test, seed=0, downsample=2, grayscale=True,
                calorimeter_cells=10, calorimeter_layers=10)
    spec = MLPSpec.critical("relu", depth=3, lambda_ratio=args.lambda_ratio, width=args.width)
    store = ResultStore(Path(args.out) / "points")
    result = {"task": args.task, "n_train": args.n_train, "n_test": args.n_test, "members": args.members,
              "width": args.width, "lambda_ratio": args.lambda_ratio, "warmup": args.warmup,
              "converge": args.converge, "max_steps": args.max_steps}
    for optimizer in ("momentum", "gd"):
        rows = finite_width_study(data, spec, [args.n_train], members=args.members, steps="auto", tol=args.tol,
                                  optimizer=optimizer, warmup=args.warmup, converge=args.converge,
                                  max_steps=args.max_steps, store=store, progress=True)
        ens = next(r for r in rows if r["method"] == "ensemble")
        limit = next(r for r in rows if r["method"] == "ntk" and r["steps"] == -1)
        result[optimizer] = {**_parts(ens), "steps": ens["steps"], "stopping": ens["params"]["stopping"],
                             "eta": ens["params"]["eta"], "wall_s": ens["wall_s"]}
        result["infinite"] = _parts(limit)
        print(optimizer, json.dumps(result[optimizer]), flush=True)
    a, b = result["momentum"], result["gd"]
    result["pulls"] = {}
    for key in ("mu", "eps", "eps_floor", "eps_population"):
        err = np.hypot(a.get(f"{key}_err") or 0.0, b.get(f"{key}_err") or 0.0)
        result["pulls"][key] = float((a[key] - b[key]) / err) if err > 0 else None
    path = Path(args.out) / f"{args.task}_{args.n_train}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print("pulls (momentum - gd) / error:", result["pulls"], "->", path)


if __name__ == "__main__":
    main()

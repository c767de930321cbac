"""Trained-ensemble points in the background, cheapest first, in several one-thread processes; resumable.

Two kinds of work, both stored as points of `ntkuq.study.finite_width_study` (a finished point is never
recomputed, so an interrupted run loses at most the ensembles in training):

    # the finite-width points of a preset's scaling_finite chapter, where the chapter finds them
    .venv/bin/python scripts/finite_points.py preset cpu --jobs 2
    # ... or in a folder of their own while a study is half done (move them to results/cpu/points when whole)
    .venv/bin/python scripts/finite_points.py preset cpu --jobs 2 --out results/cpu-next
    # the width dependence at one N_D (results/widths/points; the ensembles chapter reads them)
    .venv/bin/python scripts/finite_points.py widths --tasks mnist --ratios 10 1 --widths 30 64 128 --jobs 2

Each process runs XLA on one thread: at width 30 one thread trains as fast as two on this kind of machine
(28 ms a step at N_D = 946, M = 64, either way), so K processes give K times the throughput.  The points run in
order of their cost per step (N_D times the network's weights), so the cheap ones are all done first.
"""
from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Dict, List  # noqa: E402

import ntkuq  # noqa: E402
from ntkuq import MLPSpec  # noqa: E402
from ntkuq.book import ROOT  # noqa: E402
from ntkuq.book.presets import load_preset, parameter_defaults, validate_preset  # noqa: E402
from ntkuq.data import load, subset_sizes  # noqa: E402
from ntkuq.finite import describe_stop  # noqa: E402
from ntkuq.study import ResultStore, finite_width_study  # noqa: E402

WIDTHS_DIR = ROOT / "results" / "widths"
"""Where the width study stores its points (results/widths/points)."""

WIDTH_STUDY = dict(n_train=946, n_pool=2000, n_test=1000, members=64, depth=3, activation="relu", steps="auto",
                   tol=0.01, min_steps=0, warmup=1000, converge=0.01, max_steps=20000, optimizer="momentum",
                   momentum=0.9, eta_fraction=0.5, downsample=2, grayscale=True, calorimeter_cells=10,
                   calorimeter_layers=10, seed=0)
"""The width study's settings: the `cpu` preset's data and training at its N_D = 946, the stopping rule with no
extra minimum (the wide networks need none; the rule decides)."""

Job = Dict[str, Any]


def preset_jobs(name: str, store: Path) -> List[Job]:
    """One job per (task, N_D) of the preset's scaling_finite chapter, with the chapter's own arguments.

    Args:
        name: the preset (presets/NAME.yaml).
        store: the points folder the chapter reads under this preset (results/NAME/points).
    """
    per_chapter = validate_preset(load_preset(name), name)
    p = {**parameter_defaults(ROOT / "book" / "scaling_finite.md"), **per_chapter["scaling_finite"]}
    if p["draws"] != 1:
        raise SystemExit("error: only presets with draws = 1 (the chapter's pool is then n_max)")
    jobs = []
    for n in subset_sizes(p["n_min"], p["n_max"], p["n_sizes"]):
        for task in p["tasks"]:
            jobs.append(dict(task=task, n_train=n, n_pool=p["n_max"], width=p["width"],
                             lambda_ratio=float(p["lambda_ratio"]), store=str(store),
                             **{k: p[k] for k in ("n_test", "members", "depth", "activation", "steps", "tol",
                                                  "min_steps", "warmup", "converge", "max_steps", "optimizer",
                                                  "momentum", "eta_fraction", "downsample", "grayscale",
                                                  "calorimeter_cells", "calorimeter_layers", "seed")}))
    return jobs


def width_jobs(tasks: List[str], ratios: List[float], widths: List[int], store: Path) -> List[Job]:
    """One job per (task, lambda_b / lambda_W, width) of the width study (WIDTH_STUDY)."""
    return [dict(WIDTH_STUDY, task=t, lambda_ratio=float(r), width=int(w), store=str(store))
            for t in tasks for r in ratios for w in widths]


def cost(job: Job) -> float:
    """Flops per step, up to a constant: N_D times the weights (first layer from the task's input size)."""
    n0 = {"mnist": 784, "cifar10": 1024, "calorimeter": 1000}[job["task"]] // job["downsample"] ** 2
    if job["task"] == "calorimeter":
        n0 = job["calorimeter_cells"] ** 2 * job["calorimeter_layers"]
    w = job["width"]
    return job["n_train"] * (n0 * w + (job["depth"] - 2) * w * w + 10 * w)


def run_job(job: Job) -> str:
    """Compute one point (or find it stored) and say what happened."""
    ntkuq.enable_float64()
    start = time.perf_counter()
    data = load(job["task"], n_pool=job["n_pool"], n_test=job["n_test"], seed=job["seed"],
                downsample=job["downsample"], grayscale=job["grayscale"],
                calorimeter_cells=job["calorimeter_cells"], calorimeter_layers=job["calorimeter_layers"])
    spec = MLPSpec.critical(job["activation"], depth=job["depth"], lambda_ratio=job["lambda_ratio"],
                            width=job["width"])
    mom = job["momentum"] if job["optimizer"] in ("momentum", "nesterov") else None
    rows = finite_width_study(data, spec, [job["n_train"]], members=job["members"], steps=job["steps"],
                              optimizer=job["optimizer"], momentum=mom, tol=job["tol"], min_steps=job["min_steps"],
                              warmup=job["warmup"], converge=job["converge"], max_steps=job["max_steps"],
                              eta_fraction=job["eta_fraction"], seed=job["seed"], store=ResultStore(job["store"]))
    ens = rows[0]
    stop = describe_stop(ens["params"].get("stopping")) or "a fixed T"
    return (f"{job['task']:11s} N_D {job['n_train']:5d} width {job['width']:4d} ratio {job['lambda_ratio']:g}: "
            f"{ens['steps']} steps, {stop}; eps_L {ens['eps']:.4f}; {time.perf_counter() - start:.0f} s here")


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("preset", help="the finite-width points of a preset's scaling_finite chapter")
    pr.add_argument("name", help="preset name: ci, cpu or paper")
    pr.add_argument("--max-n", type=int, default=None, help="only the sizes N_D up to this (default: all)")
    pr.add_argument("--out", default=None, help="results folder, points/ under it (default: results/NAME)")
    wi = sub.add_parser("widths", help="the width study at N_D = 946 (results/widths/points)")
    wi.add_argument("--tasks", nargs="+", default=["mnist", "cifar10", "calorimeter"])
    wi.add_argument("--ratios", nargs="+", type=float, default=[10.0, 1.0], help="lambda_b / lambda_W")
    wi.add_argument("--widths", nargs="+", type=int, default=[30, 64, 128, 256])
    wi.add_argument("--out", default=str(WIDTHS_DIR), help="results folder (points/ under it)")
    for p in (pr, wi):
        p.add_argument("--jobs", type=int, default=1, help="processes, one XLA thread each (default 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        print(f"error: --jobs: expected an integer >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.command == "preset":
        jobs = preset_jobs(args.name, Path(args.out or ROOT / "results" / args.name) / "points")
        jobs = [j for j in jobs if args.max_n is None or j["n_train"] <= args.max_n]
    else:
        jobs = width_jobs(args.tasks, args.ratios, args.widths, Path(args.out) / "points")
    jobs.sort(key=cost)
    print(f"{len(jobs)} points, {args.jobs} processes", flush=True)
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for i, line in enumerate(pool.imap_unordered(run_job, jobs), 1):
            print(f"[{i}/{len(jobs)} {(time.perf_counter() - start) / 60:.0f} min] {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

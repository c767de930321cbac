"""Trained-ensemble points in the background, cheapest first, in several one-thread processes; resumable.

Two kinds of work, both stored as points of `ntkuq.study.finite_width_study` (a finished point is never
recomputed, and an ensemble in training saves its state every few minutes under partial/ beside points/, so an
interrupted run loses at most those minutes; `--hours H` ends the run cleanly after H hours, saving the state):

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

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"
if ONE_THREAD not in os.environ.get("XLA_FLAGS", ""):  # before JAX is imported; other flags are kept
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD).strip()

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Dict, List, Tuple  # noqa: E402

import ntkuq  # noqa: E402
from ntkuq import MLPSpec  # noqa: E402
from ntkuq.book import ROOT  # noqa: E402
from ntkuq.book.presets import load_preset, parameter_defaults, validate_preset  # noqa: E402
from ntkuq.data import load, subset_sizes  # noqa: E402
from ntkuq.errors import PresetError, TrainingInterrupted  # noqa: E402
from ntkuq.finite import Checkpoint, describe_stop  # noqa: E402
from ntkuq.study import ResultStore, finite_width_study  # noqa: E402

WIDTHS_DIR = ROOT / "results" / "widths"
"""Where the width study stores its points (results/widths/points)."""

WIDTH_PRESET, WIDTH_N_TRAIN = "cpu", 946
"""The width study takes the data, architecture and training of this preset's finite-width chapter at this N_D ..."""

WIDTH_OVERRIDES = dict(min_steps=0, max_steps=20000)
"""... except its minimum steps (the wide networks need none beyond the infinite-width T and the warmup: the
stopping rule decides) and its cap."""

SAVE_EVERY_S = 300.0
"""An ensemble in training saves its state this often (seconds)."""

Job = Dict[str, Any]


def preset_jobs(name: str, store: Path) -> List[Job]:
    """One job per (task, N_D) of the preset's scaling_finite chapter, with the chapter's own arguments.

    Args:
        name: the preset (presets/NAME.yaml).
        store: the points folder the chapter reads under this preset (results/NAME/points).

    Returns:
        The jobs (dicts of `run_job`'s settings), by task within size.

    Raises:
        ValueError: the preset draws several training sets per size (the chapter's pool is then 2 n_max; not done
            here), or it is invalid (PresetError).
    """
    per_chapter = validate_preset(load_preset(name), name)
    p = {**parameter_defaults(ROOT / "book" / "scaling_finite.md"), **per_chapter["scaling_finite"]}
    if p["draws"] != 1:
        raise ValueError(f"draws: only presets with draws = 1 (the chapter's pool is then n_max), got {p['draws']}")
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
    """One job per (task, lambda_b / lambda_W, width) of the width study (WIDTH_PRESET at WIDTH_N_TRAIN).

    Args:
        tasks: the tasks.
        ratios: the ratios lambda_b / lambda_W.
        widths: the widths n.
        store: the points folder (results/widths/points).

    Returns:
        The jobs, the preset's job at WIDTH_N_TRAIN with the task, ratio, width, store and WIDTH_OVERRIDES set.

    Raises:
        ValueError: WIDTH_N_TRAIN is not one of the preset's sizes.
    """
    base = [j for j in preset_jobs(WIDTH_PRESET, store) if j["n_train"] == WIDTH_N_TRAIN]
    if not base:
        raise ValueError(f"WIDTH_N_TRAIN: expected one of the {WIDTH_PRESET} preset's sizes, got {WIDTH_N_TRAIN}")
    return [dict(base[0], **WIDTH_OVERRIDES, task=t, lambda_ratio=float(r), width=int(w), store=str(store))
            for t in tasks for r in ratios for w in widths]


def cost(job: Job) -> float:
    """Flops per step, up to a constant: N_D times the network's weights, for ordering the jobs.

    Args:
        job: a job (`preset_jobs`, `width_jobs`).

    Returns:
        N_D (n_0 n + (depth - 2) n^2 + 10 n), with n_0 the task's input size after its preprocessing.

    Raises:
        ValueError: an unknown task.
    """
    pixels = {"mnist": 784, "cifar10": 1024 * (1 if job["grayscale"] else 3)}
    if job["task"] == "calorimeter":
        n0 = job["calorimeter_cells"] ** 2 * job["calorimeter_layers"]
    elif job["task"] in pixels:
        n0 = pixels[job["task"]] // job["downsample"] ** 2
    else:
        raise ValueError(f"task: expected mnist, cifar10 or calorimeter, got {job['task']!r}")
    w = job["width"]
    return job["n_train"] * (n0 * w + (job["depth"] - 2) * w * w + 10 * w)


def run_job(job: Job) -> Tuple[bool, str]:
    """Compute one point (or find it stored) with `finite_width_study`, in this process.

    Args:
        job: a job (`preset_jobs`, `width_jobs`); its optional "deadline" (a time.time() value) ends the
            training cleanly, its state saved under partial/ beside the points folder.

    Returns:
        (finished, line): whether the point is stored, and one line: the point, its steps, what the stopping
        rule did, eps_L and the seconds taken; or that the deadline stopped it (and at which step it was saved).
    """
    start = time.perf_counter()
    what = f"{job['task']:11s} N_D {job['n_train']:5d} width {job['width']:4d} ratio {job['lambda_ratio']:g}"
    deadline = job.get("deadline")
    if deadline is not None and time.time() >= deadline:
        return False, f"{what}: not started, the deadline has passed"
    ntkuq.enable_float64()
    data = load(job["task"], n_pool=job["n_pool"], n_test=job["n_test"], seed=job["seed"],
                downsample=job["downsample"], grayscale=job["grayscale"],
                calorimeter_cells=job["calorimeter_cells"], calorimeter_layers=job["calorimeter_layers"])
    spec = MLPSpec.critical(job["activation"], depth=job["depth"], lambda_ratio=job["lambda_ratio"],
                            width=job["width"])
    mom = job["momentum"] if job["optimizer"] in ("momentum", "nesterov") else None
    checkpoint = Checkpoint(Path(job["store"]).parent / "partial", every_s=SAVE_EVERY_S, deadline=deadline)
    try:
        rows = finite_width_study(data, spec, [job["n_train"]], members=job["members"], steps=job["steps"],
                                  optimizer=job["optimizer"], momentum=mom, tol=job["tol"],
                                  min_steps=job["min_steps"], warmup=job["warmup"], converge=job["converge"],
                                  max_steps=job["max_steps"], eta_fraction=job["eta_fraction"], seed=job["seed"],
                                  store=ResultStore(job["store"]), checkpoint=checkpoint)
    except TrainingInterrupted as err:
        return False, f"{what}: stopped at the deadline after {time.perf_counter() - start:.0f} s here ({err})"
    ens = rows[0]
    stop = describe_stop(ens["params"].get("stopping")) or "a fixed T"
    return True, (f"{what}: {ens['steps']} steps, {stop}; eps_L {ens['eps']:.4f}; {time.perf_counter() - start:.0f} s "
            f"here ({ens['wall_s'] / 60:.0f} min in all)")


def main(argv: List[str] | None = None) -> int:
    """Command-line entry point (see the module docstring).

    Returns the exit status: 0 when every point is stored, 2 for bad arguments, 3 when the deadline (--hours)
    left points unfinished (their training state saved).
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("preset", help="the finite-width points of a preset's scaling_finite chapter")
    pr.add_argument("name", help="preset name: ci, cpu or paper")
    pr.add_argument("--max-n", type=int, default=None, help="only the sizes N_D up to this (default: all)")
    pr.add_argument("--out", default=None, help="results folder, points/ under it (default: results/NAME)")
    wi = sub.add_parser("widths", help=f"the width study at N_D = {WIDTH_N_TRAIN} (results/widths/points)")
    wi.add_argument("--tasks", nargs="+", default=["mnist", "cifar10", "calorimeter"])
    wi.add_argument("--ratios", nargs="+", type=float, default=[10.0, 1.0], help="lambda_b / lambda_W")
    wi.add_argument("--widths", nargs="+", type=int, default=[30, 64, 128, 256])
    wi.add_argument("--out", default=str(WIDTHS_DIR), help="results folder (points/ under it)")
    for p in (pr, wi):
        p.add_argument("--jobs", type=int, default=1, help="processes, one XLA thread each (default 1)")
        p.add_argument("--hours", type=float, default=None,
                       help="end cleanly after this many hours, the ensembles in training saved (default: no end)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        print(f"error: --jobs: expected an integer >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.hours is not None and not args.hours > 0:
        print(f"error: --hours: expected a positive number, got {args.hours}", file=sys.stderr)
        return 2
    try:
        if args.command == "preset":
            jobs = preset_jobs(args.name, Path(args.out or ROOT / "results" / args.name) / "points")
            jobs = [j for j in jobs if args.max_n is None or j["n_train"] <= args.max_n]
        else:
            jobs = width_jobs(args.tasks, args.ratios, args.widths, Path(args.out) / "points")
        jobs.sort(key=cost)
        if args.hours is not None:
            end = time.time() + 3600.0 * args.hours
            jobs = [dict(j, deadline=end) for j in jobs]
    except (ValueError, PresetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(jobs)} points, {args.jobs} processes", flush=True)
    start = time.perf_counter()
    left = 0
    with mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for i, (finished, line) in enumerate(pool.imap_unordered(run_job, jobs), 1):
            left += not finished
            print(f"[{i}/{len(jobs)} {(time.perf_counter() - start) / 60:.0f} min] {line}", flush=True)
    if left:
        print(f"{left} of {len(jobs)} points not finished by the deadline (their state is saved): run the same "
              "command again", flush=True)
    return 3 if left else 0


if __name__ == "__main__":
    sys.exit(main())

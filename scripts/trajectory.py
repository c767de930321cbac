"""How a trained ensemble's mu_L and eps_L move with the training steps, beside the infinite-width ensemble.

One (task, N_D) of a preset's scaling_finite chapter, trained exactly as the chapter trains it (the same data,
architecture, members, rate, warmup and seed) but past the stopping rule, to a fixed number of steps, with the
members' losses recorded at log-spaced steps and at every check step of the rule; beside them the exact
infinite-width ensemble after the same steps (`deviation_curve`: `ntk_prediction(..., steps=t)` at every t from
one eigendecomposition).  The trajectory up to the step where the rule passes is the chapter's run (the rule
only stops training), so the chapter's point must sit on it; the book checks that.

    .venv/bin/python scripts/trajectory.py cifar10 946 --steps 16000     # about 16 minutes on one core

Writes results/trajectories/TASK-N_D-STEPS.json (resumable: the training saves its state every five minutes
under results/trajectories/partial/).
"""
from __future__ import annotations

import os

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"
if ONE_THREAD not in os.environ.get("XLA_FLAGS", ""):  # before JAX is imported; other flags are kept
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD).strip()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import List, Optional  # noqa: E402

import ntkuq  # noqa: E402
from ntkuq import MLPSpec  # noqa: E402
from ntkuq.book import ROOT  # noqa: E402
from ntkuq.data import load  # noqa: E402
from ntkuq.finite import Checkpoint, StopRule, bootstrap_stats, default_eta, train_ensemble  # noqa: E402
from ntkuq.infinite import converged_steps, deviation_curve, train_test_kernels  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finite_points import preset_jobs  # noqa: E402

OUT = ROOT / "results" / "trajectories"
"""Where the trajectories are written."""

NEVER = StopRule(rtol=1e-12, atol=1e-300)
"""A rule that never passes: training runs to the cap while the rule's check steps are recorded (its min_steps is
set per run)."""


def trajectory(preset: str, task: str, n_train: int, steps: int, n_record: int = 40, out: Path = OUT,
               progress: bool = True) -> Path:
    """Train one point of a preset's scaling_finite chapter to `steps` and write its trajectory.

    Args:
        preset: the preset (presets/NAME.yaml), e.g. "cpu".
        task: one of the preset's tasks.
        n_train: one of the preset's sizes N_D.
        steps: the steps to train (the chapter's rule stops earlier or at its cap).
        n_record: log-spaced recording steps besides the rule's check steps (default 40).
        out: the output folder (default results/trajectories).
        progress: show the trainer's progress bar.

    Returns:
        The path of the JSON file written.

    Raises:
        ValueError: the task or N_D is not one of the preset's, or steps < 1.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    jobs = [j for j in preset_jobs(preset, out / "points") if j["task"] == task and j["n_train"] == n_train]
    if not jobs:
        raise ValueError(f"task, n_train: expected a task and size of the {preset} preset's scaling_finite chapter, "
                         f"got {task!r} and {n_train}")
    job = jobs[0]
    ntkuq.enable_float64()
    start = time.perf_counter()
    data = load(task, n_pool=job["n_pool"], n_test=job["n_test"], seed=job["seed"], downsample=job["downsample"],
                grayscale=job["grayscale"], calorimeter_cells=job["calorimeter_cells"],
                calorimeter_layers=job["calorimeter_layers"])
    spec = MLPSpec.critical(job["activation"], depth=job["depth"], lambda_ratio=job["lambda_ratio"], width=job["width"])
    mom = job["momentum"] if job["optimizer"] in ("momentum", "nesterov") else None
    x, y = data.subset(n_train, 0)
    eta = default_eta(spec.with_width(None), x, job["eta_fraction"], job["optimizer"], mom)
    kern = train_test_kernels(spec.with_width(None), x, data.x_test)
    conv = converged_steps(kern, y, data.y_test, eta=eta, optimizer=job["optimizer"], momentum=mom, tol=job["tol"],
                           warmup=job["warmup"])
    min_steps = max(conv.steps, int(job["min_steps"]))  # the chapter's rule waits this long (and for the warmup)
    name = f"{task}-{n_train}-{steps}"
    res = train_ensemble(spec, x, y, data.x_test, data.y_test, n_members=job["members"], steps=steps, eta=eta,
                         seed=job["seed"], optimizer=job["optimizer"], momentum=mom, warmup=job["warmup"],
                         n_record=n_record, stop=StopRule(NEVER.rtol, min_steps, NEVER.atol), progress=progress,
                         checkpoint=Checkpoint(out / "partial" / f"{name}.npz"))
    finite = [bootstrap_stats(res.test_history[:, j], n_boot=400, seed=job["seed"]) for j in range(res.steps.size)]
    mu_inf, sigma_inf = deviation_curve(kern, y, data.y_test, res.steps, eta=eta, optimizer=job["optimizer"],
                                        momentum=mom, warmup=job["warmup"])  # one eigendecomposition for all steps
    limit = conv.limit  # t = infinity, already computed by converged_steps
    record = {
        "preset": preset, "task": task, "n_train": n_train, "n_test": job["n_test"], "width": job["width"],
        "members": job["members"], "lambda_ratio": job["lambda_ratio"], "optimizer": job["optimizer"],
        "momentum": mom, "eta": eta, "warmup": job["warmup"], "seed": job["seed"], "min_steps": min_steps,
        "steps_infinite": conv.steps, "cap": steps,
        "rule": {"converge": job["converge"], "max_steps": job["max_steps"]},
        "steps": [int(s) for s in res.steps],
        "train_loss": res.train_history.mean(axis=0).tolist(),
        "mu": [s.mu for s in finite], "mu_err": [s.mu_err for s in finite],
        "eps": [s.eps for s in finite], "eps_err": [s.eps_err for s in finite],
        "alive_last": res.alive_history[:, :, -1].mean(axis=0).tolist(),
        "mu_inf": mu_inf.tolist(), "eps_inf": [s / m if m > 0 else 0.0 for m, s in zip(mu_inf, sigma_inf)],
        "mu_limit": limit.mu, "eps_limit": limit.eps,
        "train_seconds": res.seconds, "seconds_here": time.perf_counter() - start,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit status (2 for bad arguments)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", help="mnist, cifar10 or calorimeter")
    parser.add_argument("n_train", type=int, help="N_D, one of the preset's sizes")
    parser.add_argument("--steps", type=int, required=True, help="steps to train")
    parser.add_argument("--preset", default="cpu", help="preset (default cpu)")
    parser.add_argument("--out", default=str(OUT), help="output folder (default results/trajectories)")
    args = parser.parse_args(argv)
    try:
        path = trajectory(args.preset, args.task, args.n_train, args.steps, out=Path(args.out))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

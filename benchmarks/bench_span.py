"""Training in the span of the training inputs against the plain trainer (not a test).

Calorimeter-size synthetic inputs: n_0 = 15,625 features (25^3 cells), N_D = 1,000 training and N_T = 500 test
points, one output, depth 3, width 30, M = 16 members, heavy-ball momentum, float32.  Model FLOPs per step per
member: 6 x sum_l n_{l-1} n_l x N_D, with n_0 = r = N_D in the span (the first layer dominates: 15,625 x 30
against 30 x 30 + 30).  Both runs train the same members for the same steps after a compiling run; the
ratio is measured in one process.

Usage: python benchmarks/bench_span.py [--steps 200] [--n-train 1000]
Writes the markdown table to stdout and to benchmarks/results/span.md.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

import ntkuq
from ntkuq import MLPSpec
from ntkuq.finite import default_eta, layer_sizes, train_ensemble
from ntkuq.finite.span import reduce_inputs, span_basis

ntkuq.enable_float64()

N_IN, N_TEST, M, WIDTH = 15_625, 500, 16, 30
RESULTS = Path(__file__).resolve().parent / "results" / "span.md"


def flops(n_in: int, n_train: int) -> float:
    """Forward + backward FLOPs of one step of one member with n_in first-layer inputs."""
    sizes = layer_sizes(MLPSpec(width=WIDTH), n_in, 1)
    return 6.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) * n_train


def seconds(span: bool, x, y, xt, yt, eta: float, steps: int) -> float:
    """Wall seconds of train_ensemble for `steps` steps, setup included (after a compiling run)."""
    kw = dict(n_members=M, eta=eta, optimizer="momentum", span=span, progress=False, n_record=2)
    train_ensemble(MLPSpec.critical("relu", width=WIDTH), x, y, xt, yt, steps=1, **kw)
    t = time.perf_counter()
    train_ensemble(MLPSpec.critical("relu", width=WIDTH), x, y, xt, yt, steps=steps, **kw)
    return time.perf_counter() - t


def setup_seconds(x, xt) -> float:
    """Wall seconds of the span's one-off setup: the SVD of the training inputs and the test inputs' split."""
    t = time.perf_counter()
    reduce_inputs(span_basis(x), xt, np.float32)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n-train", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, xt = np.abs(rng.normal(size=(args.n_train, N_IN))), np.abs(rng.normal(size=(N_TEST, N_IN)))
    x, xt = x / np.linalg.norm(x, axis=1, keepdims=True), xt / np.linalg.norm(xt, axis=1, keepdims=True)
    y, yt = x[:, :50].sum(axis=1, keepdims=True), xt[:, :50].sum(axis=1, keepdims=True)
    eta = default_eta(MLPSpec.critical("relu"), x, 0.5, "momentum", 0.9)
    plain = seconds(False, x, y, xt, yt, eta, args.steps)
    span = seconds(True, x, y, xt, yt, eta, args.steps)
    setup = setup_seconds(x, xt)
    rows = [("plain (n_0 = 15,625)", plain, flops(N_IN, args.n_train)),
            (f"span (r = {min(args.n_train, N_IN)})", span, flops(min(args.n_train, N_IN), args.n_train))]
    lines = [f"Training in the span: M = {M}, width {WIDTH}, N_D = {args.n_train}, N_T = {N_TEST}, {args.steps} steps "
             f"of heavy ball, float32, {platform.processor() or platform.machine()}",
             "", "| trainer | seconds | s / step | model GFLOP / step | ratio to plain (time) | ratio (flops) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, s, f in rows:
        lines.append(f"| {name} | {s:.2f} | {s / args.steps:.4f} | {M * f / 1e9:.2f} | {s / plain:.3f} | "
                     f"{f / rows[0][2]:.3f} |")
    lines += ["", f"The span's one-off setup (SVD of the {args.n_train} x {N_IN} training inputs, the test inputs' "
              f"split) took {setup:.2f} s of the span's {span:.2f} s; per step after it the span trainer takes "
              f"{(span - setup) / args.steps:.4f} s against {plain / args.steps:.4f} s "
              f"({(span - setup) / plain:.3f} of the plain time)."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()

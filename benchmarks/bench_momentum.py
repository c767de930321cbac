"""Time to a converged ensemble (not a test): heavy-ball momentum against plain gradient descent, same problem.

"Converged" is the library's definition (ntkuq.infinite.converged_steps): the steps after which the
infinite-width mu_L and sigma_L stay within 1 % of t = infinity, each optimizer at half its own stable
rate.  For each optimizer: the search for T, then M = 64 members of width 30 trained for T full-batch
steps; the ratio of the two totals is measured in one run.  Also the trainer's share of this machine's
float32 matmul rate at width 30 (model FLOPs 6 x sum(n_{l-1} n_l) x N_D per step per member).

Data: MNIST (real, through ntkuq's loader), 7 x 7 pixels (downsample 4), N_D = 512, N_T = 500, depth 3,
lambda_b / lambda_W = 10.
Usage: NTKUQ_DATA_DIR=... python benchmarks/bench_momentum.py   (writes benchmarks/results/momentum.md)
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import ntkuq
from ntkuq.data import load
from ntkuq.finite import default_eta, layer_sizes, train_ensemble
from ntkuq.infinite import converged_steps, train_test_kernels
from ntkuq.spec import MLPSpec

ntkuq.enable_float64()

M, N_D, N_T, WIDTH = 64, 512, 500, 30
RESULTS = Path(__file__).resolve().parent / "results" / "momentum.md"


def matmul_rate(n: int = 2048, reps: int = 5) -> float:
    """Float32 FLOP/s of a jitted n x n x n matrix product (best of reps)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def main() -> None:
    """Both optimizers on the same problem; print and write the markdown table."""
    data = load("mnist", n_pool=N_D, n_test=N_T, seed=0, downsample=4)
    x, y = data.subset(N_D)
    spec = MLPSpec.critical("relu", depth=3, lambda_ratio=10.0, width=WIDTH)
    kern = train_test_kernels(spec.with_width(None), x, data.x_test)
    sizes = layer_sizes(spec, x.shape[1], y.shape[1])
    flops_step = 6.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) * N_D * M
    mm = matmul_rate()
    rows = []
    for opt, beta, label in (("gd", None, "gradient descent"), ("momentum", 0.9, "heavy ball, beta = 0.9")):
        t0 = time.perf_counter()
        eta = default_eta(spec, x, 0.5, opt, beta)
        T = converged_steps(kern, y, data.y_test, eta=eta, optimizer=opt, momentum=beta).steps
        t_search = time.perf_counter() - t0
        train_ensemble(spec, x, y, data.x_test, data.y_test, n_members=M, steps=1, eta=eta, optimizer=opt,
                       momentum=beta, progress=False, n_record=2)  # compile outside the timing
        t1 = time.perf_counter()
        res = train_ensemble(spec, x, y, data.x_test, data.y_test, n_members=M, steps=T, eta=eta, optimizer=opt,
                             momentum=beta, progress=False, n_record=2)
        t_train = time.perf_counter() - t1
        st = res.stats()
        rows.append(dict(label=label, T=T, search=t_search, train=t_train, total=t_search + t_train,
                         rate=flops_step * T / t_train, mu=st.mu, mu_err=st.mu_err))
    gd, hb = rows
    lines = [
        "# Time to a converged ensemble\n",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} "
        f"on {jax.devices()[0].platform}. MNIST 7 x 7, N_D = {N_D}, N_T = {N_T}, M = {M} members of width {WIDTH}, "
        f"depth 3, float32; each optimizer at half its stable rate, for the steps T that converge the "
        f"infinite-width mu_L and sigma_L to 1 %. Float32 matmul rate (jitted 2048^3): {mm / 1e9:.1f} GFLOP/s.\n",
        "| optimizer | T | search for T (s) | training (s) | total (s) | trainer GFLOP/s | / matmul rate "
        "| mu_L (ensemble) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['T']} | {r['search']:.1f} | {r['train']:.1f} | {r['total']:.1f} | "
                     f"{r['rate'] / 1e9:.1f} | {r['rate'] / mm:.0%} | {r['mu']:.4f} ± {r['mu_err']:.4f} |")
    lines += ["", f"Momentum reaches a converged ensemble {gd['total'] / hb['total']:.1f}x faster than gradient "
              f"descent in total time ({gd['T'] / hb['T']:.1f}x fewer steps)."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()

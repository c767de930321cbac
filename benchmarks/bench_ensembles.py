"""Ensemble training throughput (not a test): M = 64 members trained together vs the machine's matmul rate
and vs the same members trained one after another with the same jitted step.

Model FLOPs per step per member: 3 x 2 x sum_l n_{l-1} n_l x N_D (forward + backward; this counts an
input gradient for the first layer that is never computed, so it overstates the work by
2 n_0 n_1 N_D: about 1/3 of the first layer's share).  MNIST-size synthetic data (784 inputs,
10 one-hot outputs), depth 3, N_D = 4096, float32, eta = default_eta (half the stable maximum).

Usage: python benchmarks/bench_ensembles.py [--steps-512 2] [--steps-30 20]
Writes the markdown table to stdout and to benchmarks/results/ensembles.md.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ntkuq  # everything below is cast to float32 explicitly
from ntkuq.finite import default_eta, init_members, layer_sizes, make_optimizer, make_step, run_steps
from ntkuq.spec import MLPSpec

ntkuq.enable_float64()

M, N_D, N_IN, N_OUT, DEPTH = 64, 4096, 784, 10, 3
RESULTS = Path(__file__).resolve().parent / "results" / "ensembles.md"


def model_flops(spec: MLPSpec) -> float:
    """3 x 2 x sum of layer matmul sizes x N_D: forward + backward FLOPs of one step of one member."""
    sizes = layer_sizes(spec, N_IN, N_OUT)
    return 6.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) * N_D


def matmul_rate(n: int = 4096, reps: int = 5) -> float:
    """Float32 FLOP/s of a jitted n x n x n matrix product on this machine (best of reps)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()
    return 2.0 * n**3 / min(timed(f, a, b)[1] for _ in range(reps))


def timed(fn, *args):
    """Run fn(*args), wait for the result, return (result, seconds)."""
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t


def bench_width(width: int, x, y, eta: float, steps: int, seq_steps: int, repeats: int) -> dict:
    """Seconds per step of the vmapped ensemble and of the members one after another (best of repeats)."""
    spec = MLPSpec.critical("relu", depth=DEPTH, width=width)
    step = make_step(spec, N_IN, N_OUT)
    tx = make_optimizer(spec, N_IN, N_OUT, eta)
    key, eta_a = jax.random.PRNGKey(0), jnp.float32(eta)
    params = init_members(spec, N_IN, N_OUT, range(M))
    state = jax.vmap(tx.init)(params)
    ens = run_steps(jax.vmap(step, in_axes=(0, 0, None, None, None, None, None)))
    (params, state), t_compile = timed(ens, params, state, x, y, jnp.int32(0), jnp.int32(1), eta_a, key)
    t_ens = math.inf
    for _ in range(repeats):
        (params, state), t = timed(ens, params, state, x, y, jnp.int32(1), jnp.int32(steps), eta_a, key)
        t_ens = min(t_ens, t)

    one = run_steps(step)
    members = [jax.tree.map(lambda a: a[m], params) for m in range(M)]
    p0 = jax.tree.map(jnp.copy, members[0])
    timed(one, p0, tx.init(p0), x, y, jnp.int32(0), jnp.int32(1), eta_a, key)  # compile
    t_seq = math.inf
    for _ in range(repeats):
        copies = jax.block_until_ready([jax.tree.map(jnp.copy, p) for p in members])  # donation consumes inputs
        t = time.perf_counter()
        for p in copies:
            out = one(p, tx.init(p), x, y, jnp.int32(0), jnp.int32(seq_steps), eta_a, key)
        jax.block_until_ready(out)
        t_seq = min(t_seq, time.perf_counter() - t)
    flops = model_flops(spec) * M
    return dict(width=width, steps=steps, seq_steps=seq_steps, repeats=repeats, compile_s=t_compile,
                ens_step_s=t_ens / steps, seq_step_s=t_seq / seq_steps, ens_rate=flops * steps / t_ens,
                seq_rate=flops * seq_steps / t_seq)


def main() -> None:
    """Run both widths, print the markdown table and write it to benchmarks/results/ensembles.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps-512", type=int, default=2)
    ap.add_argument("--steps-30", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x_np = rng.random((N_D, N_IN))
    x_np = (x_np - x_np.mean(1, keepdims=True)) / x_np.std(1, keepdims=True)  # per-image standardized pixels
    y_np = np.eye(N_OUT)[rng.integers(0, N_OUT, N_D)]
    t = time.perf_counter()
    eta = default_eta(MLPSpec.critical("relu", depth=DEPTH, width=30), x_np)
    t_eta = time.perf_counter() - t
    x, y = jnp.asarray(x_np, jnp.float32), jnp.asarray(y_np, jnp.float32)
    mm = matmul_rate()
    rows = [bench_width(30, x, y, eta, args.steps_30, max(args.steps_30 // 4, 1), repeats=3),
            bench_width(512, x, y, eta, args.steps_512, 1, repeats=1)]
    mm_after = matmul_rate()
    mm = max(mm, mm_after)
    lines = [
        "# Ensemble training throughput\n",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}. M = {M} members, N_D = {N_D}, "
        f"784 -> n -> n -> 10 ReLU (depth 3), float32, full-batch GD, eta = {eta:.4g} (default_eta, "
        f"{t_eta:.1f} s for the analytic NTK and its top eigenvalue). Float32 matmul rate "
        f"(jitted 4096^3 product, best of before/after): {mm / 1e9:.1f} GFLOP/s.\n",
        "Model FLOPs: 6 x sum(n_{l-1} n_l) x N_D per step per member (overstates the first layer's "
        "backward, whose input gradient is not computed).\n",
        "| width | steps timed (ens / seq, best of) | ensemble s/step | ensemble GFLOP/s | / matmul rate | "
        "one-after-another s/step | one-after-another GFLOP/s | speed-up vs one-after-another | compile+1 step s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['width']} | {r['steps']} / {r['seq_steps']}, {r['repeats']} | {r['ens_step_s']:.3f} | "
                     f"{r['ens_rate'] / 1e9:.1f} | {r['ens_rate'] / mm:.0%} | {r['seq_step_s']:.3f} | "
                     f"{r['seq_rate'] / 1e9:.1f} | {r['ens_rate'] / r['seq_rate']:.2f}x | {r['compile_s']:.1f} |")
    r30, r512 = rows
    lines.append("")
    lines.append(f"Goals: >= 50% of the matmul rate at width 512: {r512['ens_rate'] / mm:.0%} "
                 f"({'met' if r512['ens_rate'] >= 0.5 * mm else 'NOT met'}); "
                 f">= 10x one-after-another at width 30: "
                 f"{r30['ens_rate'] / r30['seq_rate']:.2f}x "
                 f"({'met' if r30['ens_rate'] >= 10 * r30['seq_rate'] else 'NOT met'}).")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()

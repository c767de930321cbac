"""Benchmark: kernels + t = infinity prediction + mu_L, sigma_L against the floor measured in the same run.

Floor = the Gram matrix of all inputs (train and test, float64) plus one float64 Cholesky of N_D x N_D:
no exact method can do less.  Each measurement runs in a fresh subprocess so that its peak memory
(max RSS) is its own.  Usage:  python benchmarks/bench_infinite.py [--sizes 2048 4096 8192] [--n-test 2000]
Writes a markdown table to stdout and to benchmarks/results/infinite.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = r"""
import json, resource, sys, time
import numpy as np
import jax, jax.numpy as jnp
import ntkuq
from ntkuq import MLPSpec
from ntkuq.dynamics import train_test_kernels, ntk_prediction
from ntkuq.lossstats import loss_stats

ntkuq.enable_float64()

what, n, n_test, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((n + n_test, 784)))
y = jnp.asarray(np.eye(10)[rng.integers(0, 10, n + n_test)] - 0.1)
spec = MLPSpec(depth=3, activation="relu", C_b=0.0, C_W=2.0, lambda_b=10.0, lambda_W=1.0)

@jax.jit
def floor(x):
    gram = x @ x.T
    a = gram[:n, :n] / x.shape[1] + jnp.eye(n)
    return jnp.linalg.cholesky(a)[-1, -1] + gram[-1, -1]

def full():
    kern = train_test_kernels(spec, x[:n], x[n:])
    pred = ntk_prediction(kern, y[:n])
    st = loss_stats(pred, y[n:])
    return st.mu + st.sigma

def run():
    if what == "floor":
        return float(floor(x))
    return full()

run()  # compile
times = []
for _ in range(reps):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": min(times), "peak_gib": peak}))
"""


def measure(what: str, n: int, n_test: int, reps: int) -> dict:
    """Run one measurement in a fresh interpreter and return its time and peak memory."""
    out = subprocess.run([sys.executable, "-c", WORKER, what, str(n), str(n_test), str(reps)],
                         check=True, capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def flops(n: int, n_test: int, d: int = 784) -> dict:
    """Leading floating-point operation counts of the floor and of the full computation."""
    gram = 2 * (n + n_test) ** 2 * d
    chol = n**3 / 3
    solve = 2 * n**2 * n_test          # two triangular solves with N_T right-hand sides
    w = 2 * n**2 * n_test              # W = K_Xs - K_XX V
    s_blocks = 2 * 2 * n_test**2 * n   # S rows: K_sX V and V^T W
    return {"floor": gram + chol, "full": gram + chol + solve + w + s_blocks}


def main() -> None:
    """Measure every size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    rows = [f"Machine: {platform.machine()}, {os.cpu_count()} cores; N_T = {args.n_test}, inputs 784, depth 3, "
            "ReLU, 10 outputs, float64.", "",
            "| N_D | floor (s) | full (s) | ratio | floor peak (GiB) | full peak (GiB) | FLOP ratio |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        fl, fu = measure("floor", n, args.n_test, args.reps), measure("full", n, args.n_test, args.reps)
        f = flops(n, args.n_test)
        rows.append(f"| {n} | {fl['seconds']:.2f} | {fu['seconds']:.2f} | {fu['seconds'] / fl['seconds']:.2f} | "
                    f"{fl['peak_gib']:.2f} | {fu['peak_gib']:.2f} | {f['full'] / f['floor']:.2f} |")
        print(rows[-1], flush=True)
    text = "\n".join(rows) + "\n"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "infinite.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Benchmark: the t = infinity nested sweep against its counted flops and against neural-tangents 0.6.5.

Work (one training-set size N_D, N_T = 2000 test points, 784 inputs, depth 3, ReLU, 10 outputs,
float64, lambda tied to C so that neural-tangents computes the same thing): the NNGP and NTK kernels,
the t = infinity NTK ensemble and the NNGP posterior (means and covariances on the test set), and
mu_L, sigma_L of both.  Three measurements per size, each in a fresh process (peak RSS its own):

* ntkuq: `nested_sweep(..., sizes=[N_D])`; the counted-flop time is `linalg.nested_sweep_flops` divided
  by the float64 GEMM rate (scipy BLAS, 4096^3) measured in the same process just before;
* ntkuq with 12 nested sizes 100..N_D (what a scaling study runs), for the cost of the other 11 sizes;
* neural-tangents 0.6.5 (side environment .refenv, see requirements-reference.txt):
  `gradient_descent_mse_ensemble(kernel_fn, x, y, diag_reg=0)(t=None, x_test, get=('nngp', 'ntk'),
  compute_cov=True)`, then mu_L and sigma_L from its means and covariances.  Its mu_L, sigma_L^2 are
  compared with ours.

Times are the best of `--reps` runs after one warm-up (compilation) run.  Usage:
    python benchmarks/bench_infinite.py [--sizes 2048 4096 8192] [--n-test 2000] [--reps 2]
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
ROOT = HERE.parent
REFENV = ROOT / ".refenv" / "bin" / "python"

COMMON = r"""
import json, resource, sys, time
import numpy as np
n, n_test, reps, nested = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
x = rng.standard_normal((n + n_test, 784))
y = np.eye(10)[rng.integers(0, 10, n + n_test)] - 0.1
xtr, ytr, xte, yte = x[:n], y[:n], x[n:], y[n:]
C_B, C_W = 0.1, 2.0

def stats(mean, cov):
    r = mean - yte
    k = r.shape[1]
    norm = r.size
    mu = (np.sum(r**2) + k * np.trace(cov)) / norm
    var = (2 * k * np.sum(cov**2) + 4 * np.sum(r * (cov @ r))) / norm**2
    return float(mu), float(var)

def best(run):
    run()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); out = run(); times.append(time.perf_counter() - t)
    return min(times), out
"""

OURS = COMMON + r"""
import scipy.linalg.blas as blas
from ntkuq import MLPSpec
from ntkuq.linalg import nested_sweep_flops
from ntkuq import sweep
spec = MLPSpec(depth=3, activation="relu", C_b=C_B, C_W=C_W, lambda_b=C_B, lambda_W=C_W)
sizes = [n] if not nested else sorted(set(np.geomspace(100, n, 12).astype(int).tolist()))
a = np.asfortranarray(rng.standard_normal((4096, 4096)))
gemm = []
for _ in range(3):
    t0 = time.perf_counter(); blas.dgemm(1.0, a, a); gemm.append(time.perf_counter() - t0)
rate = 2 * 4096**3 / min(gemm)
del a
def run():
    pts = sweep.nested_sweep(spec, xtr, ytr, xte, yte, sizes)
    return {p.method: (p.stats.mu, p.stats.sigma**2) for p in pts if p.n_train == n}, dict(sweep.last_timings)
sec, (res, phases) = best(run)
flops = nested_sweep_flops(n, n_test, sizes, n_features=784)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": sec, "peak_gib": peak, "gemm_rate": rate, "flops": flops, "phases": phases,
                  "result": res}))
"""

NT = COMMON + r"""
import jax
jax.config.update("jax_enable_x64", True)
import neural_tangents as nt
from neural_tangents import stax
layers = []
for _ in range(2):
    layers += [stax.Dense(512, C_W**0.5, C_B**0.5, parameterization="ntk"), stax.Relu()]
_, _, kernel_fn = stax.serial(*layers, stax.Dense(1, C_W**0.5, C_B**0.5, parameterization="ntk"))
kernel_fn = jax.jit(kernel_fn, static_argnames="get")
def run():
    predict = nt.predict.gradient_descent_mse_ensemble(kernel_fn, xtr, ytr, diag_reg=0.0)
    out = predict(t=None, x_test=xte, get=("nngp", "ntk"), compute_cov=True)
    return {g: stats(np.asarray(getattr(out, g).mean), np.asarray(getattr(out, g).covariance)) for g in ("ntk", "nngp")}
sec, res = best(run)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": sec, "peak_gib": peak, "result": res}))
"""


def measure(python: str, code: str, n: int, n_test: int, reps: int, nested: bool = False) -> dict:
    """Run one measurement in a fresh interpreter and return its JSON line."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT / "lib")}
    out = subprocess.run([python, "-c", code, str(n), str(n_test), str(reps), str(int(nested))],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure every size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true", help="skip neural-tangents (no .refenv)")
    args = parser.parse_args()
    use_nt = not args.no_reference and REFENV.exists()
    rows = [f"Machine: {platform.machine()}, {os.cpu_count()} cores; N_T = {args.n_test}, inputs 784, depth 3, "
            "ReLU (C_b = lambda_b = 0.1, C_W = lambda_W = 2), 10 outputs, float64; NTK and NNGP, t = infinity.", "",
            "| N_D | ntkuq (s) | GEMM rate (GFLOP/s) | counted GFLOP | ratio to counted-flop time | kernels (s) "
            "| 12 nested sizes (s) | neural-tangents (s) | speed-up | ntkuq / NT peak (GiB) | max rel. diff. mu, sigma^2 |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        ours = measure(sys.executable, OURS, n, args.n_test, args.reps)
        nested = measure(sys.executable, OURS, n, args.n_test, args.reps, nested=True)
        ref = measure(str(REFENV), NT, n, args.n_test, args.reps) if use_nt else None
        flops = ours["flops"]["total"]
        floor = flops / ours["gemm_rate"]
        diff = (max(abs(ours["result"][m][i] - ref["result"][m][i]) / abs(ref["result"][m][i])
                    for m in ("ntk", "nngp") for i in (0, 1)) if ref else float("nan"))
        rows.append(f"| {n} | {ours['seconds']:.2f} | {ours['gemm_rate'] / 1e9:.0f} | {flops / 1e9:.0f} | "
                    f"{ours['seconds'] / floor:.2f} | {ours['phases'].get('kernels', 0):.2f} | {nested['seconds']:.2f} | "
                    + (f"{ref['seconds']:.2f} | {ref['seconds'] / ours['seconds']:.2f} | "
                       f"{ours['peak_gib']:.2f} / {ref['peak_gib']:.2f} | {diff:.1e} |" if ref else
                       f"- | - | {ours['peak_gib']:.2f} / - | - |"))
        print(rows[-1], "phases:", {k: round(v, 2) for k, v in ours["phases"].items()}, flush=True)
    text = "\n".join(rows) + "\n"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "infinite.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Benchmark: the t = infinity nested sweep against its counted flops and against neural-tangents 0.6.5.

Work (784 inputs, depth 3, ReLU, 10 outputs, float64, lambda tied to C so that neural-tangents computes the same
thing: C_b = lambda_b = 0.1, C_W = lambda_W = 2): NNGP and NTK kernels, the t = infinity NTK ensemble and the
NNGP posterior (means and covariances on the test set) and mu_L, sigma_L of both.  Per N_D, each in a fresh
process (so that its peak resident memory is its own):

* ntkuq, one size: `nested_sweep(..., sizes=[N_D])`; the counted-flop time is `nested.sweep_flops` divided by
  the float64 GEMM rate (scipy BLAS, 4096^3, best of 3) measured in the same process just before; the kernels'
  elementwise layer recursion is not a flop count, so its measured time is added to the counted-flop time;
* ntkuq, 12 log-spaced nested sizes from 100 to N_D (what a scaling study runs);
* neural-tangents 0.6.5 (side environment .refenv, requirements-reference.txt) on the one-size work:
  `gradient_descent_mse_ensemble(kernel_fn, x, y, diag_reg=0)(t=None, x_test, get=('nngp', 'ntk'),
  compute_cov=True)`, then mu_L and sigma_L from its means and covariances, compared with ours.

Times are after one warm-up (compilation) call: of the same tile shape for ntkuq, of the same work for
neural-tangents.  Usage:
    python benchmarks/bench_infinite.py [--sizes 2048 4096 8192] [--n-test 2000] [--no-reference]
    python benchmarks/bench_infinite.py --big 25000 --n-test 10000      # one 12-size sweep on MNIST, no reference
Writes a markdown table to stdout and to benchmarks/results/infinite.md (--big: infinite_big.md).
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
n, n_test, nested = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
if len(sys.argv) > 4 and sys.argv[4] == "mnist":  # real MNIST, full resolution (needs the data: NTKUQ_DATA_DIR)
    import ntkuq
    ntkuq.enable_float64()
    from ntkuq.data import load
    task = load("mnist", n_pool=n, n_test=n_test)
    xtr, ytr, xte, yte = (np.asarray(a) for a in (task.x_train, task.y_train, task.x_test, task.y_test))
else:
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
    return float(mu), float(np.sqrt(var))

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
"""

OURS = COMMON + r"""
import scipy.linalg.blas as blas
import ntkuq
ntkuq.enable_float64()
from ntkuq import MLPSpec
from ntkuq.infinite import sweep_flops
from ntkuq.infinite import nested_sweep
from ntkuq.data import subset_sizes
spec = MLPSpec(depth=3, activation="relu", C_b=C_B, C_W=C_W, lambda_b=C_B, lambda_W=C_W)
sizes = subset_sizes(100, n, 12) if nested else [n]
a = np.asfortranarray(rng.standard_normal((4096, 4096)))
gemm = []
for _ in range(3):
    t0 = time.perf_counter(); blas.dgemm(1.0, a, a); gemm.append(time.perf_counter() - t0)
rate = 2 * 4096**3 / min(gemm)
del a
w = min(1024, n)  # warm-up: compiles the kernel tile of the run's shape
nested_sweep(spec, xtr[:w], ytr[:w], xte[:min(n_test, w)], yte[:min(n_test, w)], [w])
timings = {}
t0 = time.perf_counter()
pts = nested_sweep(spec, xtr, ytr, xte, yte, sizes, timings=timings)
sec = time.perf_counter() - t0
res = {p.method: (p.stats.mu, p.stats.sigma) for p in pts if p.n_train == n}
flops = sweep_flops(n, n_test, sizes, n_features=784)
print(json.dumps({"seconds": sec, "peak_gib": peak(), "gemm_rate": rate, "flops": flops, "phases": timings,
                  "result": res, "sizes": sizes}))
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
run()
t0 = time.perf_counter()
res = run()
sec = time.perf_counter() - t0
print(json.dumps({"seconds": sec, "peak_gib": peak(), "result": res}))
"""


def measure(python: str, code: str, n: int, n_test: int, nested: bool = False, data: str = "random") -> dict:
    """Run one measurement in a fresh interpreter and return its JSON line."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT / "lib")}
    out = subprocess.run([python, "-c", code, str(n), str(n_test), str(int(nested)), data],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def counted_seconds(ours: dict) -> float:
    """Counted flops at the measured GEMM rate, plus the measured time of the kernels' elementwise recursion
    (kernel time minus its Gram products at the GEMM rate): the time the algorithm would take at GEMM speed."""
    f, rate = ours["flops"], ours["gemm_rate"]
    elementwise = max(ours["phases"].get("kernels", 0.0) - f["kernels"] / rate, 0.0)
    return f["total"] / rate + elementwise


def main() -> None:
    """Measure every size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--no-reference", action="store_true", help="skip neural-tangents (no .refenv)")
    parser.add_argument("--big", type=int, default=0, help="one 12-size sweep up to this N_D (no reference)")
    args = parser.parse_args()
    head = (f"Machine: {platform.machine()}, {os.cpu_count()} cores; N_T = {args.n_test}, inputs 784, depth 3, "
            "ReLU (C_b = lambda_b = 0.1, C_W = lambda_W = 2), 10 outputs, float64; NTK and NNGP, t = infinity.")
    if args.big:
        r = measure(sys.executable, OURS, args.big, args.n_test, nested=True, data="mnist")
        text = "\n".join([head.replace("ReLU (", "real MNIST (full resolution), ReLU ("), "",
                          f"12 nested sizes {r['sizes']}", "",
                          "| N_D | time (s) | GEMM rate (GFLOP/s) | counted GFLOP | time / counted-flop time "
                          "| peak (GiB) | stages (s) |", "|---:|---:|---:|---:|---:|---:|---|",
                          f"| {args.big} | {r['seconds']:.0f} | {r['gemm_rate'] / 1e9:.0f} | "
                          f"{r['flops']['total'] / 1e9:.0f} | {r['seconds'] / counted_seconds(r):.2f} | "
                          f"{r['peak_gib']:.2f} | "
                          + ", ".join(f"{k} {v:.0f}" for k, v in r["phases"].items()) + " |"]) + "\n"
        (HERE / "results" / "infinite_big.md").write_text(text)
        print(text, json.dumps(r["flops"]))
        return
    use_nt = not args.no_reference and REFENV.exists()
    # two tables, so that each fits the book's column: ntkuq against its counted flops, then against NT
    own = ["| N_D | ntkuq (s) | GEMM rate (GFLOP/s) | counted GFLOP | time / counted-flop time | kernels (s) "
           "| 12 nested sizes (s) | nested / counted |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cmp = ["| N_D | ntkuq (s) | neural-tangents (s) | speed-up | peak GiB, ntkuq / NT | max rel. diff. mu, sigma |",
           "|---:|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        ours = measure(sys.executable, OURS, n, args.n_test)
        nested = measure(sys.executable, OURS, n, args.n_test, nested=True)
        ref = measure(str(REFENV), NT, n, args.n_test) if use_nt else None
        diff = (max(abs(ours["result"][m][i] - ref["result"][m][i]) / abs(ref["result"][m][i])
                    for m in ("ntk", "nngp") for i in (0, 1)) if ref else float("nan"))
        own.append(f"| {n} | {ours['seconds']:.2f} | {ours['gemm_rate'] / 1e9:.0f} | "
                   f"{ours['flops']['total'] / 1e9:.0f} "
                   f"| {ours['seconds'] / counted_seconds(ours):.2f} | {ours['phases'].get('kernels', 0):.2f} "
                   f"| {nested['seconds']:.2f} | {nested['seconds'] / counted_seconds(nested):.2f} |")
        cmp.append(f"| {n} | {ours['seconds']:.2f} | "
                   + (f"{ref['seconds']:.2f} | {ref['seconds'] / ours['seconds']:.2f} | "
                      f"{ours['peak_gib']:.2f} / {ref['peak_gib']:.2f} | {diff:.1e} |" if ref else
                      f"not measured | - | {ours['peak_gib']:.2f} / - | - |"))
        print(own[-1], cmp[-1], "stages:", {k: round(v, 2) for k, v in ours["phases"].items()}, flush=True)
    rows = [head, ""] + own + ["", "The same runs against neural-tangents 0.6.5 (tied lambda, same data):", ""] + cmp
    if not use_nt:
        rows += ["", "neural-tangents not measured: no side environment .refenv (requirements-reference.txt)."]
    text = "\n".join(rows) + "\n"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "infinite.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

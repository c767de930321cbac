"""Benchmark: simulate 25,000 showers of the default 25 x 25 x 25-cell ECAL (no cache).

    python benchmarks/bench_calorimeter.py [--n 25000] [--threads N] [--chunk 250] [--progress]

Prints the wall time, showers/s, spots/s and the process CPU time; the goal is under a minute
on 2 cores.
"""
import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from ntkuq.data.calorimeter import DEFAULT_CHUNK_SIZE, CalorimeterConfig, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=25_000, help="number of showers")
    ap.add_argument("--threads", type=int, default=None, help="worker threads (default: CPU count, <= 8)")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_SIZE, help="showers per chunk")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hcal", action="store_true", help="add the coarse HCAL")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()

    cfg = CalorimeterConfig(hcal=args.hcal)
    simulate(cfg, 2 * args.chunk, seed=args.seed + 1, chunk_size=args.chunk, n_threads=args.threads)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    s = simulate(cfg, args.n, seed=args.seed, chunk_size=args.chunk, n_threads=args.threads,
                 progress=args.progress)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    spots = int(s.n_spots.sum())
    print(f"cpus={os.cpu_count()} threads={args.threads or 'auto'} chunk={args.chunk} hcal={args.hcal}")
    print(f"simulated {args.n} showers of {cfg.ecal_shape} cells ({spots / 1e6:.0f} M spots, "
          f"{s.ecal.nbytes / 2**30:.2f} GiB) in {dt:.1f} s: "
          f"{args.n / dt:.0f} showers/s, {spots / dt / 1e6:.1f} M spots/s")
    print(f"process CPU time {cpu:.1f} s (all threads; {cpu / dt:.2f} cores busy on average; "
          f"the wall time is inflated when other processes share the cores)")
    r = s.calibrated_energy() / s.energies
    print(f"mean response {r.mean():.4f}, mean energy {s.energies.mean():.1f} GeV, "
          f"checksum {float(np.float64(s.ecal.sum(dtype=np.float64))):.6f}")
    table = (f"Machine: {platform.machine()}, {os.cpu_count()} cores.\n\n"
             "| showers | cells | spots | wall (s) | showers/s | CPU (s) | cores busy | goal |\n"
             "|---:|---|---:|---:|---:|---:|---:|---|\n"
             f"| {args.n} | {'x'.join(map(str, cfg.ecal_shape))} | {spots / 1e6:.0f} M | {dt:.1f} | "
             f"{args.n / dt:.0f} | "
             f"{cpu:.1f} | {cpu / dt:.2f} | under 60 s: {'met' if dt < 60 else 'NOT met'} |\n")
    out = Path(__file__).resolve().parent / "results" / "calorimeter.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()

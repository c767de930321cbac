"""The shower simulator: electrons in, visible cell energies out (`simulate`, `Showers`).

One shower, with the parametrization of `ntkuq.data.calorimeter.gflash` (derived in the book's chapter
"The three tasks: MNIST, CIFAR-10 and a simulated calorimeter", section "The shower model"):

1. Energy E uniform in config.energy_range; (T, alpha) drawn from GFlash's bivariate normal; the
   shower axis is the detector axis shifted by an optional Gaussian impact jitter.
2. Spots. The energy is cut into N_spot equal spots, N_spot ~ Poisson(93 ln(Z) E^0.876) (or that
   number rounded, ``poisson_spots=False``). Each spot gets a depth t ~ Gamma(alpha, 1/beta), i.e.
   t is drawn from the shower's own energy profile, so equal-energy spots reproduce it.  Unlike
   Geant4, which places spots with a narrower spot profile and weights them, spots here carry
   equal energy.
3. Each spot's radius is drawn from GFlash's radial profile at its tau = t / T (exact inversion,
   `gflash.radius_from_uniform`), its azimuth uniformly; r is converted to mm with R_M.
4. Cells. A spot lands in cell (ix, iy, layer) of the ECAL section; spots past the ECAL's depth go
   to the HCAL section behind it if there is one (the shower is continued in the same X0 and R_M
   units, a coarse approximation of the change of material), or are lost, as are spots outside
   the lateral acceptance (leakage).
5. Sampling fluctuations (how the stochastic term is set). Only the sampling fraction f_s of the
   deposited energy is seen.  The visible energy of a spot is Gamma distributed with mean
   f_s E / N_spot and shape kappa = E / (a_s^2 N_spot), where a_s is the section's
   stochastic_term (GeV^1/2).  Sums of Gammas of equal scale are Gamma, so the visible energy of
   a shower's N_spot spots is Gamma(E / a_s^2) distributed: relative spread exactly a_s / sqrt(E).
   The same identity lets the simulation draw one Gamma(n kappa) per hit cell instead of one per
   spot (n spots in that cell), which is exact and much cheaper.  The scale of each Gamma,
   f_s a_s^2, is the energy of one "visible quantum" (photo-statistics picture).  Shower-to-shower
   fluctuations of T and alpha add leakage fluctuations (a roughly constant term b).
6. Noise: independent Gaussian noise of the section's noise_mev (visible MeV) on every cell, no
   zero suppression (cells can be slightly negative).

Cell arrays hold *visible* energies in GeV (what the silicon sees); divide by the sampling
fraction to calibrate (``Showers.calibrated_energy``).  Array layout: ecal[shower, ix, iy, layer],
x the first transverse axis; layer 0 is the front.

Everything is vectorized over the showers of a chunk (all spots of a chunk are flat float32 arrays,
deposited with ``np.bincount``); chunks run in a thread pool (numpy releases the GIL in the heavy
loops).  Chunk c draws from ``SeedSequence(seed, spawn_key=(stream, c))``, so the output depends on
(config, n_showers, seed, stream, chunk_size) only, not on the number of threads.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ntkuq.data.calorimeter.config import CalorimeterConfig, Section
from ntkuq.data.calorimeter.gflash import (
    mean_spot_count,
    radial_coefficients,
    radius_from_uniform,
    sample_shower_parameters,
)

CODE_VERSION = "calorimeter-1"
"""Part of every cache key: bump it whenever the simulated output for a given config changes."""

DEFAULT_CHUNK_SIZE = 250
"""Showers per chunk (about 3.5 million spots on average over 10-100 GeV, ~0.3 GB of temporaries)."""

_F32 = np.float32


@dataclass
class Showers:
    """Simulated showers.

    ``len(showers)`` is the number of showers N.

    Attributes:
        energies: (N,) true electron energies, GeV.
        ecal: (N, n_cells, n_cells, n_layers) float32 visible cell energies, GeV (x, y, layer).
        hcal: (N, nx, ny, n_layers) float32 visible energies (config.hcal.shape), or None without an HCAL.
        T: (N,) the sampled longitudinal parameter T, the depth of maximum in X0.
        alpha: (N,) the sampled longitudinal parameter alpha, the profile's shape.
        n_spots: (N,) number of spots.
        impact: (N, 2) impact point (x, y) in mm.
        config: the CalorimeterConfig that produced them.
    """

    energies: np.ndarray
    ecal: np.ndarray
    hcal: Optional[np.ndarray]
    T: np.ndarray
    alpha: np.ndarray
    n_spots: np.ndarray
    impact: np.ndarray
    config: CalorimeterConfig

    def __len__(self) -> int:
        return int(self.energies.shape[0])

    def ecal_sum(self) -> np.ndarray:
        """(N,) total visible ECAL energy, GeV.

        Returns:
            The sums, float64.
        """
        return self.ecal.reshape(len(self), -1).sum(axis=1, dtype=np.float64)

    def calibrated_energy(self, include_hcal: bool = True) -> np.ndarray:
        """(N,) visible energy divided by the sampling fraction(s), GeV (no leakage correction).

        Args:
            include_hcal: add the HCAL's calibrated energy when there is an HCAL (default True).

        Returns:
            The calibrated energies, float64.
        """
        e = self.ecal_sum() / self.config.ecal.sampling_fraction
        if include_hcal and self.hcal is not None:
            e = e + self.hcal.reshape(len(self), -1).sum(axis=1, dtype=np.float64) / self.config.hcal.sampling_fraction
        return e


# ---------------------------------------------------------------------------------- one chunk, by step


def _draw_showers(config: CalorimeterConfig, rng: np.random.Generator, n: int) -> Dict[str, np.ndarray]:
    """Steps 1-2 per shower: energies, (T, alpha), impact points (mm) and spot counts (>= 1)."""
    lo, hi = config.energy_range
    E = rng.uniform(lo, hi, n)
    T, alpha = sample_shower_parameters(E, config, rng)
    impact = (rng.standard_normal((n, 2)) * config.impact_jitter_mm if config.impact_jitter_mm > 0
              else np.zeros((n, 2)))
    lam = mean_spot_count(E, config.Z)
    n_spots = rng.poisson(lam) if config.poisson_spots else np.rint(lam).astype(np.int64)
    return dict(energies=E, T=T, alpha=alpha, impact=impact, n_spots=np.maximum(n_spots, 1))


def _spot_depths(rng: np.random.Generator, T: np.ndarray, alpha: np.ndarray,
                 n_spots: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Step 2, depths: (tau, t) per spot in float32, t ~ Gamma(alpha, 1/beta) in X0 and tau = t / T.

    beta t is drawn with one call per shower (a scalar shape samples ~2x faster than an array of
    shapes); tau = beta t / (alpha - 1).
    """
    g = np.empty(int(n_spots.sum()), dtype=_F32)
    ends = np.cumsum(n_spots)
    for a_i, e_i, n_i in zip(alpha, ends, n_spots):
        rng.standard_gamma(a_i, size=int(n_i), dtype=_F32, out=g[e_i - n_i:e_i])
    tau = g * np.repeat(np.asarray(1.0 / (alpha - 1.0), dtype=_F32), n_spots)
    t = tau * np.repeat(np.asarray(T, dtype=_F32), n_spots)
    return tau, t


def _spot_positions(config: CalorimeterConfig, rng: np.random.Generator, showers: Dict[str, np.ndarray],
                    tau: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Step 3: transverse spot positions (x, y) in mm, float32, around each shower's impact point.

    The radius is GFlash's radial profile (`gflash.RadialCoefficients.at`, evaluated in float32)
    sampled by `gflash.radius_from_uniform`; the azimuth is uniform.
    """
    n_spots = showers["n_spots"]
    coeffs = radial_coefficients(showers["energies"], config.Z, _F32).repeat(n_spots)
    R_C, R_T, p = coeffs.at(tau)
    u = rng.random(p.shape[0], dtype=_F32)
    radius = radius_from_uniform(u, R_C, R_T, p)
    del u, p, R_C, R_T
    radius *= _F32(config.moliere_radius_mm)
    phi = rng.random(radius.shape[0], dtype=_F32) * _F32(2 * np.pi)
    x = radius * np.cos(phi)
    y = radius * np.sin(phi)
    if config.impact_jitter_mm > 0:
        x += np.repeat(np.asarray(showers["impact"][:, 0], dtype=_F32), n_spots)
        y += np.repeat(np.asarray(showers["impact"][:, 1], dtype=_F32), n_spots)
    return x, y


def _flat_cell_index(shower_f: np.ndarray, x: np.ndarray, y: np.ndarray, depth: np.ndarray, cell_size: float,
                     n_cells: int, n_layers: int, dump: int) -> np.ndarray:
    """Flat index ((shower * n + ix) * n + iy) * n_layers + layer of each spot, `dump` outside the cells.

    Cells are centred on the axis, `depth` is in layer units.  Computed in the float type of `shower_f`
    on floored coordinates, which is exact while dump < 2^24 (float32) or 2^53 (float64); the caller
    chooses.
    """
    ft = shower_f.dtype.type
    half = ft(n_cells / 2.0)
    fx = np.floor(x * ft(1.0 / cell_size) + half)
    fy = np.floor(y * ft(1.0 / cell_size) + half)
    fl = np.floor(depth)
    flat = shower_f * ft(n_cells)
    flat += fx
    flat *= ft(n_cells)
    flat += fy
    flat *= ft(n_layers)
    flat += fl
    out = (fx < 0) | (fx >= n_cells) | (fy < 0) | (fy >= n_cells) | (fl >= n_layers)
    flat[out] = dump
    return flat.astype(np.intp)


def _visible(rng: np.random.Generator, counts: np.ndarray, section: Section, showers: Dict[str, np.ndarray],
             n_cell: int) -> np.ndarray:
    """Step 5: visible energy (GeV, float32) of each cell hit by counts[cell] spots.

    counts is flat over (shower, cell) with n_cell cells per shower.  A cell hit by n spots gets
    Gamma(n kappa) * f_s a_s^2, kappa = E / (a_s^2 N_spot); with a_s = 0 it gets its mean
    n f_s E / N_spot.
    """
    E, n_spots = showers["energies"], showers["n_spots"]
    out = np.zeros(counts.shape[0], dtype=_F32)
    hit = np.flatnonzero(counts)
    shower = hit // n_cell
    n = counts[hit]
    a_s, f_s = section.stochastic_term, section.sampling_fraction
    scale = f_s * a_s ** 2
    if scale > 0:
        kappa = E / (a_s ** 2 * n_spots)
        out[hit] = rng.standard_gamma(n * kappa[shower]) * scale
    else:
        out[hit] = n * (f_s * E / n_spots)[shower]
    return out


def _read_out(section: Section, rng: np.random.Generator, showers: Dict[str, np.ndarray], shower_f: np.ndarray,
              x: np.ndarray, y: np.ndarray, depth_x0: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Steps 4-6 for one section: its cells, and a mask of the spots that went past its back.

    The cells are (n, *section.shape), float32 visible GeV.

    shower_f: each spot's shower number (float32 or float64, see `_flat_cell_index`); x, y: its
    position in mm; depth_x0: its depth behind the section's front face in X0.
    """
    n = len(showers["energies"])
    n_cell = int(np.prod(section.shape))
    layer = depth_x0 * _F32(1.0 / section.layer_depth_x0)
    flat = _flat_cell_index(shower_f, x, y, layer, section.cell_size_mm, section.n_cells, section.n_layers,
                            n * n_cell)
    counts = np.bincount(flat, minlength=n * n_cell + 1)[: n * n_cell]
    del flat
    cells = _visible(rng, counts, section, showers, n_cell)
    if section.noise_mev > 0:
        cells += rng.standard_normal(cells.shape[0], dtype=_F32) * _F32(section.noise_mev * 1e-3)
    return cells.reshape((n,) + section.shape), layer >= section.n_layers


def _simulate_chunk(config: CalorimeterConfig, seed_seq: np.random.SeedSequence, n: int) -> Dict[str, np.ndarray]:
    """Simulate n showers drawing from one seed: the fields of `Showers` (without config) as a dict.

    The random draws happen in a fixed order (the steps of the module docstring, then the sections
    from the front), which is what makes a chunk reproducible.
    """
    rng = np.random.Generator(np.random.PCG64(seed_seq))
    out = _draw_showers(config, rng, n)
    tau, t = _spot_depths(rng, out["T"], out["alpha"], out["n_spots"])
    x, y = _spot_positions(config, rng, out, tau)
    del tau
    # float shower numbers for the flat cell index (float32 is exact below 2^24 cells).  Before the
    # sections, the default HCAL's 1,210 cells counted here even without an HCAL: a different
    # choice (and so different cells) only for chunks of more than 13,865 showers.
    most = max(int(np.prod(section.shape)) for _, section in config.sections)
    ft = _F32 if n * most < 2 ** 24 else np.float64
    spots = (np.repeat(np.arange(n, dtype=ft), out["n_spots"]), x, y, t)
    front = 0.0  # depth of the section's front face, X0
    for i, (name, section) in enumerate(config.sections):
        shower_f, x, y, t = spots
        out[name], beyond = _read_out(section, rng, out, shower_f, x, y, t - _F32(front) if front else t)
        front += section.depth_x0
        if i + 1 < len(config.sections):  # the next section sees the spots that went past this one
            spots = tuple(a[beyond] for a in spots)
    out.setdefault("hcal", None)
    return out


# ----------------------------------------------------------------------------------------- simulate


def _run_chunks(work: Callable[[int], None], n_chunks: int, n_threads: int, progress: bool) -> None:
    """Call work(c) for every chunk c, in a pool of n_threads threads, with an optional tqdm bar."""
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_chunks, desc="showers", unit="chunk")
    try:
        if n_threads == 1:
            for c in range(n_chunks):
                work(c)
                if bar is not None:
                    bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=n_threads) as pool:
                for fut in [pool.submit(work, c) for c in range(n_chunks)]:
                    fut.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _check_count(name: str, value, minimum: int) -> int:
    """Value as an int if it is an integer (not a bool) >= minimum, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    return int(value)


def simulate(config: CalorimeterConfig, n_showers: int, seed: int = 0, *, stream: int = 0,
             chunk_size: int = DEFAULT_CHUNK_SIZE, n_threads: Optional[int] = None,
             progress: bool = False) -> Showers:
    """Simulate `n_showers` electron showers (no cache).

    Args:
        config: the calorimeter.
        n_showers: how many showers (>= 1).
        seed: the seed (>= 0; default 0): chunk c draws from SeedSequence(seed, spawn_key=(stream, c)).
        stream: the stream (>= 0; default 0); different streams of one seed are independent (the task
            uses stream 0 for training, 1 for testing).
        chunk_size: showers per vectorized chunk (default DEFAULT_CHUNK_SIZE; part of the random
            stream: keep it fixed to reproduce a sample).
        n_threads: worker threads (default: CPU count, at most 8); the output does not depend on it.
        progress: a tqdm bar over chunks (default False).

    Returns:
        The simulated `Showers`.

    Raises:
        TypeError: if `config` is not a `CalorimeterConfig`.
        ValueError: if a count (n_showers, chunk_size, seed, stream, n_threads) is not an integer in range.
    """
    if not isinstance(config, CalorimeterConfig):
        raise TypeError(f"config: expected a CalorimeterConfig, got {type(config).__name__}")
    n_showers, chunk_size = _check_count("n_showers", n_showers, 1), _check_count("chunk_size", chunk_size, 1)
    seed, stream = _check_count("seed", seed, 0), _check_count("stream", stream, 0)
    n_chunks = -(-n_showers // chunk_size)
    if n_threads is None:
        n_threads = min(os.cpu_count() or 1, 8)
    n_threads = max(1, min(_check_count("n_threads", n_threads, 1), n_chunks))

    arrays = dict(energies=np.empty(n_showers), T=np.empty(n_showers), alpha=np.empty(n_showers),
                  n_spots=np.empty(n_showers, dtype=np.int64), impact=np.empty((n_showers, 2)))
    for name, section in config.sections:
        arrays[name] = np.empty((n_showers,) + section.shape, dtype=_F32)

    def work(c: int) -> None:
        start = c * chunk_size
        stop = min(start + chunk_size, n_showers)
        res = _simulate_chunk(config, np.random.SeedSequence(seed, spawn_key=(stream, c)), stop - start)
        for key, array in arrays.items():
            array[start:stop] = res[key]

    _run_chunks(work, n_chunks, n_threads, progress)
    return Showers(hcal=arrays.pop("hcal", None), config=config, **arrays)


__all__ = ["CODE_VERSION", "DEFAULT_CHUNK_SIZE", "Showers", "simulate"]

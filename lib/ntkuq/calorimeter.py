"""A GFlash-style simulated electromagnetic calorimeter, for the energy-regression task.

No calorimeter data set can be downloaded for this project, so electron showers are simulated
with the parametrization of

    G. Grindhammer and S. Peters, "The parameterized simulation of electromagnetic showers in
    homogeneous and sampling calorimeters", hep-ex/0001020 (Proc. Int. Conf. on Monte Carlo
    Simulation in High Energy and Nuclear Physics, Tallahassee 1993),

with the coefficients listed in ``docs/science.md`` ("GFlash parametrization"); they agree with
Geant4's ``GFlashHomoShowerParameterisation`` defaults except k4's ln E slope, for which
science.md gives 0.0421 and Geant4's tuning class 0.0412 (0.0421 is used here; the difference
changes R_T by at most ~1 % for tau <= 3 at 100 GeV).  Unlike Geant4, which places spots with
a narrower spot profile (T_s = T (0.698 + 0.00212 Z), alpha_s = alpha (0.639 + 0.00334 Z)) and
weights them, spots here are drawn from the energy profile itself and carry equal energy.

Notation: E the electron energy in GeV, y = E / E_c, Z the effective atomic number, t the depth
in radiation lengths X0, r the radius in Moliere radii R_M.

One shower
----------
1. Longitudinal profile. (ln T, ln alpha) is bivariate normal with

       <ln T>     = ln(ln y - 0.812),                 sigma(ln T)     = 1 / (-1.4 + 1.26 ln y)
       <ln alpha> = ln(0.81 + (0.458 + 2.26/Z) ln y), sigma(ln alpha) = 1 / (-0.58 + 0.86 ln y)
       corr(ln T, ln alpha) = 0.705 - 0.023 ln y

   and dE/dt = E (beta t)^(alpha-1) beta exp(-beta t) / Gamma(alpha), beta = (alpha - 1) / T,
   so T is the depth of the maximum (average profile: T = ln y - 0.858).
2. Spots. The energy is cut into N_spot equal spots, N_spot ~ Poisson(93 ln(Z) E^0.876) (or
   that number rounded, ``poisson_spots=False``). Each spot gets a depth t ~ Gamma(alpha, 1/beta),
   i.e. t is drawn from the shower's own energy profile, so equal-energy spots reproduce it.
3. Radial profile at tau = t / T (T of this shower):

       f(r) = p 2 r R_C^2/(r^2 + R_C^2)^2 + (1 - p) 2 r R_T^2/(r^2 + R_T^2)^2,
       R_C = z1 + z2 tau,  z1 = 0.0251 + 0.00319 ln E,  z2 = 0.1162 - 0.000381 Z,
       R_T = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2))),
             k1 = 0.659 - 0.00309 Z, k2 = 0.645, k3 = -2.59, k4 = 0.3585 + 0.0421 ln E,
       p   = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3)),
             p1 = 2.632 - 0.00094 Z, p2 = 0.401 + 0.00187 Z, p3 = 1.313 - 0.0686 ln E.

   Each component has CDF r^2/(r^2 + R^2), so a spot's radius is sampled exactly by choosing the
   core with probability p and inverting: r = R sqrt(u/(1-u)), u uniform.  The same uniform
   does both jobs (u < p picks the core and u/p is again uniform; else (u-p)/(1-p) is).
   Azimuth uniform; r is converted to mm with R_M; the shower axis is the detector axis shifted
   by an optional Gaussian impact jitter.
4. Cells. A spot lands in cell (ix, iy, layer) of the ECAL (``n_cells`` x ``n_cells`` cells of
   ``cell_size_mm``, ``n_layers`` layers of ``layer_depth_x0``); spots past the ECAL depth go to
   the optional HCAL behind it (the shower is continued in the same X0 and R_M units, a coarse
   approximation of the change of material), or are lost, as are spots outside the lateral
   acceptance (leakage).
5. Sampling fluctuations (how the stochastic term is set). Only the sampling fraction f_s of
   the deposited energy is seen.  The visible energy of a spot is Gamma distributed with mean
   f_s E / N_spot and shape kappa = E / (a_s^2 N_spot), where a_s = ``stochastic_term``
   (GeV^1/2).  Sums of Gammas of equal scale are Gamma, so the visible energy of a shower's
   N_spot spots is Gamma(E / a_s^2) distributed: relative spread exactly a_s / sqrt(E).  The
   same identity lets the simulation draw one Gamma(n kappa) per hit cell instead of one per
   spot (n spots in that cell), which is exact and much cheaper.  The scale of each Gamma,
   f_s a_s^2, is the energy of one "visible quantum" (photo-statistics picture).  Shower-to-
   shower fluctuations of T and alpha add leakage fluctuations (a roughly constant term b).
6. Noise: independent Gaussian noise of ``noise_mev`` (visible MeV) on every cell, no
   zero suppression (cells can be slightly negative).

Cell arrays hold *visible* energies in GeV (what the silicon sees); divide by the sampling
fraction to calibrate (``Showers.calibrated_energy``).  Array layout: ecal[shower, ix, iy,
layer], x the first transverse axis; layer 0 is the front.

Everything is vectorized over the showers of a chunk (all spots of a chunk are flat arrays,
deposited with ``np.bincount``); chunks run in a thread pool (numpy releases the GIL in the
heavy loops).  Chunk c draws from ``SeedSequence(seed, spawn_key=(stream, c))``, so the output
depends on (config, n_showers, seed, stream, chunk_size) only, not on the number of threads.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

CODE_VERSION = "calorimeter-1"
"""Part of every cache key: bump it whenever the simulated output for a given config changes."""

DEFAULT_CHUNK_SIZE = 250
"""Showers per chunk (about 3.5 million spots on average over 10-100 GeV, ~0.3 GB of temporaries)."""

_F32 = np.float32

# GFlash coefficients (hep-ex/0001020; science.md), shared by the sampler and the analytic helpers.
# Longitudinal, fluctuated: <ln T> = ln(ln y + T1); <ln alpha> = ln(A1 + (A2 + A3/Z) ln y);
# sigma(ln T) = 1/(ST1 + ST2 ln y); sigma(ln alpha) = 1/(SA1 + SA2 ln y); rho = R1 + R2 ln y.
T1, A1, A2, A3 = -0.812, 0.81, 0.458, 2.26
ST1, ST2, SA1, SA2 = -1.4, 1.26, -0.58, 0.86
R1, R2 = 0.705, -0.023
T_AVG = -0.858                     # average profile: T = ln y - 0.858
# Radial: R_C = (C1 + C2 ln E) + (C3 + C4 Z) tau
C1, C2, C3, C4 = 0.0251, 0.00319, 0.1162, -0.000381
# R_T = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2))), k1 = K1a + K1b Z, k4 = K4a + K4b ln E
K1a, K1b, K2, K3, K4a, K4b = 0.659, -0.00309, 0.645, -2.59, 0.3585, 0.0421
# p = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3)), p1 = P1a + P1b Z, p2 = P2a + P2b Z, p3 = P3a + P3b ln E
P1a, P1b, P2a, P2b, P3a, P3b = 2.632, -0.00094, 0.401, 0.00187, 1.313, -0.0686
# Spots: N_spot = NS1 ln(Z) E^NS2
NS1, NS2 = 93.0, 0.876

# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalorimeterConfig:
    """Physical and geometrical parameters of the simulated calorimeter.

    Defaults: a tungsten-silicon sampling ECAL of 25 x 25 cells of 5.1 mm and 25 layers of 1 X0,
    electrons of 10-100 GeV (uniform) hitting the centre of the central cell at normal incidence.

    Material (tungsten):
        X0_mm: radiation length (3.5 mm).  moliere_radius_mm: R_M (9.3 mm).
        critical_energy_mev: E_c (8 MeV).  Z: effective atomic number (74).
    Geometry:
        n_cells, cell_size_mm: transverse segmentation, n_cells x n_cells square cells.
        n_layers, layer_depth_x0: longitudinal segmentation (layer thickness in X0).
    Beam:
        energy_range: (E_min, E_max) in GeV, energies uniform in it.
        impact_jitter_mm: Gaussian spread (per transverse axis) of the impact point; 0 = fixed.
    Readout:
        sampling_fraction: visible / deposited energy f_s (0.02: 0.5 mm Si behind 3.5 mm W sees
            about 2 % of a MIP's energy loss).
        stochastic_term: a_s in GeV^1/2; each spot's visible energy is Gamma distributed so the
            visible sum fluctuates by a_s / sqrt(E) (module docstring, item 5).  0.12 is in the
            range of silicon-tungsten ECALs (CALICE: ~17 %).
        noise_mev: per-cell Gaussian noise, in visible MeV (0.01: ~1/10 of a MIP in 0.5 mm Si).
        poisson_spots: N_spot ~ Poisson(93 ln Z E^0.876) if True, else rounded to an integer.
    HCAL (off by default): a coarse calorimeter directly behind the ECAL catching the energy
    that leaks out of its back (spots deeper than n_layers * layer_depth_x0):
        hcal: switch.  hcal_n_cells, hcal_cell_size_mm, hcal_n_layers, hcal_layer_depth_x0:
        its segmentation (depth in the shower's X0); hcal_sampling_fraction,
        hcal_stochastic_term, hcal_noise_mev: its readout, as for the ECAL.
    """

    X0_mm: float = 3.5
    moliere_radius_mm: float = 9.3
    critical_energy_mev: float = 8.0
    Z: float = 74.0
    n_cells: int = 25
    cell_size_mm: float = 5.1
    n_layers: int = 25
    layer_depth_x0: float = 1.0
    energy_range: Tuple[float, float] = (10.0, 100.0)
    impact_jitter_mm: float = 0.0
    sampling_fraction: float = 0.02
    stochastic_term: float = 0.12
    noise_mev: float = 0.01
    poisson_spots: bool = True
    hcal: bool = False
    hcal_n_cells: int = 11
    hcal_cell_size_mm: float = 30.0
    hcal_n_layers: int = 10
    hcal_layer_depth_x0: float = 2.0
    hcal_sampling_fraction: float = 0.05
    hcal_stochastic_term: float = 0.2
    hcal_noise_mev: float = 0.05

    def __post_init__(self) -> None:
        def real(name, lower=0.0, strict=True, upper=None):
            value = getattr(self, name)
            if isinstance(value, bool):
                raise ValueError(f"{name}: expected a real number, got {value!r}")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: expected a real number, got {value!r}") from None
            bad = not math.isfinite(value) or value < lower or (strict and value == lower)
            if upper is not None and value > upper:
                bad = True
            if bad:
                rel = ">" if strict else ">="
                rng = f" and <= {upper}" if upper is not None else ""
                raise ValueError(f"{name}: expected a finite number {rel} {lower}{rng}, got {value!r}")
            object.__setattr__(self, name, value)

        def integer(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))

        for name in ("X0_mm", "moliere_radius_mm", "critical_energy_mev", "cell_size_mm",
                     "layer_depth_x0", "hcal_cell_size_mm", "hcal_layer_depth_x0"):
            real(name)
        real("Z", lower=1.0, strict=False)
        for name in ("n_cells", "n_layers", "hcal_n_cells", "hcal_n_layers"):
            integer(name)
        for name in ("impact_jitter_mm", "stochastic_term", "noise_mev",
                     "hcal_stochastic_term", "hcal_noise_mev"):
            real(name, strict=False)
        real("sampling_fraction", upper=1.0)
        real("hcal_sampling_fraction", upper=1.0)
        for name in ("poisson_spots", "hcal"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name}: expected a bool, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        try:
            lo, hi = (float(v) for v in self.energy_range)
        except (TypeError, ValueError):
            raise ValueError(f"energy_range: expected (E_min, E_max) in GeV, got {self.energy_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
            raise ValueError(f"energy_range: expected finite 0 < E_min <= E_max (GeV), got {self.energy_range!r}")
        # The fluctuation widths 1/(-1.4 + 1.26 ln y) need ln y > 1.11; stay well inside the
        # parametrization's domain (it was fitted from ~1 GeV up).
        if lo / (self.critical_energy_mev * 1e-3) < 10.0:
            raise ValueError("energy_range: E_min must be at least 10 critical energies "
                             f"({self.critical_energy_mev * 1e-2:g} GeV) for the GFlash "
                             f"parametrization, got {self.energy_range!r}")
        object.__setattr__(self, "energy_range", (lo, hi))

    @property
    def critical_energy_gev(self) -> float:
        return self.critical_energy_mev * 1e-3

    @property
    def ecal_depth_x0(self) -> float:
        """Total ECAL depth in radiation lengths."""
        return self.n_layers * self.layer_depth_x0

    @property
    def ecal_shape(self) -> Tuple[int, int, int]:
        return (self.n_cells, self.n_cells, self.n_layers)

    @property
    def hcal_shape(self) -> Tuple[int, int, int]:
        return (self.hcal_n_cells, self.hcal_n_cells, self.hcal_n_layers)

    def replace(self, **changes) -> "CalorimeterConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------------------------
# The GFlash parametrization (plain functions of arrays; E in GeV)
# ----------------------------------------------------------------------------------------------


def longitudinal_parameters(energy_gev, config: CalorimeterConfig):
    """Means, widths and correlation of (ln T, ln alpha) at the given energies.

    Returns a dict of arrays: mean_lnT, sigma_lnT, mean_lnalpha, sigma_lnalpha, rho.
    """
    ly = np.log(np.asarray(energy_gev, dtype=float) / config.critical_energy_gev)
    return dict(
        mean_lnT=np.log(ly + T1),
        sigma_lnT=1.0 / (ST1 + ST2 * ly),
        mean_lnalpha=np.log(A1 + (A2 + A3 / config.Z) * ly),
        sigma_lnalpha=1.0 / (SA1 + SA2 * ly),
        rho=R1 + R2 * ly,
    )


def average_shower_max(energy_gev, config: CalorimeterConfig):
    """Depth of the maximum of GFlash's *average* profile, T = ln y - 0.858 (in X0)."""
    return np.log(np.asarray(energy_gev, dtype=float) / config.critical_energy_gev) + T_AVG


def radial_parameters(tau, energy_gev, Z):
    """(R_C, R_T, p) of the radial profile at tau = t/T, radii in Moliere radii; p clipped to [0, 1]."""
    tau = np.asarray(tau)
    lnE = np.log(np.asarray(energy_gev, dtype=float))
    R_C = (C1 + C2 * lnE) + (C3 + C4 * Z) * tau
    k1, k4 = K1a + K1b * Z, K4a + K4b * lnE
    R_T = k1 * (np.exp(K3 * (tau - K2)) + np.exp(k4 * (tau - K2)))
    p1, p2, p3 = P1a + P1b * Z, P2a + P2b * Z, P3a + P3b * lnE
    w = (p2 - tau) / p3
    # p1 * max(exp(w - e^w)) = p1/e < 1 for all Z >= 1, but clip anyway: p is a probability.
    p = np.clip(p1 * np.exp(w - np.exp(w)), 0.0, 1.0)
    return R_C, R_T, p


def radial_cdf(r_moliere, tau, energy_gev, Z):
    """Fraction of a spot's energy within r (Moliere radii) at depth tau: the CDF of f(r)."""
    R_C, R_T, p = radial_parameters(tau, energy_gev, Z)
    r2 = np.asarray(r_moliere, dtype=float) ** 2
    return p * r2 / (r2 + R_C ** 2) + (1.0 - p) * r2 / (r2 + R_T ** 2)


# ----------------------------------------------------------------------------------------------
# Simulation
# ----------------------------------------------------------------------------------------------


@dataclass
class Showers:
    """Simulated showers.

    energies: (N,) true electron energies, GeV.
    ecal: (N, n_cells, n_cells, n_layers) float32 visible cell energies, GeV (x, y, layer).
    hcal: (N, hcal_n_cells, hcal_n_cells, hcal_n_layers) float32 visible energies, or None.
    T, alpha: (N,) the sampled longitudinal parameters (depth of maximum in X0, shape).
    n_spots: (N,) number of spots.  impact: (N, 2) impact point (x, y) in mm.
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
        """(N,) total visible ECAL energy, GeV."""
        return self.ecal.reshape(len(self), -1).sum(axis=1, dtype=np.float64)

    def calibrated_energy(self, include_hcal: bool = True) -> np.ndarray:
        """(N,) visible energy divided by the sampling fraction(s), GeV (no leakage correction)."""
        e = self.ecal_sum() / self.config.sampling_fraction
        if include_hcal and self.hcal is not None:
            e = e + self.hcal.reshape(len(self), -1).sum(axis=1, dtype=np.float64) / self.config.hcal_sampling_fraction
        return e


def sample_shower_parameters(energy_gev, config: CalorimeterConfig, rng: np.random.Generator):
    """Draw (T, alpha) per shower: (ln T, ln alpha) bivariate normal (`longitudinal_parameters`)."""
    E = np.asarray(energy_gev, dtype=float)
    par = longitudinal_parameters(E, config)
    z = rng.standard_normal((2,) + E.shape)
    rho = par["rho"]
    T = np.exp(par["mean_lnT"] + par["sigma_lnT"] * z[0])
    alpha = np.exp(par["mean_lnalpha"]
                   + par["sigma_lnalpha"] * (rho * z[0] + np.sqrt(1 - rho ** 2) * z[1]))
    # alpha > 1 is needed for a maximum at T > 0; at >= 10 E_c, alpha ~ 2-6 with a ~20 %
    # spread, so this floor only guards against astronomically rare draws.
    return T, np.maximum(alpha, 1.05)


def _flat_cell_index(shower_f, x, y, depth, cell_size, n_cells, n_layers, dump):
    """Flat index ((shower * n + ix) * n + iy) * n_layers + layer of each spot (cells centred on
    the axis, `depth` in layer units), `dump` for spots outside the cells.  Computed in the
    float type of `shower_f` on floored coordinates, which is exact while dump < 2^24 (float32)
    or 2^53 (float64); the caller chooses."""
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


def _visible(rng, counts, kappa_per_shower, scale, mean_per_spot, ncell):
    """Visible energy of cells hit by `counts` spots: Gamma(n kappa) * scale, or the mean."""
    out = np.zeros(counts.shape[0], dtype=_F32)
    hit = np.flatnonzero(counts)
    shower = hit // ncell
    n = counts[hit]
    if scale > 0:
        out[hit] = rng.standard_gamma(n * kappa_per_shower[shower]) * scale
    else:
        out[hit] = n * mean_per_spot[shower]
    return out


def _simulate_chunk(config: CalorimeterConfig, seed_seq: np.random.SeedSequence, n: int):
    rng = np.random.Generator(np.random.PCG64(seed_seq))
    cfg = config
    lo, hi = cfg.energy_range
    E = rng.uniform(lo, hi, n)
    T, alpha = sample_shower_parameters(E, cfg, rng)
    impact = (rng.standard_normal((n, 2)) * cfg.impact_jitter_mm if cfg.impact_jitter_mm > 0
              else np.zeros((n, 2)))

    lam = NS1 * math.log(cfg.Z) * E ** NS2
    n_spots = rng.poisson(lam) if cfg.poisson_spots else np.rint(lam).astype(np.int64)
    n_spots = np.maximum(n_spots, 1)

    # ---- all spots of the chunk as flat float32 arrays --------------------------------------
    rep = lambda a: np.repeat(np.asarray(a, dtype=_F32), n_spots)  # noqa: E731
    # beta t, with t ~ Gamma(alpha, 1/beta): one call per shower (a scalar shape samples ~2x
    # faster than an array of shapes)
    g = np.empty(int(n_spots.sum()), dtype=_F32)
    ends = np.cumsum(n_spots)
    for a_i, e_i, n_i in zip(alpha, ends, n_spots):
        rng.standard_gamma(a_i, size=int(n_i), dtype=_F32, out=g[e_i - n_i:e_i])
    tau = g * rep(1.0 / (alpha - 1.0))                       # t / T = beta t / (alpha - 1)
    t = tau * rep(T)                                         # depth in X0
    lnE = np.log(E)
    Z = cfg.Z
    # the radial parameters of `radial_parameters`, in float32 and per spot
    R_C = rep(C1 + C2 * lnE) + _F32(C3 + C4 * Z) * tau
    dt = tau - _F32(K2)
    R_T = np.exp(_F32(K3) * dt)
    R_T += np.exp(rep(K4a + K4b * lnE) * dt)
    R_T *= _F32(K1a + K1b * Z)
    w = (_F32(P2a + P2b * Z) - tau) * rep(1.0 / (P3a + P3b * lnE))
    del dt, tau
    p = np.exp(w - np.exp(w))
    p *= _F32(P1a + P1b * Z)
    np.clip(p, 0.0, 1.0, out=p)   # a probability (p1/e < 1 already; the clip is a guard)
    del w
    u = rng.random(p.shape[0], dtype=_F32)
    core = u < p
    with np.errstate(divide="ignore", invalid="ignore"):
        # u < p: u/p ~ U(0,1) (core);  u >= p: (u-p)/(1-p) ~ U(0,1) (tail).
        v = np.where(core, u / p, (u - p) / (1 - p))
    np.clip(v, 0.0, _F32(0.99999), out=v)  # float32 rounding could give 1 (infinite radius)
    radius = np.where(core, R_C, R_T)
    del u, p, core, R_C, R_T
    radius *= np.sqrt(v / (1 - v))
    radius *= _F32(cfg.moliere_radius_mm)
    del v
    phi = rng.random(radius.shape[0], dtype=_F32) * _F32(2 * np.pi)
    x = radius * np.cos(phi)
    y = radius * np.sin(phi)
    del radius, phi
    if cfg.impact_jitter_mm > 0:
        x += rep(impact[:, 0])
        y += rep(impact[:, 1])
    # float shower numbers for the flat cell index (float32 is exact below 2^24 cells)
    ft = _F32 if n * max(cfg.n_cells ** 2 * cfg.n_layers, cfg.hcal_n_cells ** 2 * cfg.hcal_n_layers) < 2 ** 24 \
        else np.float64
    shower = np.repeat(np.arange(n, dtype=ft), n_spots)

    # per-shower visible-energy model (module docstring, item 5)
    def readout(stochastic, fsamp):
        kappa = E / (stochastic ** 2 * n_spots) if stochastic > 0 else None
        scale = fsamp * stochastic ** 2
        mean_per_spot = fsamp * E / n_spots
        return kappa, scale, mean_per_spot

    # ---- ECAL ------------------------------------------------------------------------------
    nc, nl = cfg.n_cells, cfg.n_layers
    ncell = nc * nc * nl
    layer_f = t * _F32(1.0 / cfg.layer_depth_x0)
    flat = _flat_cell_index(shower, x, y, layer_f, cfg.cell_size_mm, nc, nl, n * ncell)
    counts = np.bincount(flat, minlength=n * ncell + 1)[: n * ncell]
    del flat
    kappa, scale, mps = readout(cfg.stochastic_term, cfg.sampling_fraction)
    ecal = _visible(rng, counts, kappa, scale, mps, ncell)
    del counts
    if cfg.noise_mev > 0:
        ecal += rng.standard_normal(ecal.shape[0], dtype=_F32) * _F32(cfg.noise_mev * 1e-3)
    ecal = ecal.reshape(n, nc, nc, nl)

    # ---- HCAL ------------------------------------------------------------------------------
    hcal = None
    if cfg.hcal:
        back = layer_f >= nl
        hn, hl = cfg.hcal_n_cells, cfg.hcal_n_layers
        hcell = hn * hn * hl
        hlayer = (t[back] - _F32(cfg.ecal_depth_x0)) * _F32(1.0 / cfg.hcal_layer_depth_x0)
        flat = _flat_cell_index(shower[back], x[back], y[back], hlayer, cfg.hcal_cell_size_mm,
                                hn, hl, n * hcell)
        counts = np.bincount(flat, minlength=n * hcell + 1)[: n * hcell]
        kappa, scale, mps = readout(cfg.hcal_stochastic_term, cfg.hcal_sampling_fraction)
        hcal = _visible(rng, counts, kappa, scale, mps, hcell)
        if cfg.hcal_noise_mev > 0:
            hcal += rng.standard_normal(hcal.shape[0], dtype=_F32) * _F32(cfg.hcal_noise_mev * 1e-3)
        hcal = hcal.reshape(n, hn, hn, hl)
    return dict(energies=E, ecal=ecal, hcal=hcal, T=T, alpha=alpha, n_spots=n_spots, impact=impact)


def simulate(config: CalorimeterConfig, n_showers: int, seed: int = 0, *, stream: int = 0,
             chunk_size: int = DEFAULT_CHUNK_SIZE, n_threads: Optional[int] = None,
             progress: bool = False) -> Showers:
    """Simulate `n_showers` electron showers (no cache).

    seed, stream: chunk c draws from SeedSequence(seed, spawn_key=(stream, c)); different
    streams of one seed are independent (the task uses stream 0 for training, 1 for testing).
    chunk_size: showers per vectorized chunk (part of the random stream: keep it fixed to
    reproduce a sample).  n_threads: worker threads (default: CPU count, at most 8); the output
    does not depend on it.  progress: a tqdm bar over chunks.
    """
    if not isinstance(config, CalorimeterConfig):
        raise TypeError(f"config: expected a CalorimeterConfig, got {type(config).__name__}")
    for name, value in (("n_showers", n_showers), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    for name, value in (("seed", seed), ("stream", stream)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    n_showers, chunk_size = int(n_showers), int(chunk_size)
    n_chunks = -(-n_showers // chunk_size)
    if n_threads is None:
        n_threads = min(os.cpu_count() or 1, 8)
    n_threads = max(1, min(int(n_threads), n_chunks))

    cfg = config
    energies = np.empty(n_showers)
    ecal = np.empty((n_showers,) + cfg.ecal_shape, dtype=_F32)
    hcal = np.empty((n_showers,) + cfg.hcal_shape, dtype=_F32) if cfg.hcal else None
    T = np.empty(n_showers)
    alpha = np.empty(n_showers)
    n_spots = np.empty(n_showers, dtype=np.int64)
    impact = np.empty((n_showers, 2))

    def work(c):
        start = c * chunk_size
        stop = min(start + chunk_size, n_showers)
        ss = np.random.SeedSequence(int(seed), spawn_key=(int(stream), c))
        res = _simulate_chunk(cfg, ss, stop - start)
        energies[start:stop] = res["energies"]
        ecal[start:stop] = res["ecal"]
        if hcal is not None:
            hcal[start:stop] = res["hcal"]
        T[start:stop] = res["T"]
        alpha[start:stop] = res["alpha"]
        n_spots[start:stop] = res["n_spots"]
        impact[start:stop] = res["impact"]

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
    return Showers(energies=energies, ecal=ecal, hcal=hcal, T=T, alpha=alpha,
                   n_spots=n_spots, impact=impact, config=cfg)


# ----------------------------------------------------------------------------------------------
# Disk cache
# ----------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """$NTKUQ_CACHE_DIR, else $XDG_CACHE_HOME/ntkuq, else ~/.cache/ntkuq."""
    env = os.environ.get("NTKUQ_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ntkuq"


def cache_key(config: CalorimeterConfig, n_showers: int, seed: int, stream: int = 0,
              chunk_size: int = DEFAULT_CHUNK_SIZE) -> str:
    """SHA256 over every config field, n_showers, seed, stream, chunk_size and CODE_VERSION."""
    payload = dict(config=dataclasses.asdict(config), n_showers=int(n_showers), seed=int(seed),
                   stream=int(stream), chunk_size=int(chunk_size), version=CODE_VERSION)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


_ARRAYS = ("energies", "ecal", "hcal", "T", "alpha", "n_spots", "impact")


def _read_cache(path: Path, config: CalorimeterConfig, n: int) -> Optional[Showers]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in _ARRAYS if k in f.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    expect = dict(energies=(n,), ecal=(n,) + config.ecal_shape, T=(n,), alpha=(n,),
                  n_spots=(n,), impact=(n, 2))
    if config.hcal:
        expect["hcal"] = (n,) + config.hcal_shape
    if any(k not in arrays or arrays[k].shape != s for k, s in expect.items()):
        return None
    return Showers(hcal=arrays.get("hcal") if config.hcal else None, config=config,
                   **{k: arrays[k] for k in _ARRAYS if k != "hcal"})


def _write_cache(path: Path, showers: Showers) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: getattr(showers, k) for k in _ARRAYS if getattr(showers, k) is not None}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)  # atomic: readers see the old file or the complete new one
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_calorimeter(n_showers: int, config: Optional[CalorimeterConfig] = None, seed: int = 0,
                     cache_dir=None, *, stream: int = 0, progress: bool = False,
                     use_cache: bool = True) -> Showers:
    """`simulate(config, n_showers, seed, stream=stream)`, cached on disk as an .npz (no pickle).

    The file is ``<cache_dir>/calorimeter/<cache_key>.npz`` (cache_dir defaults to
    ``default_cache_dir()``); it is written atomically (temp file + os.replace) and recomputed
    if unreadable or of the wrong shape.
    """
    config = CalorimeterConfig() if config is None else config
    if not use_cache:
        return simulate(config, n_showers, seed, stream=stream, progress=progress)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = root / "calorimeter" / f"{cache_key(config, n_showers, seed, stream)}.npz"
    if path.exists():
        cached = _read_cache(path, config, int(n_showers))
        if cached is not None:
            return cached
    showers = simulate(config, n_showers, seed, stream=stream, progress=progress)
    _write_cache(path, showers)
    return showers


# ----------------------------------------------------------------------------------------------
# The regression task
# ----------------------------------------------------------------------------------------------


_BLOCK = 1024  # rows per block when building features (bounds the temporaries)


def cell_features(showers: Showers, scale_mev: float = 1.0, include_hcal: bool = True,
                  dtype=np.float32) -> np.ndarray:
    """Flattened cells (ECAL, then HCAL if present), signed-log transformed:
    x = sign(E) log1p(|E| / scale_mev), E the visible cell energy in MeV (noise makes a few
    cells negative; the sign keeps the noise symmetric).  Returns (N, n_features) of `dtype`.
    """
    n = len(showers)
    parts = [showers.ecal.reshape(n, -1)]
    if include_hcal and showers.hcal is not None:
        parts.append(showers.hcal.reshape(n, -1))
    widths = [q.shape[1] for q in parts]
    out = np.empty((n, sum(widths)), dtype=dtype)
    f = 1e3 / scale_mev
    for s in range(0, n, _BLOCK):
        col = 0
        for q, w in zip(parts, widths):
            e = q[s:s + _BLOCK].astype(np.float64) * f
            out[s:s + _BLOCK, col:col + w] = np.sign(e) * np.log1p(np.abs(e))
            col += w
    return out


def _column_mean_std(x: np.ndarray):
    """Per-column mean and (population) std in float64, two passes over row blocks."""
    n = x.shape[0]
    mean = np.zeros(x.shape[1])
    for s in range(0, n, _BLOCK):
        mean += x[s:s + _BLOCK].sum(axis=0, dtype=np.float64)
    mean /= n
    var = np.zeros(x.shape[1])
    for s in range(0, n, _BLOCK):
        var += ((x[s:s + _BLOCK] - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(var / n)


def _standardize_(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    for s in range(0, x.shape[0], _BLOCK):
        x[s:s + _BLOCK] = (x[s:s + _BLOCK] - mean) / std
    return x


def calorimeter_task(n_train_pool: int, n_test: int, config: Optional[CalorimeterConfig] = None,
                     seed: int = 0, *, cache_dir=None, use_cache: bool = True,
                     feature_scale_mev: float = 1.0, include_hcal: bool = True,
                     normalization: str = "global", dtype=np.float32, progress: bool = False):
    """The energy-regression task: (x_train, y_train, x_test, y_test, info).

    Inputs: `cell_features` (signed log1p of the visible cell energy over feature_scale_mev,
    all cells flattened, ECAL then HCAL when config.hcal and include_hcal), then normalized with
    training-pool statistics: 'global' divides every feature by one number, the pool's root mean
    square feature (so |x|^2 / n_0 is about 1 and noise-only cells stay near 0: the kernels see the
    shower, not the noise); 'feature' standardizes each feature by its mean and standard deviation
    (features that never vary keep std 1), which blows the noise of empty outer cells up to unit
    variance.  Targets: the true energy standardized with the pool's mean and std, shape
    (N, 1).  Arrays are `dtype` (float32 by default: 25,000 showers x 15,625 cells is 1.6 GB).
    The pool is stream 0 of `seed`, the test set stream 1 (both via `load_calorimeter`, cached
    unless use_cache=False), so the test set does not change with n_train_pool.
    info: y_mean, y_std (GeV), x_mean, x_std (per feature), energies_train/test (GeV),
    calibrated_train/test (visible sum / sampling fraction, GeV), config, seed, feature_scale_mev,
    feature_transform (a description), ecal_shape, hcal_shape (or None).
    """
    config = CalorimeterConfig() if config is None else config
    if isinstance(n_train_pool, bool) or not isinstance(n_train_pool, (int, np.integer)) or n_train_pool < 2:
        raise ValueError(f"n_train_pool: expected an integer >= 2, got {n_train_pool!r}")
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)) or n_test < 1:
        raise ValueError(f"n_test: expected a positive integer, got {n_test!r}")
    if (isinstance(feature_scale_mev, bool) or not isinstance(feature_scale_mev, (int, float))
            or not feature_scale_mev > 0):
        raise ValueError(f"feature_scale_mev: expected a positive number, got {feature_scale_mev!r}")
    kw = dict(cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    train = load_calorimeter(int(n_train_pool), config, seed, stream=0, **kw)
    test = load_calorimeter(int(n_test), config, seed, stream=1, **kw)

    if normalization not in ("global", "feature"):
        raise ValueError(f"normalization: expected 'global' or 'feature', got {normalization!r}")
    x_train = cell_features(train, feature_scale_mev, include_hcal, dtype=dtype)
    x_mean, x_std = _column_mean_std(x_train)
    x_std = np.where(x_std > 0, x_std, 1.0)
    if normalization == "global":
        rms = float(np.sqrt(np.mean(np.square(x_train, dtype=np.float64))))
        x_mean, x_std = np.zeros_like(x_mean), np.full_like(x_std, rms if rms > 0 else 1.0)
    x_train = _standardize_(x_train, x_mean, x_std)
    x_test = _standardize_(cell_features(test, feature_scale_mev, include_hcal, dtype=dtype),
                           x_mean, x_std)

    y_mean, y_std = float(train.energies.mean()), float(train.energies.std())
    y_train = ((train.energies - y_mean) / y_std)[:, None].astype(dtype)
    y_test = ((test.energies - y_mean) / y_std)[:, None].astype(dtype)
    info = dict(
        y_mean=y_mean, y_std=y_std, x_mean=x_mean, x_std=x_std,
        energies_train=train.energies, energies_test=test.energies,
        calibrated_train=train.calibrated_energy(include_hcal),
        calibrated_test=test.calibrated_energy(include_hcal),
        config=config, seed=seed, feature_scale_mev=float(feature_scale_mev),
        normalization=normalization,
        feature_transform=("x = sign(E) log1p(|E| / feature_scale_mev), E visible cell energy in MeV; then "
                           + ("divided by the training pool's root mean square feature" if normalization == "global"
                              else "(x - x_mean) / x_std per feature (training pool)")),
        ecal_shape=config.ecal_shape,
        hcal_shape=config.hcal_shape if (config.hcal and include_hcal) else None,
    )
    return x_train, y_train, x_test, y_test, info


# ----------------------------------------------------------------------------------------------
# Physics helpers
# ----------------------------------------------------------------------------------------------


def longitudinal_profile(showers: Showers, normalize: bool = True):
    """(depths, profile): layer-centre depths in X0 (n_layers,) and the ECAL energy per layer
    (N, n_layers), as a fraction of each shower's ECAL total if `normalize`, else visible GeV."""
    cfg = showers.config
    prof = showers.ecal.sum(axis=(1, 2), dtype=np.float64)
    if normalize:
        prof = prof / prof.sum(axis=1, keepdims=True)
    depths = (np.arange(cfg.n_layers) + 0.5) * cfg.layer_depth_x0
    return depths, prof


def shower_max_depth(showers: Showers) -> np.ndarray:
    """(N,) depth of the maximum of each shower's layer profile, in X0: the layer with the most
    energy refined by a parabola through it and its two neighbours (unrefined at the ECAL edges)."""
    cfg = showers.config
    _, prof = longitudinal_profile(showers, normalize=False)
    n, L = prof.shape
    i = np.argmax(prof, axis=1)
    depth = i + 0.5
    inner = (i > 0) & (i < L - 1)
    j = i[inner]
    rows = np.flatnonzero(inner)
    ym, y0, yp = prof[rows, j - 1], prof[rows, j], prof[rows, j + 1]
    den = ym - 2 * y0 + yp
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(den < 0, 0.5 * (ym - yp) / den, 0.0)
    depth[inner] += np.clip(delta, -0.5, 0.5)
    return depth * cfg.layer_depth_x0


def _cell_centres(cfg: CalorimeterConfig) -> np.ndarray:
    return (np.arange(cfg.n_cells) - (cfg.n_cells - 1) / 2.0) * cfg.cell_size_mm


def radial_profile(showers: Showers, bin_edges_mm=None, normalize: bool = True):
    """(edges, profile): ECAL energy (summed over layers) in rings around each shower's impact
    point, cells assigned by the distance of their centre; profile (N, n_bins) as a fraction of
    the shower's ECAL total if `normalize`.  Default edges: 0, 0.5, 1, ..., 6 R_M."""
    cfg = showers.config
    if bin_edges_mm is None:
        bin_edges_mm = np.arange(0.0, 6.01, 0.5) * cfg.moliere_radius_mm
    edges = np.asarray(bin_edges_mm, dtype=float)
    c = _cell_centres(cfg)
    maps = showers.ecal.sum(axis=3, dtype=np.float64)  # (N, nx, ny)
    n = len(showers)
    dx = c[None, :, None] - showers.impact[:, 0, None, None]
    dy = c[None, None, :] - showers.impact[:, 1, None, None]
    r = np.sqrt(dx ** 2 + dy ** 2)
    b = np.digitize(r, edges) - 1  # bin per cell; -1 / len(edges)-1 are outside
    nb = len(edges) - 1
    ok = (b >= 0) & (b < nb)
    idx = np.where(ok, b + nb * np.arange(n)[:, None, None], n * nb)
    prof = np.bincount(idx.ravel(), weights=maps.ravel(), minlength=n * nb + 1)[: n * nb].reshape(n, nb)
    if normalize:
        prof = prof / maps.sum(axis=(1, 2))[:, None]
    return edges, prof


def _circle_cell_overlap(cx, cy, radius, centres, size, n_sub=64):
    """(N, nx, ny) fraction of each square cell's area inside the circle of `radius` around
    (cx, cy), by midpoint quadrature over x of the exact chord length."""
    h = size / 2.0
    xs = (np.arange(n_sub) + 0.5) / n_sub * size - h  # sub-columns inside a cell
    X = centres[:, None] + xs[None, :] - cx[:, None, None]  # (N, nx, n_sub)
    half = np.sqrt(np.maximum(radius ** 2 - X ** 2, 0.0))   # half chord at each x
    lo = centres[None, :] - h - cy[:, None]                 # (N, ny) row edges, relative
    hi = lo + size
    seg = (np.minimum(hi[:, None, None, :], half[..., None])
           - np.maximum(lo[:, None, None, :], -half[..., None]))
    return np.clip(seg, 0.0, None).mean(axis=2) / size        # (N, nx, ny)


def containment_fraction(showers: Showers, radius_mm: float) -> np.ndarray:
    """(N,) fraction of each shower's ECAL energy within `radius_mm` of its axis.

    Each cell (layers summed) counts with the fraction of its area inside the circle, which is
    exact if the energy is uniform across a cell; the denominator is the whole ECAL.
    """
    cfg = showers.config
    maps = showers.ecal.sum(axis=3, dtype=np.float64)
    c = _cell_centres(cfg)
    total = maps.sum(axis=(1, 2))
    imp = showers.impact
    if len(showers) and np.all(imp == imp[:1]):  # one impact point (no jitter): one weight map
        w = _circle_cell_overlap(imp[:1, 0], imp[:1, 1], float(radius_mm), c, cfg.cell_size_mm)
        return (maps * w).sum(axis=(1, 2)) / total
    out = np.empty(len(showers))
    step = 256
    for s in range(0, len(showers), step):
        w = _circle_cell_overlap(imp[s:s + step, 0], imp[s:s + step, 1], float(radius_mm), c,
                                 cfg.cell_size_mm)
        out[s:s + step] = (w * maps[s:s + step]).sum(axis=(1, 2)) / total[s:s + step]
    return out


def expected_containment(showers: Showers, radius_mm: float, n_t: int = 256) -> np.ndarray:
    """(N,) the analytic containment within `radius_mm`: the radial CDF at r = radius / R_M,
    averaged over each shower's spot-depth distribution Gamma(alpha, 1/beta) restricted to the
    ECAL depth (midpoint rule on n_t depths).  Lateral leakage and noise are ignored."""
    cfg = showers.config
    from scipy.special import gammaln
    depth = cfg.ecal_depth_x0
    t = (np.arange(n_t) + 0.5) / n_t * depth                 # (n_t,)
    T, alpha, E = showers.T[:, None], showers.alpha[:, None], showers.energies[:, None]
    beta = (alpha - 1.0) / T
    logpdf = (alpha - 1) * np.log(beta * t) + np.log(beta) - beta * t - gammaln(alpha)
    wgt = np.exp(logpdf)
    cdf = radial_cdf(radius_mm / cfg.moliere_radius_mm, t[None, :] / T, E, cfg.Z)
    return (wgt * cdf).sum(axis=1) / wgt.sum(axis=1)


def fit_resolution(energies, deposits, n_bins: int = 10):
    """Fit sigma/E = a / sqrt(E) (+) b (quadrature sum) to the response spread in energy bins.

    The response deposit/E is computed per shower (any calibration constant cancels); in each
    of `n_bins` equal-count bins of true energy, sigma/E is its standard deviation over its mean,
    with error sigma/E / sqrt(2 (n - 1)); a weighted least-squares fit of sqrt(a^2/E + b^2) at
    each bin's mean E gives (a, b, cov), a in GeV^1/2, cov the 2 x 2 covariance of (a, b)
    (a, b >= 0; cov has inf entries when b sits at 0).
    """
    from scipy.optimize import OptimizeWarning, curve_fit
    E = np.asarray(energies, dtype=float)
    d = np.asarray(deposits, dtype=float)
    if E.shape != d.shape or E.ndim != 1:
        raise ValueError(f"energies, deposits: expected two 1-d arrays of one length, got {E.shape}, {d.shape}")
    if n_bins < 2 or E.size < 10 * n_bins:
        raise ValueError(f"n_bins: need n_bins >= 2 and >= 10 showers per bin, got {n_bins} for {E.size}")
    order = np.argsort(E)
    Em, res, err = [], [], []
    for idx in np.array_split(order, n_bins):
        r = d[idx] / E[idx]
        s = r.std(ddof=1) / r.mean()
        Em.append(E[idx].mean())
        res.append(s)
        err.append(s / np.sqrt(2.0 * (idx.size - 1)))
    Em, res, err = map(np.asarray, (Em, res, err))

    def model(e, a, b):
        return np.sqrt(a ** 2 / e + b ** 2)

    p0 = (max(res[0] * np.sqrt(Em[0]), 1e-3), max(res[-1] / 2, 1e-4))
    with warnings.catch_warnings():
        # b at its bound 0 makes the covariance singular: curve_fit then returns inf entries
        warnings.simplefilter("ignore", OptimizeWarning)
        (a, b), cov = curve_fit(model, Em, res, p0=p0, sigma=err, absolute_sigma=True,
                                bounds=([0.0, 0.0], [np.inf, np.inf]), max_nfev=10000)
    return float(a), float(b), cov


__all__ = [
    "CODE_VERSION", "CalorimeterConfig", "Showers", "simulate", "load_calorimeter",
    "calorimeter_task", "cell_features", "default_cache_dir", "cache_key",
    "longitudinal_parameters", "sample_shower_parameters", "average_shower_max",
    "radial_parameters", "radial_cdf",
    "longitudinal_profile", "radial_profile", "shower_max_depth", "containment_fraction",
    "expected_containment", "fit_resolution",
]

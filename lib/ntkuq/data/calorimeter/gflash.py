"""The GFlash parametrization of electromagnetic showers: plain functions of arrays (E in GeV).

From G. Grindhammer and S. Peters, "The parameterized simulation of electromagnetic showers in
homogeneous and sampling calorimeters", hep-ex/0001020 (Proc. Int. Conf. on Monte Carlo Simulation
in High Energy and Nuclear Physics, Tallahassee 1993), with the coefficients derived in the book's
chapter "A simulated calorimeter" (book/calorimeter.md, section "The shower model").  They agree with
Geant4's ``GFlashHomoShowerParameterisation`` defaults except k4's ln E slope, for which the chapter
(after the paper) gives 0.0421 and Geant4's tuning class 0.0412 (0.0421 is used here; the difference
changes R_T by at most ~1 % for tau <= 3 at 100 GeV).

Notation: E the electron energy in GeV, y = E / E_c, Z the effective atomic number, t the depth
in radiation lengths X0, r the radius in Moliere radii R_M.  These are GFlash's own letters, kept here so
that the code reads like the paper; the book, where T, t, alpha and beta already mean the number of
training steps, the flow time and the exponents of mu_L and sigma_L, writes T_max, zeta, alpha_Gamma and
beta_Gamma for the shower maximum, the depth and the profile's shape and rate (its notation page).

1. Longitudinal profile. (ln T, ln alpha) is bivariate normal with

       <ln T>     = ln(ln y - 0.812),                 sigma(ln T)     = 1 / (-1.4 + 1.26 ln y)
       <ln alpha> = ln(0.81 + (0.458 + 2.26/Z) ln y), sigma(ln alpha) = 1 / (-0.58 + 0.86 ln y)
       corr(ln T, ln alpha) = 0.705 - 0.023 ln y

   and dE/dt = E (beta t)^(alpha-1) beta exp(-beta t) / Gamma(alpha), beta = (alpha - 1) / T,
   so T is the depth of the maximum (average profile: T = ln y - 0.858).
2. Spots: a shower's energy is carried by N_spot spots, on average 93 ln(Z) E^0.876.
3. Radial profile at tau = t / T (T of this shower):

       f(r) = p 2 r R_C^2/(r^2 + R_C^2)^2 + (1 - p) 2 r R_T^2/(r^2 + R_T^2)^2,
       R_C = z1 + z2 tau,  z1 = 0.0251 + 0.00319 ln E,  z2 = 0.1162 - 0.000381 Z,
       R_T = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2))),
             k1 = 0.659 - 0.00309 Z, k2 = 0.645, k3 = -2.59, k4 = 0.3585 + 0.0421 ln E,
       p   = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3)),
             p1 = 2.632 - 0.00094 Z, p2 = 0.401 + 0.00187 Z, p3 = 1.313 - 0.0686 ln E.

   Each component has CDF r^2/(r^2 + R^2), so a radius is sampled exactly by choosing the core
   with probability p and inverting: r = R sqrt(u/(1-u)), u uniform (`radius_from_uniform`).

The radial formulas are written once (`RadialCoefficients.at`) for any float type: the analytic
helpers evaluate them in float64, the simulator in float32 for millions of spots.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from ntkuq.data.calorimeter.config import CalorimeterConfig

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

_V_MAX = 0.99999
"""Largest uniform fed to r = R sqrt(v/(1-v)): float32 rounding could otherwise give v = 1 (infinite radius)."""


# ------------------------------------------------------------------------------------- longitudinal


def longitudinal_parameters(energy_gev, config: CalorimeterConfig) -> Dict[str, np.ndarray]:
    """Means, widths and correlation of (ln T, ln alpha) at the given energies.

    Args:
        energy_gev: electron energies E in GeV (any shape).
        config: gives E_c and Z.

    Returns:
        A dict of arrays of the shape of energy_gev: mean_lnT, sigma_lnT, mean_lnalpha,
        sigma_lnalpha, rho.
    """
    ly = np.log(np.asarray(energy_gev, dtype=float) / config.critical_energy_gev)
    return dict(
        mean_lnT=np.log(ly + T1),
        sigma_lnT=1.0 / (ST1 + ST2 * ly),
        mean_lnalpha=np.log(A1 + (A2 + A3 / config.Z) * ly),
        sigma_lnalpha=1.0 / (SA1 + SA2 * ly),
        rho=R1 + R2 * ly,
    )


def average_shower_max(energy_gev, config: CalorimeterConfig) -> np.ndarray:
    """Depth of the maximum of GFlash's *average* profile, T = ln y - 0.858 (in X0).

    Args:
        energy_gev: electron energies E in GeV (any shape).
        config: gives E_c.

    Returns:
        T in X0, of the shape of energy_gev.
    """
    return np.log(np.asarray(energy_gev, dtype=float) / config.critical_energy_gev) + T_AVG


def sample_shower_parameters(energy_gev, config: CalorimeterConfig,
                             rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Draw (T, alpha) per shower: (ln T, ln alpha) bivariate normal (`longitudinal_parameters`).

    Args:
        energy_gev: electron energies in GeV, one per shower.
        config: gives E_c and Z.
        rng: the generator; one standard normal pair is drawn per shower.

    Returns:
        (T, alpha) of the shape of energy_gev; alpha is floored at 1.05.
    """
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


def mean_spot_count(energy_gev, Z: float) -> np.ndarray:
    """The mean number of spots of a shower, 93 ln(Z) E^0.876.

    Args:
        energy_gev: electron energies E in GeV (any shape).
        Z: the effective atomic number.

    Returns:
        The mean spot counts, of the shape of energy_gev.
    """
    return NS1 * math.log(Z) * np.asarray(energy_gev, dtype=float) ** NS2


# ------------------------------------------------------------------------------------------- radial


@dataclass(frozen=True)
class RadialCoefficients:
    """The coefficients of the radial profile (module docstring, item 3), in one float type.

    core0 = z1, k4 and inv_p3 = 1/p3 depend on the energy (arrays of the energies' shape);
    core1 = z2, k1, p1 and p2 depend on Z only (scalars).  `radial_coefficients` computes them in
    float64 and rounds each to `dtype` once, so the formulas of `at` then run in that type.

    Attributes:
        dtype: the float type (a NumPy scalar type) of every coefficient.
        core0: z1 = 0.0251 + 0.00319 ln E (per energy).
        k4: 0.3585 + 0.0421 ln E (per energy).
        inv_p3: 1 / p3 = 1 / (1.313 - 0.0686 ln E) (per energy).
        core1: z2 = 0.1162 - 0.000381 Z.
        k1: 0.659 - 0.00309 Z.
        p1: 2.632 - 0.00094 Z.
        p2: 0.401 + 0.00187 Z.
    """

    dtype: type
    core0: np.ndarray
    k4: np.ndarray
    inv_p3: np.ndarray
    core1: np.number
    k1: np.number
    p1: np.number
    p2: np.number

    def repeat(self, counts) -> "RadialCoefficients":
        """The energy-dependent coefficients repeated counts[i] times each (one row per spot).

        Args:
            counts: the number of repetitions of each energy's coefficients (e.g. spots per shower).

        Returns:
            The repeated `RadialCoefficients` (the Z-only ones unchanged).
        """
        rep = lambda a: np.repeat(a, counts)  # noqa: E731
        return RadialCoefficients(self.dtype, rep(self.core0), rep(self.k4), rep(self.inv_p3),
                                  self.core1, self.k1, self.p1, self.p2)

    def at(self, tau) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R_C, R_T, p) at tau = t/T (broadcast against the coefficients).

        Args:
            tau: the depths t / T, converted to `dtype`.

        Returns:
            (R_C, R_T, p): radii in Moliere radii, p clipped to [0, 1]; all in `dtype`.
        """
        ft = self.dtype
        tau = np.asarray(tau, dtype=ft)
        dt = tau - ft(K2)
        R_C = self.core0 + self.core1 * tau
        R_T = (np.exp(ft(K3) * dt) + np.exp(self.k4 * dt)) * self.k1
        w = (self.p2 - tau) * self.inv_p3
        # p1 * max(exp(w - e^w)) = p1/e < 1 for all Z >= 1, but clip anyway: p is a probability.
        p = np.clip(np.exp(w - np.exp(w)) * self.p1, 0.0, 1.0)
        return R_C, R_T, p


def radial_coefficients(energy_gev, Z: float, dtype=np.float64) -> RadialCoefficients:
    """The radial profile's coefficients at the given energies (GeV) and Z, rounded to `dtype`.

    Args:
        energy_gev: electron energies E in GeV (any shape).
        Z: the effective atomic number.
        dtype: the float type of the coefficients (default float64).

    Returns:
        The `RadialCoefficients`, computed in float64 and rounded once to `dtype`.
    """
    ft = np.dtype(dtype).type
    lnE = np.log(np.asarray(energy_gev, dtype=float))
    arr = lambda a: np.asarray(a, dtype=ft)  # noqa: E731
    return RadialCoefficients(ft, arr(C1 + C2 * lnE), arr(K4a + K4b * lnE), arr(1.0 / (P3a + P3b * lnE)),
                              ft(C3 + C4 * Z), ft(K1a + K1b * Z), ft(P1a + P1b * Z), ft(P2a + P2b * Z))


def radial_parameters(tau, energy_gev, Z) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R_C, R_T, p) of the radial profile at tau = t/T in float64.

    Args:
        tau: the depths t / T; broadcast against energy_gev.
        energy_gev: electron energies E in GeV.
        Z: the effective atomic number.

    Returns:
        (R_C, R_T, p): radii in Moliere radii; p clipped to [0, 1].
    """
    return radial_coefficients(energy_gev, Z).at(tau)


def radial_cdf(r_moliere, tau, energy_gev, Z) -> np.ndarray:
    """Fraction of a spot's energy within r (Moliere radii) at depth tau: the CDF of f(r).

    Args:
        r_moliere: the radius r in Moliere radii.
        tau: the depth t / T.
        energy_gev: electron energies E in GeV.
        Z: the effective atomic number.

    Returns:
        The CDF at r (the arguments broadcast against each other), in float64.
    """
    R_C, R_T, p = radial_parameters(tau, energy_gev, Z)
    r2 = np.asarray(r_moliere, dtype=float) ** 2
    return p * r2 / (r2 + R_C ** 2) + (1.0 - p) * r2 / (r2 + R_T ** 2)


def radius_from_uniform(u: np.ndarray, R_C: np.ndarray, R_T: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Radii (Moliere radii) distributed as f(r), one per uniform u in [0, 1), by exact inversion.

    One uniform does both jobs: u < p picks the core, and then u/p is again uniform; otherwise
    (u - p)/(1 - p) is, for the tail.  The component's CDF r^2/(r^2 + R^2) is inverted at that
    uniform v: r = R sqrt(v/(1 - v)), with v capped just below 1.  Computed in the type of u.

    Args:
        u: uniforms in [0, 1) (a float array; its type is the result's).
        R_C: the core radii, in Moliere radii.
        R_T: the tail radii, in Moliere radii.
        p: the probabilities of the core.

    Returns:
        The radii in Moliere radii, one per uniform.
    """
    core = u < p
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(core, u / p, (u - p) / (1 - p))
    np.clip(v, 0.0, u.dtype.type(_V_MAX), out=v)
    return np.where(core, R_C, R_T) * np.sqrt(v / (1 - v))


__all__ = ["RadialCoefficients", "T_AVG", "average_shower_max", "longitudinal_parameters", "mean_spot_count",
           "radial_cdf", "radial_coefficients", "radial_parameters", "radius_from_uniform",
           "sample_shower_parameters"]

"""Physics checks of simulated showers: layer and ring profiles, shower maximum, containment, resolution.

Each takes `Showers` and measures the ECAL; `expected_containment` is the GFlash prediction that
`containment_fraction` is compared with (the data chapter's "Containment" section).
"""
from __future__ import annotations

import warnings
from typing import Tuple

import numpy as np

from ntkuq.data.calorimeter.config import Section
from ntkuq.data.calorimeter.gflash import radial_cdf
from ntkuq.data.calorimeter.simulator import Showers


def longitudinal_profile(showers: Showers, normalize: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The ECAL energy per layer of each shower, and the layers' depths.

    Args:
        showers: the simulated showers.
        normalize: True (default) gives each layer's fraction of the shower's ECAL total, False visible GeV.

    Returns:
        (depths, profile): layer-centre depths in X0 (n_layers,) and the ECAL energy per layer
        (N, n_layers), as a fraction of each shower's ECAL total if `normalize`, else visible GeV.
    """
    ecal = showers.config.ecal
    prof = showers.ecal.sum(axis=(1, 2), dtype=np.float64)
    if normalize:
        prof = prof / prof.sum(axis=1, keepdims=True)
    depths = (np.arange(ecal.n_layers) + 0.5) * ecal.layer_depth_x0
    return depths, prof


def shower_max_depth(showers: Showers) -> np.ndarray:
    """Depth of the maximum of each shower's layer profile, in X0.

    The layer with the most energy, refined by a parabola through it and its two neighbours (unrefined
    at the ECAL edges).

    Args:
        showers: the simulated showers.

    Returns:
        (N,) the depths of the maxima in X0.
    """
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
    return depth * showers.config.ecal.layer_depth_x0


def _cell_centres(ecal: Section) -> np.ndarray:
    """Transverse cell-centre coordinates in mm (the same along x and y), the axis at 0."""
    return (np.arange(ecal.n_cells) - (ecal.n_cells - 1) / 2.0) * ecal.cell_size_mm


def radial_profile(showers: Showers, bin_edges_mm=None, normalize: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """ECAL energy (summed over layers) in rings around each shower's impact point.

    Cells are assigned to rings by the distance of their centre.

    Args:
        showers: the simulated showers.
        bin_edges_mm: the rings' edges in mm; None (default) for 0, 0.5, 1, ..., 6 R_M.
        normalize: True (default) gives each ring's fraction of the shower's ECAL total, False visible GeV.

    Returns:
        (edges, profile): the edges in mm and the profile (N, n_bins), as a fraction of the shower's
        ECAL total if `normalize`.
    """
    if bin_edges_mm is None:
        bin_edges_mm = np.arange(0.0, 6.01, 0.5) * showers.config.moliere_radius_mm
    edges = np.asarray(bin_edges_mm, dtype=float)
    c = _cell_centres(showers.config.ecal)
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


def _circle_cell_overlap(cx: np.ndarray, cy: np.ndarray, radius: float, centres: np.ndarray, size: float,
                         n_sub: int = 64) -> np.ndarray:
    """(N, nx, ny) fraction of each square cell's area inside the circle of `radius` around (cx, cy).

    Computed by midpoint quadrature over x of the exact chord length.
    """
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

    Args:
        showers: the simulated showers.
        radius_mm: the radius around each shower's impact point, in mm.

    Returns:
        (N,) the contained fractions.
    """
    size = showers.config.ecal.cell_size_mm
    maps = showers.ecal.sum(axis=3, dtype=np.float64)
    c = _cell_centres(showers.config.ecal)
    total = maps.sum(axis=(1, 2))
    imp = showers.impact
    if len(showers) and np.all(imp == imp[:1]):  # one impact point (no jitter): one weight map
        w = _circle_cell_overlap(imp[:1, 0], imp[:1, 1], float(radius_mm), c, size)
        return (maps * w).sum(axis=(1, 2)) / total
    out = np.empty(len(showers))
    step = 256
    for s in range(0, len(showers), step):
        w = _circle_cell_overlap(imp[s:s + step, 0], imp[s:s + step, 1], float(radius_mm), c, size)
        out[s:s + step] = (w * maps[s:s + step]).sum(axis=(1, 2)) / total[s:s + step]
    return out


def expected_containment(showers: Showers, radius_mm: float, n_t: int = 256) -> np.ndarray:
    """(N,) the analytic containment within `radius_mm` (the GFlash prediction).

    The radial CDF at r = radius / R_M, averaged over each shower's spot-depth distribution
    Gamma(alpha, 1/beta) restricted to the ECAL depth (midpoint rule on n_t depths).  Lateral leakage
    and noise are ignored.

    Args:
        showers: the simulated showers (their sampled T and alpha are used).
        radius_mm: the radius around the shower axis, in mm.
        n_t: the number of depths of the midpoint rule (default 256).

    Returns:
        (N,) the expected contained fractions.
    """
    cfg = showers.config
    from scipy.special import gammaln
    depth = cfg.ecal.depth_x0
    t = (np.arange(n_t) + 0.5) / n_t * depth                 # (n_t,)
    T, alpha, E = showers.T[:, None], showers.alpha[:, None], showers.energies[:, None]
    beta = (alpha - 1.0) / T
    logpdf = (alpha - 1) * np.log(beta * t) + np.log(beta) - beta * t - gammaln(alpha)
    wgt = np.exp(logpdf)
    cdf = radial_cdf(radius_mm / cfg.moliere_radius_mm, t[None, :] / T, E, cfg.Z)
    return (wgt * cdf).sum(axis=1) / wgt.sum(axis=1)


def fit_resolution(energies, deposits, n_bins: int = 10) -> Tuple[float, float, np.ndarray]:
    """Fit sigma/E = a / sqrt(E) (+) b (quadrature sum) to the response spread in energy bins.

    The response deposit/E is computed per shower (any calibration constant cancels); in each
    of `n_bins` equal-count bins of true energy, sigma/E is its standard deviation over its mean,
    with error sigma/E / sqrt(2 (n - 1)); a weighted least-squares fit of sqrt(a^2/E + b^2) at
    each bin's mean E gives (a, b, cov).

    Args:
        energies: (N,) the true energies in GeV.
        deposits: (N,) the measured energies (any calibration), one per shower.
        n_bins: the number of equal-count energy bins (>= 2, with >= 10 showers each; default 10).

    Returns:
        (a, b, cov): a in GeV^1/2, b, and cov the 2 x 2 covariance of (a, b) (a, b >= 0; cov has inf
        entries when b sits at 0).

    Raises:
        ValueError: if `energies` and `deposits` are not 1-d arrays of one length, or there are fewer
            than 2 bins or fewer than 10 showers per bin.
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


__all__ = ["containment_fraction", "expected_containment", "fit_resolution", "longitudinal_profile",
           "radial_profile", "shower_max_depth"]

"""Tests of the GFlash-style calorimeter simulation (ntkuq.data.calorimeter).

Physics tests compare the simulated cells with the formulas of Grindhammer & Peters
(hep-ex/0001020) as derived in the book's chapter "The three tasks" (book/data.md, "The shower
model"), typed here as literals so that a perturbed coefficient in the module makes a test fail.
"""
import math

import numpy as np
import pytest

from ntkuq.data import calorimeter as cal
from ntkuq.data.calorimeter import (
    DEFAULT_ECAL,
    DEFAULT_HCAL,
    CalorimeterConfig,
    Section,
    containment_fraction,
    expected_containment,
    fit_resolution,
    load_calorimeter,
    longitudinal_profile,
    radial_profile,
    shower_max_depth,
    simulate,
)

N_PHYS = 3000  # showers of the default 25 x 25 x 25 detector shared by the physics tests


@pytest.fixture(scope="module")
def showers():
    return simulate(CalorimeterConfig(), N_PHYS, seed=12345)


def _binned(x, y, n_bins=8):
    order = np.argsort(x)
    xs, ys, es = [], [], []
    for idx in np.array_split(order, n_bins):
        xs.append(x[idx].mean())
        ys.append(y[idx].mean())
        es.append(y[idx].std(ddof=1) / math.sqrt(idx.size))
    return np.array(xs), np.array(ys), np.array(es)


# ---- the physics ------------------------------------------------------------------------------

def test_shower_max_grows_like_log_energy(showers):
    """Depth of maximum measured from the layer profiles: slope ~1 X0 per unit ln E, and close
    to the average-profile formula T = ln(E/E_c) - 0.858."""
    tmax = shower_max_depth(showers)
    lnE, mean_tmax, err = _binned(np.log(showers.energies), tmax)
    slope, intercept = np.polyfit(lnE, mean_tmax, 1, w=1 / err)
    assert 0.85 < slope < 1.15, slope
    formula = lnE - math.log(8e-3) - 0.858
    offset = mean_tmax - formula
    # fluctuations make <T> = (ln y - 0.812) exp(sigma^2/2) ~ 0.12 X0 above the formula, and
    # the parabola on 1-X0 layers adds ~0.1 X0; a shift of 0.3 X0 in <ln T>'s constant fails.
    assert np.all(np.abs(offset) < 0.5), offset
    assert -0.1 < offset.mean() < 0.35, offset.mean()
    # the sampled T themselves follow <ln T> = ln(ln y - 0.812) with the paper's width
    ly = np.log(showers.energies / 8e-3)
    z = (np.log(showers.T) - np.log(ly - 0.812)) * (-1.4 + 1.26 * ly)
    assert abs(z.mean()) < 4 / math.sqrt(N_PHYS)
    assert abs(z.std() - 1) < 0.06


@pytest.mark.parametrize("energy", [10.0, 100.0])
def test_shower_parameter_distribution(energy):
    """(ln T, ln alpha) standardized with the paper's formulas are N(0, 1) with correlation
    0.705 - 0.023 ln y (400k draws: 10 % changes of any coefficient fail)."""
    n = 400_000
    T, alpha = cal.sample_shower_parameters(np.full(n, energy), CalorimeterConfig(),
                                            np.random.default_rng(11))
    ly = math.log(energy / 8e-3)
    zt = (np.log(T) - math.log(ly - 0.812)) * (-1.4 + 1.26 * ly)
    za = (np.log(alpha) - math.log(0.81 + (0.458 + 2.26 / 74) * ly)) * (-0.58 + 0.86 * ly)
    rho = 0.705 - 0.023 * ly
    for z in (zt, za):
        assert abs(z.mean()) < 4 / math.sqrt(n)
        assert abs(z.std() - 1) < 4 / math.sqrt(2 * n)
    assert abs(np.mean(zt * za) - rho) < 4 * (1 - rho ** 2) / math.sqrt(n)


def test_longitudinal_profile_matches_gamma(showers):
    """The mean layer profile follows the mean of each shower's Gamma(alpha, beta) integrated
    over the layers."""
    from scipy.stats import gamma
    cfg = showers.config
    depths, prof = longitudinal_profile(showers)
    edges = np.arange(cfg.n_layers + 1) * cfg.layer_depth_x0
    beta = (showers.alpha - 1) / showers.T
    cdf = gamma.cdf(edges[None, :], showers.alpha[:, None], scale=1 / beta[:, None])
    expect = np.diff(cdf, axis=1)
    expect /= expect.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(prof.mean(axis=0), expect.mean(axis=0), atol=2e-3)


def test_mean_deposit_proportional_to_energy(showers):
    E = showers.energies
    dep = showers.calibrated_energy()
    e, d, err = _binned(E, dep)
    slope, intercept = np.polyfit(e, d, 1, w=1 / err)
    assert 0.97 < slope <= 1.0, slope          # ~1 % leakage (back and sides)
    assert abs(intercept) < 0.3, intercept     # GeV
    resid = (d - (slope * e + intercept)) / d
    assert np.max(np.abs(resid)) < 0.01, resid  # ~0.4 %: back leakage grows like ln E


def test_resolution(showers):
    a, b, cov = fit_resolution(showers.energies, showers.calibrated_energy())
    assert 0.02 < a < 0.25
    # the per-spot Gamma fluctuations are designed to give a = stochastic_term exactly for a
    # contained shower; leakage fluctuations go mostly into b
    assert abs(a - showers.config.stochastic_term) < 0.02, (a, b)
    assert b < 0.02, b
    assert cov.shape == (2, 2)


def test_resolution_follows_stochastic_term():
    """At one energy, in a deep and wide ECAL without noise, sigma/E = stochastic_term/sqrt(E)."""
    E = 20.0
    cfg = CalorimeterConfig(energy_range=(E, E),
                            ecal=DEFAULT_ECAL.replace(stochastic_term=0.25, noise_mev=0.0, n_layers=40))
    s = simulate(cfg, 1500, seed=5)
    r = s.calibrated_energy() / E
    a = r.std(ddof=1) / r.mean() * math.sqrt(E)
    assert abs(a - 0.25) < 0.02, a  # statistical error ~0.005


def test_lateral_containment_one_moliere_radius(showers):
    cfg = showers.config
    sim = containment_fraction(showers, cfg.moliere_radius_mm).mean()
    ana = expected_containment(showers, cfg.moliere_radius_mm).mean()
    assert 0.85 < ana < 0.93, ana
    assert abs(sim - ana) < 0.015, (sim, ana)  # -0.006: the energy is not uniform in a cell
    sim2 = containment_fraction(showers, 2 * cfg.moliere_radius_mm).mean()
    ana2 = expected_containment(showers, 2 * cfg.moliere_radius_mm).mean()
    assert abs(sim2 - ana2) < 0.01, (sim2, ana2)


def test_radial_sampling_matches_analytic_profile_fine_cells():
    """With 1.5 mm cells the cell-size bias is gone: the simulated containment within 1 and 2 R_M,
    relative to that within 4 R_M, matches the analytic radial CDF to a few per mille (a 10 %
    change of most radial coefficients in the sampler alone moves it by more)."""
    cfg = CalorimeterConfig(ecal=DEFAULT_ECAL.replace(n_cells=61, cell_size_mm=1.5, noise_mev=0.0),
                            energy_range=(10.0, 20.0))
    s = simulate(cfg, 400, seed=1)
    R_M = cfg.moliere_radius_mm
    sim_ref, ana_ref = containment_fraction(s, 4 * R_M), expected_containment(s, 4 * R_M)
    for k in (1, 2):
        sim = (containment_fraction(s, k * R_M) / sim_ref).mean()
        ana = (expected_containment(s, k * R_M) / ana_ref).mean()
        assert abs(sim - ana) < 0.004, (k, sim, ana)


def test_radial_profile_sums_to_containment(showers):
    edges, prof = radial_profile(showers)
    assert prof.shape == (len(showers), len(edges) - 1)
    assert np.all(np.diff(prof.mean(axis=0)[1:]) < 0)  # falls with radius past the core ring
    assert 0.98 < prof.sum(axis=1).mean() <= 1.0 + 1e-6


def test_longitudinal_parameters_match_the_paper():
    cfg = CalorimeterConfig()
    E = np.array([10.0, 37.0, 100.0])
    ly = np.log(E / 8e-3)
    got = cal.longitudinal_parameters(E, cfg)
    np.testing.assert_allclose(got["mean_lnT"], np.log(ly - 0.812), rtol=1e-12)
    np.testing.assert_allclose(got["sigma_lnT"], 1 / (-1.4 + 1.26 * ly), rtol=1e-12)
    np.testing.assert_allclose(got["mean_lnalpha"], np.log(0.81 + (0.458 + 2.26 / 74) * ly), rtol=1e-12)
    np.testing.assert_allclose(got["sigma_lnalpha"], 1 / (-0.58 + 0.86 * ly), rtol=1e-12)
    np.testing.assert_allclose(got["rho"], 0.705 - 0.023 * ly, rtol=1e-12)
    np.testing.assert_allclose(cal.average_shower_max(E, cfg), ly - 0.858, rtol=1e-12)


def test_radial_parameters_match_the_paper():
    Z = 74.0
    for E in (10.0, 55.0, 100.0):
        for tau in (0.1, 0.7, 1.0, 2.5):
            lnE = math.log(E)
            R_C = 0.0251 + 0.00319 * lnE + (0.1162 - 0.000381 * Z) * tau
            R_T = (0.659 - 0.00309 * Z) * (math.exp(-2.59 * (tau - 0.645))
                                           + math.exp((0.3585 + 0.0421 * lnE) * (tau - 0.645)))
            w = (0.401 + 0.00187 * Z - tau) / (1.313 - 0.0686 * lnE)
            p = (2.632 - 0.00094 * Z) * math.exp(w - math.exp(w))
            got = cal.radial_parameters(tau, E, Z)
            np.testing.assert_allclose(got, (R_C, R_T, p), rtol=1e-12)
    R_C, R_T, p = cal.radial_parameters(np.linspace(0, 10, 101), 50.0, 1.0)
    assert np.all((p >= 0) & (p <= 1))


def test_spot_count():
    s = simulate(CalorimeterConfig(energy_range=(20.0, 20.0), poisson_spots=False), 3, seed=0)
    assert np.all(s.n_spots == round(93 * math.log(74) * 20 ** 0.876))


def test_hcal_catches_back_leakage():
    base = dict(energy_range=(50.0, 50.0), ecal=DEFAULT_ECAL.replace(n_layers=12, n_cells=15, noise_mev=0.0))
    s = simulate(CalorimeterConfig(hcal=DEFAULT_HCAL.replace(noise_mev=0.0), **base), 200, seed=1)
    assert s.hcal is not None and s.hcal.shape == (200, 11, 11, 10)
    ecal_only = s.calibrated_energy(include_hcal=False).mean() / 50
    total = s.calibrated_energy().mean() / 50
    assert ecal_only < 0.93           # a 12 X0 ECAL leaks at 50 GeV
    assert total > 0.985, total       # the HCAL behind it recovers the leak
    s0 = simulate(CalorimeterConfig(**base), 200, seed=1)
    assert s0.hcal is None
    np.testing.assert_array_equal(s0.ecal, s.ecal)


def test_impact_jitter():
    cfg = CalorimeterConfig(energy_range=(10.0, 20.0), impact_jitter_mm=3.0)
    s = simulate(cfg, 300, seed=2)
    assert 2.5 < s.impact.std() < 3.5
    # the barycentre follows the impact point
    c = (np.arange(cfg.n_cells) - (cfg.n_cells - 1) / 2) * cfg.cell_size_mm
    m = s.ecal.sum(axis=3)
    xbar = (m.sum(axis=2) * c).sum(axis=1) / m.sum(axis=(1, 2))
    assert np.corrcoef(xbar, s.impact[:, 0])[0, 1] > 0.95


# ---- reproducibility, cache, task ---------------------------------------------------------------

SMALL = CalorimeterConfig(ecal=DEFAULT_ECAL.replace(n_cells=9, n_layers=12), energy_range=(10.0, 20.0))


def test_deterministic():
    a = simulate(SMALL, 50, seed=7, chunk_size=16, n_threads=1)
    b = simulate(SMALL, 50, seed=7, chunk_size=16, n_threads=2)
    for k in ("energies", "ecal", "T", "alpha", "n_spots", "impact"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    c = simulate(SMALL, 50, seed=8, chunk_size=16)
    assert not np.array_equal(a.energies, c.energies)
    d = simulate(SMALL, 50, seed=7, stream=1, chunk_size=16)
    assert not np.array_equal(a.energies, d.energies)
    assert a.ecal.dtype == np.float32 and a.ecal.shape == (50, 9, 9, 12)


def test_cache_round_trip(tmp_path, monkeypatch):
    a = load_calorimeter(40, SMALL, seed=3, cache_dir=tmp_path)
    files = list((tmp_path / "calorimeter").glob("*.npz"))
    assert len(files) == 1
    assert not list((tmp_path / "calorimeter").glob(".*"))  # no temporary file left behind

    def boom(*args, **kwargs):
        raise AssertionError("simulate called although the cache should hit")

    monkeypatch.setattr(cal.cache, "simulate", boom)
    b = load_calorimeter(40, SMALL, seed=3, cache_dir=tmp_path)
    for k in ("energies", "ecal", "T", "alpha", "n_spots", "impact"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert b.hcal is None and b.config == SMALL
    monkeypatch.undo()

    # the key covers config fields, n_showers and seed
    keys = {cal.cache_key(SMALL, 40, 3), cal.cache_key(SMALL, 41, 3), cal.cache_key(SMALL, 40, 4),
            cal.cache_key(SMALL.replace(ecal=SMALL.ecal.replace(noise_mev=0.02)), 40, 3),
            cal.cache_key(SMALL, 40, 3, stream=1)}
    assert len(keys) == 5
    # a corrupt file is recomputed
    files[0].write_bytes(b"not a zip")
    c = load_calorimeter(40, SMALL, seed=3, cache_dir=tmp_path)
    np.testing.assert_array_equal(a.ecal, c.ecal)
    # the environment variable chooses the default folder
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path / "env"))
    load_calorimeter(10, SMALL, seed=3)
    assert len(list((tmp_path / "env" / "calorimeter").glob("*.npz"))) == 1


def test_calorimeter_task(tmp_path):
    x_tr, y_tr, x_te, y_te, info = cal.calorimeter_task(60, 20, SMALL, seed=1, cache_dir=tmp_path,
                                                        normalization="feature")
    n_feat = 9 * 9 * 12
    assert x_tr.shape == (60, n_feat) and x_te.shape == (20, n_feat)
    assert y_tr.shape == (60, 1) and y_te.shape == (20, 1)
    np.testing.assert_allclose(x_tr.mean(axis=0), 0, atol=1e-4)
    varying = info["x_std"] != 1.0
    np.testing.assert_allclose(x_tr.std(axis=0)[varying], 1, atol=1e-3)
    # global normalization: one scale for all features, mean square feature 1 on the pool
    g_tr, *_ , g_info = cal.calorimeter_task(60, 20, SMALL, seed=1, cache_dir=tmp_path)
    assert g_info["normalization"] == "global" and np.ptp(g_info["x_std"]) == 0
    np.testing.assert_allclose(np.mean(g_tr.astype(np.float64) ** 2), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="^normalization"):
        cal.calorimeter_task(60, 20, SMALL, seed=1, cache_dir=tmp_path, normalization="pixel")
    np.testing.assert_allclose(y_tr.mean(), 0, atol=1e-6)
    np.testing.assert_allclose(y_tr.std(), 1, atol=1e-6)
    np.testing.assert_allclose(y_te[:, 0] * info["y_std"] + info["y_mean"], info["energies_test"],
                               rtol=1e-5)
    # the test set does not depend on the pool size
    *_, info2 = cal.calorimeter_task(30, 20, SMALL, seed=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(info["energies_test"], info2["energies_test"])
    assert not np.intersect1d(info["energies_train"], info["energies_test"]).size
    # with an HCAL its cells are appended (and the HCAL survives the cache)
    cfg = SMALL.replace(hcal=True)
    x_tr, _, _, _, info = cal.calorimeter_task(10, 5, cfg, seed=1, cache_dir=tmp_path)
    assert x_tr.shape == (10, n_feat + 11 * 11 * 10)
    x_tr2, *_ = cal.calorimeter_task(10, 5, cfg, seed=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(x_tr, x_tr2)
    h1 = load_calorimeter(10, cfg, seed=1, cache_dir=tmp_path).hcal
    np.testing.assert_array_equal(h1, simulate(cfg, 10, seed=1).hcal)
    with pytest.raises(ValueError, match="n_train_pool"):
        cal.calorimeter_task(1, 5, SMALL, cache_dir=tmp_path)


@pytest.mark.parametrize("field, value", [
    ("energy_range", (100.0, 10.0)),
    ("energy_range", (-1.0, 10.0)),
    ("energy_range", (0.01, 10.0)),
    ("energy_range", "abc"),
    ("X0_mm", float("nan")),
    ("moliere_radius_mm", 0),
    ("critical_energy_mev", -8.0),
    ("Z", 0.5),
    ("impact_jitter_mm", -2.0),
    ("poisson_spots", 1),
    ("ecal", DEFAULT_HCAL.shape),
    ("hcal", "yes"),
])
def test_bad_config(field, value):
    with pytest.raises(ValueError, match=field):
        CalorimeterConfig(**{field: value})


@pytest.mark.parametrize("section", [DEFAULT_ECAL, DEFAULT_HCAL])
@pytest.mark.parametrize("field, value", [
    ("n_cells", 0),
    ("n_layers", -3),
    ("n_cells", 2.5),
    ("n_layers", True),
    ("cell_size_mm", 0.0),
    ("layer_depth_x0", -1.0),
    ("sampling_fraction", 0.0),
    ("sampling_fraction", 1.5),
    ("stochastic_term", -0.1),
    ("noise_mev", -1.0),
    ("noise_mev", float("inf")),
])
def test_bad_section(section, field, value):
    with pytest.raises(ValueError, match=field):
        section.replace(**{field: value})


def test_sections_are_one_concept_configured_twice():
    """ECAL and HCAL are Section values; hcal=True/False mean DEFAULT_HCAL/None; the ECAL's fields
    read through the configuration; numbers are normalized so equal configurations compare equal."""
    cfg = CalorimeterConfig(hcal=True)
    assert isinstance(cfg.ecal, Section) and cfg.hcal == DEFAULT_HCAL
    assert [name for name, _ in cfg.sections] == ["ecal", "hcal"]
    assert CalorimeterConfig(hcal=False).hcal is None and [n for n, _ in SMALL.sections] == ["ecal"]
    assert (SMALL.n_cells, SMALL.n_layers, SMALL.ecal_shape, SMALL.ecal_depth_x0) == (9, 12, (9, 9, 12), 12.0)
    assert SMALL.sampling_fraction == SMALL.ecal.sampling_fraction == 0.02
    assert DEFAULT_HCAL.shape == (11, 11, 10) and DEFAULT_HCAL.depth_x0 == 20.0
    same = DEFAULT_ECAL.replace(n_cells=np.int64(9), layer_depth_x0=1, n_layers=12)
    assert same == SMALL.ecal and type(same.layer_depth_x0) is float and type(same.n_cells) is int
    with pytest.raises(TypeError, match="ecal=config.ecal.replace"):
        SMALL.replace(n_cells=5)
    with pytest.raises(AttributeError):
        SMALL.n_spots


def test_cache_keys_are_those_of_the_flat_configuration():
    """Cache files written before ECAL and HCAL became Sections keep their names: these keys were
    computed with the flat CalorimeterConfig (calorimeter-1) for the same configurations."""
    assert cal.cache_key(CalorimeterConfig(), 1000, 0) == \
        "f961a8c9523a24aa92742462c903947c232609da3ea17a74417de38a5c8bdc13"
    cfg = CalorimeterConfig(ecal=DEFAULT_ECAL.replace(n_cells=9), hcal=DEFAULT_HCAL.replace(noise_mev=0.0))
    assert cal.cache_key(cfg, 1000, 0) == "34590343a02517e1b1a9bba5e73861fea71456f307f185c85692d60ce4bd6f93"


def test_float32_radial_formulas_are_the_float64_ones():
    """The simulator evaluates the radial profile in float32 with the same code as the analytic
    float64 helpers: same values to float32 precision, float32 out, repeat() gives one row per spot."""
    E = np.array([10.0, 40.0, 100.0])
    counts = np.array([2, 1, 3])
    tau = np.linspace(0.05, 4.0, 6)
    c32 = cal.radial_coefficients(E, 74.0, np.float32).repeat(counts)
    got = c32.at(tau.astype(np.float32))
    want = cal.radial_parameters(tau, np.repeat(E, counts), 74.0)
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == (6,)
        np.testing.assert_allclose(g, w, rtol=3e-6, atol=1e-7)


def test_radius_from_uniform_inverts_the_radial_cdf():
    """At a fixed depth the sampled radii follow radial_cdf: F(r(u)) = u up to the 0.99999 cap."""
    tau, E, Z = 0.8, 50.0, 74.0
    R_C, R_T, p = cal.radial_parameters(tau, E, Z)
    u = np.linspace(0.0, 0.999, 1001)
    r = cal.radius_from_uniform(u, np.full_like(u, R_C), np.full_like(u, R_T), np.full_like(u, p))
    assert np.all(np.diff(r[u < p]) > 0) and np.all(np.diff(r[u >= p]) >= 0)
    core = u < p  # the core branch inverts the core component alone, the tail branch the tail
    np.testing.assert_allclose(r[core] ** 2 / (r[core] ** 2 + R_C ** 2), (u / p)[core], atol=1e-12)
    v = (u[~core] - p) / (1 - p)
    np.testing.assert_allclose(r[~core] ** 2 / (r[~core] ** 2 + R_T ** 2), v, atol=1e-12)
    # mixing the branches with weights p, 1 - p reproduces the mixture CDF
    rng = np.random.default_rng(0)
    uu = rng.random(200_000)
    rr = cal.radius_from_uniform(uu, np.full_like(uu, R_C), np.full_like(uu, R_T), np.full_like(uu, p))
    for q in (0.05, 0.2, 0.5, 1.0, 2.0):
        assert abs(np.mean(rr <= q) - cal.radial_cdf(q, tau, E, Z)) < 0.005


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_showers"):
        simulate(SMALL, 0)
    with pytest.raises(ValueError, match="seed"):
        simulate(SMALL, 5, seed=-1)
    with pytest.raises(ValueError, match="n_bins"):
        fit_resolution(np.ones(5), np.ones(5))

"""What sets the plateau of eps_L: the test-set floor A / n_T and the population part B(N_D).

With the two parts of sigma_L^2 (`lossstats.LossStats.var_diag`, `var_offdiag`; science.md, "The two
parts") computed at N_T test points, a test set of n_T points from the same distribution has

    eps_L(n_T)^2 = A / n_T + (n_T - 1) / n_T  B,   A = N_T var_diag / mu_L^2,   B = N_T var_offdiag / ((N_T - 1) mu_L^2)

(exact on average for n_T <= N_T drawn from the N_T points; for larger n_T it takes the N_T points as the
population).  A is nearly constant in N_D (it moves only with the bias share of mu_L), B falls with N_D,
so eps_L(n_T) stops depending on N_D once B(N_D) < A / n_T: at N_D*(n_T), where the fitted B(N_D) = B_0 N_D^-gamma
equals A / n_T.  `split_curve` builds A and B per N_D from stored rows, `fit_plateau` fits B and A, and
`PlateauModel` answers, for any n_T, the onset N_D*(n_T) and the model's verdict at the largest N_D.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ntkuq.study.scaling import PowerLaw, fit_power_law, plateau_verdict

TEST_SIZES = (100, 300, 1000, 3000, 10_000)
"""The test-set sizes n at which the book states the model's answer."""


@dataclass(frozen=True)
class SplitCurve:
    """Per N_D (increasing): mu_L, the floor coefficient A and the population part B, with standard errors.

    `A_boot`, `B_boot` (n_boot, sizes) are bootstrap resamples over training-set draws when there are
    several, else None (errors then come from the rows' own `var_*_err`, or are zero).
    """

    n: np.ndarray
    n_test: int
    mu: np.ndarray
    A: np.ndarray
    B: np.ndarray
    A_err: np.ndarray
    B_err: np.ndarray
    draws: int
    A_boot: Optional[np.ndarray] = None
    B_boot: Optional[np.ndarray] = None

    def eps(self, n_test) -> np.ndarray:
        """eps_L per N_D for a test set of n_test points: sqrt(A / n_T + (n_T - 1) / n_T B) (n_T >= 1).

        Args:
            n_test: the test-set size n_T (>= 1).

        Returns:
            eps_L(n_T) at every N_D of the curve.

        Raises:
            ValueError: n_test is below 1.
        """
        n = float(n_test)
        if not n >= 1:
            raise ValueError(f"n_test: expected a test-set size >= 1, got {n_test!r}")
        return np.sqrt(self.A / n + (n - 1) / n * np.maximum(self.B, 0.0))

    @property
    def eps_population(self) -> np.ndarray:
        """eps_L of an infinite test set, sqrt(B)."""
        return np.sqrt(np.maximum(self.B, 0.0))

    def eps_floor(self, n_test) -> np.ndarray:
        """The floor sqrt(A / n_T) at n_T test points.

        Args:
            n_test: the test-set size n_T.

        Returns:
            The floor at every N_D of the curve.
        """
        return np.sqrt(self.A / float(n_test))


def row_parts(row: dict) -> Tuple[float, float, float, float, int]:
    """The two parts of one stored row's eps_L^2: eps_L^2 = A / n_T + (n_T - 1) / n_T B.

    Args:
        row: a result row with 'mu', 'var_diag', 'var_offdiag' (and their '_err' where known) and its n_T
            (params['n_test'], or 'n_test').

    Returns:
        (A, B, A_err, B_err, n_T); an error is 0 where the row has none (exact infinite-width rows). A trained
        ensemble's errors combine those of its variance part and of mu_L (A and B divide by mu_L^2) in quadrature,
        as if independent: the rows keep no per-member losses per test point to resample A and B together, and
        the two errors are positively correlated, so this errs on the large side.
    """
    nt, mu = int(row["params"]["n_test"]) if "params" in row else int(row["n_test"]), float(row["mu"])
    a = nt * float(row["var_diag"]) / mu**2
    b = nt * float(row["var_offdiag"]) / ((nt - 1) * mu**2)
    rel_mu = 2 * float(row.get("mu_err") or 0.0) / abs(mu)  # the relative error of 1 / mu^2
    a_err = float(np.hypot(nt * float(row.get("var_diag_err") or 0.0) / mu**2, rel_mu * abs(a)))
    b_err = float(np.hypot(nt * float(row.get("var_offdiag_err") or 0.0) / ((nt - 1) * mu**2), rel_mu * abs(b)))
    return a, b, a_err, b_err, nt


def split_curve(rows: Sequence[dict], n_boot: int = 400, seed: int = 0) -> SplitCurve:
    """A and B per N_D from stored rows of one curve (one task, method, width), averaged over draws.

    Args:
        rows: result rows that carry `var_diag` and `var_offdiag` (rows without them are skipped); one N_T.
        n_boot: bootstrap resamples over draws (used when every size has two or more draws).
        seed: the resampling's seed.

    Returns:
        SplitCurve.

    Raises:
        ValueError: no row carries the split, or the rows mix test-set sizes.
    """
    rows = [r for r in rows if r.get("var_diag") not in (None, "") and r.get("var_offdiag") not in (None, "")]
    if not rows:
        raise ValueError("rows: expected rows that carry var_diag and var_offdiag, got none")
    sizes = sorted({int(r["n_train"]) for r in rows})
    parts = {n: [row_parts(r) for r in rows if int(r["n_train"]) == n] for n in sizes}
    n_tests = {p[4] for g in parts.values() for p in g}
    if len(n_tests) != 1:
        raise ValueError(f"rows: expected one test-set size N_T, got {sorted(n_tests)}")
    arr = {n: np.array([p[:4] for p in g]) for n, g in parts.items()}
    A = np.array([arr[n][:, 0].mean() for n in sizes])
    B = np.array([arr[n][:, 1].mean() for n in sizes])
    mu = np.array([np.mean([float(r["mu"]) for r in rows if int(r["n_train"]) == n]) for n in sizes])
    draws = min(len(arr[n]) for n in sizes)
    a_boot = b_boot = None
    if draws >= 2:
        rng = np.random.default_rng(seed)
        a_boot, b_boot = np.empty((n_boot, len(sizes))), np.empty((n_boot, len(sizes)))
        for j, n in enumerate(sizes):
            pick = rng.integers(0, len(arr[n]), size=(n_boot, len(arr[n])))
            a_boot[:, j] = arr[n][:, 0][pick].mean(axis=1)
            b_boot[:, j] = arr[n][:, 1][pick].mean(axis=1)
        a_err, b_err = a_boot.std(axis=0, ddof=1), b_boot.std(axis=0, ddof=1)
    else:  # one draw: the rows' own errors (bootstrap over members for ensembles; zero for exact rows)
        a_err = np.array([np.sqrt(np.sum(arr[n][:, 2] ** 2)) / len(arr[n]) for n in sizes])
        b_err = np.array([np.sqrt(np.sum(arr[n][:, 3] ** 2)) / len(arr[n]) for n in sizes])
    return SplitCurve(np.array(sizes, dtype=float), n_tests.pop(), mu, A, B, a_err, b_err, draws, a_boot, b_boot)


@dataclass(frozen=True)
class PlateauModel:
    """The fitted model eps_L(n, N_D)^2 = A(N_D) / n + B(N_D) over the largest decade of N_D.

    B = `population` (a power law B_0 N_D^-gamma with gamma = population.exponent), A = `floor` (a power law
    too, whose exponent is nearly zero when the bias share of mu_L is constant); n_lo..n_hi the decade.
    """

    population: PowerLaw
    floor: PowerLaw
    n_lo: float
    n_hi: float
    n_test: int

    def onset(self, n_test) -> float:
        """N_D*(n_T): the training-set size where B(N_D) = A(N_D) / n_T (inf when B does not fall faster than A).

        Args:
            n_test: the test-set size n_T.

        Returns:
            The onset N_D*(n_T), or inf.
        """
        g = self.population.exponent - self.floor.exponent
        if not g > 0:
            return float("inf")
        return float((self.population.amplitude * float(n_test) / self.floor.amplitude) ** (1.0 / g))

    def slope(self, n_test, n_train: Optional[float] = None):
        """The model's log-log slope of eps_L(n_T) in N_D at n_train (default the largest N_D), and its error.

        The slope is (1/2) (-a A / n_T - gamma B) / (A / n_T + B) with A ~ N_D^-a, B ~ N_D^-gamma; its error comes
        from the exponents' errors.

        Args:
            n_test: the test-set size n_T.
            n_train: the training-set size N_D (None, the default: the largest N_D of the fit).

        Returns:
            (slope, error).
        """
        nd = self.n_hi if n_train is None else float(n_train)
        a_n = self.floor(nd) / float(n_test)
        b = self.population(nd)
        w = b / (a_n + b)
        s = 0.5 * (-self.floor.exponent * (1 - w) - self.population.exponent * w)
        err = 0.5 * np.hypot(self.floor.exponent_err * (1 - w), self.population.exponent_err * w)
        return float(s), float(err)

    def verdict(self, n_test) -> str:
        """`scaling.plateau_verdict` of the model's slope at the largest N_D for a test set of n_T points.

        Args:
            n_test: the test-set size n_T.

        Returns:
            'plateau', 'still falling' or 'rising'.
        """
        return plateau_verdict(*self.slope(n_test))

    def floor_share(self, n_test, n_train: Optional[float] = None) -> float:
        """The floor's share of eps_L(n_T)^2 at n_train (default the largest N_D).

        Args:
            n_test: the test-set size n_T.
            n_train: the training-set size N_D (None, the default: the largest N_D of the fit).

        Returns:
            (A / n_T) / (A / n_T + B), between 0 and 1.
        """
        nd = self.n_hi if n_train is None else float(n_train)
        a_n = self.floor(nd) / float(n_test)
        return float(a_n / (a_n + self.population(nd)))


def fit_plateau(curve: SplitCurve, decades: float = 1.0) -> PlateauModel:
    """Fit B(N_D) and A(N_D) as power laws over the last `decades` of N_D.

    Errors are bootstrap errors over draws when the curve has resamples, else from the fit residuals; at least
    two sizes are always used.

    Args:
        curve: the split per N_D (`split_curve`).
        decades: how many decades of N_D, counted down from the largest, are fitted (default 1.0).

    Returns:
        PlateauModel: B as `population`, A as `floor`, the fitted range of N_D and the curve's N_T.
    """
    sel = curve.n >= curve.n.max() / 10**decades
    if sel.sum() < 2:
        sel[-2:] = True
    boot = (lambda b: None if b is None else b[:, sel])
    pop = fit_power_law(curve.n[sel], np.maximum(curve.B[sel], 1e-300), boot(curve.B_boot))
    flo = fit_power_law(curve.n[sel], curve.A[sel], boot(curve.A_boot))
    return PlateauModel(pop, flo, float(curve.n[sel].min()), float(curve.n[sel].max()), curve.n_test)


def model_table(name: str, label: str, curve: SplitCurve, model: PlateauModel,
                test_sizes: Sequence[int] = TEST_SIZES) -> Dict[str, object]:
    """One row of the chapter's table: gamma (B's exponent), A, and per n the onset N_D*(n_T) and verdict.

    Args:
        name: the task's name shown in the table.
        label: the curve's label shown in the table.
        curve: the split per N_D (`split_curve`), for A's mean and range.
        model: the fitted model of that curve (`fit_plateau`).
        test_sizes: the test-set sizes n of the onset and verdict columns (default TEST_SIZES).

    Returns:
        The row: 'task', 'curve', 'gamma', 'gamma_err', 'A', 'A_lo', 'A_hi', 'floor_slope', and 'onset_N' and
        'verdict_N' for each test-set size N.
    """
    row: Dict[str, object] = {"task": name, "curve": label, "gamma": model.population.exponent,
                              "gamma_err": model.population.exponent_err, "A": float(np.mean(curve.A)),
                              "A_lo": float(curve.A.min()), "A_hi": float(curve.A.max()),
                              "floor_slope": -model.floor.exponent}
    for n in test_sizes:
        row[f"onset_{n}"] = model.onset(n)
        row[f"verdict_{n}"] = model.verdict(n)
    return row


def part_ratios(finite: SplitCurve, infinite: SplitCurve) -> Dict[str, np.ndarray]:
    """Finite against infinite width, part by part, at the same training sets and test set (same N_T).

    Args:
        finite: the trained ensemble's split (`split_curve` of its rows; errors over members).
        infinite: the infinite-width ensemble's split on the same N_D and N_T.

    Returns:
        Per common N_D: 'n', the floor ratio sqrt(A_fin / A_inf) ('floor', 'floor_err') and the population
        ratio sqrt(B_fin / B_inf) ('population', 'population_err'; NaN where B_fin <= 0), with errors from the
        finite-width errors alone (the infinite-width parts are exact).

    Raises:
        ValueError: different test-set sizes, or no common N_D.
    """
    if finite.n_test != infinite.n_test:
        raise ValueError(f"finite, infinite: expected the same test-set size, got {finite.n_test} and "
                         f"{infinite.n_test}")
    common = np.intersect1d(finite.n, infinite.n)
    if common.size == 0:
        raise ValueError("finite, infinite: expected common training-set sizes, got none")
    i = np.searchsorted(finite.n, common)
    j = np.searchsorted(infinite.n, common)
    floor = np.sqrt(finite.A[i] / infinite.A[j])
    with np.errstate(invalid="ignore", divide="ignore"):
        pop = np.where(finite.B[i] > 0, np.sqrt(np.abs(finite.B[i]) / infinite.B[j]), np.nan)
        return {"n": common, "floor": floor, "floor_err": 0.5 * floor * finite.A_err[i] / finite.A[i],
                "population": pop, "population_err": 0.5 * pop * finite.B_err[i] / np.abs(finite.B[i])}


__all__ = ["PlateauModel", "SplitCurve", "TEST_SIZES", "fit_plateau", "model_table", "part_ratios", "row_parts",
           "split_curve"]

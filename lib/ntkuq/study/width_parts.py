"""The width dependence of mu_L and of the two parts of eps_L^2, from stored rows at one task and N_D.

At a test set of n_T points, eps_L^2 = A / n_T + (n_T - 1) / n_T B (`ntkuq.study.split_curve`): the floor
coefficient A from each test point's own variance over members, the population part B from the covariances
between test points.  Per width n the trained ensemble's mu_L, A and B (errors from the bootstrap over
members) stand beside the exact infinite-width values at t = infinity on the same training and test sets, and
each is fitted by weighted least squares

    y(n) = c_0 + c_1 / n                  (c_0 the extrapolation to n -> infinity, its pull against the exact), and
    log abs(y(n) / y(inf) - 1) = const + s log n    (s = -1 for a 1/n correction: "the power that fits").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ntkuq._src.checks import check_int
from ntkuq.errors import InputTypeError
from ntkuq.study.plateau_model import row_parts

RESOLVED = 2.0
"""A deviation from the exact value enters the log-log slope only when it is more than this many errors."""

PARTS = ("mu", "A", "B")
"""The statistics of a WidthParts: mu_L, the floor coefficient A and the population part B."""


@dataclass(frozen=True)
class WidthParts:
    """Per width the ensemble's mu_L, A and B with errors, beside their exact infinite-width values.

    Attributes:
        task: the task of the rows.
        n_train: the training-set size N_D.
        n_test: the test-set size n_T.
        lambda_ratio: lambda_b / lambda_W of the rows' architecture.
        widths: the widths n, increasing.
        values: 'mu', 'A', 'B' -> per width.
        errors: 'mu', 'A', 'B' -> per width, the bootstrap standard errors over members.
        exact: 'mu', 'A', 'B' -> the infinite-width value at t = infinity.
        steps: per width the steps trained.
        converged: per width True where the stopping rule passed before the cap; False where the ensemble
            stopped at its cap, or was trained for fixed steps without the rule (no measurement says it converged).
    """

    task: str
    n_train: int
    n_test: int
    lambda_ratio: float
    widths: np.ndarray
    values: Dict[str, np.ndarray]
    errors: Dict[str, np.ndarray]
    exact: Dict[str, float]
    steps: np.ndarray
    converged: np.ndarray

    def eps_floor(self) -> np.ndarray:
        """The floor part of eps_L at this n_T, sqrt(A / n_T), per width."""
        return np.sqrt(self.values["A"] / self.n_test)

    def eps_population(self) -> np.ndarray:
        """The population part of eps_L, sqrt(B) (0 where the estimate of B is negative), per width."""
        return np.sqrt(np.maximum(self.values["B"], 0.0))

    @property
    def eps2(self) -> np.ndarray:
        """eps_L^2 = A / n_T + (n_T - 1) / n_T B per width."""
        return self.values["A"] / self.n_test + (self.n_test - 1) / self.n_test * self.values["B"]

    @property
    def eps2_exact(self) -> float:
        """eps_L^2 of the exact infinite-width values at the same n_T."""
        return float(self.exact["A"] / self.n_test + (self.n_test - 1) / self.n_test * self.exact["B"])

    def excess(self) -> Tuple[np.ndarray, np.ndarray]:
        """Per width the two parts of eps_L^2's excess over infinite width, (floor, population).

        floor = (A - A_inf) / n_T and population = (n_T - 1) / n_T (B - B_inf); they add up to
        eps2 - eps2_exact.
        """
        floor = (self.values["A"] - self.exact["A"]) / self.n_test
        return floor, (self.n_test - 1) / self.n_test * (self.values["B"] - self.exact["B"])

    def floor_share(self) -> np.ndarray:
        """Per width the floor's share of the excess: ((A - A_inf) / n_T) / (eps_L^2 - eps_L^2(inf)).

        The rest, 1 - share, is the population part's.  NaN where eps_L^2 is not above its infinite-width value
        (no excess to split).
        """
        a, b = self.excess()
        with np.errstate(divide="ignore", invalid="ignore"):
            share = a / (a + b)
        return np.where(a + b > 0, share, np.nan)

    def floor_share_err(self) -> np.ndarray:
        """The standard error of `floor_share`, from the errors of A and B (taken as independent); NaN likewise.

        With f = a / (a + b) and (a, b) = `excess()`: var f = (b^2 var a + a^2 var b) / (a + b)^4.
        """
        a, b = self.excess()
        va = (self.errors["A"] / self.n_test) ** 2
        vb = ((self.n_test - 1) / self.n_test * self.errors["B"]) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.sqrt(b**2 * va + a**2 * vb) / (a + b) ** 2
        return np.where(a + b > 0, err, np.nan)


@dataclass(frozen=True)
class InverseWidthFit:
    """y(n) = c_0 + c_1 / n and the log-log slope of abs(y(n) / y(inf) - 1), each with its standard error.

    Attributes:
        stat: 'mu', 'A' or 'B'.
        c0: the extrapolation to n -> infinity.
        c0_err: its standard error (from the fit's covariance, scaled by sqrt(chi2 / dof) when that exceeds 1).
        c1: the coefficient of 1 / n.
        c1_err: its standard error.
        chi2: the fit's chi-square.
        dof: its degrees of freedom (widths - 2).
        slope: the log-log slope of the relative deviation from the exact value against n (-1 for 1/n), over the
            widths whose deviation is resolved (more than RESOLVED standard errors, on the side of the largest);
            NaN when fewer than two are.
        slope_err: its standard error (NaN with two such widths).
        exact: the exact infinite-width value.
    """

    stat: str
    c0: float
    c0_err: float
    c1: float
    c1_err: float
    chi2: float
    dof: int
    slope: float
    slope_err: float
    exact: float

    @property
    def pull(self) -> float:
        """(c0 - exact) / c0_err: how many standard errors the extrapolation misses by (inf with no error)."""
        return (self.c0 - self.exact) / self.c0_err if self.c0_err > 0 else float(np.inf)


_ROW_FIELDS = ("method", "task", "n_train", "width", "steps", "params")


def _check_row(row: object) -> dict:
    """`row` if it has the fields of a stored `finite_width_study` row that a width study reads, else ValueError."""
    if not isinstance(row, dict):
        raise InputTypeError(f"rows: expected stored finite_width_study rows (dicts), got a {type(row).__name__}")
    missing = [k for k in _ROW_FIELDS if k not in row]
    spec = row["params"].get("spec") if isinstance(row.get("params"), dict) else None
    if not missing and not (isinstance(spec, dict) and "lambda_b" in spec and "lambda_W" in spec):
        missing = ["params['spec'] with lambda_b and lambda_W"]
    if missing:
        raise ValueError(f"rows: expected stored finite_width_study rows, got one without {', '.join(missing)} "
                         f"(keys {sorted(row)})")
    return row


def _ratio(row: dict) -> float:
    spec = row["params"]["spec"]
    return float(spec["lambda_b"]) / float(spec["lambda_W"])


_ENSEMBLE_SETTINGS = ("eta_fraction", "momentum", "warmup", "min_steps", "tol", "steps_rule", "batch_size")


def _settings(row: dict) -> Dict[str, object]:
    """What a width study holds fixed besides the width: the architecture, data, seed and training rule."""
    params = row.get("params") or {}
    spec = {k: v for k, v in (params.get("spec") or {}).items() if k != "width"}
    out = {"task": row.get("task"), "N_D": row.get("n_train"), "n_T": params.get("n_test"), "seed": row.get("seed"),
           "draw": row.get("draw"), "spec": spec, "data": params.get("data")}
    if row.get("method") == "ensemble":
        stop = params.get("stopping") or {}
        out.update(members=row.get("members"), optimizer=row.get("optimizer"),
                   rule=(stop.get("rtol"), stop.get("cap")), **{k: params.get(k) for k in _ENSEMBLE_SETTINGS})
    return out


def _check_one_setting(rows: Sequence[dict], what: str) -> None:
    """ValueError naming the first setting in which the rows differ."""
    first = _settings(rows[0])
    for r in rows[1:]:
        other = _settings(r)
        for k in first:
            if other.get(k) != first[k]:
                raise ValueError(f"rows: expected one {k} for all {what}, got {first[k]!r} and {other.get(k)!r}")


def width_groups(rows: Sequence[dict]) -> Dict[Tuple[str, float, int], List[dict]]:
    """The rows of a folder of width studies, one group per (task, lambda_b / lambda_W, N_D), for `width_parts`.

    Args:
        rows: stored `finite_width_study` rows (`committed_rows`), any mix of tasks, ratios, sizes and widths.

    Returns:
        (task, lambda ratio, N_D) -> its trained ensembles and infinite-width rows at t = infinity (the
        infinite-width rows after a finite number of steps are left out), in the rows' order.

    Raises:
        ValueError: a group whose trained ensembles (or infinite-width rows) differ in a setting besides the width
            (seed, architecture, data, members, rate, warmup, stopping rule, ...): two studies under one key; or a
            row without the fields of a stored study row (InputTypeError for one that is not a dict).
    """
    groups: Dict[Tuple[str, float, int], List[dict]] = {}
    for r in map(_check_row, rows):
        if r.get("method") == "ntk" and int(r["steps"]) >= 0:
            continue
        groups.setdefault((str(r["task"]), _ratio(r), int(r["n_train"])), []).append(r)
    for key, group in groups.items():  # one study per key: the same settings besides the width
        for method in ("ensemble", "ntk"):
            same = [r for r in group if r.get("method") == method]
            if len(same) > 1:
                _check_one_setting(same, f"{method} rows of {key}")
    return groups


def width_parts(rows: Sequence[dict]) -> WidthParts:
    """mu_L, A and B per width from the stored rows of one width study (one task, N_D, n_T and lambda ratio).

    Args:
        rows: `finite_width_study` rows: the trained ensembles at two or more widths and the infinite-width
            ensemble at t = infinity (method 'ntk', width 'inf', steps -1); rows at a finite number of
            steps are ignored.

    Returns:
        WidthParts.

    Raises:
        ValueError: fewer than two widths, a width twice, no infinite-width row at t = infinity (or two that
            differ), a row without the two parts (var_diag, var_offdiag), or rows that mix tasks, N_D, n_T, lambda
            ratios or any other setting besides the width; a row without the fields of a stored study row
            (InputTypeError for one that is not a dict).
    """
    rows = [_check_row(r) for r in rows]
    ens = [r for r in rows if r.get("method") == "ensemble"]
    inf = [r for r in rows if r.get("method") == "ntk" and str(r.get("width")) == "inf" and int(r["steps"]) == -1]
    if not inf:
        raise ValueError("rows: expected the infinite-width row at t = infinity (method 'ntk', width 'inf', "
                         "steps -1), got none")
    used = ens + inf
    for field, get in (("task", lambda r: r["task"]), ("N_D", lambda r: int(r["n_train"])),
                       ("n_T", lambda r: int(r["params"]["n_test"])), ("lambda_b / lambda_W", _ratio)):
        found = sorted({get(r) for r in used})
        if len(found) != 1:
            raise ValueError(f"rows: expected one {field}, got {found}")
    if any(r.get("var_diag") in (None, "") or r.get("var_offdiag") in (None, "") for r in used):
        raise ValueError("rows: expected rows that carry var_diag and var_offdiag (the two parts), got one without")
    widths = [int(r["width"]) for r in ens]
    if len(set(widths)) != len(widths) or len(widths) < 2:
        raise ValueError(f"rows: expected trained ensembles at two or more distinct widths, got widths {widths}")
    _check_one_setting(ens, "trained ensembles")
    _check_one_setting(inf, "infinite-width rows")
    if len({float(r["mu"]) for r in inf}) > 1:
        raise ValueError(f"rows: expected one infinite-width result at t = infinity, got mu_L "
                         f"{sorted({float(r['mu']) for r in inf})}")
    ens = sorted(ens, key=lambda r: int(r["width"]))
    parts = [row_parts(r) for r in ens]
    exact_parts = row_parts(inf[0])
    values = {"mu": np.array([float(r["mu"]) for r in ens]), "A": np.array([p[0] for p in parts]),
              "B": np.array([p[1] for p in parts])}
    errors = {"mu": np.array([float(r.get("mu_err") or 0.0) for r in ens]), "A": np.array([p[2] for p in parts]),
              "B": np.array([p[3] for p in parts])}
    stops = [(r.get("params") or {}).get("stopping") for r in ens]
    return WidthParts(task=str(ens[0]["task"]), n_train=int(ens[0]["n_train"]), n_test=int(exact_parts[4]),
                      lambda_ratio=_ratio(ens[0]), widths=np.array(sorted(widths)), values=values, errors=errors,
                      exact={"mu": float(inf[0]["mu"]), "A": float(exact_parts[0]), "B": float(exact_parts[1])},
                      steps=np.array([int(r["steps"]) for r in ens]),
                      converged=np.array([bool(s and s.get("converged")) for s in stops]))


def _weighted_line(x: np.ndarray, y: np.ndarray, err: np.ndarray):
    """(coefficients, covariance, chi2) of y = a + b x weighted by 1 / err^2."""
    w = 1.0 / np.maximum(err, 1e-300) ** 2
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(X.T @ (X * w[:, None]))
    coef = cov @ (X.T @ (w * y))
    chi2 = float(np.sum(w * (y - X @ coef) ** 2))
    return coef, cov, chi2


def fit_inverse_width(parts: WidthParts, stat: str, *, min_width: int = 0) -> InverseWidthFit:
    """Fit c_0 + c_1 / n and the log-log slope of the relative deviation for one statistic of a width study.

    Args:
        parts: the width study (`width_parts`).
        stat: 'mu', 'A' or 'B' (one of PARTS).
        min_width: the smallest width fitted (default 0: all).

    Returns:
        InverseWidthFit.

    Raises:
        ValueError: stat not in PARTS, min_width not an integer >= 0 (InputTypeError for another type), fewer than
            two widths >= min_width, or a width without a positive error.
    """
    if not isinstance(stat, str) or stat not in PARTS:
        raise ValueError(f"stat: expected one of {PARTS}, got {stat!r}")
    keep = parts.widths >= check_int(min_width, "min_width", minimum=0)
    if keep.sum() < 2:
        raise ValueError(f"min_width: expected at least two widths >= {min_width}, got {list(parts.widths)}")
    n = parts.widths[keep].astype(float)
    y, err, exact = parts.values[stat][keep], parts.errors[stat][keep], parts.exact[stat]
    if not np.all(err > 0):
        raise ValueError(f"parts: expected a positive error of {stat} at every width, got {list(err)}")
    coef, cov, chi2 = _weighted_line(1.0 / n, y, err)
    dof = int(n.size - 2)
    scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
    # the slope of log abs(y / exact - 1), over the widths whose deviation is resolved (more than RESOLVED errors
    # from the exact value, all on one side of it): log abs(dev) has the error err / abs(y - exact) there
    dev = y - exact
    side = np.sign(dev[np.argmax(np.abs(dev))])
    ok = (np.abs(dev) > RESOLVED * err) & (np.sign(dev) == side)
    slope = slope_err = float("nan")
    if ok.sum() >= 2:
        s_coef, s_cov, s_chi2 = _weighted_line(np.log(n[ok]), np.log(np.abs(dev[ok] / exact)),
                                               err[ok] / np.abs(dev[ok]))
        s_dof = int(ok.sum() - 2)
        slope = float(s_coef[1])
        slope_err = float(np.sqrt(s_cov[1, 1] * max(1.0, s_chi2 / s_dof))) if s_dof > 0 else float("nan")
    return InverseWidthFit(stat=stat, c0=float(coef[0]), c0_err=float(np.sqrt(cov[0, 0] * scale)),
                           c1=float(coef[1]), c1_err=float(np.sqrt(cov[1, 1] * scale)), chi2=chi2, dof=dof,
                           slope=slope, slope_err=slope_err, exact=exact)


__all__ = ["InverseWidthFit", "PARTS", "RESOLVED", "WidthParts", "fit_inverse_width", "width_groups", "width_parts"]

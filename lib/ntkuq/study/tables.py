"""Tables of a study's stored rows.

Selection, curves per N_D with bootstrap resamples, power-law fits, the exponent table and the eps_L plateau
verdicts (the slope test and the plateau model).
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ntkuq.study.plateau_model import TEST_SIZES, fit_plateau, split_curve
from ntkuq.study.scaling import Plateau, PowerLaw, bootstrap_curves, eps_of, fit_power_law, plateau, plateau_verdict
from ntkuq.study.store import ResultStore


def committed_rows(folder: Union[str, os.PathLike], **match) -> List[dict]:
    """The rows stored in a results folder's points that match every given field (as `select`).

    Args:
        folder: a folder of point files (`ResultStore`; finished or not, e.g. results/paper/points).
        **match: the field values every returned row has, compared as in `select`.

    Returns:
        The matching rows; [] when the folder does not exist.
    """
    if not os.path.isdir(folder):
        return []
    return select(ResultStore(folder).rows(), **match)


def select(rows: Iterable[dict], **match) -> List[dict]:
    """Rows whose fields equal every given value (width compared as a string; a missing field matches nothing).

    Args:
        rows: the rows (dicts) to select from.
        **match: the field values every returned row has.

    Returns:
        The matching rows, in their order.
    """
    def ok(r):
        return all(str(r.get(k)) == str(v) if k == "width" else (k in r and r[k] == v) for k, v in match.items())
    return [r for r in rows if ok(r)]


def curves(rows: Sequence[dict], n_boot: int = 400, seed: int = 0) -> Dict[str, np.ndarray]:
    """Per N_D: mu, sigma, eps (mean over draws, or the ensemble's values) and bootstrap resamples of each.

    Rows with member losses (finite width) are bootstrapped over draws and members within each draw; exact rows
    (infinite width) over draws, when every size has two or more.

    Args:
        rows: the stored rows of one curve (one task, method, width), at several N_D and draws.
        n_boot: the number of bootstrap resamples (default 400).
        seed: the resampling's seed (default 0).

    Returns:
        {'n': the sizes N_D, and for each of 'mu', 'sigma', 'eps': its values, its standard errors
        ('<stat>_err', zero without resamples) and, where there are resamples, '<stat>_boot' (n_boot, sizes)};
        where rows were trained under a stopping rule, also 'converged' (bool per size: True where every row
        passed the rule, `ntkuq.finite.StopRule`; False where one stopped at its cap or, in a mix, was trained for
        fixed steps without the rule).
    """
    sizes = sorted({r["n_train"] for r in rows})
    out: Dict[str, np.ndarray] = {"n": np.array(sizes, dtype=float)}
    by_n = [[r for r in rows if r["n_train"] == n] for n in sizes]
    records = [[_stop_record(r) for r in g] for g in by_n]
    if any(rec is not None for g in records for rec in g):
        out["converged"] = np.array([all(rec is not None and bool(rec.get("converged")) for rec in g)
                                     for g in records])
    members = all(g and all(isinstance(r.get("member_losses"), list) for r in g) for g in by_n)
    if members:  # finite width: per draw the members' statistics, averaged over draws; nested bootstrap
        rng = np.random.default_rng(seed)
        stats = {"mu": np.mean, "sigma": lambda s: np.std(s, ddof=1), "eps": eps_of}
        for name, stat in stats.items():
            out[name] = np.array([np.mean([stat(np.asarray(r["member_losses"], float)) for r in g]) for g in by_n])
            out[f"{name}_boot"] = np.empty((n_boot, len(sizes)))
        for j, g in enumerate(by_n):  # resample draws (when there are several), then members within each
            draws = [np.asarray(r["member_losses"], dtype=float) for r in g]
            for b in range(n_boot):
                pick = rng.integers(0, len(draws), len(draws)) if len(draws) > 1 else [0]
                res = [draws[i][rng.integers(0, draws[i].size, draws[i].size)] for i in pick]
                for name, stat in stats.items():
                    out[f"{name}_boot"][b, j] = np.mean([stat(r) for r in res])
    else:  # infinite width: exact per draw; bootstrap over draws (if there are several)
        for name in ("mu", "sigma", "eps"):
            vals = [np.array([r[name] for r in g]) for g in by_n]
            out[name] = np.array([v.mean() for v in vals])
            if min(len(v) for v in vals) >= 2:
                out[f"{name}_boot"] = bootstrap_curves(vals, np.mean, n_boot, seed)
    for name in ("mu", "sigma", "eps"):
        boot = out.get(f"{name}_boot")
        out[f"{name}_err"] = np.std(boot, axis=0, ddof=1) if boot is not None else np.zeros(len(sizes))
    return out


def _stop_record(row: Mapping) -> Optional[Mapping]:
    """The stopping rule's record of a stored row (`StopRecord.as_dict`), or None for a run without one."""
    params = row.get("params")
    rec = params.get("stopping") if isinstance(params, Mapping) else None
    return rec if isinstance(rec, Mapping) else None


def not_converged(c: Mapping[str, np.ndarray]) -> List[int]:
    """The training-set sizes N_D of a curve whose ensembles stopped at their cap without converging.

    Args:
        c: the curve set (`curves`).

    Returns:
        The sizes, increasing; [] for a curve without a stopping rule or with every size converged.
    """
    conv = c.get("converged")
    if conv is None:
        return []
    return [int(n) for n, ok in zip(c["n"], conv) if not ok]


def fits(c: Dict[str, np.ndarray], decades: float = 1.0) -> Dict[str, object]:
    """Power laws of mu and sigma and the eps plateau for one curve set from `curves`.

    Args:
        c: the curve set (`curves`).
        decades: the decades of N_D of the plateau fit (`scaling.plateau`, default 1.0).

    Returns:
        {'mu': PowerLaw, 'sigma': PowerLaw, 'plateau': Plateau}.
    """
    mu = fit_power_law(c["n"], c["mu"], c.get("mu_boot"))
    sigma = fit_power_law(c["n"], c["sigma"], c.get("sigma_boot"))
    return {"mu": mu, "sigma": sigma, "plateau": plateau(c["n"], c["eps"], c.get("eps_boot"), decades)}


def fit_row(task: str, label: str, f: Dict[str, object], c: Optional[Mapping[str, np.ndarray]] = None) -> dict:
    """One row of the exponent table: alpha, beta, plateau slope and value, with errors.

    Args:
        task: the task's name shown in the table.
        label: the curve's label shown in the table.
        f: the fits of the curve (`fits`).
        c: the curve set itself (`curves`); when its rows were trained under a stopping rule, the row also says
            which sizes did not converge (default None: not said).

    Returns:
        The row: 'task', 'curve', 'alpha', 'beta', 'eps_slope', 'eps_plateau' (each number with its '_err'),
        'decade', the fitted range of N_D, and with a stopped curve 'not converged' (its sizes N_D, or "none").
    """
    mu: PowerLaw = f["mu"]  # type: ignore[assignment]
    sigma: PowerLaw = f["sigma"]  # type: ignore[assignment]
    p: Plateau = f["plateau"]  # type: ignore[assignment]
    row = {"task": task, "curve": label, "alpha": mu.exponent, "alpha_err": mu.exponent_err,
           "beta": sigma.exponent, "beta_err": sigma.exponent_err, "eps_slope": p.slope,
           "eps_slope_err": p.slope_err, "eps_plateau": p.value, "eps_plateau_err": p.value_err,
           "decade": f"{p.n_lo:.0f}-{p.n_hi:.0f}"}
    if c is not None and "converged" in c:
        row["not converged"] = ", ".join(f"{n:,}" for n in not_converged(c)) or "none"
    return row


def last_slope(c: Dict[str, np.ndarray], stat: str = "eps") -> tuple:
    """The log-log slope of a curve from `curves` between its two largest N_D, and its bootstrap error.

    How fast the statistic still changes at the end of the range.

    Args:
        c: the curve set (`curves`).
        stat: the statistic, "mu", "sigma" or "eps" (default).

    Returns:
        (slope, error); the error is 0.0 when the curve has no resamples.
    """
    n = np.log(c["n"][-2:])
    slope = float(np.diff(np.log(c[stat][-2:]))[0] / np.diff(n)[0])
    boot = c.get(f"{stat}_boot")
    if boot is None:
        return slope, 0.0
    resampled = np.diff(np.log(np.asarray(boot)[:, -2:]), axis=1)[:, 0] / np.diff(n)[0]
    return slope, float(np.std(resampled, ddof=1))


def verdict_curves(rows: Sequence[dict], task_names: Mapping[str, str],
                   methods: Sequence[str] = ("ntk", "nngp")) -> Dict[Tuple[str, str], tuple]:
    """Curves, fits and one table row per (task, method) with points at two or more N_D.

    Args:
        rows: stored rows (`committed_rows`, `ResultStore.rows`), one statistic per point and draw.
        task_names: task -> name shown in the table, in the order wanted (tasks not named are skipped).
        methods: the `method` values to take, in order.

    Returns:
        {(task, method): (curves, fits, row)}: `curves` and `fits` as from those functions; `row` is
        `fit_row` with 'draws' (the number of training-set draws, as text), 'verdict' (`scaling.plateau_verdict`
        of the slope over the largest decade), 'last_slope', 'last_slope_err' (`last_slope`) and, where the
        rows carry the two parts of sigma_L^2, the plateau model's verdicts per test-set size
        (`model_verdicts`).
    """
    out: Dict[Tuple[str, str], tuple] = {}
    for task, name in task_names.items():
        for method in methods:
            rr = select(rows, task=task, method=method)
            if len({r["n_train"] for r in rr}) < 2:
                continue
            c = curves(rr)
            f = fits(c)
            p: Plateau = f["plateau"]  # type: ignore[assignment]
            row = fit_row(name, method.upper(), f)
            row.update(draws=str(len({r["draw"] for r in rr})), verdict=plateau_verdict(p.slope, p.slope_err))
            row["last_slope"], row["last_slope_err"] = last_slope(c)
            row.update(model_verdicts(rr))
            out[(task, method)] = (c, f, row)
    return out


def model_verdicts(rows: Sequence[dict], test_sizes: Sequence[int] = TEST_SIZES) -> Dict[str, str]:
    """The plateau model's verdict at the largest N_D for each test-set size up to the rows' N_T.

    The verdict is `plateau.PlateauModel.verdict` of the model fitted to the rows that carry the split
    (var_diag, var_offdiag).

    Args:
        rows: the stored rows of one curve (one task, method, width).
        test_sizes: the test-set sizes n (default TEST_SIZES); those above the rows' N_T are skipped.

    Returns:
        {'verdict_n=N': ...} per test-set size N; {} when fewer than three sizes carry the split.
    """
    split = [r for r in rows if r.get("var_diag") is not None]
    if len({r["n_train"] for r in split}) < 3:
        return {}
    curve = split_curve(split)
    model = fit_plateau(curve)
    return {f"verdict_n={n}": model.verdict(n) for n in test_sizes if n <= curve.n_test}


__all__ = ["committed_rows", "curves", "fit_row", "fits", "last_slope", "model_verdicts", "not_converged", "select",
           "verdict_curves"]

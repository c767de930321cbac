"""The scaling study: statistics at many N_D, stored point by point (resumable), then fitted.

Rows are built as `results.ResultRow` and returned as stored (dicts with the columns of
`results.COLUMNS`, infinite width written 'inf', t = infinity steps -1); infinite-width rows are exact
for their training set, so their uncertainties come from several training-set draws.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .checks import is_int, check_fraction, check_instance, check_int, check_positive, check_sizes
from .plateau import TEST_SIZES, fit_plateau, split_curve
from .results import ResultRow, ResultStore, environment, point_key
from .scaling import PowerLaw, Plateau, bootstrap_curves, eps_of, fit_power_law, plateau, plateau_verdict
from .spec import MLPSpec
from .sweep import nested_sweep
from .tasks import TaskData

METHOD_LABEL = {"ntk": "NTK, gradient descent", "nngp": "NNGP posterior (Bayesian)", "ensemble": "trained ensemble"}


def infinite_width_study(data: TaskData, spec: MLPSpec, sizes: Sequence[int], *, draws: int = 1,
                         methods: Sequence[str] = ("ntk", "nngp"), store: Optional[ResultStore] = None,
                         diag_reg: float = 0.0, progress: bool = False) -> List[dict]:
    """Exact mu_L, sigma_L, eps_L at every size for each training-set draw; finished draws are not recomputed.

    Args:
      data: the task (`tasks.load`).
      spec: the architecture (infinite width).
      sizes: training-set sizes N_D (prefixes of the draw's permutation of the pool).
      draws: training-set draws per size.
      methods: 'ntk' and/or 'nngp'.
      store: resumable result store (None: in memory).
      diag_reg: added to the diagonal of the train-train kernels.
      progress: show progress bars.

    Draw d takes the training sets from the d-th permutation of the pool, so the pool should be larger
    than the largest size (twice, say) for the draws to differ there.  Every row carries the two parts of
    sigma_L^2 (`var_diag`, `var_offdiag`); a draw whose stored points lack them is recomputed."""
    check_instance(data, "data", TaskData, "a TaskData (tasks.load)")
    check_instance(spec, "spec", MLPSpec)
    sizes = check_sizes(sizes, "sizes", maximum=len(data.x_train), what="the task's pool size")
    draws = check_int(draws, "draws")
    if isinstance(methods, str) or not methods or set(methods) - {"ntk", "nngp"}:
        raise ValueError(f"methods: expected a non-empty subset of ('ntk', 'nngp'), got {methods!r}")
    check_positive(diag_reg, "diag_reg", allow_zero=True)  # validated, not converted: it is part of the keys
    store = store or ResultStore(None)
    env = environment()
    rows = []
    for draw in range(draws):
        keys = {(m, n): point_key(task=data.name, info=data.info, spec=asdict(spec), n_train=n, draw=draw, method=m,
                                  n_test=len(data.x_test), n_pool=len(data.x_train), diag_reg=diag_reg)
                for m in methods for n in sizes}
        done = {k: store.get(v) for k, v in keys.items()}
        if all(_with_split(r) for r in done.values()):  # points stored before the split are recomputed
            rows.extend(done.values())
            continue
        x, y = data.subset(max(sizes), draw)
        start = time.perf_counter()
        points = nested_sweep(spec, x, y, data.x_test, data.y_test, sizes, methods=methods, diag_reg=diag_reg,
                              progress=progress)
        wall = (time.perf_counter() - start) / len(points)
        for p in points:
            row = ResultRow(task=data.name, n_train=p.n_train, width=None, optimizer="gd" if p.method == "ntk" else "bayes",
                            method=p.method, draw=draw, study="infinite", mu=p.stats.mu, sigma=p.stats.sigma,
                            eps=p.stats.eps, var_diag=p.stats.var_diag, var_offdiag=p.stats.var_offdiag,
                            steps=None, seed=draw, wall_s=wall, device=env["device"],
                            versions=env["versions"], params=dict(spec=asdict(spec), n_test=len(data.x_test),
                                                                   diag_reg=diag_reg, data=data.info))
            rows.append(store.put(keys[(p.method, p.n_train)], row))
    return rows


def _with_split(row: Optional[dict]) -> Optional[dict]:
    """The stored row if it carries the two parts of sigma_L^2, else None (to be recomputed)."""
    return row if row is not None and row.get("var_diag") is not None else None


def committed_rows(folder: Union[str, os.PathLike], **match) -> List[dict]:
    """The rows stored in a results folder's points (`ResultStore`; finished or not, e.g. results/paper/points)
    that match every given field (as `select`); [] when the folder does not exist."""
    if not os.path.isdir(folder):
        return []
    return select(ResultStore(folder).rows(), **match)


def select(rows: Iterable[dict], **match) -> List[dict]:
    """Rows whose fields equal every given value (width compared as a string; a missing field matches nothing)."""
    def ok(r):
        return all(str(r.get(k)) == str(v) if k == "width" else (k in r and r[k] == v) for k, v in match.items())
    return [r for r in rows if ok(r)]


def curves(rows: Sequence[dict], n_boot: int = 400, seed: int = 0) -> Dict[str, np.ndarray]:
    """Per N_D: mu, sigma, eps (mean over draws, or the ensemble's values) and bootstrap resamples of each."""
    sizes = sorted({r["n_train"] for r in rows})
    out: Dict[str, np.ndarray] = {"n": np.array(sizes, dtype=float)}
    by_n = [[r for r in rows if r["n_train"] == n] for n in sizes]
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


def fits(c: Dict[str, np.ndarray], decades: float = 1.0) -> Dict[str, object]:
    """Power laws of mu and sigma and the eps plateau for one curve set from `curves`."""
    mu = fit_power_law(c["n"], c["mu"], c.get("mu_boot"))
    sigma = fit_power_law(c["n"], c["sigma"], c.get("sigma_boot"))
    return {"mu": mu, "sigma": sigma, "plateau": plateau(c["n"], c["eps"], c.get("eps_boot"), decades)}


def fit_row(task: str, label: str, f: Dict[str, object]) -> dict:
    """One row of the exponent table: alpha, beta, plateau slope and value, with errors."""
    mu: PowerLaw = f["mu"]  # type: ignore[assignment]
    sigma: PowerLaw = f["sigma"]  # type: ignore[assignment]
    p: Plateau = f["plateau"]  # type: ignore[assignment]
    return {"task": task, "curve": label, "alpha": mu.exponent, "alpha_err": mu.exponent_err,
            "beta": sigma.exponent, "beta_err": sigma.exponent_err, "eps_slope": p.slope,
            "eps_slope_err": p.slope_err, "eps_plateau": p.value, "eps_plateau_err": p.value_err,
            "decade": f"{p.n_lo:.0f}-{p.n_hi:.0f}"}


def last_slope(c: Dict[str, np.ndarray], stat: str = "eps") -> tuple:
    """The log-log slope of a curve from `curves` between its two largest N_D, and its bootstrap error (0.0 when
    the curve has no resamples): how fast the statistic still changes at the end of the range."""
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

    Returns {(task, method): (curves, fits, row)}: `curves` and `fits` as from those functions; `row` is
    `fit_row` with 'draws' (the number of training-set draws, as text), 'verdict' (`scaling.plateau_verdict`
    of the slope over the largest decade), 'last_slope', 'last_slope_err' (`last_slope`) and, where the rows
    carry the two parts of sigma_L^2, the plateau model's verdicts per test-set size (`model_verdicts`).
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
    """The plateau model's verdict at the largest N_D (`plateau.PlateauModel.verdict`) for each test-set size
    n of `test_sizes` up to the rows' N_T, as {'verdict_n=N': ...}; {} when fewer than three sizes carry the
    split (var_diag, var_offdiag)."""
    split = [r for r in rows if r.get("var_diag") is not None]
    if len({r["n_train"] for r in split}) < 3:
        return {}
    curve = split_curve(split)
    model = fit_plateau(curve)
    return {f"verdict_n={n}": model.verdict(n) for n in test_sizes if n <= curve.n_test}


def plateau_summary(table: Sequence[dict], missing: Sequence[str] = (), draws_wanted: int = 3) -> str:
    """Sentences (MyST markdown) on the eps_L plateau verdicts of `fit_row` rows that carry 'verdict' (from
    `scaling.plateau_verdict`) and 'draws': how many curves reach the plateau, which still fall or rise, the range
    of slopes (and of 'last_slope', `last_slope`, if every row has it), the tasks in `missing` that have no
    points, and the tasks with fewer than `draws_wanted` draws."""
    if not table:
        return "No points are committed yet."
    def names(verdict):
        return [f"{r['task']} {r['curve']}" for r in table if r["verdict"] == verdict]
    flat, falling, rising = names("plateau"), names("still falling"), names("rising")
    parts = [f"{len(flat)} of the {len(table)} curves reach the plateau by this test ({', '.join(flat)})" if flat
             else f"None of the {len(table)} curves reaches the plateau by this test"]
    if falling:
        parts.append(f"{len(falling)} still {'falls' if len(falling) == 1 else 'fall'} ({', '.join(falling)})")
    if rising:
        parts.append(f"{len(rising)} {'rises' if len(rising) == 1 else 'rise'} ({', '.join(rising)})")
    slopes = [r["eps_slope"] for r in table]
    text = "; ".join(parts) + (f". The slopes of $\\epsilon_\\mathcal{{L}}$ over the largest decade run from "
                               f"{min(slopes):.2f} to {max(slopes):.2f}.")
    if all("last_slope" in r for r in table):
        last = [r["last_slope"] for r in table]
        text += f" Between the two largest sizes they run from {min(last):.2f} to {max(last):.2f}."
    if missing:
        text += f" No points of {' or '.join(missing)} are committed yet."
    few = [t for t in dict.fromkeys(r["task"] for r in table) if any(
        int(r["draws"]) < draws_wanted for r in table if r["task"] == t)]
    if few:
        names = few[0] if len(few) == 1 else ", ".join(few[:-1]) + " and " + few[-1]
        text += (f" {names} {'rests' if len(few) == 1 else 'rest'} on fewer than {draws_wanted} "
                 "training-set draws, so the errors there are rough (with one draw the points have no error "
                 "bars, and the fits' errors come only from the scatter about the fit).")
    return text


def _last_change(history: np.ndarray) -> Optional[float]:
    """history[-1] / history[-2] - 1, or None when there is no earlier recording or it is not a finite nonzero number."""
    if len(history) < 2 or not (np.isfinite(history[-2]) and history[-2] != 0):
        return None
    return float(history[-1] / history[-2] - 1)


def finite_width_study(data: TaskData, spec: MLPSpec, sizes: Sequence[int], *, members: int,
                       steps: Union[int, str] = "auto", eta_fraction: float = 0.5, optimizer: str = "momentum",
                       momentum: Optional[float] = None, tol: float = 0.01, min_steps: int = 0,
                       batch_size: Optional[int] = None, warmup: int = 0,
                       seed: int = 0, draws: int = 1, store: Optional[ResultStore] = None,
                       with_infinite: bool = True, progress: bool = False) -> List[dict]:
    """Train an ensemble at every size and draw, and beside it the exact infinite-width ensemble.

    Args:
      data, spec: the task and the architecture (spec.width finite).
      sizes: training-set sizes N_D (prefixes of the draw's permutation of the pool).
      members: ensemble size M.
      steps: optimizer steps T, or "auto": `convergence.converged_steps` on the infinite-width engine, so
        that mu_L and sigma_L of the infinite-width ensemble are within `tol` of t = infinity.
      eta_fraction: the rate as a fraction of the optimizer's stable maximum (or Adam's step size).
      optimizer, momentum: 'gd', 'momentum', 'nesterov' (closed-form infinite-width counterparts), 'sgd', 'adam'.
      tol: the convergence tolerance for steps="auto".
      min_steps: with steps="auto", train at least this many steps (finite-width networks train more slowly
        than their infinite-width limit; each row records the train-loss drift over its last recording interval).
      batch_size: 'sgd' only.  seed: initializations.  draws: training-set draws per size.
      warmup: W >= 0 steps of linear warmup (as in `train_ensemble`), followed exactly by the infinite-width
        engine, in the steps-to-convergence rule as well.
      store: resumable result store (rows keyed by what the user chose, never by derived numbers).
      with_infinite: also store the infinite-width rows (full-batch optimizers): the ensemble after the
        same T steps (steps = T) and at t = infinity (steps = -1).
    Every row records the optimizer, momentum, T and eta in its params, and the two parts of sigma_L^2
    (`var_diag`, `var_offdiag`; for the ensemble with bootstrap errors over members); a point stored
    without them is recomputed.
    """
    from .convergence import converged_steps
    from .dynamics import ntk_prediction, train_test_kernels
    from .budget import convergence_bytes, kernels_bytes, require_infinite
    from .ensembles import FULL_BATCH, OPTIMIZERS, default_eta, require_ensemble_memory, train_ensemble
    from .gains import check_optimizer
    from .lossstats import loss_stats

    check_instance(data, "data", TaskData, "a TaskData (tasks.load)")
    check_instance(spec, "spec", MLPSpec)
    if spec.width is None:
        raise ValueError("width: expected a spec with a finite width for a trained ensemble, got None (infinite)")
    sizes = check_sizes(sizes, "sizes", maximum=len(data.x_train), what="the task's pool size")
    members = check_int(members, "members", minimum=2)
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
    # eta_fraction and tol are validated but not converted: they are part of the result keys
    if optimizer == "adam":
        check_positive(eta_fraction, "eta_fraction")  # Adam's step size itself
    else:
        check_fraction(eta_fraction, "eta_fraction")
    check_fraction(tol, "tol")
    min_steps = check_int(min_steps, "min_steps", minimum=0)
    warmup = check_int(warmup, "warmup", minimum=0)
    if warmup and optimizer == "adam":
        raise ValueError("warmup: only for 'gd', 'momentum', 'nesterov' and 'sgd', got a warmup with 'adam'")
    seed = check_int(seed, "seed", minimum=0)
    draws = check_int(draws, "draws")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", maximum=sizes[0], what="the smallest training-set size")
    auto = isinstance(steps, str) and steps == "auto"
    if auto and optimizer not in FULL_BATCH:
        raise ValueError(f"steps: 'auto' needs a full-batch optimizer {FULL_BATCH}, got optimizer {optimizer!r}")
    if not auto and (not is_int(steps) or steps < 0):
        raise ValueError(f"steps: expected an integer >= 0 or 'auto', got {steps!r}")
    steps = steps if auto else int(steps)  # Python ints in the result keys
    beta = check_optimizer(optimizer, momentum) if optimizer in FULL_BATCH else None
    mom = None if optimizer not in ("momentum", "nesterov") else beta
    # Memory before anything is computed (ntkuq.budget): the largest size's kernels, eigendecomposition
    # and ensemble.
    n_max, n_test = sizes[-1], len(data.x_test)
    if auto or (with_infinite and optimizer in FULL_BATCH):
        require_infinite("finite_width_study (its infinite-width engine)", n_max, n_test,
                         lambda n, t: kernels_bytes(n, t) + convergence_bytes(n, t))
    require_ensemble_memory(spec, data.x_train.shape[1], data.y_train.shape[1], n_max, n_test, members,
                            steps=max(int(min_steps), 1) if auto else steps, optimizer=optimizer,
                            what="finite_width_study (its largest ensemble)")
    store = store or ResultStore(None)
    env = environment()
    rows = []
    for draw in range(draws):
        for n in sizes:
            # The key holds what the user chose (steps rule, fraction), never derived numbers.
            common = dict(task=data.name, info=data.info, spec=asdict(spec.with_width(None)), n_train=n,
                          n_test=len(data.x_test), n_pool=len(data.x_train), steps=steps, eta_fraction=eta_fraction,
                          seed=seed, optimizer=optimizer, momentum=mom, draw=draw,
                          tol=tol if auto else None, **({"min_steps": min_steps} if auto and min_steps else {}),
                          **({"warmup": warmup} if warmup else {}))  # keys of runs without warmup unchanged
            key = point_key(**common, width=spec.width, members=members, batch_size=batch_size)
            keys_inf = {which: point_key(**common, width="inf", at=which) for which in ("T", "inf")}
            want_inf = with_infinite and optimizer in FULL_BATCH
            row = _with_split(store.get(key))  # a point stored before the split is recomputed
            inf_rows = {w: _with_split(store.get(k)) for w, k in keys_inf.items()} if want_inf else {}
            if row is not None and all(inf_rows.values()):
                rows.append(row)
                rows.extend(inf_rows[w] for w in ("T", "inf") if w in inf_rows)
                continue
            x, y = data.subset(n, draw)
            start = time.perf_counter()
            eta = (default_eta(spec.with_width(None), x, eta_fraction, optimizer if optimizer != "sgd" else "gd", mom)
                   if optimizer != "adam" else eta_fraction)
            kern = train_test_kernels(spec.with_width(None), x, data.x_test) if (auto or want_inf) else None
            if auto:
                conv = converged_steps(kern, y, data.y_test, eta=eta, optimizer=optimizer, momentum=mom, tol=tol,
                                       warmup=warmup)
                T_inf, converged = conv.steps, conv.converged
                T = max(T_inf, int(min_steps))
            else:
                T, T_inf, converged = int(steps), None, None
            setup_s = time.perf_counter() - start
            params = dict(spec=asdict(spec), eta=eta, eta_fraction=eta_fraction, momentum=mom, tol=tol if auto else None,
                          steps_rule=str(steps), converged=converged, steps_infinite=T_inf, min_steps=min_steps,
                          batch_size=batch_size, **({"warmup": warmup} if warmup else {}),
                          n_test=len(data.x_test), data=data.info)
            base = dict(task=data.name, n_train=n, optimizer=optimizer, draw=draw, seed=seed, study="finite",
                        device=env["device"], versions=env["versions"])
            if row is None:
                start = time.perf_counter()
                res = train_ensemble(spec, x, y, data.x_test, data.y_test, n_members=members, steps=T, eta=eta,
                                     seed=seed, optimizer=optimizer, momentum=mom, batch_size=batch_size,
                                     warmup=warmup, progress=progress)
                st = res.stats(seed=seed)
                split = res.split(seed=seed)
                mean_train = res.train_history.mean(axis=0)
                mean_test = res.test_history.mean(axis=0)
                # relative change over the last recording interval; None (not NaN) where there is none (T = 0)
                drift = dict(train_loss=float(mean_train[-1]), train_drift=_last_change(mean_train),
                             test_drift=_last_change(mean_test),
                             drift_from=int(res.steps[-2]) if len(res.steps) > 1 else None,
                             alive=[float(v) for v in res.alive_history[:, -1].mean(axis=0)])
                row = store.put(key, ResultRow(
                    **base, width=spec.width, method="ensemble", mu=st.mu, sigma=st.sigma, eps=st.eps,
                    mu_err=st.mu_err, sigma_err=st.sigma_err, eps_err=st.eps_err, members=members, steps=T,
                    var_diag=split.var_diag, var_offdiag=split.var_offdiag, var_diag_err=split.var_diag_err,
                    var_offdiag_err=split.var_offdiag_err,
                    wall_s=time.perf_counter() - start + setup_s,
                    member_losses=[float(v) for v in res.test_losses], params={**params, **drift}))
            rows.append(row)
            if want_inf:
                for which, t_steps in (("T", T), ("inf", None)):
                    if inf_rows.get(which) is None:
                        start = time.perf_counter()
                        pred = (ntk_prediction(kern, y) if t_steps is None else
                                ntk_prediction(kern, y, steps=t_steps, eta=eta, optimizer=optimizer, momentum=mom,
                                               warmup=warmup))
                        st = loss_stats(pred, data.y_test)
                        inf_rows[which] = store.put(keys_inf[which], ResultRow(
                            **base, width=None, method="ntk", mu=st.mu, sigma=st.sigma, eps=st.eps, steps=t_steps,
                            var_diag=st.var_diag, var_offdiag=st.var_offdiag,
                            wall_s=time.perf_counter() - start,
                            params={**params, "spec": asdict(spec.with_width(None))}))
                    rows.append(inf_rows[which])
    return rows

"""The scaling study: statistics at many N_D, stored point by point (resumable), then fitted.

Rows are dicts with the columns of `results.COLUMNS`; infinite-width rows have width 'inf' and are
exact for their training set, so their uncertainties come from several training-set draws.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from .results import ResultStore, environment, point_key
from .scaling import PowerLaw, Plateau, bootstrap_curves, eps_of, fit_power_law, plateau
from .spec import MLPSpec
from .sweep import nested_sweep
from .tasks import TaskData

METHOD_LABEL = {"ntk": "NTK, gradient descent", "nngp": "NNGP posterior (Bayesian)", "ensemble": "trained ensemble"}


def infinite_width_study(data: TaskData, spec: MLPSpec, sizes: Sequence[int], *, draws: int = 1,
                         methods: Sequence[str] = ("ntk", "nngp"), store: Optional[ResultStore] = None,
                         diag_reg: float = 0.0, progress: bool = False) -> List[dict]:
    """Exact mu_L, sigma_L, eps_L at every size for each training-set draw; finished draws are not recomputed.

    Draw d takes the training sets from the d-th permutation of the pool, so the pool should be larger
    than the largest size (twice, say) for the draws to differ there."""
    store = store or ResultStore(None)
    env = environment()
    rows = []
    for draw in range(draws):
        keys = {(m, n): point_key(task=data.name, info=data.info, spec=asdict(spec), n_train=n, draw=draw, method=m,
                                  n_test=len(data.x_test), n_pool=len(data.x_train), diag_reg=diag_reg)
                for m in methods for n in sizes}
        done = {k: store.get(v) for k, v in keys.items()}
        if all(done.values()):
            rows.extend(done.values())
            continue
        x, y = data.subset(max(sizes), draw)
        start = time.perf_counter()
        points = nested_sweep(spec, x, y, data.x_test, data.y_test, sizes, methods=methods, diag_reg=diag_reg,
                              progress=progress)
        wall = (time.perf_counter() - start) / len(points)
        for p in points:
            row = dict(task=data.name, n_train=p.n_train, width="inf", optimizer="gd" if p.method == "ntk" else "bayes",
                       method=p.method, draw=draw, mu=p.stats.mu, sigma=p.stats.sigma, eps=p.stats.eps,
                       mu_err=0.0, sigma_err=0.0, eps_err=0.0, members=0, steps=-1, seed=draw, wall_s=wall,
                       device=env["device"], versions=env["versions"], params=dict(spec=asdict(spec),
                       n_test=len(data.x_test), diag_reg=diag_reg, data=data.info))
            rows.append(store.put(keys[(p.method, p.n_train)], row))
    return rows


def select(rows: Iterable[dict], **match) -> List[dict]:
    """Rows whose fields equal every given value (width compared as a string)."""
    def ok(r):
        return all(str(r[k]) == str(v) if k == "width" else r[k] == v for k, v in match.items())
    return [r for r in rows if ok(r)]


def curves(rows: Sequence[dict], n_boot: int = 400, seed: int = 0) -> Dict[str, np.ndarray]:
    """Per N_D: mu, sigma, eps (mean over draws, or the ensemble's values) and bootstrap resamples of each."""
    sizes = sorted({r["n_train"] for r in rows})
    out: Dict[str, np.ndarray] = {"n": np.array(sizes, dtype=float)}
    by_n = [[r for r in rows if r["n_train"] == n] for n in sizes]
    members = all(len(g) == 1 and isinstance(g[0].get("member_losses"), list) for g in by_n)
    if members:  # finite width: bootstrap over members of each point's ensemble
        samples = [np.asarray(g[0]["member_losses"], dtype=float) for g in by_n]
        out["mu"] = np.array([s.mean() for s in samples])
        out["sigma"] = np.array([s.std(ddof=1) for s in samples])
        out["eps"] = out["sigma"] / out["mu"]
        for name, stat in (("mu", np.mean), ("sigma", lambda s: np.std(s, ddof=1)), ("eps", eps_of)):
            out[f"{name}_boot"] = bootstrap_curves(samples, stat, n_boot, seed)
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


def finite_width_study(data: TaskData, spec: MLPSpec, sizes: Sequence[int], *, members: int, steps: int,
                       eta_fraction: float = 0.5, optimizer: str = "gd", batch_size: Optional[int] = None,
                       seed: int = 0, store: Optional[ResultStore] = None, with_infinite: bool = True,
                       progress: bool = False) -> List[dict]:
    """Train an ensemble at every size (and, for 'gd', the infinite-width prediction after the same steps)."""
    from .dynamics import ntk_prediction, train_test_kernels
    from .ensembles import default_eta, train_ensemble
    from .lossstats import loss_stats

    store = store or ResultStore(None)
    env = environment()
    rows = []
    for n in sizes:
        x, y = data.subset(n, 0)
        eta = default_eta(spec.with_width(None), x, eta_fraction) if optimizer != "adam" else eta_fraction
        # eta is derived from eta_fraction (a Lanczos estimate): the key holds what the user chose.
        common = dict(task=data.name, info=data.info, spec=asdict(spec.with_width(None)), n_train=n,
                      n_test=len(data.x_test), n_pool=len(data.x_train), steps=steps, eta_fraction=eta_fraction,
                      optimizer_eta=eta if optimizer == "adam" else None, seed=seed)
        key = point_key(**common, width=spec.width, members=members, optimizer=optimizer, batch_size=batch_size)
        row = store.get(key)
        if row is None:
            start = time.perf_counter()
            res = train_ensemble(spec, x, y, data.x_test, data.y_test, n_members=members, steps=steps, eta=eta,
                                 seed=seed, optimizer=optimizer, batch_size=batch_size, progress=progress)
            st = res.stats(seed=seed)
            row = store.put(key, dict(
                task=data.name, n_train=n, width=spec.width, optimizer=optimizer, method="ensemble", draw=0,
                mu=st.mu_L, sigma=st.sigma_L, eps=st.eps_L, mu_err=st.mu_L_err, sigma_err=st.sigma_L_err,
                eps_err=st.eps_L_err, members=members, steps=steps, seed=seed,
                wall_s=time.perf_counter() - start, device=env["device"], versions=env["versions"],
                member_losses=[float(v) for v in res.test_losses],
                params=dict(spec=asdict(spec), eta=eta, eta_fraction=eta_fraction, batch_size=batch_size,
                            n_test=len(data.x_test), data=data.info)))
        rows.append(row)
        if with_infinite and optimizer == "gd":
            key_inf = point_key(**common, width="inf")
            inf = store.get(key_inf)
            if inf is None:
                start = time.perf_counter()
                kern = train_test_kernels(spec.with_width(None), x, data.x_test)
                st = loss_stats(ntk_prediction(kern, y, steps=steps, eta=eta), data.y_test)
                inf = store.put(key_inf, dict(
                    task=data.name, n_train=n, width="inf", optimizer="gd", method="ntk", draw=0, mu=st.mu,
                    sigma=st.sigma, eps=st.eps, mu_err=0.0, sigma_err=0.0, eps_err=0.0, members=0, steps=steps,
                    seed=seed, wall_s=time.perf_counter() - start, device=env["device"], versions=env["versions"],
                    params=dict(spec=asdict(spec.with_width(None)), eta=eta, n_test=len(data.x_test), data=data.info)))
            rows.append(inf)
    return rows

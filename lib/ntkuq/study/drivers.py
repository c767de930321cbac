"""The scaling study: statistics at many N_D, stored point by point (resumable), then fitted.

Rows are built as `results.ResultRow` and returned as stored (dicts with the columns of
`results.COLUMNS`, infinite width written 'inf', t = infinity steps -1); infinite-width rows are exact
for their training set, so their uncertainties come from several training-set draws.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import List, Optional, Sequence, Union

import numpy as np

from ntkuq._src.budget import require_infinite
from ntkuq._src.checks import check_fraction, check_instance, check_int, check_positive, check_sizes, is_int
from ntkuq.data.subsets import TaskData
from ntkuq.finite.checkpoint import Checkpoint
from ntkuq.finite.ensembles import train_ensemble
from ntkuq.finite.memory import require_ensemble_memory
from ntkuq.finite.stopping import StopRule
from ntkuq.finite.training import FULL_BATCH, OPTIMIZERS, default_eta
from ntkuq.infinite.convergence import converged_steps, convergence_bytes
from ntkuq.infinite.gains import check_optimizer
from ntkuq.infinite.kernels import kernels_bytes
from ntkuq.infinite.lossstats import loss_stats
from ntkuq.infinite.predict import ntk_prediction, train_test_kernels
from ntkuq.infinite.sweep import nested_sweep
from ntkuq.spec import MLPSpec
from ntkuq.study.store import ResultRow, ResultStore, environment, point_key

METHOD_LABEL = {"ntk": "NTK, gradient descent", "nngp": "NNGP posterior (Bayesian)", "ensemble": "trained ensemble"}


def infinite_width_study(data: TaskData, spec: MLPSpec, sizes: Sequence[int], *, draws: int = 1,
                         methods: Sequence[str] = ("ntk", "nngp"), store: Optional[ResultStore] = None,
                         diag_reg: float = 0.0, progress: bool = False) -> List[dict]:
    """Exact mu_L, sigma_L, eps_L at every size for each training-set draw; finished draws are not recomputed.

    Draw d takes the training sets from the d-th permutation of the pool, so the pool should be larger
    than the largest size (twice, say) for the draws to differ there.  Every row carries the two parts of
    sigma_L^2 (`var_diag`, `var_offdiag`); a draw whose stored points lack them is recomputed.

    Args:
        data: the task (`tasks.load`).
        spec: the architecture (infinite width).
        sizes: training-set sizes N_D (prefixes of the draw's permutation of the pool).
        draws: training-set draws per size.
        methods: 'ntk' and/or 'nngp'.
        store: resumable result store (None: in memory).
        diag_reg: added to the diagonal of the train-train kernels.
        progress: show progress bars.

    Returns:
        The rows as stored (dicts with the columns of `results.COLUMNS`), one per draw, method and size.

    Raises:
        ValueError: methods is not a non-empty subset of ('ntk', 'nngp').
    """
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
            row = ResultRow(task=data.name, n_train=p.n_train, width=None,
                            optimizer="gd" if p.method == "ntk" else "bayes", method=p.method, draw=draw,
                            study="infinite", mu=p.stats.mu, sigma=p.stats.sigma, eps=p.stats.eps,
                            var_diag=p.stats.var_diag, var_offdiag=p.stats.var_offdiag, steps=None, seed=draw,
                            wall_s=wall, device=env["device"],
                            versions=env["versions"], params=dict(spec=asdict(spec), n_test=len(data.x_test),
                                                                   diag_reg=diag_reg, data=data.info))
            rows.append(store.put(keys[(p.method, p.n_train)], row))
    return rows


def _with_split(row: Optional[dict]) -> Optional[dict]:
    """The stored row if it carries the two parts of sigma_L^2, else None (to be recomputed)."""
    return row if row is not None and row.get("var_diag") is not None else None


def _last_change(history: np.ndarray) -> Optional[float]:
    """history[-1] / history[-2] - 1, or None when there is no earlier recording or it is not finite and nonzero."""
    if len(history) < 2 or not (np.isfinite(history[-2]) and history[-2] != 0):
        return None
    return float(history[-1] / history[-2] - 1)


def _steps_key(common: dict, steps_taken: int) -> str:
    """The key of the infinite-width ensemble after the steps a stopped ensemble took (they differ per width)."""
    return point_key(**common, width="inf", at="T", steps_taken=steps_taken)


def finite_width_study(data: TaskData, spec: MLPSpec, sizes: Sequence[int], *, members: int,
                       steps: Union[int, str] = "auto", eta_fraction: float = 0.5, optimizer: str = "momentum",
                       momentum: Optional[float] = None, tol: float = 0.01, min_steps: int = 0,
                       batch_size: Optional[int] = None, warmup: int = 0,
                       converge: Optional[float] = None, max_steps: Optional[int] = None,
                       seed: int = 0, draws: int = 1, store: Optional[ResultStore] = None,
                       with_infinite: bool = True, checkpoint: Optional[Checkpoint] = None,
                       progress: bool = False) -> List[dict]:
    """Train an ensemble at every size and draw, and beside it the exact infinite-width ensemble.

    Every row records the optimizer, momentum, T and eta in its params, and the two parts of sigma_L^2
    (`var_diag`, `var_offdiag`; for the ensemble with bootstrap errors over members); a point stored
    without them is recomputed.

    Args:
        data: the task (`tasks.load`).
        spec: the architecture (spec.width finite).
        sizes: training-set sizes N_D (prefixes of the draw's permutation of the pool).
        members: ensemble size M.
        steps: optimizer steps T, or "auto": `convergence.converged_steps` on the infinite-width engine, so
            that mu_L and sigma_L of the infinite-width ensemble are within `tol` of t = infinity.
        eta_fraction: the rate as a fraction of the optimizer's stable maximum (or Adam's step size).
        optimizer: 'gd', 'momentum', 'nesterov' (closed-form infinite-width counterparts), 'sgd', 'adam'.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9).
        tol: the convergence tolerance for steps="auto".
        min_steps: with steps="auto", train at least this many steps (finite-width networks train more slowly
            than their infinite-width limit; each row records the train-loss drift over its last recording
            interval).
        batch_size: 'sgd' only.
        warmup: W >= 0 steps of linear warmup (as in `train_ensemble`), followed exactly by the infinite-width
            engine, in the steps-to-convergence rule as well.
        converge: the stopping rule's tolerance (`ntkuq.finite.StopRule`): train until the members' mean
            training loss moves by less than `converge` over the last quarter of the steps, after at least T
            (the steps above) and the warmup, capped at max_steps; the row's `steps` are those taken and its
            params hold the record (`stopping`: cap, drift, converged, dead-unit share). None (default): T steps.
        max_steps: the cap with `converge` (default 20 T, at least 1,000).
        seed: initializations.
        draws: training-set draws per size.
        store: resumable result store (rows keyed by what the user chose, never by derived numbers).
        with_infinite: also store the infinite-width rows (full-batch optimizers): the ensemble after the
            same T steps (steps = T) and at t = infinity (steps = -1).
        checkpoint: resumable training (`ntkuq.finite.Checkpoint`) with checkpoint.path a folder: each ensemble in
            training keeps its snapshot there under its point's key, so an interrupted study continues inside
            the ensemble it was training (the file goes when that ensemble has finished training, a moment
            before its point is stored).  None (default): none.  A resumed row's wall_s is its training over
            every sitting plus this sitting's setup.
        progress: show progress bars.

    Returns:
        The rows as stored (dicts with the columns of `results.COLUMNS`): per draw and size the ensemble's row,
        followed (with_infinite) by the infinite-width rows at T and at t = infinity.

    Raises:
        ValueError: an infinite width, an unknown optimizer, a warmup with 'adam', steps="auto" with an
            optimizer that is not full-batch, or steps neither an integer >= 0 nor "auto".
        InputTypeError: checkpoint is not a Checkpoint.
        TooLargeError: the largest size's infinite-width engine or ensemble would not fit in memory.
        TrainingInterrupted: the checkpoint's deadline passed while an ensemble trained (its state is saved).
    """
    check_instance(data, "data", TaskData, "a TaskData (tasks.load)")
    check_instance(spec, "spec", MLPSpec)
    if checkpoint is not None:
        check_instance(checkpoint, "checkpoint", Checkpoint, "a Checkpoint (ntkuq.finite.Checkpoint) or None")
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
    if converge is not None:
        check_fraction(converge, "converge")
    elif max_steps is not None:
        raise ValueError(f"max_steps: only used with converge (the stopping rule), got {max_steps!r}")
    if max_steps is not None:
        max_steps = check_int(max_steps, "max_steps")
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
    # Memory before anything is computed (ntkuq._src.budget): the largest size's kernels, eigendecomposition
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
                          **({"warmup": warmup} if warmup else {}),  # keys of runs without warmup unchanged
                          **({"converge": converge, "max_steps": max_steps} if converge is not None else {}))
            key = point_key(**common, width=spec.width, members=members, batch_size=batch_size)
            keys_inf = {which: point_key(**common, width="inf", at=which) for which in ("T", "inf")}
            want_inf = with_infinite and optimizer in FULL_BATCH
            row = _with_split(store.get(key))  # a point stored before the split is recomputed
            if converge is not None:  # the steps, and so the infinite width after them, depend on the trained width
                keys_inf["T"] = None if row is None else _steps_key(common, int(row["steps"]))
            inf_rows = ({w: None if k is None else _with_split(store.get(k)) for w, k in keys_inf.items()}
                        if want_inf else {})
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
            params = dict(spec=asdict(spec), eta=eta, eta_fraction=eta_fraction, momentum=mom,
                          tol=tol if auto else None, steps_rule=str(steps), converged=converged, steps_infinite=T_inf,
                          min_steps=min_steps,
                          batch_size=batch_size, **({"warmup": warmup} if warmup else {}),
                          n_test=len(data.x_test), data=data.info)
            base = dict(task=data.name, n_train=n, optimizer=optimizer, draw=draw, seed=seed, study="finite",
                        device=env["device"], versions=env["versions"])
            rule = None if converge is None else StopRule(converge, T)
            cap = None if converge is None else (max_steps if max_steps is not None else max(20 * T, 1000))
            if row is None:
                res = train_ensemble(spec, x, y, data.x_test, data.y_test, n_members=members,
                                     steps=T if rule is None else max(cap, T), eta=eta,
                                     seed=seed, optimizer=optimizer, momentum=mom, batch_size=batch_size,
                                     warmup=warmup, stop=rule, progress=progress,
                                     checkpoint=None if checkpoint is None else checkpoint.for_point(key))
                if rule is not None:
                    T, drift_rec = res.stopping.steps, {"stopping": res.stopping.as_dict()}
                else:
                    drift_rec = {}
                st = res.stats(seed=seed)
                split = res.split(seed=seed)
                last = res.recorded  # the histories up to the stop
                mean_train = res.train_history[:, :last].mean(axis=0)
                mean_test = res.test_history[:, :last].mean(axis=0)
                # relative change over the last recording interval; None (not NaN) where there is none (T = 0)
                drift = dict(train_loss=float(mean_train[-1]), train_drift=_last_change(mean_train),
                             test_drift=_last_change(mean_test),
                             drift_from=int(res.steps[last - 2]) if last > 1 else None,
                             alive=[float(v) for v in res.alive_history[:, -1].mean(axis=0)], **drift_rec)
                row = store.put(key, ResultRow(
                    **base, width=spec.width, method="ensemble", mu=st.mu, sigma=st.sigma, eps=st.eps,
                    mu_err=st.mu_err, sigma_err=st.sigma_err, eps_err=st.eps_err, members=members, steps=T,
                    var_diag=split.var_diag, var_offdiag=split.var_offdiag, var_diag_err=split.var_diag_err,
                    var_offdiag_err=split.var_offdiag_err,
                    wall_s=res.seconds + setup_s,  # a resumed ensemble's earlier sittings included
                    member_losses=[float(v) for v in res.test_losses], params={**params, **drift}))
            elif rule is not None:
                T = int(row["steps"])  # the steps the stored ensemble took
            if rule is not None:
                keys_inf["T"] = _steps_key(common, T)
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


__all__ = ["METHOD_LABEL", "finite_width_study", "infinite_width_study"]

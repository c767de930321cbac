"""Finite-width ensembles: M MLPs from independent initializations, trained together on shared data.

`train_ensemble` trains them (`ntkuq.finite.training` has the optimizers, steps and learning rates) and
records at log-spaced steps each member's train loss L_train = 1 / (2 N_D) sum (z - y)^2 and test loss
L = 1 / (N_T k) sum_d sum_i (z_i(x_d) - y_id)^2, and at the end each member's loss on every test point
(`ntkuq.finite.stats`).  Its memory is estimated before anything is allocated (`ntkuq.finite.memory`) and a
run that would not fit is refused, naming what would; a long run can save its state and resume
(`ntkuq.finite.checkpoint`).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ntkuq._src.checks import check_inputs, check_int, check_positive
from ntkuq.errors import InputTypeError, TrainingInterrupted
from ntkuq.finite.checkpoint import Checkpoint, fingerprint, fit_members, set_aside
from ntkuq.finite.checkpoint import load as load_checkpoint
from ntkuq.finite.checkpoint import remove as remove_checkpoint
from ntkuq.finite.checkpoint import save as save_checkpoint
from ntkuq.finite.memory import auto_chunk, require_ensemble_memory
from ntkuq.finite.network import layer_sizes
from ntkuq.finite.sharding import member_mesh, padded_count, replicate, shard_members, to_host
from ntkuq.finite.span import reduce_inputs, reduce_members, span_basis, use_span
from ntkuq.finite.stats import EnsembleResult
from ntkuq.finite.stopping import StopRecord, StopRule, check_steps, relative_fall
from ntkuq.finite.training import (
    OPTIMIZERS,
    _ensemble_runner,
    _evaluate,
    default_eta,
    init_members,
    make_optimizer,
    shuffle_key,
    stable_eta_max,
)
from ntkuq.infinite.gains import check_optimizer
from ntkuq.spec import MLPSpec

Array = jax.Array
def record_steps(steps: int, n_record: int = 20) -> np.ndarray:
    """Unique rounded log-spaced steps from 0 to `steps`, both included.

    Args:
        steps: the last step T (0 gives the steps 0 and T only).
        n_record: the number of log-spaced points asked for (default 20); rounding merges duplicates.

    Returns:
        The sorted unique steps, an int64 array starting at 0 and ending at `steps`.
    """
    inner = np.round(np.geomspace(1, steps, max(n_record - 1, 1))).astype(np.int64) if steps >= 1 else []
    return np.unique(np.concatenate([[0, steps], inner])).astype(np.int64)


def train_ensemble(spec: MLPSpec, x_train, y_train, x_test, y_test, *, n_members: int, steps: int,
                   eta: Optional[float] = None, seed: int = 0, optimizer: str = "gd",
                   momentum: Optional[float] = None,
                   batch_size: Optional[int] = None, tol: Optional[float] = None, n_record: int = 20,
                   chunk: Optional[int] = None, dtype=jnp.float32, keep_outputs: bool = False,
                   allow_unstable: bool = False, warmup: int = 0, stop: Optional[StopRule] = None,
                   span: Union[bool, str] = "auto", checkpoint: Optional[Checkpoint] = None,
                   progress: bool = True) -> EnsembleResult:
    """Train n_members networks of spec.width for at most `steps` steps and record their losses.

    Args:
        spec: the architecture, with a finite width.
        x_train: training inputs (points x features), float64 or float32.
        y_train: training targets (points x outputs), one row per training input.
        x_test: test inputs (points x features), as many features as x_train.
        y_test: test targets (points x outputs), one row per test input and as many outputs as y_train.
        n_members: ensemble size M; member m starts from fold_in(PRNGKey(seed), m).
        steps: optimizer steps T (see ntkuq.infinite.converged_steps for a T that converges); with `stop`, the cap.
        eta: learning rate; None: default_eta (half the stable maximum of the optimizer). Required for 'adam'.
        seed: the run's seed (initializations and, for 'sgd', the shuffling).
        optimizer: 'gd', 'momentum' (heavy ball), 'nesterov', 'sgd' (mini-batches) or 'adam'.
        momentum: beta in [0, 1) for 'momentum' / 'nesterov' (None: 0.9); must be None otherwise.
        batch_size: mini-batch size, 'sgd' only.
        tol: stop a chunk once all its members' train losses are below tol (checked at recording steps).
        n_record: number of log-spaced recording steps (losses of every member).
        chunk: members trained in one vmap (None: from a memory budget).
        dtype: float32 (default) or float64 parameters and data.
        keep_outputs: also return every member's test outputs (M, N_T, k).
        allow_unstable: accept eta above the stable maximum of the analytic NTK ('adam' is never checked) and
            return non-finite losses of diverged members instead of raising ValueError.
        warmup: W >= 0 steps of linear warmup: step t at the rate eta min(1, (t + 1) / W) (0: none); the
            infinite-width engine follows the same ramp (`ntkuq.infinite.gains.residual_factor`).
        stop: a StopRule (`ntkuq.finite.stopping`): stop a chunk of members once their mean training loss moved
            by less than stop.rtol over the last quarter of the steps, checked from max(stop.min_steps, warmup)
            on and at the cap `steps`; None (default) trains exactly `steps` steps.  With several chunks the rule
            is applied to each chunk's members apart (pass chunk >= n_members for one decision over all).
        span: train the first layer in the span of the training inputs (`ntkuq.finite.span`: exact for 'gd',
            'momentum', 'nesterov' and 'sgd', cheaper when there are more features than training points):
            "auto" (default) when n_0 > N_D and the optimizer allows it, True to insist, False never.
        checkpoint: save the training state to checkpoint.path while training and continue from a snapshot of
            this same run found there (`ntkuq.finite.checkpoint`; the result is the uninterrupted run's, bit for
            bit); the file is removed when the run finishes.  None (default): no snapshots.
        progress: show a progress bar.

    Returns:
        An EnsembleResult: the members' final test and train losses, their histories at the recording steps
        (`record_steps`, and with `stop` its check steps and the starts of their last quarters), each member's
        last trained step, the learning rate eta used, the alive fractions, each member's final loss on every
        test point, with keep_outputs the test outputs (M, N_T, k), and with `stop` its StopRecord (steps
        taken, final drift, converged, dead-unit share).

    Raises:
        ValueError: an infinite width; an unknown optimizer; momentum with an optimizer other than 'momentum' or
            'nesterov'; a dtype other than float32 or float64; a warmup with 'adam'; batch_size missing or
            larger than N_D for 'sgd', or given for another optimizer; no eta for 'adam'; eta at or above the
            stable maximum, or training that diverged (both unless allow_unstable); steps = 0 with a stop rule;
            span another string than "auto", or True with 'adam'.
        InputTypeError: stop is not a StopRule, span neither a string nor a bool, or checkpoint not a Checkpoint.
        TooLargeError: the ensemble would not fit in memory (`require_ensemble_memory`).
        TrainingInterrupted: the checkpoint's deadline passed; the state is saved and the same call continues.

    Example:
        >>> import numpy as np
        >>> import ntkuq
        >>> ntkuq.enable_float64()
        >>> from ntkuq import MLPSpec
        >>> from ntkuq.finite import train_ensemble
        >>> rng = np.random.default_rng(0)
        >>> x_train, y_train = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
        >>> x_test, y_test = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
        >>> res = train_ensemble(MLPSpec(width=8), x_train, y_train, x_test, y_test, n_members=4, steps=10,
        ...                      progress=False)
        >>> res.n_members, res.test_losses.shape, res.point_losses.shape
        (4, (4,), (4, 8))
        >>> int(res.steps[0]), int(res.steps[-1])
        (0, 10)
        >>> bool(np.all(res.test_losses > 0))
        True
    """
    start = time.perf_counter()  # the run's seconds, setup included (a resumed run adds its earlier sittings)
    if spec.width is None:
        raise ValueError("width: expected a finite width for a trained ensemble, got None (infinite)")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer in ("momentum", "nesterov"):
        momentum = check_optimizer(optimizer, momentum)
    elif momentum is not None:
        raise ValueError(f"momentum: only used by optimizer 'momentum' or 'nesterov', got {momentum!r} with "
                         f"{optimizer!r}")
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    dtype = jnp.dtype(dtype)
    n_members = check_int(n_members, "n_members")
    steps = check_int(steps, "steps", minimum=0)
    seed = check_int(seed, "seed", minimum=0)
    n_record = check_int(n_record, "n_record", minimum=2)
    warmup = check_int(warmup, "warmup", minimum=0)
    if warmup and optimizer == "adam":
        raise ValueError("warmup: only for 'gd', 'momentum', 'nesterov' and 'sgd', got a warmup with 'adam'")
    x_tr = check_inputs(x_train, "x_train")
    n_train, n_in = x_tr.shape
    y_tr = check_inputs(y_train, "y_train", n_rows=n_train)
    x_te = check_inputs(x_test, "x_test", n_features=n_in)
    y_te = check_inputs(y_test, "y_test", n_rows=x_te.shape[0], n_features=y_tr.shape[1])
    if optimizer == "sgd":
        if batch_size is None:
            raise ValueError("batch_size: expected an integer for optimizer='sgd', got None")
        batch_size = check_int(batch_size, "batch_size")
        if batch_size > n_train:
            raise ValueError(f"batch_size: expected at most N_D = {n_train}, got {batch_size}")
    elif batch_size is not None:
        raise ValueError(f"batch_size: only used by optimizer='sgd', got {batch_size!r} with {optimizer!r}")
    if tol is not None:
        tol = check_positive(tol, "tol")
    if stop is not None:
        if not isinstance(stop, StopRule):
            raise InputTypeError(f"stop: expected a StopRule (ntkuq.finite.StopRule) or None, got "
                                 f"{type(stop).__name__}")
        if steps < 1:
            raise ValueError("steps: expected a cap >= 1 with a stop rule, got 0")
    use_span(span, n_in, n_train, optimizer)  # refuses a bad value before anything is computed
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise InputTypeError(f"checkpoint: expected a Checkpoint (ntkuq.finite.Checkpoint) or None, got "
                             f"{type(checkpoint).__name__}")
    if chunk is not None:
        chunk = check_int(chunk, "chunk")
    if eta is None:
        if optimizer == "adam":
            raise ValueError("eta: expected an explicit Adam step size for optimizer='adam', got None")
        eta = default_eta(spec, x_tr, 0.5, optimizer, momentum)
    else:
        eta = check_positive(eta, "eta")
        if optimizer != "adam" and not allow_unstable:
            eta_max = stable_eta_max(spec, x_tr, optimizer, momentum)
            if eta >= eta_max:
                raise ValueError(f"eta: expected a learning rate below the stable maximum of {optimizer!r} for the "
                                 f"analytic NTK, {eta_max:.4g}, got {eta:g} (pass allow_unstable=True to override)")

    k = y_tr.shape[1]
    sizes = layer_sizes(spec, n_in, k)
    require_ensemble_memory(spec, n_in, k, n_train, x_te.shape[0], n_members, steps=steps, optimizer=optimizer,
                            dtype=dtype, chunk=chunk, keep_outputs=keep_outputs, n_record=n_record)
    if chunk is None:
        chunk = auto_chunk(sizes, n_train, x_te.shape[0], dtype.itemsize, optimizer)
    chunk = min(chunk, n_members)
    digest = ""
    if checkpoint is not None:  # everything the numbers depend on (ntkuq.finite.checkpoint), before any training
        checkpoint.require_writable()
        digest = fingerprint(spec, n_members, steps, float(eta), seed, optimizer, momentum, batch_size, tol, n_record,
                             chunk, dtype.name, keep_outputs, warmup, stop, span, 1, jax.process_count(), x_tr,
                             y_tr, x_te, y_te)
        # not the device count (a run continues on more or fewer devices); the 1 where it stood keeps the snapshots
        # of one-device runs made before that valid
    mesh = member_mesh()  # None on one device: nothing sharded
    basis = span_basis(x_tr) if use_span(span, n_in, n_train, optimizer) else None
    if basis is not None and basis.rank >= n_in:
        basis = None  # the inputs span every direction: nothing to gain
    n_fit, x_perp = n_in, None
    if basis is not None:  # train in the span of the training inputs (ntkuq.finite.span)
        n_fit = basis.rank
        x_tr, (x_te, x_perp) = basis.train_coef / basis.scale, reduce_inputs(basis, x_te, dtype)
    x_tr, y_tr, x_te, y_te = (replicate(a.astype(dtype), mesh) for a in (x_tr, y_tr, x_te, y_te))
    run = _ensemble_runner(spec, n_fit, k, optimizer, batch_size, dtype.name, momentum)
    tx0 = make_optimizer(spec, n_fit, k, 1.0, optimizer, dtype, momentum)  # its state does not depend on eta
    eta_arr, data_key, warmup_arr = jnp.asarray(eta, dtype), shuffle_key(seed), jnp.asarray(warmup, jnp.int32)

    rec = record_steps(steps, n_record)
    check_from = {}  # check step -> index in rec of the start of its last quarter
    if stop is not None:
        checks, starts = check_steps(stop, steps, warmup)
        rec = np.union1d(rec, np.concatenate([checks, starts])).astype(np.int64)
        check_from = {int(c): int(np.searchsorted(rec, q)) for c, q in zip(checks, starts)}
    drifts, passed = [], []
    train_hist = np.empty((n_members, rec.size))
    test_hist = np.empty((n_members, rec.size))
    alive_hist = np.empty((n_members, rec.size, spec.depth - 1))
    stopped = np.full(n_members, steps, dtype=np.int64)
    outputs = np.empty((n_members, x_te.shape[0], k)) if keep_outputs else None
    point = np.empty((n_members, x_te.shape[0]))
    n_chunks = -(-n_members // chunk)
    def fresh_chunk(lo):
        """The initial parameters, first-layer offsets and optimizer state of the chunk starting at member lo."""
        hi = min(lo + chunk, n_members)
        idx = np.concatenate([np.arange(lo, hi), np.full(padded_count(hi - lo, mesh) - (hi - lo), hi - 1)])
        params, offset = init_members(spec, n_in, k, idx, seed=seed, dtype=dtype), None
        if basis is not None:
            params, offset = reduce_members(basis, params, x_perp)
        params, offset = shard_members(params, mesh), shard_members(offset, mesh)
        return params, offset, jax.vmap(tx0.init)(params)

    snap, last_save, before = None, time.monotonic(), 0.0  # before: seconds of the earlier sittings
    if checkpoint is not None:
        arrays = dict(train_hist=train_hist, test_hist=test_hist, alive_hist=alive_hist, stopped=stopped,
                      point=point, **({"outputs": outputs} if keep_outputs else {}))
        snap = load_checkpoint(checkpoint.path, digest, {name: a.shape for name, a in arrays.items()})
        if snap is not None:  # its training state must have this run's leaves, shapes and dtypes
            lo = int(snap["lo"])
            p0, _, s0 = fresh_chunk(lo)
            want = [(np.shape(v), np.dtype(v.dtype)) for v in jax.tree.leaves((p0, s0))]
            snap["leaves"] = fit_members(snap["leaves"], min(lo + chunk, n_members) - lo, want)  # for these devices
            if snap["leaves"] is None:
                snap = set_aside(checkpoint.path, "its training state does not have this run's shapes")
    lo0 = 0
    if snap is not None:
        lo0 = int(snap["lo"])
        for name, arr in arrays.items():
            arr[...] = snap[name]
        drifts, passed = [float(d) for d in snap["drifts"]], [bool(p) for p in snap["passed"]]
        before = float(snap["seconds"])

    def save_state(lo, j, t, drift, ok, params, state):
        """Write the snapshot of chunk lo, before recording step j, at step t."""
        arrays = dict(lo=lo, j=j, t=t, drift=drift, ok=ok, seconds=before + time.perf_counter() - start,
                      drifts=np.asarray(drifts, float), passed=np.asarray(passed, bool), train_hist=train_hist,
                      test_hist=test_hist, alive_hist=alive_hist, stopped=stopped, point=point,
                      **({"outputs": outputs} if keep_outputs else {}))
        save_checkpoint(checkpoint.path, digest, arrays, [to_host(v) for v in jax.tree.leaves((params, state))])

    with tqdm(total=steps * n_chunks, desc=f"ensemble n={spec.width} M={n_members}", unit="step",
              disable=not progress, delay=2.0, leave=False) as bar:
        for lo in range(lo0, n_members, chunk):
            hi = min(lo + chunk, n_members)
            m = hi - lo  # a chunk padded to a multiple of the devices with copies of its last member (dropped)
            params, offset, state = fresh_chunk(lo)
            j0, t, drift, ok = 0, 0, float("nan"), False
            if snap is not None:  # resume this chunk where the snapshot left it
                leaves = [shard_members(v, mesh) if mesh is not None else jnp.asarray(v) for v in snap["leaves"]]
                params, state = jax.tree.unflatten(jax.tree.structure((params, state)), leaves)
                j0, t, drift, ok = int(snap["j"]), int(snap["t"]), float(snap["drift"]), bool(snap["ok"])
                bar.update(lo // chunk * steps + t)
                snap = None
            for j in range(j0, rec.size):
                r = int(rec[j])
                while r > t:
                    n = r - t if checkpoint is None else min(r - t, checkpoint.segment)
                    params, state = run(params, state, x_tr, y_tr, jnp.asarray(t, jnp.int32),
                                        jnp.asarray(n, jnp.int32), eta_arr, data_key, warmup_arr)
                    bar.update(n)
                    t += n
                    if checkpoint is not None:  # wait for the segment (JAX dispatches asynchronously): the
                        jax.block_until_ready(params)  # clock must see the training done, not just queued
                        late = checkpoint.past_deadline()
                        if late or time.monotonic() - last_save >= checkpoint.every_s:
                            save_state(lo, j, t, drift, ok, params, state)
                            last_save = time.monotonic()
                        if late:
                            raise TrainingInterrupted(
                                f"train_ensemble: the checkpoint's deadline passed at step {t} of {steps} (members "
                                f"{lo}..{hi - 1} of {n_members}); the state is saved in {checkpoint.path}, and the "
                                "same call continues from it")
                tr, te, z, alive = _evaluate(spec, params, x_tr, y_tr, x_te, y_te, offset)
                train_hist[lo:hi, j], test_hist[lo:hi, j] = to_host(tr)[:m], to_host(te)[:m]
                alive_hist[lo:hi, j] = to_host(alive)[:m]
                done = tol is not None and r < steps and bool(np.all(train_hist[lo:hi, j] < tol))
                if r in check_from:
                    mean = train_hist[lo:hi].mean(axis=0)
                    drift = relative_fall(mean[check_from[r]], mean[j])
                    ok = stop.passes(mean[check_from[r]], mean[j], mean[0])
                    done = done or (ok and r < steps)
                if done:
                    train_hist[lo:hi, j + 1:] = train_hist[lo:hi, j:j + 1]
                    test_hist[lo:hi, j + 1:] = test_hist[lo:hi, j:j + 1]
                    alive_hist[lo:hi, j + 1:] = alive_hist[lo:hi, j:j + 1]
                    stopped[lo:hi] = t
                    bar.update(int(steps - t))
                    break
            drifts.append(drift)
            passed.append(ok)
            point[lo:hi] = to_host(jnp.mean((z - y_te) ** 2, axis=-1))[:m]
            if keep_outputs:
                outputs[lo:hi] = to_host(z)[:m]
    if checkpoint is not None:
        remove_checkpoint(checkpoint.path)
    diverged = ~(np.isfinite(test_hist[:, -1]) & np.isfinite(train_hist[:, -1]))
    if diverged.any() and not allow_unstable:  # finite input never gives NaN / inf unless asked for
        raise ValueError(f"eta: training diverged (non-finite losses) for {int(diverged.sum())} of {n_members} "
                         f"members at eta = {eta:g} with {optimizer!r}; expected a smaller learning rate "
                         "(or pass allow_unstable=True to get the non-finite losses back)")
    record = None
    if stop is not None:
        worst = max(drifts, key=lambda d: abs(d) if np.isfinite(d) else np.inf)
        record = StopRecord(dataclasses.replace(stop, min_steps=max(stop.min_steps, warmup)), steps,
                            int(stopped.max()), float(worst), all(passed),
                            float(1.0 - alive_hist[:, -1, -1].mean()) if spec.depth > 1 else 0.0)
    return EnsembleResult(test_hist[:, -1].copy(), train_hist[:, -1].copy(), rec, train_hist, test_hist,
                          stopped, float(eta), outputs, alive_hist, point, record,
                          before + time.perf_counter() - start)


__all__ = ["record_steps", "train_ensemble"]

"""Finite-width ensembles: M MLPs from independent initializations, trained together on shared data.

`train_ensemble` trains them (`ntkuq.finite.training` has the optimizers, steps and learning rates) and
records at log-spaced steps each member's train loss L_train = 1 / (2 N_D) sum (z - y)^2 and test loss
L = 1 / (N_T k) sum_d sum_i (z_i(x_d) - y_id)^2, and at the end each member's loss on every test point
(`ntkuq.finite.stats`).  Its memory is estimated before anything is allocated (`ensemble_bytes`, beside
the trainer whose memory it counts) and a run that would not fit is refused, naming what would.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ntkuq._src.budget import FLOPS_PER_S, OVERHEAD_BYTES, WORD, largest, memory_limit_bytes, require
from ntkuq._src.checks import check_inputs, check_int, check_positive
from ntkuq.errors import InputTypeError
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
CHUNK_MEMORY_BYTES = 4 * 2**30
"""Working-memory budget for one chunk of members when `chunk` is not given (a rough estimate)."""


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


def _auto_chunk(sizes: Tuple[int, ...], n_train: int, n_test: int, itemsize: int, optimizer: str) -> int:
    """Members per chunk so that parameters, optimizer state and activations fit CHUNK_MEMORY_BYTES."""
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    per_member = itemsize * (n_params * {"adam": 5, "momentum": 4, "nesterov": 4}.get(optimizer, 3)
                             + 3 * (n_train + n_test) * sum(sizes[1:]))
    return max(1, CHUNK_MEMORY_BYTES // per_member)


def require_ensemble_memory(spec: MLPSpec, n_in: int, n_out: int, n_train: int, n_test: int, n_members: int, *,
                            steps: int, optimizer: str = "gd", dtype=jnp.float32, chunk: Optional[int] = None,
                            keep_outputs: bool = False, n_record: int = 20, what: str = "train_ensemble") -> None:
    """Refuse before training if the ensemble would not fit in memory (see ntkuq._src.budget).

    The estimate is `budget.ensemble_bytes` for the chunk of members trained at once (`chunk`, or the
    automatic CHUNK_MEMORY_BYTES rule); the message names M, the width, N_D, N_T, a rough time and a smaller
    chunk or width that fits.

    Args:
        spec: the architecture, with the members' finite width.
        n_in: the input dimension (number of features).
        n_out: the output dimension k.
        n_train: N_D, the number of training points.
        n_test: N_T, the number of test points.
        n_members: M, the number of networks in the ensemble.
        steps: the number of training steps; only for the time quoted in the message.
        optimizer: "gd" (default), "momentum", "nesterov" or "adam"; sets the copies of optimizer state.
        dtype: the parameters' dtype (default float32); sets the bytes per number.
        chunk: members trained at once; None (default) for the automatic CHUNK_MEMORY_BYTES rule.
        keep_outputs: True counts the test outputs of every member (default False).
        n_record: the number of recorded points of each member's loss history (default 20).
        what: the name of the computation in the message (default "train_ensemble").

    Raises:
        TooLargeError: if the estimate exceeds the memory budget (estimate.TooLargeError).
    """
    itemsize = jnp.dtype(dtype).itemsize

    def sizes_of(width: int) -> Tuple[int, ...]:
        return layer_sizes(spec.with_width(width), n_in, n_out)

    c = chunk if chunk is not None else _auto_chunk(sizes_of(spec.width), n_train, n_test, itemsize, optimizer)
    require_ensemble(sizes_of, int(spec.width), n_train, n_test, n_members, steps=steps, itemsize=itemsize,
                     optimizer=optimizer, chunk=c, keep_outputs=keep_outputs, n_record=n_record, what=what)


def train_ensemble(spec: MLPSpec, x_train, y_train, x_test, y_test, *, n_members: int, steps: int,
                   eta: Optional[float] = None, seed: int = 0, optimizer: str = "gd",
                   momentum: Optional[float] = None,
                   batch_size: Optional[int] = None, tol: Optional[float] = None, n_record: int = 20,
                   chunk: Optional[int] = None, dtype=jnp.float32, keep_outputs: bool = False,
                   allow_unstable: bool = False, warmup: int = 0, stop: Optional[StopRule] = None,
                   span: Union[bool, str] = "auto", progress: bool = True) -> EnsembleResult:
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
        InputTypeError: stop is not a StopRule, or span neither a string nor a bool.
        TooLargeError: the ensemble would not fit in memory (`require_ensemble_memory`).

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
        chunk = _auto_chunk(sizes, n_train, x_te.shape[0], dtype.itemsize, optimizer)
    chunk = min(chunk, n_members)
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
    with tqdm(total=steps * n_chunks, desc=f"ensemble n={spec.width} M={n_members}", unit="step",
              disable=not progress, delay=2.0, leave=False) as bar:
        for lo in range(0, n_members, chunk):
            hi = min(lo + chunk, n_members)
            m = hi - lo  # a chunk padded to a multiple of the devices with copies of its last member (dropped)
            idx = np.concatenate([np.arange(lo, hi), np.full(padded_count(m, mesh) - m, hi - 1)])
            params, offset = init_members(spec, n_in, k, idx, seed=seed, dtype=dtype), None
            if basis is not None:
                params, offset = reduce_members(basis, params, x_perp)
            params, offset = shard_members(params, mesh), shard_members(offset, mesh)
            state = jax.vmap(tx0.init)(params)
            t, drift, ok = 0, float("nan"), False
            for j, r in enumerate(rec):
                if r > t:
                    params, state = run(params, state, x_tr, y_tr, jnp.asarray(t, jnp.int32),
                                        jnp.asarray(r - t, jnp.int32), eta_arr, data_key, warmup_arr)
                    bar.update(int(r - t))
                    t = int(r)
                tr, te, z, alive = _evaluate(spec, params, x_tr, y_tr, x_te, y_te, offset)
                train_hist[lo:hi, j], test_hist[lo:hi, j] = to_host(tr)[:m], to_host(te)[:m]
                alive_hist[lo:hi, j] = to_host(alive)[:m]
                done = tol is not None and r < steps and bool(np.all(train_hist[lo:hi, j] < tol))
                if int(r) in check_from:
                    mean = train_hist[lo:hi].mean(axis=0)
                    drift = relative_fall(mean[check_from[int(r)]], mean[j])
                    ok = stop.passes(mean[check_from[int(r)]], mean[j], mean[0])
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
                          stopped, float(eta), outputs, alive_hist, point, record)


def ensemble_member_bytes(layer_sizes: Sequence[int], n_train: int, n_test: int, itemsize: int = 4,
                          optimizer: str = "gd") -> float:
    """Estimated bytes of one member of `ensembles.train_ensemble`.

    Parameters, gradients and optimizer state (3 to 5 copies) and the activations of the training and test
    inputs (3 (N_D + N_T) sum of widths); one copy more than the chunking rule of `ensembles._auto_chunk`
    counts (the optimizer's update is a temporary of its own).

    Args:
        layer_sizes: the network's layer widths, input dimension first and output dimension last.
        n_train: N_D, the number of training inputs whose activations are held.
        n_test: N_T, the number of test inputs whose activations are held.
        itemsize: bytes per number of the trained networks (4 for float32, the default; 8 for float64).
        optimizer: "gd" (default; 4 copies of the parameters), "momentum"/"nesterov" (5) or "adam" (6).

    Returns:
        The estimated bytes of one member.
    """
    n_params = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    copies = {"adam": 6, "momentum": 5, "nesterov": 5}.get(optimizer, 4)
    return float(itemsize) * (n_params * copies + 3 * (n_train + n_test) * sum(layer_sizes[1:]))


def ensemble_bytes(layer_sizes: Sequence[int], n_train: int, n_test: int, n_members: int, *, itemsize: int = 4,
                   optimizer: str = "gd", chunk: int = 1, keep_outputs: bool = False, n_record: int = 20) -> float:
    """Estimated peak bytes of `ensembles.train_ensemble`.

    One chunk of members, the analytic NTK on the training inputs for the stable rate (float64 N_D^2, twice
    for the eigenvalues), the loss histories and optionally the outputs.

    Args:
        layer_sizes: the network's layer widths, input dimension first and output dimension last.
        n_train: N_D, the number of training points.
        n_test: N_T, the number of test points.
        n_members: M, the number of networks in the ensemble.
        itemsize: bytes per number of the trained networks (4 for float32, the default; 8 for float64).
        optimizer: "gd" (default), "momentum", "nesterov" or "adam"; sets the copies of optimizer state.
        chunk: members trained at once (default 1); at most n_members are counted.
        keep_outputs: True counts the float64 test outputs of every member (M x N_T x outputs); default False.
        n_record: the number of recorded points of each member's loss history (default 20).

    Returns:
        The estimated peak bytes, OVERHEAD_BYTES included.
    """
    n, t = float(n_train), float(n_test)
    member = ensemble_member_bytes(layer_sizes, n_train, n_test, itemsize, optimizer)
    outputs = WORD * n_members * t * layer_sizes[-1] if keep_outputs else 0.0
    return (min(chunk, n_members) * member + WORD * 3 * n * n + 2 * WORD * n_members * n_record + outputs
            + WORD * (n + t) * (layer_sizes[0] + layer_sizes[-1]) + OVERHEAD_BYTES)


def ensemble_seconds(layer_sizes: Sequence[int], n_train: int, n_members: int, steps: int) -> float:
    """Rough training time of an ensemble, in seconds.

    Forward and backward passes, about 6 operations per parameter and training point per step, at
    estimate.FLOPS_PER_S (a GPU is much faster).

    Args:
        layer_sizes: the network's layer widths, input dimension first and output dimension last.
        n_train: N_D, the number of training points.
        n_members: M, the number of networks in the ensemble.
        steps: the number of training steps.

    Returns:
        The estimated seconds.
    """
    n_params = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    return 6.0 * n_params * n_train * n_members * steps / FLOPS_PER_S


def require_ensemble(sizes_of: Callable[[int], Sequence[int]], width: int, n_train: int, n_test: int,
                     n_members: int, *, steps: int, itemsize: int, optimizer: str, chunk: int,
                     keep_outputs: bool = False, n_record: int = 20, what: str = "train_ensemble") -> None:
    """require() for a trained ensemble; sizes_of(width) gives the layer sizes.

    Suggests a smaller chunk of members trained at once if one member fits, else the largest width that does.

    Args:
        sizes_of: maps a hidden width to the network's layer sizes (input first, output last).
        width: the hidden width n of the members.
        n_train: N_D, the number of training points.
        n_test: N_T, the number of test points.
        n_members: M, the number of networks in the ensemble.
        steps: the number of training steps; only for the time quoted in the message.
        itemsize: bytes per number of the trained networks (4 for float32, 8 for float64).
        optimizer: "gd", "momentum", "nesterov" or "adam"; sets the copies of optimizer state.
        chunk: members trained at once.
        keep_outputs: True counts the test outputs of every member (default False).
        n_record: the number of recorded points of each member's loss history (default 20).
        what: the name of the computation in the message (default "train_ensemble").

    Raises:
        TooLargeError: if the estimate exceeds memory_limit_bytes().
    """
    budget = memory_limit_bytes()

    def est(w: int, c: int) -> float:
        return ensemble_bytes(sizes_of(w), n_train, n_test, n_members, itemsize=itemsize, optimizer=optimizer,
                              chunk=c, keep_outputs=keep_outputs, n_record=n_record)

    needed = est(width, chunk)
    if needed <= budget:
        return
    if est(width, 1) <= budget:
        fits = f"chunk = {largest(lambda c: est(width, c) <= budget, 1, chunk)} members trained at once"
    else:
        w = largest(lambda v: est(v, 1) <= budget, 1, width)
        fits = f"width {w} (M = {n_members}, N_D = {n_train})" if w >= 1 else ""
    require(needed, f"{what} with M = {n_members} members of width {width}, N_D = {n_train}, N_T = {n_test} "
            f"({min(chunk, n_members)} at once)", fits=fits,
            seconds=ensemble_seconds(sizes_of(width), n_train, n_members, steps), budget=budget)


__all__ = ["CHUNK_MEMORY_BYTES", "ensemble_bytes", "ensemble_member_bytes", "ensemble_seconds", "record_steps",
           "require_ensemble", "require_ensemble_memory", "train_ensemble"]

"""The memory and time of a trained ensemble, estimated before anything is allocated.

`train_ensemble` (`ntkuq.finite.ensembles`) trains its members in chunks sized by CHUNK_MEMORY_BYTES and refuses a
run whose chunk would not fit (`require_ensemble_memory`), naming a smaller chunk or width that would.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import jax.numpy as jnp

from ntkuq._src.budget import FLOPS_PER_S, OVERHEAD_BYTES, WORD, largest, memory_limit_bytes, require
from ntkuq.finite.network import layer_sizes
from ntkuq.spec import MLPSpec

CHUNK_MEMORY_BYTES = 4 * 2**30
"""Working-memory budget for one chunk of members when `chunk` is not given (a rough estimate)."""


def auto_chunk(sizes: Tuple[int, ...], n_train: int, n_test: int, itemsize: int, optimizer: str) -> int:
    """Members per chunk so that parameters, optimizer state and activations fit CHUNK_MEMORY_BYTES.

    Args:
        sizes: the network's layer widths, input dimension first and output dimension last.
        n_train: N_D, the number of training inputs.
        n_test: N_T, the number of test inputs.
        itemsize: bytes per number (4 for float32, 8 for float64).
        optimizer: "gd", "sgd", "momentum", "nesterov" or "adam"; sets the copies of optimizer state.

    Returns:
        The number of members trained at once, at least 1.
    """
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

    c = chunk if chunk is not None else auto_chunk(sizes_of(spec.width), n_train, n_test, itemsize, optimizer)
    require_ensemble(sizes_of, int(spec.width), n_train, n_test, n_members, steps=steps, itemsize=itemsize,
                     optimizer=optimizer, chunk=c, keep_outputs=keep_outputs, n_record=n_record, what=what)


def ensemble_member_bytes(layer_sizes: Sequence[int], n_train: int, n_test: int, itemsize: int = 4,
                          optimizer: str = "gd") -> float:
    """Estimated bytes of one member of `ensembles.train_ensemble`.

    Parameters, gradients and optimizer state (3 to 5 copies) and the activations of the training and test
    inputs (3 (N_D + N_T) sum of widths); one copy more than the chunking rule of `auto_chunk`
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


__all__ = ["CHUNK_MEMORY_BYTES", "auto_chunk", "ensemble_bytes", "ensemble_member_bytes", "ensemble_seconds",
           "require_ensemble", "require_ensemble_memory"]

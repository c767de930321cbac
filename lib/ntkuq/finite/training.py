"""The training machinery of the finite-width ensembles: initialization, optimizers, steps and learning rates.

Training objective (the same as the infinite-width engine, `ntkuq.infinite.predict`; it defines time):

    L_train = 1 / (2 N_D) sum_{a in train} sum_i (z_i(x_a) - y_ia)^2

Optimizers ('gd' reproduces the paper and the engine's discrete-step prediction):
  'gd'   full-batch gradient descent, learning rate eta * lambda_b for biases and
         eta * lambda_W / n_{l-1} for layer-l weights (optax.sgd after a per-leaf scale);
  'momentum', 'nesterov'
         the same per-group rates with heavy-ball or Nesterov momentum beta (optax.sgd(eta, momentum=beta,
         nesterov=...) after the per-leaf scale, so the rates keep their NTK meaning): v <- beta v + g,
         update -eta v (heavy ball) or -eta (g + beta v) (Nesterov); the infinite-width engine has the
         exact ensemble after T such steps (`ntkuq.infinite.gains`), and the same t -> infinity limit as 'gd';
  'sgd'  the same per-group rates on mini-batches of `batch_size` (loss 1/(2B) sum over the batch),
         one shared permutation of the training set per epoch drawn from the run's seed, the
         remainder of N_D / B dropped each epoch;
  'adam' optax.adam(eta) on all parameters, WITHOUT the per-group scaling (Adam divides each update
         by its own running gradient scale, so a per-leaf rate multiplier has no NTK meaning); eta is
         then Adam's step size and the stable-eta check does not apply.

Members: member m of a run with seed s is initialized from jax.random.fold_in(PRNGKey(s), m), so a
member's numbers do not depend on the chunking.  A chunk of members is one vmap over the stacked
parameter pytrees (the data are shared, unbatched), jitted, and advanced between recording steps by a
lax.fori_loop whose trip count is a traced value (one compilation serves segments of any length).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache, partial
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from ntkuq._src.checks import check_inputs, check_positive
from ntkuq._src.linalg import largest_eigenvalue
from ntkuq.finite.network import Params, alive_fraction, apply_mlp, init_mlp, learning_rate_scales
from ntkuq.infinite.gains import check_optimizer, stable_eta
from ntkuq.infinite.kernels import kernels
from ntkuq.spec import MLPSpec

Array = jax.Array


OPTIMIZERS = ("gd", "momentum", "nesterov", "sgd", "adam")


FULL_BATCH = ("gd", "momentum", "nesterov")
"""Optimizers with a closed-form infinite-width counterpart (ntkuq.infinite.gains)."""


EXACT_EIGEN_MAX = 1024
"""Largest N_D for which stable_eta_max uses a full eigendecomposition (Lanczos above)."""


_ETA_MAX_MEMO: dict = {}
"""stable_eta_max results keyed by (spec, path, shape, sha1 of the inputs)."""


_DATA_STREAM = 0xFFFFFFFF
"""fold_in index of the mini-batch shuffling stream (members use 0, 1, ..., M - 1)."""


@lru_cache(maxsize=64)
def _init_one(spec: MLPSpec, n_in: int, n_out: int, dtype_name: str) -> Callable:
    """Jitted init of one member from (base key, member index); compiled once per architecture."""
    dtype = jnp.dtype(dtype_name)
    return jax.jit(lambda key, m: init_mlp(spec, n_in, n_out, jax.random.fold_in(key, m), dtype))


def init_members(spec: MLPSpec, n_in: int, n_out: int, members, *, seed: int = 0, dtype=jnp.float32) -> Params:
    """Stacked parameters (leading axis: member) of the given member indices, member m from fold_in(PRNGKey(seed), m).

    Args:
        spec: the architecture, with a finite width.
        n_in: the input dimension (number of features).
        n_out: the output dimension k.
        members: the member indices m to initialize (an int sequence or array, flattened); the leading axis follows it.
        seed: the ensemble's seed (default 0); member m's parameters do not depend on which others are drawn.
        dtype: the parameters' dtype (default float32).

    Returns:
        A tuple of (W, b) per layer, each leaf with a leading member axis in the order of `members`.
    """
    init = _init_one(spec, n_in, n_out, jnp.dtype(dtype).name)
    key = jax.random.PRNGKey(seed)
    one = [init(key, jnp.uint32(m)) for m in np.asarray(members).ravel()]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *one)


def _scale_by_groups(scales: Params) -> optax.GradientTransformation:
    """Multiply every gradient leaf by its per-group rate multiplier (lambda_W / n_{l-1} or lambda_b)."""
    def init(params):
        """No state."""
        return optax.EmptyState()

    def update(updates, state, params=None):
        """Scale each leaf."""
        return jax.tree.map(lambda g, s: g * s, updates, scales), state

    return optax.GradientTransformation(init, update)


def make_optimizer(spec: MLPSpec, n_in: int, n_out: int, eta, optimizer: str = "gd",
                   dtype=jnp.float32, momentum: Optional[float] = None) -> optax.GradientTransformation:
    """The optax transformation of an optimizer, with the per-group learning-rate scales.

    Per-group scale then sgd(eta) for 'gd'/'sgd', sgd(eta, momentum, nesterov) for 'momentum'/'nesterov'
    (momentum beta, None: 0.9), plain adam(eta) for 'adam'.

    Args:
        spec: the architecture, with a finite width; its per-group learning-rate scales are applied.
        n_in: the input dimension (number of features).
        n_out: the output dimension k.
        eta: the global learning rate (a float, or a traced scalar).
        optimizer: "gd"/"sgd" (default), "momentum", "nesterov" or "adam" (adam is not scaled per group).
        dtype: the parameters' dtype (default float32), for the shapes of the per-group scales.
        momentum: beta of 'momentum'/'nesterov' (None: 0.9); must be None for 'gd'; unused by 'adam'.

    Returns:
        The optax.GradientTransformation.
    """
    if optimizer == "adam":
        return optax.adam(eta)
    template = jax.eval_shape(lambda: init_mlp(spec, n_in, n_out, jax.random.PRNGKey(0), dtype))
    scale = _scale_by_groups(learning_rate_scales(spec, template))
    if optimizer in ("momentum", "nesterov"):
        beta = check_optimizer(optimizer, momentum)
        return optax.chain(scale, optax.sgd(eta, momentum=beta, nesterov=optimizer == "nesterov"))
    return optax.chain(scale, optax.sgd(eta))


def train_loss(spec: MLPSpec, params: Params, x: Array, y: Array) -> Array:
    """L_train = 1 / (2 N) sum_a sum_i (z_i(x_a) - y_ia)^2 over the N rows given.

    Args:
        spec: the architecture.
        params: one network's parameters (as from `init_mlp`).
        x: the inputs, shape (N, features).
        y: the targets, shape (N, outputs).

    Returns:
        The scalar training loss.
    """
    r = apply_mlp(spec, params, x) - y
    return 0.5 * jnp.sum(r * r) / x.shape[0]


def make_step(spec: MLPSpec, n_in: int, n_out: int, optimizer: str = "gd", batch_size: Optional[int] = None,
              dtype=jnp.float32, momentum: Optional[float] = None) -> Callable:
    """One member's update step(params, opt_state, x, y, t, eta, data_key); eta and the shuffling key may be traced.

    Args:
        spec: the architecture, with a finite width.
        n_in: the input dimension (number of features).
        n_out: the output dimension k.
        optimizer: "gd" (default), "momentum", "nesterov" or "adam", as for `make_optimizer`.
        batch_size: points per mini-batch, reshuffled each epoch with fold_in(data_key, epoch); None (default) for
            full-batch steps.
        dtype: the parameters' dtype (default float32).
        momentum: beta of 'momentum'/'nesterov' (None: 0.9), as for `make_optimizer`.

    Returns:
        The function step(params, opt_state, x, y, t, eta, data_key) -> (params, opt_state) after one update.
    """
    def step(params, opt_state, x, y, t, eta, data_key):
        """Gradient of L_train on the full batch (or mini-batch t), then one optimizer update."""
        if batch_size is not None:
            n_train = x.shape[0]
            per_epoch = n_train // batch_size
            perm = jax.random.permutation(jax.random.fold_in(data_key, t // per_epoch), n_train)
            idx = lax.dynamic_slice_in_dim(perm, (t % per_epoch) * batch_size, batch_size)
            x, y = x[idx], y[idx]
        grads = jax.grad(train_loss, argnums=1)(spec, params, x, y)
        tx = make_optimizer(spec, n_in, n_out, eta, optimizer, dtype, momentum)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step


def warmup_factor(t, warmup, dtype=jnp.float32):
    """The rate factor min(1, (t + 1) / W) of step t under a linear warmup of W steps (1 for W = 0).

    Traceable: t and warmup may be traced values.

    Args:
        t: the step index.
        warmup: W >= 0, the number of warmup steps (0: no warmup).
        dtype: the dtype of the factor (default float32).

    Returns:
        The factor, a scalar of dtype.
    """
    ratio = jnp.asarray(t + 1, dtype) / jnp.asarray(jnp.maximum(warmup, 1), dtype)
    return jnp.where(warmup > 0, jnp.minimum(jnp.asarray(1, dtype), ratio), jnp.asarray(1, dtype))


def run_steps(step: Callable) -> Callable:
    """Jitted segment runner of a step function.

    The runner run(params, opt_state, x, y, t0, n, eta, data_key, warmup=0) returns the state after steps
    t0 .. t0 + n - 1, step t at the rate eta * warmup_factor(t, warmup); n may be traced, and params and
    opt_state are donated.

    Args:
        step: the update step(params, opt_state, x, y, t, eta, data_key) -> (params, opt_state), as from
            `make_step` (or vmapped over members).

    Returns:
        The jitted runner, returning (params, opt_state).
    """
    def run(params, opt_state, x, y, t0, n, eta, data_key, warmup=0):
        """N steps starting at step t0 (n may be traced: a while loop)."""
        def body(i, carry):
            """Step t0 + i."""
            t = t0 + i
            return step(*carry, x, y, t, eta * warmup_factor(t, warmup, eta.dtype), data_key)
        return lax.fori_loop(0, n, body, (params, opt_state))

    return jax.jit(run, donate_argnums=(0, 1))


@lru_cache(maxsize=64)
def _ensemble_runner(spec: MLPSpec, n_in: int, n_out: int, optimizer: str, batch_size: Optional[int],
                     dtype_name: str, momentum: Optional[float] = None) -> Callable:
    """The jitted runner of a chunk: the member step vmapped over parameters and optimizer state, data shared."""
    step = make_step(spec, n_in, n_out, optimizer, batch_size, jnp.dtype(dtype_name), momentum)
    return run_steps(jax.vmap(step, in_axes=(0, 0, None, None, None, None, None)))


@partial(jax.jit, static_argnames=("spec",))
def _evaluate(spec: MLPSpec, params: Params, x_tr: Array, y_tr: Array, x_te: Array, y_te: Array, offset=None):
    """Per-member train loss (L_train), test loss (L), test outputs and alive fractions on the training inputs.

    offset: per member the fixed first-layer offset of the test inputs (training in the span), or None.
    """
    def one(p, o):
        """Losses, test outputs and per-layer alive fractions of one member."""
        z = apply_mlp(spec, p, x_te, o)
        return train_loss(spec, p, x_tr, y_tr), jnp.mean((z - y_te) ** 2), z, alive_fraction(spec, p, x_tr)
    return jax.vmap(one, in_axes=(0, None if offset is None else 0))(params, offset)


def shuffle_key(seed: int) -> Array:
    """The key of a run's mini-batch shuffling stream (separate from the members' fold_in indices).

    Args:
        seed: the run's seed.

    Returns:
        The PRNG key fold_in(PRNGKey(seed), _DATA_STREAM).
    """
    return jax.random.fold_in(jax.random.PRNGKey(seed), _DATA_STREAM)


def ntk_lambda_max(spec: MLPSpec, x_train) -> float:
    """lambda_max of the analytic (infinite-width) NTK on x_train (memoized on the inputs' hash).

    Up to EXACT_EIGEN_MAX points a full eigvalsh; above, Lanczos (`linalg.largest_eigenvalue`).

    Args:
        spec: the architecture; its width is ignored (the analytic NTK is the infinite-width one).
        x_train: the training inputs, shape (N_D, features).

    Returns:
        The largest eigenvalue lambda_max of the NTK on x_train.

    Raises:
        ValueError: the NTK on these inputs is zero, so there is no stable learning rate.
    """
    x = check_inputs(x_train, "x_train")
    exact = x.shape[0] <= EXACT_EIGEN_MAX
    key = (spec.with_width(None), exact, x.shape, hashlib.sha1(np.asarray(x).tobytes()).hexdigest())
    if key not in _ETA_MAX_MEMO:  # default_eta then train_ensemble on the same data: one NTK, not two
        value = largest_eigenvalue(kernels(spec.with_width(None), x).ntk, lanczos_above=EXACT_EIGEN_MAX)
        if not value > 0:
            raise ValueError(f"x_train: the NTK on these inputs is zero (largest eigenvalue {value:g}; all-zero "
                             f"inputs with lambda_b = {spec.lambda_b:g}?), so there is no stable learning rate; "
                             "expected inputs and lambda_b giving a nonzero NTK")
        if len(_ETA_MAX_MEMO) >= 16:
            _ETA_MAX_MEMO.clear()
        _ETA_MAX_MEMO[key] = value
    return _ETA_MAX_MEMO[key]


def stable_eta_max(spec: MLPSpec, x_train, optimizer: str = "gd", momentum: Optional[float] = None) -> float:
    """The largest stable full-batch learning rate for the analytic NTK on x_train.

    A limit N_D / lambda_max of the analytic NTK on x_train: 2 N_D / lambda_max for 'gd' (and 'sgd'),
    2 (1 + beta) N_D / lambda_max for heavy ball (`linalg.stable_eta`).

    Args:
        spec: the architecture; its analytic (infinite-width) NTK on x_train sets the maximum.
        x_train: the training inputs, shape (N_D, features).
        optimizer: "gd" (default), "sgd", "momentum" or "nesterov".
        momentum: beta of 'momentum'/'nesterov' (None: 0.9); must be None for 'gd'.

    Returns:
        The stable maximum of eta.
    """
    return stable_eta(ntk_lambda_max(spec, x_train), check_inputs(x_train, "x_train").shape[0], optimizer, momentum)


def default_eta(spec: MLPSpec, x_train, fraction: float = 0.5, optimizer: str = "gd",
                momentum: Optional[float] = None) -> float:
    """Fraction * the stable maximum (`stable_eta_max`) of the optimizer: a safe full-batch learning rate.

    Args:
        spec: the architecture; its analytic (infinite-width) NTK on x_train sets the maximum.
        x_train: the training inputs, shape (N_D, features).
        fraction: the share of the stable maximum, in (0, 1) (default 0.5).
        optimizer: "gd" (default), "momentum" or "nesterov".
        momentum: beta of 'momentum'/'nesterov' (None: 0.9); must be None for 'gd'.

    Returns:
        The learning rate fraction * `stable_eta_max`.

    Raises:
        ValueError: fraction is not in (0, 1).
    """
    fraction = check_positive(fraction, "fraction")
    if fraction >= 1.0:
        raise ValueError(f"fraction: expected a number in (0, 1) of the stable maximum, got {fraction!r}")
    return fraction * stable_eta_max(spec, x_train, optimizer, momentum)


__all__ = ["EXACT_EIGEN_MAX", "FULL_BATCH", "OPTIMIZERS", "default_eta", "init_members", "make_optimizer",
           "make_step", "ntk_lambda_max", "run_steps", "shuffle_key", "stable_eta_max", "train_loss",
           "warmup_factor"]

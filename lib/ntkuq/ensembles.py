"""Finite-width ensembles: M MLPs from independent initializations, trained together on shared data.

Training objective (the same as the infinite-width engine in dynamics.py; it defines time):

    L_train = 1 / (2 N_D) sum_{a in train} sum_i (z_i(x_a) - y_ia)^2

Optimizers ('gd' reproduces the paper and the engine's discrete-step prediction):
  'gd'   full-batch gradient descent, learning rate eta * lambda_b for biases and
         eta * lambda_W / n_{l-1} for layer-l weights (optax.sgd after a per-leaf scale);
  'momentum', 'nesterov'
         the same per-group rates with heavy-ball or Nesterov momentum beta (optax.sgd(eta, momentum=beta,
         nesterov=...) after the per-leaf scale, so the rates keep their NTK meaning): v <- beta v + g,
         update -eta v (heavy ball) or -eta (g + beta v) (Nesterov); the infinite-width engine has the
         exact ensemble after T such steps (ntkuq.gains), and the same t -> infinity limit as 'gd';
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
Recorded at log-spaced steps: member train losses (L_train above) and test losses
L = 1 / (N_T k) sum_d sum_i (z_i(x_d) - y_id)^2 (the book chapter "Mean, variance and distribution of the test loss").
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from tqdm import tqdm

from .checks import InputTypeError, check_inputs, check_int, check_positive
from .budget import require_ensemble
from .gains import check_optimizer
from .kernels import kernels
from .linalg import largest_eigenvalue, stable_eta
from .network import Params, alive_fraction, apply_mlp, init_mlp, layer_sizes, learning_rate_scales
from .spec import MLPSpec

Array = jax.Array
OPTIMIZERS = ("gd", "momentum", "nesterov", "sgd", "adam")
FULL_BATCH = ("gd", "momentum", "nesterov")
"""Optimizers with a closed-form infinite-width counterpart (ntkuq.gains)."""
CHUNK_MEMORY_BYTES = 4 * 2**30
"""Working-memory budget for one chunk of members when `chunk` is not given (a rough estimate)."""
EXACT_EIGEN_MAX = 1024
"""Largest N_D for which stable_eta_max uses a full eigendecomposition (Lanczos above)."""
_ETA_MAX_MEMO: dict = {}
"""stable_eta_max results keyed by (spec, path, shape, sha1 of the inputs)."""
_DATA_STREAM = 0xFFFFFFFF
"""fold_in index of the mini-batch shuffling stream (members use 0, 1, ..., M - 1)."""


# ---------------------------------------------------------------------------------------------
# Initialization, optimizer and steps
# ---------------------------------------------------------------------------------------------

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
    """The optax transformation: per-group scale then sgd(eta) for 'gd'/'sgd', sgd(eta, momentum, nesterov)
    for 'momentum'/'nesterov' (momentum beta, None: 0.9), plain adam(eta) for 'adam'.

    Args:
      spec: the architecture, with a finite width; its per-group learning-rate scales are applied.
      n_in: the input dimension (number of features).
      n_out: the output dimension k.
      eta: the global learning rate (a float, or a traced scalar).
      optimizer: "gd"/"sgd" (default), "momentum", "nesterov" or "adam" (adam is not scaled per group).
      dtype: the parameters' dtype (default float32), for the shapes of the per-group scales.
      momentum: beta of 'momentum'/'nesterov' (None: 0.9); must be None for 'gd'; unused by 'adam'.
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
    """L_train = 1 / (2 N) sum_a sum_i (z_i(x_a) - y_ia)^2 over the N rows given."""
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
    """The rate factor min(1, (t + 1) / W) of step t under a linear warmup of W steps (1 for W = 0), in dtype;
    traceable."""
    ratio = jnp.asarray(t + 1, dtype) / jnp.asarray(jnp.maximum(warmup, 1), dtype)
    return jnp.where(warmup > 0, jnp.minimum(jnp.asarray(1, dtype), ratio), jnp.asarray(1, dtype))


def run_steps(step: Callable) -> Callable:
    """Jitted segment runner (params, opt_state, x, y, t0, n, eta, data_key, warmup=0) -> state after steps
    t0 .. t0 + n - 1, step t at the rate eta * warmup_factor(t, warmup)."""
    def run(params, opt_state, x, y, t0, n, eta, data_key, warmup=0):
        """n steps starting at step t0 (n may be traced: a while loop)."""
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
def _evaluate(spec: MLPSpec, params: Params, x_tr: Array, y_tr: Array, x_te: Array, y_te: Array):
    """Per-member train loss (L_train), test loss (L), test outputs and alive fractions on the training inputs."""
    def one(p):
        """Losses, test outputs and per-layer alive fractions of one member."""
        z = apply_mlp(spec, p, x_te)
        return train_loss(spec, p, x_tr, y_tr), jnp.mean((z - y_te) ** 2), z, alive_fraction(spec, p, x_tr)
    return jax.vmap(one)(params)


def shuffle_key(seed: int) -> Array:
    """The key of a run's mini-batch shuffling stream (separate from the members' fold_in indices)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _DATA_STREAM)


# ---------------------------------------------------------------------------------------------
# Learning rate
# ---------------------------------------------------------------------------------------------

def ntk_lambda_max(spec: MLPSpec, x_train) -> float:
    """lambda_max of the analytic (infinite-width) NTK on x_train (memoized on the inputs' hash).

    Up to EXACT_EIGEN_MAX points a full eigvalsh; above, Lanczos (`linalg.largest_eigenvalue`).
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
    """The largest stable full-batch rate limit N_D / lambda_max of the analytic NTK on x_train: 2 N_D /
    lambda_max for 'gd' (and 'sgd'), 2 (1 + beta) N_D / lambda_max for heavy ball (`linalg.stable_eta`)."""
    return stable_eta(ntk_lambda_max(spec, x_train), check_inputs(x_train, "x_train").shape[0], optimizer, momentum)


def default_eta(spec: MLPSpec, x_train, fraction: float = 0.5, optimizer: str = "gd",
                momentum: Optional[float] = None) -> float:
    """fraction * the stable maximum (`stable_eta_max`) of the optimizer: a safe full-batch learning rate.

    Args:
      spec: the architecture; its analytic (infinite-width) NTK on x_train sets the maximum.
      x_train: the training inputs, shape (N_D, features).
      fraction: the share of the stable maximum, in (0, 1) (default 0.5).
      optimizer: "gd" (default), "momentum" or "nesterov".
      momentum: beta of 'momentum'/'nesterov' (None: 0.9); must be None for 'gd'.
    """
    fraction = check_positive(fraction, "fraction")
    if fraction >= 1.0:
        raise ValueError(f"fraction: expected a number in (0, 1) of the stable maximum, got {fraction!r}")
    return fraction * stable_eta_max(spec, x_train, optimizer, momentum)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnsembleStats:
    """Sample mu_L, sigma_L (ddof = 1), eps_L = sigma_L / mu_L over members and their bootstrap standard errors.

    The fields are named as in `lossstats.LossStats` (mu, sigma, eps) and the result rows (`results.COLUMNS`)."""

    mu: float
    sigma: float
    eps: float
    mu_err: float
    sigma_err: float
    eps_err: float
    n_members: int


def _mu_sigma_eps(samples: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation (ddof = 1) and their ratio along the last axis."""
    mu = samples.mean(axis=-1)
    sigma = samples.std(axis=-1, ddof=1)
    return mu, sigma, sigma / mu


def bootstrap_stats(losses, n_boot: int = 1000, seed: int = 0) -> EnsembleStats:
    """mu_L, sigma_L, eps_L of member losses with standard errors from n_boot seeded resamplings of members."""
    try:
        arr = np.asarray(losses, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"losses: expected a 1-D array of member losses (real numbers), got {losses!r}"[:200]) \
            from None
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"losses: expected a 1-D array of at least 2 member losses (M >= 2), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("losses: expected finite values, found NaN or infinity (diverged members?)")
    n_boot = check_int(n_boot, "n_boot", minimum=2)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    boot = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))]
    mu, sigma, eps = _mu_sigma_eps(arr)
    bmu, bsigma, beps = _mu_sigma_eps(boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        return EnsembleStats(float(mu), float(sigma), float(eps), float(bmu.std(ddof=1)),
                             float(bsigma.std(ddof=1)), float(np.nanstd(beps, ddof=1)), int(arr.size))


@dataclass(frozen=True)
class LossSplit:
    """The two parts of sigma_L^2 of a trained ensemble, with bootstrap standard errors over members.

    var_diag = sum_d Var(l_d) / N_T^2 (each test point with itself), var_offdiag = sigma_L^2 - var_diag
    (pairs of points), with l_d a member's loss on test point d and variances over members (ddof = 1)."""

    var_diag: float
    var_offdiag: float
    var_diag_err: float
    var_offdiag_err: float
    n_test: int


def _split(point_losses: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(var_diag, var_offdiag) over axis -2 (members) of (..., M, N_T) per-point losses."""
    n_t = point_losses.shape[-1]
    total = point_losses.mean(axis=-1).var(axis=-1, ddof=1)
    diag = point_losses.var(axis=-2, ddof=1).sum(axis=-1) / n_t**2
    return diag, total - diag


def loss_split(point_losses, n_boot: int = 400, seed: int = 0) -> LossSplit:
    """The split of sigma_L^2 from the members' per-test-point losses.

    Args:
      point_losses: (M, N_T) array, member m's loss on test point d (mean over outputs); M >= 2, N_T >= 2.
      n_boot: bootstrap resamplings of members for the errors (>= 2).
      seed: the resampling's seed.

    Returns:
      LossSplit; var_diag + var_offdiag is the sample variance (ddof = 1) of the members' test losses.

    Raises:
      ValueError: wrong shape or non-finite losses.
    """
    try:
        arr = np.asarray(point_losses, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"point_losses: expected an (M, N_T) array of real numbers, got "
                             f"{type(point_losses).__name__}") from None
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"point_losses: expected an (M, N_T) array with M >= 2 members and N_T >= 2 test points, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("point_losses: expected finite values, found NaN or infinity (diverged members?)")
    n_boot = check_int(n_boot, "n_boot", minimum=2)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    diag, off = _split(arr)
    bd, bo = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):  # one resample at a time: M x N_T numbers, never n_boot of them
        bd[b], bo[b] = _split(arr[rng.integers(0, arr.shape[0], arr.shape[0])])
    return LossSplit(float(diag), float(off), float(bd.std(ddof=1)), float(bo.std(ddof=1)), int(arr.shape[1]))


@dataclass(frozen=True)
class EnsembleResult:
    """Per-member final losses, loss histories at `steps`, and optionally the final test outputs (M, N_T, k).

    train losses use L_train = 1/(2 N_D) sum (z - y)^2 (the training objective); test losses
    L = 1/(N_T k) sum (z - y)^2.  A chunk stopped by `tol` keeps its last values at later steps;
    `stopped_at` holds each member's last trained step.  `alive_history` (M, len(steps), depth - 1) is
    the fraction of each hidden layer's units alive on the training inputs (network.alive_fraction).
    `point_losses` (M, N_T): each member's final loss on each test point (mean over the k outputs).
    """

    test_losses: np.ndarray
    train_losses: np.ndarray
    steps: np.ndarray
    train_history: np.ndarray
    test_history: np.ndarray
    stopped_at: np.ndarray
    eta: float
    outputs: Optional[np.ndarray] = None
    alive_history: Optional[np.ndarray] = None
    point_losses: Optional[np.ndarray] = None

    def split(self, n_boot: int = 400, seed: int = 0) -> LossSplit:
        """The two parts of sigma_L^2 from the final per-test-point losses (`loss_split`)."""
        if self.point_losses is None:
            raise ValueError("point_losses: this result has no per-test-point losses")
        return loss_split(self.point_losses, n_boot=n_boot, seed=seed)

    @property
    def n_members(self) -> int:
        """Number of members M."""
        return int(self.test_losses.shape[0])

    def stats(self, n_boot: int = 1000, seed: int = 0) -> EnsembleStats:
        """mu_L, sigma_L, eps_L of the final test losses with bootstrap standard errors (needs M >= 2)."""
        return bootstrap_stats(self.test_losses, n_boot=n_boot, seed=seed)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------

def record_steps(steps: int, n_record: int = 20) -> np.ndarray:
    """Unique rounded log-spaced steps from 0 to `steps`, both included."""
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
    """Refuse (estimate.TooLargeError, see ntkuq.budget) before training if the ensemble would not fit in memory.

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
                   allow_unstable: bool = False, warmup: int = 0, progress: bool = True) -> EnsembleResult:
    """Train n_members networks of spec.width for at most `steps` steps and record their losses.

    Args:
      spec: the architecture, with a finite width.
      x_train, y_train, x_test, y_test: data (points x features, points x outputs); float64 or float32.
      n_members: ensemble size M; member m starts from fold_in(PRNGKey(seed), m).
      steps: optimizer steps T (see ntkuq.convergence.converged_steps for a T that converges).
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
        infinite-width engine follows the same ramp (`ntkuq.gains.residual_factor`).
      progress: show a progress bar.
    """
    if spec.width is None:
        raise ValueError("width: expected a finite width for a trained ensemble, got None (infinite)")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer in ("momentum", "nesterov"):
        momentum = check_optimizer(optimizer, momentum)
    elif momentum is not None:
        raise ValueError(f"momentum: only used by optimizer 'momentum' or 'nesterov', got {momentum!r} with {optimizer!r}")
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
    x_tr, y_tr, x_te, y_te = (a.astype(dtype) for a in (x_tr, y_tr, x_te, y_te))
    run = _ensemble_runner(spec, n_in, k, optimizer, batch_size, dtype.name, momentum)
    tx0 = make_optimizer(spec, n_in, k, 1.0, optimizer, dtype, momentum)  # the state's structure does not depend on eta
    eta_arr, data_key, warmup_arr = jnp.asarray(eta, dtype), shuffle_key(seed), jnp.asarray(warmup, jnp.int32)

    rec = record_steps(steps, n_record)
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
            params = init_members(spec, n_in, k, np.arange(lo, hi), seed=seed, dtype=dtype)
            state = jax.vmap(tx0.init)(params)
            t = 0
            for j, r in enumerate(rec):
                if r > t:
                    params, state = run(params, state, x_tr, y_tr, jnp.asarray(t, jnp.int32),
                                        jnp.asarray(r - t, jnp.int32), eta_arr, data_key, warmup_arr)
                    bar.update(int(r - t))
                    t = int(r)
                tr, te, z, alive = _evaluate(spec, params, x_tr, y_tr, x_te, y_te)
                train_hist[lo:hi, j], test_hist[lo:hi, j] = np.asarray(tr), np.asarray(te)
                alive_hist[lo:hi, j] = np.asarray(alive)
                if tol is not None and r < steps and bool(np.all(train_hist[lo:hi, j] < tol)):
                    train_hist[lo:hi, j + 1:] = train_hist[lo:hi, j:j + 1]
                    test_hist[lo:hi, j + 1:] = test_hist[lo:hi, j:j + 1]
                    alive_hist[lo:hi, j + 1:] = alive_hist[lo:hi, j:j + 1]
                    stopped[lo:hi] = t
                    bar.update(int(steps - t))
                    break
            point[lo:hi] = np.asarray(jnp.mean((z - y_te) ** 2, axis=-1))
            if keep_outputs:
                outputs[lo:hi] = np.asarray(z)
    diverged = ~(np.isfinite(test_hist[:, -1]) & np.isfinite(train_hist[:, -1]))
    if diverged.any() and not allow_unstable:  # finite input never gives NaN / inf unless asked for
        raise ValueError(f"eta: training diverged (non-finite losses) for {int(diverged.sum())} of {n_members} "
                         f"members at eta = {eta:g} with {optimizer!r}; expected a smaller learning rate "
                         "(or pass allow_unstable=True to get the non-finite losses back)")
    return EnsembleResult(test_hist[:, -1].copy(), train_hist[:, -1].copy(), rec, train_hist, test_hist,
                          stopped, float(eta), outputs, alive_hist, point)

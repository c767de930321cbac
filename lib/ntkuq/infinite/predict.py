"""The trained ensemble at infinite width: Gaussian test outputs with mean m and covariance S.

Time is defined by the training loss (the finite-width trainer uses the same one):

    L_train = 1 / (2 N_D) sum_{a in train} sum_i (z_i(x_a) - y_ia)^2,

so that gradient flow with per-group rates (eta lambda_b, eta lambda_W / n_{l-1}) moves the
linearized network as dz/dt = -(eta / N_D) Theta (z - y).  With A = V^T (N_T x N_D):

    gradient flow, time t:   V = Theta^{-1} (1 - exp(-eta t Theta / N_D)) Theta_Xs
    T gradient-descent steps: V = Theta^{-1} (1 - (1 - eta Theta / N_D)^T) Theta_Xs
    t -> infinity:            V = Theta^{-1} Theta_Xs                       (Cholesky solve)
    NNGP posterior:           V = K^{-1} K_Xs                               (Cholesky solve)

    mean m = V^T Y,   cov S = K_ss - K_sX V - V^T W,   W = K_Xs - K_XX V   (W = 0 for the posterior)

which equals K_ss + A K A^T - A K_Xs - K_sX A^T (Lee et al. 2019).  S is kept in this factored form
so that an N_T x N_T covariance is only ever formed one block of rows at a time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ntkuq._src.budget import OVERHEAD_BYTES, require_infinite
from ntkuq._src.checks import check_bool, check_inputs, check_instance, check_int, check_positive
from ntkuq._src.linalg import MAX_COND, checked_cholesky, cho_solve
from ntkuq.infinite.gains import check_optimizer, gain, stability_limit, stable_eta
from ntkuq.infinite.kernels import kernel_diag, kernels, kernels_bytes
from ntkuq.spec import MLPSpec

Array = jax.Array
ILL_CONDITIONED = 1.0 / MAX_COND
"""An estimated reciprocal 2-norm condition number below this is refused (linalg.require_well_conditioned):
the Cholesky solve could not give mu_L to about six digits."""


@dataclass(frozen=True)
class TrainTestKernels:
    """The kernel blocks a prediction needs: train-train and train-test, NNGP (K) and NTK (Theta).

    Attributes:
        spec: the architecture the kernels belong to.
        x_test: the test inputs, N_T x d.
        K_XX: the N_D x N_D train-train NNGP kernel.
        Th_XX: the N_D x N_D train-train NTK.
        K_Xs: the N_D x N_T train-test NNGP kernel.
        Th_Xs: the N_D x N_T train-test NTK.
    """

    spec: MLPSpec
    x_test: Array
    K_XX: Array
    Th_XX: Array
    K_Xs: Array
    Th_Xs: Array

    @property
    def n_train(self) -> int:
        """Number of training points N_D."""
        return self.K_XX.shape[0]

    def leading(self, n: int) -> "TrainTestKernels":
        """The kernels of the first n training points (a nested subset).

        Args:
            n: the number of leading training points kept.

        Returns:
            The TrainTestKernels of that prefix (the same spec and test inputs).
        """
        return TrainTestKernels(self.spec, self.x_test, self.K_XX[:n, :n], self.Th_XX[:n, :n],
                                self.K_Xs[:n], self.Th_Xs[:n])


@dataclass(frozen=True)
class EnsemblePrediction:
    """Mean (N_T, k) and factored covariance S = K_ss - K_sX V - V^T W of the ensemble's test outputs.

    Attributes:
        mean: the mean test outputs, N_T x k.
        V: N_D x N_T, the trained ensemble's response to the training targets (see the module docstring).
        K_Xs: the N_D x N_T train-test NNGP kernel.
        W: K_Xs - K_XX V (N_D x N_T) for an NTK ensemble; None for the NNGP posterior (W = 0).
        spec: the network (the test-test kernel is made from it when needed).
        x_test: the test inputs, N_T x d.
        K_ss: the test-test NNGP kernel if precomputed (e.g. shared across a sweep); else made block by block.
    """

    mean: Array
    V: Array
    K_Xs: Array
    W: Optional[Array]
    spec: MLPSpec
    x_test: Array
    K_ss: Optional[Array] = None

    @property
    def n_test(self) -> int:
        """Number of test points N_T."""
        return self.mean.shape[0]

    def cov_diag(self) -> Array:
        """The diagonal of S (per-test-point output variance), O(N_D N_T).

        Returns:
            The N_T variances.
        """
        k_diag = kernel_diag(self.spec, self.x_test).nngp if self.K_ss is None else jnp.diag(self.K_ss)
        d = k_diag - jnp.sum(self.K_Xs * self.V, axis=0)
        return d if self.W is None else d - jnp.sum(self.V * self.W, axis=0)

    def cov_rows(self, start: int, stop: int) -> Array:
        """Rows start:stop of S, computing only the matching block of K_ss.

        Args:
            start: the first test row.
            stop: one past the last test row.

        Returns:
            The (stop - start) x N_T block of S.
        """
        if self.K_ss is None:
            k_ss = kernels(self.spec, self.x_test[start:stop], self.x_test).nngp
        else:
            k_ss = self.K_ss[start:stop]
        v_rows = None if self.W is None else self.V[:, start:stop]
        return _cov_rows(k_ss, self.K_Xs[:, start:stop], self.V, v_rows, self.W)

    def cov(self) -> Array:
        """The full N_T x N_T covariance S (symmetrized); for small N_T only.

        Returns:
            S, N_T x N_T.
        """
        s = self.cov_rows(0, self.n_test)
        return 0.5 * (s + s.T)


@jax.jit
def _cov_rows(k_ss: Array, kxs_rows: Array, V: Array, v_rows: Optional[Array], W: Optional[Array]) -> Array:
    rows = k_ss - kxs_rows.T @ V
    return rows if W is None else rows - v_rows.T @ W


def train_test_kernels(spec: MLPSpec, x_train, x_test, *, block_size: int = 256) -> TrainTestKernels:
    """Compute K and Theta on train x train and train x test in one blocked pass over the training rows.

    Args:
        spec: the architecture (infinite width).
        x_train: training inputs, N_D x d.
        x_test: test inputs, N_T x d.
        block_size: training rows computed at once (as in `kernels`).

    Returns:
        TrainTestKernels: the train-train and train-test blocks of K and Theta.
    """
    check_instance(spec, "spec", MLPSpec)
    x_train = check_inputs(x_train, "x_train")
    x_test = check_inputs(x_test, "x_test", n_features=x_train.shape[1])
    require_infinite("train_test_kernels", x_train.shape[0], x_test.shape[0],
                     lambda n, t: kernels_bytes(n, t) + OVERHEAD_BYTES)
    both = kernels(spec, x_train, jnp.concatenate([x_train, x_test]), block_size=block_size)
    n = x_train.shape[0]
    return TrainTestKernels(spec, x_test, both.nngp[:, :n], both.ntk[:, :n], both.nngp[:, n:], both.ntk[:, n:])


@jax.jit
def _finish(V: Array, K_XX: Optional[Array], K_Xs: Array, y: Array):
    W = None if K_XX is None else K_Xs - K_XX @ V
    return V.T @ y, W


def assemble_prediction(V: Array, y_train: Array, K_Xs: Array, K_XX: Optional[Array], spec: MLPSpec,
                        x_test: Array, K_ss: Optional[Array] = None) -> EnsemblePrediction:
    """The prediction of a solved ensemble: mean V^T Y and, for an NTK ensemble (K_XX given), W = K_Xs - K_XX V.

    Args:
        V: N_D x N_T, the trained ensemble's response to the training targets (see the module docstring).
        y_train: N_D x k training targets.
        K_Xs: N_D x N_T train-test NNGP kernel.
        K_XX: N_D x N_D train-train NNGP kernel for the NTK ensemble; None for the NNGP posterior (W = 0).
        spec: the network (the test-test kernel is made from it and x_test when needed).
        x_test: the test inputs, N_T x d.
        K_ss: the N_T x N_T test-test NNGP kernel if precomputed.

    Returns:
        EnsemblePrediction: the mean and the factored covariance.
    """
    mean, W = _finish(V, K_XX, K_Xs, y_train)
    return EnsemblePrediction(mean, V, K_Xs, W, spec, x_test, K_ss)


def ntk_prediction(kern: TrainTestKernels, y_train, *, time: Optional[float] = None,
                   steps: Optional[int] = None, eta: float = 1.0, diag_reg: float = 0.0,
                   optimizer: str = "gd", momentum: Optional[float] = None,
                   allow_unstable: bool = False, warmup: int = 0) -> EnsemblePrediction:
    """The trained ensemble at infinite width: t = infinity (default), flow `time`, or discrete `steps`.

    Args:
        kern: train-train and train-test kernels (`train_test_kernels`).
        y_train: training targets, N_D x k.
        time: gradient-flow time t (inf: the t = infinity limit); or
        steps: the number of full-batch steps T of `optimizer` (T -> infinity gives the same limit for all).
        eta: the learning rate (per-group rates eta lambda_b, eta lambda_W / n_{l-1}).
        diag_reg: added to the diagonal of Theta before solving.
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov', for `steps`.
        momentum: the momentum beta of 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.
        allow_unstable: accept a rate above the stable maximum (the closed form then refuses only where it
            would overflow: plain gradient descent only).
        warmup: with `steps`, W >= 0 steps of linear warmup, step t at the rate eta min(1, (t + 1) / W)
            (`ntkuq.infinite.gains.residual_factor`); the t = infinity limit does not depend on it.

    Returns:
        EnsemblePrediction: the Gaussian test outputs of the trained ensemble.

    Raises:
        ValueError: both time and steps given; warmup without steps; gradient-flow time with an optimizer other
            than 'gd'; or, with steps, eta at or above the stable maximum (unless allow_unstable with 'gd').

    Example:
        >>> import numpy as np
        >>> import ntkuq
        >>> ntkuq.enable_float64()
        >>> from ntkuq import MLPSpec
        >>> from ntkuq.infinite import ntk_prediction, train_test_kernels
        >>> rng = np.random.default_rng(0)
        >>> x_train, x_test = rng.standard_normal((20, 3)), rng.standard_normal((10, 3))
        >>> kern = train_test_kernels(MLPSpec(depth=3), x_train, x_test)
        >>> pred = ntk_prediction(kern, np.sin(x_train[:, :1]))
        >>> pred.mean.shape, pred.cov().shape
        ((10, 1), (10, 10))
        >>> bool(np.all(pred.cov_diag() > 0))
        True
        >>> after = ntk_prediction(kern, np.sin(x_train[:, :1]), steps=100, eta=0.5)
        >>> round(float(pred.mean[0, 0]), 4), round(float(after.mean[0, 0]), 4)
        (-0.2175, -0.2245)
    """
    check_instance(kern, "kern", TrainTestKernels, "TrainTestKernels (train_test_kernels)")
    y = check_inputs(y_train, "y_train", n_rows=kern.n_train)
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    eta = check_positive(eta, "eta")
    allow_unstable = check_bool(allow_unstable, "allow_unstable")
    if time is not None and steps is not None:
        raise ValueError("time, steps: expected at most one of them (gradient flow time or discrete steps)")
    if time is not None:
        time = check_positive(time, "time", allow_zero=True, allow_inf=True)
        if math.isinf(time):
            time = None
    if steps is not None:
        steps = check_int(steps, "steps", minimum=0)
    warmup = check_int(warmup, "warmup", minimum=0)
    if warmup and steps is None:
        raise ValueError(f"warmup: only with discrete steps, got warmup={warmup} without steps")
    if time is None and steps is None:
        V = cho_solve(checked_cholesky(kern.Th_XX, diag_reg, "NTK"), kern.Th_Xs)
    else:
        th = kern.Th_XX + diag_reg * jnp.eye(kern.n_train)
        lam, U = jnp.linalg.eigh(th)
        beta = check_optimizer(optimizer, momentum)
        if time is not None and optimizer != "gd":
            raise ValueError(f"time: gradient flow has no momentum; expected optimizer 'gd', got {optimizer!r}")
        if steps is not None:
            eta_max = stable_eta(float(lam[-1]), kern.n_train, optimizer, momentum)
            if eta >= eta_max and not (allow_unstable and optimizer == "gd"):
                raise ValueError(f"eta: expected a learning rate below the stable maximum "
                                 f"{stability_limit(optimizer, momentum):.4g} N_D / lambda_max = {eta_max:.4g} for "
                                 f"{optimizer!r}{'' if optimizer == 'gd' else f' (momentum {beta:g})'}, got {eta:g}"
                                 + (" (pass allow_unstable=True to override)" if optimizer == "gd" else ""))
        g = jnp.asarray(gain(np.asarray(lam), eta, kern.n_train, steps=steps, time=time, optimizer=optimizer,
                             momentum=None if optimizer == "gd" else beta, allow_unstable=allow_unstable,
                             warmup=warmup))
        V = U @ (g[:, None] * (U.T @ kern.Th_Xs))
    return assemble_prediction(V, y, kern.K_Xs, kern.K_XX, kern.spec, kern.x_test)


def nngp_posterior(kern: TrainTestKernels, y_train, *, diag_reg: float = 0.0) -> EnsemblePrediction:
    """Bayesian inference with prior K and noise variance diag_reg: mean K_sX K^-1 Y, cov K_ss - K_sX K^-1 K_Xs.

    Args:
        kern: train-train and train-test kernels (`train_test_kernels`).
        y_train: training targets, N_D x k.
        diag_reg: the noise variance, added to the diagonal of K before solving.

    Returns:
        EnsemblePrediction: the posterior (W = None).
    """
    check_instance(kern, "kern", TrainTestKernels, "TrainTestKernels (train_test_kernels)")
    y = check_inputs(y_train, "y_train", n_rows=kern.n_train)
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    V = cho_solve(checked_cholesky(kern.K_XX, diag_reg, "NNGP"), kern.K_Xs)
    return assemble_prediction(V, y, kern.K_Xs, None, kern.spec, kern.x_test)


def predict(spec: MLPSpec, x_train, y_train, x_test, *, method: str = "ntk", time: Optional[float] = None,
            steps: Optional[int] = None, eta: float = 1.0, diag_reg: float = 0.0) -> EnsemblePrediction:
    """Kernels plus prediction in one call: method 'ntk' (gradient descent) or 'nngp' (Bayesian posterior).

    Args:
        spec: the architecture (its width is ignored: infinite width).
        x_train: training inputs, N_D x d.
        y_train: training targets, N_D x k.
        x_test: test inputs (N_T x d).
        method: 'ntk' (the trained ensemble, `ntk_prediction`) or 'nngp' (`nngp_posterior`).
        time: gradient-flow time, as in `ntk_prediction` ('ntk' only; default t = infinity).
        steps: discrete gradient-descent steps, as in `ntk_prediction` ('ntk' only).
        eta: the learning rate, as in `ntk_prediction` ('ntk' only).
        diag_reg: added to the diagonal of the train-train kernel before solving.

    Returns:
        EnsemblePrediction: the trained ensemble ('ntk') or the posterior ('nngp').

    Raises:
        ValueError: an unknown method, or time or steps given for 'nngp'.
    """
    if method not in ("ntk", "nngp"):
        raise ValueError(f"method: expected 'ntk' or 'nngp', got {method!r}")
    x_train = check_inputs(x_train, "x_train")
    y_train = check_inputs(y_train, "y_train", n_rows=x_train.shape[0])
    kern = train_test_kernels(spec, x_train, x_test)
    if method == "nngp":
        if time is not None or steps is not None:
            raise ValueError("time, steps: the NNGP posterior has no training time; expected None")
        return nngp_posterior(kern, y_train, diag_reg=diag_reg)
    return ntk_prediction(kern, y_train, time=time, steps=steps, eta=eta, diag_reg=diag_reg)


__all__ = ["EnsemblePrediction", "ILL_CONDITIONED", "TrainTestKernels", "assemble_prediction", "nngp_posterior",
           "ntk_prediction", "predict", "train_test_kernels"]

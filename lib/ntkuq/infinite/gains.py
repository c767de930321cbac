"""How far each NTK eigenmode has trained: the residual factor r_T and the gain g of each optimizer.

For the linearized network (the infinite-width limit) every optimizer here acts on the training
residual e_t = f_t(X) - Y mode by mode in the eigenbasis of Theta = Theta(X, X).  With the library's
loss normalization L_train = 1/(2 N_D) sum (z - y)^2, an eigenvalue lambda and the rate eta, write
a = eta lambda / N_D.  After T steps e_T = r_T(a) e_0, and since every displacement of the test
outputs is driven by the same residuals, f_T(s) - f_0(s) = Theta_sX Theta^-1 (e_T - e_0).  So every
optimizer gives the trained ensemble the same form V = U diag(g) U^T Theta_Xs with the gain

    g(lambda) = (1 - r_T(a)) / lambda           (-> 1 / lambda as T -> infinity when stable).

The residual factor of each optimizer (optax conventions, v_0 = 0)::

    'flow'      gradient flow for a time t:      r = exp(-a t)
    'gd'        gradient descent:                r_T = (1 - a)^T                        stable for 0 < a < 2
    'momentum'  heavy ball, v <- beta v + g, theta <- theta - eta v:
                e_{t+1} = (1 + beta - a) e_t - beta e_{t-1},        e_1 = (1 - a) e_0, stable for 0 < a < 2 (1 + beta)
    'nesterov'  optax's Nesterov form, update = g + beta v_{t+1}:
                e_{t+1} = (1 + beta)(1 - a) e_t - beta (1 - a) e_{t-1},  e_1 = (1 - a (1 + beta)) e_0,
                stable for 0 < a < 2 (1 + beta) / (1 + 2 beta)

A two-term recurrence e_{t+1} = p e_t - q e_{t-1} with e_0 = 1 is solved in closed form through the
divided power D_n = (rho_1^n - rho_2^n) / (rho_1 - rho_2) of its characteristic roots
(rho^2 - p rho + q = 0):  r_T = e_1 D_T - q D_{T-1}  (D_0 = 0, D_1 = 1; heavy ball: D_n = beta^((n-1)/2)
U_{n-1}(x), x = p / (2 sqrt(beta)), the Chebyshev form).  D_n is evaluated without large intermediates:
complex roots (underdamped) through beta^((n-1)/2) sin(n phi) / sin(phi), real roots through
rho_1^(n-1) (1 - w^n) / (1 - w) with w = rho_2 / rho_1, abs(w) <= 1, by expm1/log1p near critical damping.
The discriminant p^2 - 4 q is formed as a product of two factors so that it is accurate near zero.
Nothing overflows for any T inside the stable range, where abs(rho) < 1; outside it the functions refuse.

Warmup: with `warmup` = W > 0 the rate of step t (t = 0, 1, ...) is eta min(1, (t + 1) / W), the
linear ramp `ntkuq.finite.train_ensemble` uses.  The first min(T, W) steps are iterated exactly,
mode by mode, on (e_t, v_t) with the optimizer's own update (v <- beta v + e; heavy ball
e <- e - a_t v, Nesterov e <- e - a_t (e + beta v)); the remaining n = T - W steps at the full rate
obey the same constant recurrence from the state the ramp left, so e_{W+n} = e'_1 D_n - q e_W D_{n-1}
with e'_1 the first full-rate step.  The t -> infinity limit does not depend on the ramp.
"""
from __future__ import annotations

import math
from typing import Optional

import jax
import numpy as np

from ntkuq._src.checks import check_int, check_positive, check_real, real_array
from ntkuq._src.linalg import largest_eigenvalue

Array = jax.Array

OPTIMIZERS = ("gd", "momentum", "nesterov")
"""Full-batch optimizers whose infinite-width ensemble after T steps has a closed form."""


def check_optimizer(optimizer: str, momentum: Optional[float]) -> float:
    """Validate an (optimizer, momentum) pair and return beta (0 for 'gd'; 0.9 if None for the others).

    Args:
        optimizer: one of OPTIMIZERS: 'gd', 'momentum' (heavy ball) or 'nesterov'.
        momentum: beta in [0, 1) for 'momentum' / 'nesterov' (None: 0.9); None (or 0) for 'gd'.

    Returns:
        beta, a float.

    Raises:
        ValueError: an unknown optimizer, a nonzero momentum with 'gd', or a momentum outside [0, 1).
    """
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer == "gd":
        if momentum is not None and not (isinstance(momentum, (int, float, np.number)) and momentum == 0):
            raise ValueError(f"momentum: plain gradient descent ('gd') has none; expected None, got {momentum!r}"
                             " (use optimizer='momentum')")
        return 0.0
    if momentum is None:
        return 0.9
    return check_real(momentum, "momentum", lower=0.0, upper=1.0, upper_open=True)


def stability_limit(optimizer: str = "gd", momentum: Optional[float] = None) -> float:
    """The bound on a = eta lambda_max / N_D below which full-batch training converges.

    2 for gradient descent, 2 (1 + beta) for heavy ball, 2 (1 + beta) / (1 + 2 beta) for Nesterov.  The stable
    rates are 0 < eta < limit N_D / lambda_max.

    Args:
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov'.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.

    Returns:
        The limit, a float.
    """
    beta = check_optimizer(optimizer, momentum)
    if optimizer == "nesterov":
        return 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    return 2.0 * (1.0 + beta)


def _divided_power(n: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """D_n = (rho_1^n - rho_2^n) / (rho_1 - rho_2) for the roots of rho^2 - p rho + q, elementwise, n >= 0.

    Assumes both roots lie in the closed unit disc (abs(q) <= 1, abs(p) <= 1 + q), so nothing overflows.
    """
    n = np.asarray(n, dtype=np.float64)
    p, q = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64))
    out = np.zeros(np.broadcast(n, p).shape)
    n = np.broadcast_to(n, out.shape)
    p = np.broadcast_to(p, out.shape)
    q = np.broadcast_to(q, out.shape)
    # disc = p^2 - 4 q; for q > 0 as (p - 2 sqrt q)(p + 2 sqrt q), accurate near critical damping.
    sq = np.sqrt(np.maximum(q, 0.0))
    disc = np.where(q > 0, (np.abs(p) - 2 * sq) * (np.abs(p) + 2 * sq), p * p - 4 * q)
    cplx = disc < 0
    if np.any(cplx):  # rho = sqrt(q) exp(+-i phi): D_n = q^((n-1)/2) sin(n phi) / sin(phi)
        # p < 0 negates both roots: D_n(p) = (-1)^(n-1) D_n(|p|), so phi is taken in [0, pi/2] where it
        # is well conditioned: 1 - cos(phi) = (2 sqrt q - |p|) / (2 sqrt q) = 2 sin^2(phi / 2)
        qc, pc, nc = q[cplx], p[cplx], n[cplx]
        half = np.sqrt(qc)
        one_minus = np.clip((2 * half - np.abs(pc)) / (4 * half), 0.0, 0.5)
        phi = 2.0 * np.arcsin(np.sqrt(one_minus))
        ratio = np.where(phi > 0, np.sin(nc * phi) / np.where(phi > 0, np.sin(phi), 1.0), nc)
        sign = np.where(pc < 0, (-1.0) ** (nc - 1), 1.0)
        out[cplx] = sign * np.exp(0.5 * (nc - 1) * np.log(qc)) * ratio
    real = ~cplx
    if np.any(real):  # rho_1 the root of larger modulus, w = rho_2 / rho_1 in [-1, 1]
        pr, qr, nr = p[real], q[real], n[real]
        root = np.sqrt(np.maximum(disc[real], 0.0))
        sign = np.where(pr >= 0, 1.0, -1.0)
        rho1 = 0.5 * (pr + sign * root)
        safe1 = np.where(rho1 != 0, rho1, 1.0)
        w = np.where(rho1 != 0, qr / (safe1 * safe1), 0.0)
        one_minus_w = np.where(rho1 != 0, root / np.abs(safe1), 1.0)  # (rho_1 - rho_2) / rho_1, exact form
        lead = np.where(rho1 != 0, np.sign(safe1) ** (nr - 1) * np.exp((nr - 1) * np.log(np.abs(safe1))),
                        (nr == 1).astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_w = np.log1p(-one_minus_w)  # for w > 0
            geo_pos = np.where(one_minus_w > 0, -np.expm1(nr * log_w) / np.where(one_minus_w > 0, one_minus_w, 1.0),
                               nr)
            wn = np.sign(w) ** nr * np.abs(w) ** nr
            geo_neg = (1.0 - wn) / (1.0 - w)
        geo = np.where(w > 0, geo_pos, np.where(w == 0, 1.0, geo_neg))
        out[real] = np.where(nr == 0, 0.0, lead * geo)
    return out


def _recurrence(a: np.ndarray, optimizer: str, beta: float):
    """(p, q, e_1) of the residual's recurrence e_{t+1} = p e_t - q e_{t-1} for each a."""
    if optimizer == "nesterov":
        return (1 + beta) * (1 - a), beta * (1 - a), 1 - a * (1 + beta)
    return 1 + beta - a, np.full_like(a, beta), 1 - a


def ramp(steps: int, warmup: int) -> np.ndarray:
    """The warmup's rate factors min(1, (t + 1) / W) of the first min(T, W) steps t = 0, 1, ... (empty if W = 0).

    Args:
        steps: T, the number of steps.
        warmup: W, the number of warmup steps.

    Returns:
        The factors, a float64 array of length min(T, W).
    """
    n = min(steps, warmup)
    return np.minimum(1.0, np.arange(1, n + 1, dtype=np.float64) / max(warmup, 1))


def _warmup_residual(a: np.ndarray, steps: int, warmup: int, optimizer: str, beta: float) -> np.ndarray:
    """r_T(a) after a linear warmup of W steps: the ramp iterated exactly, then the closed form."""
    factors = ramp(steps, warmup)
    n = steps - factors.size
    if beta == 0.0:  # gradient descent: a product of (1 - a_t), summed in logs (a zero factor gives 0)
        r = np.ones_like(a)
        for f in factors:
            r = r * (1.0 - f * a)
        if n == 0:
            return r
        base = 1.0 - a
        with np.errstate(divide="ignore"):
            tail = np.sign(base) ** n * np.exp(n * np.log(np.abs(base)))
        return r * tail
    e, v = np.ones_like(a), np.zeros_like(a)
    for f in factors:  # optax: v <- beta v + g, update g (+ beta v for Nesterov), times the rate
        v = beta * v + e
        e = e - f * a * (e + beta * v if optimizer == "nesterov" else v)
    if n == 0:
        return e
    v1 = beta * v + e
    e1 = e - a * (e + beta * v1 if optimizer == "nesterov" else v1)
    p, q, _ = _recurrence(a, optimizer, beta)
    return e1 * _divided_power(n, p, q) - q * e * _divided_power(n - 1, p, q)


def residual_factor(a, steps: int, optimizer: str = "gd", momentum: Optional[float] = None,
                    warmup: int = 0) -> np.ndarray:
    """r_T(a): the factor by which T steps shrink a residual mode with a = eta lambda / N_D (float64).

    Args:
        a: array of eta lambda / N_D, each in [0, stability_limit) (a = 0 is a mode that never moves).
        steps: T >= 0.
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov'.
        momentum: beta in [0, 1) for 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.
        warmup: W >= 0 steps of linear warmup (step t at the rate eta min(1, (t + 1) / W)); 0: none.

    Returns:
        r_T(a), a float64 array of a's shape.

    Raises:
        ValueError: some a outside [0, stability_limit) (the message names eta).
    """
    beta = check_optimizer(optimizer, momentum)
    a = real_array(a, "a", finite=True)
    limit = stability_limit(optimizer, momentum)
    if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a >= limit):
        bad = a[~(np.isfinite(a) & (a >= 0) & (a < limit))]
        raise ValueError(f"eta: expected eta lambda / N_D in [0, {limit:.6g}) for {optimizer!r}"
                         f"{'' if optimizer == 'gd' else f' (momentum {beta:g})'}, got {bad.ravel()[:3]}")
    steps = check_int(steps, "steps", minimum=0)
    warmup = check_int(warmup, "warmup", minimum=0)
    if steps == 0:
        return np.ones_like(a)
    if warmup > 0:
        return _warmup_residual(a, steps, warmup, optimizer, beta)
    if beta == 0.0:  # gradient descent (and both momentum forms at beta = 0)
        base = 1.0 - a
        return np.sign(base) ** steps * np.exp(steps * np.log(np.abs(np.where(base == 0, 1.0, base)))) * (base != 0)
    p, q, e1 = _recurrence(a, optimizer, beta)
    return e1 * _divided_power(steps, p, q) - q * _divided_power(steps - 1, p, q)


def small_a_limit(steps: int, optimizer: str = "gd", momentum: Optional[float] = None, warmup: int = 0) -> float:
    """f_T = lim_{a -> 0} (1 - r_T(a)) / a, the response of a mode that barely moves.

    It solves the recurrence's derivative at a = 0, f_{t+1} = (1 + beta) f_t - beta f_{t-1} + 1, f_0 = 0:
    T for 'gd'; T / (1 - beta) - beta (1 - beta^T) / (1 - beta)^2 for heavy ball (f_1 = 1);
    T / (1 - beta) - beta^2 (1 - beta^T) / (1 - beta)^2 for Nesterov (f_1 = 1 + beta).  Step t adds
    w_t = (1 - beta^(t+1)) / (1 - beta) (heavy ball; 1 + beta w_t for Nesterov); a warmup scales the first
    W of these by its ramp.

    Args:
        steps: T >= 0.
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov'.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.
        warmup: W >= 0 steps of linear warmup; 0: none.

    Returns:
        f_T, a float.
    """
    beta = check_optimizer(optimizer, momentum)
    steps = check_int(steps, "steps", minimum=0)
    warmup = check_int(warmup, "warmup", minimum=0)
    factors = ramp(steps, warmup)
    t = np.arange(factors.size, dtype=np.float64)
    w = (1.0 - beta ** (t + 1)) / (1.0 - beta) if beta > 0 else np.ones_like(t)
    if optimizer == "nesterov":
        w = 1.0 + beta * w
    lost = float(np.sum((1.0 - factors) * w))
    if beta == 0.0:
        return float(steps) - lost
    power = beta if optimizer == "momentum" else beta * beta
    return steps / (1.0 - beta) - power * (-math.expm1(steps * math.log(beta))) / (1.0 - beta) ** 2 - lost


def unstable_gd_gain(lam, eta: float, n_train: int, steps: int) -> np.ndarray:
    """(1 - (1 - a)^T) / lambda for gradient descent beyond the stable rate: grows like abs(1 - a)^T, may overflow.

    Args:
        lam: eigenvalues of the train-train NTK (clipped at 0).
        eta: the learning rate.
        n_train: N_D (a = eta lambda / N_D).
        steps: T, the number of gradient-descent steps.

    Returns:
        The gains, a float64 array of lam's shape (eta T / N_D for modes with a = 0).
    """
    lam = np.asarray(lam, dtype=np.float64)
    a = eta * np.maximum(lam, 0.0) / n_train
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        g = (1.0 - (1.0 - a) ** steps) / np.where(a > 0, np.maximum(lam, 0.0), 1.0)
    return np.where(a > 0, g, eta * steps / n_train)


def gain(lam, eta: float, n_train: int, *, steps: Optional[int] = None, time: Optional[float] = None,
         optimizer: str = "gd", momentum: Optional[float] = None, allow_unstable: bool = False,
         warmup: int = 0) -> np.ndarray:
    """g(lambda) = (1 - r) / lambda for every eigenvalue lambda of Theta (clipped at 0), float64.

    Modes with a = eta lambda / N_D below 1e-300 get the small-lambda limit (eta / N_D) f_T (see
    `small_a_limit`; eta t / N_D for flow).

    Args:
        lam: eigenvalues of the train-train NTK.
        eta: the learning rate (per-group rates eta lambda_b, eta lambda_W / n_{l-1}).
        n_train: N_D (the loss normalization 1 / (2 N_D)).
        steps: number of discrete steps T of `optimizer`; or
        time: gradient-flow time t (then optimizer must be 'gd').
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov', as in `residual_factor`.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9), as in `residual_factor`.
        allow_unstable: for gradient descent steps at a rate with eta lambda_max / N_D >= 2, return the
            diverging closed form (`unstable_gd_gain`) instead of raising.
        warmup: W >= 0 steps of linear warmup before the full rate (with `steps` only; see `residual_factor`).

    Returns:
        The gains g, a float64 array of lam's shape.

    Raises:
        ValueError: outside the stable range; not exactly one of steps and time; warmup with gradient-flow
            time; or time with an optimizer other than 'gd'.
    """
    lam = real_array(lam, "lam", finite=True)
    eta = check_positive(eta, "eta")
    n_train = check_int(n_train, "n_train")
    warmup = check_int(warmup, "warmup", minimum=0)
    if warmup and steps is None:
        raise ValueError(f"warmup: only for discrete steps, got warmup={warmup} with gradient-flow time")
    if (allow_unstable and not warmup and optimizer == "gd" and steps is not None and np.size(lam)
            and eta >= 2.0 * n_train / float(np.max(lam))):
        return unstable_gd_gain(lam, eta, n_train, steps)
    lam = np.maximum(lam, 0.0)
    c = eta / n_train
    a = c * lam
    beta = check_optimizer(optimizer, momentum)
    if (steps is None) == (time is None):
        raise ValueError("steps, time: expected exactly one of them")
    if time is not None:
        if optimizer != "gd":
            raise ValueError(f"time: gradient flow has no momentum; expected optimizer 'gd', got {optimizer!r}")
        time = check_positive(time, "time", allow_zero=True)
        num, small = -np.expm1(-a * time), c * time
    else:
        r = residual_factor(a, steps, optimizer, beta if optimizer != "gd" else None, warmup)  # validates the range
        num = 1.0 - r
        if beta == 0.0:  # 1 - prod (1 - a_t) without cancellation for small a
            factors = ramp(steps, warmup)
            a_half = np.minimum(a, 0.5)
            with np.errstate(divide="ignore"):
                log_r = (steps - factors.size) * np.log1p(-a_half) + sum(np.log1p(-f * a_half) for f in factors)
                num = np.where(a <= 0.5, -np.expm1(log_r), num)
        small = c * small_a_limit(steps, optimizer, beta if optimizer != "gd" else None, warmup)
    tiny = a < 1e-300
    return np.where(tiny, small, num / np.where(tiny, 1.0, lam))


def stable_eta(lam_max: float, n_train: int, optimizer: str = "gd", momentum: Optional[float] = None) -> float:
    """The largest stable full-batch learning rate, limit N_D / lambda_max (the stable rates lie below it).

    The limit on eta lambda / N_D is `gains.stability_limit`: 2 for gd, 2 (1 + beta) for heavy ball,
    2 (1 + beta) / (1 + 2 beta) for Nesterov.

    Args:
        lam_max: the largest eigenvalue of the train-train NTK Theta.
        n_train: N_D (the loss normalization 1 / (2 N_D)).
        optimizer: 'gd' (also 'sgd', judged by its full-batch counterpart), 'momentum' or 'nesterov'.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.

    Returns:
        The largest stable learning rate, a float.

    Raises:
        ValueError: lam_max is not a finite number > 0 (a zero NTK has no stable learning rate).
    """
    lam_max = float(lam_max)
    if not (math.isfinite(lam_max) and lam_max > 0):
        raise ValueError(f"lam_max: expected the NTK's largest eigenvalue to be a finite number > 0, got {lam_max:g} "
                         "(a zero NTK - e.g. all-zero inputs with lambda_b = 0 - has no learning dynamics and no "
                         "stable learning rate)")
    return stability_limit("gd" if optimizer == "sgd" else optimizer, momentum) * n_train / lam_max


def max_stable_eta(Th_XX: Array, optimizer: str = "gd", momentum: Optional[float] = None) -> float:
    """Largest learning rate for which full-batch training on the kernel Th_XX converges.

    It is `stable_eta` of the kernel's exact lambda_max.

    Args:
        Th_XX: the train-train NTK, N_D x N_D.
        optimizer: 'gd' (also 'sgd'), 'momentum' or 'nesterov', as in `stable_eta`.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.

    Returns:
        The largest stable learning rate, a float.
    """
    return stable_eta(largest_eigenvalue(Th_XX), Th_XX.shape[0], optimizer, momentum)


__all__ = ["OPTIMIZERS", "check_optimizer", "gain", "max_stable_eta", "ramp", "residual_factor", "small_a_limit",
           "stability_limit", "stable_eta", "unstable_gd_gain"]

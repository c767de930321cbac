"""Generate ``tests/golden/nt_golden.npz``: neural-tangents 0.6.5 reference values.

Runs ONLY in the side environment pinned by ``requirements-reference.txt``
(jax/jaxlib 0.4.30, numpy<2, neural-tangents 0.6.5, tensorflow 2.17.1)::

    python -m venv .refenv
    .refenv/bin/pip install -r requirements-reference.txt
    .refenv/bin/python tests/golden/make_golden.py

It is not imported by the test suite; tests only read the ``.npz``.

Networks
--------
``stax.serial(Dense(512, W_std, b_std), Act, ..., Dense(1, W_std, b_std))`` with
L Dense layers and L-1 activations (L = 1..4), ``parameterization='ntk'``,
``W_std = sqrt(C_W)``, ``b_std = sqrt(C_b)``, Act in {``stax.Relu()``,
``stax.Erf()`` = erf(x)}.  Infinite-width kernels only (the width 512 is
irrelevant).  float64 throughout.  NT's layer recursion is
``Theta^(1) = K^(1) = C_b + C_W x.x'/n0`` and
``K^(l+1) = C_b + C_W E[phi(u) phi(v)]``,
``Theta^(l+1) = K^(l+1) + C_W E[phi'(u) phi'(v)] Theta^(l)``, (u,v) ~ N(0, K^(l))
(checked against the arc-cosine formulas for ReLU, L=2, to ~4e-15 absolute).

NT 0.6.5 prediction convention (read from neural_tangents/_src/predict.py)
-------------------------------------------------------------------------
``gradient_descent_mse_ensemble(kernel_fn, X, Y, learning_rate=lr,
diag_reg=0.0)`` with ``trace_axes=(-1,)`` (default): the kernels are per-output
(N x N) and shared by all output columns of Y.  Let

    NORM = Y.size = N * n_out          (here 12 * 2 = 24, NOT N = 12)
    Theta = ntk(X, X), K = nngp(X, X), Theta_sX = ntk(x_s, X), K_sX, K_ss = nngp(x_s, x_s)
    E(t)  = exp(-lr * t * Theta / NORM)          (matrix exponential)

i.e. gradient flow on the loss ``1/(2*NORM) * ||f(X) - Y||^2`` with
``dtheta/dt = -lr * grad``, so ``df/dt = -(lr/NORM) Theta (f - Y)``.  NT
multiplies ``t`` by ``learning_rate`` first (``t = t * lr``).

get='ntk' (initial function marginalised with prior nngp):

    A(t)    = Theta_sX Theta^{-1} (I - E(t))
    mean(t) = A(t) Y
    cov(t)  = K_ss + A K A^T - A K_Xs - K_sX A^T         (K_Xs = K_sX^T)

get='nngp': the same with Theta -> K everywhere, which simplifies to

    mean(t) = K_sX K^{-1} (I - exp(-lr t K / NORM)) Y
    cov(t)  = K_ss - K_sX K^{-1} (I - exp(-2 lr t K / NORM)) K_Xs

Finite t is computed in the eigenbasis of Theta (resp. K):
``(I - E) Theta^{-1} = V diag(-expm1(-lr t max(lam,0)/NORM) / |lam|) V^T``
(negative eigenvalues are clipped to 0 inside the exponent and ``|lam|``
divides).  t=None (infinity) uses a Cholesky solve instead: E = 0, so
``A = Theta_sX Theta^{-1}``.  With diag_reg=0 nothing is added to the diagonal
(NT adds ``diag_reg * trace(Theta)/N * I`` = 0).  No jitter, no explicit final
symmetrisation: only the cross term ``A K_Xs`` is symmetrised
(``term_2 + term_2^T``), so cov is symmetric up to rounding.

Depth L=1 (no activation) has K = Theta = C_b + C_W X X^T / 5 of rank <= 6 < 12,
so NT's t=None Cholesky returns NaN.  For those cases the t=None keys hold NaN
and ``tinf_valid`` is 0.  Finite-t values are fine for L=1.

npz layout (all float64 unless stated; no strings, no object arrays)
--------------------------------------------------------------------
x_train (12,5), x_test (7,5)   rng = np.random.default_rng(0); x_train drawn first,
                               then x_test from the same generator (standard normal)
y_train (12,2)                 np.random.default_rng(1).standard_normal((12, 2))
cases (16,4)                   columns: depth L, act code (0=relu, 1=erf), C_W, C_b
tinf_valid (16,) int64         1 if the t=None predictions are finite
times (2,)                     [0.5, 3.0]
learning_rate ()               1.0
mse_norm ()                    NORM = y_train.size = 24
train_eig (16,2,2)             [case, kernel (0=nngp,1=ntk), (min, max) eigenvalue of train-train]
c{i}_{k}_{a}_{b}               k in {nngp, ntk}; (a,b) in {(train,train) 12x12,
                               (test,train) 7x12, (test,test) 7x7}
c{i}_pred_{g}_mean_tinf (7,2)  g in {ntk, nngp}, t=None
c{i}_pred_{g}_cov_tinf  (7,7)
c{i}_pred_{g}_mean_t (2,7,2)   leading axis = times
c{i}_pred_{g}_cov_t  (2,7,7)
"""

from __future__ import annotations

import os
import sys

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nt_golden.npz")

N_TRAIN, N_TEST, N_IN, N_OUT = 12, 7, 5, 2
DEPTHS = (1, 2, 3, 4)
ACTS = (("relu", 0, ((2.0, 0.1), (1.5, 0.4))),
        ("erf", 1, ((1.0, 0.1), (1.7, 0.3))))
TIMES = np.array([0.5, 3.0])
LR = 1.0
HIDDEN = 512


def make_net(depth: int, act: str, cw: float, cb: float):
    w_std, b_std = np.sqrt(cw), np.sqrt(cb)
    act_layer = {"relu": stax.Relu, "erf": stax.Erf}[act]
    layers = []
    for _ in range(depth - 1):
        layers += [stax.Dense(HIDDEN, w_std, b_std, parameterization="ntk"), act_layer()]
    layers += [stax.Dense(1, w_std, b_std, parameterization="ntk")]
    return stax.serial(*layers)[2]


def documented_prediction(kdd_g, kdd_nngp, ktd_g, ktd_nngp, ktt_nngp, y, t):
    """Independent numpy implementation of the convention in the docstring."""
    norm = y.size
    lam, v = np.linalg.eigh(kdd_g)
    if t is None:
        m = v @ np.diag(1.0 / lam) @ v.T
    else:
        m = v @ np.diag(-np.expm1(-LR * t * np.maximum(lam, 0) / norm) / np.abs(lam)) @ v.T
    a = ktd_g @ m
    mean = a @ y
    cov = ktt_nngp + a @ kdd_nngp @ a.T - a @ ktd_nngp.T - ktd_nngp @ a.T
    return mean, cov


def main() -> None:
    assert nt.__version__ == "0.6.5", nt.__version__
    assert jax.__version__ == "0.4.30", jax.__version__

    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((N_TRAIN, N_IN))
    x_test = rng.standard_normal((N_TEST, N_IN))
    y_train = np.random.default_rng(1).standard_normal((N_TRAIN, N_OUT))

    out: dict[str, np.ndarray] = {
        "x_train": x_train, "x_test": x_test, "y_train": y_train,
        "times": TIMES, "learning_rate": np.array(LR),
        "mse_norm": np.array(float(y_train.size)),
    }
    cases, tinf_valid, train_eig = [], [], []
    i = 0
    for act, code, params in ACTS:
        for cw, cb in params:
            for depth in DEPTHS:
                kfn = make_net(depth, act, cw, cb)
                get = ("nngp", "ntk")
                kdd = kfn(x_train, None, get)
                ktd = kfn(x_test, x_train, get)
                ktt = kfn(x_test, None, get)
                p = f"c{i}_"
                for k in get:
                    out[p + f"{k}_train_train"] = np.asarray(getattr(kdd, k))
                    out[p + f"{k}_test_train"] = np.asarray(getattr(ktd, k))
                    out[p + f"{k}_test_test"] = np.asarray(getattr(ktt, k))
                train_eig.append([np.linalg.eigvalsh(out[p + f"{k}_train_train"])[[0, -1]]
                                  for k in get])

                pred = nt.predict.gradient_descent_mse_ensemble(
                    kfn, x_train, y_train, learning_rate=LR, diag_reg=0.0)
                valid = 1
                for g in ("ntk", "nngp"):
                    m_inf, c_inf = (np.asarray(a) for a in
                                    pred(t=None, x_test=x_test, get=g, compute_cov=True))
                    m_t, c_t = (np.asarray(a) for a in
                                pred(t=TIMES, x_test=x_test, get=g, compute_cov=True))
                    assert m_inf.shape == (N_TEST, N_OUT) and c_inf.shape == (N_TEST, N_TEST)
                    assert m_t.shape == (2, N_TEST, N_OUT) and c_t.shape == (2, N_TEST, N_TEST)
                    assert np.isfinite(m_t).all() and np.isfinite(c_t).all()
                    if not (np.isfinite(m_inf).all() and np.isfinite(c_inf).all()):
                        assert depth == 1, (i, g)  # singular train kernel only at L=1
                        valid = 0
                        m_inf = np.full_like(m_inf, np.nan)
                        c_inf = np.full_like(c_inf, np.nan)
                    out[p + f"pred_{g}_mean_tinf"] = m_inf
                    out[p + f"pred_{g}_cov_tinf"] = c_inf
                    out[p + f"pred_{g}_mean_t"] = m_t
                    out[p + f"pred_{g}_cov_t"] = c_t

                    # Self-check of the documented formula (finite t always;
                    # t=None where defined).
                    args = (out[p + f"{g}_train_train"], out[p + "nngp_train_train"],
                            out[p + f"{g}_test_train"], out[p + "nngp_test_train"],
                            out[p + "nngp_test_test"], y_train)
                    checks = [(t, m_t[j], c_t[j]) for j, t in enumerate(TIMES)]
                    if valid:
                        checks.append((None, m_inf, c_inf))
                    for t, m_nt, c_nt in checks:
                        m_ref, c_ref = documented_prediction(*args, t)
                        scale = max(1.0, np.abs(c_ref).max())
                        assert np.allclose(m_nt, m_ref, rtol=1e-10, atol=1e-10 * max(1, np.abs(m_ref).max())), \
                            (i, g, t, np.abs(m_nt - m_ref).max())
                        assert np.abs(c_nt - c_ref).max() < 1e-10 * scale, \
                            (i, g, t, np.abs(c_nt - c_ref).max())
                cases.append([depth, code, cw, cb])
                tinf_valid.append(valid)
                i += 1

    out["cases"] = np.array(cases, dtype=np.float64)
    out["tinf_valid"] = np.array(tinf_valid, dtype=np.int64)
    out["train_eig"] = np.array(train_eig, dtype=np.float64)
    for k, v in out.items():
        assert v.dtype != object and v.dtype.kind in "fi", k
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}: {len(out)} arrays, {os.path.getsize(OUT)} bytes, "
          f"{len(cases)} cases, t=None valid for {sum(tinf_valid)}", file=sys.stderr)


if __name__ == "__main__":
    main()

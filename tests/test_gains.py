"""ntkuq.infinite.gains: residual factors and gains against direct iteration of each optimizer's recurrence."""
import numpy as np
import pytest

from ntkuq.infinite import gain, residual_factor, small_a_limit, stability_limit, unstable_gd_gain


def _iterate(a, steps, optimizer, beta):
    """e_T of the linearized residual, by running the optimizer's two-term recurrence step by step."""
    e_prev, e = np.ones_like(a), (1 - a * (1 + beta)) if optimizer == "nesterov" else 1 - a
    if steps == 0:
        return e_prev
    for _ in range(steps - 1):
        if optimizer == "nesterov":
            e_prev, e = e, (1 + beta) * (1 - a) * e - beta * (1 - a) * e_prev
        else:
            e_prev, e = e, (1 + beta - a) * e - beta * e_prev
    return e


@pytest.mark.parametrize("optimizer, beta", [("gd", None), ("momentum", 0.9), ("nesterov", 0.5)])
def test_residual_factor_matches_the_recurrence(optimizer, beta):
    limit = stability_limit(optimizer, beta)
    a = np.linspace(0.0, 0.999 * limit, 9)
    for steps in (0, 1, 2, 7, 40):
        want = _iterate(a, steps, optimizer, beta or 0.0)
        np.testing.assert_allclose(residual_factor(a, steps, optimizer, beta), want, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="^eta"):
        residual_factor(np.array([limit]), 3, optimizer, beta)


def test_gain_limits_and_the_unstable_form():
    lam = np.array([0.0, 1e-3, 1.0, 3.0])
    g = gain(lam, eta=1.0, n_train=4, steps=5)
    np.testing.assert_allclose(g[1:], (1 - (1 - lam[1:] / 4) ** 5) / lam[1:], rtol=1e-12)
    assert g[0] == pytest.approx(small_a_limit(5) / 4)  # a mode that never moves: eta T / N_D
    np.testing.assert_allclose(gain(lam, 1.0, 4, time=2.0)[1:], -np.expm1(-lam[1:] / 2) / lam[1:], rtol=1e-12)
    with pytest.raises(ValueError):
        gain(lam, eta=3.0, n_train=4, steps=5)  # eta lambda_max / N_D = 2.25 > 2
    unstable = gain(lam, eta=3.0, n_train=4, steps=5, allow_unstable=True)
    np.testing.assert_allclose(unstable, unstable_gd_gain(lam, 3.0, 4, 5))
    assert unstable[-1] == pytest.approx((1 - (1 - 2.25) ** 5) / 3.0)
    with pytest.raises(ValueError, match="steps, time"):
        gain(lam, 1.0, 4)

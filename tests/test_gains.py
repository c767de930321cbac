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


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.95])
def test_heavy_ball_speeds_a_slow_mode_by_one_plus_beta_over_one_minus_beta(beta):
    """Each optimizer at the same fraction of its own stable limit: once heavy ball's velocity has built up, a mode
    with a << 1 decays (1 + beta) / (1 - beta) times faster per step than under gradient descent (the momentum
    chapter's 19 at beta = 0.9; the first ~1 / (1 - beta) steps only delay it).  "Slow" means a << (1 - beta)^2:
    the factor's correction is of order beta a / (1 - beta)^2, 15 % at a = 4e-4 and beta = 0.95."""
    a_gd = 1e-6 * stability_limit("gd")
    a_hb = a_gd * stability_limit("momentum", beta) / stability_limit("gd")
    assert a_hb == pytest.approx(a_gd * (1 + beta))  # heavy ball's limit is 2 (1 + beta) against 2

    def rate(a, optimizer, momentum, t1=2000, t2=12000):
        r1, r2 = (residual_factor(np.array([a]), t, optimizer, momentum)[0] for t in (t1, t2))
        return -np.log(abs(r2 / r1)) / (t2 - t1)

    ratio = rate(a_hb, "momentum", beta) / rate(a_gd, "gd", None)
    assert ratio == pytest.approx((1 + beta) / (1 - beta), rel=2e-3)

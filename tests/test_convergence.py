"""ntkuq.infinite: the converged T is where mu_L and sigma_L of the T-step ensemble stay within tol."""
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.infinite import (
    converged_steps,
    deviation_curve,
    loss_stats,
    max_stable_eta,
    ntk_prediction,
    train_test_kernels,
)

RNG = np.random.default_rng(3)
X, XT = RNG.normal(size=(30, 4)), RNG.normal(size=(12, 4))
Y, YT = np.sin(X[:, :2]), np.sin(XT[:, :2])
KERN = train_test_kernels(MLPSpec.critical("relu", depth=2), X, XT)


@pytest.mark.parametrize("optimizer, beta", [("gd", None), ("momentum", 0.9)])
def test_converged_steps_is_within_tol_from_there_on(optimizer, beta):
    eta = 0.5 * max_stable_eta(KERN.Th_XX, optimizer, beta)
    conv = converged_steps(KERN, Y, YT, eta=eta, optimizer=optimizer, momentum=beta, tol=0.02)
    assert conv.converged and conv.steps >= 1
    limit = loss_stats(ntk_prediction(KERN, Y), YT)
    for t in (conv.steps, 2 * conv.steps):
        st = loss_stats(ntk_prediction(KERN, Y, steps=t, eta=eta, optimizer=optimizer, momentum=beta), YT)
        assert abs(st.mu / limit.mu - 1) <= 0.02 and abs(st.sigma / limit.sigma - 1) <= 0.02
    if conv.steps > 1:  # one step earlier on the grid is still outside the tolerance
        earlier = conv.grid[conv.grid < conv.steps][-1]
        st = loss_stats(ntk_prediction(KERN, Y, steps=int(earlier), eta=eta, optimizer=optimizer, momentum=beta), YT)
        assert max(abs(st.mu / limit.mu - 1), abs(st.sigma / limit.sigma - 1)) > 0.02
    with pytest.raises(ValueError, match="^eta: .*stable maximum"):
        converged_steps(KERN, Y, YT, eta=2.5 * eta, optimizer=optimizer, momentum=beta)


def test_deviation_curve_matches_single_predictions():
    eta = 0.5 * max_stable_eta(KERN.Th_XX)
    mu, sigma = deviation_curve(KERN, Y, YT, [1, 10, 100], eta=eta, optimizer="gd")
    for t, m, s in zip([1, 10, 100], mu, sigma):
        st = loss_stats(ntk_prediction(KERN, Y, steps=t, eta=eta), YT)
        assert m == pytest.approx(st.mu, rel=1e-9) and s == pytest.approx(st.sigma, rel=1e-9)


@pytest.mark.parametrize("optimizer, beta, warmup", [("momentum", 0.9, 7), ("nesterov", 0.8, 3), ("gd", None, 5)])
def test_deviation_curve_with_warmup_matches_single_predictions(optimizer, beta, warmup):
    eta = 0.5 * max_stable_eta(KERN.Th_XX, optimizer, beta)
    steps = [0, 1, warmup - 1, warmup, warmup + 1, 40]
    mu, sigma = deviation_curve(KERN, Y, YT, steps, eta=eta, optimizer=optimizer, momentum=beta, warmup=warmup,
                                block_size=5)
    plain, _ = deviation_curve(KERN, Y, YT, steps, eta=eta, optimizer=optimizer, momentum=beta)
    for t, m, s in zip(steps, mu, sigma):
        st = loss_stats(ntk_prediction(KERN, Y, steps=t, eta=eta, optimizer=optimizer, momentum=beta,
                                       warmup=warmup), YT)
        assert m == pytest.approx(st.mu, rel=1e-9) and s == pytest.approx(st.sigma, rel=1e-9)
    assert abs(mu[3] / plain[3] - 1) > 1e-3  # the warmup changes the ensemble: the argument is not ignored

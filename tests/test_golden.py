"""Our kernels and predictions against golden values from neural-tangents 0.6.5 (tests/golden/)."""
from pathlib import Path

import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.infinite import kernels, nngp_posterior, ntk_prediction, train_test_kernels

GOLDEN = np.load(Path(__file__).parent / "golden" / "nt_golden.npz", allow_pickle=False)
CASES = range(GOLDEN["cases"].shape[0])
RTOL = 1e-10


def spec_of(i: int) -> MLPSpec:
    depth, act, c_w, c_b = GOLDEN["cases"][i]
    # neural-tangents ties the learning-rate multipliers to the initialization variances.
    return MLPSpec(depth=int(depth), activation=("relu", "erf")[int(act)], C_b=c_b, C_W=c_w, lambda_b=c_b, lambda_W=c_w)


def close(ours, ref, rtol=RTOL):
    ours, ref = np.asarray(ours), np.asarray(ref)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * np.max(np.abs(ref)))


@pytest.mark.parametrize("i", CASES)
def test_kernels_match_neural_tangents(i):
    spec, x, s = spec_of(i), GOLDEN["x_train"], GOLDEN["x_test"]
    for name, (a, b) in {"train_train": (x, x), "test_train": (s, x), "test_test": (s, s)}.items():
        k = kernels(spec, a, b, block_size=5)
        close(k.nngp, GOLDEN[f"c{i}_nngp_{name}"])
        close(k.ntk, GOLDEN[f"c{i}_ntk_{name}"])


@pytest.mark.parametrize("i", CASES)
def test_predictions_match_neural_tangents(i):
    spec, x, s, y = spec_of(i), GOLDEN["x_train"], GOLDEN["x_test"], GOLDEN["y_train"]
    kern = train_test_kernels(spec, x, s)
    k_out = y.shape[1]
    # neural-tangents evolves exp(-lr t Theta / (N_D k)); ours exp(-eta t Theta / N_D): t_ours = lr t_NT / k.
    for j, t_nt in enumerate(GOLDEN["times"]):
        pred = ntk_prediction(kern, y, time=float(GOLDEN["learning_rate"] * t_nt / k_out))
        close(pred.mean, GOLDEN[f"c{i}_pred_ntk_mean_t"][j], rtol=1e-9)
        close(pred.cov(), GOLDEN[f"c{i}_pred_ntk_cov_t"][j], rtol=1e-9)
    if GOLDEN["tinf_valid"][i]:
        pred = ntk_prediction(kern, y)
        close(pred.mean, GOLDEN[f"c{i}_pred_ntk_mean_tinf"])
        close(pred.cov(), GOLDEN[f"c{i}_pred_ntk_cov_tinf"])
        post = nngp_posterior(kern, y)
        close(post.mean, GOLDEN[f"c{i}_pred_nngp_mean_tinf"])
        close(post.cov(), GOLDEN[f"c{i}_pred_nngp_cov_tinf"])

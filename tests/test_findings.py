"""The verdict rows of the synthesis follow from their numbers."""
import numpy as np

from ntkuq.book import finite_predicted, ntk_like_nngp, plateau_finite, plateau_infinite, power_laws
from ntkuq.study import fit_plateau, split_curve

N = np.array([100.0, 1000.0, 10000.0])


def test_power_laws_detects_drift():
    straight = power_laws({"A": (N, N**-0.3, N**-0.5)}, "x")
    assert straight["verdict"] == "holds" and "α 0.30 → 0.30" in straight["numbers"]
    bent = power_laws({"A": (N, N**-0.3, np.array([1.0, 0.1, 0.05]))}, "x")
    assert bent["verdict"].startswith("holds locally") and "A" in bent["verdict"]


def _model(b0, gamma, a=0.2, nt=10_000):
    rows = [{"n_train": n, "mu": 0.1, "var_diag": a * 0.01 / nt,
             "var_offdiag": b0 * n**-gamma * 0.01 * (nt - 1) / nt, "params": {"n_test": nt}}
            for n in (2500, 5000, 10_000, 25_000)]
    return fit_plateau(split_curve(rows))


def test_plateau_infinite_names_the_largest_flat_test_size():
    # B(25,000) = 1e-5 against A / n = 0.2 / n: slope -0.3 B / (A / n + B) is -0.04 at n = 3000, -0.1 at 10^4
    row = plateau_infinite({"A": _model(1e-5 * 25_000**0.6, 0.6)}, 25_000)
    assert "up to 3,000" in row["verdict"] and "population part still falls" in row["verdict"]
    assert plateau_infinite({}, 1)["verdict"] == "not tested at this scale"
    nowhere = plateau_infinite({"A": _model(1.0, 0.6)}, 25_000)
    assert nowhere["verdict"].startswith("does not hold")


def test_finite_and_nngp_rows():
    assert plateau_finite({"A": "plateau", "B": "still falling"}, 1000, "100-2000")["verdict"] == \
        "holds on A, not on B, at N_T = 1,000"
    one = {"floor": np.array([1.0, 1.02]), "floor_err": np.array([0.01, 0.01]),
           "population": np.array([1.0, 1.0]), "population_err": np.array([0.1, 0.1])}
    four = {**one, "floor": np.array([4.0, 4.0])}
    assert finite_predicted({"A": one, "B": four}, 1000)["verdict"] == "holds on A, not on B"
    assert ntk_like_nngp({"A": ((0.3, 0.001), (0.325, 0.001)), "B": ((0.28, 0.01), (0.49, 0.01))},
                         "x")["verdict"] == "holds on A, not on B"  # A: within 10 %, though 18 errors apart
    assert plateau_finite({"calorimeter": "rising"}, 10, "1-2")["verdict"] == "does not hold at these sizes"

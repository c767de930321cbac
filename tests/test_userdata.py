"""ntkuq.data: reading .npz/.csv tables with located errors, and training-set standardization."""
import numpy as np
import pytest

from ntkuq.data import check_pair, fit_preprocessing, read_table
from ntkuq.errors import DataError


def test_csv_and_npz_read_the_same_table(tmp_path):
    (tmp_path / "a.csv").write_text("f1,t,f2\n1,2,3\n4,5,6\n")
    np.savez(tmp_path / "a.npz", x=np.array([[1.0, 3.0], [4.0, 6.0]]), y=np.array([2.0, 5.0]))
    csv, npz = read_table(tmp_path / "a.csv", "t"), read_table(tmp_path / "a.npz")
    np.testing.assert_array_equal(csv.x, npz.x)
    np.testing.assert_array_equal(csv.y, npz.y)
    assert csv.features == ("f1", "f2") and csv.targets == ("t",) and csv.n_points == 2
    check_pair(csv, npz)


@pytest.mark.parametrize("text, match", [("a,t\n1,x\n", "line 2, column 't': non-numeric"),
                                          ("a,t\n1,2\n3\n", "line 3: 1 cells"),
                                          ("a,t\n1,nan\n", "not finite"),
                                          ("a,b\n1,2\n", r"target column\(s\) \['t'\] not found")])
def test_csv_errors_name_the_place(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_table(path, "t")


def test_preprocessing_uses_training_statistics():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    y = np.array([[2.0], [4.0]])
    prep = fit_preprocessing(x, y, "both")
    np.testing.assert_allclose(prep.apply_x(x), [[-1.0, 0.0], [1.0, 0.0]])  # the constant column is only centred
    np.testing.assert_allclose(prep.apply_y(y), [[-1.0], [1.0]])
    assert prep.constant_features == 1 and "squared standardized target units" in prep.describe()
    assert fit_preprocessing(x, y).apply_x(x) is x
    with pytest.raises(ValueError, match="standardize"):
        fit_preprocessing(x, y, "all")

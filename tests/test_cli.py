"""ntkuq.estimate.cli: argument parsing and error reporting of the `ntkuq` command (estimates are in test_estimate)."""
import numpy as np
import pytest

from ntkuq.estimate import build_parser, main


def test_parser_reads_sizes_and_levels():
    args = build_parser().parse_args(["estimate", "--train", "a.npz", "--test", "b.npz"])
    assert args.command == "estimate" and args.train == "a.npz"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["estimate"])  # --train and --test are required


def test_errors_are_one_line_and_exit_1(tmp_path, capsys):
    np.savez(tmp_path / "train.npz", x=np.ones((5, 2)), y=np.ones(5))
    rc = main(["estimate", "--train", str(tmp_path / "train.npz"), "--test", str(tmp_path / "missing.npz")])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("ntkuq estimate: error:") and "missing.npz: no such file" in err

"""Resumable training (ntkuq.finite.checkpoint): an interrupted run continues to the uninterrupted run's numbers."""
import dataclasses
import warnings

import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.errors import CheckpointWarning, InputTypeError, TrainingInterrupted
from ntkuq.finite import Checkpoint, StopRule, train_ensemble

FIELDS = ("test_losses", "train_losses", "steps", "train_history", "test_history", "stopped_at", "alive_history",
          "point_losses", "outputs")


def _data(n=30, n_test=9, n_in=4, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, n_in)), rng.normal(size=(n, k)), rng.normal(size=(n_test, n_in)),
            rng.normal(size=(n_test, k)))


def _assert_same(a, b):
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=f)  # bit for bit, not to a tolerance
    assert a.eta == b.eta and a.stopping == b.stopping


def _interrupted(data, kwargs, path, seg):
    """Train with a deadline already passed: every call trains one segment, saves and stops; count the calls."""
    calls = 0
    while True:
        calls += 1
        assert calls < 500
        try:
            return train_ensemble(*data, **kwargs, progress=False,
                                  checkpoint=Checkpoint(path, every_s=1e9, segment=seg, deadline=1.0)), calls
        except TrainingInterrupted as err:
            assert path.exists() and str(path) in str(err)


CASES = {
    "gd, stop rule, three chunks": (dict(spec=MLPSpec(width=6), n_members=5, steps=400, chunk=2,
                                         stop=StopRule(0.02, 30)), {}),
    "momentum, warmup, tol": (dict(spec=MLPSpec(width=5), n_members=3, steps=90, optimizer="momentum", warmup=10,
                                   tol=0.5), {}),
    "sgd mini-batches": (dict(spec=MLPSpec(width=5), n_members=3, steps=70, optimizer="sgd", batch_size=7), {}),
    "in the span of the inputs": (dict(spec=MLPSpec(width=5), n_members=3, steps=60), dict(n=12, n_in=40)),
}


@pytest.mark.parametrize("case", CASES)
def test_interrupted_run_continues_to_the_same_numbers(case, tmp_path):
    kwargs, shape = CASES[case]
    kwargs = dict(kwargs)
    spec = kwargs.pop("spec")
    data = (spec, *_data(**shape))
    whole = train_ensemble(*data, **kwargs, keep_outputs=True, progress=False)
    path = tmp_path / "run.npz"
    resumed, calls = _interrupted(data, dict(kwargs, keep_outputs=True), path, seg=13)
    assert calls > 3  # it was interrupted, more than once, and resumed each time
    _assert_same(whole, resumed)
    assert not path.exists()  # removed once finished
    assert resumed.seconds is not None and resumed.seconds > 0


def test_segments_and_snapshots_do_not_change_the_numbers(tmp_path):
    spec, *xy = (MLPSpec(width=6), *_data())
    kw = dict(n_members=4, steps=300, stop=StopRule(0.02, 20), progress=False)
    whole = train_ensemble(spec, *xy, **kw)
    for every in (0.0, 1e9):  # a snapshot after every 7 steps, or none at all
        again = train_ensemble(spec, *xy, **kw, checkpoint=Checkpoint(tmp_path / "a.npz", every_s=every, segment=7))
        _assert_same(whole, again)
        assert not (tmp_path / "a.npz").exists()


def test_a_snapshot_of_another_run_or_a_broken_file_is_set_aside(tmp_path):
    spec, *xy = (MLPSpec(width=6), *_data())
    kw = dict(n_members=3, steps=80, progress=False)
    path = tmp_path / "run.npz"
    with pytest.raises(TrainingInterrupted):
        train_ensemble(spec, *xy, **kw, seed=1, checkpoint=Checkpoint(path, segment=10, deadline=1.0))
    assert path.exists()
    fresh = train_ensemble(spec, *xy, **kw)
    with pytest.warns(CheckpointWarning, match="other arguments"):  # seed 0 now: the seed-1 snapshot is not used
        got = train_ensemble(spec, *xy, **kw, checkpoint=Checkpoint(path))
    _assert_same(fresh, got)
    assert (tmp_path / "run.npz.stale").exists() and not path.exists()
    for broken in (b"not a snapshot", b""):
        path.write_bytes(broken)
        with pytest.warns(CheckpointWarning, match="cannot be read"):
            got = train_ensemble(spec, *xy, **kw, checkpoint=Checkpoint(path))
        _assert_same(fresh, got)
    with pytest.raises(TrainingInterrupted):  # a real snapshot, cut in half (a kill during a copy, a full disk)
        train_ensemble(spec, *xy, **kw, checkpoint=Checkpoint(path, segment=10, deadline=1.0))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(CheckpointWarning, match="cannot be read"):
        got = train_ensemble(spec, *xy, **kw, checkpoint=Checkpoint(path))
    _assert_same(fresh, got)


def test_a_snapshot_of_another_test_set_is_not_continued_on_the_span_path(tmp_path):
    """Two test sets that differ only outside the span of the training inputs reduce to the same coefficients;
    the snapshot must still tell them apart (their first-layer offsets differ)."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 30)), rng.normal(size=(8, 1))
    xt, yt = rng.normal(size=(5, 30)), rng.normal(size=(5, 1))
    q, _ = np.linalg.qr(x.T)  # an orthonormal basis of the training inputs' span
    v = rng.normal(size=30)
    v -= q @ (q.T @ v)  # a direction outside the span
    spec, kw, path = MLPSpec(width=4), dict(n_members=2, steps=40, progress=False), tmp_path / "s.npz"
    with pytest.raises(TrainingInterrupted):
        train_ensemble(spec, x, y, xt, yt, **kw, checkpoint=Checkpoint(path, segment=10, deadline=1.0))
    other = xt + 3.0 * v
    with pytest.warns(CheckpointWarning, match="other arguments"):
        got = train_ensemble(spec, x, y, other, yt, **kw, checkpoint=Checkpoint(path))
    _assert_same(train_ensemble(spec, x, y, other, yt, **kw), got)


def test_a_snapshot_with_other_shapes_is_set_aside(tmp_path):
    from ntkuq.finite import checkpoint as ck
    path = tmp_path / "s.npz"
    ck.save(path, "d", {"train_hist": np.zeros((3, 4))}, [np.zeros(2)])
    assert ck.load(path, "d", {"train_hist": (3, 4)})["leaves"][0].shape == (2,)
    with pytest.warns(CheckpointWarning, match="shapes"):
        assert ck.load(path, "d", {"train_hist": (3, 5)}) is None
    assert not path.exists() and (tmp_path / "s.npz.stale").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unwritable_checkpoint_is_refused_before_training(tmp_path):
    (tmp_path / "a_file").write_text("")
    spec, *xy = (MLPSpec(width=4), *_data())
    with pytest.raises(ValueError, match="writable"):
        train_ensemble(spec, *xy, n_members=2, steps=5, progress=False,
                       checkpoint=Checkpoint(tmp_path / "a_file" / "run.npz"))


def test_the_study_resumes_inside_an_ensemble(tmp_path):
    from ntkuq.data import TaskData
    from ntkuq.study import ResultStore, finite_width_study
    rng = np.random.default_rng(4)
    data = TaskData("synthetic", rng.normal(size=(40, 5)), rng.normal(size=(40, 2)), rng.normal(size=(10, 5)),
                    rng.normal(size=(10, 2)), {"kind": "test"})
    spec = MLPSpec(depth=2, C_b=0.1, width=4)
    kw = dict(members=3, steps=40, optimizer="gd", converge=0.02, max_steps=600)
    plain = finite_width_study(data, spec, [20], **kw, store=ResultStore(tmp_path / "plain"))
    folder = tmp_path / "partial"
    late = Checkpoint(folder, segment=25, deadline=1.0)
    store = ResultStore(tmp_path / "points")
    calls = 0
    while True:
        calls += 1
        try:
            rows = finite_width_study(data, spec, [20], **kw, store=store, checkpoint=late)
            break
        except TrainingInterrupted:
            assert len(list(folder.glob("*.npz"))) == 1  # one snapshot, named by the point's key
    assert calls > 2 and not list(folder.glob("*.npz"))
    assert [r["mu"] for r in rows] == [r["mu"] for r in plain] and rows[0]["steps"] == plain[0]["steps"]
    assert rows[0]["wall_s"] > 0
    with pytest.raises(InputTypeError, match="checkpoint"):
        finite_width_study(data, spec, [20], **kw, checkpoint=str(folder))


@pytest.mark.parametrize("kwargs,err", [
    (dict(path=3), InputTypeError), (dict(path="a", every_s=-1), ValueError),
    (dict(path="a", every_s="5"), InputTypeError),
    (dict(path="a", every_s=float("nan")), ValueError), (dict(path="a", segment=0), ValueError),
    (dict(path="a", segment=2.5), ValueError), (dict(path="a", deadline="soon"), ValueError),
    (dict(path="a", deadline=float("inf")), ValueError)])
def test_bad_checkpoint_settings_are_refused(kwargs, err):
    with pytest.raises(err):
        Checkpoint(**kwargs)


def test_train_ensemble_refuses_a_path_for_a_checkpoint(tmp_path):
    spec, *xy = (MLPSpec(width=4), *_data())
    with pytest.raises(InputTypeError, match="checkpoint"):
        train_ensemble(spec, *xy, n_members=2, steps=5, checkpoint=str(tmp_path / "a.npz"), progress=False)


def test_for_point_names_one_file_per_key():
    c = Checkpoint("folder", every_s=np.float64(10), segment=50, deadline=5.0)
    p = c.for_point("abc")
    assert p.path.name == "abc.npz" and p.path.parent.name == "folder"
    assert dataclasses.replace(p, path=c.path) == c
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not Checkpoint("x").past_deadline() and p.past_deadline()


def test_snapshots_are_taken_while_a_long_interval_trains(tmp_path, monkeypatch):
    """Between two recording steps the training runs in many segments; a snapshot is due every every_s seconds
    of training, so a slow interval is saved segment by segment, not once (JAX dispatches the segments
    asynchronously: the clock must wait for them)."""
    import ntkuq.finite.ensembles as ens
    saved = []
    real = ens.save_checkpoint

    def spy(path, digest, arrays, leaves):
        saved.append(int(arrays["t"]))
        return real(path, digest, arrays, leaves)

    monkeypatch.setattr(ens, "save_checkpoint", spy)
    spec, *xy = (MLPSpec(width=30), *_data(n=200, n_test=20, n_in=50))
    steps, seg = 3000, 100
    train_ensemble(spec, *xy, n_members=16, steps=steps, n_record=2, progress=False,
                   checkpoint=Checkpoint(tmp_path / "a.npz", every_s=1e-3, segment=seg))
    # n_record=2 records only steps 0 and 3000: one interval of 30 segments, each far longer than 1 ms
    assert len(saved) >= 0.8 * steps / seg, saved


def test_fit_members_repads_for_other_devices_and_refuses_other_shapes():
    from ntkuq.finite.checkpoint import fit_members

    rng = np.random.default_rng(0)
    real = [rng.normal(size=(5, 3, 2)).astype(np.float32), rng.normal(size=(5,)).astype(np.float32)]
    on_one = real  # 5 members on one device: no copies
    on_four = [np.concatenate([v, np.repeat(v[-1:], 3, axis=0)]) for v in real]  # padded to 8 with copies
    want_four = [((8, 3, 2), np.dtype(np.float32)), ((8,), np.dtype(np.float32))]
    want_one = [((5, 3, 2), np.dtype(np.float32)), ((5,), np.dtype(np.float32))]
    for got, want in ((fit_members(on_one, 5, want_four), on_four), (fit_members(on_four, 5, want_one), on_one),
                      (fit_members(on_four, 5, want_four), on_four)):
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert fit_members(on_one, 5, [((5, 3, 3), np.dtype(np.float32)), want_one[1]]) is None  # another width
    assert fit_members(on_one, 5, [((5, 3, 2), np.dtype(np.float64)), want_one[1]]) is None  # another dtype
    assert fit_members(on_one, 6, [((6, 3, 2), np.dtype(np.float32)), ((6,), np.dtype(np.float32))]) is None
    assert fit_members(on_one, 5, want_one[:1]) is None  # another number of leaves

"""The stopping rule of trained ensembles (ntkuq.finite.stopping) and the members sharded over devices."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.errors import InputTypeError
from ntkuq.finite import StopRule, check_steps, first_pass, member_mesh, padded_count, train_ensemble
from ntkuq.finite.stopping import relative_fall

REPO_ROOT = Path(__file__).resolve().parents[1]


def _data(n=40, n_test=12, n_in=5, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, n_in)), rng.normal(size=(n, k)), rng.normal(size=(n_test, n_in)),
            rng.normal(size=(n_test, k)))


@pytest.mark.parametrize("min_steps,cap,warmup", [(0, 1, 0), (100, 1000, 0), (10, 5000, 300), (900, 500, 0),
                                                  (7, 8, 0), (1, 37, 3)])
def test_check_steps(min_steps, cap, warmup):
    checks, starts = check_steps(StopRule(0.01, min_steps), cap, warmup)
    assert checks[-1] == cap and np.all(np.diff(checks) > 0)
    assert checks[0] == min(max(min_steps, warmup, 1), cap)
    assert np.array_equal(starts, checks - checks // 4)
    assert np.all(checks[1:-1] <= np.ceil(checks[:-2] * 4 / 3) + 1)  # a third more each time, no big jumps


@pytest.mark.parametrize("kwargs", [dict(rtol=0), dict(rtol=1), dict(rtol=-0.1), dict(min_steps=-1),
                                    dict(atol=0), dict(atol=2.0)])
def test_rule_refuses_bad_values(kwargs):
    with pytest.raises(ValueError):
        StopRule(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(rtol="0.01"), dict(min_steps=1.5), dict(rtol=None)])
def test_rule_refuses_bad_types(kwargs):
    with pytest.raises((InputTypeError, ValueError)):
        StopRule(**kwargs)


def test_relative_fall():
    assert relative_fall(2.0, 1.0) == 1.0 and relative_fall(1.0, 2.0) == -0.5
    assert np.isnan(relative_fall(np.nan, 1.0)) and np.isnan(relative_fall(1.0, 0.0))
    rule = StopRule(0.01)
    assert rule.passes(1.005, 1.0, 10.0) and not rule.passes(1.02, 1.0, 10.0)
    assert rule.passes(2e-5, 1e-5, 1.0)  # below atol * initial: an interpolating net's loss falling to zero
    assert not rule.passes(np.nan, 1.0, 1.0) and not rule.passes(1.0, np.inf, 1.0)


def _first_passing_check(res, rule, cap):
    """Recomputed from the histories: the first check step at which the members' mean train loss passes."""
    mean = res.train_history.mean(axis=0)
    at = {int(s): j for j, s in enumerate(res.steps)}
    for c, q in zip(*check_steps(rule, cap)):
        if rule.passes(mean[at[int(q)]], mean[at[int(c)]], mean[0]):
            return int(c), relative_fall(mean[at[int(q)]], mean[at[int(c)]])
    return None, relative_fall(mean[at[int(q)]], mean[at[int(c)]])


@pytest.mark.parametrize("width,optimizer", [(2, "gd"), (3, "momentum"), (64, "gd")])
def test_stops_at_the_first_passing_check(width, optimizer):
    x, y, xt, yt = _data()
    rule, cap = StopRule(0.01, 30), 4000
    res = train_ensemble(MLPSpec(width=width), x, y, xt, yt, n_members=5, steps=cap, optimizer=optimizer,
                         stop=rule, progress=False)
    first, drift = _first_passing_check(res, rule, cap)
    rec = res.stopping
    assert rec.cap == cap and rec.rule == rule
    assert rec.converged == (first is not None)
    assert rec.steps == (first if first is not None else cap)
    assert np.all(res.stopped_at == rec.steps)
    assert rec.drift == pytest.approx(drift, rel=1e-12)
    assert rec.dead_share == pytest.approx(1.0 - res.alive_history[:, -1, -1].mean())
    assert rec.as_dict()["converged"] == rec.converged and json.dumps(rec.as_dict())
    if rec.converged and rec.steps < cap:  # the histories keep the stopped values
        assert np.all(res.train_history[:, -1] == res.train_history[:, list(res.steps).index(rec.steps)])


@pytest.mark.parametrize("optimizer,warmup", [("gd", 0), ("momentum", 50)])
def test_first_pass_on_a_run_past_the_rule_is_where_the_rule_stops(optimizer, warmup):
    """A run trained past the rule (one that never passes) records every check; first_pass on its history finds
    the step where a run under the rule stopped, with the same drift."""
    x, y, xt, yt = _data()
    rule, cap = StopRule(0.05, 30), 3000
    kw = dict(n_members=4, optimizer=optimizer, warmup=warmup, progress=False)
    ruled = train_ensemble(MLPSpec(width=2), x, y, xt, yt, steps=cap, stop=rule, **kw)
    assert ruled.stopping.converged and ruled.stopping.steps < cap  # a real stop, not the cap
    past = train_ensemble(MLPSpec(width=2), x, y, xt, yt, steps=cap, stop=StopRule(1e-12, 30, 1e-300), **kw)
    step, drift = first_pass(StopRule(0.05, max(30, warmup)), past.steps, past.train_history.mean(axis=0), cap,
                             warmup)
    assert step == ruled.stopping.steps and drift == pytest.approx(ruled.stopping.drift, rel=1e-12)
    half = past.steps <= step - 1  # recorded only up to before the pass: none found yet
    assert first_pass(rule, past.steps[half], past.train_history.mean(axis=0)[half], cap, warmup) is None
    with pytest.raises(ValueError, match="check step"):  # log-spaced records alone miss the check steps
        plain = train_ensemble(MLPSpec(width=2), x, y, xt, yt, steps=cap, **kw)
        first_pass(rule, plain.steps, plain.train_history.mean(axis=0), cap, warmup)
    with pytest.raises(ValueError, match="increasing"):
        first_pass(rule, [1, 2], [1.0, 0.5], cap)


def test_narrow_net_converges_and_a_strict_rule_does_not():
    x, y, xt, yt = _data()
    loose = train_ensemble(MLPSpec(width=2), x, y, xt, yt, n_members=4, steps=3000, stop=StopRule(0.05, 10),
                           progress=False)
    strict = train_ensemble(MLPSpec(width=2), x, y, xt, yt, n_members=4, steps=300,
                            stop=StopRule(1e-9, 10, atol=1e-12), progress=False)
    assert loose.stopping.converged and loose.stopping.steps < 3000
    assert not strict.stopping.converged and strict.stopping.steps == 300
    assert abs(strict.stopping.drift) >= 1e-9


def test_rule_waits_for_min_steps_and_warmup():
    x, y, xt, yt = _data()
    res = train_ensemble(MLPSpec(width=2), x, y, xt, yt, n_members=3, steps=2000, warmup=400,
                         stop=StopRule(0.5, 100), progress=False)
    assert res.stopping.steps >= 400 and res.stopping.rule.min_steps == 400


def test_same_trajectory_with_and_without_the_rule():
    x, y, xt, yt = _data()
    plain = train_ensemble(MLPSpec(width=8), x, y, xt, yt, n_members=3, steps=200, progress=False)
    ruled = train_ensemble(MLPSpec(width=8), x, y, xt, yt, n_members=3, steps=200, progress=False,
                           stop=StopRule(1e-9, 10, atol=1e-12))
    assert plain.stopping is None and ruled.stopping.steps == 200
    np.testing.assert_allclose(ruled.test_losses, plain.test_losses, rtol=1e-6)
    np.testing.assert_allclose(ruled.point_losses, plain.point_losses, rtol=1e-6)


def test_bad_stop_arguments():
    x, y, xt, yt = _data()
    with pytest.raises(InputTypeError, match="stop"):
        train_ensemble(MLPSpec(width=4), x, y, xt, yt, n_members=2, steps=10, stop=0.01, progress=False)
    with pytest.raises(ValueError, match="steps"):
        train_ensemble(MLPSpec(width=4), x, y, xt, yt, n_members=2, steps=0, stop=StopRule(), progress=False)


def test_one_device_means_no_mesh():
    assert member_mesh() is None  # the test process sees one CPU device
    assert padded_count(7, None) == 7


_SHARDED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jax
    import ntkuq
    ntkuq.enable_float64()
    from ntkuq import MLPSpec
    from ntkuq.finite import StopRule, member_mesh, padded_count, train_ensemble
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
    xt, yt = rng.normal(size=(12, 5)), rng.normal(size=(12, 2))
    out = {"devices": len(jax.devices()), "padded": padded_count(6, member_mesh())}
    for opt, chunk in (("gd", None), ("momentum", 5)):
        r = train_ensemble(MLPSpec(width=16), x, y, xt, yt, n_members=6, steps=300, optimizer=opt, chunk=chunk,
                           stop=StopRule(0.01, 20), keep_outputs=True, progress=False, dtype=np.float64)
        out[opt] = dict(test=r.test_losses.tolist(), point=r.point_losses.tolist(), outputs=r.outputs.tolist(),
                        train=r.train_history.tolist(), stop=r.stopping.as_dict())
    xw, xtw = rng.normal(size=(20, 60)), rng.normal(size=(12, 60))  # more features than points: in the span
    r = train_ensemble(MLPSpec(width=8), xw, y[:20], xtw, yt, n_members=5, steps=50, keep_outputs=True,
                       progress=False, dtype=np.float64)
    out["span"] = dict(test=r.test_losses.tolist(), point=r.point_losses.tolist(), outputs=r.outputs.tolist(),
                       train=r.train_history.tolist())
    r = train_ensemble(MLPSpec(width=16), x, y, xt, yt, n_members=6, steps=300, progress=False)  # float32
    out["f32"] = dict(test=r.test_losses.tolist())
    from ntkuq.errors import TrainingInterrupted
    from ntkuq.finite import Checkpoint
    kw = dict(n_members=6, steps=300, optimizer="momentum", chunk=5, stop=StopRule(0.01, 20), progress=False,
              dtype=np.float64)
    whole = train_ensemble(MLPSpec(width=16), x, y, xt, yt, **kw)
    calls = 0
    while True:  # interrupted after every 60 steps, resumed on the same devices
        calls += 1
        try:
            r = train_ensemble(MLPSpec(width=16), x, y, xt, yt, **kw,
                               checkpoint=Checkpoint(sys.argv[1], segment=60, deadline=1.0))
            break
        except TrainingInterrupted:
            pass
    out["resumed"] = dict(calls=calls, same=all(np.array_equal(getattr(whole, f), getattr(r, f)) for f in
                                                ("test_losses", "train_history", "point_losses", "stopped_at")))
    import os, warnings
    from ntkuq.errors import CheckpointWarning
    warnings.simplefilter("error", CheckpointWarning)  # a snapshot set aside would start the run over
    handoff = Checkpoint(sys.argv[2], segment=60, deadline=1.0)
    if not os.path.exists(sys.argv[2]):  # the first process starts the run and is interrupted after 60 steps ...
        try:
            train_ensemble(MLPSpec(width=16), x, y, xt, yt, **kw, checkpoint=handoff)
        except TrainingInterrupted:
            pass
    else:  # ... the second, on another number of devices, continues it
        while True:
            try:
                r = train_ensemble(MLPSpec(width=16), x, y, xt, yt, **kw, checkpoint=handoff)
                break
            except TrainingInterrupted:
                pass
        out["handoff"] = dict(test=r.test_losses.tolist(), train=r.train_history.tolist(),
                              steps=np.asarray(r.stopped_at).tolist())
    out["whole"] = dict(test=whole.test_losses.tolist(), train=whole.train_history.tolist(),
                        steps=np.asarray(whole.stopped_at).tolist())
    json.dump(out, sys.stdout)
""")


def _run_sharded(devices: int, folder: Path) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": str(REPO_ROOT / "lib"), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", _SHARDED, str(folder / f"run{devices}.npz"),
                           str(folder / "handoff.npz")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_members_sharded_over_four_devices_match_one(tmp_path):
    one, four = _run_sharded(1, tmp_path), _run_sharded(4, tmp_path)
    assert one["devices"] == 1 and four["devices"] == 4
    assert one["padded"] == 6 and four["padded"] == 8  # 6 members on 4 devices: 2 copies, dropped
    # float64: the same networks up to rounding (in float32, rounding differences of the sharded matmuls grow over
    # 300 steps to 1e-4 of a member's loss on some CPUs, so the float32 run is held to that)
    for opt in ("gd", "momentum"):  # chunks of 6 (padded to 8) and of 5 + 1 (padded to 8 and 4)
        for field in ("test", "point", "outputs", "train"):
            np.testing.assert_allclose(np.array(four[opt][field]), np.array(one[opt][field]), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{opt} {field}")
        assert four[opt]["stop"]["steps"] == one[opt]["stop"]["steps"]
        assert four[opt]["stop"]["converged"] == one[opt]["stop"]["converged"]
    for field in ("test", "point", "outputs", "train"):
        np.testing.assert_allclose(np.array(four["span"][field]), np.array(one["span"][field]), rtol=1e-9,
                                   atol=1e-12)
    np.testing.assert_allclose(np.array(four["f32"]["test"]), np.array(one["f32"]["test"]), rtol=1e-3)
    for run in (one, four):  # a run resumed from snapshots gives the uninterrupted numbers, sharded or not
        assert run["resumed"]["calls"] > 3 and run["resumed"]["same"]
    # a run begun on one device and continued on four (to spread a study's last long point over the cores)
    assert "handoff" not in one and four["handoff"]["steps"] == one["whole"]["steps"]
    for field in ("test", "train"):
        np.testing.assert_allclose(np.array(four["handoff"][field]), np.array(one["whole"][field]), rtol=1e-9,
                                   atol=1e-12, err_msg=f"handoff {field}")


def test_study_with_the_rule_records_it_and_resumes(tmp_path):
    from ntkuq.data import TaskData
    from ntkuq.study import ResultStore, finite_width_study
    rng = np.random.default_rng(4)
    data = TaskData("synthetic", rng.normal(size=(60, 6)), rng.normal(size=(60, 2)), rng.normal(size=(15, 6)),
                    rng.normal(size=(15, 2)), {"kind": "test"})
    spec = MLPSpec(depth=2, C_b=0.1, width=4)
    store = ResultStore(tmp_path)
    rows = finite_width_study(data, spec, [20, 40], members=3, steps=50, optimizer="gd", converge=0.02,
                              max_steps=3000, store=store)
    ens = [r for r in rows if r["method"] == "ensemble"]
    at_t = [r for r in rows if r["method"] == "ntk" and r["steps"] not in (None, -1)]
    assert len(at_t) == len(ens) == 2
    for e, inf in zip(ens, at_t):
        rec = e["params"]["stopping"]
        assert rec["cap"] == 3000 and rec["min_steps"] == 50 and rec["rtol"] == 0.02
        assert e["steps"] == rec["steps"] and 50 <= rec["steps"] <= 3000
        assert rec["converged"] == (rec["steps"] < 3000 or abs(rec["drift"]) < 0.02)
        assert inf["steps"] == e["steps"]  # the infinite-width ensemble after the steps the members took
        assert e["params"]["drift_from"] < e["steps"]  # the drift before the stop, not over forward-filled values
    again = finite_width_study(data, spec, [20, 40], members=3, steps=50, optimizer="gd", converge=0.02,
                               max_steps=3000, store=store)
    assert [r["mu"] for r in again] == [r["mu"] for r in rows]
    plain = finite_width_study(data, spec, [20], members=3, steps=50, optimizer="gd", store=store)
    assert plain[0]["steps"] == 50 and "stopping" not in plain[0]["params"]  # another key: the rule is opt-in
    with pytest.raises(ValueError, match="max_steps"):
        finite_width_study(data, spec, [20], members=3, steps=50, max_steps=100)
    with pytest.raises(ValueError, match="converge"):
        finite_width_study(data, spec, [20], members=3, steps=50, converge=1.5)


def test_width_sweep_with_the_rule_records_each_width():
    from ntkuq.finite import default_eta, width_sweep
    from ntkuq.infinite import loss_stats, ntk_prediction, train_test_kernels
    x, y, xt, yt = _data(n=24, n_test=8, n_in=3, k=1, seed=2)
    spec = MLPSpec.critical("relu", depth=2)
    eta = default_eta(spec, x, 0.5, "momentum", 0.9)
    inf = loss_stats(ntk_prediction(train_test_kernels(spec, x, xt), y), yt)
    sw = width_sweep(spec, x, y, xt, yt, [4, 32], members=4, steps=2000, eta=eta, infinite=inf, momentum=0.9,
                     n_boot=20, stop=StopRule(0.01, 20))
    for n in (4, 32):
        rec, split = sw.stopping[n], sw.splits[n]
        assert 20 <= rec.steps <= 2000 and rec.cap == 2000
        assert split.var_diag + split.var_offdiag == pytest.approx(sw.stats[n].sigma ** 2, rel=1e-5)  # float32 losses
    assert sw.history[4].shape[1] == sw.history_steps.size


def test_describe_stop_names_the_test_that_ended_training():
    from ntkuq.finite import describe_stop
    base = {"rtol": 0.01, "atol": 1e-4, "cap": 200_000}
    assert describe_stop(None) == ""
    assert describe_stop({**base, "converged": True, "drift": 0.004}) == \
        "converged: the loss moved < 1% over the last quarter"
    assert describe_stop({**base, "converged": True, "drift": 0.6}) == \
        "converged: the loss fell below 0.0001 of its start"
    assert describe_stop({**base, "converged": True, "drift": None}) == \
        "converged: the loss fell below 0.0001 of its start"
    assert describe_stop({**base, "converged": False, "drift": 0.3}) == \
        "NOT converged: stopped at the cap of 200,000 steps"
    with pytest.raises(ValueError, match="^record"):
        describe_stop({"converged": True})

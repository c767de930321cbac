"""Bad input refused clearly at every entry point: the right exception type and a message naming the parameter.

One parametrized case per (entry point, parameter, bad value), so that one failure does not hide the rest.
Each case is (id, call, parameter name); the call gets a small shared context `c` (data, kernels, spec).
"""
from types import SimpleNamespace

import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.errors import InputTypeError

NAN = float("nan")
INF = float("inf")


@pytest.fixture(scope="module")
def c():
    from ntkuq.infinite import ntk_prediction, train_test_kernels

    rng = np.random.default_rng(0)
    x, xt = rng.standard_normal((8, 3)), rng.standard_normal((5, 3))
    y, yt = rng.standard_normal((8, 1)), rng.standard_normal((5, 1))
    spec = MLPSpec.critical("relu", depth=2)
    kern = train_test_kernels(spec, x, xt)
    pred = ntk_prediction(kern, y)
    from ntkuq.data import TaskData

    data = TaskData("toy", rng.standard_normal((12, 3)), rng.standard_normal((12, 1)), xt, yt, {})
    return SimpleNamespace(x=x, xt=xt, y=y, yt=yt, spec=spec, fspec=spec.with_width(8), kern=kern, pred=pred,
                           data=data)


def _spec(**kw):
    return lambda c: MLPSpec(**kw)


def _kernels(**kw):
    def call(c):
        from ntkuq.infinite import kernels

        args = dict(x1=c.x)
        args.update(kw)
        return kernels(c.spec, **args)
    return call


def _ntk(**kw):
    def call(c):
        from ntkuq.infinite import ntk_prediction

        args = dict(y_train=c.y)
        args.update(kw)
        return ntk_prediction(c.kern, **args)
    return call


def _nngp(**kw):
    def call(c):
        from ntkuq.infinite import nngp_posterior

        args = dict(y_train=c.y)
        args.update(kw)
        return nngp_posterior(c.kern, **args)
    return call


def _predict(**kw):
    def call(c):
        from ntkuq.infinite import predict

        args = dict(x_train=c.x, y_train=c.y, x_test=c.xt)
        args.update(kw)
        return predict(c.spec, **args)
    return call


def _loss_stats(**kw):
    def call(c):
        from ntkuq.infinite import loss_stats

        args = dict(y_test=c.yt)
        args.update(kw)
        return loss_stats(c.pred, **args)
    return call


def _loss_distribution(**kw):
    def call(c):
        from ntkuq.infinite import loss_distribution

        args = dict(y_test=c.yt)
        args.update(kw)
        return loss_distribution(c.pred, **args)
    return call


def _quantile(q):
    def call(c):
        from ntkuq.infinite import loss_distribution

        return loss_distribution(c.pred, c.yt).quantile(q)
    return call


def _samples(**kw):
    def call(c):
        from ntkuq.infinite import sample_test_losses

        args = dict(y_test=c.yt, n_samples=3)
        args.update(kw)
        return sample_test_losses(c.pred, **args)
    return call


def _sweep(**kw):
    def call(c):
        from ntkuq.infinite import nested_sweep

        args = dict(x_train=c.x, y_train=c.y, x_test=c.xt, y_test=c.yt, sizes=[4, 8])
        args.update(kw)
        return nested_sweep(c.spec, **args)
    return call


def _power_law(**kw):
    def call(c):
        from ntkuq.study import fit_power_law

        args = dict(n=[10, 20, 40], y=[1.0, 0.5, 0.25])
        args.update(kw)
        return fit_power_law(**args)
    return call


def _plateau(**kw):
    def call(c):
        from ntkuq.study import plateau

        args = dict(n=[10, 20, 40], eps=[0.1, 0.1, 0.1])
        args.update(kw)
        return plateau(**args)
    return call


def _boot_curves(**kw):
    def call(c):
        from ntkuq.study import bootstrap_curves

        args = dict(samples=[np.ones(3), np.ones(3)], stat=np.mean)
        args.update(kw)
        return bootstrap_curves(**args)
    return call


def _train(**kw):
    def call(c):
        from ntkuq.finite import train_ensemble

        args = dict(x_train=c.x, y_train=c.y, x_test=c.xt, y_test=c.yt, n_members=2, steps=2, progress=False)
        spec = kw.pop("spec", c.fspec)
        args.update(kw)
        return train_ensemble(spec, **args)
    return call


def _default_eta(**kw):
    def call(c):
        from ntkuq.finite import default_eta

        args = dict(x_train=c.x)
        args.update(kw)
        return default_eta(c.spec, **args)
    return call


def _boot_stats(**kw):
    def call(c):
        from ntkuq.finite import bootstrap_stats

        args = dict(losses=[1.0, 2.0, 3.0])
        args.update(kw)
        return bootstrap_stats(**args)
    return call


def _converged(**kw):
    def call(c):
        from ntkuq.finite import default_eta
        from ntkuq.infinite import converged_steps

        args = dict(y_train=c.y, y_test=c.yt, eta=default_eta(c.spec, c.x, 0.5, "momentum", 0.9))
        args.update(kw)
        return converged_steps(c.kern, **args)
    return call


def _deviation(**kw):
    def call(c):
        from ntkuq.infinite import deviation_curve

        args = dict(y_train=c.y, y_test=c.yt, steps=[1, 2], eta=0.1)
        args.update(kw)
        return deviation_curve(c.kern, **args)
    return call


def _width_sweep(**kw):
    def call(c):
        from ntkuq.finite import width_sweep
        from ntkuq.infinite import loss_stats

        args = dict(x_train=c.x, y_train=c.y, x_test=c.xt, y_test=c.yt, widths=[4, 8], members=2, steps=1,
                    eta=0.1, infinite=loss_stats(c.pred, c.yt))
        args.update(kw)
        return width_sweep(c.spec, **args)
    return call


def _fit_widths(**kw):
    def call(c):
        from ntkuq.finite import fit_widths, width_sweep
        from ntkuq.infinite import loss_stats

        sw = width_sweep(c.spec, c.x, c.y, c.xt, c.yt, [4, 8], members=3, steps=1, eta=0.01, n_boot=5,
                         infinite=loss_stats(c.pred, c.yt))
        args = dict(stat="mu")
        args.update(kw)
        return fit_widths(sw, **args)
    return call


def _inf_study(**kw):
    def call(c):
        from ntkuq.study import infinite_width_study

        args = dict(sizes=[4, 8])
        args.update(kw)
        return infinite_width_study(c.data, c.spec, **args)
    return call


def _fin_study(**kw):
    def call(c):
        from ntkuq.study import finite_width_study

        args = dict(sizes=[4], members=2, steps=1)
        args.update(kw)
        return finite_width_study(c.data, c.fspec, **args)
    return call


def _residual(**kw):
    def call(c):
        from ntkuq.infinite import residual_factor

        args = dict(a=[0.1, 0.5], steps=3)
        args.update(kw)
        return residual_factor(**args)
    return call


def _gain(**kw):
    def call(c):
        from ntkuq.infinite import gain

        args = dict(lam=[1.0, 2.0], eta=0.1, n_train=4, steps=3)
        args.update(kw)
        return gain(**args)
    return call


def _small_a(**kw):
    def call(c):
        from ntkuq.infinite import small_a_limit

        args = dict(steps=3)
        args.update(kw)
        return small_a_limit(**args)
    return call


def _limit(**kw):
    def call(c):
        from ntkuq.infinite import stability_limit

        return stability_limit(**kw)
    return call


def _tasks_load(**kw):
    def call(c):
        from ntkuq.data import load

        args = dict(task="calorimeter", n_pool=10, n_test=5)
        args.update(kw)
        return load(**args)
    return call


def _subset(**kw):
    def call(c):
        return c.data.subset(**{"n": 4, **kw})
    return call


def _nested_subsets(**kw):
    def call(c):
        from ntkuq.data import nested_subsets

        args = dict(n_pool=10, sizes=[2, 4])
        args.update(kw)
        return nested_subsets(**args)
    return call


def _subset_sizes(**kw):
    def call(c):
        from ntkuq.data import subset_sizes

        args = dict(n_min=1, n_max=10, count=3)
        args.update(kw)
        return subset_sizes(**args)
    return call


def _load_task(**kw):
    def call(c):
        from ntkuq.data import load_task

        args = dict(name="mnist")
        args.update(kw)
        return load_task(**args)
    return call


def _calo_config(**kw):
    def call(c):
        from ntkuq.data.calorimeter import CalorimeterConfig

        return CalorimeterConfig(**kw)
    return call


def _section(**kw):
    def call(c):
        from ntkuq.data.calorimeter import CalorimeterConfig

        return CalorimeterConfig().ecal.replace(**kw)
    return call


def _simulate(**kw):
    def call(c):
        from ntkuq.data.calorimeter import CalorimeterConfig, simulate

        args = dict(config=CalorimeterConfig(), n_showers=2)
        args.update(kw)
        return simulate(**args)
    return call


def _calo_task(**kw):
    def call(c):
        from ntkuq.data.calorimeter import calorimeter_task

        args = dict(n_train_pool=4, n_test=2, use_cache=False)
        args.update(kw)
        return calorimeter_task(**args)
    return call


def _estimate(**kw):
    def call(c):
        from ntkuq.estimate import estimate

        args = dict(x_train=c.x, y_train=c.y, x_test=c.xt, y_test=c.yt)
        args.update(kw)
        return estimate(**args)
    return call


def _ens_options(**kw):
    def call(c):
        from ntkuq.estimate import EnsembleOptions

        return EnsembleOptions(**kw)
    return call


BAD_ARRAY = {"1-D": np.ones(8), "nan": np.full((8, 3), NAN), "inf": np.full((8, 3), INF), "empty": np.ones((0, 3)),
             "strings": [["a", "b", "c"]] * 8, "complex": np.ones((8, 3), complex), "none": None, "scalar": 3.0}

CASES = [
    # MLPSpec (spec.py)
    ("spec-depth-0", _spec(depth=0), "depth"), ("spec-depth-bool", _spec(depth=True), "depth"),
    ("spec-depth-str", _spec(depth="3"), "depth"), ("spec-depth-float", _spec(depth=2.5), "depth"),
    ("spec-activation-unknown", _spec(activation="sigmoid"), "activation"),
    ("spec-activation-int", _spec(activation=3), "activation"),
    ("spec-C_W-0", _spec(C_W=0.0), "C_W"), ("spec-C_W-nan", _spec(C_W=NAN), "C_W"),
    ("spec-C_W-str", _spec(C_W="2"), "C_W"), ("spec-C_b-neg", _spec(C_b=-1.0), "C_b"),
    ("spec-lambda_b-neg", _spec(lambda_b=-1.0), "lambda_b"), ("spec-lambda_W-inf", _spec(lambda_W=INF), "lambda_W"),
    ("spec-width-0", _spec(width=0), "width"), ("spec-width-bool", _spec(width=True), "width"),
    ("spec-width-float", _spec(width=8.0), "width"),
    ("critical-activation", lambda c: MLPSpec.critical("gelu"), "activation"),
    ("critical-lambda_ratio", lambda c: MLPSpec.critical("relu", lambda_ratio="x"), "lambda_ratio"),
    ("critical-depth", lambda c: MLPSpec.critical("relu", depth=0), "depth"),
    # kernels.kernels
    *[(f"kernels-x1-{k}", _kernels(x1=v), "x1") for k, v in BAD_ARRAY.items()],
    ("kernels-x2-features", _kernels(x2=np.ones((4, 2))), "x2"),
    ("kernels-x2-nan", _kernels(x2=np.full((4, 3), NAN)), "x2"),
    ("kernels-block_size-0", _kernels(block_size=0), "block_size"),
    ("kernels-block_size-bool", _kernels(block_size=True), "block_size"),
    ("kernels-n_quad-0", _kernels(n_quad=0), "n_quad"),
    ("kernels-spec", lambda c: __import__("ntkuq.infinite").infinite.kernels("relu", c.x), "spec"),
    # dynamics.ntk_prediction / nngp_posterior / predict
    ("ntk-y_train-rows", _ntk(y_train=np.ones((3, 1))), "y_train"),
    ("ntk-y_train-nan", _ntk(y_train=np.full((8, 1), NAN)), "y_train"),
    ("ntk-y_train-1d", _ntk(y_train=np.ones(8)), "y_train"),
    ("ntk-time-neg", _ntk(time=-1.0), "time"), ("ntk-time-nan", _ntk(time=NAN), "time"),
    ("ntk-time-str", _ntk(time="1"), "time"),
    ("ntk-steps-neg", _ntk(steps=-1), "steps"), ("ntk-steps-bool", _ntk(steps=True), "steps"),
    ("ntk-steps-float", _ntk(steps=2.5), "steps"),
    ("ntk-eta-0", _ntk(steps=3, eta=0.0), "eta"), ("ntk-eta-neg", _ntk(steps=3, eta=-1.0), "eta"),
    ("ntk-eta-inf", _ntk(steps=3, eta=INF), "eta"), ("ntk-eta-unstable", _ntk(steps=3, eta=1e6), "eta"),
    ("ntk-diag_reg-neg", _ntk(diag_reg=-1.0), "diag_reg"), ("ntk-diag_reg-nan", _ntk(diag_reg=NAN), "diag_reg"),
    ("ntk-optimizer", _ntk(steps=3, eta=0.1, optimizer="adamw"), "optimizer"),
    ("ntk-momentum-1", _ntk(steps=3, eta=0.1, optimizer="momentum", momentum=1.0), "momentum"),
    ("ntk-momentum-neg", _ntk(steps=3, eta=0.1, optimizer="momentum", momentum=-0.1), "momentum"),
    ("ntk-momentum-str", _ntk(steps=3, eta=0.1, optimizer="momentum", momentum="0.9"), "momentum"),
    ("ntk-time-and-steps", _ntk(time=1.0, steps=3), "time"),
    ("ntk-allow_unstable", _ntk(allow_unstable="yes"), "allow_unstable"),
    ("ntk-kern", lambda c: __import__("ntkuq.infinite").infinite.ntk_prediction("kern", c.y), "kern"),
    ("nngp-y_train-rows", _nngp(y_train=np.ones((3, 1))), "y_train"),
    ("nngp-diag_reg-neg", _nngp(diag_reg=-1.0), "diag_reg"),
    ("predict-method", _predict(method="gp"), "method"),
    ("predict-x_train-nan", _predict(x_train=np.full((8, 3), NAN)), "x_train"),
    ("predict-x_test-features", _predict(x_test=np.ones((2, 4))), "x_test"),
    ("predict-y_train-rows", _predict(y_train=np.ones((2, 1))), "y_train"),
    # lossstats
    ("loss_stats-y_test-rows", _loss_stats(y_test=np.ones((2, 1))), "y_test"),
    ("loss_stats-y_test-cols", _loss_stats(y_test=np.ones((5, 2))), "y_test"),
    ("loss_stats-y_test-nan", _loss_stats(y_test=np.full((5, 1), NAN)), "y_test"),
    ("loss_stats-block_size-0", _loss_stats(block_size=0), "block_size"),
    ("loss_stats-pred", lambda c: __import__("ntkuq.infinite").infinite.loss_stats("p", c.yt), "pred"),
    ("loss_distribution-y_test", _loss_distribution(y_test=np.ones((2, 1))), "y_test"),
    ("loss_distribution-rtol-neg", _loss_distribution(rtol=-1.0), "rtol"),
    ("loss_distribution-rtol-nan", _loss_distribution(rtol=NAN), "rtol"),
    ("quantile-q-0", _quantile(0.0), "q"), ("quantile-q-1", _quantile(1.0), "q"),
    ("quantile-q-nan", _quantile(NAN), "q"),
    ("quantile-q-str", _quantile("0.5"), "q"),
    ("samples-n_samples-0", _samples(n_samples=0), "n_samples"), ("samples-seed-neg", _samples(seed=-1), "seed"),
    # sweep.nested_sweep
    ("sweep-x_train-1d", _sweep(x_train=np.ones(8)), "x_train"),
    ("sweep-y_train-rows", _sweep(y_train=np.ones((3, 1))), "y_train"),
    ("sweep-x_test-features", _sweep(x_test=np.ones((5, 2))), "x_test"),
    ("sweep-y_test-rows", _sweep(y_test=np.ones((2, 1))), "y_test"),
    ("sweep-sizes-empty", _sweep(sizes=[]), "sizes"), ("sweep-sizes-0", _sweep(sizes=[0, 4]), "sizes"),
    ("sweep-sizes-decreasing", _sweep(sizes=[8, 4]), "sizes"),
    ("sweep-sizes-too-large", _sweep(sizes=[4, 9]), "sizes"),
    ("sweep-sizes-str", _sweep(sizes="48"), "sizes"), ("sweep-sizes-float", _sweep(sizes=[4.5]), "sizes"),
    ("sweep-methods-unknown", _sweep(methods=["gp"]), "methods"),
    ("sweep-methods-empty", _sweep(methods=[]), "methods"),
    ("sweep-methods-str", _sweep(methods="ntk"), "methods"),
    ("sweep-diag_reg-neg", _sweep(diag_reg=-1.0), "diag_reg"),
    ("sweep-block_size-0", _sweep(block_size=0), "block_size"),
    # scaling fits
    ("power_law-n-neg", _power_law(n=[-1, 2, 3]), "n"), ("power_law-y-nan", _power_law(y=[1.0, NAN, 1.0]), "y"),
    ("power_law-y-shape", _power_law(y=[1.0, 2.0]), "y"), ("power_law-n-one", _power_law(n=[1], y=[1.0]), "y"),
    ("power_law-resamples", _power_law(resamples=np.full((3, 3), NAN)), "resamples"),
    ("plateau-decades-0", _plateau(decades=0.0), "decades"), ("plateau-eps-neg", _plateau(eps=[-1, 1, 1]), "eps"),
    ("boot_curves-n_boot-0", _boot_curves(n_boot=0), "n_boot"),
    ("boot_curves-samples", _boot_curves(samples=[np.ones(1)]), "samples"),
    ("boot_curves-seed", _boot_curves(seed=-1), "seed"),
    # ensembles.train_ensemble / default_eta / bootstrap_stats
    ("train-spec-infinite", _train(spec=MLPSpec()), "width"),
    ("train-n_members-0", _train(n_members=0), "n_members"),
    ("train-n_members-bool", _train(n_members=True), "n_members"),
    ("train-steps-neg", _train(steps=-1), "steps"), ("train-steps-float", _train(steps=2.5), "steps"),
    ("train-eta-0", _train(eta=0.0), "eta"), ("train-eta-unstable", _train(eta=1e6), "eta"),
    ("train-eta-str", _train(eta="0.1"), "eta"),
    ("train-optimizer", _train(optimizer="rmsprop"), "optimizer"),
    ("train-momentum-1", _train(optimizer="momentum", momentum=1.0), "momentum"),
    ("train-momentum-gd", _train(momentum=0.9), "momentum"),
    ("train-batch_size-0", _train(optimizer="sgd", batch_size=0), "batch_size"),
    ("train-batch_size-large", _train(optimizer="sgd", batch_size=100), "batch_size"),
    ("train-tol-0", _train(tol=0.0), "tol"), ("train-n_record-1", _train(n_record=1), "n_record"),
    ("train-chunk-0", _train(chunk=0), "chunk"), ("train-dtype", _train(dtype="int32"), "dtype"),
    ("train-seed-neg", _train(seed=-1), "seed"),
    ("train-x_train-nan", _train(x_train=np.full((8, 3), NAN)), "x_train"),
    ("train-y_test-cols", _train(y_test=np.ones((5, 2))), "y_test"),
    ("default_eta-fraction-0", _default_eta(fraction=0.0), "fraction"),
    ("default_eta-fraction-1", _default_eta(fraction=1.0), "fraction"),
    ("default_eta-optimizer", _default_eta(optimizer="adamw"), "optimizer"),
    ("default_eta-x_train", _default_eta(x_train=np.ones(3)), "x_train"),
    ("bootstrap-losses-one", _boot_stats(losses=[1.0]), "losses"),
    ("bootstrap-losses-nan", _boot_stats(losses=[1.0, NAN]), "losses"),
    ("bootstrap-losses-str", _boot_stats(losses=["a", "b"]), "losses"),
    ("bootstrap-n_boot-1", _boot_stats(n_boot=1), "n_boot"), ("bootstrap-seed-neg", _boot_stats(seed=-1), "seed"),
    # convergence
    ("converged-eta-0", _converged(eta=0.0), "eta"), ("converged-eta-unstable", _converged(eta=1e6), "eta"),
    ("converged-tol-0", _converged(tol=0.0), "tol"), ("converged-tol-1", _converged(tol=1.0), "tol"),
    ("converged-tol-nan", _converged(tol=NAN), "tol"),
    ("converged-max_steps-0", _converged(max_steps=0), "max_steps"),
    ("converged-ratio-1", _converged(ratio=1.0), "ratio"),
    ("converged-optimizer", _converged(optimizer="adam"), "optimizer"),
    ("converged-momentum", _converged(momentum=1.0), "momentum"),
    ("converged-y_train", _converged(y_train=np.ones((2, 1))), "y_train"),
    ("converged-y_test", _converged(y_test=np.full((5, 1), NAN)), "y_test"),
    ("converged-diag_reg", _converged(diag_reg=-1.0), "diag_reg"),
    ("converged-block_size", _converged(block_size=0), "block_size"),
    ("deviation-steps-neg", _deviation(steps=[-1]), "steps"),
    ("deviation-steps-float", _deviation(steps=[1.5]), "steps"),
    ("deviation-steps-empty", _deviation(steps=[]), "steps"),
    ("deviation-eta-0", _deviation(eta=0.0), "eta"), ("deviation-eta-unstable", _deviation(eta=1e6), "eta"),
    ("deviation-diag_reg", _deviation(diag_reg=-1.0), "diag_reg"),
    # widths
    ("width_sweep-widths-empty", _width_sweep(widths=[]), "widths"),
    ("width_sweep-widths-0", _width_sweep(widths=[0, 4]), "widths"),
    ("width_sweep-widths-one", _width_sweep(widths=[4]), "widths"),
    ("width_sweep-widths-decreasing", _width_sweep(widths=[8, 4]), "widths"),
    ("width_sweep-members-1", _width_sweep(members=1), "members"),
    ("width_sweep-steps-neg", _width_sweep(steps=-1), "steps"),
    ("width_sweep-eta-0", _width_sweep(eta=0.0), "eta"),
    ("width_sweep-n_boot-0", _width_sweep(n_boot=0), "n_boot"),
    ("width_sweep-seed-neg", _width_sweep(seed=-1), "seed"),
    ("width_sweep-infinite", _width_sweep(infinite=None), "infinite"),
    ("width_sweep-y_test", _width_sweep(y_test=np.ones((2, 1))), "y_test"),
    ("fit_widths-stat", _fit_widths(stat="median"), "stat"),
    ("fit_widths-min_width", _fit_widths(min_width=100), "min_width"),
    ("fit_widths-min_width-str", _fit_widths(min_width="4"), "min_width"),
    # study
    ("inf_study-sizes-empty", _inf_study(sizes=[]), "sizes"), ("inf_study-sizes-0", _inf_study(sizes=[0]), "sizes"),
    ("inf_study-sizes-pool", _inf_study(sizes=[4, 13]), "sizes"),
    ("inf_study-draws-0", _inf_study(draws=0), "draws"), ("inf_study-draws-bool", _inf_study(draws=True), "draws"),
    ("inf_study-methods", _inf_study(methods=["gp"]), "methods"),
    ("inf_study-diag_reg", _inf_study(diag_reg=-1.0), "diag_reg"),
    ("inf_study-data", lambda c: __import__("ntkuq.study").study.infinite_width_study("x", c.spec, [4]), "data"),
    ("fin_study-sizes-pool", _fin_study(sizes=[13]), "sizes"), ("fin_study-sizes-empty", _fin_study(sizes=[]), "sizes"),
    ("fin_study-members-1", _fin_study(members=1), "members"),
    ("fin_study-steps-neg", _fin_study(steps=-1), "steps"), ("fin_study-steps-str", _fin_study(steps="many"), "steps"),
    ("fin_study-eta_fraction-0", _fin_study(eta_fraction=0.0), "eta_fraction"),
    ("fin_study-eta_fraction-1.5", _fin_study(eta_fraction=1.5), "eta_fraction"),
    ("fin_study-optimizer", _fin_study(optimizer="rmsprop"), "optimizer"),
    ("fin_study-momentum", _fin_study(momentum=1.0), "momentum"),
    ("fin_study-tol", _fin_study(steps="auto", tol=2.0), "tol"),
    ("fin_study-min_steps", _fin_study(min_steps=-1), "min_steps"),
    ("fin_study-draws-0", _fin_study(draws=0), "draws"), ("fin_study-seed", _fin_study(seed=-1), "seed"),
    ("fin_study-width", lambda c: __import__("ntkuq.study").study.finite_width_study(c.data, c.spec, [4], members=2,
                                                                                       steps=1), "width"),
    # gains
    ("residual-a-nan", _residual(a=[NAN]), "a"), ("residual-a-neg", _residual(a=[-0.1]), "a"),
    ("residual-a-unstable", _residual(a=[3.0]), "eta"),
    ("residual-steps-neg", _residual(steps=-1), "steps"), ("residual-steps-float", _residual(steps=2.5), "steps"),
    ("residual-steps-bool", _residual(steps=True), "steps"),
    ("residual-optimizer", _residual(optimizer="adam"), "optimizer"),
    ("residual-momentum", _residual(optimizer="momentum", momentum=1.0), "momentum"),
    ("gain-eta-0", _gain(eta=0.0), "eta"), ("gain-eta-neg", _gain(eta=-1.0), "eta"),
    ("gain-eta-str", _gain(eta="1"), "eta"),
    ("gain-n_train-0", _gain(n_train=0), "n_train"), ("gain-n_train-bool", _gain(n_train=True), "n_train"),
    ("gain-lam-nan", _gain(lam=[NAN]), "lam"), ("gain-steps-neg", _gain(steps=-1), "steps"),
    ("gain-time-neg", _gain(steps=None, time=-1.0), "time"), ("gain-neither", _gain(steps=None), "steps"),
    ("small_a-steps-neg", _small_a(steps=-1), "steps"), ("small_a-steps-float", _small_a(steps=1.5), "steps"),
    ("limit-optimizer", _limit(optimizer="sgd"), "optimizer"),
    ("limit-momentum", _limit(optimizer="nesterov", momentum=2.0), "momentum"),
    # tasks / data loaders
    ("tasks-task", _tasks_load(task="imagenet"), "task"), ("tasks-task-int", _tasks_load(task=3), "task"),
    ("tasks-n_pool-0", _tasks_load(n_pool=0), "n_pool"), ("tasks-n_pool-bool", _tasks_load(n_pool=True), "n_pool"),
    ("tasks-n_test-0", _tasks_load(n_test=0), "n_test"),
    ("tasks-seed-neg", _tasks_load(seed=-1), "seed"),
    ("tasks-downsample-0", _tasks_load(task="mnist", downsample=0), "downsample"),
    ("tasks-standardize", _tasks_load(task="mnist", standardize="z"), "standardize"),
    ("tasks-cells-0", _tasks_load(calorimeter_cells=0), "calorimeter_cells"),
    ("tasks-layers-float", _tasks_load(calorimeter_layers=2.5), "calorimeter_layers"),
    ("subset-n-0", _subset(n=0), "n_train"), ("subset-n-large", _subset(n=13), "n_train"),
    ("subset-draw-neg", _subset(draw=-1), "draw"),
    ("nested_subsets-n_pool", _nested_subsets(n_pool=0), "n_pool"),
    ("nested_subsets-sizes", _nested_subsets(sizes=[4, 2]), "sizes"),
    ("nested_subsets-sizes-large", _nested_subsets(sizes=[20]), "sizes"),
    ("nested_subsets-labels", _nested_subsets(labels=np.zeros(3)), "labels"),
    ("subset_sizes-n_min", _subset_sizes(n_min=0), "n_min"), ("subset_sizes-count", _subset_sizes(count=0), "count"),
    ("load_task-name", _load_task(name="svhn"), "name"),
    ("load_task-standardize", _load_task(standardize="z"), "standardize"),
    ("load_task-downsample", _load_task(downsample=3), "downsample"),
    # calorimeter config / simulator / task
    ("calo-X0_mm", _calo_config(X0_mm=-1.0), "X0_mm"), ("calo-Z", _calo_config(Z=0.0), "Z"),
    ("calo-energy_range", _calo_config(energy_range=(0.0, 10.0)), "energy_range"),
    ("calo-energy_range-str", _calo_config(energy_range="10-100"), "energy_range"),
    ("calo-poisson_spots", _calo_config(poisson_spots="yes"), "poisson_spots"),
    ("calo-ecal", _calo_config(ecal=3), "ecal"),
    ("section-n_cells-0", _section(n_cells=0), "n_cells"),
    ("section-cell_size_mm-neg", _section(cell_size_mm=-1.0), "cell_size_mm"),
    ("simulate-config", _simulate(config="default"), "config"),
    ("simulate-n_showers-0", _simulate(n_showers=0), "n_showers"),
    ("simulate-seed-neg", _simulate(seed=-1), "seed"),
    ("simulate-chunk_size-0", _simulate(chunk_size=0), "chunk_size"),
    ("simulate-n_threads-0", _simulate(n_threads=0), "n_threads"),
    ("calo_task-n_train_pool-1", _calo_task(n_train_pool=1), "n_train_pool"),
    ("calo_task-n_test-0", _calo_task(n_test=0), "n_test"),
    ("calo_task-feature_scale_mev", _calo_task(feature_scale_mev=0.0), "feature_scale_mev"),
    ("calo_task-normalization", _calo_task(normalization="minmax"), "normalization"),
    ("calo_task-config", _calo_task(config="default"), "config"),
    # estimate.estimate / EnsembleOptions
    ("estimate-depth-0", _estimate(depth=0), "depth"),
    ("estimate-activation", _estimate(activation="gelu"), "activation"),
    ("estimate-lambda_ratio", _estimate(lambda_ratio=-1.0), "lambda_ratio"),
    ("estimate-x_train-nan", _estimate(x_train=np.full((8, 3), NAN)), "x_train"),
    ("estimate-x_train-str", _estimate(x_train=[["a"]] * 8), "x_train"),
    ("estimate-x_test-features", _estimate(x_test=np.ones((5, 2))), "x_test"),
    ("estimate-y_train-rows", _estimate(y_train=np.ones((2, 1))), "y_train"),
    ("estimate-sizes-str", _estimate(sizes="all"), "sizes"), ("estimate-sizes-large", _estimate(sizes=[4, 9]), "sizes"),
    ("estimate-sizes-0", _estimate(sizes=[0, 4]), "sizes"),
    ("estimate-standardize", _estimate(standardize="z"), "standardize"),
    ("estimate-quantile_levels", _estimate(quantile_levels=[0.5, 1.0]), "quantile_levels"),
    ("estimate-seed", _estimate(seed=-1), "seed"), ("estimate-diag_reg", _estimate(diag_reg=-1.0), "diag_reg"),
    ("estimate-test_points", _estimate(test_points=0), "test_points"),
    ("estimate-max_memory_gb", _estimate(max_memory_gb=0.0), "max_memory_gb"),
    ("estimate-max_minutes", _estimate(max_minutes=-1.0), "max_minutes"),
    ("ens_options-members", _ens_options(members=1), "members"),
    ("ens_options-width", _ens_options(members=4, width=0), "width"),
    ("ens_options-eta_fraction", _ens_options(members=4, eta_fraction=1.0), "eta_fraction"),
    ("ens_options-tol", _ens_options(members=4, tol=0.0), "tol"),
    ("ens_options-optimizer", _ens_options(members=4, optimizer="adam"), "optimizer"),
]


@pytest.mark.parametrize("call, name", [pytest.param(f, n, id=i) for i, f, n in CASES])
def test_bad_input_is_refused_naming_the_parameter(c, call, name):
    with pytest.raises((ValueError, TypeError)) as err:
        call(c)
    msg = str(err.value)
    assert msg.startswith(name) or f"{name}:" in msg or f"{name}," in msg or f", {name}" in msg, msg
    mod = type(err.value).__module__
    assert mod in ("builtins",) or mod.startswith("ntkuq"), f"raw {type(err.value)} from {mod}: {msg}"


def test_wrong_kind_is_a_type_error_and_a_value_error():
    with pytest.raises(TypeError, match="depth"):
        MLPSpec(depth="3")
    with pytest.raises(ValueError, match="depth"):
        MLPSpec(depth="3")
    assert issubclass(InputTypeError, TypeError) and issubclass(InputTypeError, ValueError)


# ---------------------------------------------------------------------------------------------
# numpy scalars and 0-d arrays are accepted wherever a Python number is
# ---------------------------------------------------------------------------------------------

def test_numpy_scalars_in_spec():
    a = MLPSpec(depth=np.int64(3), C_W=np.float32(2.0), lambda_b=np.array(10.0), width=np.int32(8))
    b = MLPSpec(depth=3, C_W=2.0, lambda_b=10.0, width=8)
    assert a == b and hash(a) == hash(b)
    assert type(a.depth) is int and type(a.width) is int and type(a.C_W) is float
    assert MLPSpec.critical("relu", depth=np.int64(2), lambda_ratio=np.float32(10.0)) == MLPSpec.critical("relu", 2)


def test_numpy_scalars_in_dynamics_and_gains(c):
    from ntkuq.infinite import gain, loss_stats, ntk_prediction, residual_factor

    ref = loss_stats(ntk_prediction(c.kern, c.y, steps=5, eta=0.1), c.yt)
    got = loss_stats(ntk_prediction(c.kern, c.y, steps=np.int64(5), eta=np.float32(0.1), diag_reg=np.array(0.0)),
                     c.yt, block_size=np.int64(2))
    assert abs(got.mu - ref.mu) < 1e-6 * ref.mu
    np.testing.assert_allclose(gain([1.0], np.float64(0.1), np.int64(4), steps=np.int32(3)),
                               gain([1.0], 0.1, 4, steps=3))
    np.testing.assert_allclose(residual_factor([0.1], np.array(3)), residual_factor([0.1], 3))


def test_numpy_scalars_in_sweep_and_ensembles(c):
    from ntkuq.finite import bootstrap_stats, default_eta, train_ensemble
    from ntkuq.infinite import nested_sweep

    pts = nested_sweep(c.spec, c.x, c.y, c.xt, c.yt, np.array([4, 8]), diag_reg=np.float32(0.0))
    assert [p.n_train for p in pts] == [4, 8, 4, 8]
    assert default_eta(c.spec, c.x, np.float32(0.5)) > 0
    assert bootstrap_stats(np.array([1.0, 2.0]), n_boot=np.int64(10), seed=np.int64(1)).n_members == 2
    res = train_ensemble(c.fspec, c.x, c.y, c.xt, c.yt, n_members=np.int64(2), steps=np.int64(2),
                         eta=np.float64(0.01), seed=np.int64(0), n_record=np.int64(2), progress=False)
    assert res.n_members == 2 and np.all(np.isfinite(res.test_losses))


def test_numpy_scalars_in_convergence_and_study(c):
    from ntkuq.finite import default_eta
    from ntkuq.infinite import converged_steps, deviation_curve
    from ntkuq.study import infinite_width_study

    eta = np.float32(default_eta(c.spec, c.x, 0.5, "momentum", 0.9))
    conv = converged_steps(c.kern, c.y, c.yt, eta=eta, tol=np.float64(0.05), max_steps=np.int64(10**4))
    assert conv.steps >= 1
    mu, sigma = deviation_curve(c.kern, c.y, c.yt, np.array([1, 2]), eta=np.float64(0.1))
    assert mu.shape == (2,) and np.all(np.isfinite(mu))
    rows = infinite_width_study(c.data, c.spec, np.array([4, 8]), draws=np.int64(1))
    assert len(rows) == 4


def test_finite_input_gives_finite_output(c):
    """No NaN or inf from finite input at a stable rate (zero-variance corner: constant targets)."""
    from ntkuq.infinite import loss_stats, ntk_prediction

    st = loss_stats(ntk_prediction(c.kern, np.zeros((8, 1)), steps=0, eta=0.1), np.zeros((5, 1)))
    assert np.isfinite([st.mu, st.sigma]).all()


# ---------------------------------------------------------------------------------------------
# The command line: `ntkuq estimate` refuses bad options naming the option, exit status 2 (usage) or 1
# ---------------------------------------------------------------------------------------------

CLI_CASES = [
    ("--depth", "0"), ("--depth", "three"), ("--depth", "2.5"), ("--lambda-ratio", "-1"), ("--lambda-ratio", "nan"),
    ("--diag-reg", "-1"), ("--diag-reg", "inf"), ("--test-points", "0"), ("--seed", "-1"), ("--ensemble", "1"),
    ("--width", "0"), ("--momentum", "1.0"), ("--momentum", "-0.5"), ("--steps", "-5"), ("--tol", "0"),
    ("--tol", "1.5"), ("--max-steps", "0"), ("--min-steps", "-1"), ("--eta-fraction", "1"), ("--eta-fraction", "0"),
    ("--max-memory-gb", "0"), ("--max-memory-gb", "-3"), ("--max-minutes", "nan"), ("--sizes", "0,10"),
    ("--sizes", "ten"), ("--quantiles", "0,0.5"), ("--activation", "gelu"), ("--optimizer", "adam"),
    ("--standardize", "z"),
]


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    for name, n in (("train", 12), ("test", 6)):
        np.savez(d / f"{name}.npz", x=rng.standard_normal((n, 2)), y=rng.standard_normal((n, 1)))
    return str(d / "train.npz"), str(d / "test.npz")


@pytest.mark.parametrize("flag, value", CLI_CASES, ids=[f"{f}={v}" for f, v in CLI_CASES])
def test_cli_bad_option_is_refused_naming_it(cli_files, capsys, flag, value):
    from ntkuq.estimate import main

    with pytest.raises(SystemExit) as exit_:
        main(["estimate", "--train", cli_files[0], "--test", cli_files[1], "--quiet", flag, value])
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("extra, name", [(["--sizes", "5,50"], "sizes"), (["--test-points", "100"], "test_points")])
def test_cli_inconsistent_values_exit_1_naming_the_parameter(cli_files, capsys, extra, name):
    from ntkuq.estimate import main

    code = main(["estimate", "--train", cli_files[0], "--test", cli_files[1], "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 1 and name in err, err


def test_diverged_training_is_refused_unless_asked_for(c):
    from ntkuq.finite import train_ensemble

    kw = dict(n_members=2, steps=30, optimizer="adam", eta=1e12, progress=False)
    with pytest.raises(ValueError, match="eta: training diverged"):
        train_ensemble(c.fspec, c.x, c.y, c.xt, c.yt, **kw)
    res = train_ensemble(c.fspec, c.x, c.y, c.xt, c.yt, allow_unstable=True, **kw)
    assert not np.all(np.isfinite(res.test_losses))


# ---------------------------------------------------------------------------------------------
# Cases found by trying the library as a careless or hostile user would (issue 13, second pass)
# ---------------------------------------------------------------------------------------------

def _zero_ntk_eta(c):
    from ntkuq.finite import default_eta

    return default_eta(MLPSpec(lambda_b=0.0), np.zeros((5, 3)))


def _stable_eta_zero(c):
    from ntkuq.infinite import stable_eta

    return stable_eta(0.0, 5)


HOSTILE_CASES = [
    ("kernels-x-overflow", _kernels(x1=np.full((4, 3), 1e200)), "x1"),
    ("kernels-x2-overflow",
     lambda c: __import__("ntkuq.infinite").infinite.kernels(c.spec, c.x, np.full((2, 3), 1e160)),
     "x2"),
    ("kernels-C_W-overflow", lambda c: __import__("ntkuq.infinite").infinite.kernels(MLPSpec(C_W=1e300), c.x), "C_W"),
    ("kernel_diag-x-overflow",
     lambda c: __import__("ntkuq.infinite").infinite.kernel_diag(c.spec, np.full((2, 3), 1e200)),
     "x"),
    ("default_eta-zero-ntk", _zero_ntk_eta, "x_train"),
    ("stable_eta-zero-lambda", _stable_eta_zero, "lam_max"),
]


@pytest.mark.parametrize("call, name", [pytest.param(f, n, id=i) for i, f, n in HOSTILE_CASES])
def test_hostile_input_is_refused_naming_the_parameter(c, call, name):
    test_bad_input_is_refused_naming_the_parameter(c, call, name)


@pytest.mark.parametrize("steps", [0, np.int64(0)])
def test_finite_width_study_zero_steps_stores_no_nan(c, steps):
    """T = 0 (the ensemble at initialization) is a valid point: no IndexError, no NaN in the stored rows."""
    import math

    from ntkuq.study import finite_width_study

    rows = finite_width_study(c.data, c.fspec, [4, 8], members=2, steps=steps, optimizer="gd")
    assert len(rows) == 6
    for row in rows:
        numbers = [row[k] for k in ("mu", "sigma", "eps")] + [v for v in row["params"].values() if isinstance(v, float)]
        assert all(math.isfinite(v) for v in numbers), row
    ens = [r for r in rows if r["method"] == "ensemble"]
    assert all(r["params"]["train_drift"] is None and r["steps"] == 0 for r in ens)


def _chi2(weights=(0.5, 0.2), nc=(1.0, 0.3), dof=1, offset=0.0):
    from ntkuq.infinite import GeneralizedChi2

    return lambda c: GeneralizedChi2(np.asarray(weights), np.asarray(nc), dof, offset).cdf(1.0)


CHI2_CASES = [
    ("chi2-weights-negative", _chi2(weights=(-1.0, 0.2)), "weights"),
    ("chi2-weights-nan", _chi2(weights=(NAN, 0.2)), "weights"),
    ("chi2-weights-complex", _chi2(weights=(1j, 0.2)), "weights"),
    ("chi2-nc-negative", _chi2(nc=(-1.0, 0.3)), "nc"),
    ("chi2-nc-length", _chi2(nc=(1.0,)), "nc"),
    ("chi2-dof-0", _chi2(dof=0), "dof"),
    ("chi2-offset-inf", _chi2(offset=INF), "offset"),
    ("chi2-cdf-x-str", lambda c: _chi2_obj().cdf("abc"), "x"),
    ("chi2-pdf-x-nan", lambda c: _chi2_obj().pdf(NAN), "x"),
    ("chi2-quantile-far-lower-tail", lambda c: _chi2_obj().quantile(1e-12), "q"),
    ("chi2-quantile-array-bad", lambda c: _chi2_obj().quantile(np.array([0.5, 1.0])), "q"),
]


def _chi2_obj():
    from ntkuq.infinite import GeneralizedChi2

    return GeneralizedChi2(np.array([0.5, 0.2]), np.array([1.0, 0.3]), 1)


@pytest.mark.parametrize("call, name", [pytest.param(f, n, id=i) for i, f, n in CHI2_CASES])
def test_generalized_chi2_refuses_naming_the_parameter(c, call, name):
    test_bad_input_is_refused_naming_the_parameter(c, call, name)


def test_generalized_chi2_quantiles_tails_and_arrays():
    """Array levels give arrays; the far upper tail is correct; the lower end agrees with scipy's ncx2."""
    from scipy.stats import ncx2

    from ntkuq.infinite import GeneralizedChi2

    g = GeneralizedChi2(np.array([0.5]), np.array([1.0]), 3)
    levels = np.array([1e-3, 0.5, 1 - 1e-12])
    got = g.quantile(levels)
    assert got.shape == (3,)
    np.testing.assert_allclose(got[:2], 0.5 * ncx2.ppf(levels[:2], 3, 1.0), rtol=1e-5)
    assert abs(1 - g.cdf(got[2])[0] - 1e-12) < 1e-13


def _calo_task_fixed_energy(c):
    from ntkuq.data.calorimeter import CalorimeterConfig, calorimeter_task

    return calorimeter_task(4, 2, CalorimeterConfig(energy_range=(50.0, 50.0)), use_cache=False)


def _coarse(cells, layers):
    def call(c):
        from ntkuq.data import coarse_calorimeter
        from ntkuq.data.calorimeter import CalorimeterConfig

        return coarse_calorimeter(CalorimeterConfig(), cells, layers)
    return call


CALO_CASES = [
    ("calorimeter_task-equal-energy-bounds", _calo_task_fixed_energy, "energy_range"),
    ("coarse_calorimeter-cells-0", _coarse(0, 5), "cells"),
    ("coarse_calorimeter-layers-negative", _coarse(5, -2), "layers"),
    ("coarse_calorimeter-cells-float", _coarse(2.5, 5), "cells"),
]


@pytest.mark.parametrize("call, name", [pytest.param(f, n, id=i) for i, f, n in CALO_CASES])
def test_calorimeter_settings_refused_naming_the_parameter(c, call, name):
    test_bad_input_is_refused_naming_the_parameter(c, call, name)

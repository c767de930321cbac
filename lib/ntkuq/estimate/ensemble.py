"""The finite-width comparison of `ntkuq estimate --ensemble`: a trained ensemble beside the infinite-width one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from ntkuq._src.checks import check_fraction, check_int, check_positive
from ntkuq.finite.ensembles import train_ensemble
from ntkuq.finite.stopping import StopRule
from ntkuq.finite.training import default_eta
from ntkuq.infinite.convergence import converged_steps
from ntkuq.infinite.gains import check_optimizer
from ntkuq.infinite.lossstats import loss_stats
from ntkuq.infinite.predict import ntk_prediction, train_test_kernels
from ntkuq.spec import MLPSpec


@dataclass(frozen=True)
class EnsembleOptions:
    """A trained finite-width ensemble for comparison: `members` nets of `width`, full-batch training.

    optimizer 'momentum' (heavy ball, default), 'nesterov' or 'gd', at eta_fraction of its stable
    maximum; steps None means converged: the number of steps after which the infinite-width ensemble's
    mu_L and sigma_L stay within `tol` of t = infinity (ntkuq.infinite.converged_steps), at least
    min_steps and at most max_steps; then, with `converge`, the members train on until their mean train loss
    moves by less than `converge` over the last quarter of the steps (`ntkuq.finite.StopRule`), up to
    max_steps, and the result records what the rule did; without it they may still be training, and the result
    records the fall of their mean train loss over the last recording interval.

    Attributes:
        members: the number of networks trained (default 16, at least 2).
        width: their hidden width (default 30).
        steps: the training steps; None (default) means converged, as above.
        optimizer: the full-batch optimizer, 'momentum' (heavy ball, default), 'nesterov' or 'gd'.
        momentum: beta of momentum / nesterov (default 0.9); set to None for 'gd'.
        eta_fraction: the learning rate as a fraction of the stable maximum, in (0, 1) (default 0.5).
        tol: the relative tolerance of 'converged' (default 0.01).
        max_steps: the cap on the converged steps (default 20000).
        min_steps: train at least this many steps (default 0).
        seed: the ensemble's seed (default 0), an integer >= 0.
        converge: the stopping rule's tolerance with converged steps, in (0, 1) (default 0.01); None: train
            exactly the converged steps.

    Raises:
        ValueError: if optimizer is not 'gd', 'momentum' or 'nesterov', or eta_fraction is not in (0, 1).
    """

    members: int = 16
    width: int = 30
    steps: Optional[int] = None
    optimizer: str = "momentum"
    momentum: Optional[float] = 0.9
    eta_fraction: float = 0.5
    tol: float = 0.01
    max_steps: int = 20000
    min_steps: int = 0
    seed: int = 0
    converge: Optional[float] = 0.01

    def __post_init__(self) -> None:
        if self.converge is not None:
            check_fraction(self.converge, "converge")

        check_int(self.members, "members", minimum=2)
        check_int(self.width, "width")
        if self.steps is not None:
            check_int(self.steps, "steps")
        if self.optimizer not in ("gd", "momentum", "nesterov"):
            raise ValueError(f"optimizer: expected 'gd', 'momentum' or 'nesterov' (full batch), "
                             f"got {self.optimizer!r}")
        if self.optimizer == "gd":
            object.__setattr__(self, "momentum", None)
        check_optimizer(self.optimizer, self.momentum)
        check_fraction(self.tol, "tol")
        check_int(self.max_steps, "max_steps")
        check_int(self.min_steps, "min_steps", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        if not 0 < check_positive(self.eta_fraction, "eta_fraction") < 1:
            raise ValueError(f"eta_fraction: expected a number in (0, 1), got {self.eta_fraction!r}")


def _train_members(spec: MLPSpec, x, y, x_test, y_test, opts: EnsembleOptions, steps: int, eta: float,
                   progress: bool, stop: Optional[StopRule] = None):
    """The one call of the finite-width trainer (with a stop rule, `steps` is the cap)."""
    return train_ensemble(spec.with_width(opts.width), x, y, x_test, y_test, n_members=opts.members, steps=steps,
                          eta=eta, seed=opts.seed, optimizer=opts.optimizer, momentum=opts.momentum,
                          stop=stop, progress=progress)


def _drift(res) -> Dict[str, float]:
    """Relative fall of the members' mean train loss over the last recording interval before they stopped."""
    last = res.recorded - 1
    if last < 1:
        return {"from_step": 0, "to_step": 0, "relative_fall": 0.0}
    before, after = (float(np.mean(res.train_history[:, j])) for j in (last - 1, last))
    return {"from_step": int(res.steps[last - 1]), "to_step": int(res.steps[last]),
            "relative_fall": 1.0 - after / before}


def compare_ensemble(spec: MLPSpec, x, y, x_test, y_test, opts: EnsembleOptions, *, diag_reg: float = 0.0,
                     progress: bool = False) -> Dict[str, object]:
    """Train the ensemble; return its sample statistics and the infinite-width ones after the same steps.

    The sample statistics carry bootstrap errors.

    Args:
        spec: the architecture (infinite width); the members are spec.with_width(opts.width).
        x: the training inputs, shape (N_D, features), already preprocessed.
        y: the training targets, shape (N_D, k).
        x_test: the test inputs, shape (N_T, features).
        y_test: the test targets, shape (N_T, k).
        opts: the ensemble's size, width, optimizer, learning-rate fraction, steps rule and seed.
        diag_reg: ridge added to the diagonal of the NTK in the infinite-width solves (default 0: none).
        progress: True shows the trainer's progress bar (default False).

    Returns:
        A JSON-ready dict: the settings, the steps and their rule, eta, what the stopping rule did ("stopping",
        None without it), the members' mu_L, sigma_L, eps_L with bootstrap errors, their test and train losses,
        the train-loss drift and "infinite_same_steps" (after the steps the members took).
    """
    eta = default_eta(spec, x, opts.eta_fraction, optimizer=opts.optimizer, momentum=opts.momentum)
    kern = train_test_kernels(spec, x, x_test)
    steps, converged = opts.steps, None
    if steps is None:
        conv = converged_steps(kern, y, y_test, eta=eta, optimizer=opts.optimizer, momentum=opts.momentum,
                               tol=opts.tol, max_steps=opts.max_steps, diag_reg=diag_reg)
        steps, converged = max(conv.steps, opts.min_steps), conv.converged
    stop = StopRule(opts.converge, steps) if opts.steps is None and opts.converge is not None else None
    res = _train_members(spec, x, y, x_test, y_test, opts, steps if stop is None else max(steps, opts.max_steps),
                         eta, progress, stop)
    if stop is not None:
        steps = res.stopping.steps
    st = res.stats(seed=opts.seed)
    same = loss_stats(ntk_prediction(kern, y, steps=steps, eta=eta, optimizer=opts.optimizer, momentum=opts.momentum,
                                     diag_reg=diag_reg), y_test)
    return {"optimizer": opts.optimizer, "momentum": opts.momentum, "members": opts.members, "width": opts.width,
            "steps": steps, "steps_rule": "given" if opts.steps is not None else
            f"converged_steps(tol={opts.tol:g}, max_steps={opts.max_steps}), at least {opts.min_steps}",
            "converged": converged, "stopping": None if stop is None else res.stopping.as_dict(),
            "eta": eta, "eta_fraction": opts.eta_fraction, "seed": opts.seed, "mu_L": st.mu,
            "mu_L_err": st.mu_err, "sigma_L": st.sigma, "sigma_L_err": st.sigma_err, "eps_L": st.eps,
            "eps_L_err": st.eps_err, "member_losses": [float(v) for v in res.test_losses],
            "max_train_loss": float(np.max(res.train_losses)), "train_loss": float(np.mean(res.train_losses)),
            "train_loss_drift": _drift(res),
            "infinite_same_steps": {"mu_L": same.mu, "sigma_L": same.sigma, "eps_L": same.eps}}


__all__ = ["EnsembleOptions", "compare_ensemble"]

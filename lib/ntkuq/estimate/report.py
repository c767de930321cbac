"""The result of `ntkuq estimate` (`Estimate`), its text report and its figure (what the command prints and plots)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ntkuq.data.userdata import Preprocessing
from ntkuq.estimate.cost import Cost
from ntkuq.finite.stopping import describe_stop
from ntkuq.infinite.lossstats import eps_floor, eps_population
from ntkuq.spec import MLPSpec

PLATEAU_TOL = 0.05
"""The eps_L plateau rule (as in the synthesis chapter): abs(slope) < max(2 standard errors, PLATEAU_TOL)."""


@dataclass(frozen=True)
class Estimate:
    """Everything `estimate` found; `to_dict` is what `ntkuq estimate --json` writes.

    Attributes:
        mu_L: the mean of the test loss L at the largest training-set size.
        sigma_L: the standard deviation of L there.
        eps_L: sigma_L / mu_L.
        n_train: N_D, the largest training-set size (the headline numbers are there).
        n_test: N_T, the number of test points.
        n_out: k, the number of outputs (targets).
        quantiles: probability -> quantile of L (empty where N_T is too large for the eigendecomposition).
        bias2: the squared-bias part of mu_L.
        variance: the ensemble-variance part of mu_L.
        sweep: one row per nested training-set size (n_train, mu_L, sigma_L, eps_L, var_diag, var_offdiag,
            eps_population).
        fits: the power-law fits and the eps_L plateau fit over the sweep; None with fewer than 3 sizes.
        verdict: the eps_L plateau verdict ("plateau", "still falling", "rising" or not enough sizes).
        spec: the architecture (MLPSpec.critical).
        preprocessing: the standardization fitted on the training set.
        data: facts about the data (paths, feature and target names, counts, row order, sizes).
        cost: the memory and time estimate checked before computing.
        diag_reg: the ridge added to the NTK's diagonal.
        seed: the seed of the training-set permutation.
        ensemble: the finite-width comparison (`compare_ensemble`); None without one.
        seconds: the wall time of the run.
        distribution: the exact distribution of L (None where N_T is too large); left out of `to_dict`.
        var_diag: the d = d' part of sigma_L^2.
        var_offdiag: the d != d' part of sigma_L^2.
    """

    mu_L: float
    sigma_L: float
    eps_L: float
    n_train: int
    n_test: int
    n_out: int
    quantiles: Dict[float, float]
    bias2: float
    variance: float
    sweep: List[Dict[str, float]]
    fits: Optional[Dict[str, object]]
    verdict: str
    spec: MLPSpec
    preprocessing: Preprocessing
    data: Dict[str, object]
    cost: Cost
    diag_reg: float
    seed: int
    ensemble: Optional[Dict[str, object]] = None
    seconds: float = 0.0
    distribution: object = field(default=None, repr=False, compare=False)
    var_diag: float = math.nan
    var_offdiag: float = math.nan

    @property
    def eps_population(self) -> float:
        """eps_L of an infinite test set from the same distribution (the spread of the population loss)."""
        return eps_population(self.mu_L, self.var_offdiag, self.n_test) if self.n_test >= 2 else math.nan

    @property
    def eps_floor(self) -> float:
        """The floor that the N_T test points put under eps_L: sqrt(N_T var_diag / N_T) / mu_L."""
        return eps_floor(self.mu_L, self.var_diag, self.n_test, self.n_test) if self.n_test >= 2 else math.nan

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready results, inputs and settings (`distribution` is left out; `seconds` is under timing)."""
        return {"mu_L": self.mu_L, "sigma_L": self.sigma_L, "eps_L": self.eps_L, "n_train": self.n_train,
                "n_test": self.n_test, "n_out": self.n_out,
                "quantiles": {f"{q:g}": v for q, v in self.quantiles.items()},
                "squared_bias": self.bias2, "ensemble_variance": self.variance,
                "var_diag": self.var_diag, "var_offdiag": self.var_offdiag,
                "eps_population": self.eps_population, "eps_floor": self.eps_floor,
                "method": "infinite-width NTK ensemble, full-batch gradient descent to t = infinity",
                "sweep": self.sweep, "fits": self.fits, "plateau_verdict": self.verdict,
                "spec": asdict(self.spec), "preprocessing": self.preprocessing.to_dict(), "data": self.data,
                "diag_reg": self.diag_reg, "seed": self.seed, "ensemble": self.ensemble,
                "cost_estimate": {"memory_gib": self.cost.memory_gib, "seconds": self.cost.seconds},
                "timing": {"seconds": self.seconds}}

    def sweep_csv(self) -> str:
        """The nested-size statistics as CSV text (full float64 precision)."""
        cols = ["n_train", "mu_L", "sigma_L", "eps_L", "var_diag", "var_offdiag", "eps_population"]
        lines = [",".join(cols)]
        lines += [",".join(repr(r[c]) if c != "n_train" else str(r[c]) for c in cols) for r in self.sweep]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """The human-readable report the command line prints."""
        return summary_text(self)

    def figure(self):
        """mu_L, sigma_L, eps_L against N_D with fits, and the distribution of L at the largest size."""
        return estimate_figure(self)


def _stopping_lines(e: Dict[str, object]) -> List[str]:
    """The stopping rule's record as report lines (none when the ensemble had no rule)."""
    r = e.get("stopping")
    if not r:
        return []
    drift = "n/a" if r["drift"] is None else f"{100 * r['drift']:.2g} %"
    verdict = describe_stop(r) + ("" if r["converged"] else ", the networks are still training")
    return [f"  stopping rule: mean train loss within {100 * r['rtol']:g} % over the last quarter of the steps, after "
            f">= {r['min_steps']} steps, cap {r['cap']}: {verdict}; at step {r['steps']} (last-quarter fall {drift}; "
            f"{100 * r['dead_share']:.0f} % of the last hidden layer's units dead)"]


def _g(v: float) -> str:
    return f"{v:.4g}"


def loss_units(est: Estimate) -> str:
    """The unit of the test loss L: squared (standardized) target units.

    Args:
        est: the result of `estimate`.

    Returns:
        The unit as axis-label text (with LaTeX).
    """
    return "(standardized target units)$^2$" if est.preprocessing.y_mean is not None else "(target units)$^2$"


def summary_text(est: Estimate) -> str:
    """Multi-line report: data, preprocessing, spec, cost, headline statistics, sweep, fits, ensemble.

    Args:
        est: the result of `estimate`.

    Returns:
        The report (what `Estimate.summary` returns and the command line prints).
    """
    s, d = est.spec, est.data
    lines: List[str] = [
        "ntkuq estimate: test-loss spread over random initializations, exact at infinite width",
        f"model: depth {s.depth} MLP, {s.activation} at criticality (C_b = {s.C_b:g}, C_W = {s.C_W:.6g}), "
        f"lambda_b/lambda_W = {s.lambda_b / s.lambda_W:g}; infinite-width NTK ensemble, "
        "full-batch gradient descent to t = infinity",
    ]
    if "train" in d:
        lines.append(f"data: train {d['train']}, test {d['test']}; targets {d['targets']}; "
                     f"{d['n_features']} features")
    lines += [
        f"preprocessing: {est.preprocessing.describe()}",
        f"points: N_D = {est.n_train} of {d['n_train_points']} training points, N_T = {est.n_test} test points, "
        f"k = {est.n_out} output(s); {d['order']}",
        f"cost estimate: {est.cost.memory_gib:.2g} GiB peak memory, about {est.cost.seconds:.0f} s",
        "",
        f"test loss L at N_D = {est.n_train}:",
        f"  mu_L    = {_g(est.mu_L)}   (squared bias {_g(est.bias2)} + ensemble variance {_g(est.variance)})",
        f"  sigma_L = {_g(est.sigma_L)}",
        f"  eps_L   = {_g(est.eps_L)}",
        f"  parts of sigma_L^2: each test point with itself {_g(est.var_diag)}, pairs of points "
        f"{_g(est.var_offdiag)}",
        f"  eps_L of an infinite test set (population) = {_g(est.eps_population)}; floor of these N_T = "
        f"{est.n_test} points = {_g(est.eps_floor)} (eps_L^2 = floor^2 + (N_T - 1) / N_T population^2)",
    ]
    if est.quantiles:
        qs = "   ".join(f"{100 * q:g} %: {_g(v)}" for q, v in est.quantiles.items())
        lines.append(f"  quantiles of L: {qs}")
    else:
        lines.append("  quantiles of L: not computed (N_T too large for the eigendecomposition)")
    lines += ["", "nested training sizes:",
              f"  {'N_D':>7s} {'mu_L':>11s} {'sigma_L':>11s} {'eps_L':>9s} {'eps_pop':>9s}"]
    lines += [f"  {r['n_train']:7d} {r['mu_L']:11.4g} {r['sigma_L']:11.4g} {r['eps_L']:9.4g} "
              f"{r['eps_population']:9.4g}" for r in est.sweep]
    f = est.fits
    if f is not None:
        lines += [f"power laws: mu_L ~ N_D^-alpha, alpha = {f['alpha']:.3f} +- {f['alpha_err']:.3f}; "
                  f"sigma_L ~ N_D^-beta, beta = {f['beta']:.3f} +- {f['beta_err']:.3f}",
                  f"eps_L over N_D {f['decade'][0]:.0f}-{f['decade'][1]:.0f}: log-log slope "
                  f"{f['eps_slope']:+.3f} +- {f['eps_slope_err']:.3f}, mean {_g(f['eps_plateau'])} -> {est.verdict} "
                  f"(plateau if |slope| < max(2 errors, {PLATEAU_TOL}); errors from the fit residuals of one "
                  "nested training set)"]
    else:
        lines.append(f"power laws and plateau: {est.verdict}")
    e = est.ensemble
    if e is not None:
        same = e["infinite_same_steps"]
        opt = e["optimizer"] if e["momentum"] is None else f"{e['optimizer']} (beta = {e['momentum']:g})"
        rule = ("as given" if e["converged"] is None else
                f"from {e['steps_rule']}" + ("" if e["converged"] else ": NOT converged within max_steps"))
        lines += ["", f"finite-width ensemble: {e['members']} nets of width {e['width']}, full-batch {opt} for "
                      f"{e['steps']} steps ({rule}) at eta = {e['eta']:.4g} ({e['eta_fraction']:g} of the stable "
                      f"maximum), seed {e['seed']}",
                  *_stopping_lines(e),
                  f"  final train loss {_g(e['train_loss'])} (mean over members), fell by "
                  f"{100 * e['train_loss_drift']['relative_fall']:.0f} % from step "
                  f"{e['train_loss_drift']['from_step']} "
                  f"to {e['train_loss_drift']['to_step']}" + (": the networks are still training, their statistics "
                  "are those at this step" if e['train_loss_drift']['relative_fall'] > 0.05 else ""),
                  f"  {'':28s} {'mu_L':>11s} {'sigma_L':>11s} {'eps_L':>9s}",
                  f"  {'trained, width ' + str(e['width']):28s} {e['mu_L']:11.4g} {e['sigma_L']:11.4g} "
                  f"{e['eps_L']:9.4g}",
                  f"  {'  (bootstrap error)':28s} {e['mu_L_err']:11.2g} {e['sigma_L_err']:11.2g} "
                  f"{e['eps_L_err']:9.2g}",
                  f"  {'infinite width, same steps':28s} {same['mu_L']:11.4g} {same['sigma_L']:11.4g} "
                  f"{same['eps_L']:9.4g}",
                  f"  {'infinite width, t = inf':28s} {est.mu_L:11.4g} {est.sigma_L:11.4g} {est.eps_L:9.4g}"]
    return "\n".join(lines)


BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.15)}
"""Legend placement of `estimate_figure`: under each panel, so that no legend hides data."""


def estimate_figure(est: Estimate):
    """Four panels (2 x 2): mu_L, sigma_L, eps_L against N_D (points, power-law fits, ensemble) and the density of L.

    Args:
        est: the result of `estimate`.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    unit = loss_units(est)
    n = np.array([r["n_train"] for r in est.sweep], dtype=float)
    fig, axes = plt.subplots(2, 2, figsize=(6.3, 9.0))   # 2 x 2 at a book column's width (6.3 in)
    axes = axes.ravel()
    labels = {"mu": (r"$\mu_\mathcal{L}$, mean test loss " + unit),
              "sigma": (r"$\sigma_\mathcal{L}$, std. of test loss " + unit),
              "eps": r"$\epsilon_\mathcal{L} = \sigma_\mathcal{L}/\mu_\mathcal{L}$ (dimensionless)"}
    f, e = est.fits, est.ensemble
    for ax, stat in zip(axes[:3], ("mu", "sigma", "eps")):
        y = np.array([r[f"{stat}_L"] for r in est.sweep])
        ax.plot(n, y, "o", color="tab:blue", ms=4, label=r"$n=\infty$, $t=\infty$ (exact)")
        if f is not None and stat != "eps" and len(n) > 1:
            a, err = (f["alpha"], f["alpha_err"]) if stat == "mu" else (f["beta"], f["beta_err"])
            amp = np.exp(np.mean(np.log(y) + a * np.log(n)))
            grid = np.geomspace(n.min(), n.max(), 50)
            sym = r"\alpha" if stat == "mu" else r"\beta"
            ax.plot(grid, amp * grid**-a, color="tab:blue", lw=1, alpha=0.6, label=f"fit ${sym}={a:.2f}\\pm{err:.2f}$")
        if stat == "eps":
            ax.plot(n, [r["eps_population"] for r in est.sweep], "s--", color="0.3", ms=3.5, mfc="white",
                    label=r"population part ($N_T\to\infty$)")
        if f is not None and stat == "eps":
            ax.axvspan(f["decade"][0], f["decade"][1], color="0.9", zorder=0,
                       label=f"slope {f['eps_slope']:+.2f}: {est.verdict}")
        if e is not None:
            ax.errorbar([est.n_train], [e[f"{stat}_L"]], yerr=[e[f"{stat}_L_err"]], fmt="s", color="tab:red",
                        mfc="white", capsize=3, label=f"width {e['width']}, {e['steps']} steps ({e['members']} nets)")
            ax.plot([est.n_train], [e["infinite_same_steps"][f"{stat}_L"]], "x", color="tab:red",
                    label=r"$n=\infty$, same steps")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"training-set size $N_\mathcal{D}$ (points)")
        ax.set_ylabel(labels[stat], fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=9.5, **BELOW)
    ax = axes[3]
    dist = est.distribution
    if dist is not None:
        lo = max(dist.offset, est.mu_L - 5 * est.sigma_L)
        grid = np.linspace(lo, est.mu_L + 5 * est.sigma_L, 200)
        ax.plot(grid, dist.pdf(grid), color="tab:blue", label=rf"exact density, $N_\mathcal{{D}}={est.n_train}$")
        for q, v in est.quantiles.items():
            ax.axvline(v, color="tab:blue", ls=":", lw=1)
        ax.plot([], [], color="tab:blue", ls=":",
                label="quantiles " + ", ".join(f"{100 * q:g} %" for q in est.quantiles))
    if e is not None:
        ax.hist(e["member_losses"], bins="auto", density=True, color="tab:red", alpha=0.35,
                label=f"trained, width {e['width']}")
    ax.set_xlabel(r"test loss $\mathcal{L}$ " + unit)
    ax.set_ylabel(r"probability density (1 / unit of $\mathcal{L}$)", fontsize=9)
    ax.legend(fontsize=9.5, **BELOW)
    fig.tight_layout()
    return fig


__all__ = ["BELOW", "Estimate", "PLATEAU_TOL", "estimate_figure", "loss_units", "summary_text"]

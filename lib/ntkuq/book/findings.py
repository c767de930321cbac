"""The paper's findings checked against the book's numbers: one verdict row per finding.

Each function takes the numbers a chapter computed (curves, fits, plateau models, part ratios) per task and
returns a row {'finding', 'numbers', 'verdict'} whose words follow from the numbers by a stated rule, so
that the synthesis's verdict table stays true when the results change.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from ntkuq.book.plots import format_pm
from ntkuq.study.plateau_model import TEST_SIZES, PlateauModel
from ntkuq.study.scaling import local_exponents

DRIFT_TOL = 0.1
"""A local exponent that moves by less than this over the range counts as one power law."""
PULL = 3.0
"""Standard errors within which two numbers count as equal."""


def _names(names: Sequence[str]) -> str:
    names = ["the calorimeter" if n == "calorimeter" else n for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _row(finding: str, numbers: str, verdict: str) -> Dict[str, str]:
    return {"finding": finding, "numbers": numbers, "verdict": verdict}


def power_laws(curves: Mapping[str, Tuple[np.ndarray, np.ndarray, np.ndarray]], where: str) -> Dict[str, str]:
    """mu_L and sigma_L as power laws in N_D: the range of their local exponents per task.

    Args:
        curves: task name -> (N_D, mu_L, sigma_L), increasing N_D, at least three sizes.
        where: the scale described, e.g. "paper scale, NTK".

    Returns:
        The row {'finding', 'numbers', 'verdict'}: 'holds' when every local exponent moves by less than
        DRIFT_TOL over the range, else 'holds locally, with drifting exponents', with the drifts as numbers.
    """
    parts, drifting = [], []
    for name, (n, mu, sigma) in curves.items():
        a, b = local_exponents(n, mu)[1], local_exponents(n, sigma)[1]
        parts.append(f"{name}: α {a[0]:.2f} → {a[-1]:.2f}, β {b[0]:.2f} → {b[-1]:.2f}")
        if np.ptp(a) >= DRIFT_TOL or np.ptp(b) >= DRIFT_TOL:
            drifting.append(name)
    verdict = ("holds" if not drifting else
               f"holds locally; the exponents drift on {_names(drifting)}")
    return _row("μ_L and σ_L are power laws in N_D", f"local exponents ({where}), smallest → largest N_D: "
                + "; ".join(parts), verdict)


def plateau_infinite(models: Mapping[str, PlateauModel], n_max: float,
                     test_sizes: Sequence[int] = TEST_SIZES) -> Dict[str, str]:
    """ε_L independent of N_D at infinite width, from the plateau model per task (`plateau.PlateauModel`).

    The verdict names, per task, the largest test-set size n_T of `test_sizes` at which the model's verdict is a
    plateau at the largest N_D, and says whether the population part still falls.

    Args:
        models: task name -> its plateau model.
        n_max: the largest N_D, named in the verdict when no test-set size reaches the plateau.
        test_sizes: the test-set sizes n tested, increasing (default TEST_SIZES).

    Returns:
        The row {'finding', 'numbers', 'verdict'}; 'not tested at this scale' without models.
    """
    if not models:
        return _row("ε_L independent of N_D at infinite width", "no points with the split",
                    "not tested at this scale")
    largest = {k: max((n for n in test_sizes if m.verdict(n) == "plateau"), default=0) for k, m in models.items()}
    gam = {k: m.population for k, m in models.items()}
    falls = all(p.exponent > PULL * (p.exponent_err if np.isfinite(p.exponent_err) else 0) for p in gam.values())
    numbers = ("population part B ∝ N_D^-γ, γ = " + ", ".join(f"{k} {format_pm(p.exponent, p.exponent_err)}"
                                                           for k, p in gam.items())
               + "; floor √(A/n_T) at n_T = 1,000: " + ", ".join(f"{k} {np.sqrt(m.floor(m.n_hi) / 1000):.3f}"
                                                            for k, m in models.items()))
    if not any(largest.values()):
        verdict = f"does not hold at N_D = {n_max:,.0f} for any test-set size from {test_sizes[0]:,}"
    elif len(set(largest.values())) == 1 and largest[next(iter(largest))] == test_sizes[-1]:
        verdict = f"holds for every test-set size up to {test_sizes[-1]:,}"
    else:
        groups: Dict[int, list] = {}
        for k, v in largest.items():
            groups.setdefault(v, []).append(k)
        parts = [f"on {_names(ks)} for test sets of up to {v:,} points" for v, ks in sorted(groups.items(),
                                                                                         reverse=True) if v]
        parts += [f"not on {_names(ks)}" for v, ks in groups.items() if not v]
        verdict = "holds " + "; ".join(parts)
    if falls:
        verdict += "; the population part still falls"
    return _row("ε_L independent of N_D at infinite width", numbers, verdict)


def plateau_finite(verdicts: Mapping[str, str], n_test: Optional[int], decade: str) -> Dict[str, str]:
    """ε_L independent of N_D at finite width: the slope test per task (`scaling.plateau_verdict`), at N_T.

    Args:
        verdicts: task name -> its plateau verdict ('plateau' or another).
        n_test: N_T, the number of test points.
        decade: the N_D range of the slope test as text, e.g. "100-2000".

    Returns:
        The row {'finding', 'numbers', 'verdict'}; 'not tested' without verdicts.
    """
    if not verdicts:
        return _row("ε_L independent of N_D at finite width", "no finite-width results", "not tested")
    flat = [k for k, v in verdicts.items() if v == "plateau"]
    other = [k for k, v in verdicts.items() if v != "plateau"]
    numbers = f"N_D {decade}, N_T = {n_test:,}: " + ", ".join(f"{k} {v}" for k, v in verdicts.items())
    if not other:
        verdict = f"holds at N_T = {n_test:,} (N_D up to {decade.split('-')[-1]}); not tested at the paper's scale"
    elif not flat:
        verdict = "does not hold at these sizes"
    else:
        verdict = f"holds on {_names(flat)}, not on {_names(other)}, at N_T = {n_test:,}"
    return _row("ε_L independent of N_D at finite width", numbers, verdict)


def _mean_top(r: Mapping[str, np.ndarray], part: str, top: int = 2) -> Tuple[float, float]:
    v, e = np.asarray(r[part])[-top:], np.asarray(r[f"{part}_err"])[-top:]
    return float(np.mean(v)), float(np.sqrt(np.sum(e**2)) / v.size)


def finite_predicted(ratios: Mapping[str, Mapping[str, np.ndarray]], n_test: Optional[int]) -> Dict[str, str]:
    """Finite-width ε_L predicted by the infinite-width one, part by part at the same N_T.

    The floor ratio √(A_fin/A_inf) and the population ratio √(B_fin/B_inf) averaged over the two largest N_D
    (`plateau.part_ratios`); a part agrees when its ratio is within PULL standard errors of one.

    Args:
        ratios: task name -> its `plateau.part_ratios` ('floor', 'floor_err', 'population', 'population_err'
            per N_D).
        n_test: N_T, the number of test points.

    Returns:
        The row {'finding', 'numbers', 'verdict'}; 'not tested' without ratios.
    """
    if not ratios:
        return _row("finite-width ε_L ≈ infinite-width ε_L", "no finite-width results with the split",
                    "not tested")
    parts, ok, bad = [], [], []
    for name, r in ratios.items():
        f, fe = _mean_top(r, "floor")
        p, pe = _mean_top(r, "population")
        parts.append(f"{name}: floor {format_pm(f, fe)}, population {format_pm(p, pe)}")
        good = abs(f - 1) <= PULL * fe and np.isfinite(p) and abs(p - 1) <= PULL * pe
        (ok if good else bad).append(name)
    numbers = f"ratios finite / infinite at the two largest N_D, N_T = {n_test:,}: " + "; ".join(parts)
    verdict = ("holds on every task" if not bad else "does not hold on any task" if not ok else
               f"holds on {_names(ok)}, not on {_names(bad)}")
    return _row("finite-width ε_L ≈ infinite-width ε_L", numbers, verdict)


ALIKE = 0.1
"""Two exponents within this relative difference (or PULL standard errors) count as scaling alike."""


def ntk_like_nngp(alphas: Mapping[str, Tuple[Tuple[float, float], Tuple[float, float]]], where: str) -> Dict[str, str]:
    """The NTK ensemble's α against the NNGP posterior's, per task.

    Alike when they differ by at most ALIKE of α_NTK or PULL combined standard errors.

    Args:
        alphas: task name -> ((α_NTK, err), (α_NNGP, err)).
        where: what the exponents are, put before the numbers, e.g. "exponent α of μ_L".

    Returns:
        The row {'finding', 'numbers', 'verdict'}.
    """
    same, differ, parts = [], [], []
    for name, ((a, ae), (b, be)) in alphas.items():
        err = np.hypot(ae, be) if np.isfinite(ae) and np.isfinite(be) else 0.0
        parts.append(f"{name}: α {a:.3f} (NTK) vs {b:.3f} (NNGP)")
        (same if abs(a - b) <= max(PULL * err, ALIKE * abs(a)) else differ).append(name)
    verdict = ("holds on every task" if not differ else "does not hold on any task" if not same else
               f"holds on {_names(same)}, not on {_names(differ)}")
    return _row("the NTK ensemble scales like the NNGP posterior", f"{where}: " + "; ".join(parts), verdict)


__all__ = ["ALIKE", "DRIFT_TOL", "PULL", "finite_predicted", "ntk_like_nngp", "plateau_finite", "plateau_infinite",
           "power_laws"]

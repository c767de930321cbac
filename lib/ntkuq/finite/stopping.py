"""When a trained ensemble has converged: a stopping rule measured on the members' mean training loss.

The rule: train at least `min_steps` (the infinite-width T, and never less than the warmup), then check at
steps s_0 < s_1 < ... (each about 4/3 of the one before, the cap last) whether the members' mean training loss
changed by less than `rtol` (relative) over the last quarter of the steps, from s - floor(s / 4) to s, or has
fallen below `atol` times its value at step 0 (a loss that falls to zero exponentially, as an interpolating
network's does, keeps a relative drift of order one however settled its predictions); stop at the first check
that passes.  A run that reaches the cap without passing is "not converged", and says so.

The drift recorded is (L(s - floor(s / 4)) - L(s)) / L(s): positive while the loss is still falling.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ntkuq._src.checks import check_fraction, check_int

QUARTER = 4
"""The drift is measured over the last 1 / QUARTER of the steps."""


@dataclass(frozen=True)
class StopRule:
    """Stop training once the members' mean training loss moved by less than `rtol` over the last quarter.

    Attributes:
        rtol: the relative tolerance on the change of the mean training loss, in (0, 1) (default 0.01).
        min_steps: train at least this many steps (the infinite-width T; the trainer also waits for the
            warmup), an integer >= 0 (default 0).
        atol: also passed once the mean training loss is below atol times its value at step 0, in (0, 1)
            (default 1e-4).

    The cap is the trainer's `steps`: a run that has not passed the check by then stops there, "not
    converged".

    Raises:
        ValueError: rtol or atol not in (0, 1), or min_steps < 0.
    """

    rtol: float = 0.01
    min_steps: int = 0
    atol: float = 1e-4

    def __post_init__(self) -> None:
        object.__setattr__(self, "rtol", check_fraction(self.rtol, "rtol"))
        object.__setattr__(self, "min_steps", check_int(self.min_steps, "min_steps", minimum=0))
        object.__setattr__(self, "atol", check_fraction(self.atol, "atol"))

    def passes(self, before: float, after: float, initial: float) -> bool:
        """Whether a check passes: abs(relative_fall(before, after)) < rtol, or after < atol * initial.

        Args:
            before: the mean training loss at the start of the last quarter.
            after: the mean training loss at the check.
            initial: the mean training loss at step 0.

        Returns:
            True when the check passes; never for non-finite losses.
        """
        if not (np.isfinite(after) and np.isfinite(before)):
            return False
        return bool(abs(relative_fall(before, after)) < self.rtol or after < self.atol * initial)

    def describe(self, cap: int) -> str:
        """The rule in words, for tables and reports.

        Args:
            cap: the most steps allowed.

        Returns:
            e.g. "mean train loss within 1 % over the last quarter (or below 0.0001 of its start), after >= 800
            steps, cap 20000".
        """
        return (f"mean train loss within {100 * self.rtol:g} % over the last quarter (or below {self.atol:g} of "
                f"its start), after >= {self.min_steps} steps, cap {cap}")


@dataclass(frozen=True)
class StopRecord:
    """What the rule did: the steps taken, the last drift measured, and the dead-unit share at the end.

    Attributes:
        rule: the StopRule applied (its min_steps raised to the warmup if that was longer).
        cap: the most steps allowed (the trainer's `steps`).
        steps: the steps taken (the largest over the chunks of members trained apart).
        drift: the relative fall of the mean training loss over the last quarter at the last check (the
            largest in magnitude over chunks); NaN if the losses were not finite.
        converged: True when every chunk passed the check before or at the cap.
        dead_share: the share of the last hidden layer's units dead on the training inputs at the end (mean
            over members).
    """

    rule: StopRule
    cap: int
    steps: int
    drift: float
    converged: bool
    dead_share: float

    def as_dict(self) -> Dict[str, object]:
        """A JSON-ready dict for result rows: the rule's fields, steps, drift, converged and dead_share.

        Returns:
            The dict (drift None when it is not finite).
        """
        return {"rule": "train-loss drift", "rtol": float(self.rule.rtol), "atol": float(self.rule.atol),
                "min_steps": int(self.rule.min_steps),
                "cap": int(self.cap), "steps": int(self.steps),
                "drift": float(self.drift) if np.isfinite(self.drift) else None,
                "converged": bool(self.converged), "dead_share": float(self.dead_share)}


def describe_stop(record: Optional[Mapping[str, object]]) -> str:
    """What ended a training run under a stop rule, in words.

    Args:
        record: a `StopRecord.as_dict()` (as result rows store it), or None for a run without a rule.

    Returns:
        '' for None; else 'converged: the loss moved < 1% over the last quarter', 'converged: the loss fell below
        0.0001 of its start' or 'NOT converged: stopped at the cap of N steps'.

    Raises:
        ValueError: a record without the fields of `StopRecord.as_dict`.
    """
    if record is None:
        return ""
    missing = {"converged", "drift", "rtol", "atol", "cap"} - set(record)
    if missing:
        raise ValueError(f"record: expected a StopRecord.as_dict(), missing {sorted(missing)}")
    if not record["converged"]:
        return f"NOT converged: stopped at the cap of {int(record['cap']):,} steps"
    drift = record["drift"]
    if drift is not None and abs(float(drift)) < float(record["rtol"]):
        return f"converged: the loss moved < {float(record['rtol']):.0%} over the last quarter"
    return f"converged: the loss fell below {float(record['atol']):g} of its start"


def check_steps(rule: StopRule, cap: int, warmup: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The steps at which the rule checks, and for each the start of its last quarter.

    Checks start at max(min_steps, warmup, 1) and grow by a third each time (at least one step); the cap is
    always the last check.

    Args:
        rule: the StopRule.
        cap: the most steps allowed, an integer >= 1.
        warmup: the trainer's warmup W >= 0; no check falls before it.

    Returns:
        (checks, starts): int64 arrays of equal length, checks increasing and ending at the cap,
        starts = checks - checks // 4.
    """
    cap = check_int(cap, "cap", minimum=1)
    warmup = check_int(warmup, "warmup", minimum=0)
    s = min(max(rule.min_steps, warmup, 1), cap)
    checks = []
    while s < cap:
        checks.append(s)
        s += max(1, -(-s // 3))
    checks.append(cap)
    c = np.asarray(checks, dtype=np.int64)
    return c, c - c // QUARTER


def relative_fall(before: float, after: float) -> float:
    """(before - after) / after: the relative fall of a loss; NaN when either is not finite or after is 0.

    Args:
        before: the loss at the start of the interval.
        after: the loss at its end.

    Returns:
        The relative fall (positive while the loss falls).
    """
    if not (np.isfinite(before) and np.isfinite(after)) or after == 0:
        return float("nan")
    return float((before - after) / after)


def first_pass(rule: StopRule, steps, mean_train, cap: int, warmup: int = 0) -> Optional[Tuple[int, float]]:
    """The first check at which the rule passes on a recorded mean training loss, as `train_ensemble` applies it.

    For a run trained past the rule (e.g. with a rule that never passes, which records every check step): the
    step at which a run under `rule` with this cap would have stopped.  Only the checks up to the last recorded
    step are looked at (the cap's own check too when it was reached).

    Args:
        rule: the StopRule (its min_steps as the trainer used it).
        steps: the recorded steps, increasing from 0 (`EnsembleResult.steps`).
        mean_train: the members' mean training loss at those steps.
        cap: the cap the rule is applied with (it sets the check steps with min_steps and warmup).
        warmup: the trainer's warmup (no check before it).

    Returns:
        (step, drift) of the first passing check, drift the relative fall over its last quarter; None when no
        check up to the last recorded step passes.

    Raises:
        ValueError: steps and mean_train of different lengths, steps not increasing from 0, or a check step up
            to the last recorded step (or the start of its quarter) that was not recorded.
    """
    steps = np.asarray(steps, dtype=np.int64)
    mean = np.asarray(mean_train, dtype=np.float64)
    if steps.ndim != 1 or steps.shape != mean.shape or steps.size < 1 or steps[0] != 0 or np.any(np.diff(steps) <= 0):
        raise ValueError(f"steps, mean_train: expected increasing steps from 0 and one loss per step, got shapes "
                         f"{steps.shape} and {mean.shape}")
    at = {int(s): j for j, s in enumerate(steps)}
    for c, q in zip(*check_steps(rule, cap, warmup)):
        if c > steps[-1]:
            break
        if int(c) not in at or int(q) not in at:
            raise ValueError(f"steps: expected the check step {int(c)} and the start of its quarter {int(q)} among "
                             "the recorded steps (train past the rule with a rule that never passes to record them)")
        if rule.passes(mean[at[int(q)]], mean[at[int(c)]], mean[0]):
            return int(c), relative_fall(mean[at[int(q)]], mean[at[int(c)]])
    return None


__all__ = ["QUARTER", "StopRecord", "StopRule", "check_steps", "describe_stop", "first_pass", "relative_fall"]

"""Sentences for the book's pages, built from result tables so that a rerun keeps them true (book-only)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ntkuq.book.plots import TASK_NAMES, format_pm
from ntkuq.study.width_parts import WidthParts


def plateau_summary(table: Sequence[dict], missing: Sequence[str] = (), draws_wanted: int = 3) -> str:
    """Sentences (MyST markdown) on the eps_L plateau verdicts of `fit_row` rows.

    How many curves reach the plateau, which still fall or rise, the range of slopes (and of 'last_slope',
    `last_slope`, if every row has it), the tasks in `missing` that have no points, and the tasks with fewer
    than `draws_wanted` draws.

    Args:
        table: `fit_row` rows that carry 'verdict' (from `scaling.plateau_verdict`) and 'draws'.
        missing: the tasks that have no points (default none).
        draws_wanted: the number of training-set draws below which a task's errors are called rough
            (default 3).

    Returns:
        The sentences; "No points are committed yet." for an empty table.
    """
    if not table:
        return "No points are committed yet."
    def names(verdict):
        return [f"{r['task']} {r['curve']}" for r in table if r["verdict"] == verdict]
    flat, falling, rising = names("plateau"), names("still falling"), names("rising")
    parts = [f"{len(flat)} of the {len(table)} curves reach the plateau by this test ({', '.join(flat)})" if flat
             else f"None of the {len(table)} curves reaches the plateau by this test"]
    if falling:
        parts.append(f"{len(falling)} still {'falls' if len(falling) == 1 else 'fall'} ({', '.join(falling)})")
    if rising:
        parts.append(f"{len(rising)} {'rises' if len(rising) == 1 else 'rise'} ({', '.join(rising)})")
    slopes = [r["eps_slope"] for r in table]
    text = "; ".join(parts) + (f". The slopes of $\\epsilon_\\mathcal{{L}}$ over the largest decade run from "
                               f"{min(slopes):.2f} to {max(slopes):.2f}.")
    if all("last_slope" in r for r in table):
        last = [r["last_slope"] for r in table]
        text += f" Between the two largest sizes they run from {min(last):.2f} to {max(last):.2f}."
    if missing:
        text += f" No points of {' or '.join(missing)} are committed yet."
    few = [t for t in dict.fromkeys(r["task"] for r in table) if any(
        int(r["draws"]) < draws_wanted for r in table if r["task"] == t)]
    if few:
        names = few[0] if len(few) == 1 else ", ".join(few[:-1]) + " and " + few[-1]
        text += (f" {names} {'rests' if len(few) == 1 else 'rest'} on fewer than {draws_wanted} "
                 "training-set draws, so the errors there are rough (with one draw the points have no error "
                 "bars, and the fits' errors come only from the scatter about the fit).")
    return text


def floor_share_clause(parts: WidthParts, k: int = 0) -> Tuple[str, Optional[str]]:
    """Which part of eps_L^2's excess over infinite width is the floor's, at one width of a width study, in words.

    Args:
        parts: the width study (`ntkuq.study.width_parts`).
        k: the index of the width (default 0, the narrowest).

    Returns:
        (clause, who).  The clause is "X +- dX % of the excess of ε_L² is the floor's" when the share is in
        [0, 1]; "of the excess of ε_L², +a is the floor's and +b the population part's" when one part is below
        its infinite-width value; "there is no excess of ε_L² to split" when eps_L^2 is not above it.  who is
        'population' or 'floor' when that part carries more than half the excess by more than two standard errors
        (or is the only part above its infinite-width value), 'both' when neither does or the share's error is
        unknown, None without an excess.

    Raises:
        IndexError: k is not an index of parts.widths.
    """
    share, err = float(parts.floor_share()[k]), float(parts.floor_share_err()[k])
    if not np.isfinite(share):
        return "there is no excess of ε_L² to split", None
    if not 0 <= share <= 1:  # one part fell below its infinite-width value: say by how much, not a share
        floor, population = (float(v[k]) for v in parts.excess())
        return (f"of the excess of ε_L², {floor:+.2g} is the floor's and {population:+.2g} the population part's",
                "floor" if share > 1 else "population")
    if not np.isfinite(err):  # rows without errors: the share, but no verdict
        return f"{100 * share:.0f} % of the excess of ε_L² is the floor's (no error known)", "both"
    who = "population" if share + 2 * err < 0.5 else "floor" if share - 2 * err > 0.5 else "both"
    return f"{format_pm(100 * share, 100 * err)} % of the excess of ε_L² is the floor's", who


def trajectory_summary(record: dict, passed: Optional[int]) -> str:
    """One sentence on a run trained past the stopping rule (scripts/trajectory.py), beside the infinite width.

    Where the rule passed, what mu_L and eps_L were there and at the last step, each beside the infinite-width
    ensemble after the same steps.

    Args:
        record: the run's record ('task', 'n_train', 'steps', 'mu', 'eps', 'eps_err', 'mu_inf', 'eps_inf',
            'train_loss', 'min_steps', 'warmup').
        passed: the step where the rule passes (`ntkuq.finite.first_pass`), one of record['steps'], or None.

    Returns:
        The sentence, ending with a full stop.

    Raises:
        ValueError: passed is not one of the recorded steps.
    """
    steps = list(record["steps"])
    if passed is not None and passed not in steps:
        raise ValueError(f"passed: expected one of the recorded steps, got {passed!r}")
    last = len(steps) - 1
    head = f"On {TASK_NAMES.get(record['task'], record['task'])} at N_D = {record['n_train']:,}"

    def state(j: int) -> str:
        return (f"ε_L = {format_pm(record['eps'][j], record['eps_err'][j])} (infinite width after the same steps: "
                f"{record['eps_inf'][j]:.3g}) and μ_L = {record['mu'][j]:.3g} (infinite width: "
                f"{record['mu_inf'][j]:.3g})")
    start = max(record["min_steps"], record["warmup"])  # the rule's first check, recorded like every check
    early = (f", at the rule's first check (step {start:,}) {state(steps.index(start))}"
             if start in steps and (passed is None or passed > start) else "")
    if passed is None:
        return (f"{head}{early}; the rule does not pass within the {steps[-1]:,} steps trained, and at the last "
                f"step {state(last)}.")
    j = steps.index(passed)
    if early:
        text = (f"{head}{early}; the rule passes at step {passed:,}, with {state(j)}: ε_L changed by a factor of "
                f"{record['eps'][j] / record['eps'][steps.index(start)]:.2f} between the two")
    else:
        text = f"{head} the rule passes at step {passed:,} (its first check), with {state(j)}"
    if last > j:
        text += (f"; trained on to {steps[last]:,} steps, {state(last)}: ε_L changed by a factor of "
                 f"{record['eps'][last] / record['eps'][j]:.2f} after the pass and the training loss by "
                 f"{record['train_loss'][last] / record['train_loss'][j]:.2f}")
    return text + "."


__all__ = ["floor_share_clause", "plateau_summary", "trajectory_summary"]

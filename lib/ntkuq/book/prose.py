"""Sentences for the book's pages, built from result tables so that a rerun keeps them true (book-only)."""
from __future__ import annotations

from typing import Sequence


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


__all__ = ["plateau_summary"]

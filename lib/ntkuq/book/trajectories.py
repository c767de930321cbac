"""Runs trained past the stopping rule (scripts/trajectory.py): read back, with the step where the rule passes."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

from ntkuq.finite.stopping import StopRule, first_pass

FIELDS = ("task", "n_train", "steps", "train_loss", "mu", "eps", "mu_inf", "eps_inf", "min_steps", "warmup", "rule")
"""The fields a trajectory record must have."""


def committed_trajectories(folder: Union[str, os.PathLike]) -> List[Tuple[dict, Optional[int]]]:
    """The trajectories in a folder, each with the step where its study's stopping rule passes.

    Args:
        folder: a folder of scripts/trajectory.py records (*.json); a missing folder has none.

    Returns:
        (record, pass step or None) per file, in file-name order; the pass step is `ntkuq.finite.first_pass` of
        the study's rule (record['rule']: converge and max_steps; record['min_steps'], record['warmup']) on the
        members' mean training loss.

    Raises:
        ValueError: a file that is not such a record (its name and what is missing are said).
    """
    folder = Path(folder)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{path.name}: expected a trajectory record (JSON), got {type(err).__name__}: {err}") \
                from None
        missing = [k for k in FIELDS if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise ValueError(f"{path.name}: expected a trajectory record of scripts/trajectory.py, missing {missing}")
        rule = StopRule(rec["rule"]["converge"], rec["min_steps"])
        found = first_pass(rule, rec["steps"], rec["train_loss"], rec["rule"]["max_steps"], rec["warmup"])
        out.append((rec, None if found is None else found[0]))
    return out


__all__ = ["FIELDS", "committed_trajectories"]

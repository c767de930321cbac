"""The book's own tooling, not needed to use the library.

The chapter runner (`python -m ntkuq.book.runner`, not imported here) and presets, the figures, and the
sentences that the chapters build from their numbers.
"""
from ntkuq.book.findings import (
                                 ALIKE,
                                 DRIFT_TOL,
                                 PULL,
                                 finite_predicted,
                                 ntk_like_nngp,
                                 plateau_finite,
                                 plateau_infinite,
                                 power_laws,
)
from ntkuq.book.plots import (
                               COLUMN_INCHES,
                               MIN_FONT_PT,
                               NOT_CONVERGED,
                               TASK_COLORS,
                               TASK_NAMES,
                               fit_column,
                               format_pm,
                               plateau_figure,
                               scaling_figure,
                               table_markdown,
                               trajectory_figure,
)
from ntkuq.book.presets import (
                                 EXTRA_TYPES,
                                 ROOT,
                                 RUNNER_PARAMETERS,
                                 chapters,
                                 check_writable,
                                 has_code,
                                 load_preset,
                                 parameter_defaults,
                                 repo_path,
                                 validate_preset,
)
from ntkuq.book.prose import floor_share_clause, plateau_summary, trajectory_summary
from ntkuq.book.trajectories import committed_trajectories

__all__ = ["ALIKE", "COLUMN_INCHES", "DRIFT_TOL", "EXTRA_TYPES", "MIN_FONT_PT", "NOT_CONVERGED", "PULL", "ROOT",
           "RUNNER_PARAMETERS", "TASK_COLORS", "TASK_NAMES", "chapters", "check_writable", "committed_trajectories",
           "finite_predicted", "fit_column", "floor_share_clause", "format_pm", "has_code", "load_preset",
           "ntk_like_nngp", "parameter_defaults", "plateau_figure", "plateau_finite", "plateau_infinite",
           "plateau_summary", "power_laws", "repo_path", "scaling_figure", "table_markdown", "trajectory_figure",
           "trajectory_summary", "validate_preset"]

"""The book's own tooling, not needed to use the library.

The chapter runner and presets, the figures, and the sentences that the chapters build from their numbers.
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
from ntkuq.book.plots import TASK_COLORS, TASK_NAMES, format_pm, plateau_figure, scaling_figure, table_markdown
from ntkuq.book.presets import (
                                 EXTRA_TYPES,
                                 ROOT,
                                 RUNNER_PARAMETERS,
                                 chapters,
                                 check_writable,
                                 has_code,
                                 load_preset,
                                 parameter_defaults,
                                 validate_preset,
)
from ntkuq.book.prose import plateau_summary
from ntkuq.book.runner import POINT_CHAPTERS, compute_cells, execute_chapter, main, run_points, run_preset, write_table

__all__ = ["ALIKE", "DRIFT_TOL", "EXTRA_TYPES", "POINT_CHAPTERS", "PULL", "ROOT", "RUNNER_PARAMETERS",
           "TASK_COLORS", "TASK_NAMES", "chapters", "check_writable", "compute_cells", "execute_chapter",
           "finite_predicted", "format_pm", "has_code", "load_preset", "main", "ntk_like_nngp",
           "parameter_defaults", "plateau_figure", "plateau_finite", "plateau_infinite", "plateau_summary",
           "power_laws", "run_points", "run_preset", "scaling_figure", "table_markdown", "validate_preset",
           "write_table"]

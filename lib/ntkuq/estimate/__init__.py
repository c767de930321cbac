"""`ntkuq estimate`: the spread of the test loss for a user's own data.

Exact infinite-width statistics, their cost, the report, the figure and the command line.
"""
from ntkuq.estimate.cli import FIGURE_FORMATS, build_parser, main, run_estimate
from ntkuq.estimate.core import QUANTILE_LEVELS, estimate, estimate_files
from ntkuq.estimate.cost import (
                                 KERNEL_FLOPS,
                                 OVERHEAD_S,
                                 QUANTILE_MAX_TEST,
                                 Cost,
                                 auto_sizes,
                                 check_budget,
                                 cost_estimate,
)
from ntkuq.estimate.ensemble import EnsembleOptions, compare_ensemble
from ntkuq.estimate.report import BELOW, PLATEAU_TOL, Estimate, estimate_figure, loss_units, summary_text

__all__ = ["BELOW", "Cost", "EnsembleOptions", "Estimate", "FIGURE_FORMATS", "KERNEL_FLOPS", "OVERHEAD_S",
           "PLATEAU_TOL", "QUANTILE_LEVELS", "QUANTILE_MAX_TEST", "auto_sizes", "build_parser", "check_budget",
           "compare_ensemble", "cost_estimate", "estimate", "estimate_figure", "estimate_files", "loss_units",
           "main", "run_estimate", "summary_text"]

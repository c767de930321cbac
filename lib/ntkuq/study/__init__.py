"""Studies over training-set sizes: drivers, the result store, tables and fits.

Drivers compute and store points (resumable); tables, power-law fits and the plateau model of eps_L read them.
"""
from ntkuq.study.drivers import METHOD_LABEL, finite_width_study, infinite_width_study
from ntkuq.study.forecast import Forecast, forecast
from ntkuq.study.plateau_model import (
                                       TEST_SIZES,
                                       PlateauModel,
                                       SplitCurve,
                                       fit_plateau,
                                       model_table,
                                       part_ratios,
                                       row_parts,
                                       split_curve,
)
from ntkuq.study.pointfiles import BAD_SUFFIX, CHECKSUM_FIELD, canonical, checksum, read_point, reseal, seal, verify
from ntkuq.study.scaling import (
                                       PLATEAU_SLOPE,
                                       Plateau,
                                       PowerLaw,
                                       bootstrap_curves,
                                       eps_of,
                                       fit_power_law,
                                       local_exponents,
                                       plateau,
                                       plateau_verdict,
)
from ntkuq.study.store import (
                                       COLUMNS,
                                       INFINITE_WIDTH,
                                       T_INFINITY,
                                       ResultRow,
                                       ResultStore,
                                       environment,
                                       point_key,
                                       read_csv,
                                       to_csv,
)
from ntkuq.study.tables import (
                                       committed_rows,
                                       curves,
                                       fit_row,
                                       fits,
                                       last_slope,
                                       model_verdicts,
                                       not_converged,
                                       select,
                                       verdict_curves,
)
from ntkuq.study.width_parts import PARTS, InverseWidthFit, WidthParts, fit_inverse_width, width_groups, width_parts

__all__ = ["BAD_SUFFIX", "CHECKSUM_FIELD", "COLUMNS", "Forecast", "INFINITE_WIDTH", "InverseWidthFit", "METHOD_LABEL",
           "PARTS", "PLATEAU_SLOPE", "Plateau", "PlateauModel", "PowerLaw", "ResultRow", "ResultStore", "SplitCurve",
           "TEST_SIZES", "T_INFINITY", "WidthParts", "bootstrap_curves", "canonical", "checksum", "committed_rows",
           "curves", "environment", "eps_of", "finite_width_study", "fit_inverse_width", "fit_plateau",
           "fit_power_law", "fit_row", "fits", "forecast", "infinite_width_study", "last_slope", "local_exponents",
           "model_table", "model_verdicts", "not_converged", "part_ratios", "plateau", "plateau_verdict", "point_key",
           "read_csv", "read_point", "reseal", "row_parts", "seal", "select", "split_curve", "to_csv",
           "verdict_curves", "verify", "width_groups", "width_parts"]

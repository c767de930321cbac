"""Infinite width: kernels, predictions and exact statistics of the test loss.

The NNGP and NTK kernels, the trained ensemble's Gaussian prediction, the exact statistics of the test loss
(with its two parts and its distribution), nested sweeps over training-set sizes, steps to convergence, and
learning curves predicted from the kernel's spectrum.
"""
from ntkuq.infinite.convergence import Convergence, converged_steps, convergence_bytes, deviation_curve
from ntkuq.infinite.distribution import GeneralizedChi2, loss_distribution, sample_test_losses
from ntkuq.infinite.gains import (
                                  OPTIMIZERS,
                                  check_optimizer,
                                  gain,
                                  max_stable_eta,
                                  ramp,
                                  residual_factor,
                                  small_a_limit,
                                  stability_limit,
                                  stable_eta,
                                  unstable_gd_gain,
)
from ntkuq.infinite.kernels import (
                                  N_QUAD,
                                  SQ_NORM_ROWS,
                                  Kernels,
                                  auto_nodes,
                                  check_finite_kernels,
                                  diag_layers,
                                  kernel_diag,
                                  kernel_matrices_bytes,
                                  kernel_tile,
                                  kernels,
                                  kernels_bytes,
                                  max_variance,
                                  require_kernel_matrices,
                                  sq_norms,
)
from ntkuq.infinite.learning_curves import (
    Calibration,
    LearningCurve,
    SpectralExponents,
    Spectrum,
    calibrate_extension,
    extend_spectrum,
    learning_curve,
    solve_kappa,
    spectral_exponents,
    spectrum,
    spectrum_bytes,
    spectrum_from_kernels,
)
from ntkuq.infinite.lossstats import (
                                  LossStats,
                                  eps_floor,
                                  eps_for_test_size,
                                  eps_population,
                                  loss_stats,
                                  uniform_floor,
                                  var_for_test_size,
)
from ntkuq.infinite.nested import sweep_flops, sweep_peak_words, sweep_stats, times_factor_inverse, train_kernels
from ntkuq.infinite.predict import (
                                  ILL_CONDITIONED,
                                  EnsemblePrediction,
                                  TrainTestKernels,
                                  assemble_prediction,
                                  nngp_posterior,
                                  ntk_prediction,
                                  predict,
                                  train_test_kernels,
)
from ntkuq.infinite.quadrature import QUAD_HALF_WIDTH, QUAD_MAX_NODES, QUAD_STEP, moments, quad_nodes
from ntkuq.infinite.sweep import (
                                  SweepPoint,
                                  direct_sweep_bytes,
                                  nested_sweep,
                                  nested_sweep_direct,
                                  require_sweep_memory,
                                  sweep_bytes,
)

__all__ = ["Calibration", "Convergence", "EnsemblePrediction", "GeneralizedChi2", "ILL_CONDITIONED", "Kernels",
           "LearningCurve", "LossStats", "N_QUAD", "OPTIMIZERS", "QUAD_HALF_WIDTH", "QUAD_MAX_NODES", "QUAD_STEP",
           "SQ_NORM_ROWS", "SpectralExponents", "Spectrum", "SweepPoint", "TrainTestKernels", "assemble_prediction",
           "auto_nodes", "calibrate_extension", "check_finite_kernels", "check_optimizer", "converged_steps",
           "convergence_bytes", "deviation_curve", "diag_layers", "direct_sweep_bytes", "eps_floor",
           "eps_for_test_size", "eps_population", "extend_spectrum", "gain", "kernel_diag", "kernel_matrices_bytes",
           "kernel_tile", "kernels", "kernels_bytes", "learning_curve", "loss_distribution", "loss_stats",
           "max_stable_eta", "max_variance", "moments", "nested_sweep", "nested_sweep_direct", "nngp_posterior",
           "ntk_prediction", "predict", "quad_nodes", "ramp", "require_kernel_matrices", "require_sweep_memory",
           "residual_factor", "sample_test_losses", "small_a_limit", "solve_kappa", "spectral_exponents", "spectrum",
           "spectrum_bytes", "spectrum_from_kernels", "sq_norms", "stability_limit", "stable_eta", "sweep_bytes",
           "sweep_flops", "sweep_peak_words", "sweep_stats", "times_factor_inverse", "train_kernels",
           "train_test_kernels", "uniform_floor", "unstable_gd_gain", "var_for_test_size"]

"""Finite width: MLPs in plain JAX, trained ensembles and width sweeps.

Ensembles are trained from independent initializations; their statistics carry bootstrap errors over members.
"""
from ntkuq.finite.checkpoint import Checkpoint
from ntkuq.finite.ensembles import record_steps, train_ensemble
from ntkuq.finite.memory import (
                                    CHUNK_MEMORY_BYTES,
                                    ensemble_bytes,
                                    ensemble_member_bytes,
                                    ensemble_seconds,
                                    require_ensemble,
                                    require_ensemble_memory,
)
from ntkuq.finite.network import (
                                    alive_fraction,
                                    apply_mlp,
                                    empirical_nngp,
                                    empirical_ntk,
                                    init_mlp,
                                    layer_sizes,
                                    learning_rate_scales,
)
from ntkuq.finite.sharding import AXIS, member_mesh, padded_count, replicate, shard_members, to_host
from ntkuq.finite.span import SPAN_OPTIMIZERS, SpanBasis, reduce_inputs, reduce_members, span_basis, use_span
from ntkuq.finite.stats import EnsembleResult, EnsembleStats, LossSplit, bootstrap_stats, loss_split
from ntkuq.finite.stopping import (
                                    QUARTER,
                                    StopRecord,
                                    StopRule,
                                    check_steps,
                                    describe_stop,
                                    first_pass,
                                    relative_fall,
)
from ntkuq.finite.training import (
                                    EXACT_EIGEN_MAX,
                                    FULL_BATCH,
                                    OPTIMIZERS,
                                    default_eta,
                                    init_members,
                                    make_optimizer,
                                    make_step,
                                    ntk_lambda_max,
                                    run_steps,
                                    shuffle_key,
                                    stable_eta_max,
                                    train_loss,
                                    warmup_factor,
)
from ntkuq.finite.widths import STATS, WidthFit, WidthSweep, fit_widths, mean_deviation_slopes, width_sweep

__all__ = ["AXIS", "CHUNK_MEMORY_BYTES", "Checkpoint", "EXACT_EIGEN_MAX", "EnsembleResult", "EnsembleStats",
           "FULL_BATCH", "LossSplit", "OPTIMIZERS", "QUARTER", "SPAN_OPTIMIZERS", "STATS", "SpanBasis", "StopRecord",
           "StopRule", "WidthFit", "WidthSweep", "alive_fraction", "apply_mlp", "bootstrap_stats", "check_steps",
           "default_eta", "describe_stop", "empirical_nngp", "empirical_ntk", "ensemble_bytes", "ensemble_member_bytes",
           "ensemble_seconds", "first_pass", "fit_widths", "init_members", "init_mlp", "layer_sizes",
           "learning_rate_scales", "loss_split", "make_optimizer", "make_step", "mean_deviation_slopes", "member_mesh",
           "ntk_lambda_max", "padded_count", "record_steps", "reduce_inputs", "reduce_members", "relative_fall",
           "replicate", "require_ensemble", "require_ensemble_memory", "run_steps", "shard_members", "shuffle_key",
           "span_basis", "stable_eta_max", "to_host", "train_ensemble", "train_loss", "use_span", "warmup_factor",
           "width_sweep"]

"""ntkuq: uncertainty quantification from scaling laws in deep neural networks.

The spread of the test loss over random initializations of an MLP ensemble: exact at infinite width from
the NNGP and NTK kernels (`ntkuq.infinite`), measured on trained ensembles at finite width
(`ntkuq.finite`), on the paper's tasks or a user's data (`ntkuq.data`), studied over training-set sizes
(`ntkuq.study`) and estimated for one's own data (`ntkuq.estimate`).  Imports point one way:
errors and the private `_src` <- spec <- data <- infinite <- finite <- study <- estimate <- book.

Float64.  The infinite-width computations (kernels, Cholesky solves, loss statistics) need 64-bit
floats, which JAX switches off by default.  Importing ntkuq changes no global setting; call

    import ntkuq
    ntkuq.enable_float64()

once, before any computation (every chapter does so in its import cell, tests/conftest.py for the
tests, the `ntkuq` command for itself).  The float64-requiring functions check it: each validates
its inputs with the library's input checks, which raise a RuntimeError naming this call when JAX is
still in 32-bit mode, instead of computing silently in float32.
"""
import warnings

# tqdm.auto (imported by pooch) warns in notebook kernels without ipywidgets; its text bars work fine.
warnings.filterwarnings("ignore", message="IProgress not found")

from ntkuq import data, errors, estimate, finite, infinite, study  # noqa: E402
from ntkuq._src.checks import enable_float64  # noqa: E402
from ntkuq.data import TaskData, load  # noqa: E402
from ntkuq.errors import InputTypeError, TooLargeError  # noqa: E402
from ntkuq.estimate import Estimate, estimate_files  # noqa: E402
from ntkuq.finite import EnsembleResult, train_ensemble  # noqa: E402
from ntkuq.infinite import (  # noqa: E402
                            LossStats,
                            kernels,
                            loss_stats,
                            nested_sweep,
                            nngp_posterior,
                            ntk_prediction,
                            train_test_kernels,
)
from ntkuq.spec import ACTIVATIONS, MLPSpec  # noqa: E402
from ntkuq.study import finite_width_study, infinite_width_study  # noqa: E402

__all__ = ["ACTIVATIONS", "Estimate", "EnsembleResult", "InputTypeError", "LossStats", "MLPSpec", "TaskData",
           "TooLargeError", "data", "enable_float64", "errors", "estimate", "estimate_files", "finite",
           "finite_width_study", "infinite", "infinite_width_study", "kernels", "load", "loss_stats",
           "nested_sweep", "nngp_posterior", "ntk_prediction", "study", "train_ensemble", "train_test_kernels"]
__version__ = "0.1.0"

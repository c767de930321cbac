"""ntkuq: uncertainty quantification from scaling laws in deep neural networks.

Data flows one way: spec -> kernels -> dynamics -> lossstats -> scaling, with data and
finite-width ensembles feeding in.  Every function takes plain arrays and small dataclasses.

Float64.  The infinite-width computations (kernels, Cholesky solves, loss statistics) need 64-bit
floats, which JAX switches off by default.  Importing ntkuq changes no global setting; call

    import ntkuq
    ntkuq.enable_float64()

once, before any computation (every chapter does so in its import cell, tests/conftest.py for the
tests, the `ntkuq` command for itself).  The float64-requiring functions check it: each validates
its inputs with `checks.check_inputs`, which raises a RuntimeError naming this call when JAX is
still in 32-bit mode, instead of computing silently in float32.
"""
import warnings

import jax

# tqdm.auto (imported by pooch) warns in notebook kernels without ipywidgets; its text bars work fine.
warnings.filterwarnings("ignore", message="IProgress not found")

from .spec import ACTIVATIONS, MLPSpec  # noqa: E402


def enable_float64() -> None:
    """Switch JAX to 64-bit floats (``jax_enable_x64``), which the infinite-width computations require.

    Call it once, before creating any JAX array; arrays made earlier keep their 32-bit type."""
    jax.config.update("jax_enable_x64", True)


__all__ = ["ACTIVATIONS", "MLPSpec", "enable_float64"]
__version__ = "0.1.0"

"""ntkuq: uncertainty quantification from scaling laws in deep neural networks.

Data flows one way: spec -> kernels -> dynamics -> lossstats -> scaling, with data and
finite-width ensembles feeding in.  Every function takes plain arrays and small dataclasses.
"""
import warnings

import jax

jax.config.update("jax_enable_x64", True)
# tqdm.auto (imported by pooch) warns in notebook kernels without ipywidgets; its text bars work fine.
warnings.filterwarnings("ignore", message="IProgress not found")

from .spec import ACTIVATIONS, MLPSpec  # noqa: E402

__all__ = ["ACTIVATIONS", "MLPSpec"]
__version__ = "0.1.0"

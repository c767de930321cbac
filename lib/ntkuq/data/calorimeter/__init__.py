"""A GFlash-style simulated electromagnetic calorimeter, for the energy-regression task.

No calorimeter data set can be downloaded for this project, so electron showers are simulated with
the GFlash parametrization (Grindhammer and Peters, hep-ex/0001020), derived in the book's chapter
"The three tasks: MNIST, CIFAR-10 and a simulated calorimeter" (book/data.md).  By concern:

- `config`: `CalorimeterConfig` (material, beam) and its `Section` values (the ECAL, an optional HCAL).
- `gflash`: the parametrization's formulas (longitudinal and radial profiles, spot counts).
- `simulator`: `simulate` -> `Showers`, the visible cell energies of sampled showers.
- `cache`: `load_calorimeter`, the same showers cached on disk.
- `task`: `calorimeter_task`, the regression task (cell features, standardized energy targets).
- `analysis`: profiles, shower maximum, containment and resolution of simulated showers.

Everything public is importable from ``ntkuq.data.calorimeter`` itself.
"""
from ntkuq.data.calorimeter.analysis import (
                       containment_fraction,
                       expected_containment,
                       fit_resolution,
                       longitudinal_profile,
                       radial_profile,
                       shower_max_depth,
)
from ntkuq.data.calorimeter.cache import cache_key, default_cache_dir, load_calorimeter
from ntkuq.data.calorimeter.config import DEFAULT_ECAL, DEFAULT_HCAL, CalorimeterConfig, Section
from ntkuq.data.calorimeter.gflash import (
                       average_shower_max,
                       longitudinal_parameters,
                       mean_spot_count,
                       radial_cdf,
                       radial_coefficients,
                       radial_parameters,
                       radius_from_uniform,
                       sample_shower_parameters,
)
from ntkuq.data.calorimeter.simulator import CODE_VERSION, DEFAULT_CHUNK_SIZE, Showers, simulate
from ntkuq.data.calorimeter.task import calorimeter_task, cell_features

__all__ = [
    "CODE_VERSION", "DEFAULT_CHUNK_SIZE", "CalorimeterConfig", "Section", "DEFAULT_ECAL", "DEFAULT_HCAL",
    "Showers", "simulate", "load_calorimeter", "calorimeter_task", "cell_features", "default_cache_dir",
    "cache_key", "longitudinal_parameters", "sample_shower_parameters", "average_shower_max",
    "mean_spot_count", "radial_coefficients", "radial_parameters", "radial_cdf", "radius_from_uniform",
    "longitudinal_profile", "radial_profile", "shower_max_depth", "containment_fraction",
    "expected_containment", "fit_resolution",
]

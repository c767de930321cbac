"""Configuration of the simulated calorimeter: the material, the beam, and its sections.

A `Section` is one block of cells with its readout; the calorimeter has an ECAL section and
optionally an HCAL section directly behind it (`DEFAULT_ECAL`, `DEFAULT_HCAL`).  Both are values of
the same dataclass, configured twice.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

import numpy as np


def _real(obj, name: str, lower: float = 0.0, strict: bool = True, upper: Optional[float] = None) -> None:
    """Check that obj.name is a finite real number > lower (>= if not strict, <= upper if given); store it as float."""
    value = getattr(obj, name)
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a real number, got {value!r}") from None
    bad = not math.isfinite(value) or value < lower or (strict and value == lower)
    if upper is not None and value > upper:
        bad = True
    if bad:
        rel = ">" if strict else ">="
        rng = f" and <= {upper}" if upper is not None else ""
        raise ValueError(f"{name}: expected a finite number {rel} {lower}{rng}, got {value!r}")
    object.__setattr__(obj, name, value)


def _positive_int(obj, name: str) -> None:
    """Check that obj.name is a positive integer (not a bool); store it as int."""
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    object.__setattr__(obj, name, int(value))


def _bool(obj, name: str) -> None:
    """Check that obj.name is a bool (Python or numpy); store it as bool."""
    value = getattr(obj, name)
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected a bool, got {value!r}")
    object.__setattr__(obj, name, bool(value))


@dataclass(frozen=True)
class Section:
    """One calorimeter section: its cells and their readout.

    Geometry: n_cells x n_cells square cells of cell_size_mm, centred on the detector axis, and
    n_layers layers of layer_depth_x0 radiation lengths (of the shower's material: X0 and R_M stay
    those of `CalorimeterConfig`, a coarse approximation for a section of another material).
    Readout: only the sampling_fraction f_s (0 < f_s <= 1) of the deposited energy is seen; the
    visible sum fluctuates by stochastic_term / sqrt(E) (a_s in GeV^1/2, 0 for no sampling
    fluctuations; `ntkuq.data.calorimeter.simulator`, step 5); every cell gets Gaussian noise of
    noise_mev visible MeV (0 for none).  The fields are validated on construction.

    Attributes:
        n_cells: cells per transverse axis (a positive integer).
        cell_size_mm: the cells' side in mm (> 0).
        n_layers: the number of layers (a positive integer).
        layer_depth_x0: each layer's depth in radiation lengths (> 0).
        sampling_fraction: the visible share f_s of the deposited energy (0 < f_s <= 1).
        stochastic_term: a_s in GeV^1/2 (>= 0; 0 for no sampling fluctuations).
        noise_mev: the Gaussian noise of every cell in visible MeV (>= 0; 0 for none).
    """

    n_cells: int
    cell_size_mm: float
    n_layers: int
    layer_depth_x0: float
    sampling_fraction: float
    stochastic_term: float
    noise_mev: float

    def __post_init__(self) -> None:
        for name in ("n_cells", "n_layers"):
            _positive_int(self, name)
        for name in ("cell_size_mm", "layer_depth_x0"):
            _real(self, name)
        _real(self, "sampling_fraction", upper=1.0)
        for name in ("stochastic_term", "noise_mev"):
            _real(self, name, strict=False)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(n_cells, n_cells, n_layers): the cell array of one shower (x, y, layer)."""
        return (self.n_cells, self.n_cells, self.n_layers)

    @property
    def depth_x0(self) -> float:
        """Total depth in radiation lengths."""
        return self.n_layers * self.layer_depth_x0

    def replace(self, **changes) -> "Section":
        """A copy with some fields changed (validated again).

        Args:
            **changes: the fields to change and their new values.

        Returns:
            The new `Section`.
        """
        return dataclasses.replace(self, **changes)


_SECTION_FIELDS = frozenset(f.name for f in dataclasses.fields(Section))

DEFAULT_ECAL = Section(n_cells=25, cell_size_mm=5.1, n_layers=25, layer_depth_x0=1.0,
                       sampling_fraction=0.02, stochastic_term=0.12, noise_mev=0.01)
"""A tungsten-silicon sampling ECAL: 25 x 25 cells of 5.1 mm, 25 layers of 1 X0.  Its readout: f_s = 0.02
(0.5 mm Si behind 3.5 mm W sees about 2 % of a MIP's energy loss), a_s = 0.12 GeV^1/2 (in the range
of silicon-tungsten ECALs; CALICE: ~17 %), 0.01 visible MeV of noise (~1/10 of a MIP in 0.5 mm Si)."""

DEFAULT_HCAL = Section(n_cells=11, cell_size_mm=30.0, n_layers=10, layer_depth_x0=2.0,
                       sampling_fraction=0.05, stochastic_term=0.2, noise_mev=0.05)
"""A coarse HCAL behind the ECAL: 11 x 11 cells of 30 mm, 10 layers of 2 X0 (of the shower's material)."""


@dataclass(frozen=True)
class CalorimeterConfig:
    """Physical and geometrical parameters of the simulated calorimeter.

    Defaults: the `DEFAULT_ECAL` (tungsten-silicon, 25 x 25 cells of 5.1 mm, 25 layers of 1 X0),
    no HCAL, electrons of 10-100 GeV (uniform) hitting the centre of the central cell at normal
    incidence.

    The ECAL's fields can be read on the configuration itself (config.n_cells is
    config.ecal.n_cells, and so on), as the data chapter does.  The fields are validated on
    construction.

    Attributes:
        X0_mm: material (tungsten): radiation length (3.5 mm).
        moliere_radius_mm: material: R_M (9.3 mm).
        critical_energy_mev: material: E_c (8 MeV).
        Z: material: effective atomic number (74).
        energy_range: beam: (E_min, E_max) in GeV, energies uniform in it; E_min must be at least
            10 E_c (the GFlash fluctuation widths need ln(E/E_c) > 1.11).
        impact_jitter_mm: beam: Gaussian spread (per transverse axis) of the impact point; 0 = fixed.
        poisson_spots: showers: N_spot ~ Poisson(93 ln Z E^0.876) if True, else rounded to an integer.
        ecal: sections: the `Section` the electrons hit.
        hcal: sections: a `Section` directly behind the ECAL catching the energy that leaks out of its
            back (spots deeper than ecal.depth_x0), or None (the default).  True and False are
            accepted for `DEFAULT_HCAL` and None.
    """

    X0_mm: float = 3.5
    moliere_radius_mm: float = 9.3
    critical_energy_mev: float = 8.0
    Z: float = 74.0
    energy_range: Tuple[float, float] = (10.0, 100.0)
    impact_jitter_mm: float = 0.0
    poisson_spots: bool = True
    ecal: Section = DEFAULT_ECAL
    hcal: Union[Section, None, bool] = None

    def __post_init__(self) -> None:
        for name in ("X0_mm", "moliere_radius_mm", "critical_energy_mev"):
            _real(self, name)
        _real(self, "Z", lower=1.0, strict=False)
        _real(self, "impact_jitter_mm", strict=False)
        _bool(self, "poisson_spots")
        if not isinstance(self.ecal, Section):
            raise ValueError(f"ecal: expected a Section, got {self.ecal!r}")
        if isinstance(self.hcal, (bool, np.bool_)):
            object.__setattr__(self, "hcal", DEFAULT_HCAL if self.hcal else None)
        if self.hcal is not None and not isinstance(self.hcal, Section):
            raise ValueError(f"hcal: expected a Section, None or a bool, got {self.hcal!r}")
        try:
            lo, hi = (float(v) for v in self.energy_range)
        except (TypeError, ValueError):
            raise ValueError(f"energy_range: expected (E_min, E_max) in GeV, got {self.energy_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
            raise ValueError(f"energy_range: expected finite 0 < E_min <= E_max (GeV), got {self.energy_range!r}")
        # The fluctuation widths 1/(-1.4 + 1.26 ln y) need ln y > 1.11; stay well inside the
        # parametrization's domain (it was fitted from ~1 GeV up).
        if lo / (self.critical_energy_mev * 1e-3) < 10.0:
            raise ValueError("energy_range: E_min must be at least 10 critical energies "
                             f"({self.critical_energy_mev * 1e-2:g} GeV) for the GFlash "
                             f"parametrization, got {self.energy_range!r}")
        object.__setattr__(self, "energy_range", (lo, hi))

    @property
    def sections(self) -> Tuple[Tuple[str, Section], ...]:
        """(name, section) from the front: ("ecal", ecal) and, if present, ("hcal", hcal)."""
        return (("ecal", self.ecal),) + ((("hcal", self.hcal),) if self.hcal is not None else ())

    @property
    def critical_energy_gev(self) -> float:
        """E_c in GeV."""
        return self.critical_energy_mev * 1e-3

    @property
    def ecal_depth_x0(self) -> float:
        """Total ECAL depth in radiation lengths."""
        return self.ecal.depth_x0

    @property
    def ecal_shape(self) -> Tuple[int, int, int]:
        """The ECAL's cell array of one shower (x, y, layer)."""
        return self.ecal.shape

    def __getattr__(self, name: str) -> Any:
        """The ECAL's fields read through the configuration: config.n_cells is config.ecal.n_cells.

        The data chapter reads them so.  Only called for names that are not attributes of the configuration.

        Args:
            name: the attribute's name.

        Returns:
            The ECAL's field of that name.

        Raises:
            AttributeError: if `name` is not a field of a `Section`.
        """
        if name in _SECTION_FIELDS:
            return getattr(self.ecal, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def replace(self, **changes) -> "CalorimeterConfig":
        """A copy with some fields changed (validated again).

        The ECAL's fields change through ecal=config.ecal.replace(...).

        Args:
            **changes: the fields to change and their new values.

        Returns:
            The new `CalorimeterConfig`.

        Raises:
            TypeError: if a change names a field of a `Section` (n_cells, ...) instead of ecal or hcal.
        """
        misplaced = sorted(_SECTION_FIELDS & set(changes))
        if misplaced:
            raise TypeError(f"{', '.join(misplaced)}: fields of a Section; change them with "
                            f"config.replace(ecal=config.ecal.replace(...)) (or hcal=...)")
        return dataclasses.replace(self, **changes)


__all__ = ["CalorimeterConfig", "DEFAULT_ECAL", "DEFAULT_HCAL", "Section"]

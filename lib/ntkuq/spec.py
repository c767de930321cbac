"""The MLP specification shared by every part of the library (Roberts-Yaida-Hanin notation).

Also the activations' pointwise functions (`POINTWISE`) that the kernels' quadrature and the finite
networks share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from ntkuq._src.checks import check_int, check_real
from ntkuq.errors import InputTypeError

Array = jax.Array

ACTIVATIONS = ("relu", "erf", "tanh", "gelu")
"""Activations the library knows: ReLU and erf have closed-form kernels, the rest use quadrature."""


@dataclass(frozen=True)
class MLPSpec:
    """An MLP of `depth` weight layers (depth - 1 hidden layers) and its training hyperparameters.

    Initialization: b ~ N(0, C_b), W^(l) ~ N(0, C_W / n_{l-1}).  Training: bias learning rate
    eta * lambda_b, layer-l weight learning rate eta * lambda_W / n_{l-1}.  ``width`` is the hidden
    width n (None means infinitely wide); ``n_out`` the number of outputs k (used by finite nets).
    The fields are validated on construction (numpy scalars are stored as Python numbers).

    Attributes:
        depth: the number of weight layers (an integer >= 1; default 3).
        activation: one of `ACTIVATIONS` (default "relu").
        C_b: the bias variance (>= 0; default 0.0).
        C_W: the weight variance (> 0; default 2.0).
        lambda_b: the bias learning-rate multiplier (>= 0; default 1.0).
        lambda_W: the weight learning-rate multiplier (> 0; default 1.0).
        width: the hidden width n (an integer >= 1), or None (default) for infinitely wide.
    """

    depth: int = 3
    activation: str = "relu"
    C_b: float = 0.0
    C_W: float = 2.0
    lambda_b: float = 1.0
    lambda_W: float = 1.0
    width: Optional[int] = None

    def __post_init__(self) -> None:
        # numpy scalars are accepted and stored as Python numbers (specs are hashed into result keys)
        object.__setattr__(self, "depth", check_int(self.depth, "depth"))
        if not isinstance(self.activation, str):
            raise InputTypeError(f"activation: expected one of {ACTIVATIONS}, got {type(self.activation).__name__} "
                                 f"{self.activation!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {self.activation!r}")
        object.__setattr__(self, "activation", str(self.activation))
        for name, lower, strict in (("C_b", 0.0, False), ("C_W", 0.0, True),
                                    ("lambda_b", 0.0, False), ("lambda_W", 0.0, True)):
            object.__setattr__(self, name, check_real(getattr(self, name), name, lower=lower, lower_open=strict))
        if self.width is not None:
            object.__setattr__(self, "width", check_int(self.width, "width"))

    @property
    def is_infinite(self) -> bool:
        """True when the spec describes the infinite-width limit."""
        return self.width is None

    def with_width(self, width: Optional[int]) -> "MLPSpec":
        """The same spec at another hidden width.

        Args:
            width: the new hidden width; None for infinitely wide.

        Returns:
            A new `MLPSpec` equal to this one except for `width`.
        """
        return MLPSpec(self.depth, self.activation, self.C_b, self.C_W, self.lambda_b, self.lambda_W, width)

    @classmethod
    def critical(cls, activation: str = "relu", depth: int = 3, lambda_ratio: float = 10.0,
                 width: Optional[int] = None) -> "MLPSpec":
        """The paper's setup: an activation at criticality and lambda_b / lambda_W = lambda_ratio.

        Criticality (K* = 0): C_b = 0 and C_W sigma'(0)^2 = 1 (ReLU: C_W = 2; tanh: 1; erf: pi / 4).

        Args:
            activation: "relu" (default), "tanh" or "erf" (the activations whose criticality is known).
            depth: the number of weight layers (default 3).
            lambda_ratio: lambda_b / lambda_W (>= 0; default 10.0); lambda_W is 1.
            width: the hidden width; None (default) for infinitely wide.

        Returns:
            The `MLPSpec` at criticality.

        Raises:
            ValueError: if `activation` is not one whose criticality is known, or `lambda_ratio` is negative.
        """
        # K* = 0 criticality: C_b = 0 and C_W sigma'(0)^2 = 1 (ReLU: C_W <sigma'^2> = 1 gives 2).
        crit = {"relu": (0.0, 2.0), "tanh": (0.0, 1.0), "erf": (0.0, math.pi / 4.0)}
        if not isinstance(activation, str) or activation not in crit:
            raise ValueError(f"activation: expected one of {tuple(crit)} (criticality known), got {activation!r}")
        C_b, C_W = crit[activation]
        return cls(depth=depth, activation=activation, C_b=C_b, C_W=C_W,
                   lambda_b=check_real(lambda_ratio, "lambda_ratio", lower=0.0), lambda_W=1.0, width=width)


def _gelu(x: Array) -> Array:
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _gelu_prime(x: Array) -> Array:
    return 0.5 * (1 + erf(x / math.sqrt(2))) + x * jnp.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


POINTWISE: dict = {
    "relu": (jax.nn.relu, lambda x: (x > 0).astype(x.dtype)),
    "erf": (erf, lambda x: 2 / math.sqrt(math.pi) * jnp.exp(-(x**2))),
    "tanh": (jnp.tanh, lambda x: 1 - jnp.tanh(x) ** 2),
    "gelu": (_gelu, _gelu_prime),
}
"""Each activation and its derivative, used by quadrature and by finite networks."""


__all__ = ["ACTIVATIONS", "MLPSpec", "POINTWISE"]

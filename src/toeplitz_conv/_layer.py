"""A validated conv layer: the weight, its geometry and its channel bookkeeping.

Every public function that takes a weight and torch's layer parameters starts
with :func:`conv_layer` (or :func:`transpose_layer`), so the checks and their
messages live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import as_weight, check_groups
from ._geometry import ConvGeometry, Padding, conv_geometry, transpose_geometry

__all__ = ["Layer", "conv_layer", "transpose_layer"]


@dataclass(frozen=True, eq=False)
class Layer:
    """A ``conv1d`` layer: weight ``(C_out, C_in/groups, K)`` on one geometry.

    For a transposed convolution this is the ``conv1d`` it transposes: the same
    weight, on the geometry whose output length is the transposed input's length.
    """

    weight: np.ndarray
    geom: ConvGeometry
    groups: int

    @property
    def out_channels(self) -> int:
        """``C_out``."""
        return self.weight.shape[0]

    @property
    def group_channels(self) -> int:
        """``G = C_in / groups``, input channels per group."""
        return self.weight.shape[1]

    @property
    def in_channels(self) -> int:
        """``C_in``."""
        return self.weight.shape[1] * self.groups

    @property
    def shape(self) -> tuple[int, int]:
        """``(C_out * L_out, C_in * L)``, the shape of the layer's matrix."""
        return (
            self.out_channels * self.geom.output_length,
            self.in_channels * self.geom.input_length,
        )


def conv_layer(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Layer:
    """Validate a ``conv1d`` layer's weight and parameters (torch's names and rules)."""
    w = as_weight(weight)
    groups, _ = check_groups(w.shape, groups)
    geom = conv_geometry(
        input_length,
        w.shape[2],
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
    )
    return Layer(w, geom, groups)


def transpose_layer(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
) -> Layer:
    """Validate a ``conv_transpose1d`` layer; returns the ``conv1d`` layer it transposes."""
    w = as_weight(weight)
    groups, _ = check_groups(w.shape, groups)
    geom = transpose_geometry(
        input_length,
        w.shape[2],
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
    return Layer(w, geom, groups)

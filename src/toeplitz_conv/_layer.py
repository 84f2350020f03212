"""A validated conv layer: the weight, one geometry per spatial axis, the channel bookkeeping.

Every public function that takes a weight and torch's layer parameters starts
with :func:`conv_layer` (or :func:`transpose_layer`), so the checks and their
messages live in one place. A 1-D layer is the case ``n = 1``: one geometry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import as_weight, check_groups
from ._geometry import (
    MAX_INT,
    ConvGeometry,
    PaddingND,
    conv_geometries,
    per_axis,
    transpose_geometries,
)

__all__ = ["Layer", "conv_layer", "input_size_tuple", "transpose_layer"]

# The flattened input and output of a layer must stay far inside int64.
_MAX_ENTRIES = 2**62


@dataclass(frozen=True, eq=False)
class Layer:
    """A conv layer: weight ``(C_out, C_in/groups, K_1, ..., K_n)`` on one geometry per axis.

    For a transposed convolution this is the convolution it transposes: the same
    weight, on the geometries whose output sizes are the transposed input's sizes.
    A single :class:`~._geometry.ConvGeometry` for `geoms` means a 1-D layer.
    """

    weight: np.ndarray
    geoms: tuple[ConvGeometry, ...]
    groups: int

    def __post_init__(self) -> None:
        if isinstance(self.geoms, ConvGeometry):
            object.__setattr__(self, "geoms", (self.geoms,))

    @property
    def ndim(self) -> int:
        """``n``, the number of spatial axes."""
        return len(self.geoms)

    @property
    def geom(self) -> ConvGeometry:
        """The geometry of a 1-D layer (for code that handles one axis only)."""
        if len(self.geoms) != 1:
            raise ValueError(f"this is a {len(self.geoms)}-D layer; it has one geometry per axis")
        return self.geoms[0]

    @property
    def input_size(self) -> tuple[int, ...]:
        """``(L_1, ..., L_n)``."""
        return tuple(g.input_length for g in self.geoms)

    @property
    def output_size(self) -> tuple[int, ...]:
        """``(L_out,1, ..., L_out,n)``."""
        return tuple(g.output_length for g in self.geoms)

    @property
    def kernel_size(self) -> tuple[int, ...]:
        """``(K_1, ..., K_n)``."""
        return tuple(g.kernel_size for g in self.geoms)

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
    def is_circulant(self) -> bool:
        """True when the matrix is exactly block-circulant on every axis.

        That is circular padding (or none) with one period of output,
        ``L_out * s == L``, on every axis (:attr:`ConvGeometry.is_circulant`); strided
        layers included. Its spectrum is then exact by FFT (``method='fft'``).
        """
        return all(g.is_circulant for g in self.geoms)

    @property
    def shape(self) -> tuple[int, int]:
        """``(C_out * prod(output_size), C_in * prod(input_size))``, the matrix's shape."""
        return (
            self.out_channels * math.prod(self.output_size),
            self.in_channels * math.prod(self.input_size),
        )

    @property
    def output_padding(self) -> tuple[int, ...]:
        """``output_padding`` per axis of the transposed convolution of this layer.

        Each axis' :attr:`~toeplitz_conv._geometry.ConvGeometry.output_padding`:
        what ``L`` has beyond the least input with ``L_out`` outputs; for a layer from
        :func:`transpose_layer`, the `output_padding` it was given.
        """
        return tuple(g.output_padding for g in self.geoms)

    def arguments(self, *, transpose: bool = False) -> tuple[int | tuple[int, ...], dict[str, Any]]:
        """``(input_size, parameters)`` as torch's functions take them, for display or to rebuild.

        Each per-axis value is written as a user writes it: a scalar in 1-D, a tuple
        with one item per axis in N-d (``padding`` a ``(left, right)`` pair per axis).
        ``conv_layer(weight, size, **parameters, ndim=n)`` rebuilds the layer; with
        `transpose`, the arguments of its transposed convolution (input size
        ``output_size``, ``output_padding`` instead of ``padding_mode``), which
        :func:`transpose_layer` takes.

        Examples
        --------
        >>> layer = conv_layer([[1.0, 2.0], [3.0, 4.0]], (5, 6), stride=(2, 1), ndim=2)
        >>> size, params = layer.arguments()
        >>> size, params["stride"], params["padding"], params["padding_mode"]
        ((5, 6), (2, 1), ((0, 0), (0, 0)), 'zeros')
        >>> transpose_layer([4.0, 3.0], 5, stride=2, output_padding=1).arguments(transpose=True)
        (5, {'stride': 2, 'padding': (0, 0), 'output_padding': 1, 'dilation': 1, 'groups': 1})
        """

        def written(values: tuple[Any, ...]) -> Any:  # one value per axis; a scalar in 1-D
            return values[0] if len(values) == 1 else values

        geoms = self.geoms
        params: dict[str, Any] = {
            "stride": written(tuple(g.stride for g in geoms)),
            "padding": written(tuple((g.pad_left, g.pad_right) for g in geoms)),
        }
        if transpose:
            params["output_padding"] = written(self.output_padding)
        params["dilation"] = written(tuple(g.dilation for g in geoms))
        params["groups"] = self.groups
        if transpose:
            return written(self.output_size), params
        params["padding_mode"] = geoms[0].padding_mode
        return written(self.input_size), params


def input_size_tuple(input_size: object, n: int) -> tuple[int, ...]:
    """`input_size` as ``n`` ints: an int applies to every axis (named ``input_length`` in 1-D)."""
    if n == 1 and not isinstance(input_size, (tuple, list)):
        return per_axis(input_size, "input_length", 1, minimum=1)
    return per_axis(input_size, "input_size", n, minimum=1)


def _validate(
    weight: object,
    input_size: object,
    ndim: int | None,
    groups: object,
    geometries: Callable[..., tuple[ConvGeometry, ...]],
    geometry: dict,
) -> Layer:
    """The checked weight and groups, one geometry per axis, and a size int64 can index."""
    w = as_weight(weight, input_size, ndim)
    groups, _ = check_groups(w.shape, groups)
    size = input_size_tuple(input_size, w.ndim - 2)
    layer = Layer(w, geometries(size, w.shape[2:], **geometry), groups)
    rows, cols = layer.shape
    if max(rows, cols) > _MAX_ENTRIES:
        raise ValueError(
            f"the layer maps {cols:,} input values to {rows:,} outputs; at most "
            f"{_MAX_ENTRIES:,} ({MAX_INT:,} per axis) can be indexed. Use a smaller input_size"
        )
    return layer


def conv_layer(
    weight: object,
    input_size: object,
    *,
    stride: object = 1,
    padding: PaddingND = 0,
    dilation: object = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    ndim: int | None = 1,
) -> Layer:
    """Validate a conv layer's weight and parameters (torch's names and rules).

    `ndim` is the number of spatial axes (``conv2d_*`` pass 2); ``None`` infers
    it from a tuple `input_size`, else from the weight (see
    :func:`~._arrays.spatial_dims`). An int `input_size` applies to every axis.
    """
    geometry = dict(stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode)
    return _validate(weight, input_size, ndim, groups, conv_geometries, geometry)


def transpose_layer(
    weight: object,
    input_size: object,
    *,
    stride: object = 1,
    padding: object = 0,
    output_padding: object = 0,
    groups: int = 1,
    dilation: object = 1,
    ndim: int | None = 1,
) -> Layer:
    """Validate a transposed conv layer; returns the conv layer it transposes."""
    geometry = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    return _validate(weight, input_size, ndim, groups, transpose_geometries, geometry)

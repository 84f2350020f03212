"""The bridge to the single-process library: a validated layer, its local operators and rows.

Everything the distributed code computes locally goes through the library's public
functions (``conv_operator`` on a rank's window, ``conv_matrix(..., rows=(r0, r1))`` for
its rows), so the distributed results agree with the single-process ones by construction,
in 1-D, 2-D and 3-D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import matrices as _matrices
from .. import operators as _operators
from .._arrays import matrix_dtype
from .._layer import Layer, conv_layer, transpose_layer

__all__ = ["ConvSpec", "conv_spec", "same_layer_everywhere", "transpose_spec"]


@dataclass(frozen=True, eq=False)
class ConvSpec(Layer):
    """A validated conv layer for distribution: the library's :class:`~.._layer.Layer`
    (weight in the operator dtype, one geometry per axis, groups) and what the ranks
    derive from it. ``geoms[0]`` is the split (outermost spatial) axis.
    """

    @property
    def inner_in(self) -> int:
        """Samples per channel of one slice across the split axis (``L_2 ... L_n``)."""
        return math.prod(self.input_size[1:])

    @property
    def inner_out(self) -> int:
        return math.prod(self.output_size[1:])

    @property
    def mode(self) -> str:
        return self.geoms[0].padding_mode

    def params(self) -> dict:
        """The layer's parameters as plain JSON-able values (for file headers)."""
        g = self.geoms
        one = self.ndim == 1
        return {
            "input_size": g[0].input_length if one else [x.input_length for x in g],
            "kernel_size": list(self.weight.shape[2:]),
            "stride": g[0].stride if one else [x.stride for x in g],
            "padding": [[x.pad_left, x.pad_right] for x in g],
            "dilation": g[0].dilation if one else [x.dilation for x in g],
            "groups": self.groups,
            "padding_mode": self.mode,
        }

    def axis_kwargs(self, split_padding: tuple[int, int] | None = None) -> dict:
        """stride, padding, dilation per axis, in the form the core's N-d functions take.

        `split_padding` replaces the padding of the split axis (the operator's window is
        unpadded there).
        """
        pads = [(g.pad_left, g.pad_right) for g in self.geoms]
        if split_padding is not None:
            pads[0] = split_padding
        one = self.ndim == 1
        return {
            "stride": self.geoms[0].stride if one else tuple(g.stride for g in self.geoms),
            "padding": pads[0] if one else tuple(pads),
            "dilation": self.geoms[0].dilation if one else tuple(g.dilation for g in self.geoms),
        }

    def size(self, split_length: int | None = None) -> int | tuple[int, ...]:
        size = list(self.input_size)
        if split_length is not None:
            size[0] = split_length
        return size[0] if self.ndim == 1 else tuple(size)

    def local_operator(self, ext_length: int) -> object:
        """The single-process operator on an extended slab of `ext_length` samples.

        No padding on the split axis (the halo and the padding mode's samples are already
        in the slab), the layer's padding on the other axes.
        """
        return _operators.conv_operator(
            self.weight,
            self.size(ext_length),
            groups=self.groups,
            padding_mode=self.mode,
            **self.axis_kwargs(split_padding=(0, 0)),
        )

    def rows(self, r0: int, r1: int) -> sp.csr_array:
        """Rows ``[r0, r1)`` of the layer's matrix as canonical CSR, built for that block only."""
        return _matrices.conv_matrix(
            self.weight,
            self.size(),
            groups=self.groups,
            padding_mode=self.mode,
            dtype=self.weight.dtype,
            format="csr",
            rows=(r0, r1),
            **self.axis_kwargs(),
        )


def conv_spec(
    weight: object,
    input_size: object,
    *,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
    padding_mode: str,
    dtype: object,
) -> ConvSpec:
    """Validate a conv layer with the library's own checks (and its messages)."""
    layer = conv_layer(
        weight,
        input_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        ndim=None,
    )
    return _spec(layer, dtype)


def transpose_spec(
    weight: object,
    input_size: object,
    *,
    stride: object,
    padding: object,
    output_padding: object,
    groups: object,
    dilation: object,
    dtype: object,
) -> ConvSpec:
    """The conv layer a ``conv_transpose`` transposes, validated by the library."""
    layer = transpose_layer(
        weight,
        input_size,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        ndim=None,
    )
    return _spec(layer, dtype)


def _spec(layer: object, dtype: object) -> ConvSpec:
    geoms = tuple(layer.geoms)
    w = np.ascontiguousarray(layer.weight, dtype=matrix_dtype(layer.weight.dtype, dtype))
    return ConvSpec(w, geoms, layer.groups)


def same_layer_everywhere(comm: object, spec: ConvSpec) -> None:
    """Refuse, on every rank, a layer that differs between ranks (weights or geometry).

    One ``allgather`` of a SHA-256 digest of the weight's bytes, shape and dtype, the
    geometries and the groups.
    """
    import hashlib

    digest = hashlib.sha256(spec.weight.tobytes())
    digest.update(
        repr((spec.weight.shape, str(spec.weight.dtype), spec.geoms, spec.groups)).encode()
    )
    every = comm.allgather(digest.hexdigest())
    if len(set(every)) > 1:
        differ = [r for r, h in enumerate(every) if h != every[0]]
        raise ValueError(
            f"the layer (weight or parameters) must be the same on every rank; ranks {differ} "
            "differ from rank 0"
        )

"""The bridge to the single-process library: a validated layer, its local operators and rows.

Everything the distributed code computes locally goes through the library's public
functions (``conv1d_operator`` / ``conv_operator``, ``conv1d_matrix`` / ``conv_matrix``),
so the distributed results agree with the single-process ones by construction. N-d layers
need the N-d core (``conv_operator``, ``conv_matrix(..., rows=)``); 1-D works on any
version.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import matrices as _matrices
from .. import operators as _operators
from .._arrays import matrix_dtype
from .._layer import conv_layer, transpose_layer

__all__ = ["ConvSpec", "conv_spec"]


@dataclass(frozen=True, eq=False)
class ConvSpec:
    """A validated conv layer for distribution: weight, one geometry per axis, groups.

    ``weight`` has shape ``(C_out, C_in/groups, K_1, ..., K_n)`` in the operator dtype;
    ``geoms[0]`` is the split (outermost spatial) axis.
    """

    weight: np.ndarray
    geoms: tuple
    groups: int

    @property
    def ndim(self) -> int:
        return len(self.geoms)

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def input_size(self) -> tuple[int, ...]:
        return tuple(g.input_length for g in self.geoms)

    @property
    def output_size(self) -> tuple[int, ...]:
        return tuple(g.output_length for g in self.geoms)

    @property
    def inner_in(self) -> int:
        """Samples per channel of one slice across the split axis (``L_2 ... L_n``)."""
        return math.prod(self.input_size[1:])

    @property
    def inner_out(self) -> int:
        return math.prod(self.output_size[1:])

    @property
    def shape(self) -> tuple[int, int]:
        return (
            self.out_channels * math.prod(self.output_size),
            self.in_channels * math.prod(self.input_size),
        )

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

    def local_operator(self, ext_length: int) -> object:
        """The single-process operator on an extended slab of `ext_length` samples.

        No padding on the split axis (the halo and the padding mode's samples are already
        in the slab), the layer's padding on the other axes.
        """
        g0 = self.geoms[0]
        if self.ndim == 1:
            return _operators.conv1d_operator(
                self.weight,
                ext_length,
                stride=g0.stride,
                padding=0,
                dilation=g0.dilation,
                groups=self.groups,
            )
        conv_operator = _require_nd("conv_operator")
        return conv_operator(
            self.weight,
            (ext_length, *self.input_size[1:]),
            stride=tuple(g.stride for g in self.geoms),
            padding=((0, 0), *((g.pad_left, g.pad_right) for g in self.geoms[1:])),
            dilation=tuple(g.dilation for g in self.geoms),
            groups=self.groups,
            padding_mode=self.mode,
        )

    def rows(self, r0: int, r1: int) -> sp.csr_array:
        """Rows ``[r0, r1)`` of the layer's matrix as canonical CSR, built for that block only."""
        kwargs = {
            "stride": tuple(g.stride for g in self.geoms),
            "padding": tuple((g.pad_left, g.pad_right) for g in self.geoms),
            "dilation": tuple(g.dilation for g in self.geoms),
            "groups": self.groups,
            "padding_mode": self.mode,
            "dtype": self.weight.dtype,
        }
        conv_matrix = getattr(_matrices, "conv_matrix", None)
        if conv_matrix is not None and "rows" in inspect.signature(conv_matrix).parameters:
            if self.ndim == 1:
                kwargs.update(
                    stride=kwargs["stride"][0],
                    padding=kwargs["padding"][0],
                    dilation=kwargs["dilation"][0],
                )
                size: object = self.input_size[0]
            else:
                size = self.input_size
            return conv_matrix(self.weight, size, rows=(r0, r1), format="csr", **kwargs)
        if self.ndim > 1:
            _require_nd("conv_matrix")  # raises
        return _rows_1d(self, r0, r1)


def _require_nd(name: str) -> object:
    fn = getattr(_operators, name, None) or getattr(_matrices, name, None)
    if fn is None or (name == "conv_matrix" and "rows" not in inspect.signature(fn).parameters):
        raise NotImplementedError(
            f"distributing an N-d layer needs toeplitz_conv.{name} from the N-d core "
            "(with rows= for matrices); this version only distributes 1-D layers"
        )
    return fn


def _rows_1d(spec: ConvSpec, r0: int, r1: int) -> sp.csr_array:
    """Rows ``[r0, r1)`` of a 1-D layer's matrix, until the core's ``conv_matrix(rows=)``.

    The rows of output channels ``[o, o')`` (one group) at positions ``[i0, i1)`` are the
    unpadded ``conv1d_matrix`` of those channels on the padded window they read, with the
    window's columns mapped to source samples by the padding mode (taps folded by
    reflect/circular add up). At most ``groups + 2`` such pieces; time and memory are
    proportional to the block.
    """
    g = spec.geoms[0]
    w = spec.weight
    c_out, G = w.shape[:2]
    L, L_out, s, d = g.input_length, g.output_length, g.stride, g.dilation
    span = d * (g.kernel_size - 1)
    per_group = c_out // spec.groups
    index = np.int64 if max(spec.shape) * 2 >= np.iinfo(np.int32).max else np.int32
    pieces = []
    row = r0
    while row < r1:  # each piece: contiguous global rows
        o, i0 = divmod(row, L_out)
        if i0 == 0 and r1 - row >= L_out:  # whole channels, as many as stay in one group
            o_end = min((o // per_group + 1) * per_group, o + (r1 - row) // L_out)
            i1 = L_out
        else:
            o_end, i1 = o + 1, min(L_out, i0 + r1 - row)
        e0, n_e = i0 * s - g.pad_left, (i1 - 1 - i0) * s + span + 1
        block = _matrices.conv1d_matrix(
            w[o:o_end], n_e, stride=s, dilation=d, format="csr", dtype=w.dtype
        )
        if G == 1:
            c, e = 0, block.indices
        else:
            c, e = np.divmod(block.indices.astype(np.int64), n_e)
        src = g.src(e + e0)  # padded position -> source sample (-1: zero padding)
        base = ((o // per_group) * G + c) * L
        if src.size and src.min() >= 0:
            cols, data, indptr = src + base, block.data, block.indptr.astype(index)
        else:
            keep = src >= 0
            counts = np.add.reduceat(keep, block.indptr[:-1]) if keep.size else keep
            counts = np.where(np.diff(block.indptr) > 0, counts, 0)
            indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index)
            cols = (base[keep] if G > 1 else base) + src[keep]
            data = block.data[keep]
        pieces.append(
            sp.csr_array(
                (data, cols.astype(index, copy=False), indptr),
                shape=(block.shape[0], spec.shape[1]),
            )
        )
        row += (o_end - o) * (i1 - i0)
    out = pieces[0] if len(pieces) == 1 else sp.csr_array(sp.vstack(pieces, format="csr"))
    out.sum_duplicates()  # sorts and merges only where reflect/circular folded taps
    return out


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
        _size_argument(input_size),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
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
        _size_argument(input_size),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    return _spec(layer, dtype)


def _size_argument(input_size: object) -> object:
    if isinstance(input_size, (tuple, list)) and len(input_size) == 1:
        return input_size[0]
    if isinstance(input_size, (tuple, list)) and not hasattr(_operators, "conv_operator"):
        raise NotImplementedError(
            f"`input_size`={tuple(input_size)!r} is N-d; this version of toeplitz_conv "
            "only distributes 1-D layers (an int `input_size`)"
        )
    return input_size


def _spec(layer: object, dtype: object) -> ConvSpec:
    geoms = tuple(getattr(layer, "geoms", None) or (layer.geom,))
    w = np.ascontiguousarray(layer.weight, dtype=matrix_dtype(layer.weight.dtype, dtype))
    return ConvSpec(w, geoms, layer.groups)

"""The bridge to the single-process library: a validated layer, its local operators and rows.

Everything the distributed code computes locally goes through the library's validated
:class:`~toeplitz_conv._layer.Layer` (the operator on a rank's window, ``layer_matrix(...,
rows=(r0, r1))`` for its rows), so the distributed results agree with the single-process
ones by construction, in 1-D, 2-D and 3-D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .._arrays import matrix_dtype
from .._build import layer_matrix
from .._layer import Layer
from .._typing import DTypeLike
from ..operators import ConvOperator

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = ["ConvSpec", "conv_spec", "same_layer_everywhere"]


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

    def local_operator(self, ext_length: int) -> ConvOperator:
        """The single-process operator on an extended slab of `ext_length` samples.

        No padding on the split axis (the halo and the padding mode's samples are already
        in the slab), the layer's padding on the other axes.
        """
        g = self.geoms[0]
        split = g.resized(ext_length, padding=(0, 0))
        return ConvOperator(self.weight, (split, *self.geoms[1:]), self.groups)

    def rows(self, r0: int, r1: int) -> sp.csr_array:
        """Rows ``[r0, r1)`` of the layer's matrix as canonical CSR, built for that block only."""
        return layer_matrix(self, fmt="csr", dtype=self.weight.dtype, rows=(r0, r1))


def conv_spec(layer: Layer, dtype: DTypeLike | None) -> ConvSpec:
    """The validated `layer` for distribution, its weight in the operator dtype."""
    w = np.ascontiguousarray(layer.weight, dtype=matrix_dtype(layer.weight.dtype, dtype))
    return ConvSpec(w, layer.geoms, layer.groups)


def same_layer_everywhere(comm: MPI.Comm, spec: ConvSpec) -> None:
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

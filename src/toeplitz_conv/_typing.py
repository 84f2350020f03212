"""Type aliases shared by the annotations of the public signatures.

Array inputs are typed :data:`numpy.typing.ArrayLike`: anything :func:`numpy.asarray`
accepts, which includes torch tensors (they implement ``__array__``; this package
detaches them and copies them to the CPU first). String options are ``Literal``
types, so a type checker catches a misspelt ``padding_mode`` or ``format``.

These are plain aliases: importing them costs nothing and changes no behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, DTypeLike, NDArray

if TYPE_CHECKING:  # torch is optional: its types are for the type checker only
    import torch

    #: The torch modules whose matrix this package builds (``from_torch``, ``nn``).
    TorchConv = (
        torch.nn.Conv1d
        | torch.nn.Conv2d
        | torch.nn.Conv3d
        | torch.nn.ConvTranspose1d
        | torch.nn.ConvTranspose2d
        | torch.nn.ConvTranspose3d
    )

__all__ = [
    "AnySparse",
    "ArrayLike",
    "DTypeLike",
    "Float64Array",
    "KernelMethod",
    "MatrixFormat",
    "NDArray",
    "PaddingMode",
    "SeedLike",
    "SparseArray",
    "SparseFormat",
    "SpectrumMethod",
    "TransposePadding",
]

#: How a convolution extends its input (torch's ``padding_mode``).
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]

#: The sparse formats the matrix builders return, as scipy names them.
SparseFormat = Literal["csr", "csc", "coo", "bsr", "dia"]

#: Every ``format`` a matrix builder accepts: a sparse format or ``"dense"``.
MatrixFormat = Literal["csr", "csc", "coo", "bsr", "dia", "dense"]

#: The canonical scipy sparse arrays a builder returns (the one ``format`` names).
SparseArray = sp.csr_array | sp.csc_array | sp.coo_array | sp.bsr_array | sp.dia_array

#: Any 2-D scipy sparse array (what the writers of :mod:`toeplitz_conv.io` accept).
AnySparse = SparseArray | sp.lil_array | sp.dok_array

#: A float64 ndarray (norms, bounds, singular values).
Float64Array = NDArray[np.float64]

#: How :func:`~toeplitz_conv.singular_values` computes (see its ``method``).
SpectrumMethod = Literal["auto", "fft", "dense", "krylov", "svds"]

#: A seed or generator for the randomised starts (:func:`numpy.random.default_rng` takes it).
SeedLike = int | np.random.SeedSequence | np.random.BitGenerator | np.random.Generator | None

#: The algorithm of a matrix-free operator's passes (see ``conv_operator``'s ``method``).
KernelMethod = Literal["auto", "direct", "fft", "winograd", "winograd2"]

#: A transposed convolution's padding: one int, or per axis an int or a ``(left, right)`` pair.
TransposePadding = int | tuple[int | tuple[int, int], ...]

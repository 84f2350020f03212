"""A validated layer's matrix as a ``LinearOperator`` over its planned passes.

The engine modules (the spectra, the Krylov solvers, the certificates) need
``M @ X`` and ``M^H @ X`` of a :class:`~._layer.Layer` without the public
operator classes; :class:`LayerOperator` is that, and the public
:class:`~toeplitz_conv.ConvOperator` applies vectors the same way
(:func:`apply_kernel`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._arrays import compute_dtype
from ._kernel import Kernel
from ._layer import Layer

__all__ = ["LayerOperator", "apply_kernel"]


def apply_kernel(kernel: Kernel, dtype: np.dtype, X: np.ndarray, adjoint: bool) -> np.ndarray:
    """``M @ X`` (``M^H @ X`` with `adjoint`) for a vector ``(n,)`` or columns ``(n, B)``.

    The flat input is reshaped to ``(C, S_1, ..., S_n, B)``, the layout the
    kernel's passes work in, and the result flattened back the same way.
    """
    size, channels, fn = (
        (kernel.output_size, kernel.c_out, kernel.adjoint)
        if adjoint
        else (kernel.input_size, kernel.c_in, kernel.forward)
    )
    X = np.asarray(X)
    B = X.shape[1] if X.ndim == 2 else 1
    x = np.ascontiguousarray(X, dtype=compute_dtype(dtype, X.dtype))
    y = fn(x.reshape(channels, *size, B))  # explicit sizes: B may be 0
    rows = y.size // B if B else math.prod(y.shape[:-1])
    return y.reshape(rows, B) if X.ndim == 2 else y.reshape(-1)


class LayerOperator(LinearOperator):
    """``M`` of `layer`, shape ``(C_out * prod(S_out), C_in * prod(S))``, in the weight's dtype.

    ``.H`` (scipy's adjoint) applies ``M^H`` through the same kernel.
    """

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self._kernel = Kernel(layer.weight, layer.geoms, layer.groups)
        super().__init__(dtype=layer.weight.dtype, shape=layer.shape)  # type: ignore[call-arg]  # stubs: __new__

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return apply_kernel(self._kernel, self.dtype, X, adjoint=False)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return apply_kernel(self._kernel, self.dtype, X, adjoint=True)

    _matvec = _matmat
    _rmatvec = _rmatmat

r"""Matrix-free conv operators: ``scipy.sparse.linalg.LinearOperator`` s that never build ``M``.

A 256-channel layer on 4096 samples has ~800 million nonzeros; its operator
holds only the weight. :func:`conv1d_operator` applies ``M`` (``conv1d``) and
``M^H`` (``conv_transpose1d``, the input gradient) with the same geometry as
:func:`~toeplitz_conv.conv1d_matrix`, so the operator and the matrix agree by
construction of one index plan (:mod:`toeplitz_conv._geometry`).

The passes themselves live in :mod:`toeplitz_conv._kernel`.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._arrays import compute_dtype, matrix_dtype
from ._geometry import ConvGeometry, Padding
from ._kernel import Kernel
from ._layer import conv_layer, transpose_layer

__all__ = [
    "Conv1dOperator",
    "ConvTranspose1dOperator",
    "conv1d_operator",
    "conv_transpose1d_operator",
]


class _ConvOperatorBase(LinearOperator):
    """Shared plumbing: reshaping vectors and column batches to ``(C, L, B)``."""

    _kernel: Kernel

    def _apply(self, X: np.ndarray, channels_in: int, fn, channels_out: int) -> np.ndarray:
        X = np.asarray(X)
        B = X.shape[1] if X.ndim == 2 else 1
        x3 = np.ascontiguousarray(X, dtype=compute_dtype(self.dtype, X.dtype)).reshape(
            channels_in,
            X.shape[0] // channels_in,
            B,  # explicit: B may be 0
        )
        y = fn(x3)
        return y.reshape(y.shape[0] * y.shape[1], B) if X.ndim == 2 else y.reshape(-1)


class Conv1dOperator(_ConvOperatorBase):
    r"""The matrix of ``conv1d`` as a matrix-free ``LinearOperator``.

    Made by :func:`conv1d_operator`; see there for the parameters.

    Attributes
    ----------
    weight : ndarray, shape (C_out, C_in/groups, K)
        The kernel, in the operator's dtype.
    geometry : ConvGeometry
        The validated stride, padding, dilation, lengths and padding mode.
    groups, in_channels, out_channels : int
    input_length, output_length : int
        ``L`` and ``L_out``.
    shape : (int, int)
        ``(C_out * L_out, C_in * L)``.
    dtype : numpy.dtype
        The weight's (integers become float64) unless ``dtype=`` said otherwise.
    """

    def __init__(self, weight: np.ndarray, geometry: ConvGeometry, groups: int) -> None:
        self._kernel = Kernel(weight, geometry, groups)
        self.weight = weight
        self.geometry = geometry
        self.groups = groups
        self.out_channels, _, _ = weight.shape
        self.in_channels = self._kernel.c_in
        self.input_length = geometry.input_length
        self.output_length = geometry.output_length
        shape = (
            self.out_channels * geometry.output_length,
            self.in_channels * geometry.input_length,
        )
        super().__init__(dtype=weight.dtype, shape=shape)

    def __repr__(self) -> str:
        g = self.geometry
        return (
            f"<{self.shape[0]}x{self.shape[1]} Conv1dOperator with dtype={self.dtype}: "
            f"weight {self.weight.shape}, input_length={g.input_length}, stride={g.stride}, "
            f"padding=({g.pad_left}, {g.pad_right}), dilation={g.dilation}, "
            f"groups={self.groups}, padding_mode={g.padding_mode!r}>"
        )

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X, self.in_channels, self._kernel.forward, self.out_channels)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X, self.out_channels, self._kernel.adjoint, self.in_channels)

    _matvec = _matmat
    _rmatvec = _rmatmat

    def _adjoint(self) -> ConvTranspose1dOperator:
        return ConvTranspose1dOperator(self)

    def _transpose(self) -> ConvTranspose1dOperator:
        if self.dtype.kind != "c":
            return ConvTranspose1dOperator(self)
        return ConvTranspose1dOperator(
            Conv1dOperator(self.weight.conj(), self.geometry, self.groups)
        )


class ConvTranspose1dOperator(_ConvOperatorBase):
    r"""The adjoint of a :class:`Conv1dOperator`: the transposed convolution.

    ``matvec`` is ``conv1d``'s ``rmatvec`` and back. For zero padding this is
    ``conv_transpose1d``; for the other modes the gradient that reaches the
    padding is folded back onto the samples it copied.

    Attributes
    ----------
    forward : Conv1dOperator
        The convolution this is the adjoint of; ``op.H`` returns it.
    shape : (int, int)
        ``(C_in * L, C_out * L_out)`` of the forward convolution.
    """

    def __init__(self, forward: Conv1dOperator) -> None:
        self.forward = forward
        self._kernel = forward._kernel
        super().__init__(dtype=forward.dtype, shape=forward.shape[::-1])

    def __repr__(self) -> str:
        return f"<adjoint of {self.forward!r}>"

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        f = self.forward
        return self._apply(X, f.out_channels, self._kernel.adjoint, f.in_channels)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        f = self.forward
        return self._apply(X, f.in_channels, self._kernel.forward, f.out_channels)

    _matvec = _matmat
    _rmatvec = _rmatmat

    def _adjoint(self) -> Conv1dOperator:
        return self.forward

    def _transpose(self) -> Conv1dOperator:
        if self.dtype.kind != "c":
            return self.forward
        f = self.forward
        return Conv1dOperator(f.weight.conj(), f.geometry, f.groups)


def conv1d_operator(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    dtype: object = None,
) -> Conv1dOperator:
    r"""The matrix of ``conv1d`` as a matrix-free ``scipy.sparse.linalg.LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
        The kernel in torch's layout; torch tensors are accepted.
    input_length : int
        ``L``, samples per input channel.
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv1d_matrix`.
    dtype : dtype, optional
        The operator's dtype; defaults to the weight's (integers become float64).

    Returns
    -------
    op : Conv1dOperator, shape (C_out * L_out, C_in * L)
        ``op @ vec(x) == vec(conv1d(x, weight, ...))``; ``op.matmat(X)`` maps the
        columns of ``X`` (shape ``(C_in*L, B)``) at once; ``op.H``, ``op.T`` and
        ``op.adjoint()`` are the transposed convolution
        (:class:`ConvTranspose1dOperator`).

    Notes
    -----
    The operator stores the weight only (``O(C_out G K)`` memory) and applies,
    without forming the matrix ``M`` of :func:`~toeplitz_conv.conv1d_matrix`,

    .. math::

        (M x)[o L_{out} + i] = \sum_{c < G} \sum_{k < K} W[o, c, k]\,
            \tilde x[g(o) G + c,\; i s + k d - p_l],

    .. math::

        (M^H y)[c' L + l] = \sum_{o, i, k \,:\, \mathrm{src}(i s + k d - p_l) = l}
            \overline{W[o, c' - g(o) G, k]}\; y[o L_{out} + i],

    the second being ``conv_transpose1d`` for zero padding (taps that read the
    padding of the other modes add onto the sample they copied). Vectors are
    flattened row-major over (channel, position). Inputs of another dtype are
    computed in the common dtype (a float64 vector on a float32 operator gives
    float64).

    Examples
    --------
    >>> import numpy as np
    >>> op = conv1d_operator([4.0, 3.0], 5)
    >>> op
    <4x5 Conv1dOperator with dtype=float64: weight (1, 1, 2), input_length=5, stride=1,
    padding=(0, 0), dilation=1, groups=1, padding_mode='zeros'>
    >>> op @ np.array([1.0, 2, 3, 4, 5])
    array([10., 17., 24., 31.])
    >>> op.H @ np.array([1.0, 0, 0, 1])
    array([4., 3., 0., 4., 3.])
    >>> from scipy.sparse.linalg import lsqr
    >>> x = lsqr(op, np.array([10.0, 17, 24, 31]), atol=1e-12, btol=1e-12)[0]
    >>> np.allclose(op @ x, [10, 17, 24, 31])
    True
    """
    layer = conv_layer(
        weight,
        input_length,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    w = np.ascontiguousarray(layer.weight, dtype=matrix_dtype(layer.weight.dtype, dtype))
    return Conv1dOperator(w, layer.geom, layer.groups)


def conv_transpose1d_operator(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
    dtype: object = None,
) -> ConvTranspose1dOperator:
    r"""The matrix of ``conv_transpose1d`` as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K) or (K,)
        torch's ``conv_transpose1d`` layout: the weight of the ``conv1d`` it
        transposes.
    input_length : int
        ``L_in``, samples per channel of the transposed convolution's input.
    stride, padding, output_padding, groups, dilation : optional
        As in :func:`~toeplitz_conv.conv_transpose1d_matrix`.
    dtype : dtype, optional
        Defaults to the weight's (integers become float64).

    Returns
    -------
    op : ConvTranspose1dOperator, shape (C_out * L', C_in * L_in)
        ``L' = (L_in - 1)s - p_l - p_r + d(K-1) + output_padding + 1``;
        ``op @ vec(x) == vec(conv_transpose1d(x, weight, ...))``. ``op.T`` is the
        :class:`Conv1dOperator` of `weight` on ``L'`` samples, ``op.H`` that of
        ``conj(weight)`` (the same for real weights).

    Notes
    -----
    .. math::

        z[g G + c,\; i s + k d - p_l] \mathrel{+}= W[o, c, k]\, x[o, i]
        \quad (o \text{ in group } g),

    the adjoint of ``conv1d`` on ``L'`` samples restricted to its first ``L_in``
    output positions.

    Examples
    --------
    >>> import numpy as np
    >>> op = conv_transpose1d_operator([4.0, 3.0], 2, stride=2)
    >>> op @ np.array([1.0, 2.0])
    array([4., 3., 8., 6.])
    """
    layer = transpose_layer(
        weight,
        input_length,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    w = np.ascontiguousarray(layer.weight, dtype=matrix_dtype(layer.weight.dtype, dtype))
    # the adjoint of conv1d(conj(W)) is conv_transpose1d(W): the transpose, not the adjoint, of M
    return ConvTranspose1dOperator(Conv1dOperator(w.conj(), layer.geom, layer.groups))

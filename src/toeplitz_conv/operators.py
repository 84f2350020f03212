r"""Matrix-free conv operators: ``scipy.sparse.linalg.LinearOperator`` s that never build ``M``.

A 256-channel layer on 4096 samples has ~800 million nonzeros; its operator
holds only the weight. :func:`conv_operator` (and :func:`conv1d_operator`,
:func:`conv2d_operator`, :func:`conv3d_operator`) applies ``M`` (the
convolution) and ``M^H`` (its adjoint, the input gradient) with the same
geometry as :func:`~toeplitz_conv.conv_matrix`, so the operator and the matrix
agree by construction of one index plan (:mod:`toeplitz_conv._geometry`); the
``conv_transpose*_operator`` functions give the transposed convolutions.

The passes themselves live in :mod:`toeplitz_conv._kernel`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._arrays import matrix_dtype
from ._geometry import ConvGeometry, Padding, PaddingND
from ._kernel import Kernel
from ._layer import Layer, conv_layer, transpose_layer
from ._linop import apply_kernel
from ._typing import (
    ArrayLike,
    DTypeLike,
    KernelMethod,
    NDArray,
    PaddingMode,
    TransposePadding,
)

__all__ = [
    "Conv1dOperator",
    "ConvOperator",
    "ConvTranspose1dOperator",
    "ConvTransposeOperator",
    "conv1d_operator",
    "conv2d_operator",
    "conv3d_operator",
    "conv_operator",
    "conv_transpose1d_operator",
    "conv_transpose2d_operator",
    "conv_transpose3d_operator",
    "conv_transpose_operator",
]


class _ConvOperatorBase(LinearOperator):
    """Shared plumbing: reshaping vectors and column batches to ``(C, *S, B)``."""

    _kernel: Kernel

    @property
    def method(self) -> str:
        """The algorithm of both passes: ``"direct"``, ``"fft"``, ``"winograd"`` or
        ``"winograd2"``."""
        return self._kernel.method

    _transposed = False  # True where matvec is the kernel's adjoint pass

    def _apply(self, X: np.ndarray, adjoint: bool) -> np.ndarray:
        return apply_kernel(self._kernel, self.dtype, X, adjoint)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X, adjoint=self._transposed)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X, adjoint=not self._transposed)

    _matvec = _matmat
    _rmatvec = _rmatmat

    def _check_operand(self, x: ArrayLike, side: int, columns: bool) -> None:
        """Refuse a vector (or block of columns) of the wrong length by name, before scipy's
        bare "dimension mismatch": `side` 1 is what the operator takes, 0 what it returns."""
        shape = np.shape(x)
        n = self.shape[side]
        if (shape[:1] == (n,) and len(shape) == 2) if columns else shape in ((n,), (n, 1)):
            return
        k = self._kernel
        forward = isinstance(self, ConvOperator)
        takes_input = (side == 1) == forward
        channels, size = (k.c_in, k.input_size) if takes_input else (k.c_out, k.output_size)
        what = "columns (n, B)" if columns else "a vector (n,) or (n, 1)"
        who = f"this {self.shape[0]}x{self.shape[1]} operator"
        who = who if side == 1 else f"the adjoint (rmatvec) of {who}"
        raise ValueError(
            f"{who} takes {what} with n = {n:,} = "
            f"C * prod(size) for (C, size) = ({channels}, {size}), a flattened "
            f"{(channels, *size)} array; got shape {shape}"
        )

    # scipy-stubs overloads these on float64/complex128 arrays; any array-like works
    def matvec(self, x: ArrayLike) -> NDArray[Any]:  # type: ignore[override]
        if type(x) is np.ndarray and x.shape == (self.shape[1],):  # scipy's checks hold
            return self._matmat(x)
        self._check_operand(x, 1, columns=False)
        return super().matvec(x)  # type: ignore[arg-type]

    # scipy-stubs overloads these on float64/complex128 arrays; any array-like works
    def rmatvec(self, x: ArrayLike) -> NDArray[Any]:  # type: ignore[override]
        if type(x) is np.ndarray and x.shape == (self.shape[0],):
            return self._rmatmat(x)
        self._check_operand(x, 0, columns=False)
        return super().rmatvec(x)  # type: ignore[arg-type]

    # scipy-stubs overloads these on float64/complex128 arrays; any array-like works
    def matmat(self, X: ArrayLike) -> NDArray[Any]:  # type: ignore[override]
        self._check_operand(X, 1, columns=True)
        return super().matmat(X)  # type: ignore[arg-type]

    # scipy-stubs overloads these on float64/complex128 arrays; any array-like works
    def rmatmat(self, X: ArrayLike) -> NDArray[Any]:  # type: ignore[override]
        self._check_operand(X, 0, columns=True)
        return super().rmatmat(X)  # type: ignore[arg-type]


class ConvOperator(_ConvOperatorBase):
    r"""The matrix of a convolution (1, 2 or 3 spatial axes) as a matrix-free ``LinearOperator``.

    Made by :func:`conv_operator` (or :func:`conv1d_operator`,
    :func:`conv2d_operator`, :func:`conv3d_operator`); see there for the
    parameters. ``Conv1dOperator`` is this class.

    Attributes
    ----------
    weight : ndarray, shape (C_out, C_in/groups, K_1, ..., K_n)
        The kernel, in the operator's dtype: a read-only copy taken when the operator is
        made (changing the array it came from afterwards does not change the operator).
    geometries : tuple of ConvGeometry
        One per spatial axis: the validated stride, padding, dilation, sizes and
        padding mode. ``geometry`` is the only one of a 1-D operator.
    groups, in_channels, out_channels, ndim : int
    input_size, output_size : tuple of int
        ``(S_1, ..., S_n)`` and ``(S_out,1, ..., S_out,n)``; for 1-D also
        ``input_length`` and ``output_length``.
    shape : (int, int)
        ``(C_out * prod(S_out), C_in * prod(S))``.
    dtype : numpy.dtype
        The weight's (integers become float64) unless ``dtype=`` said otherwise.
    method : str
        The algorithm both passes run: ``"direct"``, ``"fft"``, ``"winograd"`` or
        ``"winograd2"`` (what ``method="auto"`` chose; read-only).
    """

    def __init__(
        self,
        weight: np.ndarray,
        geometries: tuple[ConvGeometry, ...] | ConvGeometry,
        groups: int,
        method: str = "auto",
    ) -> None:
        self._kernel = Kernel(weight, geometries, groups, method)
        self.weight = self._kernel.weight  # a read-only copy, taken now
        self.geometries = self._kernel.geoms
        self.groups = groups
        self.ndim = len(self.geometries)  # type: ignore[misc]  # spatial axes, not LinearOperator's 2
        self.out_channels = weight.shape[0]
        self.in_channels = self._kernel.c_in
        self.input_size = self._kernel.input_size
        self.output_size = self._kernel.output_size
        shape = (
            self.out_channels * math.prod(self.output_size),
            self.in_channels * math.prod(self.input_size),
        )
        super().__init__(dtype=weight.dtype, shape=shape)  # type: ignore[call-arg]  # stubs: __new__

    @property
    def geometry(self) -> ConvGeometry:
        """The geometry of a 1-D operator."""
        return Layer(self.weight, self.geometries, self.groups).geom

    @property
    def input_length(self) -> int:
        """``L`` of a 1-D operator."""
        return self.geometry.input_length

    @property
    def output_length(self) -> int:
        """``L_out`` of a 1-D operator."""
        return self.geometry.output_length

    def __repr__(self) -> str:
        gs = self.geometries
        stride: int | tuple[int, ...]
        dilation: int | tuple[int, ...]
        padding: str | tuple[tuple[int, int], ...]
        if self.ndim == 1:
            g = gs[0]
            size = f"input_length={g.input_length}"
            stride, dilation, padding = g.stride, g.dilation, f"({g.pad_left}, {g.pad_right})"
        else:
            size = f"input_size={self.input_size}"
            stride = tuple(g.stride for g in gs)
            dilation = tuple(g.dilation for g in gs)
            padding = tuple((g.pad_left, g.pad_right) for g in gs)
        return (
            f"<{self.shape[0]}x{self.shape[1]} Conv{self.ndim}dOperator with dtype={self.dtype}: "
            f"weight {self.weight.shape}, {size}, stride={stride}, "
            f"padding={padding}, dilation={dilation}, "
            f"groups={self.groups}, padding_mode={gs[0].padding_mode!r}>"
        )

    def _adjoint(self) -> ConvTransposeOperator:
        return ConvTransposeOperator(self)

    def _transpose(self) -> ConvTransposeOperator:
        if self.dtype.kind != "c":
            return ConvTransposeOperator(self)
        return ConvTransposeOperator(
            ConvOperator(self.weight.conj(), self.geometries, self.groups, self.method)
        )


class ConvTransposeOperator(_ConvOperatorBase):
    r"""The adjoint of a :class:`ConvOperator`: the transposed convolution.

    ``matvec`` is the convolution's ``rmatvec`` and back. For zero padding this
    is ``conv_transpose1d``/``2d``/``3d`` (of the conjugated weight); for the
    other modes the gradient that reaches the padding is folded back onto the
    samples it copied. ``ConvTranspose1dOperator`` is this class.

    Attributes
    ----------
    forward : ConvOperator
        The convolution this is the adjoint of; ``op.H`` returns it.
    shape : (int, int)
        ``(C_in * prod(S), C_out * prod(S_out))`` of the forward convolution.
    """

    _transposed = True

    def __init__(self, forward: ConvOperator) -> None:
        self.forward = forward
        self._kernel = forward._kernel
        super().__init__(dtype=forward.dtype, shape=forward.shape[::-1])  # type: ignore[call-arg]

    def __repr__(self) -> str:
        return f"<adjoint of {self.forward!r}>"

    def _adjoint(self) -> ConvOperator:
        return self.forward

    def _transpose(self) -> ConvOperator:
        if self.dtype.kind != "c":
            return self.forward
        f = self.forward
        return ConvOperator(f.weight.conj(), f.geometries, f.groups, f.method)


# The 1-D names: the same classes (a 1-D operator is the case n = 1).
Conv1dOperator = ConvOperator
ConvTranspose1dOperator = ConvTransposeOperator


def _conv_op(layer: Layer, *, dtype: DTypeLike | None, method: str) -> ConvOperator:
    w = np.ascontiguousarray(layer.weight, dtype=matrix_dtype(layer.weight.dtype, dtype))
    return ConvOperator(w, layer.geoms, layer.groups, method)


def _transpose_op(layer: Layer, *, dtype: DTypeLike | None, method: str) -> ConvTransposeOperator:
    """The transpose of the conv `layer`: ``conv(conj(W))``'s adjoint is ``conv_transpose(W)``."""
    conj = Layer(layer.weight.conj(), layer.geoms, layer.groups)
    return ConvTransposeOperator(_conv_op(conj, dtype=dtype, method=method))


def conv1d_operator(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
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
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm, as in :func:`scipy.signal.convolve`; see :func:`conv_operator`.

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
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_length, groups=groups, ndim=1, **geometry)
    return _conv_op(layer, dtype=dtype, method=method)


def conv_transpose1d_operator(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
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
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm of the convolution it transposes; see :func:`conv_operator`.

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
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_length, groups=groups, ndim=1, **geometry)
    return _transpose_op(layer, dtype=dtype, method=method)


def conv_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
) -> ConvOperator:
    r"""The matrix of a convolution on ``n`` spatial axes as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, ..., K_n) or (K_1, ..., K_n)
        The kernel in torch's layout; torch tensors are accepted. A weight with
        only the kernel axes is one channel in and out.
    input_size : int or tuple of n ints
        ``(S_1, ..., S_n)``; ``n`` is its length (an int is 1-D with a 1-D
        weight, else broadcast to the weight's axes).
    stride, padding, dilation, groups, padding_mode : optional
        Per spatial axis (an int applies to every axis), as in
        :func:`~toeplitz_conv.conv_matrix`.
    dtype : dtype, optional
        The operator's dtype; defaults to the weight's (integers become float64).
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm of both passes, as in :func:`scipy.signal.convolve`.
        ``"direct"``: the sum of products (patch copies and one GEMM per
        cache-sized block). ``"fft"``
        (1-D only): overlap-save, ``O(log K)`` per output. ``"winograd2"``
        (3-tap 1-D and 3x3 2-D, dilation 1, stride 1, or 2 on every axis):
        F(2, 3) / F(2x2, 3x3) tiles, 2.25x fewer multiplications in 2-D (1.44x at
        stride 2, polyphase tiles), rounding like the direct sum (float32: ~4e-7 of
        the output's scale). ``"winograd"`` (stride 1 only):
        F(4, 3) / F(4x4, 3x3) tiles, 4x fewer multiplications in 2-D but a
        rounding error 3-25x the direct sum's in 2-D in the benchmarks (float32:
        ~1e-6 to 1e-5; see the operators page of the docs), so opt-in there; in
        1-D with the ``[fast]`` extra (numba) 0.6-2.6x. ``"auto"`` (default)
        picks ``"fft"`` for 1-D kernels of 64 taps or more, ``"winograd"`` for
        3-tap 1-D layers with stride 1, dilation 1 and at least 16 input and
        output channels per group when numba is installed, ``"winograd2"`` for
        thick dense 2-D 3x3 layers with stride and dilation 1
        (``_kernel.WINOGRAD2_FROM``: 32+ channels per group with numba, 64+
        without, at most 256, and large enough outputs) and for dense stride-2 ones that do
        not widen, with numba (``_kernel.WINOGRAD2_STRIDE2``), and ``"direct"``
        otherwise. A method the layer cannot
        use raises ValueError; ``op.method`` tells which one runs.

    Returns
    -------
    op : ConvOperator, shape (C_out * prod(S_out), C_in * prod(S))
        ``op @ x.reshape(-1) == conv(x, weight, ...).reshape(-1)`` for ``x`` of
        shape ``(C_in, *S)``; ``op.matmat(X)`` maps the columns of ``X`` (shape
        ``(C_in * prod(S), B)``) at once; ``op.H`` and ``op.adjoint()`` are the
        adjoint (:class:`ConvTransposeOperator`), ``op.T`` the transpose (the
        adjoint of the conjugated weight's convolution: the same for real weights).

    Notes
    -----
    The operator stores the weight only and applies, without forming ``M``,

    .. math::

        (M x)[o, i_1, \dots, i_n] = \sum_{c < G} \sum_{k_1, \dots, k_n}
            W[o, c, k_1, \dots, k_n]\,
            \tilde x[g(o) G + c,\; i_1 s_1 + k_1 d_1 - p_1, \dots, i_n s_n + k_n d_n - p_n],

    and ``M^H`` (for zero padding ``conv_transpose`` of the conjugated weight;
    taps that read the padding of the other modes add onto the sample they
    copied). Vectors are flattened row-major over ``(channel, S_1, ..., S_n)``.
    Inputs of another dtype are computed in the common dtype.

    Examples
    --------
    >>> import numpy as np
    >>> op = conv_operator(np.ones((1, 1, 2, 2)), (3, 3))
    >>> op
    <4x9 Conv2dOperator with dtype=float64: weight (1, 1, 2, 2), input_size=(3, 3),
    stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1, padding_mode='zeros'>
    >>> op @ np.arange(9.0)
    array([ 8., 12., 20., 24.])
    >>> op.H @ np.array([1.0, 0, 0, 0])
    array([1., 1., 0., 1., 1., 0., 0., 0., 0.])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_size, groups=groups, ndim=None, **geometry)
    return _conv_op(layer, dtype=dtype, method=method)


def conv2d_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
) -> ConvOperator:
    r"""The matrix of ``conv2d`` as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2) or (K_1, K_2)
    input_size : int or (int, int)
        ``(H, W)``; an int is both.
    stride, padding, dilation, groups, padding_mode, dtype, method : optional
        As in :func:`conv_operator`.

    Returns
    -------
    op : ConvOperator, shape (C_out * H_out * W_out, C_in * H * W)
        ``op @ x.reshape(-1) == conv2d(x, weight, ...).reshape(-1)``.

    Notes
    -----
    .. math::

        (M x)[o, i, j] = \sum_{c < G} \sum_{k, l} W[o, c, k, l]\,
            \tilde x[g(o) G + c,\; i s_1 + k d_1 - p_1,\; j s_2 + l d_2 - p_2]

    Examples
    --------
    >>> import numpy as np
    >>> op = conv2d_operator(np.ones((2, 2)), 4, stride=2)
    >>> op.shape
    (4, 16)
    >>> op @ np.arange(16.0)
    array([10., 18., 42., 50.])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_size, groups=groups, ndim=2, **geometry)
    return _conv_op(layer, dtype=dtype, method=method)


def conv3d_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
) -> ConvOperator:
    r"""The matrix of ``conv3d`` as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
    input_size : int or (int, int, int)
        ``(D, H, W)``; an int is all three.
    stride, padding, dilation, groups, padding_mode, dtype, method : optional
        As in :func:`conv_operator`.

    Returns
    -------
    op : ConvOperator, shape (C_out * D_out * H_out * W_out, C_in * D * H * W)
        ``op @ x.reshape(-1) == conv3d(x, weight, ...).reshape(-1)``.

    Notes
    -----
    .. math::

        (M x)[o, i_1, i_2, i_3] = \sum_{c < G} \sum_{k_1, k_2, k_3} W[o, c, k_1, k_2, k_3]\,
            \tilde x[g(o) G + c,\; i_1 s_1 + k_1 d_1 - p_1, \dots, i_3 s_3 + k_3 d_3 - p_3]

    Examples
    --------
    >>> import numpy as np
    >>> op = conv3d_operator(np.ones((2, 2, 2)), 3, padding=1, padding_mode="circular")
    >>> op.shape
    (64, 27)
    >>> float((op @ np.ones(27)).max())
    8.0
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_size, groups=groups, ndim=3, **geometry)
    return _conv_op(layer, dtype=dtype, method=method)


def conv_transpose_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
) -> ConvTransposeOperator:
    r"""The matrix of a transposed convolution on ``n`` axes as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, ..., K_n) or (K_1, ..., K_n)
        torch's ``conv_transpose`` layout: the weight of the convolution it transposes.
    input_size : int or tuple of n ints
        ``(S_1, ..., S_n)`` of the transposed convolution's input.
    stride, padding, output_padding, groups, dilation : optional
        Per axis, as in :func:`~toeplitz_conv.conv_transpose_matrix`.
    dtype : dtype, optional
        Defaults to the weight's (integers become float64).
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm of the convolution it transposes; see :func:`conv_operator`.

    Returns
    -------
    op : ConvTransposeOperator, shape (C_out * prod(S'), C_in * prod(S))
        ``S'_a = (S_a - 1)s_a - p_a,l - p_a,r + d_a(K_a-1) + output_padding_a + 1``;
        ``op @ x.reshape(-1) == conv_transpose(x, weight, ...).reshape(-1)``.
        ``op.T`` is the :class:`ConvOperator` of `weight` on ``S'``, ``op.H``
        that of ``conj(weight)``.

    Notes
    -----
    .. math::

        z[g G + c,\; i_1 s_1 + k_1 d_1 - p_1, \dots] \mathrel{+}=
        W[o, c, k_1, \dots, k_n]\, x[o, i_1, \dots, i_n] \quad (o \text{ in group } g).

    Examples
    --------
    >>> import numpy as np
    >>> op = conv_transpose_operator(np.ones((1, 1, 2, 2)), (1, 2), stride=(1, 2))
    >>> op @ np.array([1.0, 2.0])
    array([1., 1., 2., 2., 1., 1., 2., 2.])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_size, groups=groups, ndim=None, **geometry)
    return _transpose_op(layer, dtype=dtype, method=method)


def conv_transpose2d_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
) -> ConvTransposeOperator:
    r"""The matrix of ``conv_transpose2d`` as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2) or (K_1, K_2)
    input_size : int or (int, int)
        ``(H, W)`` of the transposed convolution's input; an int is both.
    stride, padding, output_padding, groups, dilation, dtype, method : optional
        As in :func:`conv_transpose_operator`.

    Returns
    -------
    op : ConvTransposeOperator, shape (C_out * H' * W', C_in * H * W)
        ``op @ x.reshape(-1) == conv_transpose2d(x, weight, ...).reshape(-1)``.

    Notes
    -----
    .. math::

        z[g G + c,\; i s_1 + k d_1 - p_1,\; j s_2 + l d_2 - p_2] \mathrel{+}=
        W[o, c, k, l]\, x[o, i, j] \quad (o \text{ in group } g).

    Examples
    --------
    >>> import numpy as np
    >>> op = conv_transpose2d_operator(np.ones((2, 2)), 2, stride=2)
    >>> (op @ np.arange(4.0)).reshape(4, 4)
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_size, groups=groups, ndim=2, **geometry)
    return _transpose_op(layer, dtype=dtype, method=method)


def conv_transpose3d_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    dtype: DTypeLike | None = None,
    method: KernelMethod = "auto",
) -> ConvTransposeOperator:
    r"""The matrix of ``conv_transpose3d`` as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
    input_size : int or (int, int, int)
        ``(D, H, W)`` of the transposed convolution's input; an int is all three.
    stride, padding, output_padding, groups, dilation, dtype, method : optional
        As in :func:`conv_transpose_operator`.

    Returns
    -------
    op : ConvTransposeOperator, shape (C_out * D' * H' * W', C_in * D * H * W)
        ``op @ x.reshape(-1) == conv_transpose3d(x, weight, ...).reshape(-1)``.

    Notes
    -----
    .. math::

        z[g G + c,\; i_1 s_1 + k_1 d_1 - p_1, \dots, i_3 s_3 + k_3 d_3 - p_3] \mathrel{+}=
        W[o, c, k_1, k_2, k_3]\, x[o, i_1, i_2, i_3] \quad (o \text{ in group } g).

    Examples
    --------
    >>> import numpy as np
    >>> op = conv_transpose3d_operator(np.ones((2, 2, 2)), 1)
    >>> op @ np.array([2.0])
    array([2., 2., 2., 2., 2., 2., 2., 2.])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_size, groups=groups, ndim=3, **geometry)
    return _transpose_op(layer, dtype=dtype, method=method)

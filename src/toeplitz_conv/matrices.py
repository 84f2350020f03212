"""The matrices of ``conv1d/2d/3d`` and ``conv_transpose1d/2d/3d``, built in the format asked for.

Every builder is the same code path: the parameters are validated once into a
:class:`~._layer.Layer` (one geometry per spatial axis) and handed to
:func:`~._build.layer_matrix`. 1-D is the case of one axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np

from ._arrays import as_array, check_memory
from ._build import FORMATS, layer_matrix
from ._geometry import (
    Padding,
    PaddingND,
    check_int,
    conv_geometries,
    conv_geometry,
    per_axis,
)
from ._layer import conv_layer, input_size_tuple, transpose_layer
from ._public import renamed_keyword
from ._typing import (
    ArrayLike,
    DTypeLike,
    MatrixFormat,
    NDArray,
    PaddingMode,
    SparseArray,
    SparseFormat,
)

__all__ = [
    "FORMATS",
    "bias_vector",
    "conv1d_matrix",
    "conv2d_matrix",
    "conv3d_matrix",
    "conv_matrix",
    "conv_transpose1d_matrix",
    "conv_transpose2d_matrix",
    "conv_transpose3d_matrix",
    "conv_transpose_matrix",
    "output_length",
    "output_size",
]


def output_length(
    input_length: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
) -> int:
    """Length of ``conv1d``'s output, as torch computes it.

    Parameters
    ----------
    input_length : int
        ``L``, samples per input channel.
    kernel_size : int
        ``K``, taps per kernel.
    stride, dilation : int, optional
        ``s`` and ``d``, both >= 1.
    padding : int, (int, int), 'same' or 'valid', optional
        Padding ``(p_l, p_r)``; see :func:`conv1d_matrix`.

    Returns
    -------
    int
        ``floor((L + p_l + p_r - d*(K-1) - 1) / s) + 1``.

    Raises
    ------
    ValueError
        If the output would be empty, or a parameter is out of range.

    Examples
    --------
    >>> output_length(5, 2)
    4
    >>> output_length(10, 3, stride=2, padding=1)
    5
    >>> output_length(10, 4, padding="same")
    10
    """
    return conv_geometry(
        input_length, kernel_size, stride=stride, padding=padding, dilation=dilation
    ).output_length


def output_size(
    input_size: int | tuple[int, ...],
    kernel_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
) -> tuple[int, ...]:
    """Output size of a convolution with ``n`` spatial axes, as torch computes it.

    Parameters
    ----------
    input_size, kernel_size : int or tuple of n ints
        ``n`` is the length of whichever is a tuple (1 if neither); an int
        applies to every axis.
    stride, padding, dilation : optional
        As in :func:`conv_matrix`.

    Returns
    -------
    tuple of n ints
        ``floor((L_a + p_{a,l} + p_{a,r} - d_a (K_a - 1) - 1) / s_a) + 1`` per axis.

    Examples
    --------
    >>> output_size((56, 56), 3, padding=1)
    (56, 56)
    >>> output_size((10, 9, 8), (3, 3, 2), stride=(2, 1, 1), padding="valid")
    (4, 7, 7)
    >>> output_size(5, 2)
    (4,)
    """
    for value, name in ((input_size, "input_size"), (kernel_size, "kernel_size")):
        if isinstance(value, (tuple, list)):
            _check_axes(value, name)
    n = next((len(v) for v in (input_size, kernel_size) if isinstance(v, (tuple, list))), 1)
    geoms = conv_geometries(
        input_size_tuple(input_size, n),
        per_axis(kernel_size, "kernel_size", n, minimum=1),
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    return tuple(g.output_length for g in geoms)


@renamed_keyword("output_length", "output_size")
def bias_vector(bias: ArrayLike, output_size: int | tuple[int, ...]) -> NDArray[Any]:
    """The bias as a vector over the flattened output.

    Parameters
    ----------
    bias : array_like, shape (C_out,)
        One bias per output channel.
    output_size : int or tuple of ints
        ``L_out``, or ``(L_out,1, ..., L_out,n)``.

    Returns
    -------
    ndarray, shape (C_out * prod(output_size),)
        ``c[o*P + i] = bias[o]`` with ``P = prod(output_size)``, so that
        ``M @ vec(x) + c == vec(conv(x, W, bias))``.

    Examples
    --------
    >>> bias_vector([1.0, -2.0], 3)
    array([ 1.,  1.,  1., -2., -2., -2.])
    >>> bias_vector([1.0, -2.0], (2, 2))
    array([ 1.,  1.,  1.,  1., -2., -2., -2., -2.])
    """
    b = as_array(bias, "bias")
    if b.ndim != 1:
        raise ValueError(f"`bias` must have shape (C_out,); got shape {b.shape}")
    if isinstance(output_size, (tuple, list)):
        _check_axes(output_size, "output_size")
        n = math.prod(per_axis(output_size, "output_size", len(output_size), minimum=1))
    else:
        n = check_int(output_size, "output_length", minimum=1)
    if b.dtype.kind in "biu":
        b = b.astype(np.float64)
    check_memory(
        b.size * n * b.dtype.itemsize,
        f"the bias vector of {b.size * n:,} values",
        "check `output_size` (it is the conv's output size, not the input's)",
    )
    return np.repeat(b, n)


def _check_axes(size: tuple | list, name: str) -> None:
    """A tuple size has one entry per spatial axis: 1, 2 or 3 of them."""
    if not 1 <= len(size) <= 3:
        raise ValueError(
            f"`{name}` must be an int or a tuple of 1, 2 or 3 ints (one per spatial axis); "
            f"got {tuple(size)!r}"
        )


_PARAMETERS_DOC = """
    stride, dilation : int or tuple of n ints, optional
        Per axis; an int applies to every axis.
    padding : int, tuple, 'same' or 'valid', optional
        An int pads every axis on both sides; a tuple has one item per axis, an
        int (both sides) or a ``(left, right)`` pair. ``'same'`` (stride 1) pads
        ``d_a (K_a - 1)`` in total on axis ``a``, the odd one on the right, as torch.
    groups : int, optional
        Must divide ``C_out``; ``C_in = groups * weight.shape[1]``.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, optional
        Separable per axis, as ``nn.Conv2d(padding_mode=...)``.
    format : {'csr', 'csc', 'coo', 'bsr', 'dia', 'dense'}, optional
        A canonical scipy sparse array, or an ``ndarray`` for ``'dense'``.
        ``'dia'`` is refused where it would store far more than the nonzeros.
    dtype : dtype, optional
        Defaults to the weight's (integers become float64).
    rows : (int, int), optional
        ``(r0, r1)``: only rows ``[r0, r1)`` of ``M``, shape ``(r1 - r0, n_cols)``,
        built in time and memory proportional to them (formats 'csr', 'coo',
        'dense'); for assembling a matrix by row blocks, e.g. one per MPI rank."""


@overload
def conv_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, ...] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> SparseArray: ...
@overload
def conv_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, ...] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> NDArray[Any]: ...
def conv_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
    rows: tuple[int, int] | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix ``M`` of a convolution on ``n = 1, 2, 3`` axes: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, ..., K_n) or (K_1, ..., K_n)
        The kernel in torch's layout; the kernel axes alone mean one channel in
        and out (``n`` is then ``len(input_size)``). Torch tensors are accepted.
    input_size : int or tuple of n ints
        ``(L_1, ..., L_n)``. An int applies to every axis of the weight: with a
        ``(C_out, C_in/groups, K)`` or ``(K,)`` weight it is 1-D (``conv1d_matrix``),
        with a ``(C_out, C_in/groups, K_1, K_2)`` weight ``(L, L)``, and so on.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * prod(L_out), C_in * prod(L))
        With int32 indices whenever they fit.

    See Also
    --------
    conv1d_matrix, conv2d_matrix, conv3d_matrix, conv_transpose_matrix

    Notes
    -----
    Rows and columns flatten row-major over ``(channel, L_1, ..., L_n)``, i.e.
    ``x.reshape(-1)`` of one sample; a batch is ``X.reshape(N, -1) @ M.T``. With
    ``G = C_in/groups`` and ``g(o) = o // (C_out/groups)``,

    .. math::

        M[(o, i_1, ..., i_n),\; (g(o) G + c, \mathrm{src}_1(i_1 s_1 + k_1 d_1 - p_1), ...,
        \mathrm{src}_n(i_n s_n + k_n d_n - p_n))] \mathrel{+}= W[o, c, k_1, ..., k_n],

    each ``src_a`` mapping a padded position on axis ``a`` into the input (or
    nowhere, for zero padding). Each channel block is
    ``sum_k W[o, c, k] S_1^{k_1} (x) ... (x) S_n^{k_n}`` with ``S_a^k`` the 1-D
    selection matrix of tap ``k`` on axis ``a``: block Toeplitz with Toeplitz
    blocks for zero padding, block circulant with circulant blocks for circular.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv_matrix(np.ones((1, 1, 2, 2)), (3, 3))
    >>> M.shape, M.nnz
    ((4, 9), 16)
    >>> conv_matrix([4.0, 3.0], 5).toarray()[0]
    array([4., 3., 0., 0., 0.])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_size, groups=groups, ndim=None, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, rows=rows)


@overload
def conv2d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, int] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> SparseArray: ...
@overload
def conv2d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, int] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> NDArray[Any]: ...
def conv2d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
    rows: tuple[int, int] | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix ``M`` of ``torch.nn.functional.conv2d``: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2) or (K_1, K_2)
        The kernel in torch's layout; ``(K_1, K_2)`` is one channel in and out.
    input_size : int or (int, int)
        ``(H, W)``; an int means a square image.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * H_out * W_out, C_in * H * W)
        With int32 indices whenever they fit.

    See Also
    --------
    conv_matrix, conv_transpose2d_matrix

    Notes
    -----
    ``vec(x)[(c H + h) W + w] = x[c, h, w]`` (``x.reshape(-1)``), and

    .. math::

        M[(o H_{out} + i) W_{out} + j,\; ((g(o) G + c) H + \mathrm{src}_1(i s_1 + k_1 d_1 - p_1))
        W + \mathrm{src}_2(j s_2 + k_2 d_2 - p_2)] \mathrel{+}= W[o, c, k_1, k_2].

    Each ``(o, c)`` block is ``sum_{k_1, k_2} W[o, c, k_1, k_2] S_1^{k_1} (x) S_2^{k_2}``:
    block Toeplitz with Toeplitz blocks (BTTB) for zero padding, block circulant
    with circulant blocks (BCCB) for circular padding.

    Examples
    --------
    A 3x3 kernel on a 4x4 image: 16 columns, a 2x2 output. The block row of
    output row ``i`` holds the Toeplitz blocks of kernel rows 0, 1, 2 at block
    columns ``i, i+1, i+2`` (BTTB):

    >>> import numpy as np
    >>> w = np.arange(1.0, 10.0).reshape(3, 3)
    >>> M = conv2d_matrix(w, (4, 4))
    >>> M.toarray().astype(int)
    array([[1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0],
           [0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0],
           [0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0],
           [0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9]])
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> (M @ x.reshape(-1)).reshape(2, 2)
    array([[303., 348.],
           [483., 528.]])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_size, groups=groups, ndim=2, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, rows=rows)


@overload
def conv3d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, int, int] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> SparseArray: ...
@overload
def conv3d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, int, int] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> NDArray[Any]: ...
def conv3d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
    rows: tuple[int, int] | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix ``M`` of ``torch.nn.functional.conv3d``: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
        The kernel in torch's layout; the kernel alone is one channel in and out.
    input_size : int or (int, int, int)
        ``(D, H, W)``; an int means a cube.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * D_out * H_out * W_out, C_in * D * H * W)
        With int32 indices whenever they fit.

    See Also
    --------
    conv_matrix, conv_transpose3d_matrix

    Notes
    -----
    As :func:`conv_matrix` with ``n = 3``: rows and columns flatten row-major
    over ``(channel, D, H, W)``; each channel block is a three-level
    ``sum_k W[o, c, k] S_1^{k_1} (x) S_2^{k_2} (x) S_3^{k_3}``.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv3d_matrix(np.ones((2, 2, 2)), 3, padding=1, padding_mode="circular")
    >>> M.shape, M.nnz
    ((64, 27), 512)
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_size, groups=groups, ndim=3, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, rows=rows)


_TRANSPOSE_PARAMETERS_DOC = """
    stride, dilation : int or tuple of n ints, optional
        As in torch, per axis.
    padding : int or tuple, optional
        An int (every axis, both sides) or one item per axis, an int or a
        ``(left, right)`` pair.
    output_padding : int or tuple of n ints, optional
        Extra samples on the right of each axis, ``0 <= q_a < max(s_a, d_a)``.
    groups : int, optional
        As in torch.
    format, dtype : optional
        As in :func:`conv_matrix`."""


@overload
def conv_transpose_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = ...,
    padding: int | tuple[int | tuple[int, int], ...] = ...,
    output_padding: int | tuple[int, ...] = ...,
    groups: int = ...,
    dilation: int | tuple[int, ...] = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
) -> SparseArray: ...
@overload
def conv_transpose_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = ...,
    padding: int | tuple[int | tuple[int, int], ...] = ...,
    output_padding: int | tuple[int, ...] = ...,
    groups: int = ...,
    dilation: int | tuple[int, ...] = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
) -> NDArray[Any]: ...
def conv_transpose_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int | tuple[int, int], ...] = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix of a transposed convolution with ``n = 1, 2, 3`` spatial axes.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, ..., K_n) or (K_1, ..., K_n)
        torch's ``conv_transpose`` layout: the weight of the convolution it transposes.
    input_size : int or tuple of n ints
        ``(L_1, ..., L_n)`` of the transposed convolution's input; an int means 1-D.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * prod(L'), C_in * prod(L))
        With ``L'_a = (L_a - 1) s_a - p_{a,l} - p_{a,r} + d_a (K_a - 1) + q_a + 1``.

    See Also
    --------
    conv_matrix, conv_transpose1d_matrix, conv_transpose2d_matrix, conv_transpose3d_matrix

    Notes
    -----
    ``conv_transpose_matrix(W, L, ...) == conv_matrix(W, L', ...).T`` (its first
    ``L`` output positions on each axis): the transposed convolution is the
    transpose of the convolution, and ``M.T @ g`` is its input gradient.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose_matrix(np.ones((2, 2)), (2, 2)).toarray().astype(int)
    array([[1, 0, 0, 0],
           [1, 1, 0, 0],
           [0, 1, 0, 0],
           [1, 0, 1, 0],
           [1, 1, 1, 1],
           [0, 1, 0, 1],
           [0, 0, 1, 0],
           [0, 0, 1, 1],
           [0, 0, 0, 1]])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_size, groups=groups, ndim=None, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, transpose=True)


@overload
def conv_transpose2d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = ...,
    padding: int | tuple[int | tuple[int, int], ...] = ...,
    output_padding: int | tuple[int, int] = ...,
    groups: int = ...,
    dilation: int | tuple[int, int] = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
) -> SparseArray: ...
@overload
def conv_transpose2d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = ...,
    padding: int | tuple[int | tuple[int, int], ...] = ...,
    output_padding: int | tuple[int, int] = ...,
    groups: int = ...,
    dilation: int | tuple[int, int] = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
) -> NDArray[Any]: ...
def conv_transpose2d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int | tuple[int, int], ...] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix of ``torch.nn.functional.conv_transpose2d``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2) or (K_1, K_2)
        torch's ``conv_transpose2d`` layout.
    input_size : int or (int, int)
        ``(H, W)`` of the transposed convolution's input.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * H' * W', C_in * H * W)
        ``conv2d_matrix(W, (H', W'), ...).T``; see :func:`conv_transpose_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv_transpose2d_matrix(np.ones((1, 1, 3, 3)), (2, 2), stride=2, output_padding=1)
    >>> M.shape
    (36, 4)
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_size, groups=groups, ndim=2, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, transpose=True)


@overload
def conv_transpose3d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = ...,
    padding: int | tuple[int | tuple[int, int], ...] = ...,
    output_padding: int | tuple[int, int, int] = ...,
    groups: int = ...,
    dilation: int | tuple[int, int, int] = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
) -> SparseArray: ...
@overload
def conv_transpose3d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = ...,
    padding: int | tuple[int | tuple[int, int], ...] = ...,
    output_padding: int | tuple[int, int, int] = ...,
    groups: int = ...,
    dilation: int | tuple[int, int, int] = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
) -> NDArray[Any]: ...
def conv_transpose3d_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int | tuple[int, int], ...] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix of ``torch.nn.functional.conv_transpose3d``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
        torch's ``conv_transpose3d`` layout.
    input_size : int or (int, int, int)
        ``(D, H, W)`` of the transposed convolution's input.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * D' * H' * W', C_in * D * H * W)
        ``conv3d_matrix(W, (D', H', W'), ...).T``; see :func:`conv_transpose_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose3d_matrix(np.ones((2, 2, 2)), 2).shape
    (27, 8)
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_size, groups=groups, ndim=3, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, transpose=True)


def _fill_parameters(functions: tuple[Callable[..., object], ...], text: str) -> None:
    """Put the shared parameter list `text` into each docstring (absent under ``python -OO``)."""
    for f in functions:
        if f.__doc__:
            f.__doc__ = f.__doc__.replace("    %(parameters)s", text.strip("\n"))


_fill_parameters((conv_matrix, conv2d_matrix, conv3d_matrix), _PARAMETERS_DOC)
_fill_parameters(
    (conv_transpose_matrix, conv_transpose2d_matrix, conv_transpose3d_matrix),
    _TRANSPOSE_PARAMETERS_DOC,
)


@overload
def conv1d_matrix(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = ...,
    padding: Padding = ...,
    dilation: int = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> SparseArray: ...
@overload
def conv1d_matrix(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = ...,
    padding: Padding = ...,
    dilation: int = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
    rows: tuple[int, int] | None = ...,
) -> NDArray[Any]: ...
def conv1d_matrix(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
    rows: tuple[int, int] | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix ``M`` of ``torch.nn.functional.conv1d``: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
        The kernel, in torch's layout; a 1-D kernel means one channel in and out.
        Torch tensors are accepted.
    input_length : int
        ``L``, samples per input channel.
    stride, dilation, groups : int, optional
        As in torch; ``groups`` must divide ``C_out`` (``C_in = groups * weight.shape[1]``).
    padding : int, (int, int), 'same' or 'valid', optional
        ``p`` pads ``(p, p)``; a pair pads ``(p_l, p_r)``; ``'same'`` (stride 1)
        pads ``d*(K-1)`` in total, the odd one on the right, as torch does.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, optional
        How the signal is extended. Reflect needs ``p < L``, circular ``p <= L``.
    format : {'csr', 'csc', 'coo', 'bsr', 'dia', 'dense'}, optional
        A canonical scipy sparse array, or an ``ndarray`` for ``'dense'``.
        ``'dia'`` is refused where it would store far more than the nonzeros.
    dtype : dtype, optional
        Defaults to the weight's (integers become float64).
    rows : (int, int), optional
        ``(r0, r1)``: only rows ``[r0, r1)``, as in :func:`conv_matrix`.

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * L_out, C_in * L)
        With int32 indices whenever they fit.

    Notes
    -----
    Inputs flatten row-major over (channel, position): ``vec(x)[c*L + l] = x[c, l]``.
    With ``G = C_in/groups`` and ``g(o) = o // (C_out/groups)``,

    .. math::

        M[o L_{out} + i,\; (g(o) G + c) L + \mathrm{src}(i s + k d - p_l)]
        \mathrel{+}= W[o, c, k],

    where ``src`` maps the padded position into the signal (or nowhere, for
    zero padding); taps landing on one column add up. This is cross-correlation,
    as in deep learning: the kernel is not flipped. For one channel, stride 1
    and zero padding the matrix is banded Toeplitz::

        [[w0 w1  0  0  0]
         [ 0 w0 w1  0  0]
         [ 0  0 w0 w1  0]
         [ 0  0  0 w0 w1]]

    A batch ``X`` of shape ``(N, C_in, L)`` maps to ``X.reshape(N, -1) @ M.T``;
    add :func:`bias_vector` for the bias.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv1d_matrix([4.0, 3.0], 5)
    >>> M.toarray()
    array([[4., 3., 0., 0., 0.],
           [0., 4., 3., 0., 0.],
           [0., 0., 4., 3., 0.],
           [0., 0., 0., 4., 3.]])
    >>> M @ np.array([1.0, 2, 3, 4, 5])
    array([10., 17., 24., 31.])
    >>> conv1d_matrix([1.0, 2.0, 3.0], 4, padding=1, padding_mode="circular", format="dense")
    array([[2., 3., 0., 1.],
           [1., 2., 3., 0.],
           [0., 1., 2., 3.],
           [3., 0., 1., 2.]])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_length, groups=groups, ndim=1, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, rows=rows)


@overload
def conv_transpose1d_matrix(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = ...,
    padding: int | tuple[int, int] = ...,
    output_padding: int = ...,
    groups: int = ...,
    dilation: int = ...,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
) -> SparseArray: ...
@overload
def conv_transpose1d_matrix(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = ...,
    padding: int | tuple[int, int] = ...,
    output_padding: int = ...,
    groups: int = ...,
    dilation: int = ...,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
) -> NDArray[Any]: ...
def conv_transpose1d_matrix(
    weight: ArrayLike,
    input_length: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
) -> SparseArray | NDArray[Any]:
    r"""The matrix of ``torch.nn.functional.conv_transpose1d``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K) or (K,)
        torch's ``conv_transpose1d`` layout: the weight of the ``conv1d`` it
        transposes.
    input_length : int
        ``L_in``, samples per channel of the transposed convolution's input.
    stride, padding, dilation, groups : optional
        As in torch; ``padding`` may also be a ``(left, right)`` pair.
    output_padding : int, optional
        Extra samples on the right, ``0 <= output_padding < max(stride, dilation)``.
    format, dtype : optional
        As in :func:`conv1d_matrix`.

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * L', C_in * L_in)
        With ``L' = (L_in - 1)s - p_l - p_r + d(K-1) + output_padding + 1``.

    Notes
    -----
    ``conv_transpose1d_matrix(W, L_in, ...) == conv1d_matrix(W, L', ...).T``
    (its first ``L_in`` output positions): the transposed convolution is the
    adjoint of the convolution, and ``M.T @ g`` is ``conv1d``'s input gradient.

    Examples
    --------
    >>> conv_transpose1d_matrix([4.0, 3.0], 4).toarray()
    array([[4., 0., 0., 0.],
           [3., 4., 0., 0.],
           [0., 3., 4., 0.],
           [0., 0., 3., 4.],
           [0., 0., 0., 3.]])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    layer = transpose_layer(weight, input_length, groups=groups, ndim=1, **geometry)
    return layer_matrix(layer, fmt=format, dtype=dtype, transpose=True)

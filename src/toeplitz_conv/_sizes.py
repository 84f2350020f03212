"""Output sizes and the bias vector of a conv layer, without building anything.

``output_length``/``output_size`` give the sizes torch's conv produces (the validated
geometry's ``L_out`` per axis); ``bias_vector`` repeats a bias over those sizes in the
flattening of :func:`~toeplitz_conv.conv_matrix`'s rows. Public from
:mod:`toeplitz_conv.matrices` and the package.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._arrays import as_array, check_memory
from ._geometry import Padding, PaddingND, check_int, conv_geometries, conv_geometry, per_axis
from ._layer import input_size_tuple
from ._public import renamed_keyword
from ._typing import ArrayLike, NDArray

__all__ = ["bias_vector", "output_length", "output_size"]


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

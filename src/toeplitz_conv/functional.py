"""The forward passes in numpy: ``conv1d``, ``conv_transpose1d`` and ``unfold``.

They follow torch's semantics exactly (up to floating-point rounding) and use
the same geometry as the matrix builders, so ``conv1d(x, W)`` and
``conv1d_matrix(W, L) @ x.ravel()`` agree by construction of one index plan.
``conv1d`` and ``conv_transpose1d`` run the same kernels as the matrix-free
operators (:mod:`toeplitz_conv._kernel`), with the batch as the trailing axis.
"""

from __future__ import annotations

import math

import numpy as np

from ._arrays import as_array, check_memory, compute_dtype
from ._geometry import ConvGeometry, Padding, conv_geometry
from ._kernel import Kernel
from ._layer import conv_layer, transpose_layer

__all__ = ["conv1d", "conv_transpose1d", "unfold"]


def _as_signal(x: object, name: str) -> tuple[np.ndarray, int]:
    """Return `x` as ``(N, C, L)`` and its original number of dimensions."""
    a = as_array(x, name)
    if a.ndim not in (1, 2, 3):
        raise ValueError(f"`{name}` must have shape (L,), (C, L) or (N, C, L); got shape {a.shape}")
    if a.shape[-1] == 0:
        raise ValueError(f"`{name}` must have at least one sample; got shape {a.shape}")
    return a.reshape((1,) * (3 - a.ndim) + a.shape), a.ndim


def _check_channels(a: np.ndarray, ndim: int, channels: int, name: str) -> None:
    """`a` of shape ``(N, C, L)`` must have the `channels` the weight expects."""
    if a.shape[1] == channels:
        return
    if ndim == 1:
        raise ValueError(
            f"a 1-D `{name}` of shape ({a.shape[2]},) has one channel, but the weight "
            f"expects {channels}; pass shape ({channels}, L)"
        )
    raise ValueError(
        f"`{name}` has {a.shape[1]} channels (shape {a.shape[3 - ndim :]}), "
        f"but the weight expects {channels}"
    )


def _windows(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """The padded signal's windows: ``w[..., i, k] = x~[..., i*s + k*d - p_l]``, a view.

    Shape ``(N, C, L_out, K)``.
    """
    src = geom.padded_sources()
    padded = x[..., np.maximum(src, 0)]
    padded[..., src < 0] = 0
    span = geom.dilation * (geom.kernel_size - 1) + 1
    view = np.lib.stride_tricks.sliding_window_view(padded, span, axis=-1)
    return view[..., : geom.output_length * geom.stride : geom.stride, :: geom.dilation]


def unfold(
    x: object,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """The patch (im2col) matrix of a signal: the weight side of ``conv1d``.

    Parameters
    ----------
    x : array_like, shape (L,), (C, L) or (N, C, L)
    kernel_size : int
        ``K``.
    stride, padding, dilation, padding_mode : optional
        As in :func:`conv1d_matrix`.

    Returns
    -------
    U : ndarray, shape (C*K, L_out) or (N, C*K, L_out)
        ``U[c*K + k, i] = x~[c, i*s + k*d - p_l]``; a 1-D `x` gives ``(K, L_out)``.

    Notes
    -----
    ``conv1d(x, W) == W.reshape(C_out, -1) @ U`` (for ``groups=1``) and the
    weight gradient is ``grad_y @ U.T``. This is ``torch.nn.functional.unfold``
    on the input viewed as ``(N, C, 1, L)`` with kernel ``(1, K)``, plus the
    padding modes torch's ``unfold`` lacks.

    Examples
    --------
    >>> unfold([1.0, 2, 3, 4, 5], 2)
    array([[1., 2., 3., 4.],
           [2., 3., 4., 5.]])
    >>> unfold([1.0, 2, 3], 3, padding=1, padding_mode="reflect")
    array([[2., 1., 2.],
           [1., 2., 3.],
           [2., 3., 2.]])
    """
    a, ndim = _as_signal(x, "x")
    geom = conv_geometry(
        a.shape[2],
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
    )
    n, c = a.shape[:2]
    shape = (n, c * geom.kernel_size, geom.output_length)
    returned = shape if ndim == 3 else shape[1:]
    check_memory(math.prod(shape) * a.dtype.itemsize, f"the {returned} patch matrix")
    u = np.empty(shape, dtype=a.dtype)  # a fresh array, never a view of overlapping windows
    u.reshape(n, c, geom.kernel_size, geom.output_length)[...] = _windows(a, geom).transpose(
        0, 1, 3, 2
    )
    return u[0] if ndim < 3 else u


def conv1d(
    x: object,
    weight: object,
    bias: object = None,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    r"""``torch.nn.functional.conv1d`` in numpy, with every padding mode.

    Parameters
    ----------
    x : array_like, shape (C_in, L) or (N, C_in, L), or (L,) for one channel
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`conv1d_matrix`.

    Returns
    -------
    y : ndarray, shape (C_out, L_out) or (N, C_out, L_out), or (L_out,)

    Notes
    -----
    .. math::

        y[o, i] = b[o] + \sum_{c < G} \sum_{k < K} W[o, c, k]\,
        \tilde x[g(o) G + c,\; i s + k d - p_l]

    Examples
    --------
    >>> conv1d([1.0, 2, 3, 4, 5], [4.0, 3.0])
    array([10., 17., 24., 31.])
    """
    a, ndim = _as_signal(x, "x")
    layer = conv_layer(
        weight,
        a.shape[2],
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    _check_channels(a, ndim, layer.in_channels, "x")
    dtype = compute_dtype(a.dtype, layer.weight.dtype)
    kernel = Kernel(layer.weight.astype(dtype, copy=False), layer.geom, layer.groups)
    y = kernel.forward(a.astype(dtype, copy=False).transpose(1, 2, 0))  # (C_out, L_out, N)
    return _restore(_add_bias(y.transpose(2, 0, 1), bias), ndim)


def _add_bias(y: np.ndarray, bias: object) -> np.ndarray:
    """``y + bias[None, :, None]`` for ``y`` of shape ``(N, C, L)``."""
    if bias is None:
        return y
    b = as_array(bias, "bias")
    if b.shape != (y.shape[1],):
        raise ValueError(
            f"`bias` must have shape ({y.shape[1]},), one value per output channel; "
            f"got shape {b.shape}"
        )
    return y + b[None, :, None]


def _restore(y: np.ndarray, ndim: int) -> np.ndarray:
    """Drop the batch (and channel) axes the caller did not pass; C-contiguous."""
    return np.ascontiguousarray(y[0, 0] if ndim == 1 else y[0] if ndim == 2 else y)


def conv_transpose1d(
    x: object,
    weight: object,
    bias: object = None,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
) -> np.ndarray:
    r"""``torch.nn.functional.conv_transpose1d`` in numpy.

    Parameters
    ----------
    x : array_like, shape (C_in, L_in) or (N, C_in, L_in), or (L_in,)
    weight : array_like, shape (C_in, C_out/groups, K) or (K,)
        torch's layout: the weight of the ``conv1d`` being transposed.
    bias : array_like, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation : optional
        As in :func:`conv_transpose1d_matrix`.

    Returns
    -------
    z : ndarray, shape (C_out, L') or (N, C_out, L'), or (L',)
        ``L' = (L_in - 1)s - p_l - p_r + d(K-1) + output_padding + 1``.

    Notes
    -----
    The adjoint of ``conv1d``: every input sample scatters the kernel,

    .. math::

        z[g G + c,\; i s + k d - p_l] \mathrel{+}= W[o, c, k]\, x[o, i]
        \quad (o \text{ in group } g).

    Examples
    --------
    >>> conv_transpose1d([1.0, 2.0], [4.0, 3.0], stride=2)
    array([4., 3., 8., 6.])
    """
    a, ndim = _as_signal(x, "x")
    layer = transpose_layer(
        weight,
        a.shape[2],
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    _check_channels(a, ndim, layer.out_channels, "x")
    dtype = compute_dtype(a.dtype, layer.weight.dtype)
    # the kernel's adjoint conjugates the weight; the transposed convolution does not
    w = layer.weight.astype(dtype, copy=False)
    kernel = Kernel(w.conj() if dtype.kind == "c" else w, layer.geom, layer.groups)
    z = kernel.adjoint(a.astype(dtype, copy=False).transpose(1, 2, 0))  # (C_out, L', N)
    return _restore(_add_bias(z.transpose(2, 0, 1), bias), ndim)

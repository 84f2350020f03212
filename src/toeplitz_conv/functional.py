r"""The forward passes in numpy: ``conv``, ``conv_transpose`` and ``unfold`` on 1, 2 or 3 axes.

They follow torch's semantics exactly (up to floating-point rounding) and use
the same geometry as the matrix builders, so ``conv2d(x, W)`` and
``conv2d_matrix(W, x.shape[1:]) @ x.ravel()`` agree by construction of one
index plan. The passes run the same kernels as the matrix-free operators
(:mod:`toeplitz_conv._kernel`), with the batch as the trailing axis.

``conv1d``/``conv2d``/``conv3d`` (and the transposed ones) fix the number of
spatial axes ``n``; the generic :func:`conv` and :func:`conv_transpose` take it
from the weight, ``(C_out, C_in/groups, K_1, ..., K_n)`` (a 1-D ``(K,)`` weight
is one channel's 1-D kernel).
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from ._arrays import as_array, check_memory, compute_dtype, spatial_dims
from ._geometry import Padding, PaddingND, conv_geometries, per_axis
from ._kernel import Kernel
from ._layer import Layer, conv_layer, transpose_layer
from ._padding import pad_signal
from ._typing import ArrayLike, KernelMethod, PaddingMode, TransposePadding

__all__ = [
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "unfold",
]

_AXES = {1: "L", 2: "H, W", 3: "D, H, W"}


def _shapes_text(n: int) -> str:
    axes = _AXES[n]
    if n == 1:
        return "(L,), (C, L) or (N, C, L)"
    return f"(C, {axes}) or (N, C, {axes})"


def _as_signal(x: ArrayLike, name: str, n: int) -> tuple[np.ndarray, int]:
    """Return `x` as ``(N, C, S_1, ..., S_n)`` and its original number of dimensions.

    1-D also takes ``(L,)``, one channel; N-d takes ``(C, *S)`` and ``(N, C, *S)``.
    """
    a = as_array(x, name)
    allowed = (1, 2, 3) if n == 1 else (n + 1, n + 2)
    if a.ndim not in allowed:
        raise ValueError(f"`{name}` must have shape {_shapes_text(n)}; got shape {a.shape}")
    if 0 in a.shape[a.ndim - n :]:
        raise ValueError(f"`{name}` must have at least one sample; got shape {a.shape}")
    return a.reshape((1,) * (n + 2 - a.ndim) + a.shape), a.ndim


def _int_kernel_axes(x: ArrayLike) -> int:
    """The spatial axes an int `kernel_size` of :func:`unfold` means, read from `x` as torch does.

    ``(L,)`` and ``(C, L)`` are 1-D; ``(N, C, H, W)`` is 2-D (torch's
    ``F.unfold``) and ``(N, C, D, H, W)`` 3-D. A 3-dimensional `x` is refused:
    torch reads ``(C, H, W)`` with a ``K x K`` kernel, a 1-D reading would be
    ``(N, C, L)``, and only a tuple says which.
    """
    ndim = np.ndim(x)
    if ndim == 3:
        raise ValueError(
            f"an int `kernel_size` with a 3-dimensional `x` (shape {np.shape(x)}) is "
            "ambiguous: torch.nn.functional.unfold reads it as one (C, H, W) image with a "
            "K x K kernel, a 1-D reading as (N, C, L) signals. Pass kernel_size=(K, K) "
            "for the image or kernel_size=(K,) for the signals"
        )
    return {4: 2, 5: 3}.get(ndim, 1)


def _check_channels(a: np.ndarray, ndim: int, channels: int, name: str) -> None:
    """`a` of shape ``(N, C, *S)`` must have the `channels` the weight expects."""
    if a.shape[1] == channels:
        return
    n = a.ndim - 2
    if ndim == 1:
        raise ValueError(
            f"a 1-D `{name}` of shape ({a.shape[2]},) has one channel, but the weight "
            f"expects {channels}; pass shape ({channels}, L)"
        )
    raise ValueError(
        f"`{name}` has {a.shape[1]} channels (shape {a.shape[n + 2 - ndim :]}), "
        f"but the weight expects {channels}"
    )


def _add_bias(y: np.ndarray, bias: ArrayLike | None) -> np.ndarray:
    """``y + bias`` over the channel axis of ``y`` ``(N, C, *S)``."""
    if bias is None:
        return y
    b = as_array(bias, "bias")
    if b.shape != (y.shape[1],):
        raise ValueError(
            f"`bias` must have shape ({y.shape[1]},), one value per output channel; "
            f"got shape {b.shape}"
        )
    return y + b.reshape(1, -1, *(1,) * (y.ndim - 2))


def _restore(y: np.ndarray, ndim: int) -> np.ndarray:
    """Drop the batch (and channel) axes the caller did not pass; C-contiguous."""
    n = y.ndim - 2
    drop = n + 2 - ndim
    return np.ascontiguousarray(y[(0,) * drop])


def _weight_ndim(weight: ArrayLike) -> tuple[np.ndarray, int]:
    """The weight as an array and its number of spatial axes (for :func:`conv`)."""
    w = as_array(weight, "weight")
    try:
        n, _ = spatial_dims(w.ndim, None, None)
    except ValueError as exc:
        raise ValueError(
            f"{exc} with shape {w.shape}; for a one-channel 2-D or 3-D kernel call "
            "conv2d/conv3d (or give the weight its two channel axes)"
        ) from None
    return w, n


def _check_pass_memory(a: np.ndarray, kernel: Kernel, dtype: np.dtype, transpose: bool) -> None:
    """Refuse, before allocating, a pass whose padded signal and result exceed memory.

    The kernel holds the padded input (``C_in * prod(L_a + p_a,l + p_a,r)`` per sample) and
    the result (``C_out * prod(L_out,a)`` per sample) of the convolution it runs; the FFT
    path for long kernels and the Winograd path about three times that (their transforms).
    """
    batch = a.shape[0]
    padded = kernel.c_in * math.prod(
        g.input_length + g.pad_left + g.pad_right for g in kernel.geoms
    )
    result = kernel.c_out * math.prod(kernel.output_size)
    kind = "transposed convolution" if transpose else "convolution"
    transforms = 3 if kernel.method in ("fft", "winograd", "winograd2") else 1
    check_memory(
        batch * (padded + result) * dtype.itemsize * transforms,
        f"the {kind} of {batch:,} sample(s) (its padded signal and result)",
        "use a smaller batch, less padding or a smaller input",
    )


def _run(
    a: np.ndarray, ndim: int, layer: Layer, bias: ArrayLike | None, *, transpose: bool, method: str
) -> np.ndarray:
    """Run the kernel on ``a`` ``(N, C, *S)`` (the batch moved last) and add the bias."""
    dtype = compute_dtype(a.dtype, layer.weight.dtype)
    w = layer.weight.astype(dtype, copy=False)
    # the kernel's adjoint conjugates the weight; the transposed convolution does not
    if transpose and dtype.kind == "c":
        w = w.conj()
    kernel = Kernel(w, layer.geoms, layer.groups, method)
    _check_pass_memory(a, kernel, dtype, transpose)
    x = np.moveaxis(a.astype(dtype, copy=False), 0, -1)  # (C, *S, N)
    y = kernel.adjoint(x) if transpose else kernel.forward(x)
    return _restore(_add_bias(np.moveaxis(y, -1, 0), bias), ndim)


def _conv(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None,
    *,
    ndim: int,
    method: str,
    transpose: bool = False,
    **params: Any,
) -> np.ndarray:
    """Validate `x` and the layer (with `transpose`, the conv a ``conv_transpose`` transposes),
    then run it."""
    a, x_ndim = _as_signal(x, "x", ndim)
    validate = transpose_layer if transpose else conv_layer
    layer = validate(weight, a.shape[2:], ndim=ndim, **params)
    _check_channels(a, x_ndim, layer.out_channels if transpose else layer.in_channels, "x")
    return _run(a, x_ndim, layer, bias, transpose=transpose, method=method)


def conv(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv1d``/``conv2d``/``conv3d`` in numpy, with every padding mode.

    The number of spatial axes ``n`` is the weight's: ``weight.ndim - 2`` (a
    1-D ``(K,)`` weight is one channel's 1-D kernel).

    Parameters
    ----------
    x : array_like, shape (C_in, S_1, ..., S_n) or (N, C_in, S_1, ..., S_n)
        For ``n = 1`` also ``(L,)``, one channel.
    weight : array_like, shape (C_out, C_in/groups, K_1, ..., K_n) or (K,)
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv_matrix`: an int applies to every axis,
        a tuple gives one value per axis; `padding` items may be
        ``(left, right)`` pairs, or ``'same'``/``'valid'``.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm, as for :func:`~toeplitz_conv.conv_operator`: ``"winograd"``
        (3-tap / 3x3, stride 1, dilation 1) is faster but less accurate,
        ``"winograd2"`` (the same layers, and stride 2) rounds like ``"direct"``;
        ``"fft"`` is 1-D only; ``"auto"`` may pick ``"winograd2"`` (2-D) and
        ``"winograd"`` for thick 3-tap 1-D layers only.

    Returns
    -------
    y : ndarray, shape (C_out, S_out...) or (N, C_out, S_out...)

    Notes
    -----
    .. math::

        y[o, i_1, \dots, i_n] = b[o] + \sum_{c < G} \sum_{k_1, \dots, k_n}
        W[o, c, k_1, \dots, k_n]\, \tilde x[g(o) G + c,\;
        i_1 s_1 + k_1 d_1 - p_1, \dots, i_n s_n + k_n d_n - p_n]

    with ``x~`` padded axis by axis (separable, as ``F.pad``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 3, 3)
    >>> conv(x, np.ones((1, 1, 2, 2)))
    array([[[ 8., 12.],
            [20., 24.]]])
    >>> conv(x, np.ones((1, 1, 2, 2)), padding=(0, (1, 0)), padding_mode="circular")[0]
    array([[10.,  8., 12.],
           [22., 20., 24.]])
    """
    w, n = _weight_ndim(weight)
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    return _conv(x, w, bias, ndim=n, method=method, groups=groups, **geometry)


def conv1d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv1d`` in numpy, with every padding mode.

    Parameters
    ----------
    x : array_like, shape (C_in, L) or (N, C_in, L), or (L,) for one channel
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv1d_matrix`.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm, as for :func:`~toeplitz_conv.conv_operator`: ``"winograd"``
        (3-tap / 3x3, stride 1, dilation 1) is faster but less accurate,
        ``"winograd2"`` (the same layers, and stride 2) rounds like ``"direct"``;
        ``"fft"`` is 1-D only; ``"auto"`` may pick ``"winograd2"`` (2-D) and
        ``"winograd"`` for thick 3-tap 1-D layers only.

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
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    return _conv(x, weight, bias, ndim=1, method=method, groups=groups, **geometry)


def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv2d`` in numpy, with every padding mode.

    Parameters
    ----------
    x : array_like, shape (C_in, H, W) or (N, C_in, H, W)
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2) or (K_1, K_2)
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv2d_matrix`.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm, as for :func:`~toeplitz_conv.conv_operator`: ``"winograd"``
        (3-tap / 3x3, stride 1, dilation 1) is faster but less accurate,
        ``"winograd2"`` (the same layers, and stride 2) rounds like ``"direct"``;
        ``"fft"`` is 1-D only; ``"auto"`` may pick ``"winograd2"`` (2-D) and
        ``"winograd"`` for thick 3-tap 1-D layers only.

    Returns
    -------
    y : ndarray, shape (C_out, H_out, W_out) or (N, C_out, H_out, W_out)

    Notes
    -----
    .. math::

        y[o, i, j] = b[o] + \sum_{c < G} \sum_{k, l} W[o, c, k, l]\,
        \tilde x[g(o) G + c,\; i s_1 + k d_1 - p_1,\; j s_2 + l d_2 - p_2]

    Examples
    --------
    >>> import numpy as np
    >>> conv2d(np.arange(16.0).reshape(1, 4, 4), np.ones((2, 2)), stride=2)
    array([[[10., 18.],
            [42., 50.]]])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    return _conv(x, weight, bias, ndim=2, method=method, groups=groups, **geometry)


def conv3d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv3d`` in numpy, with every padding mode.

    Parameters
    ----------
    x : array_like, shape (C_in, D, H, W) or (N, C_in, D, H, W)
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv3d_matrix`.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm, as for :func:`~toeplitz_conv.conv_operator`: ``"winograd"``
        (3-tap / 3x3, stride 1, dilation 1) is faster but less accurate,
        ``"winograd2"`` (the same layers, and stride 2) rounds like ``"direct"``;
        ``"fft"`` is 1-D only; ``"auto"`` may pick ``"winograd2"`` (2-D) and
        ``"winograd"`` for thick 3-tap 1-D layers only.

    Returns
    -------
    y : ndarray, shape (C_out, D_out, H_out, W_out) or (N, C_out, D_out, H_out, W_out)

    Notes
    -----
    .. math::

        y[o, i_1, i_2, i_3] = b[o] + \sum_{c < G} \sum_{k_1, k_2, k_3} W[o, c, k_1, k_2, k_3]\,
        \tilde x[g(o) G + c,\; i_1 s_1 + k_1 d_1 - p_1, \dots, i_3 s_3 + k_3 d_3 - p_3]

    Examples
    --------
    >>> import numpy as np
    >>> conv3d(np.ones((1, 3, 3, 3)), np.ones((2, 2, 2)), padding=((0, 0), 0, 0)).shape
    (1, 2, 2, 2)
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    return _conv(x, weight, bias, ndim=3, method=method, groups=groups, **geometry)


def conv_transpose(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv_transpose1d``/``2d``/``3d`` in numpy.

    The number of spatial axes ``n`` is the weight's, as in :func:`conv`.

    Parameters
    ----------
    x : array_like, shape (C_in, S_1, ..., S_n) or (N, C_in, S_1, ..., S_n)
        For ``n = 1`` also ``(L,)``.
    weight : array_like, shape (C_in, C_out/groups, K_1, ..., K_n) or (K,)
        torch's layout: the weight of the convolution being transposed.
    bias : array_like, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation : optional
        Per axis (an int applies to every axis), as in
        :func:`~toeplitz_conv.conv_transpose_matrix`.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm of the convolution it transposes, as for
        :func:`~toeplitz_conv.conv_operator`.

    Returns
    -------
    z : ndarray, shape (C_out, S'...) or (N, C_out, S'...)
        ``S'_a = (S_a - 1)s_a - p_a,l - p_a,r + d_a(K_a-1) + output_padding_a + 1``.

    Notes
    -----
    The adjoint of :func:`conv`: every input sample scatters the kernel,

    .. math::

        z[g G + c,\; i_1 s_1 + k_1 d_1 - p_1, \dots] \mathrel{+}=
        W[o, c, k_1, \dots, k_n]\, x[o, i_1, \dots, i_n] \quad (o \text{ in group } g).

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose(np.ones((1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2)
    array([[[1., 1., 1., 1.],
            [1., 1., 1., 1.],
            [1., 1., 1., 1.],
            [1., 1., 1., 1.]]])
    """
    w, n = _weight_ndim(weight)
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    return _conv(x, w, bias, ndim=n, method=method, transpose=True, groups=groups, **geometry)


def conv_transpose1d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv_transpose1d`` in numpy.

    Parameters
    ----------
    x : array_like, shape (C_in, L_in) or (N, C_in, L_in), or (L_in,)
    weight : array_like, shape (C_in, C_out/groups, K) or (K,)
        torch's layout: the weight of the ``conv1d`` being transposed.
    bias : array_like, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation : optional
        As in :func:`~toeplitz_conv.conv_transpose1d_matrix`.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm of the convolution it transposes, as for
        :func:`~toeplitz_conv.conv_operator`.

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
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    return _conv(x, weight, bias, ndim=1, method=method, transpose=True, groups=groups, **geometry)


def conv_transpose2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv_transpose2d`` in numpy.

    Parameters
    ----------
    x : array_like, shape (C_in, H, W) or (N, C_in, H, W)
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2) or (K_1, K_2)
    bias : array_like, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation : optional
        As in :func:`~toeplitz_conv.conv_transpose2d_matrix`.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm of the convolution it transposes, as for
        :func:`~toeplitz_conv.conv_operator`.

    Returns
    -------
    z : ndarray, shape (C_out, H', W') or (N, C_out, H', W')
        ``H' = (H - 1)s_1 - p_1,l - p_1,r + d_1(K_1-1) + output_padding_1 + 1``, same for ``W'``.

    Notes
    -----
    .. math::

        z[g G + c,\; i s_1 + k d_1 - p_1,\; j s_2 + l d_2 - p_2] \mathrel{+}=
        W[o, c, k, l]\, x[o, i, j] \quad (o \text{ in group } g).

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose2d(np.ones((1, 1, 2)), np.ones((1, 1, 1, 2)), stride=(1, 2))
    array([[[1., 1., 1., 1.]]])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    return _conv(x, weight, bias, ndim=2, method=method, transpose=True, groups=groups, **geometry)


def conv_transpose3d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    method: KernelMethod = "auto",
) -> np.ndarray:
    r"""``torch.nn.functional.conv_transpose3d`` in numpy.

    Parameters
    ----------
    x : array_like, shape (C_in, D, H, W) or (N, C_in, D, H, W)
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
    bias : array_like, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation : optional
        As in :func:`~toeplitz_conv.conv_transpose3d_matrix`.
    method : {"auto", "direct", "fft", "winograd", "winograd2"}, optional
        The algorithm of the convolution it transposes, as for
        :func:`~toeplitz_conv.conv_operator`.

    Returns
    -------
    z : ndarray, shape (C_out, D', H', W') or (N, C_out, D', H', W')
        ``S'_a = (S_a - 1)s_a - p_a,l - p_a,r + d_a(K_a-1) + output_padding_a + 1``.

    Notes
    -----
    .. math::

        z[g G + c,\; i_1 s_1 + k_1 d_1 - p_1, \dots, i_3 s_3 + k_3 d_3 - p_3] \mathrel{+}=
        W[o, c, k_1, k_2, k_3]\, x[o, i_1, i_2, i_3] \quad (o \text{ in group } g).

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose3d(np.ones((1, 1, 1, 1)), np.ones((2, 2, 2))).shape
    (1, 2, 2, 2)
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    return _conv(x, weight, bias, ndim=3, method=method, transpose=True, groups=groups, **geometry)


def unfold(
    x: ArrayLike,
    kernel_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    padding_mode: PaddingMode = "zeros",
) -> np.ndarray:
    r"""The patch (im2col) matrix of a signal: the weight side of a convolution.

    Parameters
    ----------
    x : array_like, shape (C, S_1, ..., S_n) or (N, C, S_1, ..., S_n)
        For ``n = 1`` also ``(L,)``.
    kernel_size : int or tuple of n ints
        A tuple ``(K_1, ..., K_n)`` means ``n`` spatial axes. An int ``K`` is read as
        torch reads it: ``K`` on every axis of a batched ``(N, C, H, W)`` (2-D) or
        ``(N, C, D, H, W)`` (3-D) input, 1-D for ``(L,)`` and ``(C, L)``; with a
        3-dimensional `x` it is ambiguous (torch: a ``(C, H, W)`` image; 1-D:
        ``(N, C, L)``) and refused.
    stride, padding, dilation, padding_mode : optional
        As in :func:`~toeplitz_conv.conv_matrix` (per axis).

    Returns
    -------
    U : ndarray, shape (C*prod(K), prod(S_out)) or (N, C*prod(K), prod(S_out))
        Rows ``(c, k_1, ..., k_n)``, columns ``(i_1, ..., i_n)``, both row-major:
        ``U[(c, k), i] = x~[c, i_1 s_1 + k_1 d_1 - p_1, ..., i_n s_n + k_n d_n - p_n]``.
        A 1-D `x` gives ``(K, L_out)``. A fresh array.

    Notes
    -----
    ``conv(x, W) == W.reshape(C_out, -1) @ U`` (for ``groups=1``) and the
    weight gradient is ``grad_y @ U.T``. For ``n = 2`` this is
    ``torch.nn.functional.unfold`` (zero padding), plus the padding modes,
    asymmetric padding and ``'same'`` torch's ``unfold`` lacks; for ``n = 1`` it
    is torch's on the input viewed as ``(N, C, 1, L)`` with kernel ``(1, K)``.

    Examples
    --------
    >>> unfold([1.0, 2, 3, 4, 5], 2)
    array([[1., 2., 3., 4.],
           [2., 3., 4., 5.]])
    >>> unfold([1.0, 2, 3], 3, padding=1, padding_mode="reflect")
    array([[2., 1., 2.],
           [1., 2., 3.],
           [2., 3., 2.]])
    >>> import numpy as np
    >>> unfold(np.arange(9.0).reshape(1, 3, 3), (2, 2))
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    n = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else _int_kernel_axes(x)
    if not 1 <= n <= 3:
        raise ValueError(
            f"`kernel_size` must be an int or a tuple of 1, 2 or 3 ints (one per spatial "
            f"axis); got {tuple(cast('tuple[int, ...]', kernel_size))!r}"
        )
    K = per_axis(kernel_size, "kernel_size", n, minimum=1)
    a, ndim = _as_signal(x, "x", n)
    geoms = conv_geometries(
        a.shape[2:],
        K,
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
    )
    N, C = a.shape[:2]
    S_out = tuple(g.output_length for g in geoms)
    shape = (N, C * math.prod(K), math.prod(S_out))
    returned = shape if ndim == n + 2 else shape[1:]
    check_memory(
        math.prod(shape) * a.dtype.itemsize,
        f"the {returned} patch matrix",
        "use a smaller batch or input, a larger stride, or the matrix-free operator",
    )
    u = np.empty(shape, dtype=a.dtype)  # a fresh array, never a view of overlapping windows
    if N == 0:
        return u if ndim == n + 2 else u[0]
    flat = np.ascontiguousarray(a).reshape(N * C, *a.shape[2:], 1)
    xp = pad_signal(flat, geoms)[..., 0]  # (N*C, *E)
    view = xp
    for axis, g in enumerate(geoms, start=1):
        span = g.dilation * (g.kernel_size - 1) + 1
        view = np.lib.stride_tricks.sliding_window_view(view, span, axis=axis)
        index = [slice(None)] * view.ndim
        index[axis] = slice(0, g.output_length * g.stride, g.stride)
        index[-1] = slice(None, None, g.dilation)
        view = view[tuple(index)]
    # view: (N*C, i_1..i_n, k_1..k_n) -> (N, C, k_1..k_n, i_1..i_n)
    view = view.reshape(N, C, *view.shape[1:])
    order = (0, 1, *range(n + 2, 2 * n + 2), *range(2, n + 2))
    u.reshape(N, C, *K, *S_out)[...] = view.transpose(order)
    return u if ndim == n + 2 else u[0]

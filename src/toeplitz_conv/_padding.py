"""The padding of a signal on ``n`` spatial axes, and its adjoint.

Signals are laid out ``(C, S_1, ..., S_n, B)``. Padding is separable, as
torch's ``F.pad`` does it: axis ``a`` reads sample ``src_a(j - p_l)`` at padded
position ``j`` (:meth:`~toeplitz_conv._geometry.ConvGeometry.src`), zero where
zero padding reads nothing. The adjoint adds the gradient of every padding cell
back onto the sample it copied.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._geometry import ConvGeometry, transposed_length

__all__ = ["fold_signal", "pad_signal", "padded_extent", "read_end"]


def read_end(geom: ConvGeometry) -> int:
    """One past the last padded position any tap reads: ``(L_out-1)s + d(K-1) + 1``."""
    return transposed_length(geom.output_length, geom.kernel_size, geom.stride, geom.dilation)


def padded_extent(geom: ConvGeometry) -> int:
    """Padded positions kept on one axis: every position read, and the whole signal."""
    return max(read_end(geom), geom.pad_left + geom.input_length)


def _axis3(a: np.ndarray, axis: int) -> np.ndarray:
    """A contiguous ``a`` viewed as ``(before, a.shape[axis], after)``."""
    return a.reshape(math.prod(a.shape[:axis]), a.shape[axis], -1)


def _edges(geom: ConvGeometry, extent: int) -> np.ndarray:
    """Padded positions of ``[0, extent)`` outside the signal ``[p_l, p_l + L)``."""
    p_l, L = geom.pad_left, geom.input_length
    lo = min(p_l, extent)
    return np.concatenate((np.arange(lo), np.arange(max(lo, min(extent, p_l + L)), extent)))


def _fill_edges(out: np.ndarray, geoms: tuple[ConvGeometry, ...]) -> None:
    """Fill the padding of ``out`` (``(C, E_1..E_n, B)``, signal inside) axis by axis.

    Axis ``a`` is filled over the full extent of the other axes from its own
    signal positions, so after the last axis every corner holds
    ``x[src_1(j_1), ..., src_n(j_n)]``: the separable padding of ``F.pad``.
    """
    for axis, geom in enumerate(geoms, start=1):
        p_l, L = geom.pad_left, geom.input_length
        if geom.padding_mode == "zeros":
            if p_l or p_l + L < out.shape[axis]:
                o3 = _axis3(out, axis)
                o3[:, :p_l] = 0
                o3[:, p_l + L :] = 0
            continue
        edge = _edges(geom, out.shape[axis])
        if edge.size:
            o3 = _axis3(out, axis)
            o3[:, edge] = o3[:, p_l + geom.src(edge - p_l)]


def pad_signal(
    x: np.ndarray,
    geoms: tuple[ConvGeometry, ...],
    take: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None = None,
) -> np.ndarray:
    """The padded signal: ``x`` ``(C, *S, B)`` -> ``(C, *E, B)``, ``E_a`` = :func:`padded_extent`.

    ``out[c, j_1, ..., j_n, b] = x[c, src_1(j_1 - p_1), ..., src_n(j_n - p_n), b]``
    (zero where an axis reads nothing); `take` allocates the result.
    """
    shape = (x.shape[0], *(padded_extent(g) for g in geoms), x.shape[-1])
    out = take(shape, x.dtype) if take is not None else np.empty(shape, dtype=x.dtype)
    inside = tuple(slice(g.pad_left, g.pad_left + g.input_length) for g in geoms)
    out[(slice(None), *inside)] = x
    _fill_edges(out, geoms)
    return out


def _fold_axis(gp: np.ndarray, axis: int, geom: ConvGeometry) -> np.ndarray:
    """The adjoint of padding one axis: add the padded gradient back onto the signal.

    ``gp`` is contiguous with ``X`` padded positions on `axis`; returns the same
    with ``L`` positions (``gp`` itself when there is nothing to fold).
    """
    L, p_l, X = geom.input_length, geom.pad_left, gp.shape[axis]
    lo = min(p_l, X)
    hi = max(lo, min(X, p_l + L))
    if lo == 0 and hi == L and X == L:
        return gp
    g = np.empty((*gp.shape[:axis], L, *gp.shape[axis + 1 :]), dtype=gp.dtype)
    g3, gp3 = _axis3(g, axis), _axis3(gp, axis)
    g3[:, : hi - lo] = gp3[:, lo:hi]
    g3[:, hi - lo :] = 0
    if geom.padding_mode != "zeros":
        edge = _edges(geom, X)
        if edge.size:
            # numpy's stubs take no tuple index for ufunc.at
            np.add.at(g3, (slice(None), geom.src(edge - p_l)), gp3[:, edge])  # type: ignore[arg-type]
    return g


def fold_signal(gp: np.ndarray, geoms: tuple[ConvGeometry, ...]) -> np.ndarray:
    """The adjoint of :func:`pad_signal`: ``(C, *X, B)`` padded gradient -> ``(C, *S, B)``.

    When ``gp`` holds the whole signal on every axis (``X_a >= p_l + L_a``),
    the padding cells are added onto the cells they copied, in place and
    in the reverse axis order of :func:`_fill_edges`, and the signal is then
    cut out in one copy; otherwise axis by axis.
    """
    if any(x < g.pad_left + g.input_length for x, g in zip(gp.shape[1:-1], geoms, strict=True)):
        for axis in range(len(geoms), 0, -1):
            gp = _fold_axis(gp, axis, geoms[axis - 1])
        return gp
    if all(
        g.pad_left == 0 and x == g.input_length for x, g in zip(gp.shape[1:-1], geoms, strict=True)
    ):
        return gp
    for axis in range(len(geoms), 0, -1):
        g = geoms[axis - 1]
        if g.padding_mode == "zeros":  # nothing to add back
            continue
        edge = _edges(g, gp.shape[axis])
        if edge.size:
            g3 = _axis3(gp, axis)
            index = (slice(None), g.pad_left + g.src(edge - g.pad_left))
            np.add.at(g3, index, g3[:, edge])  # type: ignore[arg-type]  # a tuple index works
    inside = tuple(slice(g.pad_left, g.pad_left + g.input_length) for g in geoms)
    return np.ascontiguousarray(gp[(slice(None), *inside)])

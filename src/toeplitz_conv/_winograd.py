r"""Winograd's minimal filtering F(4, 3): 3-tap (1-D) and 3x3 (2-D) correlations, stride 1.

Opt-in only (``method="winograd"``): 4x (2-D: 36 products for a 4x4 tile of
outputs instead of 144) and 2x (1-D) fewer multiplications than the direct sum,
at the price of a larger rounding error (the transforms
have entries up to 8 and 1/24). Each axis is cut into tiles of 6 padded
samples, 4 apart; on one tile ``d`` the 4 outputs are

.. math::

    y = A^T \left[ (G g) \odot (B^T d) \right]

(2-D: ``Y = A^T [(G g G^T) \odot (B^T d B)] A``), with the interpolation
points ``0, 1, -1, 2, -2, \infty`` of Lavin & Gray [1]_. Every step is one
copy or one BLAS call over a block of tile rows (sized to stay in cache): the
tiles copied out of the padded signal at once; ``B^T`` along each axis as a
``6 x 6`` GEMM over all tiles and channels; one GEMM per transform point
(``6`` in 1-D, ``36`` in 2-D), ``(C_out/groups x G) @ (G x tiles)`` per
group; ``A^T`` along each axis, the last one with its 4 outputs innermost so
that the tiles go back into place in runs of contiguous outputs. In numpy,
elementwise transforms cost more than the GEMMs they save: these are GEMMs.

Measured error (float32, vs a float64 reference, relative to the largest
output; see ``benchmarks/operators.py``): ~1e-6 to 1e-5 where the direct sum
gives ~1e-7.

References
----------
.. [1] A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks",
   CVPR 2016, arXiv:1509.09308, §4.2 (F(4x4, 3x3)).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

__all__ = ["winograd_correlate", "winograd_weight"]

# G: 6 x 3, the kernel transform (the points 0, 1, -1, 2, -2 and infinity)
_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ]
)
# B^T: 6 x 6, the data transform; A^T: 4 x 6, the output transform
_BT = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ]
)
_AT = np.array(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ]
)
TILE = 4  # outputs per tile and axis
_COLS = 8192  # columns per product of a transform (see _each_axis)
SPAN = TILE + 2  # padded samples per tile and axis


def winograd_weight(weight: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``(C_out, G, 3[, 3])`` -> ``(6^n, groups, C_out/groups, G)``: ``G g G^T`` per pair.

    The transform points are ordered as :func:`winograd_correlate` lays them
    out: the first spatial axis' point first.
    """
    n = weight.ndim - 2
    c_out, G = weight.shape[:2]
    w = weight.astype(np.complex128 if weight.dtype.kind == "c" else np.float64)
    if n == 1:
        m = np.einsum("ai,oci->aoc", _G, w)
    else:
        m = np.einsum("ai,bj,ocij->aboc", _G, _G, w)
    return np.ascontiguousarray(m.reshape(SPAN**n, groups, c_out // groups, G).astype(dtype))


class Scratch(Protocol):
    """Where the passes take their scratch buffers from and hand them back to."""

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array of `shape` and `dtype`."""
        ...

    def give(self, a: np.ndarray) -> None:
        """`a` is no longer used."""
        ...


class _Fresh:
    """Scratch from ``np.empty`` each time, nothing kept."""

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def give(self, a: np.ndarray) -> None:
        pass


def _each_axis(t: np.ndarray, v: np.ndarray, n: int, pool: Scratch) -> np.ndarray:
    """``t`` (``r x 6``) applied along each of the first `n` axes of `v`, each of length 6.

    `v` is a flat scratch buffer of ``6^n * rest`` values, read as ``(6, .., 6, rest)``;
    one GEMM per axis (batched over the axes already transformed). Returns a flat
    scratch buffer holding ``(r, .., r, rest)``; `v` is handed back to `pool`.
    """
    r = t.shape[0]
    rest = v.size // SPAN**n
    for a in range(n):
        out = pool.take((r ** (a + 1) * SPAN ** (n - a - 1) * rest,), v.dtype)
        vs, outs = v.reshape(r**a, SPAN, -1), out.reshape(r**a, r, -1)
        # a few thousand columns per product: OpenBLAS ran one 6 x 6 product over ~40k
        # columns 3x slower than the same in chunks of ~8k
        cols = vs.shape[-1]
        for j0 in range(0, cols, _COLS):
            np.matmul(t, vs[..., j0 : j0 + _COLS], out=outs[..., j0 : j0 + _COLS])
        pool.give(v)
        v = out
    return v


def winograd_correlate(
    xp: np.ndarray,
    m: np.ndarray,
    output_size: tuple[int, ...],
    c_out: int,
    pool: Scratch | None = None,
    block_bytes: int = 1 << 20,
) -> np.ndarray:
    """The 3-tap / 3x3 correlation of the padded signal `xp` with the transformed weight `m`.

    Parameters
    ----------
    xp : ndarray, shape (C_in, E_1[, E_2], B)
        The padded signal, ``E_a >= S_out,a + 2``.
    m : ndarray, shape (6^n, groups, C_out/groups, G)
        From :func:`winograd_weight`, in the dtype of `xp`.
    output_size : tuple of n ints
    c_out : int
    pool : Scratch, optional
        Where scratch buffers come from (fresh ones by default).
    block_bytes : int, optional
        The tiles are taken a block of rows (along the first axis) at a time,
        about this many bytes of transformed tiles each, so that they stay in
        cache from one step to the next.

    Returns
    -------
    y : ndarray, shape (C_out, *output_size, B)
        ``y[o, i] = sum_{c, k} w[o, c, k] xp[g(o) G + c, i + k]``.

    Notes
    -----
    Five steps, each one copy or one batched GEMM: the tiles ``d[j, c, t, b] =
    xp[c, 4 t + j, b]`` (per axis) copied out at once; ``B^T`` along each tile
    axis (a ``6 x 6`` GEMM over everything else); the ``6^n`` products ``m[p] @
    v[p]``; ``A^T`` along each point axis; the tiles put back in place.
    """
    pool = _Fresh() if pool is None else pool
    n = len(output_size)
    C, B = xp.shape[0], xp.shape[-1]
    tiles = tuple(-(-s // TILE) for s in output_size)
    need = tuple(TILE * t + 2 for t in tiles)
    grown = None
    if any(e < q for e, q in zip(xp.shape[1:-1], need, strict=True)):  # zeros past the end
        grown = pool.take((C, *need, B), xp.dtype)
        cut = tuple(min(e, q) for e, q in zip(xp.shape[1:-1], need, strict=True))
        inside = (slice(None), *(slice(0, c) for c in cut))
        grown[inside] = xp[inside]
        for a, c in enumerate(cut):  # the cells past the signal on each axis
            grown[(slice(None), *(slice(None),) * a, slice(c, None))] = 0
        xp = grown
    padded = tuple(TILE * t for t in tiles)
    exact = padded == tuple(output_size)
    full = (np.empty if exact else pool.take)((c_out, *padded, B), xp.dtype)
    # (C_out, T_1, 4, .., T_n, 4, B): where the tiles go
    placed = full.reshape(c_out, *(v for t in tiles for v in (t, TILE)), B)
    row = SPAN**n * max(C, c_out) * math.prod(tiles[1:]) * B * xp.dtype.itemsize
    step = max(1, min(tiles[0], block_bytes // max(1, row)))
    for t0 in range(0, tiles[0], step):
        t1 = min(tiles[0], t0 + step)
        part = (t1 - t0, *tiles[1:])
        u = _tile_products(xp[:, TILE * t0 : TILE * t1 + 2], m, part, pool)
        # (4_1, .., 4_{n-1}, C_out, T.., B, 4_n) -> (C_out, T_1, 4_1, .., T_n, 4_n, B)
        order = [n - 1]
        for a in range(n):
            order += [n + a, a if a < n - 1 else 2 * n + 1]
        order.append(2 * n)
        u6 = u.reshape(*(TILE,) * (n - 1), c_out, *part, B, TILE)
        np.copyto(placed[:, t0:t1], u6.transpose(order))
        pool.give(u)
    if grown is not None:
        pool.give(grown)
    if exact:
        return full
    y = np.ascontiguousarray(full[(slice(None), *(slice(0, s) for s in output_size))])
    pool.give(full)
    return y


def _tile_products(
    xp: np.ndarray, m: np.ndarray, tiles: tuple[int, ...], pool: Scratch
) -> np.ndarray:
    """Steps 1-4 of :func:`winograd_correlate` on `tiles` tiles from the padded `xp`.

    Returns a flat scratch buffer holding ``(4_1, .., 4_{n-1}, C_out, *tiles, B, 4_n)``.
    """
    n = len(tiles)
    C, B = xp.shape[0], xp.shape[-1]
    st = xp.strides
    shape = (*(SPAN,) * n, C, *tiles, B)
    windows = np.lib.stride_tricks.as_strided(
        xp,
        shape=shape,
        strides=(*st[1:-1], st[0], *(TILE * s for s in st[1:-1]), st[-1]),
        writeable=False,
    )
    v = pool.take((math.prod(shape),), xp.dtype)
    np.copyto(v.reshape(shape), windows)
    v = _each_axis(_BT.astype(xp.dtype), v, n, pool)  # (6_1, .., 6_n, C, T.., B)
    points, groups, cog, G = m.shape
    u = pool.take((points * groups * cog * math.prod(tiles) * B,), xp.dtype)
    u4, v4 = u.reshape(points, groups, cog, -1), v.reshape(points, groups, G, -1)
    if G == 1:  # one input channel per group (depthwise): outer products
        np.multiply(m, v4, out=u4)
    else:
        np.matmul(m, v4, out=u4)
    pool.give(v)
    at = _AT.astype(xp.dtype)
    rest = u.size // points
    for a in range(n - 1):  # A^T along 6_1, .., 6_{n-1}: (4^a, 6, ..) -> (4^a, 4, ..)
        out = pool.take((TILE ** (a + 1) * SPAN ** (n - 1 - a) * rest,), xp.dtype)
        np.matmul(at, u.reshape(TILE**a, SPAN, -1), out=out.reshape(TILE**a, TILE, -1))
        pool.give(u)
        u = out
    # A^T along 6_n with the 4 outputs innermost (placed in runs of contiguous outputs)
    lead = TILE ** (n - 1)
    y = pool.take((lead * rest * TILE,), xp.dtype)
    np.matmul(u.reshape(lead, SPAN, rest).transpose(0, 2, 1), at.T, out=y.reshape(lead, rest, TILE))
    pool.give(u)
    return y

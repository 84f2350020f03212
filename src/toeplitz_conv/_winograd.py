r"""Winograd's minimal filtering F(m, 3), m = 2 or 4: 3-tap (1-D) and 3x3 (2-D) correlations.

Dilation 1, stride 1 (and 2 for F(2, 3)). Each axis is cut into tiles of
``(m - 1) s + 3`` padded samples, ``m s`` apart; on one tile ``d`` the ``m``
outputs are

.. math::

    y = A^T \left[ (G g) \odot (B^T d) \right]

(2-D: ``Y = A^T [(G g G^T) \odot (B^T d B)] A``). Two sets of transforms
(:class:`Tiles`):

- :data:`F2`, F(2, 3) / F(2x2, 3x3) (``method="winograd2"``), the points
  ``0, 1, -1, \infty``: 2.25x (2-D: 16 products for a 2x2 tile of outputs
  instead of 36) and 1.5x (1-D) fewer multiplications than the direct sum. Its
  transforms have entries 0, 1, -1 and 1/2 only: it rounds like the direct sum
  (float32 on 64 -> 64 channels, 3x3, 56x56: 3.3e-7 of the output's scale, the
  direct sum 5.8e-7), which is why ``method="auto"`` may pick it.
- :data:`F4`, F(4, 3) / F(4x4, 3x3) (``method="winograd"``), the points
  ``0, 1, -1, 2, -2, \infty`` of Lavin & Gray [1]_: 4x (2-D: 36 products for
  a 4x4 tile instead of 144) and 2x (1-D) fewer multiplications, at the price of
  a larger rounding error (entries up to 8 and 1/24: ~6e-6 in 2-D, ~2e-6 in
  1-D): opt-in only.
- :data:`S2`, F(2, 3) at stride 2 (``method="winograd2"`` on stride-2 layers):
  the polyphase split of the tile, two outputs ``y_0 = w_0 d_0 + w_1 d_1 + w_2
  d_2`` and ``y_1 = w_0 d_2 + w_1 d_3 + w_2 d_4``. The even taps ``w_0, w_2``
  on the even samples ``d_0, d_2, d_4`` are F(2, 2) with the points ``0, 1,
  \infty`` (products ``w_0 (d_0 - d_2)``, ``(w_0 + w_2) d_2``, ``w_2 (d_4 -
  d_2)``), the odd tap ``w_1`` on ``d_1, d_3`` is direct: 5 products for 2
  outputs instead of 6 (2-D: 25 for a 2x2 tile instead of 36, 1.44x fewer).
  Transform entries 0 and +-1 only: it rounds like the direct sum. (The
  decomposition of a stride-2 kernel into its phases, each run by Winograd, is
  Huang et al.'s [2]_.)

In numpy every step is one copy or one BLAS call over a block of tile rows
(sized to stay in cache): the tiles copied out of the padded signal at once;
``B^T`` along each axis as a ``(m+2) x (m+2)`` GEMM over all tiles and
channels; one GEMM per transform point (``(m+2)^n``),
``(C_out/groups x G) @ (G x tiles)`` per group; ``A^T`` along each axis, the
last one with its ``m`` outputs innermost so that the tiles go back into place
in runs of contiguous outputs. In numpy, elementwise transforms cost more than
the GEMMs they save: these are GEMMs. With numba (the ``[fast]`` extra), 2-D
layers run the transforms compiled instead (:mod:`toeplitz_conv._compiled`):
each tile read straight from the padded signal and transformed in registers,
each output tile written straight into place; only the point products stay
GEMMs. Their blocks of tile rows write disjoint outputs and run in runs on the
package's threads (:func:`_runs`); at stride 2 the adjoint runs the same tiles
transposed (:func:`compiled_adjoint`).

References
----------
.. [1] A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks",
   CVPR 2016, arXiv:1509.09308, §4.1-4.2 (F(2x2, 3x3) and F(4x4, 3x3)).
.. [2] D. Huang et al., "DWM: A Decomposable Winograd Method for Convolution
   Acceleration", AAAI 2020, arXiv:2002.00552 (stride 2 by splitting the kernel).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ._compiled import kernels
from ._threads import contiguous_runs, max_threads, run

__all__ = [
    "F2",
    "F4",
    "S2",
    "Tiles",
    "compiled_adjoint",
    "point_products",
    "winograd_correlate",
    "winograd_weight",
]


@dataclass(frozen=True, eq=False)
class Tiles:
    """One set of Winograd transforms F(m, 3).

    Attributes
    ----------
    name : str
        The ``method=`` that runs it.
    g : ndarray, shape (points, 3)
        The kernel transform.
    bt : ndarray, shape (points, span)
        The data transform ``B^T``.
    at : ndarray, shape (m, points)
        The output transform ``A^T``.
    stride : int
        The layer's stride along every axis.
    """

    name: str
    g: np.ndarray
    bt: np.ndarray
    at: np.ndarray
    stride: int = 1

    @functools.cached_property
    def tile(self) -> int:
        """``m``, outputs per tile and axis."""
        return int(self.at.shape[0])

    @functools.cached_property
    def points(self) -> int:
        """Transform points per axis."""
        return int(self.bt.shape[0])

    @functools.cached_property
    def span(self) -> int:
        """Padded samples a tile reads per axis: ``(m - 1) s + 3``."""
        return int(self.bt.shape[1])

    @functools.cached_property
    def step(self) -> int:
        """``m s``, padded samples from one tile to the next along an axis."""
        return self.tile * self.stride

    def extent(self, output_size: tuple[int, ...]) -> tuple[int, ...]:
        """The padded samples the tiles of `output_size` outputs read along each axis
        (whole tiles: up to ``m - 1`` outputs past the end are computed and dropped)."""
        return tuple(self.step * -(-s // self.tile) + self.span - self.step for s in output_size)


#: F(2, 3): the points 0, 1, -1 and infinity
F2 = Tiles(
    "winograd2",
    g=np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
    bt=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
    at=np.array([[1, 1, 1, 0], [0, 1, -1, -1]]),
)
#: F(4, 3): the points 0, 1, -1, 2, -2 and infinity
F4 = Tiles(
    "winograd",
    g=np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
    bt=np.array(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ]
    ),
    at=np.array(
        [
            [1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 0],
            [0, 1, 1, 4, 4, 0],
            [0, 1, -1, 8, -8, 1],
        ]
    ),
)
#: F(2, 3) at stride 2: F(2, 2) (the points 0, 1, infinity) on the even taps, the odd one direct
S2 = Tiles(
    "winograd2",
    g=np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0], [0, 1, 0]]),
    bt=np.array(
        [[1, 0, -1, 0, 0], [0, 0, 1, 0, 0], [0, 0, -1, 0, 1], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0]]
    ),
    at=np.array([[1, 1, 0, 1, 0], [0, 1, 1, 0, 1]]),
    stride=2,
)
_COLS = 8192  # columns per product of a transform (see _each_axis)


def winograd_weight(
    weight: np.ndarray, groups: int, dtype: np.dtype, tiles: Tiles = F4
) -> np.ndarray:
    """``(C_out, G, 3[, 3])`` -> ``(points^n, groups, C_out/groups, G)``: ``G g G^T`` per pair.

    The transform points are ordered as :func:`winograd_correlate` lays them
    out: the first spatial axis' point first.
    """
    n = weight.ndim - 2
    c_out, G = weight.shape[:2]
    w = weight.astype(np.complex128 if weight.dtype.kind == "c" else np.float64)
    if n == 1:
        m = np.einsum("ai,oci->aoc", tiles.g, w)
    else:
        m = np.einsum("ai,bj,ocij->aboc", tiles.g, tiles.g, w)
    shape = (tiles.points**n, groups, c_out // groups, G)
    return np.ascontiguousarray(m.reshape(shape).astype(dtype))


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
    """``t`` (``r x S``) applied along each of the first `n` axes of `v`, each of length ``S``.

    `v` is a flat scratch buffer of ``S^n * rest`` values, read as ``(S, .., S, rest)``;
    one GEMM per axis (batched over the axes already transformed). Returns a flat
    scratch buffer holding ``(r, .., r, rest)``; `v` is handed back to `pool`.
    """
    r, span = t.shape
    rest = v.size // span**n
    for a in range(n):
        out = pool.take((r ** (a + 1) * span ** (n - a - 1) * rest,), v.dtype)
        vs, outs = v.reshape(r**a, span, -1), out.reshape(r**a, r, -1)
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
    tiles: Tiles = F4,
) -> np.ndarray:
    """The 3-tap / 3x3 correlation of the padded signal `xp` with the transformed weight `m`.

    Parameters
    ----------
    xp : ndarray, shape (C_in, E_1[, E_2], B)
        The padded signal; the tiles read zeros past its end.
    m : ndarray, shape (points^n, groups, C_out/groups, G)
        From :func:`winograd_weight` with the same `tiles`, in the dtype of `xp`.
    output_size : tuple of n ints
    c_out : int
    pool : Scratch, optional
        Where scratch buffers come from (fresh ones by default).
    block_bytes : int, optional
        The tiles are taken a block of rows (along the first axis) at a time,
        about this many bytes of transformed tiles each, so that they stay in
        cache from one step to the next.
    tiles : Tiles, optional
        The transforms: :data:`F4` (default), :data:`F2` or :data:`S2` (stride 2).

    Returns
    -------
    y : ndarray, shape (C_out, *output_size, B)
        ``y[o, i] = sum_{c, k} w[o, c, k] xp[g(o) G + c, s i + k]``.

    Notes
    -----
    Five steps, each one copy or one batched GEMM: the tiles ``d[j, c, t, b] =
    xp[c, m s t + j, b]`` (per axis) copied out at once; ``B^T`` along each tile
    axis (a GEMM over everything else); the ``points^n`` products ``m[p] @
    v[p]``; ``A^T`` along each point axis; the tiles put back in place.
    """
    pool = _Fresh() if pool is None else pool
    n, T, step = len(output_size), tiles.tile, tiles.step
    C, B = xp.shape[0], xp.shape[-1]
    counts = tuple(-(-s // T) for s in output_size)
    need = tiles.extent(output_size)
    grown = None
    if any(e < q for e, q in zip(xp.shape[1:-1], need, strict=True)):  # zeros past the end
        grown = pool.take((C, *need, B), xp.dtype)
        cut = tuple(min(e, q) for e, q in zip(xp.shape[1:-1], need, strict=True))
        inside = (slice(None), *(slice(0, c) for c in cut))
        grown[inside] = xp[inside]
        for a, c in enumerate(cut):  # the cells past the signal on each axis
            grown[(slice(None), *(slice(None),) * a, slice(c, None))] = 0
        xp = grown
    fast = kernels(xp.dtype) if n == 2 else None
    if fast is not None:
        y = _compiled_tiles(fast, xp, m, output_size, c_out, pool, block_bytes, tiles)
        if grown is not None:
            pool.give(grown)
        return y
    overlap = tiles.span - step  # samples a tile shares with the next
    padded = tuple(T * t for t in counts)
    exact = padded == tuple(output_size)
    full = (np.empty if exact else pool.take)((c_out, *padded, B), xp.dtype)
    # (C_out, T_1, m, .., T_n, m, B): where the tiles go
    placed = full.reshape(c_out, *(v for t in counts for v in (t, T)), B)
    row = tiles.points**n * max(C, c_out) * math.prod(counts[1:]) * B * xp.dtype.itemsize
    per_block = max(1, min(counts[0], block_bytes // max(1, row)))
    for t0 in range(0, counts[0], per_block):
        t1 = min(counts[0], t0 + per_block)
        part = (t1 - t0, *counts[1:])
        u = _tile_products(xp[:, step * t0 : step * t1 + overlap], m, part, pool, tiles)
        # (m_1, .., m_{n-1}, C_out, T.., B, m_n) -> (C_out, T_1, m_1, .., T_n, m_n, B)
        order = [n - 1]
        for a in range(n):
            order += [n + a, a if a < n - 1 else 2 * n + 1]
        order.append(2 * n)
        u6 = u.reshape(*(T,) * (n - 1), c_out, *part, B, T)
        np.copyto(placed[:, t0:t1], u6.transpose(order))
        pool.give(u)
    if grown is not None:
        pool.give(grown)
    if exact:
        return full
    y = np.ascontiguousarray(full[(slice(None), *(slice(0, s) for s in output_size))])
    pool.give(full)
    return y


def _compiled_tiles(
    fast: Any,
    xp: np.ndarray,
    m: np.ndarray,
    output_size: tuple[int, ...],
    c_out: int,
    pool: Scratch,
    block_bytes: int,
    tiles: Tiles,
) -> np.ndarray:
    """:func:`winograd_correlate` in 2-D with the compiled transforms
    (:mod:`toeplitz_conv._compiled`): per block of tile rows, the tiles transformed
    straight out of `xp` (which covers every tile), the point products, the output tiles
    transformed straight into place (into a scratch of whole tiles, copied out, when the
    tiles overhang the output or for batches of several). The blocks write disjoint
    outputs: runs of them go to the package's threads (:func:`_runs`)."""
    T, points, key = tiles.tile, tiles.points**2, (tiles.tile, tiles.stride)
    C, B = xp.shape[0], xp.shape[-1]
    rows, cols = (-(-s // T) for s in output_size)
    exact = (T * rows, T * cols) == tuple(output_size)
    # one sample at a time (the kernels see 2-D images; batches of one keep unit strides)
    full = (np.empty if exact else pool.take)((B, c_out, T * rows, T * cols), xp.dtype)
    samples = xp.transpose(3, 0, 1, 2)

    def blocks(part: Sequence[tuple[int, int]]) -> None:
        for t0, t1 in part:
            _block(fast.tiles_in[key], fast.tiles_out[key], samples, full, m, t0, t1, cols, 0, pool)

    row = points * max(C, c_out) * cols * B * xp.dtype.itemsize
    run([functools.partial(blocks, r) for r in _runs(rows, row, block_bytes)], blas=1)
    if B == 1 and exact:
        return full.reshape(c_out, *output_size, 1)
    y = np.empty((c_out, *output_size, B), dtype=xp.dtype)
    np.copyto(y, full[:, :, : output_size[0], : output_size[1]].transpose(1, 2, 3, 0))
    if not exact:
        pool.give(full)
    return y


def compiled_adjoint(
    fast: Any,
    y: np.ndarray,
    mh: np.ndarray,
    output_size: tuple[int, ...],
    c_in: int,
    pool: Scratch,
    block_bytes: int,
    tiles: Tiles,
) -> np.ndarray:
    """The adjoint of :func:`winograd_correlate` in 2-D by compiled transforms (``fast``
    from :func:`toeplitz_conv._compiled.kernels`, which has them for :data:`S2`).

    Parameters
    ----------
    y : ndarray, shape (C_out, *output_size, B)
    mh : ndarray, shape (points^2, groups, G, C_out/groups)
        The conjugate transpose of each point's :func:`winograd_weight`.

    Returns
    -------
    gp : ndarray, shape (B, C_in, *tiles.extent(output_size))
        The gradient of the padded signal the forward pass reads: per block of tile rows,
        ``A ybar A^T`` of each tile of outputs, the point products, ``B u B^T`` added
        onto the tile's cells. Neighbouring tile rows share a row of cells: each run of
        blocks on another thread adds into a buffer of its own rows, added on at the end.
    """
    T, points, key = tiles.tile, tiles.points**2, (tiles.tile, tiles.stride)
    c_out, B = y.shape[0], y.shape[-1]
    rows, cols = (-(-s // T) for s in output_size)
    if (T * rows, T * cols) == tuple(output_size) and B == 1:
        whole = y.reshape(1, c_out, *output_size)
    else:  # the outputs past the end of the last tiles are zero
        whole = np.zeros((B, c_out, T * rows, T * cols), dtype=y.dtype)
        np.copyto(whole[:, :, : output_size[0], : output_size[1]], y.transpose(3, 0, 1, 2))
    extent = tiles.extent(output_size)
    gp = np.zeros((B, c_in, *extent), dtype=y.dtype)
    row = points * max(c_in, c_out) * cols * B * y.dtype.itemsize
    runs = _runs(rows, row, block_bytes)
    # each run after the first adds into its own rows, from padded row step * (first tile row)
    overlap = tiles.span - tiles.step
    own = {
        part[0][0]: np.zeros(
            (B, c_in, tiles.step * (part[-1][1] - part[0][0]) + overlap, extent[1]), dtype=y.dtype
        )
        for part in runs[1:]
    }

    def blocks(part: Sequence[tuple[int, int]]) -> None:
        first = part[0][0]
        into, out, g = fast.adjoint_in[key], fast.adjoint_out[key], own.get(first, gp)
        for t0, t1 in part:
            _block(into, out, whole, g, mh, t0, t1, cols, first, pool)

    run([functools.partial(blocks, r) for r in runs], blas=1)
    for first, g in own.items():
        part = gp[:, :, tiles.step * first : tiles.step * first + g.shape[2]]
        np.add(part, g, out=part)
    return gp


def _block(
    into: Any,
    out: Any,
    sources: np.ndarray,
    targets: np.ndarray,
    m: np.ndarray,
    t0: int,
    t1: int,
    cols: int,
    row0: int,
    pool: Scratch,
) -> None:
    """Tile rows ``t0 .. t1`` by compiled transforms: ``into(sources[b], ...)`` writes each
    sample's transformed tiles (columns ``[b tq, (b + 1) tq)`` of every point), then the
    point products ``m[p] @ v[p]``, then ``out(..., targets[b], t0 - row0, ...)`` puts each
    sample's tiles in place (`targets` holding rows from tile row `row0` on)."""
    points, groups, cog, G = m.shape
    c_from, c_to, B, dtype = groups * G, groups * cog, len(sources), sources.dtype
    tq = (t1 - t0) * cols
    q = tq * B
    v = pool.take((points, _stream(c_from * q, dtype)), dtype)
    u = pool.take((points, _stream(c_to * q, dtype)), dtype)
    v3, u3 = (
        v[:, : c_from * q].reshape(points, c_from, q),
        u[:, : c_to * q].reshape(points, c_to, q),
    )
    for b in range(B):
        into(sources[b], v3[:, :, b * tq : (b + 1) * tq], t0, t1 - t0, cols)
    point_products(m, v3, u3)
    for b in range(B):
        out(u3[:, :, b * tq : (b + 1) * tq], targets[b], t0 - row0, t1 - t0, cols)
    pool.give(v)
    pool.give(u)


#: Bytes of transformed tiles from which a 2-D layer's blocks run on several threads
PARALLEL_BYTES = 1 << 18


def _runs(rows: int, row_bytes: int, block_bytes: int) -> tuple[Sequence[tuple[int, int]], ...]:
    """Blocks ``(t0, t1)`` of tile rows, about `block_bytes` of transformed tiles each
    (`row_bytes` a tile row), in contiguous runs, one per thread
    (:func:`~toeplitz_conv._threads.max_threads`; one run below :data:`PARALLEL_BYTES` in
    all). Blocks are not made smaller to give every thread one: the point products' GEMMs
    lose more than a second thread gains (128 -> 128, stride 2, on 28x28, all its 7x7 tiles
    one block: 0.53 ms on two threads in two blocks against 0.50 ms on one)."""
    threads = max_threads() if rows * row_bytes >= PARALLEL_BYTES else 1
    return _planned_runs(rows, row_bytes, block_bytes, threads)


@functools.lru_cache(maxsize=256)  # planned once per layer and batch size
def _planned_runs(
    rows: int, row_bytes: int, block_bytes: int, threads: int
) -> tuple[Sequence[tuple[int, int]], ...]:
    per_block = max(1, min(rows, block_bytes // max(1, row_bytes)))
    blocks = [(t0, min(rows, t0 + per_block)) for t0 in range(0, rows, per_block)]
    return tuple(contiguous_runs(blocks, threads))


def _stream(size: int, dtype: np.dtype) -> int:
    """Values kept for each transform point's `size` values: a cache line more than a
    multiple of 4 KiB, so that the 16, 25 or 36 streams the compiled transforms write and read
    side by side fall in different cache sets. (With ``C q`` values a multiple of 4 KiB, as
    for 64 channels and 4 rows of 28 tiles, the F(2x2, 3x3) input transform ran 5x
    slower.)"""
    page = 4096 // dtype.itemsize
    return -(-size // page) * page + max(1, 64 // dtype.itemsize)


def _tile_products(
    xp: np.ndarray, m: np.ndarray, counts: tuple[int, ...], pool: Scratch, tiles: Tiles
) -> np.ndarray:
    """Steps 1-4 of :func:`winograd_correlate` on `counts` tiles from the padded `xp`.

    Returns a flat scratch buffer holding ``(m_1, .., m_{n-1}, C_out, *counts, B, m_n)``.
    """
    n, T, span, points = len(counts), tiles.tile, tiles.span, tiles.points
    C, B = xp.shape[0], xp.shape[-1]
    st = xp.strides
    shape = (*(span,) * n, C, *counts, B)
    windows = np.lib.stride_tricks.as_strided(
        xp,
        shape=shape,
        strides=(*st[1:-1], st[0], *(tiles.step * s for s in st[1:-1]), st[-1]),
        writeable=False,
    )
    v = pool.take((math.prod(shape),), xp.dtype)
    np.copyto(v.reshape(shape), windows)
    v = _each_axis(tiles.bt.astype(xp.dtype), v, n, pool)  # (P_1, .., P_n, C, T.., B)
    u = _point_products(v, m, pool)
    at = tiles.at.astype(xp.dtype)
    rest = u.size // points**n
    for a in range(n - 1):  # A^T along P_1, .., P_{n-1}: (m^a, P, ..) -> (m^a, m, ..)
        out = pool.take((T ** (a + 1) * points ** (n - 1 - a) * rest,), xp.dtype)
        np.matmul(at, u.reshape(T**a, points, -1), out=out.reshape(T**a, T, -1))
        pool.give(u)
        u = out
    # A^T along P_n with the m outputs innermost (placed in runs of contiguous outputs)
    lead = T ** (n - 1)
    y = pool.take((lead * rest * T,), xp.dtype)
    np.matmul(u.reshape(lead, points, rest).transpose(0, 2, 1), at.T, out=y.reshape(lead, rest, T))
    pool.give(u)
    return y


def _point_products(v: np.ndarray, m: np.ndarray, pool: Scratch) -> np.ndarray:
    """``u[p] = m[p] @ v[p]`` per transform point and group: `v` (flat, ``(P, C, cols)``)
    handed back, `u` (flat, ``(P, C_out, cols)``) taken from `pool`."""
    points, groups, cog, G = m.shape
    u = pool.take((points * groups * cog * (v.size // (points * groups * G)),), v.dtype)
    point_products(m, v, u)
    pool.give(v)
    return u


def point_products(m: np.ndarray, v: np.ndarray, u: np.ndarray) -> None:
    """``u[p] = m[p] @ v[p]`` per transform point ``p`` and group, into `u`.

    `m` is ``(P, groups, C_out/groups, G)`` (:func:`winograd_weight`); `v` holds
    ``(P, C_in, cols)`` and `u` ``(P, C_out, cols)`` values, each a view that splits
    its channel axis into groups without a copy. One input channel per group
    (depthwise): outer products.
    """
    points, groups, cog, G = m.shape
    v4, u4 = v.reshape(points, groups, G, -1), u.reshape(points, groups, cog, -1)
    if G == 1:
        np.multiply(m, v4, out=u4)
    else:
        np.matmul(m, v4, out=u4)

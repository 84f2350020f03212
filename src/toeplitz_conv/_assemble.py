"""Expanding per-axis bands over channels into CSR, COO and DIA arrays, in any dimension.

A conv matrix with ``n`` spatial axes (or its transpose) has rows ``(a, i_1,
..., i_n)`` and columns ``(b, l_1, ..., l_n)``, flattened row-major. Its ``(a,
b)`` channel block is ``sum_k W[a, b, k] S_1^{k_1} (x) ... (x) S_n^{k_n}`` with
``S_j^{k}`` the 1-D selection matrix of tap ``k`` on axis ``j``
(``docs/math.md``). The innermost axis stays a :class:`~._pattern.Band`; the
outer axes are expanded like channels: a *row block* is ``(a, i_1, ...,
i_{n-1})``, a *column block* ``(b, l_1, ..., l_{n-1})``, and each nonzero block
holds the inner band with one weight per inner tap.

The row blocks fall into a few *classes* (:func:`._pattern.row_classes`, one
per outer axis, combined): on each outer axis either the interior rows of one
phase of the band's period, whose column pattern is one pattern shifted row by
row, or one edge row, where padding drops taps or folds two onto one column
(their weights are merged before anything is written). All row blocks of a
class share one column-block offset pattern relative to a base and one table of
weights per row channel, and they sit on an affine grid in the output: their
entries, rows and column bases are affine in ``(a, i_1, ..., i_{n-1})``. So a
class is written through strided views of the preallocated output, a few
broadcast operations per chunk; 1-D is the case of no outer axis (one class).
Columns within a row are sorted by construction (channel, then the outer
columns in order, then the band's), so the result is canonical.

The inner band's interior rows repeat with its period, so they are written as
a *super-unit* (several periods, some thousand entries, computed once per class)
plus one offset per repetition. Chunks are disjoint slices of preallocated
arrays, filled from a thread pool (numpy releases the GIL). No temporary grows
with the matrix.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial

import numpy as np

from . import _threads
from . import _tunables as tunables
from ._pattern import Band, RowClass, row_classes, row_counts, sliced
from ._typing import DTypeLike

__all__ = [
    "Grid",
    "box_grids",
    "compressed_arrays",
    "coordinate_arrays",
    "dia_arrays",
    "dia_offsets",
]


def _chunk_entries(nnz: int) -> int:
    """Entries per task for a result of `nnz` entries."""
    return min(tunables.CHUNK_ENTRIES, max(tunables.MIN_CHUNK_ENTRIES, nnz // 8))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, eq=False)
class Grid:
    """A conv matrix as channel blocks over per-axis bands: what to expand.

    Row channel ``a`` has the column channels ``base[a] + t`` (``t < nb``); their
    block is the Kronecker product of the per-axis bands, tap ``(k_1..k_n)``
    valued ``weights[a, t, k_1, ..., k_n]``.

    Attributes
    ----------
    inner : Band
        The innermost axis, shape ``(R, C)``.
    outer : tuple of Band
        The outer spatial axes, outermost first (empty in 1-D).
    weights : ndarray, shape (A, nb, K_1, ..., K_n)
        Already in the output dtype.
    base : ndarray of int64, shape (A,)
        First column channel of each row channel.
    n_col_blocks : int
        Column channels in the whole matrix.
    """

    inner: Band
    outer: tuple[Band, ...]
    weights: np.ndarray
    base: np.ndarray
    n_col_blocks: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(A * prod(rows), n_col_blocks * prod(cols))`` over the axes."""
        rows = math.prod(b.shape[0] for b in (*self.outer, self.inner))
        cols = math.prod(b.shape[1] for b in (*self.outer, self.inner))
        return self.weights.shape[0] * rows, self.n_col_blocks * cols

    @property
    def nnz(self) -> int:
        """Entries of the whole matrix."""
        A, nb = self.weights.shape[:2]
        return A * nb * math.prod(b.nnz for b in (*self.outer, self.inner))

    def rows(self, box: tuple[tuple[int, int], ...]) -> Grid:
        """The rows in `box` (one ``(lo, hi)`` per row dimension: channel, then axes)."""
        (a0, a1), *axes = box
        bands = [
            sliced(b, lo, hi) for b, (lo, hi) in zip((*self.outer, self.inner), axes, strict=True)
        ]
        return Grid(
            bands[-1], tuple(bands[:-1]), self.weights[a0:a1], self.base[a0:a1], self.n_col_blocks
        )


def box_grids(grid: Grid, r0: int, r1: int) -> list[Grid]:
    """Rows ``[r0, r1)`` of `grid` as a few grids over boxes, in row order.

    A range of flattened rows is the union of at most ``2n + 1`` boxes, each a
    contiguous run of rows (fixed leading indices, a range on one dimension and
    every index after it).
    """
    dims = (grid.weights.shape[0], *(b.shape[0] for b in (*grid.outer, grid.inner)))
    boxes: list[tuple[tuple[int, int], ...]] = []

    def split(prefix: tuple[tuple[int, int], ...], lo: int, hi: int, dims: tuple[int, ...]) -> None:
        if lo >= hi:
            return
        inner = math.prod(dims[1:])
        full = tuple((0, d) for d in dims[1:])
        (a0, b0), (a1, b1) = divmod(lo, inner), divmod(hi, inner)
        if a0 == a1:
            split((*prefix, (a0, a0 + 1)), b0, b1, dims[1:])
            return
        if b0:
            split((*prefix, (a0, a0 + 1)), b0, inner, dims[1:])
            a0 += 1
        if a1 > a0:
            boxes.append((*prefix, (a0, a1), *full))
        if b1:
            split((*prefix, (a1, a1 + 1)), 0, b1, dims[1:])

    split((), r0, r1, dims)
    return [grid.rows(box) for box in boxes]


def _expand(
    counts: np.ndarray,
    cols: np.ndarray,
    taps: np.ndarray,
    offsets: np.ndarray,
    n_cols: int,
    n_taps: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay out rows of entries for the column blocks `offsets`, in (row, block, entry) order.

    Returns the columns ``offsets[t]*n_cols + col``, the flat taps ``t*n_taps + tap``
    (indices into a row channel's ``weights.ravel()``) and ``dest[t, e]``, where
    entry ``e`` of block ``t`` went.
    """
    nb = offsets.size
    row_start = np.cumsum(counts) - counts
    row_of = np.repeat(np.arange(counts.size), counts)
    start, count = row_start[row_of], counts[row_of]
    t = np.arange(nb, dtype=np.int64)[:, None]
    dest = nb * start + t * count + (np.arange(cols.size) - start)
    out_cols = np.empty(nb * cols.size, dtype=np.int64)
    out_taps = np.empty(nb * cols.size, dtype=np.intp)
    out_cols[dest] = offsets[:, None] * n_cols + cols
    out_taps[dest] = t * n_taps + taps
    return out_cols, out_taps, dest


def _view(
    array: np.ndarray, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]
) -> np.ndarray:
    """The strided view of the flat, contiguous `array` at `offset`, strides counted in items.

    numpy checks that every addressed item lies inside `array`.
    """
    item = array.itemsize
    return np.ndarray(
        shape,
        dtype=array.dtype,
        buffer=array,
        offset=offset * item,
        strides=tuple(s * item for s in strides),
    )


class _Layout:
    """Where everything of one row block goes, for one band, block pattern and index dtype.

    No weights. Sizes do not grow with the signal: the edge entries, one
    super-unit, and scalars. Cached, so repeated builds skip this work.
    """

    def __init__(self, band: Band, offsets: np.ndarray, n_taps: int, index_dtype: np.dtype) -> None:
        nb = offsets.size
        self.band, self.nb, self.K, self.idx = band, nb, n_taps, index_dtype
        self.R, self.C = band.shape
        self.block = nb * band.nnz
        self.n_int = band.hi - band.lo
        self.left = nb * band.left_nnz
        self.interior = nb * band.interior_nnz(self.n_int)

        # edge entries in block order, with the positions and taps of duplicates
        cols, taps, dest = _expand(
            band.edge_counts, band.edge_cols, band.edge_taps, offsets, self.C, n_taps
        )
        extra_pos = dest[:, band.extra_entries].ravel()
        extra_pos[extra_pos >= self.left] += self.interior
        extra_taps = (np.arange(nb)[:, None] * n_taps + band.extra_taps).ravel()
        self.edge_cols, self.edge_taps = cols.astype(index_dtype), taps
        # several taps can fold onto one entry: add them in rounds of distinct
        # positions, each entry's taps in ascending order
        order = np.argsort(extra_pos, kind="stable")
        ranked = extra_pos[order]
        new = np.r_[True, ranked[1:] != ranked[:-1]] if ranked.size else np.zeros(0, bool)
        group_start = np.maximum.accumulate(np.where(new, np.arange(ranked.size), 0))
        rank = np.empty(ranked.size, dtype=np.int64)
        rank[order] = np.arange(ranked.size) - group_start
        self.extra_rounds = [
            (extra_pos[rank == r], extra_taps[rank == r])
            for r in range(int(rank.max()) + 1 if rank.size else 0)
        ]

        # the super-unit: `periods` periods of interior rows, repeated by broadcasting
        cols, taps, _ = _expand(
            band.unit_counts, band.unit_cols, band.unit_taps, offsets, self.C, n_taps
        )
        per_unit = _ceil_div(tunables.UNIT_ENTRIES, max(cols.size, 1))
        self.periods = max(1, min(per_unit, _ceil_div(self.n_int, band.period)))
        self.unit_rows = self.periods * band.period
        self.unit_entries = self.periods * cols.size
        shifts = np.arange(self.periods, dtype=np.int64)[:, None] * band.step
        self.unit_cols = (cols + shifts).ravel().astype(index_dtype)
        self.unit_taps = np.tile(taps, self.periods)

    @cached_property
    def unit_ptr(self) -> np.ndarray:
        """Start of each super-unit row's entries, relative to the super-unit."""
        band, m = self.band, np.arange(self.unit_rows)
        ptr = (m // band.period) * band.unit_nnz + band.unit_ptr[m % band.period]
        return (self.nb * ptr).astype(self.idx)

    @cached_property
    def edge_ptr(self) -> np.ndarray:
        """Start of each edge row's entries within a row block."""
        band = self.band
        ptr = self.nb * (np.cumsum(band.edge_counts) - band.edge_counts)
        ptr[band.lo :] += self.interior
        return ptr

    @cached_property
    def unit_row(self) -> np.ndarray:
        """Row of each super-unit entry, relative to the super-unit."""
        m = np.arange(self.unit_rows)
        counts = self.nb * self.band.unit_counts[m % self.band.period]
        return np.repeat(m, counts).astype(self.idx)

    @cached_property
    def edge_row(self) -> np.ndarray:
        """Row of each edge entry within a row block, in block order."""
        return np.repeat(self.band.edge_rows(), self.nb * self.band.edge_counts).astype(self.idx)

    def span(self, m0: int, m1: int) -> tuple[int, int, int, int]:
        """Entries of interior rows ``[m0, m1)`` (``m0`` on a super-unit boundary).

        Returns ``(start, full, middle, stop)``: positions within a row block,
        ``full`` whole super-units from ``start`` to ``middle`` and a partial
        one from ``middle`` to ``stop``.
        """
        start = self.left + self.nb * self.band.interior_nnz(m0)
        stop = self.left + self.nb * self.band.interior_nnz(m1)
        full = (m1 - m0) // self.unit_rows
        return start, full, start + full * self.unit_entries, stop


@lru_cache(maxsize=64)
def _cached_layout(
    band: Band, offsets: bytes, n_taps: int, index_dtype: str, unit_entries: int
) -> _Layout:
    return _Layout(band, np.frombuffer(offsets, dtype=np.int64), n_taps, np.dtype(index_dtype))


def _merge_axis(w: np.ndarray, axis: int, rc: RowClass) -> np.ndarray:
    """Weights of `rc`'s entries along `axis`: first taps taken, folded taps added in order."""
    out = np.take(w, rc.taps, axis=axis)
    lead = (slice(None),) * axis
    for e, k in zip(rc.extra_entries.tolist(), rc.extra_taps.tolist(), strict=True):
        out[(*lead, e)] += w[(*lead, k)]
    return out


@dataclass(frozen=True, eq=False)
class _Class:
    """Row blocks sharing one layout: an affine grid ``(A, n_1, ..., n_m)`` in the output."""

    lay: _Layout
    weights: np.ndarray  # (A, nb * K), this class's merged weights per row channel
    shape: tuple[int, ...]
    entry0: int  # first entry of the first row block
    entry_strides: tuple[int, ...]
    row0: int
    row_strides: tuple[int, ...]
    col_bases: tuple[np.ndarray, ...]  # per grid dimension, first column of the row block


def _classes(grid: Grid, index_dtype: np.dtype) -> list[_Class]:
    """The row-block classes of `grid`, each with its layout, weights and place."""
    inner, outer = grid.inner, grid.outer
    A, nb = grid.weights.shape[:2]
    m = len(outer)
    R, C = inner.shape
    counts = [row_counts(b) for b in outer]
    cums = [np.concatenate([[0], np.cumsum(c)]) for c in counts]
    totals = [b.nnz for b in outer]
    n_rows = [b.shape[0] for b in outer]
    n_cols = [b.shape[1] for b in outer]
    col_stride = [math.prod(n_cols[a + 1 :]) for a in range(m)]  # in column blocks
    row_stride = [math.prod(n_rows[a + 1 :]) * R for a in range(m)]
    per_entry = inner.nnz * nb  # entries of a row block per outer-axis column combination
    chan_entries = per_entry * math.prod(totals)
    chan_cols = math.prod(n_cols) * C
    chan_rows = math.prod(n_rows) * R

    def entry(index: list[int]) -> int:
        """First entry of row block ``(0, *index)``."""
        total, mult = 0, 1
        for a, i in enumerate(index):
            total += mult * int(cums[a][i]) * math.prod(totals[a + 1 :])
            mult *= int(counts[a][i])
        return per_entry * total

    w = grid.weights
    K = w.shape[-1]
    out = []
    for combo in itertools.product(*(row_classes(b) for b in outer)):
        first = [rc.first for rc in combo]
        e0 = entry(first)
        strides = [chan_entries]
        for a, rc in enumerate(combo):
            nxt = list(first)
            nxt[a] += rc.period
            strides.append(entry(nxt) - e0 if rc.count > 1 else 0)
        # column-block offsets (channel, e_1, ..., e_m) and the merged weights
        offsets = np.arange(nb, dtype=np.int64) * math.prod(n_cols)
        merged = w
        for a, rc in enumerate(combo):
            offsets = (offsets[:, None] + rc.cols * col_stride[a]).ravel()
            merged = _merge_axis(merged, 2 + a, rc)
        merged = np.ascontiguousarray(merged).reshape(A, -1)
        col_bases = [grid.base * chan_cols] + [
            np.arange(rc.count, dtype=np.int64) * (rc.step * col_stride[a] * C)
            for a, rc in enumerate(combo)
        ]
        lay = _cached_layout(
            inner,
            offsets.astype(np.int64).tobytes(),
            K,
            np.dtype(index_dtype).str,
            tunables.UNIT_ENTRIES,
        )
        out.append(
            _Class(
                lay,
                merged,
                (A, *(rc.count for rc in combo)),
                e0,
                tuple(strides),
                sum(f * s for f, s in zip(first, row_stride, strict=True)),
                (chan_rows, *(rc.period * s for rc, s in zip(combo, row_stride, strict=True))),
                tuple(col_bases),
            )
        )
    return out


Box = tuple[tuple[int, int], ...]


def _boxes(shape: tuple[int, ...], per: int) -> Iterator[Box]:
    """Sub-boxes of a grid of `shape`, row-major, each of at most `per` elements (or one)."""
    j, tail = len(shape), 1
    while j > 0 and tail * shape[j - 1] <= per:
        tail *= shape[j - 1]
        j -= 1
    full = tuple((0, s) for s in shape[j:])
    if j == 0:
        yield full
        return
    step = max(1, per // tail)
    for prefix in itertools.product(*(range(s) for s in shape[: j - 1])):
        head = tuple((p, p + 1) for p in prefix)
        for lo in range(0, shape[j - 1], step):
            yield (*head, (lo, min(lo + step, shape[j - 1])), *full)


class _Box:
    """One task's row blocks: a sub-box of a class's grid, with its bases and places."""

    def __init__(self, cl: _Class, box: Box, entry_offset: int, row_offset: int) -> None:
        self.cl, self.lay = cl, cl.lay
        self.sizes = tuple(hi - lo for lo, hi in box)
        lows = [lo for lo, _ in box]
        self.origin = cl.entry0 + sum(lo * s for lo, s in zip(lows, cl.entry_strides, strict=True))
        self.row_origin = cl.row0 + sum(lo * s for lo, s in zip(lows, cl.row_strides, strict=True))
        ndim = len(box)

        def along(j: int, values: np.ndarray) -> np.ndarray:
            return values.reshape((1,) * j + (-1,) + (1,) * (ndim - 1 - j))

        def affine(start: int, strides: tuple[int, ...]) -> np.ndarray:
            total = np.full(self.sizes, start, dtype=np.int64)
            for j, ((lo, hi), s) in enumerate(zip(box, strides, strict=True)):
                total += along(j, np.arange(lo, hi, dtype=np.int64) * s)
            return total

        self.cols = np.zeros(self.sizes, dtype=np.int64)
        for j, ((lo, hi), bases) in enumerate(zip(box, cl.col_bases, strict=True)):
            self.cols += along(j, bases[lo:hi])
        self.entries = affine(cl.entry0 + entry_offset, cl.entry_strides)
        self.rows_at = affine(cl.row0 + row_offset, cl.row_strides)
        a0, a1 = box[0]
        self.weights = cl.weights[a0:a1].reshape((a1 - a0,) + (1,) * (ndim - 1) + (-1,))

    def view(self, array: np.ndarray, start: int, tail: tuple[int, ...] = ()) -> np.ndarray:
        """Entries ``[start, start + prod(tail))`` of every row block, shape ``(*sizes, *tail)``."""
        tail_strides = tuple(math.prod(tail[i + 1 :]) for i in range(len(tail)))
        return _view(
            array,
            self.origin + start,
            self.sizes + tail,
            self.cl.entry_strides + tail_strides,
        )

    def row_view(self, array: np.ndarray, start: int, tail: tuple[int, ...]) -> np.ndarray:
        """Rows ``[start, ...)`` of every row block, shape ``(*sizes, *tail)``."""
        tail_strides = tuple(math.prod(tail[i + 1 :]) for i in range(len(tail)))
        return _view(
            array, self.row_origin + start, self.sizes + tail, self.cl.row_strides + tail_strides
        )

    def fill_interior(self, indices: np.ndarray, data: np.ndarray, m0: int, m1: int) -> None:
        """Columns and values of the interior rows ``[m0, m1)``."""
        lay = self.lay
        band, idx = lay.band, lay.idx
        start, full, middle, stop = lay.span(m0, m1)
        col0 = self.cols + (m0 // band.period) * band.step
        values = np.take(self.weights, lay.unit_taps, axis=-1)
        if full:
            shift = col0[..., None] + np.arange(full) * (lay.periods * band.step)
            out = self.view(indices, start, (full, lay.unit_entries))
            np.add(lay.unit_cols, shift[..., None].astype(idx), out=out)
            self.view(data, start, (full, lay.unit_entries))[...] = values[..., None, :]
        if stop > middle:
            rest = stop - middle
            shift = col0 + full * lay.periods * band.step
            np.add(
                lay.unit_cols[:rest],
                shift[..., None].astype(idx),
                out=self.view(indices, middle, (rest,)),
            )
            self.view(data, middle, (rest,))[...] = values[..., :rest]

    def fill_edges(self, indices: np.ndarray, data: np.ndarray) -> None:
        """Columns and values of the edge rows, folded taps summed."""
        lay = self.lay
        base = self.cols[..., None].astype(lay.idx)
        for lo, hi, e0 in ((0, lay.left, 0), (lay.left + lay.interior, lay.block, lay.left)):
            if hi > lo:
                np.add(
                    lay.edge_cols[e0 : e0 + hi - lo], base, out=self.view(indices, lo, (hi - lo,))
                )
                self.view(data, lo, (hi - lo,))[...] = self.weights[
                    ..., lay.edge_taps[e0 : e0 + hi - lo]
                ]
        if lay.extra_rounds:
            whole = self.view(data, 0, (lay.block,))
            for pos, taps in lay.extra_rounds:
                whole[..., pos] += self.weights[..., taps]

    def fill_edge_ptr(self, indptr: np.ndarray) -> None:
        """The row pointers of the edge rows (of every row, if the blocks are empty)."""
        lay = self.lay
        if lay.block == 0:
            self.row_view(indptr, 0, (lay.R,))[...] = self.entries[..., None].astype(lay.idx)
            return
        edge_rows = lay.band.edge_rows()
        if edge_rows.size:
            rows = self.row_view(indptr, 0, (lay.R,))
            rows[..., edge_rows] = (self.entries[..., None] + lay.edge_ptr).astype(lay.idx)

    def fill_interior_ptr(self, indptr: np.ndarray, m0: int, m1: int) -> None:
        lay, idx = self.lay, self.lay.idx
        start, full, middle, _ = lay.span(m0, m1)
        r0 = lay.band.lo + m0
        r_mid, r1 = r0 + full * lay.unit_rows, lay.band.lo + m1
        ptr0 = self.entries + start
        if full:
            shift = ptr0[..., None] + np.arange(full) * lay.unit_entries
            out = self.row_view(indptr, r0, (full, lay.unit_rows))
            np.add(lay.unit_ptr, shift[..., None].astype(idx), out=out)
        if r1 > r_mid:
            shift = (ptr0 + (middle - start))[..., None].astype(idx)
            np.add(
                lay.unit_ptr[: r1 - r_mid], shift, out=self.row_view(indptr, r_mid, (r1 - r_mid,))
            )

    def fill_edge_rows(self, row: np.ndarray) -> None:
        lay = self.lay
        shift = self.rows_at[..., None].astype(lay.idx)
        for lo, hi, e0 in ((0, lay.left, 0), (lay.left + lay.interior, lay.block, lay.left)):
            if hi > lo:
                np.add(lay.edge_row[e0 : e0 + hi - lo], shift, out=self.view(row, lo, (hi - lo,)))

    def fill_interior_rows(self, row: np.ndarray, m0: int, m1: int) -> None:
        lay, idx = self.lay, self.lay.idx
        start, full, middle, stop = lay.span(m0, m1)
        row0 = self.rows_at + lay.band.lo + m0
        if full:
            shift = row0[..., None] + np.arange(full) * lay.unit_rows
            out = self.view(row, start, (full, lay.unit_entries))
            np.add(lay.unit_row, shift[..., None].astype(idx), out=out)
        if stop > middle:
            shift = (row0 + full * lay.unit_rows)[..., None].astype(idx)
            np.add(
                lay.unit_row[: stop - middle], shift, out=self.view(row, middle, (stop - middle,))
            )


def _tasks(
    grid: Grid,
    index_dtype: np.dtype,
    fill_edges: Callable[[_Box], None],
    fill_interior: Callable[[_Box, int, int], None],
    entry_offset: int = 0,
    row_offset: int = 0,
) -> list[Callable[[], None]]:
    """Split the work into disjoint pieces of about :func:`_chunk_entries` entries."""
    chunk = _chunk_entries(grid.nnz)
    tasks: list[Callable[[], None]] = []
    for cl in _classes(grid, index_dtype):
        lay = cl.lay
        if 0 in cl.shape:
            continue
        if lay.block >= chunk and lay.n_int:  # long row blocks: split their rows
            step = max(1, chunk // max(lay.unit_entries, 1)) * lay.unit_rows
            for index in np.ndindex(*cl.shape):
                b = _Box(cl, tuple((i, i + 1) for i in index), entry_offset, row_offset)
                tasks.append(partial(fill_edges, b))
                for m0 in range(0, lay.n_int, step):
                    m1 = min(m0 + step, lay.n_int)
                    tasks.append(partial(fill_interior, b, m0, m1))
        else:  # short row blocks: several per piece
            per = max(1, chunk // max(lay.block, 1))
            for box in _boxes(cl.shape, per):
                b = _Box(cl, box, entry_offset, row_offset)
                tasks.append(partial(fill_edges, b))
                if lay.n_int and lay.block:
                    tasks.append(partial(fill_interior, b, 0, b.lay.n_int))
    return tasks


def _outputs(
    grids: Grid | list[Grid], index_dtype: DTypeLike, shape: tuple | None, dtype: np.dtype | None
) -> tuple[list[Grid], int, int, np.dtype, np.dtype]:
    """The grids as a list, their nonzeros and rows, the index and data dtypes."""
    grids = [grids] if isinstance(grids, Grid) else grids
    nnz = sum(g.nnz for g in grids)
    n_rows = sum(g.shape[0] for g in grids)
    idx = np.dtype(index_dtype)
    assert np.iinfo(idx).max >= max(nnz, *(shape or (n_rows, 0)))
    return grids, nnz, n_rows, idx, dtype if dtype is not None else grids[0].weights.dtype


def _fill(grids: list[Grid], idx: np.dtype, nnz: int, steps: Callable) -> None:
    """Fill the output arrays grid by grid, all grids' pieces in one parallel run.

    ``steps(grid, e_off, r_off)`` gives one grid's ``(edges, interior)`` fills and the
    offsets :func:`_tasks` applies (its first entry and first row in the outputs).
    """
    tasks: list[Callable[[], None]] = []
    e_off = r_off = 0
    for grid in grids:
        edges, interior, offsets = steps(grid, e_off, r_off)
        tasks += _tasks(grid, idx, edges, interior, **offsets)
        e_off += grid.nnz
        r_off += grid.shape[0]
    _threads.run(tasks, parallel=nnz >= tunables.PARALLEL_MIN_ENTRIES)


def compressed_arrays(
    grids: Grid | list[Grid],
    index_dtype: DTypeLike,
    shape: tuple[int, int] | None = None,
    dtype: np.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` in canonical CSR of `grids` stacked row-wise."""
    grids, nnz, n_rows, idx, data_dtype = _outputs(grids, index_dtype, shape, dtype)
    indptr = np.empty(n_rows + 1, dtype=idx)
    indices = np.empty(nnz, dtype=idx)
    data = np.empty(nnz, dtype=data_dtype)

    def steps(grid: Grid, e_off: int, r_off: int) -> tuple:
        ind, dat = indices[e_off : e_off + grid.nnz], data[e_off : e_off + grid.nnz]
        ptr = indptr[r_off : r_off + grid.shape[0]]

        def edges(b: _Box) -> None:
            if b.lay.block:
                b.fill_edges(ind, dat)
            b.fill_edge_ptr(ptr)

        def interior(b: _Box, m0: int, m1: int) -> None:
            b.fill_interior(ind, dat, m0, m1)
            b.fill_interior_ptr(ptr, m0, m1)

        return edges, interior, {"entry_offset": e_off}

    _fill(grids, idx, nnz, steps)
    indptr[-1] = nnz
    return indptr, indices, data


def coordinate_arrays(
    grids: Grid | list[Grid],
    index_dtype: DTypeLike,
    shape: tuple[int, int] | None = None,
    dtype: np.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, col, data)`` in canonical (row-major sorted) COO of `grids` stacked row-wise."""
    grids, nnz, _, idx, data_dtype = _outputs(grids, index_dtype, shape, dtype)
    row = np.empty(nnz, dtype=idx)
    col = np.empty(nnz, dtype=idx)
    data = np.empty(nnz, dtype=data_dtype)

    def steps(grid: Grid, e_off: int, r_off: int) -> tuple:
        rw, cl, dat = (a[e_off : e_off + grid.nnz] for a in (row, col, data))

        def edges(b: _Box) -> None:
            if b.lay.block:
                b.fill_edges(cl, dat)
                b.fill_edge_rows(rw)

        def interior(b: _Box, m0: int, m1: int) -> None:
            b.fill_interior(cl, dat, m0, m1)
            b.fill_interior_rows(rw, m0, m1)

        return edges, interior, {"row_offset": r_off}

    _fill(grids, idx, nnz, steps)
    return row, col, data


def _diagonal_offsets(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block offsets ``(A, nb)``, unit entries' diagonals and edge entries' diagonals (1-D)."""
    band = grid.inner
    A, nb, _ = grid.weights.shape
    R, C = band.shape
    column_block = grid.base[:, None] + np.arange(nb)
    block_offset = column_block * C - np.arange(A)[:, None] * R
    unit_rows = band.lo + np.repeat(np.arange(band.period), band.unit_counts)
    edge_rows = np.repeat(band.edge_rows(), band.edge_counts)
    return block_offset, band.unit_cols - unit_rows, band.edge_cols - edge_rows


def dia_offsets(grid: Grid) -> np.ndarray | None:
    """The sorted diagonals holding entries of a 1-D `grid` (no outer axes).

    None if the interior is not diagonal-constant: the interior keeps its
    diagonals when a period shifts the columns by as many as its rows (stride 1);
    otherwise every row has new diagonals.
    """
    assert not grid.outer, "DIA directly only in 1-D"
    band = grid.inner
    if band.step != band.period:
        return None
    block_offset, unit_diag, edge_diag = _diagonal_offsets(grid)
    diags = [edge_diag] + ([unit_diag] if band.hi > band.lo else [])
    return np.unique(block_offset.ravel()[:, None] + np.unique(np.concatenate(diags)))


def dia_arrays(grid: Grid, offsets: np.ndarray) -> np.ndarray:
    """The DIA data ``(len(offsets), n_cols)`` of a 1-D `grid` (offsets from :func:`dia_offsets`).

    ``data[i, j] = M[j - offsets[i], j]``. Each block's interior diagonal is one
    strided run of equal values: all runs are written through one sliding-window
    view of the data (a run starting at flat position ``q`` is its row ``q``).
    """
    band, weights = grid.inner, grid.weights
    A, nb, K = weights.shape
    n_cols = grid.shape[1]
    data = np.zeros((offsets.size, n_cols), dtype=weights.dtype)
    flat = data.reshape(-1)
    block_offset, unit_diag, edge_diag = _diagonal_offsets(grid)
    column_start = (grid.base[:, None] + np.arange(nb)) * band.shape[1]  # (A, nb)
    wflat = weights.reshape(A, -1)
    tap_index = np.arange(nb)[:, None] * K  # (nb, 1)

    tasks: list[Callable[[], None]] = []
    n_int = band.hi - band.lo
    if n_int:
        unit_row = np.repeat(np.arange(band.period), band.unit_counts)
        run = -(-(n_int - unit_row) // band.period)  # rows of each unit entry's diagonal
        diag = np.searchsorted(offsets, block_offset[:, :, None] + unit_diag)  # (A, nb, T)
        starts = diag * n_cols + column_start[:, :, None] + band.unit_cols
        values = wflat[:, tap_index + band.unit_taps]  # (A, nb, T)
        for e in range(band.unit_cols.size):  # runs of one unit entry share a length
            length = int(run[e])
            if length <= 0:
                continue
            window = np.lib.stride_tricks.as_strided(
                flat,
                shape=(flat.size - (length - 1) * band.step, length),
                strides=(flat.itemsize, band.step * flat.itemsize),
            )
            s_e, v_e = starts[:, :, e].ravel(), values[:, :, e].ravel()
            per = max(1, _chunk_entries(grid.nnz) // length)
            for b in range(0, s_e.size, per):

                def fill(
                    window: np.ndarray = window,
                    s: np.ndarray = s_e[b : b + per],
                    v: np.ndarray = v_e[b : b + per],
                ) -> None:
                    window[s] = v[:, None]

                tasks.append(fill)
    _threads.run(tasks, parallel=grid.nnz >= tunables.PARALLEL_MIN_ENTRIES)

    if band.edge_cols.size:
        diag = np.searchsorted(offsets, block_offset[:, :, None] + edge_diag)
        where = diag * n_cols + column_start[:, :, None] + band.edge_cols
        flat[where] = wflat[:, tap_index + band.edge_taps]
        if band.extra_entries.size:
            np.add.at(flat, where[:, :, band.extra_entries], wflat[:, tap_index + band.extra_taps])
    return data

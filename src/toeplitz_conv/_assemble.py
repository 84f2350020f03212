"""Expanding a :class:`~._pattern.Band` over channels into CSR, COO and DIA arrays.

A conv matrix (or its transpose) is a grid of blocks that all share one band:
row block ``a`` has ``nb`` nonzero column blocks ``base[a] + t`` (``t < nb``),
and block ``(a, t)`` holds the band with the weights ``weights[a, t, :]``
indexed by tap. Row ``r`` of row block ``a`` lists, for each ``t`` in turn,
the band's row ``r`` shifted to column block ``base[a] + t``; so every row is
sorted and the result is canonical by construction.

The interior rows repeat with the band's period, so the output is written as
a few broadcast operations per chunk: a *super-unit* (several periods, some
thousand entries, computed once) plus one offset per repetition. Chunks are
disjoint slices of preallocated arrays, filled from a thread pool (numpy
releases the GIL). No temporary grows with the matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial

import numpy as np

from . import _threads
from ._pattern import Band

__all__ = ["Blocks", "compressed_arrays", "coordinate_arrays", "dia_arrays", "dia_offsets"]

# Entries per repeated super-unit; at most and at least per task (aiming at
# about eight tasks); and the size from which a build uses the thread pool.
# Tests shrink them to force the chunked and threaded paths on small inputs.
_UNIT_ENTRIES = 8192
_CHUNK_ENTRIES = 1 << 22
_MIN_CHUNK_ENTRIES = 1 << 18
_PARALLEL_MIN_ENTRIES = 1 << 20


def _chunk_entries(nnz: int) -> int:
    """Entries per task for a result of `nnz` entries."""
    return min(_CHUNK_ENTRIES, max(_MIN_CHUNK_ENTRIES, nnz // 8))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, eq=False)
class Blocks:
    """A block grid over one band: what to expand into a matrix.

    Attributes
    ----------
    band : Band
        The pattern every block shares, shape ``(R, C)``.
    weights : ndarray, shape (A, nb, K)
        ``weights[a, t, k]`` is tap ``k``'s value in block ``(a, base[a] + t)``,
        already in the output dtype.
    base : ndarray of int64, shape (A,)
        First column block of each row block.
    n_col_blocks : int
        Column blocks in the whole matrix.
    """

    band: Band
    weights: np.ndarray
    base: np.ndarray
    n_col_blocks: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(A * R, n_col_blocks * C)``."""
        rows, cols = self.band.shape
        return self.weights.shape[0] * rows, self.n_col_blocks * cols

    @property
    def block_nnz(self) -> int:
        """Entries per row block."""
        return self.weights.shape[1] * self.band.nnz

    @property
    def nnz(self) -> int:
        """Entries of the whole matrix."""
        return self.weights.shape[0] * self.block_nnz


def _expand(
    counts: np.ndarray, cols: np.ndarray, taps: np.ndarray, nb: int, n_cols: int, n_taps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay out rows of entries for `nb` column blocks, in (row, block, entry) order.

    Returns the columns ``t*n_cols + col``, the flat taps ``t*n_taps + tap``
    (indices into ``weights[a].ravel()``) and ``dest[t, e]``, where entry ``e``
    of block ``t`` went.
    """
    row_start = np.cumsum(counts) - counts
    row_of = np.repeat(np.arange(counts.size), counts)
    start, count = row_start[row_of], counts[row_of]
    t = np.arange(nb, dtype=np.int64)[:, None]
    dest = nb * start + t * count + (np.arange(cols.size) - start)
    out_cols = np.empty(nb * cols.size, dtype=np.int64)
    out_taps = np.empty(nb * cols.size, dtype=np.intp)
    out_cols[dest] = t * n_cols + cols
    out_taps[dest] = t * n_taps + taps
    return out_cols, out_taps, dest


def _rows(array: np.ndarray, a0: int, a1: int, width: int, start: int, stop: int) -> np.ndarray:
    """``array[a*width + start : a*width + stop]`` for ``a0 <= a < a1``, as one 2-D view."""
    return array[a0 * width : a1 * width].reshape(a1 - a0, width)[:, start:stop]


def _split(view: np.ndarray, reps: int, size: int) -> np.ndarray:
    """View ``(n, reps*size)`` as ``(n, reps, size)``: always a view, never a copy."""
    outer, inner = view.strides
    return np.lib.stride_tricks.as_strided(
        view, shape=(view.shape[0], reps, size), strides=(outer, size * inner, inner)
    )


class _Layout:
    """Where everything goes, for one band, block count and index dtype (no weights).

    Sizes do not grow with the signal: the edge entries, one super-unit, and
    scalars. Cached, so repeated builds of one geometry skip this work.
    """

    def __init__(self, band: Band, nb: int, n_taps: int, index_dtype: np.dtype) -> None:
        self.band, self.nb, self.K, self.idx = band, nb, n_taps, index_dtype
        self.R, self.C = band.shape
        self.block = nb * band.nnz
        self.n_int = band.hi - band.lo
        self.left = nb * band.left_nnz
        self.interior = nb * band.interior_nnz(self.n_int)

        # edge entries in block order, with the positions and taps of duplicates
        cols, taps, dest = _expand(
            band.edge_counts, band.edge_cols, band.edge_taps, nb, self.C, n_taps
        )
        extra_pos = dest[:, band.extra_entries].ravel()
        extra_pos[extra_pos >= self.left] += self.interior
        self.edge_cols, self.edge_taps = cols.astype(index_dtype), taps
        self.extra_pos = extra_pos
        self.extra_taps = (np.arange(nb)[:, None] * n_taps + band.extra_taps).ravel()

        # the super-unit: `periods` periods of interior rows, repeated by broadcasting
        cols, taps, _ = _expand(
            band.unit_counts, band.unit_cols, band.unit_taps, nb, self.C, n_taps
        )
        per_unit = _ceil_div(_UNIT_ENTRIES, max(cols.size, 1))
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

    def tasks(self, n_blocks: int, fill_interior: Callable, fill_edges: Callable) -> list:
        """Split the work into disjoint pieces of about :func:`_chunk_entries` entries."""
        block = max(self.block, 1)
        chunk = _chunk_entries(n_blocks * self.block)
        tasks: list[Callable[[], None]] = []
        if block >= chunk and self.n_int:  # long row blocks: split their rows
            step = max(1, chunk // self.unit_entries) * self.unit_rows
            for a in range(n_blocks):
                tasks.append(partial(fill_edges, a, a + 1))
                for m0 in range(0, self.n_int, step):
                    tasks.append(partial(fill_interior, a, a + 1, m0, min(m0 + step, self.n_int)))
        else:  # short row blocks: several per piece
            per = max(1, chunk // block)
            for a0 in range(0, n_blocks, per):
                a1 = min(a0 + per, n_blocks)
                tasks.append(partial(fill_edges, a0, a1))
                if self.n_int:
                    tasks.append(partial(fill_interior, a0, a1, 0, self.n_int))
        return tasks


@lru_cache(maxsize=32)
def _cached_layout(
    band: Band, nb: int, n_taps: int, index_dtype: str, unit_entries: int
) -> _Layout:
    return _Layout(band, nb, n_taps, np.dtype(index_dtype))


def _layout(blocks: Blocks, index_dtype: np.dtype) -> _Layout:
    _, nb, n_taps = blocks.weights.shape
    return _cached_layout(blocks.band, nb, n_taps, np.dtype(index_dtype).str, _UNIT_ENTRIES)


def _columns_and_values(
    lay: _Layout,
    blocks: Blocks,
    indices: np.ndarray,
    data: np.ndarray,
    a0: int,
    a1: int,
    m0: int,
    m1: int,
) -> None:
    """Fill the interior entries of rows ``[m0, m1)`` of row blocks ``[a0, a1)``."""
    band, block, idx = lay.band, lay.block, lay.idx
    start, full, middle, stop = lay.span(m0, m1)
    col0 = blocks.base[a0:a1] * lay.C + (m0 // band.period) * band.step
    # C order, so that the broadcast copies below read contiguous memory
    values = np.take(blocks.weights[a0:a1].reshape(a1 - a0, -1), lay.unit_taps, axis=1)
    if full:
        shift = col0[:, None] + np.arange(full) * (lay.periods * band.step)
        out = _split(_rows(indices, a0, a1, block, start, middle), full, lay.unit_entries)
        np.add(lay.unit_cols, shift[:, :, None].astype(idx), out=out)
        _split(_rows(data, a0, a1, block, start, middle), full, lay.unit_entries)[...] = values[
            :, None
        ]
    if stop > middle:
        rest = stop - middle
        shift = col0 + full * lay.periods * band.step
        out = _rows(indices, a0, a1, block, middle, stop)
        np.add(lay.unit_cols[:rest], shift[:, None].astype(idx), out=out)
        _rows(data, a0, a1, block, middle, stop)[...] = values[:, :rest]


def _edge_columns_and_values(
    lay: _Layout, blocks: Blocks, indices: np.ndarray, data: np.ndarray, a0: int, a1: int
) -> None:
    """Fill the edge entries of row blocks ``[a0, a1)``, duplicates summed."""
    block, left = lay.block, lay.left
    base = (blocks.base[a0:a1, None] * lay.C).astype(lay.idx)
    weights = blocks.weights[a0:a1].reshape(a1 - a0, -1)
    for lo, hi, e0 in ((0, left, 0), (left + lay.interior, block, left)):
        if hi > lo:
            np.add(
                lay.edge_cols[e0 : e0 + hi - lo], base, out=_rows(indices, a0, a1, block, lo, hi)
            )
            _rows(data, a0, a1, block, lo, hi)[...] = weights[:, lay.edge_taps[e0 : e0 + hi - lo]]
    if lay.extra_pos.size:
        where = (slice(None), lay.extra_pos)
        np.add.at(_rows(data, a0, a1, block, 0, block), where, weights[:, lay.extra_taps])


def _index_dtype_ok(nnz: int, shape: tuple[int, int], index_dtype: np.dtype) -> None:
    assert np.iinfo(index_dtype).max >= max(nnz, *shape)


def compressed_arrays(
    blocks: Blocks, index_dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` of `blocks` in canonical CSR."""
    lay = _layout(blocks, index_dtype)
    _index_dtype_ok(blocks.nnz, blocks.shape, lay.idx)
    A, R, block, idx = blocks.weights.shape[0], lay.R, lay.block, lay.idx
    indptr = np.empty(A * R + 1, dtype=idx)
    indices = np.empty(blocks.nnz, dtype=idx)
    data = np.empty(blocks.nnz, dtype=blocks.weights.dtype)
    edge_rows = lay.band.edge_rows()

    def fill_edges(a0: int, a1: int) -> None:
        _edge_columns_and_values(lay, blocks, indices, data, a0, a1)
        if edge_rows.size:
            block_start = np.arange(a0, a1, dtype=np.int64)[:, None] * block
            rows = indptr[a0 * R : a1 * R].reshape(a1 - a0, R)
            rows[:, edge_rows] = (block_start + lay.edge_ptr).astype(idx)

    def fill_interior(a0: int, a1: int, m0: int, m1: int) -> None:
        _columns_and_values(lay, blocks, indices, data, a0, a1, m0, m1)
        start, full, middle, _ = lay.span(m0, m1)
        r0 = lay.band.lo + m0
        r_mid, r1 = r0 + full * lay.unit_rows, lay.band.lo + m1
        ptr0 = np.arange(a0, a1, dtype=np.int64) * block + start
        if full:
            shift = ptr0[:, None] + np.arange(full) * lay.unit_entries
            out = _split(_rows(indptr, a0, a1, R, r0, r_mid), full, lay.unit_rows)
            np.add(lay.unit_ptr, shift[:, :, None].astype(idx), out=out)
        if r1 > r_mid:
            shift = (ptr0 + (middle - start))[:, None].astype(idx)
            np.add(lay.unit_ptr[: r1 - r_mid], shift, out=_rows(indptr, a0, a1, R, r_mid, r1))

    tasks = lay.tasks(A, fill_interior, fill_edges)
    _threads.run(tasks, parallel=blocks.nnz >= _PARALLEL_MIN_ENTRIES)
    indptr[-1] = blocks.nnz
    return indptr, indices, data


def coordinate_arrays(
    blocks: Blocks, index_dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, col, data)`` of `blocks` in canonical (row-major sorted) COO."""
    lay = _layout(blocks, index_dtype)
    _index_dtype_ok(blocks.nnz, blocks.shape, lay.idx)
    A, R, block, idx = blocks.weights.shape[0], lay.R, lay.block, lay.idx
    row = np.empty(blocks.nnz, dtype=idx)
    col = np.empty(blocks.nnz, dtype=idx)
    data = np.empty(blocks.nnz, dtype=blocks.weights.dtype)

    def fill_edges(a0: int, a1: int) -> None:
        _edge_columns_and_values(lay, blocks, col, data, a0, a1)
        shift = (np.arange(a0, a1, dtype=np.int64)[:, None] * R).astype(idx)
        for lo, hi, e0 in ((0, lay.left, 0), (lay.left + lay.interior, block, lay.left)):
            if hi > lo:
                out = _rows(row, a0, a1, block, lo, hi)
                np.add(lay.edge_row[e0 : e0 + hi - lo], shift, out=out)

    def fill_interior(a0: int, a1: int, m0: int, m1: int) -> None:
        _columns_and_values(lay, blocks, col, data, a0, a1, m0, m1)
        start, full, middle, stop = lay.span(m0, m1)
        row0 = np.arange(a0, a1, dtype=np.int64) * R + lay.band.lo + m0
        if full:
            shift = row0[:, None] + np.arange(full) * lay.unit_rows
            out = _split(_rows(row, a0, a1, block, start, middle), full, lay.unit_entries)
            np.add(lay.unit_row, shift[:, :, None].astype(idx), out=out)
        if stop > middle:
            shift = (row0 + full * lay.unit_rows)[:, None].astype(idx)
            out = _rows(row, a0, a1, block, middle, stop)
            np.add(lay.unit_row[: stop - middle], shift, out=out)

    tasks = lay.tasks(A, fill_interior, fill_edges)
    _threads.run(tasks, parallel=blocks.nnz >= _PARALLEL_MIN_ENTRIES)
    return row, col, data


def _diagonal_offsets(blocks: Blocks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block offsets ``(A, nb)``, unit entries' diagonals and edge entries' diagonals."""
    band = blocks.band
    A, nb, _ = blocks.weights.shape
    R, C = band.shape
    column_block = blocks.base[:, None] + np.arange(nb)
    block_offset = column_block * C - np.arange(A)[:, None] * R
    unit_rows = band.lo + np.repeat(np.arange(band.period), band.unit_counts)
    edge_rows = np.repeat(band.edge_rows(), band.edge_counts)
    return block_offset, band.unit_cols - unit_rows, band.edge_cols - edge_rows


def dia_offsets(blocks: Blocks) -> np.ndarray | None:
    """The sorted diagonals holding entries, or None if the interior is not diagonal-constant.

    The interior keeps its diagonals when a period shifts the columns by as
    many as its rows (stride 1); otherwise every row has new diagonals.
    """
    band = blocks.band
    if band.step != band.period:
        return None
    block_offset, unit_diag, edge_diag = _diagonal_offsets(blocks)
    diags = [edge_diag] + ([unit_diag] if band.hi > band.lo else [])
    return np.unique(block_offset.ravel()[:, None] + np.unique(np.concatenate(diags)))


def dia_arrays(blocks: Blocks, offsets: np.ndarray) -> np.ndarray:
    """The DIA data ``(len(offsets), n_cols)`` of `blocks` (offsets from :func:`dia_offsets`).

    ``data[i, j] = M[j - offsets[i], j]``. Each block's interior diagonal is one
    strided run of equal values: all runs are written through one sliding-window
    view of the data (a run starting at flat position ``q`` is its row ``q``).
    """
    band, weights = blocks.band, blocks.weights
    A, nb, K = weights.shape
    n_cols = blocks.shape[1]
    data = np.zeros((offsets.size, n_cols), dtype=weights.dtype)
    flat = data.reshape(-1)
    block_offset, unit_diag, edge_diag = _diagonal_offsets(blocks)
    column_start = (blocks.base[:, None] + np.arange(nb)) * band.shape[1]  # (A, nb)
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
            per = max(1, _chunk_entries(blocks.nnz) // length)
            for b in range(0, s_e.size, per):

                def fill(window=window, s=s_e[b : b + per], v=v_e[b : b + per]) -> None:
                    window[s] = v[:, None]

                tasks.append(fill)
    _threads.run(tasks, parallel=blocks.nnz >= _PARALLEL_MIN_ENTRIES)

    if band.edge_cols.size:
        diag = np.searchsorted(offsets, block_offset[:, :, None] + edge_diag)
        where = diag * n_cols + column_start[:, :, None] + band.edge_cols
        flat[where] = wflat[:, tap_index + band.edge_taps]
        if band.extra_entries.size:
            np.add.at(flat, where[:, :, band.extra_entries], wflat[:, tap_index + band.extra_taps])
    return data

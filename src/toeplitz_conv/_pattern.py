"""Where the nonzeros of a conv matrix sit: the geometry turned into a compact band.

The matrix ``B`` of a single-channel convolution has, in row ``i``, the entries
``src(i*s + k*d - p_l)`` for the taps ``k`` whose source exists; taps landing on
the same sample (reflect, replicate, circular near the edges) share one entry
and add. Its transpose ``B.T`` (the transposed convolution, and the columns of
``B``) has the same entries sorted the other way.

Both are *periodic bands*: apart from a few edge rows, row ``r + P`` holds the
entries of row ``r`` shifted by ``step`` columns (``P = 1``, ``step = s`` for
``B``; ``P = s``, ``step = 1`` for ``B.T``). A :class:`Band` stores one period
of the interior (the *unit*) and the edge rows explicitly, so its size does not
grow with the signal length; the assembler in :mod:`._assemble` expands it
straight into the output arrays. Only the edge rows go through ``src``, a sort
and a merge of duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from ._geometry import ConvGeometry

__all__ = ["Band", "RowClass", "band", "row_classes", "row_counts", "sliced", "transposed_band"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, eq=False)
class Band:
    """The sparsity pattern of one channel pair's block, in compressed-row order.

    Rows ``[lo, hi)`` are the interior: row ``lo + j*period + r`` (``r < period``)
    holds the entries of the unit's row ``r`` with columns shifted by ``j*step``.
    Rows ``[0, lo)`` and ``[hi, n_rows)`` are edge rows, listed explicitly.
    All arrays are int64 and read-only.

    Attributes
    ----------
    shape : (int, int)
        ``(n_rows, n_cols)`` of the block.
    lo, hi : int
        The interior rows.
    period, step : int
        Rows per period and the column shift from one period to the next.
    unit_counts : ndarray, shape (period,)
        Entries of each row of the unit (rows ``lo, ..., lo + period - 1``).
    unit_cols, unit_taps : ndarray, shape (unit_counts.sum(),)
        Column and tap of each unit entry, rows in turn, columns ascending.
    edge_counts : ndarray, shape (lo + n_rows - hi,)
        Entries of each edge row: rows ``[0, lo)``, then ``[hi, n_rows)``.
    edge_cols, edge_taps : ndarray, shape (edge_counts.sum(),)
        Column and first tap of each edge entry, in row order.
    extra_entries, extra_taps : ndarray, shape (n_extra,)
        Further taps landing on an edge entry that already has one (its value is
        the sum of all its taps' weights, added in ascending tap order).
    """

    shape: tuple[int, int]
    lo: int
    hi: int
    period: int
    step: int
    unit_counts: np.ndarray
    unit_cols: np.ndarray
    unit_taps: np.ndarray
    edge_counts: np.ndarray
    edge_cols: np.ndarray
    edge_taps: np.ndarray
    extra_entries: np.ndarray
    extra_taps: np.ndarray

    def __post_init__(self) -> None:
        for name in (
            "unit_counts",
            "unit_cols",
            "unit_taps",
            "edge_counts",
            "edge_cols",
            "edge_taps",
            "extra_entries",
            "extra_taps",
        ):
            getattr(self, name).setflags(write=False)

    @cached_property
    def unit_ptr(self) -> np.ndarray:
        """Start of each unit row's entries within the unit, shape ``(period + 1,)``."""
        return np.concatenate([[0], np.cumsum(self.unit_counts)])

    @property
    def unit_nnz(self) -> int:
        """Entries per period of interior rows."""
        return int(self.unit_ptr[-1])

    def interior_nnz(self, rows: int) -> int:
        """Entries in the first `rows` interior rows."""
        periods, rest = divmod(rows, self.period)
        return periods * self.unit_nnz + int(self.unit_ptr[rest])

    @cached_property
    def left_nnz(self) -> int:
        """Entries in the edge rows before the interior."""
        return int(self.edge_counts[: self.lo].sum())

    @cached_property
    def nnz(self) -> int:
        """Entries of the whole block."""
        return int(self.edge_counts.sum()) + self.interior_nnz(self.hi - self.lo)

    def edge_rows(self) -> np.ndarray:
        """The edge rows, ascending (read-only)."""
        return self._edge_rows

    @cached_property
    def _edge_rows(self) -> np.ndarray:
        rows = np.concatenate(
            [np.arange(self.lo, dtype=np.int64), np.arange(self.hi, self.shape[0], dtype=np.int64)]
        )
        rows.setflags(write=False)
        return rows


def _merge_rows(key: np.ndarray, n_cols: int) -> tuple[np.ndarray, ...]:
    """Sort each row of `key` (columns per tap, ``-1`` for none) and merge duplicates.

    Returns ``(counts, cols, taps, extra_entries, extra_taps)`` in CSR order,
    the first (smallest) tap of each entry in `taps`, later taps in the extras.
    """
    key = np.where(key < 0, n_cols, key)  # "nothing" sorts last and is dropped
    order = np.argsort(key, axis=1, kind="stable")
    key = np.take_along_axis(key, order, axis=1)
    present = key < n_cols
    first = present.copy()
    first[:, 1:] &= key[:, 1:] != key[:, :-1]
    counts = first.sum(axis=1)
    start = np.cumsum(counts) - counts
    entry = start[:, None] + np.cumsum(first, axis=1) - 1
    repeated = present & ~first
    return counts, key[first], order[first], entry[repeated], order[repeated]


@lru_cache(maxsize=64)
def band(geom: ConvGeometry) -> Band:
    """The :class:`Band` of `geom`'s ``(L_out, L)`` block (cached).

    Interior row ``i`` has tap ``k`` at column ``i*s + k*d - p_l``; the edge
    rows go through ``src`` with duplicates merged.
    """
    K, d, s = geom.kernel_size, geom.dilation, geom.stride
    lo, hi = geom.interior
    counts, cols, taps, extra_entries, extra_taps = _merge_rows(
        geom.positions(geom.boundary_rows()), geom.input_length
    )
    taps_k = np.arange(K, dtype=np.int64)
    return Band(
        shape=(geom.output_length, geom.input_length),
        lo=lo,
        hi=hi,
        period=1,
        step=s,
        unit_counts=np.array([K], dtype=np.int64),
        unit_cols=lo * s - geom.pad_left + taps_k * d,
        unit_taps=taps_k,
        edge_counts=counts.astype(np.int64),
        edge_cols=cols.astype(np.int64),
        edge_taps=taps.astype(np.int64),
        extra_entries=extra_entries.astype(np.int64),
        extra_taps=extra_taps.astype(np.int64),
    )


@lru_cache(maxsize=64)
def transposed_band(geom: ConvGeometry) -> Band:
    """The :class:`Band` of the transpose ``(L, L_out)`` of `geom`'s block (cached).

    Row ``l`` lists the rows ``i`` of the forward block that read sample ``l``.
    In the interior, tap ``k`` contributes ``i = (l + p_l - k*d) / s`` when that
    divides, so the rows repeat with period ``s`` and shift by one column. The
    interior is the range of samples read only by interior forward rows (and by
    no edge row through the padding); the remaining samples collect their entries
    from the forward edge rows and the first and last few interior rows.
    """
    fwd = band(geom)
    K, d, s, p_l = geom.kernel_size, geom.dilation, geom.stride, geom.pad_left
    L, L_out = geom.input_length, geom.output_length
    lo, hi = fwd.lo, fwd.hi
    span = (K - 1) * d

    # Samples read, tap by tap, only by interior forward rows.
    clo, chi = (lo * s - p_l + span, (hi - 1) * s - p_l + 1) if hi > lo else (0, 0)
    touched = fwd.edge_cols[(fwd.edge_cols >= clo) & (fwd.edge_cols < chi)]
    if touched.size:  # padding modes can read a sample from an edge row
        mid = (clo + chi) // 2
        below, above = touched[touched < mid], touched[touched >= mid]
        clo = int(below.max()) + 1 if below.size else clo
        chi = int(above.min()) if above.size else chi
    if chi <= clo:
        clo = chi = 0

    # The unit: samples clo .. clo + s - 1, taps descending so that rows ascend.
    taps_desc = np.arange(K - 1, -1, -1, dtype=np.int64)
    num = (clo + np.arange(s, dtype=np.int64))[:, None] + p_l - taps_desc * d
    hit = num % s == 0
    unit_cols = (num // s)[hit]
    unit_taps = np.broadcast_to(taps_desc, num.shape)[hit]

    # Edge samples: every forward entry whose column lies outside [clo, chi).
    # Forward edge entries never do (those were excluded above); interior forward
    # rows do only near both ends.
    i_left = min(max(_ceil_div(clo + p_l, s), lo), hi)
    i_right = min(max(_ceil_div(chi + p_l - span, s), i_left), hi)
    rows_i = np.r_[lo:i_left, i_right:hi]
    cols_i = (rows_i * s - p_l)[:, None] + np.arange(K, dtype=np.int64) * d
    keep = (cols_i < clo) | (cols_i >= chi)
    rows_e = np.repeat(fwd.edge_rows(), fwd.edge_counts)
    rows_all = np.concatenate([rows_e, np.broadcast_to(rows_i[:, None], cols_i.shape)[keep]])
    cols_all = np.concatenate([fwd.edge_cols, cols_i[keep]])
    taps_all = np.concatenate([fwd.edge_taps, np.nonzero(keep)[1]])
    order = np.lexsort((rows_all, cols_all))
    new_position = np.empty_like(order)
    new_position[order] = np.arange(order.size)
    sorted_samples = cols_all[order]
    edge_samples: np.ndarray = np.r_[0:clo, chi:L]
    counts = np.searchsorted(sorted_samples, edge_samples, side="right") - np.searchsorted(
        sorted_samples, edge_samples, side="left"
    )
    return Band(
        shape=(L, L_out),
        lo=clo,
        hi=chi,
        period=s,
        step=1,
        unit_counts=hit.sum(axis=1).astype(np.int64),
        unit_cols=unit_cols.astype(np.int64),
        unit_taps=unit_taps.astype(np.int64),
        edge_counts=counts.astype(np.int64),
        edge_cols=rows_all[order].astype(np.int64),
        edge_taps=taps_all[order].astype(np.int64),
        extra_entries=new_position[fwd.extra_entries].astype(np.int64),
        extra_taps=fwd.extra_taps.copy(),
    )


def sliced(b: Band, r0: int, r1: int) -> Band:
    """Rows ``[r0, r1)`` of `b` as a band of their own (``0 <= r0 <= r1 <= n_rows``).

    The edge rows inside the range stay edge rows; the interior rows inside it
    stay interior, the unit rotated so that it starts at the first of them.
    Costs the size of the band, not of the rows.
    """
    n_rows, n_cols = b.shape
    if (r0, r1) == (0, n_rows):
        return b
    u0, u1 = max(b.lo, r0), min(b.hi, r1)
    if u1 <= u0:  # no interior row in range: every row is an edge row
        u0 = u1 = min(max(b.lo, r0), r1)
    # edge rows kept: positions in the edge list, and where their entries sit
    left = np.arange(r0, min(b.lo, r1))
    right = np.arange(max(b.hi, r0), r1)
    keep_rows = np.concatenate([left, b.lo + right - b.hi]).astype(np.int64)
    ptr = np.concatenate([[0], np.cumsum(b.edge_counts)])
    counts = b.edge_counts[keep_rows]
    entry_of = np.repeat(ptr[keep_rows] - (np.cumsum(counts) - counts), counts)
    entry_of = entry_of + np.arange(entry_of.size, dtype=np.int64)
    new_entry = np.full(int(ptr[-1]), -1, dtype=np.int64)
    new_entry[entry_of] = np.arange(entry_of.size)
    extra = new_entry[b.extra_entries]
    kept = extra >= 0
    # the unit, rotated to start at row u0
    P = b.period
    q, ph = divmod(u0 - b.lo, P)
    uptr = b.unit_ptr
    head = slice(int(uptr[ph]), int(uptr[P]))
    tail = slice(0, int(uptr[ph]))
    shift = q * b.step
    return Band(
        shape=(r1 - r0, n_cols),
        lo=u0 - r0,
        hi=u1 - r0,
        period=P,
        step=b.step,
        unit_counts=np.roll(b.unit_counts, -ph),
        unit_cols=np.concatenate([b.unit_cols[head] + shift, b.unit_cols[tail] + shift + b.step]),
        unit_taps=np.concatenate([b.unit_taps[head], b.unit_taps[tail]]),
        edge_counts=counts,
        edge_cols=b.edge_cols[entry_of],
        edge_taps=b.edge_taps[entry_of],
        extra_entries=extra[kept],
        extra_taps=b.extra_taps[kept],
    )


@dataclass(frozen=True, eq=False)
class RowClass:
    """Rows of a band that share one column pattern up to a shift.

    Rows ``first + j*period`` (``j < count``) hold the entries ``cols + j*step``
    with first taps `taps`; further taps `extra_taps` add onto entries
    `extra_entries` (indices into `cols`), in order.
    """

    first: int
    period: int
    count: int
    step: int
    cols: np.ndarray
    taps: np.ndarray
    extra_entries: np.ndarray
    extra_taps: np.ndarray


@lru_cache(maxsize=64)
def row_classes(b: Band) -> tuple[RowClass, ...]:
    """`b`'s rows as classes: one per phase of the interior's unit, one per edge row.

    Every row of the band is in exactly one class. Used for the outer spatial
    axes, whose rows are expanded like channels.
    """
    out = []
    n_int = b.hi - b.lo
    empty = np.zeros(0, dtype=np.int64)
    uptr = b.unit_ptr
    for r in range(min(b.period, n_int)):
        units = slice(int(uptr[r]), int(uptr[r + 1]))
        count = _ceil_div(n_int - r, b.period)
        out.append(
            RowClass(
                b.lo + r,
                b.period,
                count,
                b.step,
                b.unit_cols[units],
                b.unit_taps[units],
                empty,
                empty,
            )
        )
    ptr = np.concatenate([[0], np.cumsum(b.edge_counts)])
    for e, row in enumerate(b.edge_rows()):
        p0, p1 = int(ptr[e]), int(ptr[e + 1])
        mine = (b.extra_entries >= p0) & (b.extra_entries < p1)
        out.append(
            RowClass(
                int(row),
                1,
                1,
                0,
                b.edge_cols[p0:p1],
                b.edge_taps[p0:p1],
                b.extra_entries[mine] - p0,
                b.extra_taps[mine],
            )
        )
    return tuple(out)


def row_counts(b: Band) -> np.ndarray:
    """The nonzeros of every row of `b`, shape ``(n_rows,)``.

    Of :func:`band`'s ``b``, the distinct samples each output row reads along
    one axis: ``K`` in the interior, fewer at the edges where taps read zero
    padding or fold onto one sample (reflect, replicate, circular). A row of an
    N-d block has the product of its axes' counts.

    Examples
    --------
    >>> from toeplitz_conv._geometry import conv_geometry
    >>> row_counts(band(conv_geometry(5, 3, padding=1))).tolist()
    [2, 3, 3, 3, 2]
    """
    counts = np.empty(b.shape[0], dtype=np.int64)
    counts[: b.lo] = b.edge_counts[: b.lo]
    counts[b.hi :] = b.edge_counts[b.lo :]
    n_int = b.hi - b.lo
    counts[b.lo : b.hi] = np.resize(b.unit_counts, n_int) if n_int else 0
    return counts

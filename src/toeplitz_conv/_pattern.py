"""Where the nonzeros of a conv matrix sit: the geometry turned into index arrays.

The matrix of a single-channel convolution has, in row ``i``, the entries
``src(i*s + k*d - p_l)`` for the taps ``k`` whose source exists; taps landing on
the same sample (reflect, replicate, circular near the edges) share one entry
and add. :func:`row_pattern` lists these entries once, in CSR order, for every
row. Interior rows (all ``K`` taps inside the signal, distinct and ascending)
are filled by one outer sum; only the few boundary rows go through ``src``,
a sort and a merge of duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._geometry import ConvGeometry

__all__ = ["RowPattern", "row_pattern"]


@dataclass(frozen=True)
class RowPattern:
    """The sparsity pattern of one channel pair's ``(L_out, L)`` block.

    Attributes
    ----------
    indptr : ndarray of int64, shape (L_out + 1,)
        Entries of row ``i`` are ``indptr[i]:indptr[i+1]``.
    cols : ndarray of int64, shape (nnz,)
        Source sample of each entry, ascending within a row.
    taps : ndarray of int64, shape (nnz,)
        The first tap that lands on each entry.
    extra_entries, extra_taps : ndarray of int64, shape (n_extra,)
        Further taps landing on an entry that already has one: the entry's
        value is the sum of all its taps' weights. Empty for zero padding.
    """

    indptr: np.ndarray
    cols: np.ndarray
    taps: np.ndarray
    extra_entries: np.ndarray
    extra_taps: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """Entries per row, shape ``(L_out,)``."""
        return np.diff(self.indptr)


@lru_cache(maxsize=32)
def row_pattern(geom: ConvGeometry) -> RowPattern:
    """Build the :class:`RowPattern` of `geom` (cached; arrays are read-only)."""
    K, L, L_out = geom.kernel_size, geom.input_length, geom.output_length
    lo, hi = geom.interior

    # Boundary rows: src() for every tap, then sort and merge within each row.
    rows_b = geom.boundary_rows()
    key = geom.positions(rows_b)
    key[key < 0] = L  # "nothing" sorts last and is dropped
    order = np.argsort(key, axis=1, kind="stable")
    key = np.take_along_axis(key, order, axis=1)
    present = key < L
    first = present.copy()
    first[:, 1:] &= key[:, 1:] != key[:, :-1]

    counts = np.full(L_out, K, dtype=np.int64)
    counts[rows_b] = first.sum(axis=1)
    indptr = np.zeros(L_out + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])

    nnz = int(indptr[-1])
    cols = np.empty(nnz, dtype=np.int64)
    taps = np.empty(nnz, dtype=np.int64)
    a, b = indptr[lo], indptr[hi]
    interior_rows = np.arange(lo, hi)[:, None] * geom.stride
    cols[a:b] = (interior_rows + (np.arange(K) * geom.dilation - geom.pad_left)).ravel()
    taps[a:b] = np.tile(np.arange(K), hi - lo)
    # boundary entries, flattened row-major: the rows before `lo`, then those from `hi`
    in_boundary = np.r_[0:a, b:nnz]
    cols[in_boundary] = key[first]
    taps[in_boundary] = order[first]

    # taps that land on an entry already taken by an earlier tap of the same row
    slot = np.cumsum(first, axis=1) - 1
    entry = indptr[rows_b][:, None] + slot
    repeated = present & ~first
    extra_entries = entry[repeated]
    extra_taps = order[repeated]

    pattern = RowPattern(indptr, cols, taps, extra_entries, extra_taps)
    for array in (indptr, cols, taps, extra_entries, extra_taps):
        array.setflags(write=False)
    return pattern

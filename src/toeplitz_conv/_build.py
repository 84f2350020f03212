"""A validated layer's matrix, written in the format asked for.

:func:`layer_matrix` is the one builder behind every public ``conv*_matrix``: a
:class:`~._layer.Layer` is turned into a :class:`~._assemble.Grid` (the
innermost axis a band, the outer axes expanded like channels, see
:mod:`toeplitz_conv._assemble`) and written as CSR, CSC, COO or DIA directly;
BSR and dense are converted from CSR. Memory is checked before anything is
allocated.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar, overload

import numpy as np
import scipy.sparse as sp

from ._arrays import check_memory, matrix_dtype
from ._assemble import (
    Grid,
    box_grids,
    compressed_arrays,
    coordinate_arrays,
    dia_arrays,
    dia_offsets,
)
from ._geometry import check_choice, check_int
from ._layer import Layer
from ._pattern import band, transposed_band
from ._typing import DTypeLike, NDArray, SparseArray

__all__ = ["FORMATS", "layer_matrix"]

FORMATS: tuple[str, ...] = ("csr", "csc", "coo", "bsr", "dia", "dense")
_INT32_MAX = np.iinfo(np.int32).max
# DIA stores every diagonal at full width; beyond this many stored values per
# nonzero (plus one row of slack) it is not a sensible format for the matrix.
_DIA_MAX_FILL = 3


_Sparse = TypeVar("_Sparse", sp.csr_array, sp.csc_array, sp.coo_array, sp.bsr_array)


def _grid(layer: Layer, dtype: np.dtype, *, by_columns: bool) -> Grid:
    """`layer`'s matrix ``M`` as a :class:`~._assemble.Grid` (or ``M.T`` with `by_columns`).

    ``M``: row channel ``o`` has the input channels of its group, ``g(o)*G + c``,
    with the forward band of each axis. ``M.T``: row channel ``c'`` has the output
    channels of its group, ``o``, valued ``W[o, c' - g*G, k]``, with each axis'
    transposed band.
    """
    w, groups, geoms = layer.weight, layer.groups, layer.geoms
    c_out, G = w.shape[:2]
    if not by_columns:
        bands = [band(g) for g in geoms]
        base = (np.arange(c_out, dtype=np.int64) // (c_out // groups)) * G
        return Grid(bands[-1], tuple(bands[:-1]), w.astype(dtype, copy=False), base, G * groups)
    per_group = c_out // groups
    kernel = w.shape[2:]
    w_t = w.reshape(groups, per_group, G, *kernel).swapaxes(1, 2)
    w_t = w_t.reshape(G * groups, per_group, *kernel).astype(dtype)
    bands = [transposed_band(g) for g in geoms]
    base = (np.arange(G * groups, dtype=np.int64) // G) * per_group
    return Grid(bands[-1], tuple(bands[:-1]), w_t, base, c_out)


def _check_size(shape: tuple[int, int], nnz_bound: int, dtype: np.dtype, fmt: str) -> None:
    """Refuse a matrix that cannot fit: the values and indices of `nnz_bound` entries, plus
    the pointer over the rows it is assembled by (over the columns for CSC)."""
    if fmt == "dense":
        check_memory(
            shape[0] * shape[1] * dtype.itemsize,
            f"the dense {shape} matrix",
            "use a sparse format (format='csr'), rows=(r0, r1) for a block of rows, "
            "or the matrix-free operator (conv_operator)",
        )
    else:
        lines = shape[1] if fmt == "csc" else shape[0]
        check_memory(
            nnz_bound * (dtype.itemsize + 24) + (lines + 1) * 8,
            f"the {shape} matrix's index pointer and {nnz_bound:,} nonzeros",
            "use rows=(r0, r1) to build a block of rows at a time, a shorter input, "
            "or the matrix-free operator (conv_operator)",
        )


def _check_dia_fill(n_offsets: int, shape: tuple[int, int], nnz: int) -> None:
    stored = n_offsets * shape[1]
    if stored > _DIA_MAX_FILL * nnz + shape[1]:
        raise ValueError(
            f"`format`='dia' would store {n_offsets:,} diagonals x {shape[1]:,} columns = "
            f"{stored:,} values for {nnz:,} nonzeros; DIA is compact only for "
            "stride-1 layers whose output is about as long as the input. "
            "Use 'csr', 'csc', 'coo' or 'bsr'"
        )


def _dia_from_coo(coo: sp.coo_array) -> sp.dia_array:
    """DIA from canonical COO: for strided layers, whose diagonals change row by row."""
    offsets, which = np.unique(coo.col.astype(np.int64) - coo.row, return_inverse=True)
    _check_dia_fill(offsets.size, coo.shape, coo.nnz)
    data = np.zeros((offsets.size, coo.shape[1]), dtype=coo.dtype)
    data[which, coo.col] = coo.data
    return sp.dia_array((data, offsets), shape=coo.shape)


def _canonical(matrix: _Sparse) -> _Sparse:
    if matrix.format in ("csr", "csc", "bsr"):
        matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


def _coo_array(
    row: np.ndarray, col: np.ndarray, data: np.ndarray, shape: tuple[int, int]
) -> sp.coo_array:
    """COO from arrays built canonical and in range, without scipy's O(nnz) range checks."""
    out = sp.coo_array(shape, dtype=data.dtype)
    out.coords, out.data = (row, col), data
    return _canonical(out)


def _index_dtype(nnz: int, shape: tuple[int, int]) -> type[np.int32 | np.int64]:
    return np.int32 if max(nnz, *shape) <= _INT32_MAX else np.int64


def _build(grid: Grid, fmt: str) -> SparseArray | NDArray[Any]:
    """The matrix whose rows `grid` describes; for ``'csc'``, whose columns it describes.

    CSR and COO are written directly from the rows, CSC directly as the CSR of
    the transpose, DIA directly in 1-D (through COO in N-d); BSR and dense are
    converted from CSR.
    """
    shape = grid.shape
    index_dtype = _index_dtype(grid.nnz, shape)
    if fmt == "csc":
        indptr, indices, data = compressed_arrays(grid, index_dtype, shape)
        return _canonical(sp.csc_array((data, indices, indptr), shape=shape[::-1], copy=False))
    if fmt == "coo":
        return _coo_array(*coordinate_arrays(grid, index_dtype, shape), shape)
    if fmt == "dia":
        offsets = None if grid.outer else dia_offsets(grid)
        if offsets is None:
            return _dia_from_coo(_coo_array(*coordinate_arrays(grid, index_dtype, shape), shape))
        _check_dia_fill(offsets.size, shape, grid.nnz)
        return sp.dia_array((dia_arrays(grid, offsets), offsets), shape=shape, copy=False)
    return _from_csr(compressed_arrays(grid, index_dtype, shape), shape, fmt)


def _from_csr(
    arrays: tuple[np.ndarray, ...], shape: tuple[int, int], fmt: str
) -> sp.csr_array | sp.bsr_array | NDArray[Any]:
    indptr, indices, data = arrays
    csr = _canonical(sp.csr_array((data, indices, indptr), shape=shape, copy=False))
    if fmt == "dense":
        return csr.toarray()
    if fmt == "bsr":
        bsr = csr.tobsr()  # scipy leaves block columns in order of appearance
        bsr.has_sorted_indices = False
        bsr.sort_indices()
        return _canonical(bsr)
    return csr


_ROW_FORMATS = ("csr", "coo", "dense")


def _check_rows(rows: object, n_rows: int, fmt: str) -> tuple[int, int]:
    """Validate ``rows=(r0, r1)`` against a matrix of `n_rows` rows."""
    if not isinstance(rows, (tuple, list)) or len(rows) != 2:
        raise TypeError(f"`rows` must be a pair (r0, r1) of ints, or None; got {rows!r}")
    r0 = check_int(rows[0], "rows[0]", minimum=0)
    r1 = check_int(rows[1], "rows[1]", minimum=0)
    if not r0 <= r1 <= n_rows:
        raise ValueError(
            f"`rows`=({r0}, {r1}) must satisfy 0 <= r0 <= r1 <= {n_rows:,} (the matrix's rows)"
        )
    if fmt not in _ROW_FORMATS:
        allowed = ", ".join(repr(f) for f in _ROW_FORMATS)
        raise ValueError(f"`format`={fmt!r} is not available with `rows`; use one of {allowed}")
    return r0, r1


@overload
def layer_matrix(
    layer: Layer,
    *,
    fmt: Literal["csr"] = ...,
    dtype: DTypeLike | None = ...,
    transpose: bool = ...,
    rows: tuple[int, int] | None = ...,
) -> sp.csr_array: ...
@overload
def layer_matrix(
    layer: Layer,
    *,
    fmt: Literal["coo"],
    dtype: DTypeLike | None = ...,
    transpose: bool = ...,
    rows: tuple[int, int] | None = ...,
) -> sp.coo_array: ...
@overload
def layer_matrix(
    layer: Layer,
    *,
    fmt: Literal["dense"],
    dtype: DTypeLike | None = ...,
    transpose: bool = ...,
    rows: tuple[int, int] | None = ...,
) -> NDArray[Any]: ...
@overload
def layer_matrix(
    layer: Layer,
    *,
    fmt: str,
    dtype: DTypeLike | None = ...,
    transpose: bool = ...,
    rows: tuple[int, int] | None = ...,
) -> SparseArray | NDArray[Any]: ...
def layer_matrix(
    layer: Layer,
    *,
    fmt: str = "csr",
    dtype: DTypeLike | None = None,
    transpose: bool = False,
    rows: tuple[int, int] | None = None,
) -> SparseArray | NDArray[Any]:
    """``M`` of a validated `layer` (or ``M.T`` with `transpose`) in format `fmt`.

    With ``rows=(r0, r1)`` (not with `transpose`): rows ``[r0, r1)`` of ``M`` only,
    built in time and memory proportional to them.
    """
    check_choice(fmt, "format", FORMATS)
    w = layer.weight
    out_dtype = matrix_dtype(w.dtype, dtype)
    per_row = math.prod(w.shape[1:])  # at most G * prod(K) entries in a row of M
    if rows is not None:
        r0, r1 = _check_rows(rows, layer.shape[0], fmt)
        shape = (r1 - r0, layer.shape[1])
        _check_size(shape, shape[0] * per_row, out_dtype, fmt)
        grids = box_grids(_grid(layer, out_dtype, by_columns=False), r0, r1)
        nnz = sum(g.nnz for g in grids)
        index_dtype = _index_dtype(nnz, shape)
        if fmt == "coo":
            return _coo_array(*coordinate_arrays(grids, index_dtype, shape, out_dtype), shape)
        return _from_csr(compressed_arrays(grids, index_dtype, shape, out_dtype), shape, fmt)
    rows_of_m = layer.shape[0]
    nnz_bound = rows_of_m * per_row
    _check_size(layer.shape[::-1] if transpose else layer.shape, nnz_bound, out_dtype, fmt)
    # CSC of M is the CSR of M.T; conv_transpose's matrix is M.T of its geometry.
    by_columns = (fmt == "csc") != transpose
    return _build(_grid(layer, out_dtype, by_columns=by_columns), fmt)

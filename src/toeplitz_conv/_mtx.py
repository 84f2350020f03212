"""The Matrix Market writer: coordinate entries formatted by numpy a chunk of rows at a time.

Each distinct value is formatted once, as the shortest text that reads back to the
same number at its own precision; the text of the whole matrix is never held.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import numpy as np
import scipy.sparse as sp

from . import _tunables as tunables
from ._typing import AnySparse

__all__ = ["mtx_field", "write_mtx", "write_mtx_entries"]


def mtx_field(dtype: np.dtype) -> str:
    """The Matrix Market field of `dtype`: ``real``, ``complex`` or ``integer``."""
    return {"c": "complex", "f": "real"}.get(dtype.kind, "integer")


def _chunks(
    m: AnySparse, size: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(rows, cols, values)`` of `m`'s stored entries, about `size` at a time
    (default `tunables.MTX_CHUNK`).

    CSR is read by rows and CSC by columns straight from their arrays; COO in
    slices; other formats through CSR. Nothing of the size of `m` is allocated.
    """
    size = tunables.MTX_CHUNK if size is None else size
    if m.format == "coo":
        row, col = m.coords
        for i in range(0, m.nnz, size):
            yield row[i : i + size], col[i : i + size], m.data[i : i + size]
        return
    if m.format not in ("csr", "csc"):
        m = sp.csr_array(m)
    indptr = m.indptr
    lines = len(indptr) - 1
    # line boundaries at about every size entries (a longer line is a chunk of its own)
    marks = np.arange(0, m.nnz, size, dtype=np.int64)
    cuts = np.unique(np.concatenate([np.searchsorted(indptr, marks, side="right") - 1, [lines]]))
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        lo, hi = int(indptr[a]), int(indptr[b])
        major = np.repeat(np.arange(a, b, dtype=np.int64), np.diff(indptr[a : b + 1]))
        minor = m.indices[lo:hi]
        if m.format == "csr":
            yield major, minor, m.data[lo:hi]
        else:
            yield minor, major, m.data[lo:hi]


def _digits(a: np.ndarray) -> np.ndarray:
    """The decimal digits of the non-negative ints `a`, shape ``(len(a), width)`` uint8,
    right-aligned, with 0 bytes (not ``'0'``) before the first digit."""
    a = np.asarray(a, dtype=np.int64)
    width = len(str(int(a.max()))) if a.size else 1
    out = np.zeros((a.size, width), dtype=np.uint8)
    rest = a
    for j in range(width - 1, -1, -1):
        quotient = rest // 10  # numpy divides by a constant fast; `%` it does not
        digit = (rest - quotient * 10).astype(np.uint8) + ord("0")
        out[:, j] = digit if j == width - 1 else np.where(a >= 10 ** (width - 1 - j), digit, 0)
        rest = quotient
    return out


def _texts(values: np.ndarray) -> np.ndarray:
    """Each value as its shortest round-trip text, shape ``(len(values), width)`` uint8,
    left-aligned and padded with 0 bytes. Each distinct value is formatted once."""
    unique, which = np.unique(values, return_inverse=True)
    if values.dtype.kind in "biu":
        text = [str(int(v)) for v in unique.tolist()]
    elif unique.dtype == np.float64:
        text = list(map(repr, unique.tolist()))
    else:  # numpy's shortest text at the value's own precision (float32: "0.1")
        text = [str(v) for v in unique]
    table = np.array(text, dtype="S")
    table = table.view(np.uint8).reshape(table.size, table.dtype.itemsize)
    return np.take(table, which.reshape(-1), axis=0)


def _index_digits(index: np.ndarray, table: np.ndarray | None, offset: int = 0) -> np.ndarray:
    """`_digits` of ``offset + index + 1`` (Matrix Market counts from 1), from `table`
    (the digits of ``offset + 1, offset + 2, ...``) if given."""
    if table is not None:
        return np.take(table, index, axis=0)
    return _digits(np.asarray(index, dtype=np.int64) + (offset + 1))


def _mtx_lines(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    tables: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    row_offset: int = 0,
) -> bytes:
    """Matrix Market coordinate lines ``row col value(s)`` (1-based) for a chunk.

    Every line is laid out in a fixed-width byte grid whose unused cells are 0, then
    the 0 bytes are dropped: numpy formats a chunk without a Python loop per entry.
    `tables` optionally holds the digits of every row and column number; rows are
    numbered from `row_offset` (a row block of a larger matrix).
    """
    n = rows.size
    space = np.full((n, 1), ord(" "), dtype=np.uint8)
    fields = [_index_digits(rows, tables[0], row_offset), space]
    fields += [_index_digits(cols, tables[1]), space]
    if values.dtype.kind == "c":
        fields += [_texts(values.real), space, _texts(values.imag)]
    else:
        fields.append(_texts(values.astype(np.int64) if values.dtype.kind == "b" else values))
    fields.append(np.full((n, 1), ord("\n"), dtype=np.uint8))
    grid = np.concatenate(fields, axis=1).reshape(-1)
    return np.compress(grid != 0, grid).tobytes()


def _digit_table(n: int, offset: int = 0) -> np.ndarray | None:
    """The digits of ``offset + 1, ..., offset + n`` (see `_digits`), or None when that
    table would be too large."""
    if n * len(str(offset + n)) > tunables.DIGIT_TABLE_BYTES:
        return None
    return _digits(np.arange(offset + 1, offset + n + 1, dtype=np.int64))


def write_mtx_entries(file: IO[bytes], m: AnySparse, row_offset: int = 0) -> None:
    """The entry lines of `m` (rows shifted by `row_offset`: a row block of a larger
    matrix), written chunk by chunk: memory stays near `tunables.MTX_CHUNK` entries' text."""
    tables = (_digit_table(m.shape[0], row_offset), _digit_table(m.shape[1]))
    for chunk in _chunks(m):
        file.write(_mtx_lines(*chunk, tables, row_offset))


def write_mtx(file: IO[bytes], m: AnySparse, comment: str) -> None:
    """`m` as a Matrix Market coordinate ``general`` file: the header, then its entries."""
    rows, cols = m.shape
    head = f"%%MatrixMarket matrix coordinate {mtx_field(m.dtype)} general\n%{comment}\n"
    file.write(f"{head}{rows} {cols} {m.nnz}\n".encode())
    write_mtx_entries(file, m)

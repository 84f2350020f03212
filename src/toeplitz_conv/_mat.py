"""The MATLAB (MAT v5) writer: a sparse variable streamed a block of columns at a time.

MATLAB stores a sparse matrix by columns in double precision; the column order of a
CSR matrix is produced block by block, so neither a whole CSC copy nor a whole
float64 copy is ever held. v5 sizes are 32-bit: a variable holds less than 4 GiB.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import scipy.io
import scipy.sparse as sp

from . import _tunables as tunables
from ._typing import AnySparse

if TYPE_CHECKING:
    _Compressed: TypeAlias = sp.csr_array | sp.csc_array
from ._files import HEADER

__all__ = ["write_mat"]

# MAT v5 data types and the sparse class
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_DOUBLE, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 9, 14, 15
_MX_SPARSE = 5


def _padded(nbytes: int) -> int:
    return -(-nbytes // 8) * 8


def _column_counts(m: sp.csr_array) -> np.ndarray:
    """Entries in each column of CSR `m`, counted a slice at a time (``np.bincount`` of
    the whole index array would first copy it to int64)."""
    counts = np.zeros(m.shape[1], dtype=np.int64)
    for lo in range(0, m.nnz, tunables.MAT_BLOCK):
        counts += np.bincount(m.indices[lo : lo + tunables.MAT_BLOCK], minlength=m.shape[1])
    return counts


def _csc_blocks(m: _Compressed, part: str) -> Iterator[np.ndarray]:
    """`m`'s row indices (`part` ``'rows'``) or values (``'values'``) in CSC order, a
    block of columns at a time.

    A CSC `m` is sliced. From a CSR `m`, each block of columns holding about
    ``nnz / 16`` entries (at least `tunables.MAT_BLOCK`) is cut out and converted to CSC by
    scipy (``m[:, c0:c1].tocsc()``, a scan and a counting sort in C++): memory stays
    near one block; nothing of the size of `m` is allocated.
    """
    if m.format == "csc":
        source = m.indices if part == "rows" else m.data
        for lo in range(0, m.nnz, tunables.MAT_BLOCK):
            yield source[lo : lo + tunables.MAT_BLOCK]
        return
    ends = np.cumsum(_column_counts(m))
    size = max(tunables.MAT_BLOCK, -(-m.nnz // 16))
    cuts = np.searchsorted(ends, np.arange(size, m.nnz, size), side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [m.shape[1]]]))
    for c0, c1 in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        block = m[:, c0:c1].tocsc()
        block.sort_indices()  # rows ascending in every column, as MATLAB needs
        yield block.indices if part == "rows" else block.data


def _mat_sparse(m: _Compressed, name: str) -> Iterator[bytes]:
    """The MAT v5 ``miMATRIX`` element of sparse `m` (double or complex double, as
    MATLAB's sparse matrices are), in pieces; its size is checked before any."""
    rows, cols = m.shape
    nnz, complex_ = m.nnz, m.dtype.kind == "c"
    key = name.encode("ascii")
    parts = [16, 16, 8 + _padded(len(key)), 8 + _padded(4 * nnz), 8 + _padded(4 * (cols + 1))]
    parts += [8 + 8 * nnz] * (2 if complex_ else 1)
    body = sum(parts)
    if max(rows, cols, nnz) > np.iinfo(np.int32).max or 8 + body > tunables.MAT_MAX_BYTES:
        raise ValueError(
            f"a {rows:,} x {cols:,} matrix with {nnz:,} nonzeros is too large for a MATLAB "
            f"(v5) .mat file, whose variables hold less than 4 GiB ({8 + body:,} bytes "
            "needed); write .npz or .mtx instead"
        )

    def tag(kind: int, nbytes: int) -> bytes:
        return np.array([kind, nbytes], dtype="<u4").tobytes()

    def pieces() -> Iterator[bytes]:
        flags = _MX_SPARSE | (0x800 if complex_ else 0)
        yield tag(_MI_MATRIX, body)
        yield tag(_MI_UINT32, 8) + np.array([flags, max(nnz, 1)], dtype="<u4").tobytes()
        yield tag(_MI_INT32, 8) + np.array([rows, cols], dtype="<i4").tobytes()
        yield tag(_MI_INT8, len(key)) + key.ljust(_padded(len(key)), b"\0")
        yield tag(_MI_INT32, 4 * nnz)
        for r in _csc_blocks(m, "rows"):
            yield r.astype("<i4").tobytes()
        yield bytes(_padded(4 * nnz) - 4 * nnz)
        if m.format == "csc":
            jc = m.indptr
        else:
            jc = np.concatenate([[0], np.cumsum(_column_counts(m))])
        yield tag(_MI_INT32, 4 * (cols + 1)) + jc.astype("<i4").tobytes()
        yield bytes(_padded(4 * (cols + 1)) - 4 * (cols + 1))
        for part in ("real", "imag") if complex_ else ("real",):
            yield tag(_MI_DOUBLE, 8 * nnz)
            for v in _csc_blocks(m, "values"):
                yield getattr(v, part).astype("<f8").tobytes()

    return pieces()


def write_mat(file: IO[bytes], m: AnySparse, name: str, header: str, compress: bool) -> None:
    """A MAT v5 file: our record (written by scipy), then the sparse `name`, streamed.

    scipy's ``savemat`` converts the whole matrix to CSC double and, to compress,
    holds the whole variable in memory twice more; here the matrix goes out a block
    of columns at a time (through ``zlib`` when `compress`).
    """
    if not (m.format in ("csr", "csc") and m.has_canonical_format):
        m = m.tocsr(copy=True)
        m.sum_duplicates()  # MATLAB needs sorted rows, once each, in every column
    small = io.BytesIO()
    scipy.io.savemat(
        cast(Any, small), {HEADER: header}, do_compression=compress
    )  # a file object works
    file.write(small.getvalue())
    pieces = _mat_sparse(m, name)
    if not compress:
        for piece in pieces:
            file.write(piece)
        return
    start = file.tell()
    file.write(bytes(8))  # the miCOMPRESSED tag, its size filled in below
    packer = zlib.compressobj()
    written = 0
    for piece in pieces:
        out = packer.compress(piece)
        written += len(out)
        file.write(out)
    out = packer.flush()
    written += len(out)
    file.write(out)
    if (
        written > tunables.MAT_MAX_BYTES
    ):  # pragma: no cover - compressed beyond the uncompressed limit
        raise ValueError("the compressed matrix is too large for a MATLAB (v5) .mat file")
    end = file.tell()
    file.seek(start)
    file.write(np.array([_MI_COMPRESSED, written], dtype="<u4").tobytes())
    file.seek(end)

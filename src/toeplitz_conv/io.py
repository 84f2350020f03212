"""Saving and loading the matrix: scipy ``.npz``, Matrix Market ``.mtx`` and MATLAB ``.mat``.

The format follows the file's extension. ``.npz`` is written by scipy's ``save_npz``;
``.mtx`` and ``.mat`` by streaming writers here (a chunk of rows, or a block of
columns, at a time: memory stays near the matrix's own), in the standard formats that
scipy (``load_npz``, ``scipy.io.mmread``, ``scipy.io.loadmat``), MATLAB, Julia and
every other Matrix Market reader read. A write never leaves a partial file: the data
goes to a temporary file beside the target, which is renamed over the target only
once it is complete. Reading checks what a file says about itself before trusting it.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Literal, NoReturn, TypeAlias, overload

import numpy as np
import scipy.io
import scipy.sparse as sp

from ._arrays import as_array, check_memory
from ._files import EXTENSIONS, HEADER, as_matrix, atomic_write, extension, header_line
from ._geometry import check_choice
from ._mat import write_mat
from ._mtx import write_mtx
from ._typing import AnySparse, ArrayLike

if TYPE_CHECKING:
    # What scipy's readers return: a sparse array or matrix of any format, or an ndarray; the
    # code dispatches on ``sp.issparse`` and ``.format`` at run time, which mypy cannot follow.
    _Loaded: TypeAlias = Any

__all__ = ["EXTENSIONS", "load_matrix", "save_matrix"]

_LOAD_FORMATS: tuple[str, ...] = ("csr", "csc", "coo")
_INT32_MAX = np.iinfo(np.int32).max


def save_matrix(
    matrix: AnySparse | sp.spmatrix | ArrayLike,
    path: str | os.PathLike[str],
    *,
    params: Mapping[str, object] | None = None,
    name: str = "M",
    compress: bool = True,
) -> None:
    r"""Write a matrix to ``.npz``, ``.mtx`` or ``.mat``, chosen by the extension of `path`.

    Parameters
    ----------
    matrix : sparse array or matrix, or array_like, shape (m, n)
        Typically the result of :func:`conv1d_matrix`; dense 2-D arrays are stored sparse.
    path : str or os.PathLike
        The target file. Its extension picks the format:

        * ``.npz`` -- :func:`scipy.sparse.save_npz` (the sparse format and dtype are kept);
        * ``.mtx`` -- Matrix Market coordinate ``general`` (``real``, ``complex`` or
          ``integer``), each value as its shortest round-trip text at its own precision,
          with a comment line ``%toeplitz_conv {...}`` recording `params` and the dtype;
        * ``.mat`` -- MATLAB (v5): the sparse variable `name`, in double precision
          (MATLAB's sparse matrices are double), and a char variable ``toeplitz_conv``
          with the same JSON record as the ``.mtx`` comment. v5 variables hold less
          than 4 GiB (about 350 million nonzeros); larger matrices are refused.
    params : mapping, optional
        The convolution's parameters (``{"stride": 2, "padding": [1, 1], ...}``), recorded
        as one line of JSON in ``.mtx`` and ``.mat`` files. Not stored in ``.npz``. N-d
        parameters are per-axis tuples, stored as JSON lists: ``{"input_size": (28, 28),
        "stride": (2, 1), "padding": ((1, 1), (0, 2))}`` records
        ``"input_size": [28, 28], "stride": [2, 1], "padding": [[1, 1], [0, 2]]``
        (numpy integers and arrays are converted too).
    name : str, optional
        The variable name in a ``.mat`` file.
    compress : bool, optional
        Compress ``.npz`` (zip deflate) and ``.mat`` (zlib) files; True by default.
        ``False`` writes faster, larger files. ``.mtx`` is text, never compressed.

    Raises
    ------
    ValueError
        For an unknown extension or a matrix that is not 2-D.
    TypeError
        For something that is not a matrix.
    OSError
        When the file cannot be written; an existing file is then left as it was.

    See Also
    --------
    load_matrix : the reverse.

    Notes
    -----
    The data is written to a temporary file in the target's directory, flushed to disk
    and renamed over the target (:func:`os.replace`, atomic on POSIX and Windows), so a
    reader sees either the old file or the complete new one, never a partial file.

    ``.mtx`` text is formatted by numpy a chunk of ~260,000 entries at a time, each
    distinct value once; ``.mat`` is written in CSC order a block of columns at a
    time. Neither makes a whole copy of the matrix (``scipy.io.mmwrite`` and
    ``scipy.io.savemat`` hold several): see ``benchmarks/export.py``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import scipy.io
    >>> import toeplitz_conv as tc
    >>> from toeplitz_conv import conv1d_matrix
    >>> M = conv1d_matrix([4.0, 3.0], 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "conv.mtx")
    >>> save_matrix(M, path, params={"weight": [4.0, 3.0], "input_length": 5})
    >>> print(open(path).read().splitlines()[1])  # doctest: +ELLIPSIS
    %toeplitz_conv {"version": ..., "params": {"weight": [4.0, 3.0], "input_length": 5}}
    >>> M2 = tc.conv2d_matrix(np.ones((2, 2)), (3, 3), stride=(2, 1), padding=((1, 0), 0))
    >>> path2 = os.path.join(tempfile.mkdtemp(), "conv2d.mtx")
    >>> save_matrix(M2, path2, params={"input_size": (3, 3), "stride": (2, 1),
    ...                                "padding": ((1, 0), (0, 0))})
    >>> import json
    >>> json.loads(open(path2).read().splitlines()[1].split(" ", 1)[1])["params"]
    {'input_size': [3, 3], 'stride': [2, 1], 'padding': [[1, 0], [0, 0]]}
    >>> scipy.io.mmread(path).toarray()
    array([[4., 3., 0., 0., 0.],
           [0., 4., 3., 0., 0.],
           [0., 0., 4., 3., 0.],
           [0., 0., 0., 4., 3.]])
    """
    ext = extension(path)
    target = os.fspath(path)
    m = as_matrix(matrix)
    if ext == ".mat":
        if not isinstance(name, str) or not name.isidentifier() or name == HEADER:
            raise ValueError(
                f"`name` must be a valid MATLAB variable name other than {HEADER!r}; got {name!r}"
            )
    # validates `params` for every format
    header = header_line(m.dtype, params, name if ext == ".mat" else None)

    if ext == ".npz":
        # save_npz stores the compressed, coordinate, block and diagonal formats only
        stored = sp.csr_array(m) if isinstance(m, (sp.lil_array, sp.dok_array)) else m

        def write(file: IO[bytes]) -> None:
            sp.save_npz(file, stored, compressed=compress)

    elif ext == ".mtx":

        def write(file: IO[bytes]) -> None:
            write_mtx(file, m, f"{HEADER} {header}")

    else:

        def write(file: IO[bytes]) -> None:
            write_mat(file, m, name, header, compress)

    atomic_write(target, ext, write)


def _canonical(
    m: _Loaded, fmt: str, dtype: np.dtype | None
) -> sp.csr_array | sp.csc_array | sp.coo_array:
    """`m` as a canonical ``*_array`` of format `fmt`, int32 indices where they fit."""
    out = sp.csr_array(m) if fmt in ("csr", "coo") else sp.csc_array(m)
    if dtype is not None and out.dtype != dtype:
        out = out.astype(dtype)
    out.sum_duplicates()  # also sorts the indices
    if max(*out.shape, out.nnz) <= _INT32_MAX and out.indices.dtype != np.int32:
        out.indices = out.indices.astype(np.int32)
        out.indptr = out.indptr.astype(np.int32)
    if fmt == "coo":
        coo = out.tocoo()
        coo.has_canonical_format = True  # row-major from canonical CSR (older scipy forgets)
        return coo
    return out


def _is_sparse(m: _Loaded) -> bool:
    """``sp.issparse``, as a plain bool: scipy-stubs narrows to a type without attributes."""
    return sp.issparse(m)


class _Refused(ValueError):
    """What a file declares about itself cannot be true (or does not fit in memory)."""


def _fits(nbytes: int, what: str) -> None:
    """:func:`check_memory` for what a file declares: refused as a :class:`_Refused`."""
    try:
        check_memory(nbytes, what, hint="check the sizes the file declares")
    except ValueError as exc:
        raise _Refused(str(exc)) from None


def _record_dtype(text: str, source: str) -> np.dtype | None:
    """The dtype our record (one line of JSON) names; ``None`` when it names none.

    A record that is not a JSON object, or names something that is not a numeric
    dtype, is refused: the file says something about itself that cannot be true.
    """
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise _Refused(
            f"cannot read {source!r}: its {HEADER} record is not a JSON object: {text[:80]!r}"
        )
    if "dtype" not in record:
        return None
    try:
        dtype = np.dtype(record["dtype"])
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in "biufc":
        raise _Refused(
            f"cannot read {source!r}: its {HEADER} record's field 'dtype' is "
            f"{record['dtype']!r}, which is not a numeric dtype"
        )
    return dtype


def _entry(m: _Loaded, i: int) -> str:
    """Where the `i`-th stored value of `m` sits, as ``(row, col)`` (0-based)."""
    if not _is_sparse(m):
        return str(np.unravel_index(i, np.shape(m)))
    if m.format == "coo":
        return f"({m.row[i]}, {m.col[i]})"
    major = int(np.searchsorted(m.indptr, i, side="right")) - 1
    minor = int(m.indices[i])
    return f"({major}, {minor})" if m.format == "csr" else f"({minor}, {major})"


def _as_recorded(m: _Loaded, dtype: np.dtype | None, source: str) -> _Loaded:
    """`m` in the dtype its record names; a value that dtype cannot hold is refused.

    The record describes the data, it never converts it: integer and boolean dtypes
    must hold every value exactly; a real dtype refuses a nonzero imaginary part; a
    float dtype refuses values it would turn into infinities or zeros. Rounding a
    decimal to the recorded float precision is reading it, not converting it.
    """
    if dtype is None or m.dtype == dtype:
        return m
    values = m.data if _is_sparse(m) else np.asarray(m).reshape(-1)

    def refuse(i: int, what: str) -> NoReturn:
        raise ValueError(
            f"cannot read {source!r}: its {HEADER} record's field 'dtype' says {dtype}, but "
            f"the entry at {_entry(m, i)} is {values[i].item()!r}, {what}; the record must "
            "describe the data (fix the record, or the data, or remove the record)"
        )

    if values.dtype.kind == "c" and dtype.kind != "c":
        bad = np.flatnonzero(values.imag)
        if bad.size:
            refuse(int(bad[0]), f"complex, and a real {dtype} would drop its imaginary part")
        values = values.real
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        cast = values.astype(dtype)
        if dtype.kind in "biu":
            lost = cast.astype(values.dtype) != values
        else:
            lost = (np.isfinite(values) & ~np.isfinite(cast)) | ((values != 0) & (cast == 0))
    bad = np.flatnonzero(lost)
    if bad.size:
        i = int(bad[0])
        refuse(i, f"which {dtype} cannot hold (it would become {cast[i].item()!r})")
    if _is_sparse(m):
        out = m.copy() if m.data is values else m
        out.data = cast
        return out
    return cast.reshape(np.shape(m))


def _check_size(source: str, shape: tuple[int, ...], nnz: int, dtype: np.dtype, fmt: str) -> None:
    """Refuse, before allocating it, a result larger than this machine's memory.

    A header's sizes are not trusted: a CSR result of ``m`` rows needs ``m + 1``
    row pointers whatever the number of nonzeros.
    """
    rows, cols = (int(n) for n in shape)
    pointers = (cols if fmt == "csc" else rows) + 1
    nbytes = 8 * pointers + nnz * (2 * np.dtype(dtype).itemsize + 24)
    _fits(nbytes, f"the matrix of {source!r} ({rows:,} x {cols:,}, {nnz:,} stored entries)")


# Matrix Market: values per entry of each field (pattern has none)
_MTX_VALUES = {"real": 1, "integer": 1, "double": 1, "complex": 2, "pattern": 0}


def _mtx_header(path: str) -> np.dtype | None:
    """Check what a Matrix Market header declares against the file; returns the dtype our
    record names (None without a record).

    The declared entries must fit in the bytes that follow the header (every entry
    is a line of at least two bytes per number), and the result in memory. A
    header this cannot parse is left to scipy's reader, which explains it.
    """
    prefix = f"%{HEADER} "
    dtype = None
    with open(path, "rb") as file:
        banner = file.readline(1 << 16).decode("utf-8", "replace").split()
        while True:
            raw = file.readline(1 << 24)
            line = raw.decode("utf-8", "replace").strip()
            if not raw or (line and not line.startswith("%")):
                break  # the size line (or the end of the file)
            if line.startswith(prefix):
                dtype = _record_dtype(line[len(prefix) :], path)
        rest = os.fstat(file.fileno()).st_size - file.tell()
    try:
        layout, field, symmetry = (w.lower() for w in banner[2:5])
        sizes = [int(w) for w in line.split()]
        values = _MTX_VALUES[field]
    except (ValueError, KeyError):
        return dtype  # not a header we understand: scipy says why
    if len(sizes) < 2 or min(sizes) < 0:
        return dtype
    rows, cols = sizes[:2]
    if layout == "coordinate" and len(sizes) == 3:
        entries, numbers, nnz = sizes[2], 2 + values, sizes[2] * (1 if symmetry == "general" else 2)
    elif layout == "array":
        entries = rows * cols if symmetry == "general" else rows * (rows + 1) // 2
        numbers, nnz = values, rows * cols
    else:
        return dtype
    if entries * 2 * numbers > rest:
        raise _Refused(
            f"cannot read {path!r}: its size line declares {rows:,} x {cols:,} with "
            f"{entries:,} stored entries, which take at least {entries * 2 * numbers:,} bytes, "
            f"but only {rest:,} bytes follow the header (a wrong header or a truncated file)"
        )
    if layout == "array":  # the reader returns it dense
        _fits(rows * cols * 8 * max(values, 1), f"the dense {rows:,} x {cols:,} array of {path!r}")
    _check_size(path, (rows, cols), nnz, np.dtype(dtype or np.complex128), "csr")
    return dtype


def _npz_check(path: str) -> None:
    """Refuse an ``.npz`` archive whose arrays (uncompressed) exceed this machine's memory."""
    if not zipfile.is_zipfile(path):
        return  # the reader explains what it is instead
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    _fits(total, f"the arrays of {path!r} (uncompressed)")


# MATLAB classes of numeric arrays (what whosmat reports)
_MAT_NUMERIC = frozenset(
    ["double", "single", "logical"] + [f"{s}int{b}" for s in ("", "u") for b in (8, 16, 32, 64)]
)


def _pick_mat_variable(path: str, name: str | None) -> tuple[str, np.dtype | None]:
    """The variable of a ``.mat`` file to read, and the dtype our record names for it.

    Without `name`: the variable our record names, else the only matrix (sparse, or a
    numeric array with at least two rows and columns), else the only numeric 2-D array
    (a vector). Anything else is ambiguous and refused, naming the variables.
    """
    found = {var: (shape, cls) for var, shape, cls in scipy.io.whosmat(path)}
    record: dict[str, object] = {}
    dtype = None
    if found.get(HEADER, ((), ""))[1] == "char":
        text = scipy.io.loadmat(path, variable_names=[HEADER])[HEADER]
        text = "".join(str(t) for t in np.asarray(text).ravel())
        dtype = _record_dtype(text, path)
        record = json.loads(text)
    found.pop(HEADER, None)
    listing = ", ".join(f"{v} ({'x'.join(map(str, s))} {c})" for v, (s, c) in sorted(found.items()))
    variable = record.get("variable")
    if name is None and isinstance(variable, str) and variable in found:
        name = variable
    if name is not None:
        if name not in found:
            raise _Refused(
                f"`name`={name!r} is not a variable of {path!r}; it has {sorted(found)}"
                + (f": {listing}" if found else "")
            )
    else:
        numeric = {v: s for v, (s, c) in found.items() if c in _MAT_NUMERIC and len(s) == 2}
        candidates = [v for v, (s, c) in found.items() if c == "sparse"]
        candidates += [v for v, s in numeric.items() if min(s) > 1]
        if not candidates:
            candidates = list(numeric)
        if len(candidates) != 1:
            raise _Refused(
                f"{path!r} holds {len(candidates)} candidate matrices {sorted(candidates)}; "
                f"pass `name=` to pick one (its variables: {listing or 'none'})"
            )
        name = candidates[0]
    shape, cls = found[name]
    if cls not in _MAT_NUMERIC | {"sparse"} or len(shape) != 2:
        raise _Refused(
            f"`name`={name!r}: the variable of {path!r} is a {'x'.join(map(str, shape))} "
            f"{cls}, not a matrix"
        )
    if cls != "sparse":
        _fits(math.prod(shape) * 8, f"the {name!r} array of {path!r}")
    described = record.get("variable", name) == name  # older records name no variable
    return name, dtype if described else None


_FORMAT_NAMES = {
    ".npz": "scipy.sparse.save_npz archive",
    ".mtx": "Matrix Market file",
    ".mat": "MATLAB file",
}


def _read_error(source: str, ext: str, exc: BaseException) -> ValueError:
    """A one-line error naming the file, its format and why it could not be read.

    numpy's advice to set ``allow_pickle`` (what it says about a file that is not
    an ``.npz`` archive, or holds object arrays) is misleading here: the file is
    corrupted or in another format, and unpickling it would not help.
    """
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if "pickle" in reason:
        reason = "it holds no numeric arrays (corrupted, or not written by save_npz/save_matrix)"
    elif not isinstance(exc, ValueError):
        reason = f"{type(exc).__name__}: {reason}"
    return ValueError(
        f"cannot read {source!r} as a {ext} matrix file ({_FORMAT_NAMES[ext]}): {reason}"
    )


def _mtx_source(path: str) -> str | io.BytesIO:
    """`path`, checked for what crashes scipy's Matrix Market reader.

    scipy 1.17's ``mmread`` reads past the end of a number followed by a NUL byte
    or by the end of the file inside its exponent (``1.5E``) and crashes the
    interpreter. A Matrix Market file is text: a NUL byte is refused here, and a
    file without a final newline is read from memory with one added (which turns
    the second case into the reader's ordinary error).
    """
    last = b""
    with open(path, "rb") as file:
        while chunk := file.read(1 << 24):
            nul = chunk.find(b"\0")
            if nul >= 0:
                offset = file.tell() - len(chunk) + nul
                raise ValueError(f"it holds a NUL byte at offset {offset}, so it is not text")
            last = chunk[-1:]
        if last in (b"", b"\n"):
            return path
        file.seek(0)
        return io.BytesIO(file.read() + b"\n")


@overload
def load_matrix(
    path: str | os.PathLike[str], *, format: Literal["csr"] = ..., name: str | None = ...
) -> sp.csr_array: ...
@overload
def load_matrix(
    path: str | os.PathLike[str], *, format: Literal["csc"], name: str | None = ...
) -> sp.csc_array: ...
@overload
def load_matrix(
    path: str | os.PathLike[str], *, format: Literal["coo"], name: str | None = ...
) -> sp.coo_array: ...
def load_matrix(
    path: str | os.PathLike[str],
    *,
    format: Literal["csr", "csc", "coo"] = "csr",
    name: str | None = None,
) -> sp.csr_array | sp.csc_array | sp.coo_array:
    """Read a matrix from ``.npz``, ``.mtx`` or ``.mat``, chosen by the extension of `path`.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_matrix` or by another tool (scipy's ``save_npz``,
        any Matrix Market writer, MATLAB's ``save``), or the ``.json`` manifest of the
        per-rank ``.npz`` parts written by :func:`toeplitz_conv.mpi.save_matrix_parts`
        (read back whole).
    format : {'csr', 'csc', 'coo'}, optional
        The sparse format of the result.
    name : str, optional
        For ``.mat`` files only: the variable to read. By default the variable the
        file's ``toeplitz_conv`` record names (files written by :func:`save_matrix`),
        else the only matrix (a sparse variable, or a numeric array with at least two
        rows and two columns), else the only 2-D numeric array; with several
        candidates the call is refused, naming them. Other formats hold one matrix
        and no names: passing `name` for them is refused.

    Returns
    -------
    sparse array, shape (m, n)
        A canonical scipy sparse *array* (``csr_array``, ...): sorted indices, no
        duplicates, int32 indices whenever they fit. Files written by :func:`save_matrix`
        come back with the dtype they were saved with.

    Raises
    ------
    ValueError
        For an unknown extension, a ``.mat`` file with no single matrix to pick, or a
        file that is corrupted or not in the format its extension names (the message
        names the path and the format); for a file whose ``toeplitz_conv`` record
        names a dtype that cannot hold its data (see Notes); for sizes that the file's
        bytes cannot hold or that do not fit in this machine's memory (checked before
        anything of that size is allocated).
    OSError
        When the file cannot be read.

    Notes
    -----
    What a file says about itself is checked, never trusted. The record written by
    :func:`save_matrix` (``%toeplitz_conv {...}`` in ``.mtx``, the ``toeplitz_conv``
    variable in ``.mat``) restores the saved dtype, but it only describes the data:
    an integer or boolean dtype must hold every stored value exactly, a real dtype
    refuses a nonzero imaginary part, and a float dtype refuses values it would turn
    into infinities or zeros (rounding a decimal to the recorded precision is
    reading it). A Matrix Market size line must fit the bytes that follow it, and
    every result must fit in memory (a CSR result needs one pointer per row
    whatever its nonzeros).

    Examples
    --------
    >>> import os, tempfile
    >>> from toeplitz_conv import conv1d_matrix
    >>> path = os.path.join(tempfile.mkdtemp(), "conv.npz")
    >>> save_matrix(conv1d_matrix([4.0, 3.0], 5), path)
    >>> M = load_matrix(path)
    >>> type(M).__name__, M.shape, M.nnz
    ('csr_array', (4, 5), 8)
    """
    if isinstance(path, (str, os.PathLike)) and str(os.fspath(path)).lower().endswith(".json"):
        check_choice(format, "format", _LOAD_FORMATS)
        _check_no_name(name, os.fspath(path), "a matrix-parts manifest")
        return _load_parts(os.fspath(path), format)
    ext = extension(path)
    check_choice(format, "format", _LOAD_FORMATS)
    source = os.fspath(path)
    if not os.path.isfile(source):
        what = "is a directory" if os.path.isdir(source) else "does not exist"
        raise FileNotFoundError(f"cannot read {source!r}: it {what}")
    if ext != ".mat":
        _check_no_name(name, source, f"a {_FORMAT_NAMES[ext]}")
    dtype: np.dtype | None = None
    m: _Loaded
    try:
        if ext == ".npz":
            _npz_check(source)
            m = sp.load_npz(source)
        elif ext == ".mtx":
            dtype = _mtx_header(source)
            m = scipy.io.mmread(_mtx_source(source))
        else:
            var, dtype = _pick_mat_variable(source, name)
            m = scipy.io.loadmat(source, variable_names=[var])[var]
    except _Refused:
        raise
    except Exception as exc:  # the readers raise anything on a corrupted file (zlib, zipfile...)
        raise _read_error(source, ext, exc) from None
    if _is_sparse(m) and m.format in ("csr", "csc", "bsr"):
        try:  # out-of-range indices would make scipy's C++ routines write out of bounds
            m.check_format(full_check=True)
        except (ValueError, TypeError) as exc:
            raise _read_error(source, ext, exc) from None
    if not _is_sparse(m):
        m = as_array(m, "the stored matrix")
        if m.ndim != 2:
            raise ValueError(f"{source!r} holds an array of shape {m.shape}, not a matrix")
    nnz = m.nnz if _is_sparse(m) else int(np.count_nonzero(m))
    _check_size(source, m.shape, nnz, dtype or m.dtype, format)
    return _canonical(_as_recorded(m, dtype, source), format, None)


def _check_no_name(name: str | None, source: str, kind: str) -> None:
    if name is not None:
        raise ValueError(
            f"`name`={name!r} picks a variable of a .mat file, but {source!r} is {kind}, "
            "which holds one matrix and no variable names; leave `name` out"
        )


_PARTS = "toeplitz_conv matrix parts"  # the manifest's "format" (toeplitz_conv.mpi)


def _load_parts(manifest: str, fmt: str) -> sp.csr_array | sp.csc_array | sp.coo_array:
    """The whole matrix from a manifest of row-block ``.npz`` parts (no MPI needed)."""
    if not os.path.isfile(manifest):
        raise FileNotFoundError(f"cannot read {manifest!r}: it does not exist")
    try:
        with open(manifest, encoding="utf-8") as file:
            record = json.load(file)
        if record.get("format") != _PARTS:
            raise ValueError(f"it is not a {_PARTS!r} manifest")
        shape = tuple(int(n) for n in record["shape"])
        dtype = np.dtype(record["dtype"])
        parts = record["parts"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read {manifest!r} as a matrix-parts manifest: {exc}") from None
    folder = os.path.dirname(os.path.abspath(manifest))
    blocks, row = [], 0
    for part in parts:
        r0, r1 = (int(r) for r in part["rows"])
        block = sp.load_npz(os.path.join(folder, os.path.basename(part["file"])))
        if r0 != row or block.shape != (r1 - r0, shape[1]):
            raise ValueError(
                f"{manifest!r}: part {part['file']!r} holds shape {block.shape} for rows "
                f"[{r0}, {r1}) after row {row}; the parts must tile a {shape} matrix"
            )
        blocks.append(sp.csr_array(block))
        row = r1
    if row != shape[0]:
        raise ValueError(f"{manifest!r}: the parts cover {row} of {shape[0]} rows")
    whole = sp.vstack(blocks, format="csr") if blocks else sp.csr_array(shape, dtype=dtype)
    return _canonical(whole, fmt, dtype)

"""Paths, records and atomic writes shared by the writers and readers of matrix files.

:func:`atomic_write` is how every file of this package is written: into a
temporary file beside the target, renamed over it only once complete, so a
failed or interrupted write leaves an existing file as it was.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from typing import IO, cast

import numpy as np
import scipy.sparse as sp

from ._arrays import as_array
from ._typing import AnySparse

__all__ = [
    "EXTENSIONS",
    "HEADER",
    "as_matrix",
    "atomic_write",
    "check_writable",
    "extension",
    "header_line",
]

#: The file extensions :func:`~toeplitz_conv.save_matrix` and
#: :func:`~toeplitz_conv.load_matrix` understand.
EXTENSIONS: tuple[str, ...] = (".npz", ".mtx", ".mat")
#: The key of our record in ``.mtx`` comments and ``.mat`` files.
HEADER = "toeplitz_conv"


def extension(path: str | os.PathLike[str]) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {type(path).__name__}")
    name = os.fspath(path)
    if not isinstance(name, str):
        raise TypeError(f"`path` must be a text path (str), not {type(name).__name__}")
    ext = os.path.splitext(name)[1].lower()
    if ext not in EXTENSIONS:
        allowed = ", ".join(repr(e) for e in EXTENSIONS)
        raise ValueError(
            f"`path` must end in one of {allowed} (the extension picks the format); got {name!r}"
        )
    return ext


def as_matrix(matrix: object) -> AnySparse:
    """`matrix` as a 2-D scipy sparse array (dense inputs become CSR)."""
    if sp.issparse(matrix):
        sparse = cast("AnySparse", matrix)  # or an spmatrix: the same attributes
        if sparse.ndim != 2:
            raise ValueError(f"`matrix` must be 2-D; got a sparse array with shape {sparse.shape}")
        return sparse if isinstance(sparse, sp.sparray) else sp.csr_array(sparse)
    try:
        dense = as_array(matrix, "matrix")
    except TypeError:
        raise TypeError(
            "`matrix` must be a scipy sparse array or matrix, or a 2-D numeric array; "
            f"got {type(matrix).__name__}"
        ) from None
    if dense.ndim != 2:
        raise ValueError(f"`matrix` must be 2-D (a matrix); got an array with shape {dense.shape}")
    return sp.csr_array(dense)


def header_line(
    dtype: np.dtype, params: Mapping[str, object] | None, variable: str | None = None
) -> str:
    """One line of JSON: our version, the matrix dtype, the conv parameters (and, in a
    ``.mat`` file, the variable it describes)."""
    from ._version import __version__

    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"`params` must be a mapping (a dict) or None; got {type(params).__name__}")

    def plain(value: object) -> object:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        raise TypeError(
            f"`params` values must be numbers, strings, lists or dicts; "
            f"got {value!r} of type {type(value).__name__}"
        )

    record = {"version": __version__, "dtype": str(dtype), "params": dict(params or {})}
    if variable is not None:
        record["variable"] = variable
    return json.dumps(record, default=plain)


def check_writable(target: str) -> str:
    """Refuse, before any work, a `target` that cannot be written; returns its directory.

    Raises ``IsADirectoryError``, ``FileNotFoundError`` (no such directory) or
    ``PermissionError`` (the directory, or an existing `target`, is not writable).
    """
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot write {target!r}: it is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot write {target!r}: the directory {directory!r} does not exist"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write {target!r}: no permission to create files in {directory!r}"
        )
    return directory


def atomic_write(target: str, ext: str, write: Callable[[IO[bytes]], object]) -> None:
    """Run ``write(file)`` on a temporary file beside `target`, then rename it over `target`.

    On any error the temporary file is removed and an existing `target` is untouched.
    The temporary name ends in `ext`, as some writers insist on their extension.
    """
    directory = check_writable(target)
    base = os.path.basename(target)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp{ext}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # pragma: no cover - a 32-bit random name collided
            continue
        except PermissionError:
            raise PermissionError(
                f"cannot write {target!r}: no permission to create files in {directory!r}"
            ) from None
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write {target!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:  # pragma: no cover - already gone
            pass
        raise

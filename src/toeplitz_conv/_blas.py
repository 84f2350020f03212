"""numpy's own BLAS ``gemm`` on strided views, adding into the output (``beta = 1``).

A convolution's tap products add up in one output: the window of a group of taps
is a view of the padded signal (rows any distance apart), and each group's product
``W_t @ window_t`` adds onto the same block of outputs. ``np.matmul`` takes such
views but always overwrites its output; BLAS adds into it (``beta = 1``). So
:func:`gemm` calls the ``cblas_?gemm`` of the OpenBLAS that numpy itself ships and
has loaded (its wheels bundle ``scipy-openblas``: symbols ``scipy_cblas_sgemm64_``,
64-bit integers) through ctypes: the same library, kernels and threads as
``np.matmul`` (threadpoolctl's limits apply). scipy's Cython BLAS would also do,
but its OpenBLAS ran these products 1.05-1.1x slower on this machine.

Where numpy's BLAS is not found (numpy built against another BLAS) or for other
dtypes (complex, say), :func:`available` is False and the callers keep their
copying path.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import numpy as np

from . import _tunables as tunables

__all__ = ["available", "gemm"]

_COL_MAJOR, _NO_TRANS = 102, 111  # CBLAS enums
# (symbol pattern, integer type): numpy's bundled scipy-openblas (ILP64), then plain names
_SYMBOLS = (
    ("scipy_cblas_{}gemm64_", ctypes.c_int64),
    ("cblas_{}gemm64_", ctypes.c_int64),
    ("scipy_cblas_{}gemm", ctypes.c_int),
    ("cblas_{}gemm", ctypes.c_int),
)
_PREFIX = {
    np.dtype(np.float32): ("s", ctypes.c_float),
    np.dtype(np.float64): ("d", ctypes.c_double),
}


def _libraries() -> list[Path]:
    """The OpenBLAS libraries a numpy wheel bundles (Linux/Windows ``numpy.libs``, macOS
    ``numpy/.dylibs``)."""
    root = Path(np.__file__).parent
    found = []
    for folder in (root.parent / "numpy.libs", root / ".dylibs", root / ".libs"):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if "openblas" in p.name.lower())
    return found


@functools.cache
def _routine(dtype: np.dtype) -> tuple[Any, int] | None:
    """``(cblas ?gemm, its largest integer)`` for `dtype`, or None."""
    if dtype not in _PREFIX:
        return None
    letter, scalar = _PREFIX[dtype]
    for path in _libraries():
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        for pattern, integer in _SYMBOLS:
            function = getattr(library, pattern.format(letter), None)
            if function is None:
                continue
            pointer = ctypes.c_void_p
            function.argtypes = [ctypes.c_int] * 3 + [integer] * 3 + [scalar, pointer, integer]
            function.argtypes += [pointer, integer, scalar, pointer, integer]
            function.restype = None
            return function, 2 ** (8 * ctypes.sizeof(integer) - 1) - 1
    return None


def available(dtype: np.dtype, largest: int = 0) -> bool:
    """Whether :func:`gemm` runs for `dtype` with sizes and leading dimensions up to `largest`
    (and :data:`toeplitz_conv._tunables.NUMPY_BLAS` is on)."""
    routine = _routine(np.dtype(dtype)) if tunables.NUMPY_BLAS else None
    return routine is not None and largest <= routine[1]


def _rows(a: np.ndarray, name: str) -> int:
    """The leading dimension of `a` (2-D, unit column stride), checked."""
    item = a.dtype.itemsize
    if a.ndim == 2 and a.size == 0:
        return max(1, a.shape[1])
    if a.ndim != 2 or (a.shape[1] > 1 and a.strides[1] != item) or a.strides[0] % item:
        raise ValueError(f"{name}: a 2-d view with contiguous rows expected, got {a.strides}")
    ld = a.strides[0] // item if a.shape[0] > 1 else a.shape[1]
    if ld < a.shape[1]:
        raise ValueError(f"{name}: rows {ld} apart overlap their {a.shape[1]} values")
    return max(ld, 1)


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, add: bool = False) -> None:
    """``out = a @ b``, or ``out += a @ b`` with `add`, in place.

    Parameters
    ----------
    a : ndarray, shape (M, K)
    b : ndarray, shape (K, N)
    out : ndarray, shape (M, N)
        Views of one dtype whose rows are contiguous, any distance apart
        (``b`` a tap's window: rows of a padded signal).

    Notes
    -----
    Row-major ``out = a b`` is the column-major ``out^T = b^T a^T``: one
    ``cblas_?gemm(ColMajor, N, N, N, M, K, 1, b, ldb, a, lda, beta, out, ldc)``.
    """
    dtype = out.dtype
    routine = _routine(dtype)
    if routine is None or a.dtype != dtype or b.dtype != dtype:
        raise TypeError(f"gemm: float32 or float64 operands of one dtype, got {a.dtype}, {b.dtype}")
    (M, K), (K_b, N) = a.shape, b.shape
    if K_b != K or out.shape != (M, N):
        raise ValueError(f"gemm: shapes {a.shape} @ {b.shape} -> {out.shape} do not match")
    lda, ldb, ldc = _rows(a, "a"), _rows(b, "b"), _rows(out, "out")
    function, largest = routine
    if max(M, N, K, lda, ldb, ldc) > largest:
        raise ValueError(f"gemm: sizes {M, N, K} or rows {lda, ldb, ldc} above {largest}")
    if not (M and N):
        return
    if K == 0:
        if not add:
            out[...] = 0
        return
    function(
        _COL_MAJOR, _NO_TRANS, _NO_TRANS, N, M, K,
        1.0, b.ctypes.data, ldb, a.ctypes.data, lda,
        1.0 if add else 0.0, out.ctypes.data, ldc,
    )  # fmt: skip

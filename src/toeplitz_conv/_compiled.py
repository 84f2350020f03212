"""Optional compiled kernels (numba, the ``[fast]`` extra): depthwise layers in one pass.

numpy makes one pass over memory per operation, so a depthwise layer's ``prod(K)``
multiply-adds cost ``2 prod(K)`` passes over the image (or the patch copies of the
default path); a compiled loop reads each tap's window once per block of positions
and keeps the block of outputs in cache. The kernels work on the same rows of
phases and tap offsets as :class:`toeplitz_conv._plan.Plan` (so every stride,
dilation, padding mode, batch and ``n`` is covered), and add the taps in order:
the same sums as the patch path, rounded the same way up to the order of the
additions.

numba is imported on first use, never at import time; without it (or with
:data:`toeplitz_conv._tunables.COMPILED` false) :func:`kernels` is None and the
callers keep their numpy path. The first call per dtype compiles (about a second;
``cache=True`` keeps the machine code on disk for later processes).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from . import _tunables as tunables

__all__ = ["kernels"]

# positions of one output row handled at a time: the block of outputs stays in L1/L2
# while the three taps of a pass stream through it
_CHUNK = 4096


# what numba compiles (not float16, longdouble, ...: those keep numpy's path)
_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))


def kernels(dtype: np.dtype) -> Any:
    """The compiled kernels (:func:`_build`) for arrays of `dtype`, or None without numba, for
    a dtype it does not compile, or when switched off."""
    if not tunables.COMPILED or np.dtype(dtype) not in _DTYPES:
        return None
    return _compiled()


_lock = threading.Lock()
_built: list[SimpleNamespace | None] = []  # the kernels once tried: [kernels] or [None]


def _compiled() -> Any:
    if not _built:
        with _lock:  # built once, also when several threads ask at once
            if not _built:
                try:
                    import numba
                except Exception:  # not installed, or built for another numpy: numpy's path
                    _built.append(None)
                else:
                    _built.append(_build(numba))
    return _built[0]


def _build(numba: Any) -> SimpleNamespace:
    """Compile (lazily, per dtype) the depthwise correlation and its scatter adjoint.

    The kernels are the plain functions below, jitted here; ``_taps_into`` is replaced by
    its jitted self in this module's namespace first, so that :func:`_correlate` calls it
    as a global (numba's cache does not keep functions that close over another jitted
    function: they compiled again in every process).
    """
    global _taps_into
    jit = numba.njit(cache=True, nogil=True)
    _taps_into = jit(_taps_into)
    return SimpleNamespace(correlate=jit(_correlate), scatter=jit(_scatter))


# --------------------------------------------------------------------------- the kernels
# Plain Python over arrays (correct, and very slow, if called without numba).


def _taps_into(out, r, w, starts, at):
    """``out[j] = sum_k w[k] r[at + starts[k] + j]``: taps in order, three per pass."""
    size, taps = out.size, w.size
    k = 0
    while k < taps:
        a = r[at + starts[k] : at + starts[k] + size]
        if k + 3 <= taps:
            b = r[at + starts[k + 1] : at + starts[k + 1] + size]
            c = r[at + starts[k + 2] : at + starts[k + 2] + size]
            wa, wb, wc = w[k], w[k + 1], w[k + 2]
            if k == 0:
                for j in range(size):
                    out[j] = wa * a[j] + wb * b[j] + wc * c[j]
            else:
                for j in range(size):
                    out[j] = out[j] + wa * a[j] + wb * b[j] + wc * c[j]
            k += 3
        else:
            wa = w[k]
            if k == 0:
                for j in range(size):
                    out[j] = wa * a[j]
            else:
                for j in range(size):
                    out[j] = out[j] + wa * a[j]
            k += 1


def _correlate(rows, w, starts, row_src, row_len, y, pad_dst, pad_len, padded):
    """``y[g, o, q L + j] = sum_k w[g, o, k] xp[g, row_src[q] + starts[k] + j]``, ``j < L``.

    ``L = row_len``: output row ``q`` reads from ``row_src[q]`` on. ``xp`` is
    `rows` itself when `pad_dst` is empty; otherwise each channel is zero padded
    into a scratch row of `padded` values first (row ``i`` of `rows`, ``pad_len``
    values, goes to ``pad_dst[i]``), so the padded image never leaves the cache.
    Long output rows are computed in place, block by block; short ones (a 2-D
    image's) a few at a time over the whole stretch of the phase they span, into
    a scratch block in cache, then copied out row by row (vectorised loops over a
    row of ~50 values are slow).
    """
    groups, m = w.shape[:2]
    n_rows = row_src.size
    tmp = np.empty(_CHUNK, dtype=y.dtype)
    xp = np.zeros(padded if pad_dst.size else 0, dtype=y.dtype)
    for g in range(groups):
        r = rows[g]
        if pad_dst.size:
            for i in range(pad_dst.size):
                src, dst = r[i * pad_len : (i + 1) * pad_len], xp[pad_dst[i] :]
                for j in range(pad_len):
                    dst[j] = src[j]
            r = xp
        for o in range(m):
            wk, yo = w[g, o], y[g, o]
            if row_len >= _CHUNK // 4:
                for q in range(n_rows):
                    for j0 in range(0, row_len, _CHUNK):
                        size = min(_CHUNK, row_len - j0)
                        at = q * row_len + j0
                        _taps_into(yo[at : at + size], r, wk, starts, row_src[q] + j0)
                continue
            q0 = 0
            while q0 < n_rows:
                q1 = q0 + 1
                while q1 < n_rows and row_src[q1] - row_src[q0] + row_len <= _CHUNK:
                    q1 += 1
                span = row_src[q1 - 1] - row_src[q0] + row_len
                _taps_into(tmp[:span], r, wk, starts, row_src[q0])
                for q in range(q0, q1):
                    src = tmp[row_src[q] - row_src[q0] :]
                    dst = yo[q * row_len : (q + 1) * row_len]
                    for j in range(row_len):
                        dst[j] = src[j]
                q0 = q1


def _scatter(rows, wh, starts, n, y):
    """``rows[g, starts[k] + j] += sum_o wh[g, k, o] y[g, o, j]`` for ``j < n``."""
    groups, taps, m = wh.shape
    for g in range(groups):
        r = rows[g]
        for o in range(m):
            yo = y[g, o]
            for k in range(taps):
                s, wk = starts[k], wh[g, k, o]
                for j in range(n):
                    r[s + j] = r[s + j] + wk * yo[j]

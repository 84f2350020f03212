"""Optional compiled kernels (numba, the ``[fast]`` extra): depthwise layers in one pass, and
the tile transforms of 2-D Winograd layers (:mod:`toeplitz_conv._winograd`).

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
from collections.abc import Callable
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
    return compiled(dtype, _build)


_lock = threading.Lock()
_built: dict[Callable[[Any], SimpleNamespace], SimpleNamespace | None] = {}  # per builder


def compiled(dtype: np.dtype, build: Callable[[Any], SimpleNamespace]) -> Any:
    """What ``build(numba)`` compiles, made once per process, for arrays of `dtype`; None
    without numba (or one built for another numpy), for a dtype numba does not compile
    (:data:`_DTYPES`), or when :data:`toeplitz_conv._tunables.COMPILED` is false.

    Each module of compiled kernels passes its own `build` (this module's
    :func:`_build`, :func:`toeplitz_conv._winograd1d._build`).
    """
    if not tunables.COMPILED or np.dtype(dtype) not in _DTYPES:
        return None
    if build not in _built:
        with _lock:  # built once, also when several threads ask at once
            if build not in _built:
                try:
                    import numba
                except Exception:  # not installed, or built for another numpy: numpy's path
                    _built[build] = None
                else:
                    _built[build] = build(numba)
    return _built[build]


def _build(numba: Any) -> SimpleNamespace:
    """Compile (lazily, per dtype) the depthwise correlation and its scatter adjoint, and
    the 2-D Winograd tile transforms in and out (``tiles_in[m, s]``, ``tiles_out[m, s]``
    for F(m x m, 3x3) at stride ``s``), and the stride-2 transforms' adjoints
    (``adjoint_in``, ``adjoint_out``).

    The kernels are the plain functions below, jitted here; ``_taps_into`` (and the
    transforms of one tile, ``_bt4`` ...) is replaced by its jitted self in this module's
    namespace first, so that :func:`_correlate` calls it as a global (numba's cache does
    not keep functions that close over another jitted function: they compiled again in
    every process).
    """
    global _taps_into, _bt4, _at4, _bt5, _at5, _b5, _a5, _bt6, _at6
    jit = numba.njit(cache=True, nogil=True)
    _taps_into = jit(_taps_into)
    _bt4, _at4, _bt6, _at6 = jit(_bt4), jit(_at4), jit(_bt6), jit(_at6)
    _bt5, _at5, _b5, _a5 = jit(_bt5), jit(_at5), jit(_b5), jit(_a5)
    return SimpleNamespace(
        correlate=jit(_correlate),
        scatter=jit(_scatter),
        tiles_in={(2, 1): jit(_tiles_in2), (4, 1): jit(_tiles_in4), (2, 2): jit(_tiles_in2s2)},
        tiles_out={(2, 1): jit(_tiles_out2), (4, 1): jit(_tiles_out4), (2, 2): jit(_tiles_out2s2)},
        # the adjoint of F(2x2, 3x3) at stride 2: output tiles in, tiles added back
        adjoint_in={(2, 2): jit(_adjoint_in2s2)},
        adjoint_out={(2, 2): jit(_adjoint_out2s2)},
    )


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


# ----------------------------------------------------------- Winograd transforms (2-D)
# F(2x2, 3x3) and F(4x4, 3x3), and F(2x2, 3x3) at stride 2 (:mod:`toeplitz_conv._winograd`):
# each tile read straight from the padded signal and transformed in registers (B^T d B), each
# tile of outputs transformed (A^T m A) and written straight into place. The tile of transform
# point p = (i, j) of channel c at tile q (row-major over the block's tiles, batch innermost)
# is v[i P + j, c, q] (P points per axis).


def _bt4(d0, d1, d2, d3):
    """``B^T d`` of F(2, 3)."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


def _at4(m0, m1, m2, m3):
    """``A^T m`` of F(2, 3)."""
    return m0 + m1 + m2, m1 - m2 - m3


# constants as float32 (exact): float32 times an array's float32, float64, complex64 or
# complex128 keeps that dtype, where a Python int or float would widen float32 to float64
_TWO, _FOUR, _FIVE, _EIGHT = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


def _bt6(d0, d1, d2, d3, d4, d5):
    """``B^T d`` of F(4, 3)."""
    a, b = d4 - _FOUR * d2, d3 - _FOUR * d1
    c, e = d4 - d2, _TWO * (d3 - d1)
    return _FOUR * d0 - _FIVE * d2 + d4, a + b, a - b, c + e, c - e, _FOUR * d1 - _FIVE * d3 + d5


def _at6(m0, m1, m2, m3, m4, m5):
    """``A^T m`` of F(4, 3)."""
    a, b = m1 + m2, m1 - m2
    c, e = m3 + m4, m3 - m4
    return m0 + a + c, b + _TWO * e, a + _FOUR * c, b + _EIGHT * e + m5


def _tiles_in2(xp, v, t0, rows, cols):
    """``v[:, c, q] = B^T d B`` for the 4x4 tiles ``d`` of tile rows ``t0 .. t0 + rows``.

    `xp` is one sample's padded signal ``(C, E_1, E_2)``, `v` is ``(16, C, rows cols)``;
    tile ``q = (r, u)`` reads ``xp[c, 2 (t0 + r) .., 2 u ..]``.
    """
    for c in range(xp.shape[0]):
        for r in range(rows):
            y0 = 2 * (t0 + r)
            a0, a1, a2, a3 = xp[c, y0], xp[c, y0 + 1], xp[c, y0 + 2], xp[c, y0 + 3]
            # the columns' transforms, each once: a tile's last two are the next one's first
            k0 = _bt4(a0[0], a1[0], a2[0], a3[0])
            k1 = _bt4(a0[1], a1[1], a2[1], a3[1])
            for u in range(cols):
                x, q = 2 * u, r * cols + u
                k2 = _bt4(a0[x + 2], a1[x + 2], a2[x + 2], a3[x + 2])
                k3 = _bt4(a0[x + 3], a1[x + 3], a2[x + 3], a3[x + 3])
                for i in range(4):
                    e = _bt4(k0[i], k1[i], k2[i], k3[i])
                    for j in range(4):
                        v[4 * i + j, c, q] = e[j]
                k0, k1 = k2, k3


def _tiles_out2(m, y, t0, rows, cols):
    """``y[o, 2 (t0 + r) .., 2 u ..] = A^T m A`` for the tiles of :func:`_tiles_in2`'s
    layout; `y` is ``(C_out, 2 T_1, 2 T_2)``, whole tiles."""
    for o in range(y.shape[0]):
        for r in range(rows):
            y0 = 2 * (t0 + r)
            for u in range(cols):
                q = r * cols + u
                k0 = _at4(m[0, o, q], m[4, o, q], m[8, o, q], m[12, o, q])
                k1 = _at4(m[1, o, q], m[5, o, q], m[9, o, q], m[13, o, q])
                k2 = _at4(m[2, o, q], m[6, o, q], m[10, o, q], m[14, o, q])
                k3 = _at4(m[3, o, q], m[7, o, q], m[11, o, q], m[15, o, q])
                for i in range(2):
                    e = _at4(k0[i], k1[i], k2[i], k3[i])
                    for j in range(2):
                        y[o, y0 + i, 2 * u + j] = e[j]


def _tiles_in4(xp, v, t0, rows, cols):
    """:func:`_tiles_in2` for the 6x6 tiles of F(4x4, 3x3), 4 apart: `v` is ``(36, C, ..)``."""
    for c in range(xp.shape[0]):
        for r in range(rows):
            y0 = 4 * (t0 + r)
            a0, a1, a2 = xp[c, y0], xp[c, y0 + 1], xp[c, y0 + 2]
            a3, a4, a5 = xp[c, y0 + 3], xp[c, y0 + 4], xp[c, y0 + 5]
            # the columns' transforms, each once: a tile's last two are the next one's first
            k0 = _bt6(a0[0], a1[0], a2[0], a3[0], a4[0], a5[0])
            k1 = _bt6(a0[1], a1[1], a2[1], a3[1], a4[1], a5[1])
            for u in range(cols):
                x, q = 4 * u, r * cols + u
                k2 = _bt6(a0[x + 2], a1[x + 2], a2[x + 2], a3[x + 2], a4[x + 2], a5[x + 2])
                k3 = _bt6(a0[x + 3], a1[x + 3], a2[x + 3], a3[x + 3], a4[x + 3], a5[x + 3])
                k4 = _bt6(a0[x + 4], a1[x + 4], a2[x + 4], a3[x + 4], a4[x + 4], a5[x + 4])
                k5 = _bt6(a0[x + 5], a1[x + 5], a2[x + 5], a3[x + 5], a4[x + 5], a5[x + 5])
                for i in range(6):
                    e = _bt6(k0[i], k1[i], k2[i], k3[i], k4[i], k5[i])
                    for j in range(6):
                        v[6 * i + j, c, q] = e[j]
                k0, k1 = k4, k5


def _tiles_out4(m, y, t0, rows, cols):
    """:func:`_tiles_out2` for F(4x4, 3x3): `m` is ``(36, C_out, ..)``, 4x4 outputs a tile."""
    for o in range(y.shape[0]):
        for r in range(rows):
            y0 = 4 * (t0 + r)
            for u in range(cols):
                q = r * cols + u
                k0 = _at6(
                    m[0, o, q], m[6, o, q], m[12, o, q], m[18, o, q], m[24, o, q], m[30, o, q]
                )
                k1 = _at6(
                    m[1, o, q], m[7, o, q], m[13, o, q], m[19, o, q], m[25, o, q], m[31, o, q]
                )
                k2 = _at6(
                    m[2, o, q], m[8, o, q], m[14, o, q], m[20, o, q], m[26, o, q], m[32, o, q]
                )
                k3 = _at6(
                    m[3, o, q], m[9, o, q], m[15, o, q], m[21, o, q], m[27, o, q], m[33, o, q]
                )
                k4 = _at6(
                    m[4, o, q], m[10, o, q], m[16, o, q], m[22, o, q], m[28, o, q], m[34, o, q]
                )
                k5 = _at6(
                    m[5, o, q], m[11, o, q], m[17, o, q], m[23, o, q], m[29, o, q], m[35, o, q]
                )
                for i in range(4):
                    e = _at6(k0[i], k1[i], k2[i], k3[i], k4[i], k5[i])
                    for j in range(4):
                        y[o, y0 + i, 4 * u + j] = e[j]


def _bt5(d0, d1, d2, d3, d4):
    """``B^T d`` of F(2, 3) at stride 2."""
    return d0 - d2, d2, d4 - d2, d1, d3


def _at5(m0, m1, m2, m3, m4):
    """``A^T m`` of F(2, 3) at stride 2."""
    return m0 + m1 + m3, m1 + m2 + m4


def _tiles_in2s2(xp, v, t0, rows, cols):
    """:func:`_tiles_in2` for the 5x5 tiles of F(2x2, 3x3) at stride 2, 4 apart: `v` is
    ``(25, C, ..)``."""
    for c in range(xp.shape[0]):
        for r in range(rows):
            y0 = 4 * (t0 + r)
            a0, a1, a2 = xp[c, y0], xp[c, y0 + 1], xp[c, y0 + 2]
            a3, a4 = xp[c, y0 + 3], xp[c, y0 + 4]
            # the columns' transforms, each once: a tile's last is the next one's first
            k0 = _bt5(a0[0], a1[0], a2[0], a3[0], a4[0])
            for u in range(cols):
                x, q = 4 * u, r * cols + u
                k1 = _bt5(a0[x + 1], a1[x + 1], a2[x + 1], a3[x + 1], a4[x + 1])
                k2 = _bt5(a0[x + 2], a1[x + 2], a2[x + 2], a3[x + 2], a4[x + 2])
                k3 = _bt5(a0[x + 3], a1[x + 3], a2[x + 3], a3[x + 3], a4[x + 3])
                k4 = _bt5(a0[x + 4], a1[x + 4], a2[x + 4], a3[x + 4], a4[x + 4])
                for i in range(5):
                    e = _bt5(k0[i], k1[i], k2[i], k3[i], k4[i])
                    for j in range(5):
                        v[5 * i + j, c, q] = e[j]
                k0 = k4


def _tiles_out2s2(m, y, t0, rows, cols):
    """:func:`_tiles_out2` for F(2x2, 3x3) at stride 2: `m` is ``(25, C_out, ..)``."""
    for o in range(y.shape[0]):
        for r in range(rows):
            y0 = 2 * (t0 + r)
            for u in range(cols):
                q = r * cols + u
                k0 = _at5(m[0, o, q], m[5, o, q], m[10, o, q], m[15, o, q], m[20, o, q])
                k1 = _at5(m[1, o, q], m[6, o, q], m[11, o, q], m[16, o, q], m[21, o, q])
                k2 = _at5(m[2, o, q], m[7, o, q], m[12, o, q], m[17, o, q], m[22, o, q])
                k3 = _at5(m[3, o, q], m[8, o, q], m[13, o, q], m[18, o, q], m[23, o, q])
                k4 = _at5(m[4, o, q], m[9, o, q], m[14, o, q], m[19, o, q], m[24, o, q])
                for i in range(2):
                    e = _at5(k0[i], k1[i], k2[i], k3[i], k4[i])
                    for j in range(2):
                        y[o, y0 + i, 2 * u + j] = e[j]


# The adjoint of F(2x2, 3x3) at stride 2: ``v = A ybar A^T`` per tile of outputs, the point
# products with the conjugated transposed weights, then ``B u B^T`` added back onto the
# padded gradient (neighbouring tiles share a row and a column of it).


def _a5(y0, y1):
    """``A y`` of F(2, 3) at stride 2 (``A = (A^T)^T``, 5 x 2)."""
    return y0, y0 + y1, y1, y0, y1


def _b5(p0, p1, p2, p3, p4):
    """``B p`` of F(2, 3) at stride 2 (``B = (B^T)^T``, 5 x 5)."""
    return p0, p3, p1 - p0 - p2, p4, p2


def _adjoint_in2s2(y, v, t0, rows, cols):
    """``v[:, o, q] = A ybar A^T`` for the 2x2 tiles of outputs ``ybar`` of tile rows
    ``t0 .. t0 + rows``: `y` is one sample's ``(C_out, 2 T_1, 2 T_2)``, whole tiles; `v`
    is ``(25, C_out, rows cols)``, point ``(i, j)`` at ``5 i + j``."""
    for o in range(y.shape[0]):
        for r in range(rows):
            y0 = 2 * (t0 + r)
            for u in range(cols):
                q = r * cols + u
                c0 = _a5(y[o, y0, 2 * u], y[o, y0 + 1, 2 * u])
                c1 = _a5(y[o, y0, 2 * u + 1], y[o, y0 + 1, 2 * u + 1])
                for i in range(5):
                    e = _a5(c0[i], c1[i])
                    for j in range(5):
                        v[5 * i + j, o, q] = e[j]


def _adjoint_out2s2(m, g, t0, rows, cols):
    """``g[c, 4 (t0 + r) + a, 4 u + b] += (B M B^T)[a, b]`` for the tiles of
    :func:`_adjoint_in2s2`'s layout: `m` is ``(25, C_in, ..)``, `g` one sample's padded
    gradient ``(C_in, 4 T_1 + 1, 4 T_2 + 1)``."""
    for c in range(g.shape[0]):
        for r in range(rows):
            y0 = 4 * (t0 + r)
            for u in range(cols):
                x0, q = 4 * u, r * cols + u
                k0 = _b5(m[0, c, q], m[1, c, q], m[2, c, q], m[3, c, q], m[4, c, q])
                k1 = _b5(m[5, c, q], m[6, c, q], m[7, c, q], m[8, c, q], m[9, c, q])
                k2 = _b5(m[10, c, q], m[11, c, q], m[12, c, q], m[13, c, q], m[14, c, q])
                k3 = _b5(m[15, c, q], m[16, c, q], m[17, c, q], m[18, c, q], m[19, c, q])
                k4 = _b5(m[20, c, q], m[21, c, q], m[22, c, q], m[23, c, q], m[24, c, q])
                for b in range(5):
                    e = _b5(k0[b], k1[b], k2[b], k3[b], k4[b])
                    for a in range(5):
                        g[c, y0 + a, x0 + b] += e[a]

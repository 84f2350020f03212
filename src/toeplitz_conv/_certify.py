r"""Certificates that prove upper bounds on a conv layer's spectral norm.

* the maximum of the symbol over a frequency grid, by branch and bound with
  Cholesky proofs (Rump's rounding margins) where an SVD is not needed;
* the circulant embedding's lengths and the peak's angle;
* the boundary terms of reflect/replicate padding;
* a banded Cholesky of ``mu^2 I - M^H M``.
"""

from __future__ import annotations

import math

import numpy as np

from ._layer import Layer
from ._symbol import _EPS, _gram_terms, _svdvals, _Symbol, _top_bounds

_GRAM_FLOPS = 4e9  # most work (columns x bandwidth^2) for a banded-Cholesky certificate
_GRAM_ENTRIES = 2e7  # most nonzeros of its Gram matrix (built sparse, then banded)
_COARSE = 17  # grid points evaluated first by the branch and bound
_SHORT_RANGE = 16  # ranges this short have all their grid points evaluated at once


def _prove_below(sym: _Symbol, theta: np.ndarray, mu: np.ndarray) -> np.ndarray:
    r"""Which ``sigma_max(A(theta_i)) < mu_i`` a Cholesky factorisation proves (bool per angle).

    ``mu^2 I - B^H B`` (the smaller Gram matrix, :func:`_gram_terms`) is
    positive definite iff ``sigma_max(A) < mu``. It is shifted down by ``delta``
    (the rounding of the computed Gram matrix) plus ``8 (n + 2) eps tr(mu^2 I)``
    (more than Rump's bound, BIT 46 (2006) 433, for the rounding of a Cholesky
    factorisation that runs to completion, and of forming the diagonal); if the
    factorisation of that succeeds, the exact ``mu^2 I - B^H B`` is positive
    definite. A ``False`` proves nothing (the caller evaluates the SVD there).
    """
    from scipy.linalg.lapack import get_lapack_funcs

    d, S, delta = _gram_terms(sym)
    groups, _, k, _ = S.shape
    theta = np.asarray(theta, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    ok = np.zeros(theta.size, dtype=bool)
    live = np.nonzero(mu > 0)[0]
    if live.size == 0 or k == 0:
        return mu > 0
    phase = np.outer(theta[live], d)
    cos, sin = np.cos(phase), np.sin(phase)
    flat = S.transpose(1, 0, 2, 3).reshape(d.size, -1)
    mu2 = mu[live] ** 2
    shift = mu2[:, None] * (1 - 8 * (k + 2) * k * _EPS) - delta[None, :]  # (live, groups)
    (potrf,) = get_lapack_funcs(("potrf",), (np.zeros(1, dtype=np.complex128),))
    chunk = 8  # one small buffer, reused: a fresh multi-megabyte array costs page faults
    buf = np.empty((min(chunk, live.size), flat.shape[1]), dtype=np.complex128)
    diag = np.arange(k) * (k + 1)
    for start in range(0, live.size, chunk):
        sl = slice(start, min(start + chunk, live.size))
        G = buf[: sl.stop - sl.start]
        if flat.dtype.kind != "c":
            np.matmul(cos[sl], flat, out=G.real)
            np.matmul(sin[sl], flat, out=G.imag)
        else:
            np.matmul(cos[sl] + 1j * sin[sl], flat, out=G)
        np.negative(G, out=G)
        blocks = G.reshape(G.shape[0], groups, k * k)
        blocks[:, :, diag] += shift[sl, :, None]
        blocks = blocks.reshape(G.shape[0], groups, k, k)
        for i in range(G.shape[0]):
            ok[live[start + i]] = bool(np.all(shift[start + i] > 0)) and all(
                potrf(blocks[i, g], lower=1, overwrite_a=1, clean=0)[1] == 0 for g in range(groups)
            )
    return ok


# --------------------------------------------------------------------------- grid maximum
def _grid_max(
    sym: _Symbol, n: int, *, rtol: float, threshold: float = 0.0
) -> tuple[float, float, int]:
    r"""Certified maximum of ``sigma_max(A(2 pi f / n))`` over the grid ``f``.

    Branch and bound over ranges ``[a, b]`` of grid indices whose ends are
    evaluated exactly (one batched SVD per level). On a range of half-width
    ``h`` (in angle) the symbol is the linear interpolation of its ends plus a
    remainder, ``e^{i q t} - L(t) = O(q^2 (h^2 - t^2) / 2)``, and ``sigma_max``
    is convex, so every point inside obeys

    .. math::

        \sigma_{\max}(A(t)) \le \max\big(\sigma_{\max}(A(t_a)),
        \sigma_{\max}(A(t_b))\big) + \frac{h^2}{2} \sum_j \|Q_j\|_2 (q_j - c)^2

    (any phase centre ``c``: ``e^{-i t c} A(t)`` has the same singular values).
    A range is dropped once that is ``<= max(threshold, best * (1 + rtol))``,
    else its midpoint is evaluated and it is split in two.

    Returns ``(upper, best, f_best)``: every grid value is ``<= upper``, and grid
    point ``f_best`` attains ``best``.
    """
    return _grid_max_search(sym, n, rtol=rtol, threshold=threshold)


def _range_bound(va: np.ndarray, vb: np.ndarray, h: np.ndarray, curvature: float) -> np.ndarray:
    r"""Upper bound of ``sigma_max(A(t))`` on ranges of half-width `h` with end values `va`, `vb`.

    With ``t = centre + tau``, convexity bounds ``sigma_max`` of the linear
    interpolation by the line through the ends, and the remainder adds at most
    ``C (h^2 - tau^2) / 2`` (``C`` the curvature):

    .. math::

        \sigma_{\max}(A(t)) \le m + \delta \tau + \tfrac{C}{2}(h^2 - \tau^2),
        \quad m = \tfrac{v_a + v_b}{2},\ \delta = \tfrac{v_b - v_a}{2h},

    whose maximum over ``|tau| <= h`` is ``m + C h^2/2 + delta^2 / (2C)`` at
    ``tau = delta / C`` when that is inside, else ``max(v_a, v_b)``; never more
    than ``max(v_a, v_b) + C h^2 / 2``. A relative margin of 256 ulps covers
    the rounding of this arithmetic and of the end values.
    """
    top = np.maximum(va, vb)
    if curvature <= 0:
        return top * (1 + 256 * _EPS)
    diff = np.abs(vb - va)
    ch2 = curvature * h * h
    inner = 0.5 * (va + vb) + 0.5 * ch2 + diff * diff / (8 * np.where(ch2 > 0, ch2, 1))
    bound = np.where(diff < 2 * ch2, np.maximum(inner, top), top)
    return bound * (1 + 256 * _EPS)


def _grid_max_search(
    sym: _Symbol, n: int, *, rtol: float, threshold: float
) -> tuple[float, float, int]:
    last = n // 2 if sym.real else n - 1  # the last frequency of _frequencies(n, real)
    spacing = 2 * np.pi / n
    points = np.unique(np.linspace(0, last, min(last + 1, _COARSE)).astype(np.int64))

    def evaluate(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds ``lo <= value <= hi`` at grid points `f` (exact SVDs when rtol is 0)."""
        if rtol > 0 or threshold > 0:
            lo, hi = _top_bounds(sym, f * spacing)
        else:
            lo = hi = _svdvals(sym(f * spacing))[..., 0].max(axis=-1)
        sym.seen.update(zip(((n, int(g)) for g in f), lo.tolist(), strict=True))
        return lo, hi

    low, values = evaluate(points)
    i = int(np.argmax(low))
    best, f_best = float(low[i]), int(points[i])
    top = float(values.max())
    a, b = points[:-1], points[1:]
    va, vb = values[:-1], values[1:]
    upper_dropped = upper_proved = 0.0
    while a.size:
        h = 0.5 * spacing * (b - a)
        bound = _range_bound(va, vb, h, sym.curvature)
        cut = max(threshold, best * (1 + rtol))
        drop = (bound <= cut) | (b - a <= 1)  # b - a <= 1: no grid point inside
        inside = drop & (b - a > 1)
        if np.any(inside):
            upper_dropped = max(upper_dropped, float(bound[inside].max()))
        a, b, va, vb = a[~drop], b[~drop], va[~drop], vb[~drop]
        if not a.size:
            break
        # short ranges are finished at once (all their points); long ones are halved
        short = b - a <= _SHORT_RANGE
        mid = (a[~short] + b[~short]) // 2
        rest = [np.arange(lo + 1, hi) for lo, hi in zip(a[short], b[short], strict=True)]
        new = np.concatenate([mid, *rest])
        # a point only has to be proved below a level: a Cholesky factorisation proves that
        # (_prove_below) at a tenth of the cost of an SVD; the SVD is kept where it fails
        aim = max(threshold, best * (1 + rtol / 4)) / (1 + 256 * _EPS)
        half = 0.5 * spacing * np.maximum(mid - a[~short], b[~short] - mid)
        level = np.concatenate(
            [aim - 0.5 * sym.curvature * half * half, np.full(new.size - mid.size, aim)]
        )
        proved = _prove_below(sym, new * spacing, level)
        vnew = level.copy()
        if np.any(proved):
            upper_proved = max(upper_proved, float(level[proved].max()))
        if not np.all(proved):
            low, vnew[~proved] = evaluate(new[~proved])
            top = max(top, float(vnew[~proved].max()))
            i = int(np.argmax(low))
            if low[i] > best:
                best, f_best = float(low[i]), int(new[~proved][i])
        vm = vnew[: mid.size]
        a, b, va, vb = a[~short], b[~short], va[~short], vb[~short]
        a, b = np.concatenate([a, mid]), np.concatenate([mid, b])
        va, vb = np.concatenate([va, vm]), np.concatenate([vm, vb])
    return max(top * (1 + 256 * _EPS), upper_dropped, upper_proved), best, f_best


def _gram_certificate(layer: Layer, mu: float) -> float | None:
    """Prove ``||M|| <= ~mu`` by a banded Cholesky of ``mu^2 I - M^H M``, if affordable.

    In position-major column order ``(l, c)`` the Gram matrix ``M^H M`` is banded
    (a row reads samples at most ``d(K-1)`` apart, and reflect/replicate only
    fold them closer), so Cholesky costs ``O(C_in L b^2)`` for bandwidth ``b``.
    If it succeeds, ``mu^2 I - M^H M`` is positive definite up to rounding, and
    the returned bound adds a margin for that rounding. ``None`` when the
    factorisation fails or would be too large (or circular padding wraps the band).
    """
    from scipy.linalg import LinAlgError, cholesky_banded

    from .matrices import conv1d_matrix

    g = layer.geom
    c_in, L = layer.in_channels, g.input_length
    n = c_in * L
    span = g.dilation * (g.kernel_size - 1)
    band = c_in * (span + 1)  # bound on the bandwidth in position-major order
    too_big = n * band * band > _GRAM_FLOPS or n * (2 * band + 1) > _GRAM_ENTRIES
    if g.padding_mode == "circular" or too_big:
        return None
    M = conv1d_matrix(
        layer.weight,
        L,
        stride=g.stride,
        padding=(g.pad_left, g.pad_right),
        dilation=g.dilation,
        groups=layer.groups,
        padding_mode=g.padding_mode,
        format="csc",
    )
    perm = (np.arange(n) % c_in) * L + np.arange(n) // c_in  # new column j <- old perm[j]
    Mp = M[:, perm]
    G = (Mp.conj().T @ Mp).tocoo()
    lower_part = G.row >= G.col
    rows, cols, vals = G.row[lower_part], G.col[lower_part], G.data[lower_part]
    b = int((rows - cols).max()) if rows.size else 0
    ab = np.zeros((b + 1, n), dtype=G.dtype)
    ab[rows - cols, cols] = -vals
    ab[0] += mu * mu
    size = float(np.abs(G).sum(axis=1).max()) + mu * mu  # >= ||mu^2 I - G||_2
    try:
        cholesky_banded(ab, lower=True, check_finite=False)
    except LinAlgError:
        return None
    slack = 8 * (b + 2 + layer.weight.shape[1] * g.kernel_size) * _EPS * size
    return math.sqrt(mu * mu + slack)


def _embedding_lengths(layer: Layer, theta: float, count: int) -> list[int]:
    """Polyphase lengths ``n = N / s`` of circulants that embed the layer, best first.

    Any ``N >= L + p_l + p_r`` with ``s | N`` embeds it; ``||C_N||`` is the
    symbol's maximum over the grid ``2 pi f / n``, so the least bound comes
    from a grid whose points straddle the peak ``theta``: among the next 64
    lengths, those that put ``theta`` closest to the middle between two points.
    """
    g = layer.geom
    n0 = -(-(g.input_length + g.pad_left + g.pad_right) // g.stride)
    if count == 1:  # no peak known yet: an odd length at least misses a peak at pi
        return [n0 + 1 - n0 % 2]
    n = np.arange(n0 + 1, n0 + 65)
    offset = theta * n / (2 * np.pi)
    miss = np.abs(offset - np.round(offset))
    best = n[np.argsort(-miss, kind="stable")[: count - 1]]
    return [n0, *(int(b) for b in best)]


def _refine_peak(sym: _Symbol, f: int, n: int) -> float:
    """The angle of the symbol's peak near grid point `f`, by a parabola through three points.

    For real weights the symbol's singular values are even about 0 and pi, so a
    peak found there is exactly there.
    """
    spacing = 2 * np.pi / n
    if sym.real and (f == 0 or 2 * f == n):
        return f * spacing
    around = [f - 1, f, f + 1]
    missing = np.array([g for g in around if (n, g) not in sym.seen])
    if missing.size:
        values, _ = _top_bounds(sym, missing * spacing)  # to ~1e-12: plenty for a parabola
        sym.seen.update(zip(((n, int(g)) for g in missing), values.tolist(), strict=True))
    v = [sym.seen[(n, g)] for g in around]
    curvature = v[0] - 2 * v[1] + v[2]
    if curvature >= 0:
        return f * spacing
    return (f + float(np.clip(0.5 * (v[0] - v[2]) / curvature, -0.5, 0.5))) * spacing


def _copies(layer: Layer) -> int:
    """Most padded positions that read one sample (``||P||^2``)."""
    g = layer.geom
    src = g.padded_sources()
    return int(np.bincount(src[src >= 0], minlength=g.input_length).max())


def _boundary_norm(layer: Layer) -> float:
    """``||M - M_zeros||_2``, exact: nonzero only on rows whose taps read padding."""
    g = layer.geom
    rows = g.boundary_rows()
    if rows.size == 0:
        return 0.0
    pos = g.positions(rows)  # (rows, K) sources, -1 where nothing
    raw = rows[:, None] * g.stride + np.arange(g.kernel_size) * g.dilation - g.pad_left
    outside = (raw < 0) | (raw >= g.input_length)
    cols = np.unique(pos[outside & (pos >= 0)])
    if cols.size == 0:
        return 0.0
    c_out, G, K = layer.weight.shape
    groups = layer.groups
    w = layer.weight.reshape(groups, c_out // groups, G, K)
    # E[(o, row), (c, col)] = sum of W[o, c, k] over the outside taps k with src = col
    E = np.zeros((rows.size, cols.size, groups, c_out // groups, G), dtype=layer.weight.dtype)
    col_index = np.searchsorted(cols, np.where(pos >= 0, pos, cols[0]))
    for k in range(K):
        hit = np.nonzero(outside[:, k] & (pos[:, k] >= 0))[0]
        np.add.at(E, (hit, col_index[hit, k]), w[..., k])
    E = E.transpose(2, 3, 0, 4, 1).reshape(groups, (c_out // groups) * rows.size, -1)
    return float(np.linalg.norm(E, ord=2, axis=(1, 2)).max())

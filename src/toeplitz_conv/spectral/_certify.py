r"""Certificates that prove upper bounds on a conv layer's spectral norm.

* the maximum of the symbol over a frequency grid, by branch and bound with
  Cholesky proofs (Rump's rounding margins) where an SVD is not needed;
* the circulant embedding's lengths and the peak's angle;
* the boundary terms of reflect/replicate padding;
* a banded Cholesky of ``mu^2 I - M^H M``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._layer import Layer
from .._linop import LayerOperator
from .._threads import blas_threads
from ._blockgram import block_gram_certificate, block_gram_cost, predicted_seconds
from ._symbol import EPS, Symbol, gram_terms, svdvals, top_bounds

if TYPE_CHECKING:
    from scipy.sparse.linalg import LinearOperator

    # a point of the embedding grid: an int per axis (one int in 1-D)
    _GridPoint = int | np.integer | Sequence[int] | np.ndarray

__all__ = [
    "GRAM_BYTES_ND",
    "band_cholesky",
    "boundary_norm",
    "copies",
    "embedding_lengths",
    "gram_affordable",
    "gram_bound",
    "gram_certificate",
    "grid_max",
    "nd_gram_affordable",
    "peak_drop",
    "probed_window_gram",
    "refine_peak",
]

_GRAM_FLOPS = 4e9  # most work (columns x bandwidth^2) for a banded-Cholesky certificate
_GRAM_ENTRIES = 2e7  # most nonzeros of its Gram matrix (built sparse, then banded)
_GRAM_FLOPS_ND = 1e14  # most flops of an N-d block-Cholesky certificate, whatever the time
_GRAM_FLOPS_DEFAULT = 1.2e13  # ... without a time limit (~2 min at 100 GFLOP/s)
GRAM_BYTES_ND = 2**31  # most memory of its blocks
_COARSE = 17  # grid points evaluated first by the branch and bound
_SHORT_RANGE = 16  # ranges this short have all their grid points evaluated at once


def _prove_below(sym: Symbol, theta: np.ndarray, mu: np.ndarray) -> np.ndarray:
    r"""Which ``sigma_max(A(theta_i)) < mu_i`` a Cholesky factorisation proves (bool per angle).

    ``mu^2 I - B^H B`` (the smaller Gram matrix, :func:`gram_terms`) is
    positive definite iff ``sigma_max(A) < mu``. It is shifted down by ``delta``
    (the rounding of the computed Gram matrix) plus ``8 (n + 2) eps tr(mu^2 I)``
    (more than Rump's bound, BIT 46 (2006) 433, for the rounding of a Cholesky
    factorisation that runs to completion, and of forming the diagonal); if the
    factorisation of that succeeds, the exact ``mu^2 I - B^H B`` is positive
    definite. A ``False`` proves nothing (the caller evaluates the SVD there).
    """
    from scipy.linalg.lapack import get_lapack_funcs

    d, S, delta = gram_terms(sym)
    groups, _, k, _ = S.shape
    theta = sym.angles(theta)
    mu = np.asarray(mu, dtype=np.float64)
    ok = np.zeros(theta.shape[0], dtype=bool)
    live = np.nonzero(mu > 0)[0]
    if live.size == 0 or k == 0:
        return mu > 0
    phase = theta[live] @ d.T
    cos, sin = np.cos(phase), np.sin(phase)
    flat = S.transpose(1, 0, 2, 3).reshape(d.shape[0], -1)
    mu2 = mu[live] ** 2
    shift = mu2[:, None] * (1 - 8 * (k + 2) * k * EPS) - delta[None, :]  # (live, groups)
    # a tuple of names gives a tuple of functions (the stubs type the one-name form only)
    (potrf,) = get_lapack_funcs(("potrf",), (np.zeros(1, dtype=np.complex128),))  # type: ignore[misc]
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
        blocks: np.ndarray = G.reshape(G.shape[0], groups, k * k)
        blocks[:, :, diag] += shift[sl, :, None]
        blocks = blocks.reshape(G.shape[0], groups, k, k)
        for i in range(G.shape[0]):
            ok[live[start + i]] = bool(np.all(shift[start + i] > 0)) and all(
                potrf(blocks[i, g], lower=1, overwrite_a=1, clean=0)[1] == 0 for g in range(groups)
            )
    return ok


# --------------------------------------------------------------------------- grid maximum
def grid_max(
    sym: Symbol,
    n: int | tuple[int, ...],
    *,
    rtol: float,
    threshold: float = 0.0,
    deadline: float | None = None,
) -> tuple[float, float, int | tuple[int, ...]]:
    r"""Certified maximum of ``sigma_max(A(2 pi f / n))`` over the grid ``f`` (n axes).

    Branch and bound over boxes ``[a, b]`` of grid indices (``[a_1, b_1] x ...``)
    whose corners are evaluated (batched, one level at a time). The symbol's
    multilinear interpolation from the corners is a convex combination of corner
    values, and ``sigma_max`` is convex; the interpolation error of
    ``e^{i q.t}`` is at most ``sum_a q_a^2 (h_a^2 - tau_a^2) / 2`` (one 1-D
    linear interpolation per axis, each of norm 1), so every point inside a box
    of half-widths ``h_a`` obeys

    .. math::

        \sigma_{\max}(A(t)) \le \max_{\text{corners}} \sigma_{\max}
        + \sum_a \frac{h_a^2}{2} \sum_j \|Q_j\|_2 (q_{ja} - c_a)^2

    (any phase centre ``c``: ``e^{-i t.c} A(t)`` has the same singular values;
    an axis on which the box holds no grid point between its ends adds nothing,
    as only grid points matter). In 1-D the line through the two ends is used
    (tighter). A box is dropped once that is ``<= max(threshold, best * (1 +
    rtol))``, else it is halved along the axis contributing most.

    Past `deadline` (``time.monotonic()``, checked once per level after the
    coarse grid) the boxes still open contribute their bound as it stands, so
    ``upper`` stays a valid, if looser, bound.

    Returns ``(upper, best, f_best)``: every grid value is ``<= upper``, and grid
    point ``f_best`` (an int for an int `n`) attains ``best``.
    """
    with blas_threads(1):
        if isinstance(n, (int, np.integer)):
            upper, best, f = _grid_max_search(
                sym, (int(n),), rtol=rtol, threshold=threshold, deadline=deadline
            )
            return upper, best, f[0]
        return _grid_max_search(
            sym, tuple(int(v) for v in n), rtol=rtol, threshold=threshold, deadline=deadline
        )


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
        return top * (1 + 256 * EPS)
    diff = np.abs(vb - va)
    ch2 = curvature * h * h
    inner = 0.5 * (va + vb) + 0.5 * ch2 + diff * diff / (8 * np.where(ch2 > 0, ch2, 1))
    bound = np.where(diff < 2 * ch2, np.maximum(inner, top), top)
    return bound * (1 + 256 * EPS)


def _box_bound(cv: np.ndarray, h: np.ndarray, curvature: np.ndarray) -> np.ndarray:
    """The bound of :func:`grid_max` on boxes with corner values `cv` ``(B, 2^n)``, half-widths
    `h` ``(B, n)`` (zero on axes without an inner grid point)."""
    if h.shape[1] == 1:
        return _range_bound(cv[:, 0], cv[:, 1], h[:, 0], float(curvature[0]))
    return (cv.max(axis=1) + 0.5 * (h * h) @ curvature) * (1 + 256 * EPS)


def _corner_points(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The ``2^n`` corners of each box, ``(B, 2^n, n)``; corner ``c`` takes ``hi`` on axis ``a``
    when bit ``n-1-a`` of ``c`` is set (row-major)."""
    n = lo.shape[1]
    bits = (np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1  # (2^n, n)
    return np.where(bits[None].astype(bool), hi[:, None, :], lo[:, None, :])


_COARSE_ND = {1: _COARSE, 2: 9, 3: 5}  # coarse points per axis


def _grid_max_search(
    sym: Symbol,
    n: tuple[int, ...],
    *,
    rtol: float,
    threshold: float,
    deadline: float | None = None,
) -> tuple[float, float, tuple[int, ...]]:
    nax = len(n)
    last = np.array([*(v - 1 for v in n[:-1]), n[-1] // 2 if sym.real else n[-1] - 1])
    spacing = 2 * np.pi / np.array(n, dtype=np.float64)
    curvature = np.asarray(sym.curvature, dtype=np.float64)
    bits = (np.arange(2**nax)[:, None] >> np.arange(nax - 1, -1, -1)[None, :]) & 1

    def evaluate(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds ``lo <= value <= hi`` at grid points `f` ``(T, n)`` (SVDs when rtol is 0)."""
        if rtol > 0 or threshold > 0:
            lo, hi = top_bounds(sym, f * spacing)
        else:
            lo = hi = svdvals(sym(f * spacing))[..., 0].max(axis=-1)
        sym.seen.update(zip(((n, tuple(map(int, g))) for g in f), lo.tolist(), strict=True))
        return lo, hi

    axes = [
        np.unique(np.linspace(0, last[a], min(last[a] + 1, _COARSE_ND[nax])).astype(np.int64))
        for a in range(nax)
    ]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, nax)
    best, f_best, top = 0.0, tuple(int(v) for v in points[0]), 0.0
    values = np.full(points.shape[0], threshold)
    proved = _prove_below(sym, points * spacing, values) if threshold > 0 else values < 0
    upper_proved = threshold if np.any(proved) else 0.0
    if not np.all(proved):  # below the threshold needs only a Cholesky proof; else evaluate
        low, values[~proved] = evaluate(points[~proved])
        i = int(np.argmax(low))
        best, f_best = float(low[i]), tuple(int(v) for v in points[~proved][i])
        top = float(values[~proved].max())
    lo_b, hi_b, cv = _coarse_cells(axes, values, bits)
    upper_dropped = 0.0
    while lo_b.shape[0]:
        width = hi_b - lo_b
        h = np.where(width > 1, 0.5 * spacing * width, 0.0)
        bound = _box_bound(cv, h, curvature)
        cut = max(threshold, best * (1 + rtol))
        empty = np.all(width <= 1, axis=1)  # every grid point is a corner
        drop = (bound <= cut) | empty
        inside = drop & ~empty
        if np.any(inside):
            upper_dropped = max(upper_dropped, float(bound[inside].max()))
        keep = ~drop
        lo_b, hi_b, cv, width, h = lo_b[keep], hi_b[keep], cv[keep], width[keep], h[keep]
        if not lo_b.shape[0]:
            break
        if deadline is not None and time.monotonic() >= deadline:
            upper_dropped = max(upper_dropped, float(bound[keep].max()))  # open boxes as they are
            break
        aim = max(threshold, best * (1 + rtol / 4)) / (1 + 256 * EPS)
        # small boxes are finished at once (all their points); larger ones are halved
        short = np.prod(width + 1, axis=1) <= _SHORT_RANGE + 1
        inside = [
            p
            for a_, b_ in zip(lo_b[short], hi_b[short], strict=True)
            for p in _inner_points(a_, b_)
        ]
        rest = np.array(inside, dtype=np.int64).reshape(-1, nax)
        L_lo, L_hi, L_cv, L_h = lo_b[~short], hi_b[~short], cv[~short], h[~short]
        axis, mid, h_child, face = _halve(L_lo, L_hi, L_h, spacing, curvature)
        lev_face = aim - 0.5 * (h_child * h_child) @ curvature
        new = np.concatenate([face.reshape(-1, nax), rest])
        level = np.concatenate([np.repeat(lev_face, 2**nax), np.full(rest.shape[0], aim)])
        # each distinct point once, at the lowest level asked of it
        flat = np.ravel_multi_index(tuple(new.T), n) if new.size else np.zeros(0, np.int64)
        uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        u_level = np.full(uniq.size, np.inf)
        np.minimum.at(u_level, inverse, level)
        u_pts = new[first]
        # a point only has to be proved below a level: a Cholesky factorisation proves that
        # (_prove_below) at a tenth of the cost of an SVD; the SVD is kept where it fails
        proved = _prove_below(sym, u_pts * spacing, u_level)
        u_val = u_level.copy()
        if np.any(proved):
            upper_proved = max(upper_proved, float(u_level[proved].max()))
        if not np.all(proved):
            low, u_val[~proved] = evaluate(u_pts[~proved])
            top = max(top, float(u_val[~proved].max()))
            i = int(np.argmax(low))
            if low[i] > best:
                best, f_best = float(low[i]), tuple(int(v) for v in u_pts[~proved][i])
        vals = u_val[inverse[: face.shape[0] * 2**nax]].reshape(-1, 2**nax)
        lo_b, hi_b, cv = _children(L_lo, L_hi, L_cv, vals, axis, mid, bits)
    return max(top * (1 + 256 * EPS), upper_dropped, upper_proved), best, f_best


def _coarse_cells(
    axes: list[np.ndarray], values: np.ndarray, bits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells of the coarse grid (points `axes` per axis, `values` at them, flat):
    ``(lo, hi, corner values)``, shapes ``(B, n)``, ``(B, n)``, ``(B, 2^n)``."""
    nax = len(axes)
    cells = [np.arange(max(1, ax.size - 1)) for ax in axes]
    idx = np.stack(np.meshgrid(*cells, indexing="ij"), axis=-1).reshape(-1, nax)
    ends = np.array([ax.size - 1 for ax in axes])
    nxt = np.minimum(idx + 1, ends)
    lo_b = np.stack([axes[a][idx[:, a]] for a in range(nax)], axis=1)
    hi_b = np.stack([axes[a][nxt[:, a]] for a in range(nax)], axis=1)
    shape = tuple(ax.size for ax in axes)
    table = values.reshape(shape)
    corner_idx = np.where(bits[None].astype(bool), nxt[:, None, :], idx[:, None, :])
    return lo_b, hi_b, table[tuple(corner_idx[..., a] for a in range(nax))]


def _halve(
    lo: np.ndarray, hi: np.ndarray, h: np.ndarray, spacing: np.ndarray, curvature: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split each box ``[lo, hi]`` (half-widths `h`) on the axis whose curvature term is
    largest, at its middle: ``(axis, mid, the children's half-widths, the face at mid)``.

    The face is the ``2^n`` corners with `axis` replaced by ``mid`` (pairs equal),
    ``(B, 2^n, n)``.
    """
    axis = np.argmax(np.where(hi - lo > 1, h * h * curvature + 1e-300 * (hi - lo), -1.0), axis=1)
    rows = np.arange(lo.shape[0])
    mid = (lo[rows, axis] + hi[rows, axis]) // 2
    half_child = 0.5 * spacing[axis] * np.maximum(mid - lo[rows, axis], hi[rows, axis] - mid)
    h_child = h.copy()
    h_child[rows, axis] = np.where(
        np.maximum(mid - lo[rows, axis], hi[rows, axis] - mid) > 1, half_child, 0.0
    )
    face = _corner_points(lo, hi)
    face[rows, :, axis] = mid[:, None]
    return axis, mid, h_child, face


def _children(
    lo: np.ndarray,
    hi: np.ndarray,
    cv: np.ndarray,
    vals: np.ndarray,
    axis: np.ndarray,
    mid: np.ndarray,
    bits: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two halves of each box split by :func:`_halve`, with their corner values: the low
    half takes the face's values `vals` where `axis` is set, the high half where not."""
    rows = np.arange(lo.shape[0])
    on = bits[:, axis].T.astype(bool)  # (B, 2^n): corner c is on the hi side of `axis`
    cv_low = np.where(on, vals, cv)
    cv_high = np.where(on, cv, vals)
    hi_low = hi.copy()
    hi_low[rows, axis] = mid
    lo_high = lo.copy()
    lo_high[rows, axis] = mid
    return (
        np.concatenate([lo, lo_high]),
        np.concatenate([hi_low, hi]),
        np.concatenate([cv_low, cv_high]),
    )


def _inner_points(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The grid points of the box ``[lo, hi]`` that are not corners, ``(P, n)``."""
    grids = np.meshgrid(*(np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)), indexing="ij")
    pts = np.stack(grids, axis=-1).reshape(-1, lo.size)
    corner = np.all((pts == lo) | (pts == hi), axis=1)
    return pts[~corner]


def gram_bound(
    layer: Layer, lower: float, upper: float, rtol: float, deadline: float | None = None
) -> float | None:
    """The least upper bound the Gram certificates prove above `lower`, or ``None``.

    Tries ``mu = lower (1 + rtol/2)`` and ``lower (1 + 0.9 rtol)`` (a bracket of
    relative width `rtol`); if both fail (the lower end is not that close yet),
    ``lower (1 + t)`` for ``t`` in 1e-4, 1e-3, 1e-2, 0.1 while below `upper`, so
    that the bracket still narrows. Each try is one factorisation
    (:func:`gram_certificate`), started only while it is affordable (in N-d its
    predicted time fits before the `deadline`, ``time.monotonic()``, which is
    also checked inside it).
    """
    slacks = [rtol / 2, rtol * 0.9, *(t for t in (1e-4, 1e-3, 1e-2, 0.1) if t > rtol)]
    for slack in slacks:
        mu = lower * (1 + slack)
        if mu >= upper or (deadline is not None and time.monotonic() >= deadline):
            return None
        cert = gram_certificate(layer, mu, deadline)
        if cert is not None:
            return cert
    return None


def nd_gram_affordable(layer: Layer, deadline: float | None = None) -> bool:
    """Whether the N-d block-Cholesky certificate fits its budgets (never for 1-D or circular).

    Its blocks must fit in ``GRAM_BYTES_ND`` bytes and its flops under
    ``_GRAM_FLOPS_ND``. With a `deadline` (``time.monotonic()``) its time predicted
    from the rate this machine reaches (:func:`._blockgram.predicted_seconds`) must
    fit before it; without one (no time limit: the answer must not depend on the
    machine's speed or load) its flops must be at most ``_GRAM_FLOPS_DEFAULT``.
    """
    if layer.ndim == 1 or any(g.padding_mode == "circular" for g in layer.geoms):
        return False
    flops, nbytes = block_gram_cost(layer)
    if flops > _GRAM_FLOPS_ND or nbytes > GRAM_BYTES_ND:
        return False
    if deadline is None:
        return flops <= _GRAM_FLOPS_DEFAULT
    return flops < 1e9 or predicted_seconds(flops) <= deadline - time.monotonic()


def gram_affordable(layer: Layer, deadline: float | None = None) -> bool:
    """Whether :func:`gram_certificate` would run: :func:`nd_gram_affordable` in N-d; in
    1-D (not circular) its band has at most ``_GRAM_ENTRIES`` nonzeros and
    ``_GRAM_FLOPS`` work."""
    if layer.ndim != 1:
        return nd_gram_affordable(layer, deadline)
    g = layer.geom
    n = layer.in_channels * g.input_length
    band = layer.in_channels * (g.dilation * (g.kernel_size - 1) + 1)  # position-major
    too_big = n * band * band > _GRAM_FLOPS or n * (2 * band + 1) > _GRAM_ENTRIES
    return g.padding_mode != "circular" and not too_big


def gram_certificate(layer: Layer, mu: float, deadline: float | None = None) -> float | None:
    """Prove ``||M|| <= ~mu`` by a banded Cholesky of ``mu^2 I - M^H M``, if affordable.

    In position-major column order ``(l, c)`` the Gram matrix ``M^H M`` is banded
    (a row reads samples at most ``d(K-1)`` apart, and reflect/replicate only
    fold them closer), so Cholesky costs ``O(C_in L b^2)`` for bandwidth ``b``;
    the band comes from ``C_in (2 d (K-1) + 1)`` products with ``M^H M``
    (:func:`probed_window_gram`).
    If it succeeds, ``mu^2 I - M^H M`` is positive definite up to rounding, and
    the returned bound adds a margin for that rounding. ``None`` when the
    factorisation fails or would be too large (or circular padding wraps the band).
    ``n >= 2`` axes: the block-row factorisation of :mod:`._blockgram` (blocks of
    one slice of the cheapest axis, Gram blocks from the weights) while
    :func:`nd_gram_affordable`: its predicted time fits before `deadline` (without
    one, its flops in ``_GRAM_FLOPS_DEFAULT``) and its blocks in ``GRAM_BYTES_ND``
    bytes; it stops at `deadline`, or as soon as its rate shows it cannot finish
    by then.
    """

    if not gram_affordable(layer, deadline):
        return None
    if layer.ndim != 1:
        return block_gram_certificate(layer, mu, deadline)
    g = layer.geom
    c_in, L = layer.in_channels, g.input_length
    span = g.dilation * (g.kernel_size - 1)
    op = LayerOperator(layer)
    gram = probed_window_gram(op, c_in, L, np.arange(L), span)
    return band_cholesky(gram, mu, (layer.weight.shape[0] + layer.weight.shape[1]) * g.kernel_size)


def band_cholesky(ab: np.ndarray, mu: float, terms: int) -> float | None:
    """Prove ``lambda_max(G) <= ~mu^2`` for a Hermitian banded ``G`` (lower storage `ab`).

    Factorises ``mu^2 I - G`` (in place of `ab`); on success returns ``mu``
    lifted by Rump's margin for the factorisation and for `terms` roundings in
    each entry of ``G`` (relative to ``||mu^2 I - G||_inf``), else ``None``.
    """
    from scipy.linalg import LinAlgError, cholesky_banded

    b, n = ab.shape[0] - 1, ab.shape[1]
    mags = np.abs(ab)
    rowsum = mags.sum(axis=0)  # entries below the diagonal in each column...
    for d in range(1, min(b, n - 1) + 1):  # ...and those left of it in each row
        rowsum[d:] += mags[d, : n - d]
    size = float(rowsum.max(initial=0.0)) + mu * mu  # >= ||mu^2 I - G||_2
    np.negative(ab, out=ab)
    ab[0] += mu * mu
    try:
        cholesky_banded(ab, lower=True, overwrite_ab=True, check_finite=False)
    except LinAlgError:
        return None
    slack = 8 * (b + 2 + terms) * EPS * size
    return math.sqrt(mu * mu + slack)


def probed_window_gram(
    op: LinearOperator, c_in: int, samples: int, window: np.ndarray, span: int
) -> np.ndarray:
    """The Gram matrix ``(M^H M)[S, S]`` of the columns ``S`` = samples `window` x channels.

    In position-major order ``J = i c_in + c`` (``i`` the index in `window`), as
    lower band storage ``ab[J - J', J']`` of bandwidth ``c_in (span + 1) - 1``.
    A sample only meets samples within `span` in ``M^H M``, so probing with the
    indicator of samples ``= r (mod 2 span + 1)`` in channel ``c`` recovers every
    entry (Curtis, Powell & Reid 1974): ``c_in (2 span + 1)`` products.
    """
    period = 2 * span + 1
    w = window.size
    band = c_in * (span + 1)
    ab = np.zeros((band, w * c_in), dtype=op.dtype)
    rel = np.arange(w)  # window index of each sample
    for r in range(period):
        hit = rel[window % period == r]
        X = np.zeros((c_in, samples, c_in), dtype=op.dtype)  # (channel, sample, probe channel)
        X[np.arange(c_in)[:, None], window[hit][None, :], np.arange(c_in)[:, None]] = 1.0
        Y = op.rmatmat(op.matmat(X.reshape(c_in * samples, c_in)))
        Y = Y.reshape(c_in, samples, c_in)[:, window, :]  # (c', i', c): G[(c', i'), (c, i)]
        # the probe sample i of row i': the one = r (mod period) within span
        delta = (r - window + span) % period - span
        src = rel + delta  # window index (valid when inside the window)
        ok = (src >= 0) & (src < w) & (np.abs(delta) <= span)
        ok &= delta <= 0  # lower storage: row sample i' >= column sample i
        ip, i = rel[ok], src[ok]
        chan = np.arange(c_in)
        row = ip[None, :, None] * c_in + chan[:, None, None]  # (c', i', c)
        col = i[None, :, None] * c_in + chan[None, None, :]
        row, col = np.broadcast_arrays(row, col)
        keep = row >= col
        ab[(row - col)[keep], col[keep]] = Y[:, ip, :][keep]
    return ab


def embedding_lengths(layer: Layer, theta: np.ndarray | float, count: int) -> list[tuple[int, ...]]:
    """Polyphase sizes ``n_a = N_a / s_a`` of circulants that embed the layer, best first.

    Any ``N_a >= L_a + p_a,l + p_a,r`` with ``s_a | N_a`` embeds it on axis ``a``;
    ``||C_N||`` is the symbol's maximum over the grid ``2 pi f_a / n_a``, so the
    least bound comes from a grid whose points straddle the peak ``theta``: per
    axis, among the next 64 lengths, those that put ``theta_a`` closest to the
    middle between two points (the ``i``-th best on every axis make size ``i``).
    """
    n0 = [-(-(g.input_length + g.pad_left + g.pad_right) // g.stride) for g in layer.geoms]
    if count == 1:  # no peak known yet: an odd length at least misses a peak at pi
        return [tuple(v + 1 - v % 2 for v in n0)]
    theta = np.broadcast_to(np.asarray(theta, dtype=np.float64), (len(n0),))
    best = []
    for a, v in enumerate(n0):
        n = np.arange(v + 1, v + 65)
        offset = theta[a] * n / (2 * np.pi)
        miss = np.abs(offset - np.round(offset))
        best.append(n[np.argsort(-miss, kind="stable")[: count - 1]])
    return [tuple(n0), *(tuple(int(b[i]) for b in best) for i in range(count - 1))]


def refine_peak(sym: Symbol, f: _GridPoint, n: _GridPoint) -> np.ndarray | float:
    """The angles of the symbol's peak near grid point `f`, by a parabola per axis.

    For real weights the symbol's singular values are even about 0 and pi, so on
    an axis where the peak sits there (and so do all others) it is exactly there.
    Returns a float for an int `n` (1-D), else an array of ``n`` angles.
    """
    one = isinstance(n, (int, np.integer))
    nn = (int(n),) if isinstance(n, (int, np.integer)) else tuple(int(v) for v in n)
    ff = (int(f),) if isinstance(f, (int, np.integer)) else tuple(int(v) for v in f)
    spacing = 2 * np.pi / np.array(nn, dtype=np.float64)
    out = np.array(ff, dtype=np.float64)
    symmetric = sym.real and all((2 * fa) % na == 0 for fa, na in zip(ff, nn, strict=True))
    if not symmetric:
        around = {ff}
        for a in range(len(nn)):
            for step in (-1, 1):
                g = list(ff)
                g[a] += step
                around.add(tuple(g))
        missing = [g for g in around if (nn, g) not in sym.seen]
        if missing:
            pts = np.array(missing, dtype=np.float64)
            values, _ = top_bounds(sym, pts * spacing)  # to ~1e-12: plenty for a parabola
            sym.seen.update(zip(((nn, g) for g in missing), values.tolist(), strict=True))
        for a in range(len(nn)):
            lo_, hi_ = list(ff), list(ff)
            lo_[a] -= 1
            hi_[a] += 1
            v = [sym.seen[(nn, tuple(lo_))], sym.seen[(nn, ff)], sym.seen[(nn, tuple(hi_))]]
            curvature = v[0] - 2 * v[1] + v[2]
            if curvature < 0:
                out[a] += float(np.clip(0.5 * (v[0] - v[2]) / curvature, -0.5, 0.5))
    angles = out * spacing
    return float(angles[0]) if one else angles


def peak_drop(sym: Symbol, f: _GridPoint, n: _GridPoint) -> float:
    """How much a grid shifted half a step off the peak at `f` may lower the maximum (a guess).

    ``sum_a max(0, -second difference_a) / 8`` from the values :func:`refine_peak`
    left in ``sym.seen``; used only to skip embedding lengths that cannot help.
    """
    nn = (int(n),) if isinstance(n, (int, np.integer)) else tuple(int(v) for v in n)
    ff = (int(f),) if isinstance(f, (int, np.integer)) else tuple(int(v) for v in f)
    drop = 0.0
    for a in range(len(nn)):
        lo_, hi_ = list(ff), list(ff)
        lo_[a] -= 1
        hi_[a] += 1
        keys = [(nn, tuple(lo_)), (nn, ff), (nn, tuple(hi_))]
        if all(k in sym.seen for k in keys):
            v = [sym.seen[k] for k in keys]
            drop += max(0.0, -(v[0] - 2 * v[1] + v[2])) / 8
    return drop


def copies(layer: Layer) -> int:
    """Most padded positions that read one sample (``||P||^2``, a product over the axes)."""
    total = 1
    for g in layer.geoms:
        src = g.padded_sources()
        total *= int(np.bincount(src[src >= 0], minlength=g.input_length).max())
    return total


def boundary_norm(layer: Layer) -> float:
    """``||M - M_zeros||_2``, exact: nonzero only on rows whose taps read padding.

    1-D only; ``inf`` (no bound) for ``n >= 2``.
    """
    if layer.ndim != 1:
        return math.inf
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

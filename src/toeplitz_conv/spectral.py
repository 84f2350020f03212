r"""Singular values, norms and condition numbers of conv layers, exact where it can be.

Three sources of truth, in order of preference:

* **FFT** (circular padding whose output covers one period): the matrix is
  block-circulant after a polyphase split (Sedghi, Gupta & Long 2019;
  Senderovich et al. 2022), so its singular values are those of the small
  ``C_out x C_in*s`` symbol matrices, one per frequency. Exact.
* **Dense SVD** of :func:`~toeplitz_conv.conv1d_matrix` for matrices with at most
  :data:`DENSE_LIMIT` entries. Exact (to rounding).
* **Certified bracket** for the norm of everything else: zero padding embeds
  ``M`` in a circulant of length ``N >= L + p_l + p_r`` whose norm (an FFT
  computation) bounds ``||M||`` from above; a Lanczos refinement of that
  circulant's top singular vector, restricted to the signal, bounds it from
  below by a vector it attains.

Every function takes the layer the way :func:`~toeplitz_conv.conv1d_matrix`
does: ``(weight, input_length, *, stride, padding, dilation, groups,
padding_mode)``. Computations run in float64 (complex128 for complex weights).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._arrays import check_memory
from ._geometry import Padding, check_choice, check_int
from ._layer import Layer, conv_layer
from .matrices import layer_matrix
from .operators import Conv1dOperator

__all__ = [
    "DENSE_LIMIT",
    "NormBounds",
    "condition_number",
    "singular_values",
    "spectral_norm",
    "spectral_norm_bounds",
]

#: Largest matrix (``rows * cols`` entries) whose spectrum is computed from the
#: dense matrix: 2**22 entries is 32 MiB in float64, e.g. 2048 x 2048, whose full
#: SVD takes about a second on one core.
DENSE_LIMIT: int = 2**22

_EPS = np.finfo(np.float64).eps
_DENSE_NORM_SIDE = 256  # spectral norm by dense SVD when min(rows, cols) <= this
_GRAM_FLOPS = 4e9  # most work (columns x bandwidth^2) for a banded-Cholesky certificate
_GRAM_ENTRIES = 2e7  # most nonzeros of its Gram matrix (built sparse, then banded)
_SVD_BATCH = 64  # symbol matrices per batched SVD call
_COARSE = 17  # grid points evaluated first by the branch and bound
_SHORT_RANGE = 16  # ranges this short have all their grid points evaluated at once
_METHODS = ("auto", "fft", "dense", "svds")


class NormBounds(NamedTuple):
    """A certified bracket ``lower <= ||M||_2 <= upper``.

    ``lower`` is attained: it is ``||M v|| / ||v||`` for a vector ``v`` found by
    the method. ``upper`` is proved (up to floating-point rounding, for which a
    margin of a few hundred ulps is added).
    """

    lower: float
    upper: float


@lru_cache(maxsize=1)
def _thread_controller() -> object | None:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it the small SVDs just run as configured
        return None
    return ThreadpoolController()


_WORKERS = min(os.cpu_count() or 1, 8)
_PAR_MIN = 4  # smallest batch worth splitting over the pool
_parallel = False  # True while BLAS is limited to one thread: batches then run on a pool


@lru_cache(maxsize=1)
def _pool() -> object:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="toeplitz_conv")


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run BLAS single-threaded for batches of small matrices (if threadpoolctl is there).

    Threading a 64 x 64 factorisation costs more in synchronisation than it
    gains, and on a busy machine OpenBLAS's spinning threads make it erratic;
    instead the batch is split over a pool of threads, one core each (numpy's
    LAPACK calls release the GIL).
    """
    global _parallel
    controller = _thread_controller()
    if controller is None or _parallel:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        _parallel = _WORKERS > 1
        try:
            yield
        finally:
            _parallel = False


def _batched(work, count: int, batch: int) -> None:
    """Call ``work(slice)`` over ``range(count)`` in slices of at most `batch`, maybe parallel."""
    if _parallel and count >= _PAR_MIN:
        batch = min(batch, -(-count // _WORKERS))
    slices = [slice(i, min(i + batch, count)) for i in range(0, count, batch)]
    if _parallel and len(slices) > 1 and count >= _PAR_MIN:
        list(_pool().map(work, slices))
    else:
        for sl in slices:
            work(sl)


# --------------------------------------------------------------------------- the layer
def _layer(
    weight: object,
    input_length: int,
    stride: int,
    padding: Padding,
    dilation: int,
    groups: int,
    padding_mode: str,
) -> Layer:
    """The validated layer, its weight in float64 (complex128 for complex weights)."""
    layer = conv_layer(
        weight,
        input_length,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    dtype = np.complex128 if layer.weight.dtype.kind == "c" else np.float64
    return Layer(np.ascontiguousarray(layer.weight, dtype=dtype), layer.geom, layer.groups)


def _is_real(layer: Layer) -> bool:
    return layer.weight.dtype.kind != "c"


def _operator(layer: Layer) -> Conv1dOperator:
    return Conv1dOperator(layer.weight, layer.geom, layer.groups)


def _dense(layer: Layer) -> np.ndarray:
    return layer_matrix(layer, fmt="dense")


# --------------------------------------------------------------------------- the symbol
@dataclass(frozen=True)
class _Symbol:
    r"""``A(theta) = sum_j Q[:, j] e^{i theta q_j}``, per group, after the polyphase split.

    ``Q`` has shape ``(groups, nq, C_out/groups, G*s)``; column ``c*s + r`` is
    input channel ``c`` at phase ``r``. Tap ``k`` sits at ``k*d - p_l = q*s + r``.
    """

    Q: np.ndarray
    q: np.ndarray  # (nq,) integer offsets, centred to make the Lipschitz constant small
    stride: int
    lipschitz: float  # sum_j ||Q_j|| |q_j| >= ||A'(t)||
    curvature: float  # sum_j ||Q_j|| (q_j - c)^2 >= ||(e^{-itc} A(t))''||, best centre c
    real: bool
    seen: dict = field(default_factory=dict, compare=False)  # (n, f) -> sigma_max; 'gram'

    def __call__(self, theta: np.ndarray, derivative: int = 0) -> np.ndarray:
        """``A(theta)`` (or its `derivative`-th derivative) for each angle.

        Shape ``(len(theta), groups, C_out/groups, G*s)``.
        """
        theta = np.asarray(theta, dtype=np.float64)
        phase = np.outer(theta, self.q)
        flat = self.Q.transpose(1, 0, 2, 3).reshape(self.q.size, -1)
        if derivative:
            flat = flat * ((1j * self.q) ** derivative)[:, None]
        out = np.empty((theta.size, flat.shape[1]), dtype=np.complex128)
        if self.real and not derivative:
            np.matmul(np.cos(phase), flat, out=out.real)
            np.matmul(np.sin(phase), flat, out=out.imag)
        else:
            out[...] = np.exp(1j * phase) @ flat
        return out.reshape(theta.size, *self.Q.shape[:1], *self.Q.shape[2:])


def _symbol(layer: Layer) -> _Symbol:
    g = layer.geom
    c_out, G, K = layer.weight.shape
    groups, s = layer.groups, g.stride
    offsets = np.arange(K) * g.dilation - g.pad_left
    q, r = np.divmod(offsets, s)
    q_unique, which = np.unique(q, return_inverse=True)
    Q = np.zeros((groups, q_unique.size, c_out // groups, G, s), dtype=layer.weight.dtype)
    w = layer.weight.reshape(groups, c_out // groups, G, K)
    for k in range(K):  # K is small; taps may share a polyphase offset
        Q[:, which[k], :, :, r[k]] += w[..., k]
    Q = Q.reshape(groups, q_unique.size, c_out // groups, G * s)
    # the Lipschitz constant of sigma_max(A(theta)): sum_j ||Q_j|| |q_j - centre|
    norms = np.linalg.norm(Q, ord=2, axis=(2, 3)) if Q.size else np.zeros((groups, 0))
    weights = norms.max(axis=0)
    cum = np.cumsum(weights)
    centre = q_unique[np.searchsorted(cum, cum[-1] / 2)] if cum[-1] > 0 else 0
    q = q_unique - centre
    lip = float(np.max(norms @ np.abs(q))) if norms.size else 0.0
    # sum_j ||Q_j|| (q_j - c)^2 bounds ||d^2/dt^2 e^{-i t c} A(t)||; best c is the weighted mean
    total = norms.sum(axis=1, keepdims=True)
    mean = (norms @ q.astype(np.float64))[:, None] / np.where(total > 0, total, 1)
    curv = float(np.max((norms * (q[None, :] - mean) ** 2).sum(axis=1))) if norms.size else 0.0
    return _Symbol(Q, q, s, lip, curv, _is_real(layer))


def _svdvals(A: np.ndarray) -> np.ndarray:
    """Singular values of a batch ``(..., m, n)``, in batches that fit in cache."""
    lead = A.shape[:-2]
    flat = A.reshape(-1, *A.shape[-2:])
    out = np.empty((flat.shape[0], min(A.shape[-2:])), dtype=np.float64)

    def work(sl: slice) -> None:
        out[sl] = np.linalg.svd(flat[sl], compute_uv=False)

    _batched(work, flat.shape[0], _SVD_BATCH)
    return out.reshape(*lead, -1)


def _gram_terms(sym: _Symbol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The Gram matrix of the symbol as a trigonometric polynomial, and its rounding bound.

    With ``B(t) = A(t)`` if it is taller than wide, else ``A(t)^H`` (the smaller
    Gram matrix), ``B(t) = sum_j P_j e^{i t p_j}`` and
    ``B^H B (t) = sum_u S_u e^{i t d_u}`` with ``S_u = sum_{p_k - p_j = d_u} P_j^H P_k``.

    Returns ``(d, S, delta)``: ``S`` of shape ``(groups, nd, n, n)`` and, per
    group, ``delta >= ||B^H B(t) - computed||_2`` for every ``t``: matmul, sum
    and evaluation each err by at most ``gamma_T sum_{j,k} |P_j|^H |P_k|``
    entrywise (``T`` the longest chain of roundings), whose 2-norm is at most
    ``(sum_j ||P_j||_F)^2``; the factor 4 covers complex arithmetic.
    """
    if "gram" in sym.seen:  # computed once per symbol
        return sym.seen["gram"]
    Q, q = sym.Q, sym.q
    if Q.shape[2] < Q.shape[3]:  # wide: use A A^H = (A^H)^H (A^H), A^H = sum Q_j^H e^{-i t q_j}
        P, p = Q.conj().transpose(0, 1, 3, 2), -q
    else:
        P, p = Q, q
    diffs = (p[None, :] - p[:, None]).ravel()  # d = p_k - p_j for pair (j, k)
    d, which = np.unique(diffs, return_inverse=True)
    groups, nq, m, k = P.shape
    X = P.transpose(0, 2, 1, 3).reshape(groups, m, nq * k)  # [P_0 P_1 ...] side by side
    XX = (X.conj().transpose(0, 2, 1) @ X).reshape(groups, nq, k, nq, k)  # block (j, k)
    S = np.zeros((groups, d.size, k, k), dtype=XX.dtype)
    for i, u in enumerate(which):
        S[:, u] += XX[:, i // nq, :, i % nq, :]  # P_j^H P_k
    chain = P.shape[2] + diffs.size + 2 * d.size + 8
    fro = np.linalg.norm(P, axis=(2, 3)).sum(axis=1)
    delta = 4 * chain * _EPS * fro * fro
    sym.seen["gram"] = (d.astype(np.float64), S, delta)
    return sym.seen["gram"]


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


def _top_bounds(sym: _Symbol, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``lo <= sigma_max(A(theta_i)) <= hi`` from the eigenvalues of the Gram matrix.

    Cheaper than the SVD of ``A``: the Gram matrix comes from
    :func:`_gram_terms` (off by at most ``delta``), and ``eigvalsh`` is backward
    stable (its values are exact for a matrix off by at most
    ``16 k eps ||G||_F``, more than LAPACK's bound), so by Weyl the largest
    eigenvalue is within the sum of both of ``sigma_max^2``.
    """
    d, S, delta = _gram_terms(sym)
    groups, _, k, _ = S.shape
    theta = np.asarray(theta, dtype=np.float64)
    phase = np.outer(theta, d)
    flat = S.transpose(1, 0, 2, 3).reshape(d.size, -1)
    G = np.empty((theta.size, flat.shape[1]), dtype=np.complex128)
    if flat.dtype.kind != "c":
        np.matmul(np.cos(phase), flat, out=G.real)
        np.matmul(np.sin(phase), flat, out=G.imag)
    else:
        np.matmul(np.exp(1j * phase), flat, out=G)
    G = G.reshape(-1, k, k)
    top = np.empty(G.shape[0])

    def work(sl: slice) -> None:
        top[sl] = np.linalg.eigvalsh(G[sl])[:, -1]

    _batched(work, G.shape[0], _SVD_BATCH)
    size = np.sqrt(np.einsum("ijk,ijk->i", G.view(np.float64), G.view(np.float64)))
    margin = (delta[None, :] + 16 * k * _EPS * size.reshape(theta.size, groups)).ravel()
    lo = np.sqrt(np.maximum(top - margin, 0)).reshape(theta.size, groups).max(axis=1)
    hi = np.sqrt(np.maximum(top + margin, 0)).reshape(theta.size, groups).max(axis=1)
    return lo, hi


def _frequencies(n: int, real: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies to evaluate and how many times each one's values occur.

    For real weights ``f`` and ``n - f`` share their singular values, so only
    ``0 <= f <= n // 2`` are evaluated.
    """
    if not real:
        return np.arange(n), np.ones(n, dtype=np.int64)
    f = np.arange(n // 2 + 1)
    mult = np.full(f.size, 2, dtype=np.int64)
    mult[0] = 1
    if n % 2 == 0:
        mult[-1] = 1
    return f, mult


def _circulant_spectrum(layer: Layer) -> np.ndarray:
    """All singular values of a block-circulant layer (unsorted)."""
    count = min(layer.shape)
    check_memory(
        3 * 8 * count,
        f"the spectrum's {count:,} singular values",
        "use a shorter input (`spectral_norm` needs no spectrum)",
    )
    sym = _symbol(layer)
    n = layer.geom.output_length  # = L / s
    f, mult = _frequencies(n, sym.real)
    chunks = []
    step = max(1, 2**22 // max(1, sym.Q[0, 0].size * sym.Q.shape[0] * 16))
    with _one_blas_thread():
        for i in range(0, f.size, step):
            A = sym(2 * np.pi * f[i : i + step] / n)
            vals = _svdvals(A).reshape(A.shape[0], -1)
            chunks.append(np.repeat(vals, mult[i : i + step], axis=0).ravel())
    return np.concatenate(chunks)


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
    with _one_blas_thread():
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


def _top_vector(sym: _Symbol, theta: float) -> np.ndarray:
    """Right singular vector (shape ``(groups, G*s)``) of ``A(theta)``'s top value."""
    A = sym(np.array([theta]))[0]  # (groups, m, n)
    _, svals, vh = np.linalg.svd(A)
    g = int(np.argmax(svals[:, 0]))
    u = np.zeros(A.shape[0::2], dtype=np.complex128)
    u[g] = vh[g, 0].conj()
    return u


def _norm(x: np.ndarray) -> float:
    """``||x||_2`` without BLAS (level-1 BLAS threads stall on a busy machine)."""
    x = np.ascontiguousarray(x)
    if x.dtype.kind == "c":
        x = x.view(x.real.dtype)
    return math.sqrt(float(np.einsum("i,i->", x, x)))


def _grow_gram(H: np.ndarray, row: list) -> np.ndarray:
    """Append ``row`` (inner products with the newest vector) to a Hermitian Gram matrix."""
    r = np.asarray(row)
    return np.block([[H, r[:-1, None]], [r[None, :-1].conj(), r[-1:, None]]])


def _dot(a: np.ndarray, b: np.ndarray) -> complex | float:
    """``<a, b> = sum(conj(a) * b)`` without BLAS."""
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        return complex(np.einsum("i,i->", a.conj(), b))
    return float(np.einsum("i,i->", a, b))


def _start_vector(layer: Layer, sym: _Symbol, theta: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The circulant's top singular vector restricted to the signal, sine-windowed.

    ``x[c, m s + r] = u[c, r] e^{i theta m} sin(pi (l + 1) / (L + 1))`` for
    ``l = m s + r``: near the top of the spectrum ``M^H M`` acts like a
    second-difference operator modulated at ``theta``, whose top eigenvector
    this is up to O(1/L^2).

    Returns ``(x, M x)``; ``M x`` is computed from the separable form (``K``
    outer products instead of a convolution) for real weights and stride 1,
    else ``None``.
    """
    g = layer.geom
    L, s = g.input_length, g.stride
    u = _top_vector(sym, theta).reshape(layer.in_channels, s)
    pos = np.arange(L)
    m, r = np.divmod(pos, s)
    phase = theta * (m - m.mean())
    window = np.sin(np.pi * (pos + 1) / (L + 1))
    cw, sw = np.cos(phase) * window, np.sin(phase) * window
    if not _is_real(layer):
        x = (u[:, r] * (cw + 1j * sw)).ravel()
        return x / _norm(x), None
    # the real or the imaginary part of u e^{i phase}, whichever is larger
    if s == 1:
        # contiguous copies: ufunc.outer over a strided column view is ~10x slower
        ur, ui = np.ascontiguousarray(u.real[:, 0]), np.ascontiguousarray(u.imag[:, 0])
        cc, ss, cs = cw @ cw, sw @ sw, cw @ sw
        real_part = (ur @ ur) * cc + (ui @ ui) * ss - 2 * (ur @ ui) * cs
        imag_part = (ui @ ui) * cc + (ur @ ur) * ss + 2 * (ur @ ui) * cs
        if real_part < imag_part:
            ur, ui = ui, -ur  # Im(u e^{ip}) = Re(-i u e^{ip})
        # x = ur cw^T - ui sw^T as one (C, 2) @ (2, L) product
        x = np.stack([ur, -ui], axis=1) @ np.stack([cw, sw])
        scale = _norm(x.ravel())
        return x.ravel() / scale, _separable_product(layer, ur, ui, cw, sw) / scale
    else:
        ur, ui = u.real[:, r], u.imag[:, r]
        x = ur * cw - ui * sw
        y = ui * cw + ur * sw
        x = (x if _norm(x.ravel()) >= _norm(y.ravel()) else y).ravel()
    return x / _norm(x), None


def _separable_product(
    layer: Layer, ur: np.ndarray, ui: np.ndarray, cw: np.ndarray, sw: np.ndarray
) -> np.ndarray:
    """``M x`` for ``x[c, l] = ur[c] cw[l] - ui[c] sw[l]``: ``K`` rank-one terms per part.

    ``(M x)[o, i] = sum_k (W_k ur)[o] cw[src(i + k d - p_l)] - (W_k ui)[o] sw[...]``.
    """
    g = layer.geom
    c_out, G, K = layer.weight.shape
    groups = layer.groups
    w = layer.weight.reshape(groups, c_out // groups, G, K)
    a_r = np.einsum("gock,gc->gok", w, ur.reshape(groups, G)).reshape(c_out, K)
    a_i = np.einsum("gock,gc->gok", w, ui.reshape(groups, G)).reshape(c_out, K)
    src = g.positions(np.arange(g.output_length))  # (L_out, K), -1 where nothing
    inside = src >= 0
    at = np.maximum(src, 0)
    C = np.where(inside, cw[at], 0.0)
    S = np.where(inside, sw[at], 0.0)
    # one (C_out, 2K) @ (2K, L_out) product for both parts
    return (np.concatenate([a_r, -a_i], axis=1) @ np.concatenate([C, S], axis=1).T).ravel()


class _SplitOperator:
    """``M`` and ``M^H`` of a one-group layer as two halves on the thread pool.

    ``matvec`` computes the first and second half of the output channels at
    once, ``rmatvec`` the two halves of the input channels (with one group,
    input channel ``c`` of ``M^H y`` only needs ``W[:, c]``), each half a
    single-threaded BLAS call. Every entry is computed as the whole layer's
    operator computes it. Used while BLAS is limited to one thread, where
    waking a threaded BLAS between small factorisations costs more than a
    product.
    """

    def __init__(self, layer: Layer) -> None:
        w, g = layer.weight, layer.geom
        c_out, c_in = w.shape[:2]
        self.rows = [
            Conv1dOperator(np.ascontiguousarray(w[a:b]), g, 1)
            for a, b in ((0, c_out // 2), (c_out // 2, c_out))
        ]
        self.cols = [
            Conv1dOperator(np.ascontiguousarray(w[:, a:b]), g, 1)
            for a, b in ((0, c_in // 2), (c_in // 2, c_in))
        ]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate(list(_pool().map(lambda op: op.matvec(x), self.rows)))

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        return np.concatenate(list(_pool().map(lambda op: op.rmatvec(y), self.cols)))


def _lanczos_lower(
    op: Conv1dOperator,
    x0: np.ndarray,
    *,
    steps: int,
    target: float = np.inf,
    stall: float = 0.0,
    mx0: np.ndarray | None = None,
) -> tuple[float, int]:
    """A lower bound ``||M v|| / ||v||`` from a Krylov space of ``M^H M`` built on `x0`.

    Stops after `steps` Lanczos steps, once the bound reaches `target`, or once
    two steps together raised it by less than ``stall`` (relative). Returns
    ``(lower, steps taken)``; ``lower`` is attained by ``v = V y``: it is
    ``sqrt(y^H (MV)^H (MV) y / y^H V^H V y)`` with both Gram matrices computed
    from the vectors, a true quotient up to rounding (for which it is lowered by
    a few ulps).
    """
    scale = _norm(x0)
    V = [x0 / scale]
    MV = [op.matvec(V[0]) if mx0 is None else mx0 / scale]
    H = np.array([[_dot(MV[0], MV[0])]])  # Gram matrix of M V
    GV = np.array([[_dot(V[0], V[0])]])  # Gram matrix of V (the identity, up to rounding)
    history = [math.sqrt(max(H[0, 0].real, 0.0) / GV[0, 0].real)]
    j = 0
    while j < steps and history[-1] < target:
        if j >= 2 and history[-1] - history[-3] <= stall * history[-1]:
            break
        w = op.rmatvec(MV[j])
        for _ in range(2):  # full reorthogonalisation, twice is enough
            for v in V:
                w -= _dot(v, w) * v
        norm = _norm(w)
        if norm == 0 or not np.isfinite(norm):
            break
        j += 1
        V.append(w / norm)
        MV.append(op.matvec(V[j]))
        H = _grow_gram(H, [_dot(a, MV[j]) for a in MV])
        GV = _grow_gram(GV, [_dot(a, V[j]) for a in V])
        _, evecs = np.linalg.eigh(H)
        y = evecs[:, -1]
        # ||M V y||^2 / ||V y||^2 from the Gram matrices: the quotient of v = V y
        quotient = (y.conj() @ H @ y).real / (y.conj() @ GV @ y).real
        history.append(max(history[-1], math.sqrt(max(quotient, 0.0))))
    return history[-1] * (1 - 64 * _EPS), j


# --------------------------------------------------------------------------- public API
def _check_rtol(rtol: object) -> float:
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)):
        raise TypeError(f"`rtol` must be a float in (0, 1); got {rtol!r}")
    rtol = float(rtol)
    if not 0 < rtol < 1:
        raise ValueError(f"`rtol` must be a float in (0, 1); got {rtol}")
    return rtol


def _rng(rng: object) -> np.random.Generator:
    try:
        return np.random.default_rng(0 if rng is None else rng)
    except (TypeError, ValueError):
        raise TypeError(
            f"`rng` must be None, an int seed or a numpy.random.Generator; got {rng!r}"
        ) from None


# sigma_min by a sparse LU (shift-invert) while M has at most this many nonzeros
_SHIFT_INVERT_MAX_NNZ = 4_000_000


def _dense_ok(layer: Layer) -> bool:
    m, n = layer.shape
    return m * n <= DENSE_LIMIT


def singular_values(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    k: int | None = None,
    method: str = "auto",
    tol: float = 0.0,
    rng: object = None,
) -> np.ndarray:
    r"""The singular values of ``conv1d_matrix(weight, input_length, ...)``, largest first.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
    input_length : int
        ``L``.
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv1d_matrix`.
    k : int, optional
        Return only the `k` largest; all ``min(C_out L_out, C_in L)`` by default.
    method : {'auto', 'fft', 'dense', 'svds'}, optional
        ``'fft'``: exact, for block-circulant layers (circular padding with
        ``L_out * s == L``). ``'dense'``: SVD of the dense matrix. ``'svds'``:
        the `k` largest by ``scipy.sparse.linalg.svds`` on the matrix-free
        operator. ``'auto'`` picks fft, then dense up to :data:`DENSE_LIMIT`
        entries, then svds (which needs `k`).
    tol : float, optional
        Passed to ``svds`` (0 means machine precision).
    rng : None, int or numpy.random.Generator, optional
        Seeds ``svds``'s start vector; ``None`` means seed 0 (deterministic).

    Returns
    -------
    ndarray of float64, shape (min(m, n),) or (k,)
        Descending.

    Raises
    ------
    ValueError
        For the complete spectrum of a non-circulant layer larger than
        :data:`DENSE_LIMIT` entries, an out-of-range `k`, or ``method='fft'``
        on a layer that is not block-circulant.

    Notes
    -----
    With circular padding, stride ``s`` dividing ``L`` and ``L_out = L/s``, split
    the input into ``s`` phases (``x_r[m] = x[m s + r]``, an orthogonal
    permutation) and write ``k d - p_l = q_k s + r_k``. The layer becomes a
    stride-1 circular conv on ``n = L/s`` samples with ``C_in s`` channels, whose
    singular values are those of the symbol matrices

    .. math::

        A(f) = \sum_k W[:, :, k]\, E_{r_k}\, e^{2\pi i f q_k / n}
        \in \mathbb{C}^{C_{out} \times C_{in} s}, \qquad f = 0, \dots, n-1,

    (``E_r`` places channel ``c`` at column ``c s + r``): ``n`` SVDs of size
    ``C_out x C_in s`` instead of one of size ``C_out n x C_in L``. For real
    weights ``A(n - f) = conj(A(f))``, so only ``f <= n/2`` are computed.

    Other padding modes are not circulant; their exact spectrum comes from the
    dense matrix, so it is limited in size. ``svds`` on the operator gives the
    top `k` of larger layers, but the top of a zero-padded conv's spectrum is
    clustered (neighbouring values differ by O(1/L^2)), so it converges slowly:
    loosen `tol`, or use :func:`spectral_norm` for the largest value.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0, 2.0, 3.0])
    >>> singular_values(w, 4, padding=1, padding_mode="circular").round(4)
    array([6.    , 2.8284, 2.8284, 2.    ])
    >>> M = np.array([[2.0, 3, 0, 1], [1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2]])
    >>> np.linalg.svd(M, compute_uv=False).round(4)
    array([6.    , 2.8284, 2.8284, 2.    ])
    >>> singular_values([4.0, 3.0], 5, k=1).round(4)
    array([6.6646])
    """
    layer = _layer(weight, input_length, stride, padding, dilation, groups, padding_mode)
    check_choice(method, "method", _METHODS)
    m, n = layer.shape
    full = min(m, n)
    if k is not None:
        k = check_int(k, "k", minimum=1)
        if k > full:
            raise ValueError(
                f"`k` must be at most min(rows, cols) = {full} for this {m}x{n} matrix; got {k}"
            )
    circ = layer.geom.is_circulant
    if method == "auto":
        method = "fft" if circ else "dense" if _dense_ok(layer) else "svds"
    if method == "fft":
        if not circ:
            raise ValueError(
                "`method`='fft' needs a block-circulant layer: padding_mode='circular' "
                f"with output_length * stride == input_length; got output_length="
                f"{layer.geom.output_length}, stride={layer.geom.stride}, "
                f"input_length={layer.geom.input_length}, "
                f"padding_mode={layer.geom.padding_mode!r}"
            )
        values = _circulant_spectrum(layer)
    elif method == "dense":
        values = np.linalg.svd(_dense(layer), compute_uv=False)
    else:
        if k is None:
            raise ValueError(
                f"the complete spectrum of this {m}x{n} matrix needs the dense matrix, "
                f"which has {m * n:,} entries, more than DENSE_LIMIT = {DENSE_LIMIT:,}; "
                "pass `k` for the k largest (by svds), or method='dense' to insist"
            )
        return _svds_top(layer, k, tol=tol, rng=rng)
    values = np.sort(values)[::-1]
    return values[:k] if k is not None else values


def _svds_top(layer: Layer, k: int, *, tol: float, rng: object) -> np.ndarray:
    from scipy.sparse.linalg import svds

    m, n = layer.shape
    if k >= min(m, n):
        raise ValueError(
            f"`k` must be smaller than min(rows, cols) = {min(m, n)} for svds; got {k} "
            "(use method='dense')"
        )
    gen = _rng(rng)
    op = _operator(layer)
    v0 = gen.standard_normal(min(m, n))
    values = svds(
        op, k=k, tol=float(tol), which="LM", return_singular_vectors=False, v0=v0, random_state=gen
    )
    return np.sort(values)[::-1]


def spectral_norm_bounds(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    rtol: float = 1e-6,
    maxiter: int = 50,
    rng: object = None,
) -> NormBounds:
    r"""A certified bracket ``(lower, upper)`` on the spectral norm ``||M||_2``.

    Parameters
    ----------
    weight, input_length, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv1d_matrix`.
    rtol : float, optional
        Stop once ``upper - lower <= rtol * upper``.
    maxiter : int, optional
        Most Lanczos steps (each one ``M`` and one ``M^H`` product) for the lower end.
    rng : None, int or numpy.random.Generator, optional
        Seeds the random boundary part of the Lanczos start for reflect,
        replicate and circular padding; ``None`` means seed 0 (deterministic).

    Returns
    -------
    NormBounds
        ``(lower, upper)``; ``lower`` is attained by a vector, ``upper`` proved.
        It may be wider than `rtol` when the method cannot certify more (see Notes).

    Notes
    -----
    *Block-circulant layers* (circular padding, one period of output) and
    *small matrices* (at most :data:`DENSE_LIMIT` entries): exact, by FFT or
    dense SVD, ``lower == upper`` up to rounding.

    *Zero padding*: ``M`` is a submatrix of the (strided) circular convolution
    ``C_N`` on ``N >= L + p_l + p_r`` samples (``s | N``), so

    .. math::

        \|M\|_2 \le \|C_N\|_2 = \max_f \sigma_{\max}\big(A(2\pi f / (N/s))\big),

    the maximum over the symbol matrices of :func:`singular_values`. It is
    computed by branch and bound over the frequencies (exact SVDs at range
    ends, an interpolation bound inside, see ``_grid_max``); if needed a few
    ``N`` are tried that put the peak between two grid points, and the least
    bound is kept. The lower end starts from ``C_N``'s top singular vector
    restricted to the signal (a sine-windowed complex exponential at the
    peak frequency, refined by a parabola) and is improved by Lanczos on
    ``M^H M``. The two ends differ by O(1/L^2): about 1e-6 relative at
    ``L ~ 2000`` for a 64-channel layer.

    *Reflect, replicate and non-periodic circular padding*: ``M = T P`` where
    ``P`` copies the signal into its padded extension and ``T`` is the
    unpadded conv of the extension, so ``||M|| <= ||P|| ||C_N||`` with
    ``||P|| = sqrt(most copies of one sample)`` (2 for reflect, ``p + 1`` for
    replicate); also ``||M|| <= ||M_zeros|| + ||M - M_zeros||`` where the
    difference lives on the boundary rows only (its norm is exact, by a small
    dense SVD). These rarely close to `rtol`, so then:

    *Any non-circular padding, when the circulant bound is not tight enough*
    (short inputs, or the modes above): a banded Cholesky factorisation of
    ``mu^2 I - M^H M`` with ``mu = lower (1 + rtol/2)`` proves ``||M|| < mu``.
    In position-major order the Gram matrix has bandwidth ``b <= C_in (d(K-1)+1)``,
    so this costs ``O(C_in L b^2)`` time and ``O(C_in L b)`` memory; it is tried
    while the Gram matrix has at most 2e7 nonzeros and the work is at most 4e9
    (e.g. 16 channels on 7,000 samples or one channel on 1.8 million, with
    K = 5), else the dense SVD up to
    :data:`DENSE_LIMIT` entries, else the bracket stays wide (and
    :func:`spectral_norm` warns).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((4, 4, 5))
    >>> lo, hi = spectral_norm_bounds(w, 3000, padding=2)
    >>> bool(hi - lo <= 1e-6 * hi)
    True
    >>> bool(abs(hi - spectral_norm(w, 300, padding=2)) < 1e-2)
    True
    """
    layer = _layer(weight, input_length, stride, padding, dilation, groups, padding_mode)
    rtol = _check_rtol(rtol)
    maxiter = check_int(maxiter, "maxiter", minimum=0)
    return _bounds(layer, rtol, maxiter, _rng(rng))


def _bounds(
    layer: Layer, rtol: float, maxiter: int, rng: np.random.Generator | None = None
) -> NormBounds:
    if layer.geom.is_circulant:
        sym = _symbol(layer)
        upper, best, _ = _grid_max(sym, layer.geom.output_length, rtol=0.0)
        return NormBounds(best * (1 - 64 * _EPS), upper * (1 + 256 * _EPS))
    if min(layer.shape) <= _DENSE_NORM_SIDE:
        return _dense_bounds(layer)
    return _bracket(layer, rtol, maxiter, rng)


def _dense_bounds(layer: Layer) -> NormBounds:
    top = float(np.linalg.norm(_dense(layer), ord=2))
    return NormBounds(top * (1 - 256 * _EPS), top * (1 + 256 * _EPS))


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


def _edge_vector(layer: Layer, rng: np.random.Generator | None) -> np.ndarray:
    """A random unit vector on the samples near both ends of the signal."""
    g = layer.geom
    L = g.input_length
    width = min(L, 2 * (g.dilation * (g.kernel_size - 1) + max(g.pad_left, g.pad_right)) + 2)
    gen = rng if rng is not None else np.random.default_rng(0)
    x = np.zeros((layer.in_channels, L))
    x[:, :width] = gen.standard_normal((layer.in_channels, width))
    x[:, L - width :] += gen.standard_normal((layer.in_channels, width))
    x = x.ravel()
    return x / _norm(x)


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


def _bracket(
    layer: Layer, rtol: float, maxiter: int, rng: np.random.Generator | None = None
) -> NormBounds:
    g = layer.geom
    check_memory(  # the start vector, its image and a few Krylov vectors
        4 * layer.weight.itemsize * sum(layer.shape),
        f"the iterative bracket's vectors for a {layer.shape} matrix",
        "use a shorter input",
    )
    sym = _symbol(layer)
    mode = g.padding_mode
    n0 = _embedding_lengths(layer, np.nan, 1)[0]
    upper_c, _, f_best = _grid_max(sym, n0, rtol=rtol / 8)
    theta = _refine_peak(sym, f_best, n0)
    if mode == "zeros":
        factor, extra = 1.0, 0.0
    else:
        factor = math.sqrt(_copies(layer))
        extra = _boundary_norm(layer)

    def upper_of(u: float) -> float:
        return min(factor * u, u + extra) * (1 + 256 * _EPS)

    upper = upper_of(upper_c)
    op = Conv1dOperator(layer.weight, g, layer.groups)
    with _one_blas_thread():  # small products: a threaded BLAS would only wake its threads
        x0, mx0 = _start_vector(layer, sym, theta)
        if _parallel and layer.groups == 1 and min(layer.weight.shape[:2]) >= 2:
            op = _SplitOperator(layer)  # stays on one BLAS thread: no threads to wake
    stall = rtol / 16
    if mode != "zeros":
        mx0 = None
        # the padding can lift the norm near the ends: give Krylov a start there too, and
        # do not stop early, since it may take many steps to find the edge
        x0 = x0 + _edge_vector(layer, rng)
        stall = 0.0
    with _one_blas_thread():
        lower, _ = _lanczos_lower(
            op, x0, steps=maxiter, target=upper / (1 + rtol), stall=stall, mx0=mx0
        )
    # a few more embedding lengths: the grid that misses the peak most gives the least bound
    lengths = _embedding_lengths(layer, theta, 4) if upper - lower > rtol * upper else []
    for n in lengths[1:]:
        if upper - lower <= rtol * upper:
            break
        u, _, _ = _grid_max(sym, n, rtol=rtol / 8, threshold=lower * (1 + rtol / 2))
        upper = min(upper, upper_of(u))
    if upper - lower > rtol * upper:
        # the circulant cannot certify this close (short input, or reflect/replicate)
        for slack in (rtol / 2, rtol * 0.9):
            cert = _gram_certificate(layer, lower * (1 + slack))
            if cert is not None:
                upper = min(upper, cert)
                break
    if upper - lower > rtol * upper and _dense_ok(layer):
        return _dense_bounds(layer)
    return NormBounds(float(lower), float(upper))


def spectral_norm(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    rtol: float = 1e-6,
    maxiter: int = 50,
    rng: object = None,
) -> float:
    r"""The spectral norm ``||M||_2`` (largest singular value): the layer's Lipschitz constant.

    Parameters
    ----------
    weight, input_length, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv1d_matrix`.
    rtol : float, optional
        Relative accuracy to certify (see :func:`spectral_norm_bounds`).
    maxiter : int, optional
        Most Lanczos steps for the lower end of the bracket.
    rng : None, int or numpy.random.Generator, optional
        As in :func:`spectral_norm_bounds`; ``None`` means seed 0 (deterministic).

    Returns
    -------
    float
        Exact (FFT or dense SVD) where available; otherwise the lower end of a
        certified bracket of relative width ``<= rtol``, a value attained by a
        vector. If the bracket could not be closed, a ``RuntimeWarning`` says
        which bracket was reached and the lower end is returned.

    Notes
    -----
    .. math::

        \|M\|_2 = \max_{x \ne 0} \frac{\|M x\|_2}{\|x\|_2} = \sigma_{\max}(M).

    Why not power iteration: the top of a zero-padded conv's spectrum is
    clustered (neighbouring values differ by O(1/L^2)), so random starts
    crawl and ARPACK stalls; the bracket of :func:`spectral_norm_bounds` starts
    next to the answer and proves it.

    Examples
    --------
    >>> round(spectral_norm([4.0, 3.0], 5), 6)
    6.664564
    >>> spectral_norm([1.0, 2.0, 3.0], 8, padding=1, padding_mode="circular")
    6.0
    """
    layer = _layer(weight, input_length, stride, padding, dilation, groups, padding_mode)
    rtol = _check_rtol(rtol)
    maxiter = check_int(maxiter, "maxiter", minimum=0)
    gen = _rng(rng)
    if layer.geom.is_circulant:
        sym = _symbol(layer)
        _, best, _ = _grid_max(sym, layer.geom.output_length, rtol=0.0)
        return float(best)
    if min(layer.shape) <= _DENSE_NORM_SIDE:
        return float(np.linalg.norm(_dense(layer), ord=2))
    lower, upper = _bracket(layer, rtol, maxiter, gen)
    if upper - lower > rtol * upper:
        warnings.warn(
            f"spectral_norm: the certified bracket [{lower:.10g}, {upper:.10g}] "
            f"(relative width {(upper - lower) / upper:.2e}) did not close to rtol={rtol:g} "
            f"for padding_mode={layer.geom.padding_mode!r}; returning the lower end, "
            "which a vector attains",
            RuntimeWarning,
            stacklevel=2,
        )
    return float(lower)


def condition_number(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    tol: float = 1e-8,
    maxiter: int | None = None,
    rng: object = None,
) -> float:
    r"""The 2-norm condition number ``sigma_max / sigma_min`` of the layer's matrix.

    Parameters
    ----------
    weight, input_length, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv1d_matrix`.
    tol, maxiter : optional
        For the Lanczos estimate of large non-circulant layers (``eigsh``).
    rng : None, int or numpy.random.Generator, optional
        Seeds the Lanczos start vector; ``None`` means seed 0 (deterministic).

    Returns
    -------
    float
        ``inf`` when the matrix is singular, i.e. when
        ``sigma_min <= max(m, n) * eps * sigma_max`` (numpy's rank tolerance).

    Notes
    -----
    ``sigma_min`` is the smallest of the ``min(m, n)`` singular values (so a
    wide matrix is judged on its rows, as ``numpy.linalg.cond`` does).

    * block-circulant layers: exact, from every symbol matrix's SVD;
    * at most :data:`DENSE_LIMIT` entries: exact, dense SVD;
    * larger, up to ``4e6`` nonzeros: ``sigma_max`` from the certified
      bracket of :func:`spectral_norm_bounds` (its attained lower end, within
      ``1e-6``), ``sigma_min`` by shift-invert Lanczos at zero on a sparse LU
      of :math:`[[0, M], [M^H, 0]]` (or of the smaller Gram matrix when ``M``
      is not square): fast and accurate even for very ill-conditioned layers;
    * larger still: an *estimate* from the two ends of the spectrum of
      ``M^H M`` (or ``M M^H`` if wide) by Lanczos (``scipy.sparse.linalg.eigsh``,
      ``which='BE'``); the smallest end may converge slowly.

    Examples
    --------
    >>> condition_number([1.0, 2.0, 3.0], 4, padding=1, padding_mode="circular")
    3.0
    >>> condition_number([1.0, -1.0], 4, padding=1, padding_mode="circular", stride=1)
    inf
    """
    layer = _layer(weight, input_length, stride, padding, dilation, groups, padding_mode)
    m, n = layer.shape
    if layer.geom.is_circulant:
        values = _circulant_spectrum(layer)
    elif _dense_ok(layer):
        values = np.linalg.svd(_dense(layer), compute_uv=False)
    else:
        bottom = _smallest_singular_value(layer)
        if bottom is None:
            values = _lanczos_ends(layer, tol=tol, maxiter=maxiter, rng=rng)
        else:
            lower, _ = _bracket(layer, 1e-6, 50, _rng(rng))
            values = np.array([lower, bottom])
    top, bottom = float(values.max()), float(values.min())
    if top == 0 or bottom <= max(m, n) * _EPS * top:
        return math.inf
    return top / bottom


def _smallest_singular_value(layer: Layer) -> float | None:
    r"""``sigma_min`` by shift-invert Lanczos at zero on a sparse LU, or ``None`` if too large.

    A square ``M``: the eigenvalues of :math:`\begin{pmatrix} 0 & M \\ M^H & 0
    \end{pmatrix}` are :math:`\pm\sigma_i`, so the one nearest zero is
    ``sigma_min`` to an accuracy of ``eps * sigma_max`` (the Gram matrix would
    square the condition number). A rectangular ``M``: the smaller Gram matrix,
    whose eigenvalues are :math:`\sigma_i^2`. ``0.0`` when the LU finds the
    matrix exactly singular.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh, splu

    m, n = layer.shape
    if m * layer.group_channels * layer.geom.kernel_size > _SHIFT_INVERT_MAX_NNZ:
        return None
    M = layer_matrix(layer, fmt="csc")
    if m == n:
        A = sp.block_array([[None, M], [M.conj().T, None]], format="csc")
    else:
        A = (M.conj().T @ M if m > n else M @ M.conj().T).tocsc()
    try:
        lu = splu(A)
    except RuntimeError:  # "Factor is exactly singular"
        return 0.0
    inverse = LinearOperator(A.shape, matvec=lu.solve, dtype=A.dtype)
    k = 2 if m == n else 1  # +-sigma_min are a pair
    vals = eigsh(
        A,
        k=k,
        sigma=0,
        which="LM",
        OPinv=inverse,
        v0=np.ones(A.shape[0]),
        return_eigenvectors=False,
    )
    smallest = float(np.abs(vals).min())
    if m == n:
        return smallest
    # sigma^2 of the Gram matrix: below its rounding level the matrix is singular
    if smallest <= max(m, n) * _EPS * float(abs(A).sum(axis=0).max()):  # ||A||_1 >= ||A||_2
        return 0.0
    return math.sqrt(smallest)


def _lanczos_ends(layer: Layer, *, tol: float, maxiter: int | None, rng: object) -> np.ndarray:
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = _operator(layer)
    m, n = layer.shape
    check_memory(  # ARPACK keeps ncv = 20 Lanczos vectors
        24 * op.dtype.itemsize * max(m, n),
        f"Lanczos on the Gram matrix of a {layer.shape} matrix",
        "use a shorter input",
    )
    gen = _rng(rng)
    if m >= n:
        gram = LinearOperator((n, n), matvec=lambda v: op.rmatvec(op.matvec(v)), dtype=op.dtype)
    else:
        gram = LinearOperator((m, m), matvec=lambda v: op.matvec(op.rmatvec(v)), dtype=op.dtype)
    v0 = gen.standard_normal(gram.shape[0])
    vals = eigsh(gram, k=2, which="BE", tol=tol, maxiter=maxiter, v0=v0, return_eigenvectors=False)
    return np.sqrt(np.clip(vals, 0, None))

r"""Krylov methods: attained lower bounds on the norm, start vectors, the top singular values.

Every value these return is attained by a vector (a Rayleigh quotient), so it is
a certified lower bound on the largest singular value. The block Krylov engine
(:func:`block_krylov`) and the start blocks at the symbol's peaks also serve
``sigma_min`` (:mod:`._smallest`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from .._arrays import check_memory
from .._layer import Layer
from .._linop import LayerOperator
from .._threads import run
from ._method import Budget
from ._symbol import EPS, Symbol, is_real, layer_symbol, svdvals, top_vector

__all__ = [
    "EUCLIDEAN",
    "Euclidean",
    "Ritz",
    "SplitOperator",
    "basis_size",
    "block_krylov",
    "edge_vector",
    "gram_apply",
    "lanczos_lower",
    "output_block",
    "peak_grid",
    "random_vector",
    "start_block",
    "start_vector",
    "svds_top",
    "symbol_peaks",
    "top_singular_values",
    "vector_norm",
]


def vector_norm(x: np.ndarray) -> float:
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


def start_vector(layer: Layer, sym: Symbol, theta: object) -> tuple[np.ndarray, np.ndarray | None]:
    """The circulant's top singular vector restricted to the signal, sine-windowed per axis.

    ``x[c, l] = u[c, r(l)] prod_a e^{i theta_a m_a} sin(pi (l_a + 1) / (L_a + 1))``
    for ``l_a = m_a s_a + r_a`` (``r(l)`` the flat phase): near the top of the
    spectrum ``M^H M`` acts like a second-difference operator on each axis
    modulated at ``theta``, whose top eigenvector this is up to O(1/L^2).
    `theta` is a float (1-D) or ``n`` angles.

    Returns ``(x, M x)``; ``M x`` is computed from the separable form (``K``
    outer products instead of a convolution) for real 1-D weights and stride 1,
    else ``None``.
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    R = math.prod(g.stride for g in layer.geoms)
    u = top_vector(sym, theta).reshape(layer.in_channels, R)
    if layer.ndim == 1 and R == 1 and is_real(layer):
        return _start_vector_1d(layer, u, float(theta[0]))
    x = _windowed_exponential(layer, u, theta, (1,) * layer.ndim)
    if is_real(layer):
        re, im = x.real, x.imag  # the real or the imaginary part, whichever is larger
        x = re if vector_norm(re.ravel()) >= vector_norm(im.ravel()) else im
    x = np.ascontiguousarray(x).ravel()
    return x / vector_norm(x), None


def _windowed_exponential(
    layer: Layer, u: np.ndarray, theta: np.ndarray, j: tuple[int, ...]
) -> np.ndarray:
    r"""``x[c, l] = u[c, r(l)] prod_a e^{i theta_a (m_a - mean)} sin(pi j_a l_a')``.

    ``l_a = m_a s_a + r_a``, ``l_a' = (l_a + 1) / (L_a + 1)``, ``r(l)`` the flat phase;
    `u` has shape ``(C_in, prod(s_a))``. Returns ``(C_in, prod(L_a))``, complex.
    """
    phase = np.zeros(layer.input_size)
    window = np.ones(layer.input_size)
    rflat = np.zeros(layer.input_size, dtype=np.int64)
    for a, g in enumerate(layer.geoms):
        L, s = g.input_length, g.stride
        pos = np.arange(L)
        m, r = np.divmod(pos, s)
        shape = [1] * layer.ndim
        shape[a] = L
        phase = phase + (theta[a] * (m - m.mean())).reshape(shape)
        window = window * np.sin(np.pi * j[a] * (pos + 1) / (L + 1)).reshape(shape)
        rflat = rflat * s + r.reshape(shape)
    wave = np.exp(1j * phase) * window
    return u[:, rflat.ravel()] * wave.ravel()[None, :]


def _start_vector_1d(
    layer: Layer, u: np.ndarray, theta: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`start_vector` for a real 1-D stride-1 layer, with ``M x`` from its separable form."""
    L = layer.geom.input_length
    pos = np.arange(L)
    phase = theta * (pos - pos.mean())
    window = np.sin(np.pi * (pos + 1) / (L + 1))
    cw, sw = np.cos(phase) * window, np.sin(phase) * window
    # contiguous copies: ufunc.outer over a strided column view is ~10x slower
    ur, ui = np.ascontiguousarray(u.real[:, 0]), np.ascontiguousarray(u.imag[:, 0])
    cc, ss, cs = cw @ cw, sw @ sw, cw @ sw
    real_part = (ur @ ur) * cc + (ui @ ui) * ss - 2 * (ur @ ui) * cs
    imag_part = (ui @ ui) * cc + (ur @ ur) * ss + 2 * (ur @ ui) * cs
    if real_part < imag_part:
        ur, ui = ui, -ur  # Im(u e^{ip}) = Re(-i u e^{ip})
    # x = ur cw^T - ui sw^T as one (C, 2) @ (2, L) product
    x = np.stack([ur, -ui], axis=1) @ np.stack([cw, sw])
    scale = vector_norm(x.ravel())
    return x.ravel() / scale, _separable_product(layer, ur, ui, cw, sw) / scale


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


class SplitOperator:
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
        w, g = layer.weight, layer.geoms
        c_out, c_in = w.shape[:2]
        self.rows = [
            LayerOperator(Layer(np.ascontiguousarray(w[a:b]), g, 1))
            for a, b in ((0, c_out // 2), (c_out // 2, c_out))
        ]
        self.cols = [
            LayerOperator(Layer(np.ascontiguousarray(w[:, a:b]), g, 1))
            for a, b in ((0, c_in // 2), (c_in // 2, c_in))
        ]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self._halves(x, self.rows, lambda op, v: op.matvec(v))

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        return self._halves(y, self.cols, lambda op, v: op.rmatvec(v))

    @staticmethod
    def _halves(
        v: np.ndarray,
        ops: list[LayerOperator],
        apply: Callable[[LayerOperator, np.ndarray], np.ndarray],
    ) -> np.ndarray:
        parts: list[Any] = [None, None]  # filled by the two tasks

        def task(i: int) -> None:
            parts[i] = apply(ops[i], v)

        run([lambda: task(0), lambda: task(1)])
        return np.concatenate(parts)


def lanczos_lower(
    op: LinearOperator | SplitOperator,
    x0: np.ndarray,
    *,
    steps: int,
    target: float = np.inf,
    stall: float = 0.0,
    mx0: np.ndarray | None = None,
    deadline: float | None = None,
) -> tuple[float, int]:
    """A lower bound ``||M v|| / ||v||`` from a Krylov space of ``M^H M`` built on `x0`.

    Stops after `steps` Lanczos steps, once the bound reaches `target`, once
    two steps together raised it by less than ``stall`` (relative), or at
    `deadline` (``time.monotonic()``). Returns
    ``(lower, steps taken)``; ``lower`` is attained by ``v = V y``: it is
    ``sqrt(y^H (MV)^H (MV) y / y^H V^H V y)`` with both Gram matrices computed
    from the vectors, a true quotient up to rounding (for which it is lowered by
    a few ulps).
    """
    scale = vector_norm(x0)
    V = [x0 / scale]
    MV = [op.matvec(V[0]) if mx0 is None else mx0 / scale]
    H = np.array([[_dot(MV[0], MV[0])]])  # Gram matrix of M V
    GV = np.array([[_dot(V[0], V[0])]])  # Gram matrix of V (the identity, up to rounding)
    history = [math.sqrt(max(H[0, 0].real, 0.0) / GV[0, 0].real)]
    j = 0
    while j < steps and history[-1] < target:
        if j >= 2 and history[-1] - history[-3] <= stall * history[-1]:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        w = op.rmatvec(MV[j])
        for _ in range(2):  # full reorthogonalisation, twice is enough
            for v in V:
                w -= _dot(v, w) * v
        norm = vector_norm(w)
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
    return history[-1] * (1 - 64 * EPS), j


def edge_vector(layer: Layer, rng: np.random.Generator | None) -> np.ndarray:
    """A random unit vector on the samples near the ends of the signal on every axis."""
    near = np.zeros(layer.input_size, dtype=bool)
    for a, g in enumerate(layer.geoms):
        L = g.input_length
        width = min(L, 2 * (g.dilation * (g.kernel_size - 1) + max(g.pad_left, g.pad_right)) + 2)
        edge = np.zeros(L, dtype=bool)
        edge[:width] = True
        edge[L - width :] = True
        shape = [1] * layer.ndim
        shape[a] = L
        near = near | edge.reshape(shape)
    return random_vector(layer, rng, near)


def random_vector(
    layer: Layer, rng: np.random.Generator | None, where: np.ndarray | None = None
) -> np.ndarray:
    """A random unit input vector (standard normal entries), zero off the mask `where`.

    `where` is a boolean array of shape ``input_size`` (``None``: every sample);
    ``rng=None`` means seed 0.
    """
    gen = rng if rng is not None else np.random.default_rng(0)
    if where is None:
        x = gen.standard_normal(layer.shape[1])
    else:
        x = np.zeros((layer.in_channels, where.size))
        cells = np.flatnonzero(where.ravel())
        x[:, cells] = gen.standard_normal((layer.in_channels, cells.size))
        x = x.ravel()
    return x / vector_norm(x)


# --------------------------------------------------------------------------- block Krylov
class Ritz(NamedTuple):
    """Ritz pairs of a Hermitian positive semi-definite operator, largest first.

    ``values[i]`` is ``v_i^H A v_i`` for the unit vector ``vectors[:, i]``; an exact
    eigenvalue lies within ``residuals[i] = ||A v_i - values[i] v_i||`` of it, and
    (Cauchy interlacing) ``values[i]`` is at most the ``i``-th largest eigenvalue.
    """

    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    converged: bool
    steps: int


def _h(X: np.ndarray) -> np.ndarray:
    """The conjugate transpose, a view for real arrays (``.conj()`` would copy)."""
    return X.T if X.dtype.kind != "c" else X.conj().T


class Euclidean:
    """Inner products of blocks of column vectors held whole by this process.

    :func:`block_krylov` reaches its vectors only through these three methods, so a
    distributed space (each process holding a slab of rows, the products summed over
    the processes) runs the same iteration: see :mod:`toeplitz_conv.mpi`.
    """

    def gram(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``A^H B``."""
        return _h(A) @ B

    def norms(self, X: np.ndarray) -> np.ndarray:
        """The columns' 2-norms."""
        return np.linalg.norm(X, axis=0)

    def span(self, X: np.ndarray, G: np.ndarray) -> np.ndarray:
        """An orthonormal basis of the numerical range of `X` (Gram matrix `G`): a
        Householder QR with column pivoting, which drops the dependent columns (without
        pivoting, a dependent column early on would drop an independent one later)."""
        Q, R, _ = scipy.linalg.qr(X, mode="economic", pivoting=True)
        return Q[:, : int(np.count_nonzero(np.abs(np.diag(R)) > 1e-10))]


EUCLIDEAN = Euclidean()


def _orthonormal(
    X: np.ndarray, against: np.ndarray | None = None, inner: Euclidean = EUCLIDEAN
) -> np.ndarray:
    """An orthonormal basis of the columns of `X` minus the span of `against` (orthonormal).

    Two rounds of projection and Cholesky QR (a ``b x b`` Gram matrix per round,
    all in matrix products); columns whose norm falls below ``1e-10`` of what
    they had, or a Gram matrix that is not positive definite, fall back to
    ``inner.span`` (a pivoted QR), which drops them. The second projection is
    skipped only when the first kept most of every column *and* its Cholesky factor
    ``C`` was well conditioned: ``C^{-1}`` multiplies the rounding left along
    `against` by up to ``||C^{-1}||``, so a nearly dependent block (residuals of a
    basis that almost fills the space) would come out orthonormal but far from
    orthogonal to it.
    """
    scale = inner.norms(X)
    X = X[:, scale > 0] / scale[scale > 0]
    for round_ in range(2):  # twice is enough (Kahan)
        once = False  # one projection is enough (Parlett): little removed, little amplified
        if against is not None and against.shape[1]:
            before = inner.norms(X)
            X = X - against @ inner.gram(against, X)
            kept = inner.norms(X) / np.where(before > 0, before, 1)
            once = round_ == 0 and kept.min(initial=1.0) > 0.5
            if round_ == 1:
                # a second projection that again removed most of a column: it lies in the
                # span numerically (Daniel, Gragg, Kaufman & Stewart 1976), drop it
                X = X[:, kept > 0.5]
        if X.shape[1] == 0:
            return X
        G = inner.gram(X, X)
        d = np.sqrt(np.maximum(np.diag(G).real, 0.0))
        try:
            if d.min() < 1e-5:
                raise np.linalg.LinAlgError
            C = np.linalg.cholesky(G)
            Cinv = np.linalg.inv(C)
            X = X @ _h(Cinv)  # X C^{-H}: (X C^{-H})^H (X C^{-H}) = I
            if once and np.linalg.norm(Cinv, 2) <= 2:
                against = None
        except np.linalg.LinAlgError:
            X = inner.span(X, G)
    return X


def block_krylov(
    apply: Callable[[np.ndarray], np.ndarray],
    X0: np.ndarray,
    k: int,
    *,
    tol: float,
    budget: Budget,
    max_basis: int,
    aim: Callable[[np.ndarray], np.ndarray] | None = None,
    inner: Euclidean = EUCLIDEAN,
) -> Ritz:
    r"""The `k` largest eigenpairs of a Hermitian PSD ``A`` from a block Krylov space on `X0`.

    Each step adds the residuals ``A u_i - theta_i u_i`` of the current block of
    Ritz vectors that have not converged to the basis (a block Krylov space, as
    block Lanczos builds, kept orthonormal explicitly), applies ``A`` to them
    (`apply` takes an ``(n, b)`` block), and does Rayleigh-Ritz on the whole
    basis; past `max_basis` columns it restarts from the best ``2 b`` Ritz
    vectors (thick restart). It stops when every one of the `k` residuals is at
    most ``2 tol theta_i`` (so ``sqrt(theta_i)`` is within about ``tol`` of a
    singular value) or at the rounding floor, or when the `budget` runs out.
    `aim`, if given, maps the Ritz values to the residuals wanted instead of
    ``2 tol theta_i``. `inner` computes the inner products (a distributed one
    lets every process hold a slab of rows of the vectors).

    For a unit ``v``, ``|lambda - theta| <= ||A v - theta v||`` for some eigenvalue
    ``lambda`` (Parlett, *The Symmetric Eigenvalue Problem*, Thm 4.5.1): each
    value's residual is a certified error.
    """
    W = _orthonormal(X0, inner=inner)
    if W.shape[1] == 0:
        raise ValueError("the start block of a block Krylov method is zero")
    b = W.shape[1]
    n = W.shape[0]
    max_basis = max(max_basis, 2 * b + b)
    dtype = np.result_type(W.dtype, apply(W[:, :1]).dtype)
    V = np.empty((n, max_basis), dtype=dtype, order="F")
    AV = np.empty((n, max_basis), dtype=dtype, order="F")
    used = 0
    H = np.zeros((0, 0), dtype=dtype)
    step = 0
    while True:
        AW = apply(W)
        if not np.isfinite(AW).all():  # overflow: A (an inverse) is numerically unbounded
            return Ritz(np.full(k, np.inf), W[:, :k], np.zeros(k), True, step)
        cross = inner.gram(V[:, :used], AW)
        H = np.block([[H, cross], [_h(cross), inner.gram(W, AW)]])
        V[:, used : used + W.shape[1]] = W
        AV[:, used : used + W.shape[1]] = AW
        used += W.shape[1]
        theta, Y = np.linalg.eigh(0.5 * (H + _h(H)))
        theta, Y = theta[::-1], Y[:, ::-1]
        top = min(k + 3, theta.size)  # the wanted values and three guards
        U = V[:, :used] @ Y[:, :top]
        R = AV[:, :used] @ Y[:, :top] - U * theta[:top]
        resid = inner.norms(R)
        floor = 1e3 * EPS * max(abs(theta[0]), 0.0) * math.sqrt(top)
        wanted = 2 * tol * np.abs(theta[:top]) if aim is None else aim(theta[:top])
        aim_ = np.maximum(wanted, floor)
        converged = bool(np.all(resid[:k] <= aim_[:k]))
        if converged or budget.expired(step):
            return Ritz(theta[:k], U[:, :k], resid[:k], converged, step)
        step += 1
        live = resid > aim_  # converged Ritz vectors add nothing
        W = _orthonormal(R[:, live], V[:, :used], inner)
        if W.shape[1] == 0:  # the basis is invariant: the Ritz pairs are exact
            return Ritz(theta[:k], U[:, :k], resid[:k], True, step)
        if used + W.shape[1] > max_basis:  # thick restart on the best Ritz vectors
            keep = min(2 * b, theta.size, max_basis - W.shape[1])
            V[:, :keep] = V[:, :used] @ Y[:, :keep]
            AV[:, :keep] = AV[:, :used] @ Y[:, :keep]
            used = keep
            H = np.diag(theta[:keep]).astype(dtype)
            W = _orthonormal(W, V[:, :used], inner)


def symbol_peaks(
    sym: Symbol, n: int | tuple[int, ...], count: int, *, smallest: bool = False
) -> list:
    """The `count` highest local maxima (lowest minima) of the symbol's singular values.

    Over the grid of angles ``2 pi f_a / n_a`` (and each group and each singular
    value), each refined by a parabola per axis; returns ``(value, theta, group,
    index)`` tuples, best first (``theta`` an array of ``n`` angles; ``index``
    orders the singular values of ``A(theta)``, largest first).
    """
    n = (int(n),) if isinstance(n, (int, np.integer)) else tuple(int(v) for v in n)
    nax = len(n)
    f = np.stack(np.meshgrid(*(np.arange(v) for v in n), indexing="ij"), axis=-1)
    f = f.reshape(-1, nax)
    vals = svdvals(sym(2 * np.pi * f / np.array(n)))  # (prod n, groups, r)
    vals = vals.reshape(*n, *vals.shape[1:])
    if smallest:
        vals = -vals
    near = [(np.roll(vals, 1, axis=a), np.roll(vals, -1, axis=a)) for a in range(nax)]
    peak = np.ones(vals.shape, dtype=bool)
    for left, right in near:
        peak &= (vals >= left) & (vals >= right)
    where = np.argwhere(peak)
    score = vals[peak]
    order = np.argsort(-score, kind="stable")
    out, seen = [], set()
    for i in order:
        idx = tuple(int(v) for v in where[i])
        fi, g, r = idx[:nax], idx[nax], idx[nax + 1]
        if (fi, g) in seen:  # one start per angle and group: its vectors cover every index
            continue
        seen.add((fi, g))
        c = vals[idx]
        theta = np.empty(nax)
        for a, (left, right) in enumerate(near):
            lo, hi = left[idx], right[idx]
            curv = lo - 2 * c + hi
            shift = 0.0 if curv >= 0 else float(np.clip(0.5 * (lo - hi) / curv, -0.5, 0.5))
            theta[a] = 2 * np.pi * (fi[a] + shift) / n[a]
        out.append((abs(float(c)), theta, g, r))
        if len(out) == count:
            break
    return out


def _modes(
    layer: Layer, sym: Symbol, theta: float, group: int, index: int, windows: int
) -> np.ndarray:
    r"""Windowed exponentials at `theta`, ``j = 1 .. windows`` of them.

    The model ``x[c, m s + r] = u[c, r] e^{i theta m} sin(pi j (l + 1) / (L + 1))``
    (``u`` the right singular vector number `index` of ``A(theta)`` in group
    `group`, ``l = m s + r``) is an eigenvector of a second difference modulated
    at `theta`, which ``M^H M`` resembles near a peak of the symbol. The sine is
    two exponentials at ``theta +- a`` (``a = pi j s / (L + 1)`` per polyphase
    sample); each gets the singular vector of ``A`` at its own angle (phase
    aligned with ``u``), which follows the symbol to first order:

    .. math::

        x = \frac{1}{2i}\big(u(\theta + a) e^{i a (l + 1) / s}
            - u(\theta - a) e^{-i a (l + 1) / s}\big) e^{i \theta m}.

    Real weights: the real and imaginary parts (both approximate eigenvectors
    of the real ``M^H M``). Shape ``(n, count)``.
    """
    if layer.ndim != 1:
        return _modes_nd(layer, sym, theta, group, index, windows)
    g = layer.geom
    theta = float(np.atleast_1d(theta)[0])
    L, s = g.input_length, g.stride
    steps = np.pi * s * np.arange(1, windows + 1) / (L + 1)
    angles = np.concatenate([[theta], theta + steps, theta - steps])
    A = sym(angles)[:, group]  # (angles, m, n)
    _, _, vh = np.linalg.svd(A)
    pick = min(index, vh.shape[1] - 1)
    vecs = vh[:, pick, :].conj()  # (angles, n): right singular vectors
    overlap = vecs @ vecs[0].conj()
    vecs = vecs * np.exp(-1j * np.angle(np.where(overlap != 0, overlap, 1)))[:, None]
    full = np.zeros((angles.size, A.shape[2] * sym.Q.shape[0]), dtype=np.complex128)
    full[:, group * A.shape[2] : (group + 1) * A.shape[2]] = vecs
    u = full.reshape(angles.size, layer.in_channels, s)
    pos = np.arange(L)
    m, r = np.divmod(pos, s)
    wave = np.exp(1j * theta * (m - m.mean()))
    cols = []
    for j in range(1, windows + 1):
        plus = np.exp(1j * np.pi * j * (pos + 1) / (L + 1))
        x = (u[j][:, r] * plus - u[windows + j][:, r] * plus.conj()) * (wave / 2j)
        x = x.ravel()
        if is_real(layer):
            cols += [x.real, x.imag]
        else:
            cols.append(x)
    return np.stack(cols, axis=1)


def _modes_nd(
    layer: Layer, sym: Symbol, theta: object, group: int, index: int, windows: int
) -> np.ndarray:
    """Windowed exponentials at `theta` (see :func:`_windowed_exponential`), shape ``(n, count)``.

    ``u`` is the right singular vector number `index` of ``A(theta)`` (in group
    `group`); the windows ``sin(pi j_a l'_a)`` are the `windows` lowest modes
    (smallest ``sum_a (j_a / L_a)^2``): near a peak of the symbol, ``M^H M`` acts
    like a second difference per axis modulated at `theta`, whose eigenvectors
    these are up to O(1/L^2). Real weights: the real and imaginary parts (both
    approximate eigenvectors of the real ``M^H M``).
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    A = sym(theta[None, :])[0]  # (groups, m, n)
    _, _, vh = np.linalg.svd(A[group])
    u = np.zeros((A.shape[0], A.shape[2]), dtype=np.complex128)
    u[group] = vh[min(index, vh.shape[0] - 1)].conj()
    u = u.reshape(layer.in_channels, -1)
    sizes = np.array(layer.input_size, dtype=np.float64) + 1
    js = np.stack(
        np.meshgrid(*(np.arange(1, windows + 1) for _ in sizes), indexing="ij"), axis=-1
    ).reshape(-1, sizes.size)
    js = js[np.argsort(((js / sizes) ** 2).sum(axis=1), kind="stable")[:windows]]
    cols = []
    for j in js:
        x = _windowed_exponential(layer, u, theta, tuple(int(v) for v in j)).ravel()
        if is_real(layer):
            cols += [x.real, x.imag]
        else:
            cols.append(x)
    return np.stack(cols, axis=1)


def gram_apply(op: LinearOperator, wide: bool) -> Callable[[np.ndarray], np.ndarray]:
    """``X -> M^H M X`` (or ``M M^H X`` for a wide ``M``), on blocks."""
    if wide:
        return lambda X: op.matmat(op.rmatmat(X))
    return lambda X: op.rmatmat(op.matmat(X))


def peak_grid(layer: Layer) -> tuple[int, ...]:
    """Grid points per axis where the symbol's peaks are sought: a few thousand in all."""
    floor = {1: 64, 2: 32}.get(layer.ndim, 12)
    return tuple(
        int(min(max(-(-(g.input_length + g.pad_left + g.pad_right) // g.stride), floor), 2048))
        for g in layer.geoms
    )


def start_block(
    layer: Layer, sym: Symbol, k: int, rng: np.random.Generator, *, smallest: bool = False
) -> np.ndarray:
    """Start vectors for the `k` largest (or smallest) singular values, shape ``(C_in L, b)``.

    `k` windows at the symbol's highest peak (lowest trough), one at each of the
    next three, two random vectors, and for reflect/replicate/circular padding
    a random vector on the edges (where the padding may lift or lower the spectrum).
    """
    peaks = symbol_peaks(sym, peak_grid(layer), 4, smallest=smallest)
    cols = []
    for i, (_, theta, group, index) in enumerate(peaks):
        cols.append(_modes(layer, sym, theta, group, index, k if i == 0 else 1))
    # a little noise in each window: a window can be an exact eigenvector (a 1-tap
    # layer), whose zero residual would stop the Krylov method at its value before the
    # random vectors below reach a larger one (a singular layer found regular)
    size = sum(layer.shape[1:])
    cols = [
        c + 1e-3 * np.linalg.norm(c, axis=0) * rng.standard_normal(c.shape) / math.sqrt(size)
        for c in cols
    ]
    cols.append(rng.standard_normal((size, 2)))
    if layer.geoms[0].padding_mode != "zeros":
        cols.append(edge_vector(layer, rng)[:, None])
    X = np.concatenate(cols, axis=1)
    return X.real.copy() if is_real(layer) else X.astype(np.complex128)


def output_block(op: LinearOperator, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``M X`` and two random vectors: a start block in the output space of a wide ``M``.

    The random vectors keep the block nonzero when ``M X`` vanishes (a weight
    whose symbol peaks lie in the null space, or the zero map).
    """
    MX = op.matmat(X)
    extra = rng.standard_normal((MX.shape[0], 2))
    return np.concatenate([MX, extra.astype(MX.dtype)], axis=1)


def basis_size(rows: int, block: int, itemsize: int, what: str) -> int:
    """Most basis vectors (and images) for `block`-wide steps: 256 MiB, at least 3 blocks."""
    check_memory(
        2 * 3 * block * rows * itemsize,
        f"{what}'s {3 * block} Krylov vectors",
        "use a shorter input or a smaller k",
    )
    return int(max(3 * block, min(8 * block, 2**28 // (2 * rows * itemsize))))


def top_singular_values(
    layer: Layer, k: int, *, tol: float, budget: Budget, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, bool, int]:
    """The `k` largest singular values by block Krylov on the Gram matrix, with errors.

    Returns ``(values, errors, converged, steps)``: each ``values[i] <= sigma_i``
    (it is ``||M v_i||`` for a unit ``v_i``, and Ritz values interlace) and an exact
    singular value lies within ``errors[i]`` of it.
    """
    op = LayerOperator(layer)
    m, n = layer.shape
    wide = m < n
    basis_size(max(m, n), 2 * k + 9, op.dtype.itemsize, "singular_values")  # before allocating
    sym = layer_symbol(layer)
    X = start_block(layer, sym, k, rng)
    if wide:
        X = output_block(op, X, rng)  # the left singular vectors live in the output space
    max_basis = basis_size(min(m, n), X.shape[1], op.dtype.itemsize, "singular_values")
    ritz = block_krylov(gram_apply(op, wide), X, k, tol=tol, budget=budget, max_basis=max_basis)
    theta = np.maximum(ritz.values, 0.0)
    values = np.sqrt(theta)
    errors = values - np.sqrt(np.maximum(theta - ritz.residuals, 0.0))
    return values, errors, ritz.converged, ritz.steps


def svds_top(
    layer: Layer, k: int, *, tol: float, budget: Budget, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, bool]:
    """ARPACK's `k` largest, with `budget`: on no convergence, the values it had (and a flag)."""
    from scipy.sparse.linalg import ArpackNoConvergence, svds

    m, n = layer.shape
    if k >= min(m, n):
        raise ValueError(
            f"`k` must be smaller than min(rows, cols) = {min(m, n)} for svds; got {k} "
            "(use method='dense')"
        )
    op = LayerOperator(layer)
    v0 = rng.standard_normal(min(m, n))
    values: Any  # the singular values only: the stubs type the vectors triple
    try:
        values = svds(
            op,
            k=k,
            tol=tol,
            which="LM",
            return_singular_vectors=False,
            v0=v0,
            maxiter=max(budget.maxiter, 1),
            random_state=rng,
        )
        done = True
    except ArpackNoConvergence as exc:
        values, done = np.sqrt(np.abs(np.asarray(exc.eigenvalues, dtype=float))), False
    values = np.sort(np.asarray(values, dtype=float))[::-1][:k]
    # ARPACK may stop with fewer than k converged values: the rest are unknown (nan)
    values = np.concatenate([values, np.full(k - values.size, np.nan)])
    return values, np.full(values.shape, np.nan), done

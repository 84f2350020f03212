r"""Krylov methods: attained lower bounds on the norm, start vectors, and ``sigma_min``.

Every value these return is attained by a vector (a Rayleigh quotient), so it is
a certified lower bound on the largest singular value (or upper bound on the
smallest).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ._arrays import check_memory
from ._layer import Layer
from ._symbol import _EPS, _is_real, _operator, _Symbol, _top_vector
from ._threads import run
from .matrices import layer_matrix

# sigma_min by a sparse LU (shift-invert) while M has at most this many nonzeros
_SHIFT_INVERT_MAX_NNZ = 4_000_000


def _rng(rng: object) -> np.random.Generator:
    try:
        return np.random.default_rng(0 if rng is None else rng)
    except (TypeError, ValueError):
        raise TypeError(
            f"`rng` must be None, an int seed or a numpy.random.Generator; got {rng!r}"
        ) from None


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


def _start_vector(
    layer: Layer, sym: _Symbol, theta: object
) -> tuple[np.ndarray, np.ndarray | None]:
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
    geoms = layer.geoms
    strides = tuple(g.stride for g in geoms)
    R = math.prod(strides)
    u = _top_vector(sym, theta).reshape(layer.in_channels, R)
    if layer.ndim == 1 and strides[0] == 1 and _is_real(layer):
        return _start_vector_1d(layer, u, float(theta[0]))
    phase = np.zeros(layer.input_size)
    window = np.ones(layer.input_size)
    rflat = np.zeros(layer.input_size, dtype=np.int64)
    for a, g in enumerate(geoms):
        L, s = g.input_length, g.stride
        pos = np.arange(L)
        m, r = np.divmod(pos, s)
        shape = [1] * layer.ndim
        shape[a] = L
        phase = phase + (theta[a] * (m - m.mean())).reshape(shape)
        window = window * np.sin(np.pi * (pos + 1) / (L + 1)).reshape(shape)
        rflat = rflat * s + r.reshape(shape)
    wave = np.exp(1j * phase) * window
    x = u[:, rflat.ravel()] * wave.ravel()[None, :]  # (C_in, prod(L))
    if _is_real(layer):
        re, im = x.real, x.imag  # the real or the imaginary part, whichever is larger
        x = re if _norm(re.ravel()) >= _norm(im.ravel()) else im
    x = np.ascontiguousarray(x).ravel()
    return x / _norm(x), None


def _start_vector_1d(
    layer: Layer, u: np.ndarray, theta: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`_start_vector` for a real 1-D stride-1 layer, with ``M x`` from its separable form."""
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
    scale = _norm(x.ravel())
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
        w, g = layer.weight, layer.geoms
        c_out, c_in = w.shape[:2]
        self.rows = [
            _operator(Layer(np.ascontiguousarray(w[a:b]), g, 1))
            for a, b in ((0, c_out // 2), (c_out // 2, c_out))
        ]
        self.cols = [
            _operator(Layer(np.ascontiguousarray(w[:, a:b]), g, 1))
            for a, b in ((0, c_in // 2), (c_in // 2, c_in))
        ]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self._halves(x, self.rows, lambda op, v: op.matvec(v))

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        return self._halves(y, self.cols, lambda op, v: op.rmatvec(v))

    @staticmethod
    def _halves(v: np.ndarray, ops: list, apply) -> np.ndarray:
        parts: list = [None, None]

        def task(i: int) -> None:
            parts[i] = apply(ops[i], v)

        run([lambda: task(0), lambda: task(1)])
        return np.concatenate(parts)


def _lanczos_lower(
    op: object,
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


def _edge_vector(layer: Layer, rng: np.random.Generator | None) -> np.ndarray:
    """A random unit vector on the samples near the ends of the signal on every axis."""
    gen = rng if rng is not None else np.random.default_rng(0)
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
    x = np.zeros((layer.in_channels, near.size))
    where = np.flatnonzero(near.ravel())
    x[:, where] = gen.standard_normal((layer.in_channels, where.size))
    x = x.ravel()
    return x / _norm(x)


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
    if m * layer.group_channels * math.prod(layer.kernel_size) > _SHIFT_INVERT_MAX_NNZ:
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

r"""Spectral analysis of the distributed operator: Lanczos with ``allreduce``\ d inner products.

Every rank keeps its slab of the Lanczos vectors; an inner product is a local dot product
followed by one ``allreduce``. The upper end of the norm bracket needs only the weight
(the library's single-process certificate on the layer), so no rank ever forms a global
vector for it.
"""

from __future__ import annotations

import numpy as np

from .. import spectral as _spectral
from .._arrays import check_memory
from .._geometry import check_int
from .._public import warn_caller
from ..spectral._method import check_rtol
from ._comm import collective, same_on_every_rank
from ._operator import MPIConvOperator, MPIConvTransposeOperator

__all__ = ["singular_values", "spectral_norm_bounds"]


def _check_operator(op: object) -> MPIConvOperator:
    """The conv operator to analyse: `op`, or the one a transposed operator transposes
    (the same singular values: ``M(w)^T`` and ``M(conj w)`` have those of ``M(w)``)."""
    if isinstance(op, MPIConvTransposeOperator):
        return op.conv
    if not isinstance(op, MPIConvOperator):
        raise TypeError(
            "`op` must be an MPIConvOperator or MPIConvTransposeOperator (from "
            f"mpi_conv_operator or mpi_conv_transpose_operator); got {type(op).__name__}"
        )
    return op


def _gram(comm: object, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A^H B`` over the ranks: rows of `A` and `B` are local slabs of vectors."""
    local = np.ascontiguousarray(A.conj() @ B.T)
    out = np.empty_like(local)
    comm.Allreduce(local, out)
    return out


def _lanczos(op: MPIConvOperator, steps: int, block: int, seed: int, done) -> tuple:
    """Block Lanczos on ``M^H M`` with full reorthogonalisation, distributed by slabs.

    Each step applies ``M`` then ``M^H`` to a block of `block` vectors (one halo
    exchange per product carries the whole block); inner products are local products
    followed by one ``Allreduce``. ``done(theta, residuals)`` (Ritz values descending
    and their residual norms ``||M^H M v - theta v||``) stops it early. Returns
    ``(theta, residuals, V, Y, products)``: ``V`` the local slabs of the orthonormal
    basis (rows), ``Y`` the Ritz vectors' coordinates (columns, descending).
    """
    comm = op.comm
    n_local = int(np.prod(op.input_shape))
    dtype = np.result_type(op.dtype, np.float64)
    p = max(1, min(block, op.shape[1]))
    cap = max(p, min(steps, op.shape[1]))
    check_memory(
        cap * n_local * dtype.itemsize,
        f"the Lanczos basis ({cap} vectors of {n_local} local entries)",
        "use a smaller `maxiter` or block, or more ranks",
    )
    rng = np.random.default_rng([seed, comm.Get_rank()])
    Q = rng.standard_normal((p, n_local)).astype(dtype)
    if dtype.kind == "c":
        Q += 1j * rng.standard_normal((p, n_local))
    V = np.empty((cap, n_local), dtype=dtype)
    H = np.zeros((cap, cap), dtype=dtype)
    for _ in range(2):  # orthonormalise the start block (Cholesky QR, twice)
        Q = np.linalg.solve(np.linalg.cholesky(_gram(comm, Q, Q).T), Q)
    theta = res = Y = None
    m = 0
    while True:
        b = Q.shape[0]
        V[m : m + b] = Q
        m += b
        W = op._apply_adjoint(op._apply(Q.reshape(b, *op.input_shape))).reshape(b, -1)
        for _ in range(2):  # full reorthogonalisation; twice is enough
            coef = _gram(comm, V[:m], W)  # (m, b)
            W = W - coef.T @ V[:m]
            H[:m, m - b : m] += coef
        T = (H[:m, :m] + H[:m, :m].conj().T) / 2
        theta, Y = np.linalg.eigh(T)
        theta, Y = theta[::-1], Y[:, ::-1]
        G = _gram(comm, W, W)  # G[i, k] = <w_i, w_k>
        y = Y[m - b : m]  # ||M^H M v - theta v||^2 = y^H G y over the last block
        res = np.sqrt(np.maximum(np.einsum("ij,ik,kj->j", y.conj(), G, y).real, 0.0))
        if done(theta, res) or m >= cap:
            break
        s, U = np.linalg.eigh((G + G.conj().T) / 2)
        keep = s > (1e-12 * max(abs(theta[0]), 1e-300)) ** 2
        if not keep.any():  # an invariant subspace: these Ritz values are exact
            break
        C = (U[:, keep] / np.sqrt(s[keep]))[:, ::-1][:, : cap - m]  # q_a = sum_i C[i, a] w_i
        Q = C.T @ W
        H[m : m + C.shape[1], m - b : m] = C.conj().T @ G
    return theta, res, V[:m], Y, m


def spectral_norm_bounds(
    op: MPIConvOperator, *, rtol: float = 1e-6, maxiter: int = 50, seed: int = 0
) -> _spectral.NormBounds:
    r"""A certified bracket on ``||M||_2`` of a distributed operator (collective).

    Parameters
    ----------
    op : MPIConvOperator or MPIConvTransposeOperator
    rtol : float, optional
        Stop the Lanczos iteration once ``upper - lower <= rtol * upper``.
    maxiter : int, optional
        Most Lanczos steps (each one distributed ``M`` and one ``M^H`` product); each
        rank stores that many vectors of its slab. Warns when the budget ends first.
    seed : int, optional
        Seeds the start vector (per rank, so the start depends on the number of ranks).

    Returns
    -------
    NormBounds
        ``upper`` from the weight alone: :func:`toeplitz_conv.spectral_norm_bounds` on
        the layer (circulant embedding, exact for block-circulant layers), computed on
        rank 0 and broadcast. ``lower = ||M v|| / ||v||`` for the top Ritz vector ``v`` of
        a distributed Lanczos on ``M^H M`` (inner products by ``allreduce``), or the
        single-process lower end when that is higher.

    Examples
    --------
    >>> import numpy as np
    >>> from toeplitz_conv.mpi import mpi_conv_operator, spectral_norm_bounds
    >>> op = mpi_conv_operator(np.array([1.0, -2.0, 1.0]), 400, padding=1)
    >>> lo, hi = spectral_norm_bounds(op)
    >>> bool(lo <= 4.0 and hi - lo <= 1e-6 * hi)
    True
    """

    def check() -> tuple[MPIConvOperator, float, int]:
        conv = _check_operator(op)
        r = check_rtol(rtol)
        return conv, r, check_int(maxiter, "maxiter", minimum=1)

    comm = getattr(op, "comm", None) or _world()
    op, tol, steps = collective(comm, check)
    same_on_every_rank(comm, rtol=tol, maxiter=steps, seed=seed)
    comm = op.comm
    spec = op.spec

    def certificate() -> tuple[float, float] | None:
        if comm.Get_rank() != 0:
            return None
        b = _spectral.spectral_norm_bounds(
            spec.weight,
            spec.size(),
            maxiter=0,
            rtol=tol,
            groups=spec.groups,
            padding_mode=spec.mode,
            **spec.axis_kwargs(),
        )
        return float(b.lower), float(b.upper)

    lo0, upper = comm.bcast(collective(comm, certificate), root=0)
    if upper - lo0 <= tol * upper:
        return _spectral.NormBounds(lo0, upper)

    def done(theta: np.ndarray, res: np.ndarray) -> bool:
        return upper - np.sqrt(max(theta[0], 0.0)) <= tol * upper

    _, _, V, Y, m = _lanczos(op, steps, 1, seed, done)
    v = (Y[:, 0] @ V).reshape(1, *op.input_shape)
    mv = op._apply(v)
    num = comm.allreduce(float(np.vdot(mv, mv).real))
    den = comm.allreduce(float(np.vdot(v, v).real))
    lower = max(lo0, float(np.sqrt(num / den)) * (1 - 1e-14))
    if upper - lower > tol * upper:
        warn_caller(
            f"spectral_norm_bounds: after {m} Lanczos steps (maxiter={steps}) the bracket "
            f"[{lower:.10g}, {upper:.10g}] is {(upper - lower) / upper:.2e} wide relative, "
            f"wider than rtol={tol:g}; raise maxiter for a tighter lower end"
        )
    return _spectral.NormBounds(lower, upper)


def singular_values(
    op: MPIConvOperator,
    k: int = 6,
    *,
    tol: float = 1e-8,
    maxiter: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The `k` largest singular values of a distributed operator, by distributed Lanczos.

    Collective. Lanczos on ``M^H M`` with full reorthogonalisation; a Ritz value
    ``theta_j`` has converged when its residual bound ``beta_m |y_{m,j}|`` is at most
    ``tol * theta_1``.

    Parameters
    ----------
    op : MPIConvOperator or MPIConvTransposeOperator
    k : int, optional
        How many, largest first.
    tol : float, optional
        Relative residual for convergence.
    maxiter : int, optional
        Most Lanczos steps; default ``max(4 k + 40, 100)``. Each rank stores that many
        vectors of its slab. Warns (with the residual reached) when the budget ends first.
    seed : int, optional
        Seeds the start vector.

    Returns
    -------
    ndarray of float64, shape (k,)
        Descending; the same on every rank.

    Examples
    --------
    >>> import numpy as np
    >>> import toeplitz_conv as tc
    >>> from toeplitz_conv.mpi import mpi_conv_operator, singular_values
    >>> w = np.array([[[1.0, 2.0, 0.5]]])
    >>> s = singular_values(mpi_conv_operator(w, 60, padding=1), k=3)
    >>> bool(np.allclose(s, tc.singular_values(w, 60, padding=1)[:3]))
    True
    """

    def check() -> tuple[MPIConvOperator, int, int, float]:
        conv = _check_operator(op)
        n = min(op.shape)
        kk = check_int(k, "k", minimum=1)
        if kk > n:
            raise ValueError(f"`k` must be at most min(M.shape) = {n}; got {kk}")
        steps = (
            max(4 * kk + 40, 100) if maxiter is None else check_int(maxiter, "maxiter", minimum=1)
        )
        if steps < kk:
            raise ValueError(f"`maxiter` must be at least `k`={kk}; got {steps}")
        t = float(tol)
        if not t > 0:
            raise ValueError(f"`tol` must be a positive number; got {tol!r}")
        return conv, kk, steps, t

    comm = getattr(op, "comm", None) or _world()
    op, kk, steps, t = collective(comm, check)
    same_on_every_rank(comm, k=kk, tol=t, maxiter=steps, seed=seed)

    def done(theta: np.ndarray, res: np.ndarray) -> bool:
        return theta.size >= kk and bool(np.all(res[:kk] <= t * max(theta[0], 1e-300)))

    theta, res, _, _, m = _lanczos(op, steps, min(kk, 4), seed, done)
    if theta.size < kk:
        raise ValueError(f"`k`={kk} exceeds the Krylov space's dimension {theta.size}")
    worst = float(np.max(res[:kk]) / max(theta[0], 1e-300))
    if worst > t:
        warn_caller(
            f"singular_values: after {m} Lanczos products (maxiter={steps}) the top {kk} Ritz "
            f"values have relative residuals up to {worst:.2e} > tol={t:g}; raise maxiter"
        )
    return np.sqrt(np.maximum(theta[:kk], 0.0))


def _world() -> object:
    from mpi4py import MPI

    return MPI.COMM_WORLD

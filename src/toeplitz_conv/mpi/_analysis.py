r"""Spectral analysis of the distributed operator: the library's block Krylov iteration
(:func:`toeplitz_conv.spectral._krylov.block_krylov`) on slabs of its vectors.

Every rank keeps its slab (rows) of the Krylov vectors; an inner product is a local
product followed by one ``Allreduce`` (:class:`_Slabs`). The upper end of the norm
bracket needs only the weight (the library's single-process certificate on the layer),
so no rank ever forms a global vector for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import spectral as _spectral
from .._arrays import check_memory
from .._geometry import check_int
from .._public import warn_caller
from ..spectral._bracket import norm_bounds
from ..spectral._krylov import Euclidean, Ritz, block_krylov
from ..spectral._method import Budget, check_rtol
from ..spectral._symbol import in_float64, unit_scaled
from ._comm import collective, same_on_every_rank
from ._operator import MPIConvOperator, MPIConvTransposeOperator

if TYPE_CHECKING:
    from mpi4py import MPI

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


class _Slabs(Euclidean):
    """Inner products of vectors whose rows are split into the ranks' slabs: a local
    product, then one ``Allreduce`` (the same result on every rank)."""

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm

    def _sum(self, local: np.ndarray) -> np.ndarray:
        local = np.ascontiguousarray(local)
        out = np.empty_like(local)
        self.comm.Allreduce(local, out)
        return out

    def gram(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return self._sum(A.conj().T @ B)

    def norms(self, X: np.ndarray) -> np.ndarray:
        return np.sqrt(self._sum(np.einsum("ij,ij->j", X.conj(), X).real))

    def span(self, X: np.ndarray, G: np.ndarray) -> np.ndarray:
        """An orthonormal basis of the numerical range from the Gram matrix alone
        (directions below ``1e-6`` of the largest are dropped as dependent)."""
        s, U = np.linalg.eigh(0.5 * (G + G.conj().T))
        keep = s > 1e-12 * max(s.max(initial=0.0), 1e-300)
        return X @ (U[:, keep] / np.sqrt(s[keep]))


def _top_eigenpairs(
    op: MPIConvOperator,
    k: int,
    steps: int,
    seed: int,
    aim: Callable[[np.ndarray], np.ndarray] | None,
) -> Ritz:
    """Block Krylov on ``M^H M`` over the ranks: the top `k` Ritz pairs (local slabs of
    the vectors). `steps` bounds the block steps and, with restarts, the basis size."""
    shape = op.input_shape
    n_local = int(np.prod(shape))
    dtype = np.result_type(op.dtype, np.float64)
    block = max(1, min(k, 4, op.shape[1]))
    max_basis = max(3 * (k + 3), min(steps, op.shape[1]))
    check_memory(
        2 * max_basis * n_local * dtype.itemsize,
        f"the Krylov basis ({max_basis} vectors of {n_local} local entries, and their images)",
        "use a smaller `maxiter` or k, or more ranks",
    )
    rng = np.random.default_rng([seed, op.comm.Get_rank()])
    X0 = rng.standard_normal((n_local, block)).astype(dtype)
    if dtype.kind == "c":
        X0 += 1j * rng.standard_normal((n_local, block))

    def gram_apply(X: np.ndarray) -> np.ndarray:
        b = X.shape[1]
        batch = np.ascontiguousarray(X.T).reshape(b, *shape)
        return op.adjoint_local(op.forward_local(batch)).reshape(b, -1).T

    budget = Budget(steps, None)
    return block_krylov(
        gram_apply,
        X0,
        k,
        tol=0.0,
        budget=budget,
        max_basis=max_basis,
        aim=aim,
        inner=_Slabs(op.comm),
    )


def spectral_norm_bounds(
    op: MPIConvOperator | MPIConvTransposeOperator,
    *,
    rtol: float = 1e-6,
    maxiter: int = 50,
    seed: int = 0,
) -> _spectral.NormBounds:
    r"""A certified bracket on ``||M||_2`` of a distributed operator (collective).

    Parameters
    ----------
    op : MPIConvOperator or MPIConvTransposeOperator
    rtol : float, optional
        Stop the Krylov iteration once ``upper - lower <= rtol * upper``.
    maxiter : int, optional
        Most block Krylov steps (each one distributed ``M`` and one ``M^H`` product of a
        block); each rank stores at most that many vectors of its slab (and their
        images). Warns when the budget ends first.
    seed : int, optional
        Seeds the start vector (per rank, so the start depends on the number of ranks).

    Returns
    -------
    NormBounds
        ``upper`` from the weight alone: :func:`toeplitz_conv.spectral_norm_bounds` on
        the layer (circulant embedding, exact for block-circulant layers), computed on
        rank 0 and broadcast. ``lower = ||M v|| / ||v||`` for the top Ritz vector ``v`` of
        a distributed block Krylov on ``M^H M`` (inner products by ``allreduce``), or the
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

    comm: MPI.Comm = getattr(op, "comm", None) or _world()
    op, tol, steps = collective(comm, check)
    same_on_every_rank(comm, rtol=tol, maxiter=steps, seed=seed)
    comm = op.comm
    spec = op.spec

    def certificate() -> tuple[float, float] | None:
        if comm.Get_rank() != 0:
            return None
        layer, e = unit_scaled(in_float64(spec))  # results times 2^e, at any magnitude
        b = norm_bounds(layer, tol, Budget(0, None))
        return float(np.ldexp(b.lower, e)), float(np.ldexp(b.upper, e))

    lo0, upper = comm.bcast(collective(comm, certificate), root=0)
    if upper - lo0 <= tol * upper:
        return _spectral.NormBounds(lo0, upper)

    def aim(theta: np.ndarray) -> np.ndarray:  # done once the bracket is narrow enough
        narrow = upper - np.sqrt(max(theta[0], 0.0)) <= tol * upper
        return np.full(theta.shape, np.inf if narrow else 0.0)

    ritz = _top_eigenpairs(op, 1, steps, seed, aim)
    m = ritz.steps
    v = ritz.vectors[:, :1].T.reshape(1, *op.input_shape)
    mv = op.forward_local(v)
    num = comm.allreduce(float(np.vdot(mv, mv).real))
    den = comm.allreduce(float(np.vdot(v, v).real))
    attained = float(np.sqrt(num / den)) * (1 - 1e-14)  # (squares overflow past ~1e154)
    lower = max(lo0, attained) if math.isfinite(attained) else lo0
    if upper - lower > tol * upper:
        warn_caller(
            f"spectral_norm_bounds: after {m} block Krylov steps (maxiter={steps}) the bracket "
            f"[{lower:.10g}, {upper:.10g}] is {(upper - lower) / upper:.2e} wide relative, "
            f"wider than rtol={tol:g}; raise maxiter for a tighter lower end"
        )
    return _spectral.NormBounds(lower, upper)


def singular_values(
    op: MPIConvOperator | MPIConvTransposeOperator,
    k: int = 6,
    *,
    tol: float = 1e-8,
    maxiter: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The `k` largest singular values of a distributed operator, by distributed block Krylov.

    Collective. The library's block Krylov iteration on ``M^H M`` (explicitly
    orthonormal basis, thick restarts), inner products by ``Allreduce``; a Ritz value
    ``theta_j`` has converged when its residual ``||M^H M v_j - theta_j v_j||`` is at
    most ``tol * theta_1``.

    Parameters
    ----------
    op : MPIConvOperator or MPIConvTransposeOperator
    k : int, optional
        How many, largest first.
    tol : float, optional
        Relative residual for convergence.
    maxiter : int, optional
        Most block Krylov steps; default ``max(4 k + 40, 100)``. Each rank stores at most
        that many vectors of its slab (and their images). Warns (with the residual
        reached) when the budget ends first.
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

    comm: MPI.Comm = getattr(op, "comm", None) or _world()
    op, kk, steps, t = collective(comm, check)
    same_on_every_rank(comm, k=kk, tol=t, maxiter=steps, seed=seed)

    def aim(theta: np.ndarray) -> np.ndarray:
        return np.full(theta.shape, t * max(theta[0], 1e-300))

    ritz = _top_eigenpairs(op, kk, steps, seed, aim)
    theta, res, m = ritz.values, ritz.residuals, ritz.steps
    if theta.size < kk:
        raise ValueError(f"`k`={kk} exceeds the Krylov space's dimension {theta.size}")
    worst = float(np.max(res[:kk]) / max(theta[0], 1e-300))
    if worst > t:
        warn_caller(
            f"singular_values: after {m} block Krylov steps (maxiter={steps}) the top {kk} "
            f"Ritz values have relative residuals up to {worst:.2e} > tol={t:g}; raise maxiter"
        )
    return np.sqrt(np.maximum(theta[:kk], 0.0))


def _world() -> MPI.Comm:
    from mpi4py import MPI

    return MPI.COMM_WORLD

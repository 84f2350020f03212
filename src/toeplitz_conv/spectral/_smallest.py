r"""``sigma_min`` of a layer past the dense limit: shift-invert on a sparse LU, or block Krylov.

The value returned is ``||B v||`` for a unit vector ``v`` (``B = M``, or ``M^H`` when
``M`` is wide), so it is a certified upper bound on the smallest singular value; the
residual gives an exact singular value within its error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._build import layer_matrix
from .._layer import Layer
from .._linop import LayerOperator
from .._public import warn_caller
from ._bracket import bracket
from ._krylov import (
    basis_size,
    block_krylov,
    gram_apply,
    output_block,
    peak_grid,
    start_block,
    symbol_peaks,
    top_singular_values,
    vector_norm,
)
from ._method import Budget, shift_invert_affordable
from ._symbol import EPS, layer_symbol

if TYPE_CHECKING:
    from scipy.sparse.linalg import SuperLU

__all__ = ["extreme_values", "smallest_singular_value"]


def _position_major(channels: int, length: int) -> np.ndarray:
    """The permutation ``new j <- old perm[j]`` from channel-major to position-major order."""
    j = np.arange(channels * length)
    return (j % channels) * length + j // channels


def smallest_singular_value(
    layer: Layer, *, tol: float, budget: Budget, rng: np.random.Generator, top: float
) -> tuple[float, float, bool | np.bool_, str]:
    r"""``sigma_min`` (of the ``min(m, n)`` singular values) with an error, within `budget`.

    While ``M`` has at most :data:`SHIFT_INVERT_MAX_NNZ` nonzeros
    (:func:`shift_invert_affordable`): shift-invert at
    zero, block Krylov on ``(B^H B)^{-1}`` (``B = M``, or ``M^H`` when ``M`` is wide),
    whose largest eigenvalue ``mu`` is ``1 / sigma_min^2``, applied by a sparse LU:

    * square ``M``: an LU of ``M`` (two solves per product);
    * ``B`` tall (``p x q``): an LU of the augmented matrix
      ``K = [[alpha I, B], [B^H, 0]]``, whose solution of ``K [r; x] = [0; v]`` is
      ``x = -alpha (B^H B)^{-1} v``. Unlike an LU of the Gram matrix ``B^H B``, whose
      rounding moves ``sigma_min`` by ``eps sigma_max^2`` (relative ``eps kappa^2``:
      ``inf`` for ``kappa ~ 1e6``), its backward error moves it by
      ``eps sigma_max (1 + sigma_min / alpha + alpha / sigma_min)`` (Bjorck 1996,
      2.5.3), so `alpha` starts at ``sqrt(eps) sigma_max`` and is moved to the
      ``sigma_min`` found if that is far below.

    An exactly singular LU, or a solve that overflows, means ``sigma_min = 0``.
    The Ritz vector gets one more inverse product (a step of inverse iteration:
    its components along large singular values, which ``||B v||`` would multiply
    by ``sigma_i / sigma_min``, shrink by ``(sigma_min / sigma_i)^2``), so that
    ``||B v||`` is as accurate as the Ritz value.

    Larger: block Krylov on ``top^2 I - M^H M``, whose largest eigenvalue is
    ``top^2 - sigma_min^2`` (slow on clustered spectra, and limited to relative
    ``eps kappa^2`` by the rounding of ``M^H M``: the budget decides). `top` must
    be at least ``sigma_max``.

    Returns ``(value, error, converged, how)``: ``value = ||B v||`` for a unit ``v``
    (so ``sigma_min <= value``), an exact singular value within ``error`` (from
    the residual, plus a margin for the rounding), and ``converged`` when
    ``error <= tol * value`` (about; ``tol = 0``: the Krylov residuals reached their
    rounding floor).
    """
    m, n = layer.shape
    wide = m < n
    op = LayerOperator(layer)
    basis_size(max(m, n), 16, op.dtype.itemsize, "condition_number")  # before allocating
    sym = layer_symbol(layer)
    X = start_block(layer, sym, 2, rng, smallest=True)
    if wide:
        X = output_block(op, X, rng)
    side = min(m, n)
    max_basis = basis_size(side, X.shape[1], op.dtype.itemsize, "condition_number")

    def forward(v: np.ndarray) -> np.ndarray:  # B v
        return op.matvec(v) if not wide else op.rmatvec(v)

    if shift_invert_affordable(layer):
        trough = symbol_peaks(sym, peak_grid(layer), 1, smallest=True)[0][0]
        return _shift_invert(layer, forward, X, wide, tol, budget, max_basis, top, trough)
    how = "block Krylov on top^2 I - M^H M (no LU: too many nonzeros)"
    gram = gram_apply(op, wide)
    shift = top * top

    def flipped(X: np.ndarray) -> np.ndarray:
        return shift * X - gram(X)

    def aim(theta: np.ndarray) -> np.ndarray:  # sigma^2 = shift - theta to relative 2 tol
        return 2 * tol * np.maximum(shift - theta, 0.0)

    ritz = block_krylov(flipped, X, 1, tol=tol, budget=budget, max_basis=max_basis, aim=aim)
    v = ritz.vectors[:, :1] / vector_norm(ritz.vectors[:, 0])  # unit, whatever the basis's rounding
    value = vector_norm(forward(v[:, 0]))
    # the residual of v itself (not the Ritz residual, which trusts the basis to be
    # orthonormal): an eigenvalue of M^H M within r (+ its rounding) of value^2
    r = vector_norm(gram(v)[:, 0] - value * value * v[:, 0]) + 64 * EPS * shift
    error = max(math.sqrt(value * value + r) - value, value - math.sqrt(max(value * value - r, 0)))
    return value, error, ritz.converged and (tol == 0 or error <= 1.5 * tol * value), how


def _shift_invert(
    layer: Layer,
    forward: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    wide: bool,
    tol: float,
    budget: Budget,
    max_basis: int,
    top: float,
    trough: float,
) -> tuple[float, float, bool | np.bool_, str]:
    """:func:`smallest_singular_value` by a sparse LU (see there); `trough` guesses
    ``sigma_min`` (the symbol's least singular value)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    m, n = layer.shape
    # position-major order (sample, channel) makes M banded: a cheaper LU (measured
    # 40% at 16 channels); the Krylov space lives in the permuted coordinates
    rows = _position_major(layer.out_channels, math.prod(layer.output_size))
    cols = _position_major(layer.in_channels, math.prod(layer.input_size))
    M = layer_matrix(layer, fmt="csr")[rows].tocsc()[:, cols]
    space = cols if not wide else rows
    X = X[space]
    if m == n:
        how = "shift-invert block Krylov on a sparse LU"
        try:
            lu = splu(M, permc_spec="NATURAL")
        except RuntimeError:  # "Factor is exactly singular"
            return 0.0, 0.0, True, how

        def inverse(X: np.ndarray) -> np.ndarray:
            return lu.solve(lu.solve(X, trans="H"))  # type: ignore[call-overload]  # stubs lack trans

        result = _inverse_krylov(inverse, X, space, forward, tol, budget, max_basis)
        if result is None:
            return 0.0, 0.0, True, how
        value, error, converged, _ = result
        rounding = 16 * EPS * top
    else:
        how = "shift-invert block Krylov on a sparse LU of the augmented matrix"
        B = M if m > n else M.conj().T.tocsc()
        p, q = B.shape
        alpha = max(trough, math.sqrt(EPS) * top)
        for _ in range(3):
            blocks: list[list[Any]] = [
                [alpha * sp.eye_array(p, format="csc"), B],
                [B.conj().T, None],
            ]
            K = sp.bmat(blocks)
            try:
                lu = splu(K.tocsc(), permc_spec="COLAMD")
            except RuntimeError:  # "Factor is exactly singular"
                return 0.0, 0.0, True, how

            def augmented_inverse(
                X: np.ndarray, lu: SuperLU = lu, alpha: float = alpha
            ) -> np.ndarray:
                rhs = np.zeros((p + q, X.shape[1]), dtype=np.result_type(X, B.dtype))
                rhs[p:] = X
                return lu.solve(rhs)[p:] * (-1 / alpha)

            result = _inverse_krylov(augmented_inverse, X, space, forward, tol, budget, max_basis)
            if result is None:
                return 0.0, 0.0, True, how
            value, error, converged, v = result
            # the backward error's effect, Bjorck (1996) 2.5.3: least for alpha ~ sigma_min
            rounding = 16 * EPS * top * (1 + value / alpha + alpha / max(value, EPS * top))
            if (
                value <= 0
                or alpha / 8 <= value <= 8 * alpha
                or rounding <= tol * value / 4
                or budget.out_of_time()
            ):
                break
            alpha = value
            X = np.concatenate([v[space, None], X], axis=1)  # and the vector found first
    error += rounding
    return value, error, converged and (tol == 0 or error <= 1.5 * tol * value), how


def _inverse_krylov(
    inverse: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    space: np.ndarray,
    forward: Callable[[np.ndarray], np.ndarray],
    tol: float,
    budget: Budget,
    max_basis: int,
) -> tuple[float, float, bool, np.ndarray] | None:
    """Block Krylov on the inverse Gram matrix: ``(||B v||, error, converged, v)``, ``None``
    if it is numerically unbounded (``sigma_min = 0``)."""
    with np.errstate(all="ignore"):
        ritz = block_krylov(inverse, X, 1, tol=tol, budget=budget, max_basis=max_basis)
        mu, r = float(ritz.values[0]), float(ritz.residuals[0])
        if not (np.isfinite(mu) and np.isfinite(r)) or mu <= 0:
            return None
        polished = inverse(ritz.vectors[:, :1])[:, 0]  # one step of inverse iteration
    if not np.isfinite(polished).all() or not np.any(polished):
        return None
    v = np.empty_like(polished)
    v[space] = polished / vector_norm(polished)
    value = vector_norm(forward(v))
    # an eigenvalue of the inverse within r of mu: sigma in [1/sqrt(mu + r), 1/sqrt(mu - r)]
    lo = 1 / math.sqrt(mu + r)
    hi = 1 / math.sqrt(mu - r) if mu > r else math.inf
    return value, max(value - lo, hi - value, 0.0), ritz.converged, v


def extreme_values(
    layer: Layer,
    tol: float,
    budget: Budget,
    gen: np.random.Generator,
    *,
    bounds: tuple[float, float] | None = None,
    caller: str = "condition_number",
) -> tuple[float, float]:
    """``(sigma_max, sigma_min)`` of a layer beyond the dense limit, each attained by a vector.

    ``sigma_max``: the bracket's attained lower end (its upper end proves
    ``sigma_max <= upper``); if that bracket is wider than `tol`, block Krylov from
    the symbol's peaks. ``sigma_min``: :func:`smallest_singular_value`. Both share
    `budget` (its deadline covers the whole call); a part that stops before `tol`
    warns (naming `caller`) with what it reached. `bounds`: a bracket on ``sigma_max``
    already found, instead of the bracket's upper bound without its proofs.
    """
    if bounds is None:
        rtol = min(max(tol, 1e-12), 0.5)
        bounds = bracket(layer, rtol, budget, gen, certify=False)
    lower, upper = bounds
    if upper == 0:
        return 0.0, 0.0
    done: bool | np.bool_
    if upper - lower > tol * upper:
        # the bracket is not closed (a short input, N-d, reflect/replicate): the top singular
        # value by block Krylov, whose residual says how close it is
        values, errors, done, _ = top_singular_values(layer, 1, tol=tol, budget=budget, rng=gen)
        if values[0] <= upper:  # a Ritz value is attained, so at most the proved upper end
            lower = max(lower, float(values[0]))
        error = min(upper - lower, float(errors[0]))
        if not (done or upper - lower <= tol * upper):
            warn_caller(
                f"{caller}: sigma_max by block Krylov did not reach tol={tol:g} "
                f"within its budget ({budget.describe()}): sigma_max >= {lower:.10g} (attained; "
                f"<= {upper:.10g} proved; a singular value within {error:.2g}); the condition "
                "number returned may be too small"
            )
    bottom, error, done, how = smallest_singular_value(
        layer, tol=tol, budget=budget, rng=gen, top=upper
    )
    if not done:
        warn_caller(
            f"{caller}: sigma_min by {how} ran out of its budget "
            f"({budget.describe()}) or its rounding floor before reaching tol={tol:g}: "
            f"sigma_min <= {bottom:.10g} (an exact singular value within {error:.2g}); the "
            f"condition number returned, {lower / bottom if bottom else math.inf:.10g}, "
            "may be too small"
        )
    return lower, bottom

r"""The certified bracket on a layer's spectral norm, by the method :func:`choose_method` picks.

:func:`norm_bounds` is what :func:`~toeplitz_conv.spectral_norm_bounds` returns for a
validated layer: exact (FFT or dense SVD, a rounding margin wide) where it can be,
else :func:`bracket`, whose lower end a vector attains and whose upper end is proved
(see :func:`~toeplitz_conv.spectral_norm_bounds` for the mathematics and references).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._arrays import check_memory
from .._layer import Layer
from .._linop import LayerOperator
from .._threads import max_threads
from ._certify import (
    boundary_norm,
    copies,
    embedding_lengths,
    gram_affordable,
    gram_bound,
    grid_max,
    nd_gram_affordable,
    peak_drop,
    refine_peak,
)
from ._krylov import SplitOperator, edge_vector, lanczos_lower, random_vector, start_vector
from ._localize import localized_bound
from ._method import Budget, choose_method
from ._symbol import EPS, dense_matrix, layer_symbol

__all__ = [
    "NormBounds",
    "bracket",
    "exact_bounds",
    "measure_norm",
    "norm_bounds",
]


class NormBounds(NamedTuple):
    """A certified bracket ``lower <= ||M||_2 <= upper``.

    ``lower`` is attained: it is ``||M v|| / ||v||`` for a vector ``v`` found by
    the method. ``upper`` is proved (up to floating-point rounding, for which a
    margin of a few hundred ulps is added).
    """

    lower: float
    upper: float


def _circulant_norm(layer: Layer) -> tuple[float, float]:
    """``(upper, exact)`` for a block-circulant layer: the symbol's maximum over its grid.

    ``exact`` is the largest symbol singular value at the grid frequencies (the
    norm); ``upper`` is the branch and bound's proof of it.
    """
    upper, best, _ = grid_max(layer_symbol(layer), layer.output_size, rtol=0.0)
    return float(upper), float(best)


def _dense_norm(layer: Layer) -> float:
    """``||M||_2`` by the dense matrix's SVD."""
    return float(np.linalg.norm(dense_matrix(layer), ord=2))


def exact_bounds(top: float) -> NormBounds:
    """The bracket around a norm computed exactly by an SVD: a margin of 256 ulps."""
    return NormBounds(float(top * (1 - 256 * EPS)), float(top * (1 + 256 * EPS)))


def measure_norm(
    layer: Layer, rtol: float, budget: Budget, rng: np.random.Generator | None = None
) -> tuple[str, float, NormBounds]:
    """``(method, value, bracket)`` for ``||M||_2`` of a validated layer, within `budget`.

    By :func:`choose_method`'s method for the norm: ``'fft'`` and ``'dense'`` give
    the exact value and a bracket a rounding margin wide; ``'bracket'`` gives
    :func:`bracket` (to relative width `rtol` if it can) and its attained lower end.
    """
    method = choose_method(layer, "norm")
    if method == "fft":
        upper, best = _circulant_norm(layer)
        bounds = NormBounds(float(best * (1 - 64 * EPS)), float(upper * (1 + 256 * EPS)))
        return method, best, bounds
    if method == "dense":
        top = _dense_norm(layer)
        return method, top, exact_bounds(top)
    bounds = bracket(layer, rtol, budget, rng)
    return method, bounds.lower, bounds


def norm_bounds(
    layer: Layer, rtol: float, budget: Budget, rng: np.random.Generator | None = None
) -> NormBounds:
    """The certified bracket of :func:`measure_norm`."""
    return measure_norm(layer, rtol, budget, rng)[2]


def bracket(
    layer: Layer,
    rtol: float,
    budget: Budget,
    rng: np.random.Generator | None = None,
    *,
    certify: bool = True,
) -> NormBounds:
    """The iterative bracket: the circulant's bound above, Lanczos from its peak below.

    Then, while it is wider than `rtol` and `budget` has time left, the proofs of
    :func:`~toeplitz_conv.spectral_norm_bounds`'s Notes in turn (more embedding
    lengths, the Gram certificates, the edge localisation for reflect/replicate),
    and last the dense matrix if :func:`choose_method` allows it. `budget` gives the
    Lanczos steps and the deadline every part shares. With ``certify=False`` only
    the circulant's upper bound (no proofs).
    """
    check_memory(  # the start vector, its image and a few Krylov vectors
        4 * layer.weight.itemsize * sum(layer.shape),
        f"the iterative bracket's vectors for a {layer.shape} matrix",
        "use a shorter input",
    )
    sym = layer_symbol(layer)
    mode = layer.geoms[0].padding_mode
    n0 = embedding_lengths(layer, np.nan, 1)[0]
    upper_c, _, f_best = grid_max(sym, n0, rtol=rtol / 8, deadline=budget.deadline)
    theta: float | np.ndarray
    if budget.out_of_time():  # the grid point itself: a parabola costs 2 n evaluations
        grid = np.asarray(f_best, dtype=np.float64) * (2 * np.pi / np.asarray(n0))
        theta = float(grid) if grid.ndim == 0 else grid
    else:
        theta = refine_peak(sym, f_best, n0)
    if mode == "zeros":
        factor, extra = 1.0, 0.0
    else:
        factor = math.sqrt(copies(layer))
        extra = boundary_norm(layer)

    def upper_of(u: float) -> float:
        return min(factor * u, u + extra) * (1 + 256 * EPS)

    upper = upper_of(upper_c)
    circulant = upper_c  # the least circulant bound: ||T|| for the zero-padded part
    op: LayerOperator | SplitOperator = LayerOperator(layer)
    x0, mx0 = start_vector(layer, sym, theta)
    if max_threads() > 1 and layer.groups == 1 and min(layer.weight.shape[:2]) >= 2:
        op = SplitOperator(layer)  # two halves of each product on the package's pool
    stall = rtol / 16
    if certify and nd_gram_affordable(layer, budget.deadline):
        stall = 0.0  # the Gram certificate proves lower (1 + rtol/2): converge, do not stop early
    if mode != "zeros":
        mx0 = None
        # the padding can lift the norm near the ends: give Krylov a start there too, and
        # do not stop early, since it may take many steps to find the edge
        x0 = x0 + edge_vector(layer, rng)
        stall = 0.0
    lower, _ = lanczos_lower(
        op,
        x0,
        steps=budget.maxiter,
        target=upper / (1 + rtol),
        stall=stall,
        mx0=mx0,
        deadline=budget.deadline,
    )

    def open_(upper: float) -> bool:  # not closed, and time left for the next proof
        return certify and upper - lower > rtol * upper and not budget.out_of_time()

    # a few more embedding lengths: the grid that misses the peak most gives the least bound
    lengths = embedding_lengths(layer, theta, 4) if open_(upper) else []
    if upper_of(upper_c - 2 * peak_drop(sym, f_best, n0)) > lower * (1 + rtol):
        lengths = []  # moving the grid off the peak cannot lower the bound that far
    for n in lengths[1:]:
        if not open_(upper):
            break
        u, _, _ = grid_max(
            sym, n, rtol=rtol / 8, threshold=lower * (1 + rtol / 2), deadline=budget.deadline
        )
        upper = min(upper, upper_of(u))
        circulant = min(circulant, u)
    if open_(upper) and gram_affordable(layer, budget.deadline):
        # the circulant cannot certify this close (short input, or reflect/replicate)
        cert = gram_bound(layer, lower, upper, rtol, budget.deadline)
        upper = min(upper, cert if cert is not None else np.inf)
        if open_(upper) and gram_affordable(layer, budget.deadline):
            # no proof at lower (1 + rtol/2): the top is not found yet (a cluster of
            # values, or a mode with little weight in x0). Lanczos again, longer, from x0
            # and a random vector, and a second proof if that lifted the lower end.
            more, _ = lanczos_lower(
                op,
                x0 + random_vector(layer, rng),
                steps=3 * budget.maxiter,
                target=upper / (1 + rtol),
                deadline=budget.deadline,
            )
            if more > lower * (1 + rtol / 4):
                lower = more
                cert = gram_bound(layer, lower, upper, rtol, budget.deadline)
                upper = min(upper, cert if cert is not None else np.inf)
    if open_(upper) and mode in ("reflect", "replicate"):
        # too long for the whole Gram matrix: the edges' Gram matrices and the circulant
        local = localized_bound(layer, circulant, lower, rtol, deadline=budget.deadline)
        if local is not None:
            upper = min(upper, local)
    if open_(upper) and choose_method(layer) == "dense":
        return exact_bounds(_dense_norm(layer))
    return NormBounds(float(lower), float(upper))

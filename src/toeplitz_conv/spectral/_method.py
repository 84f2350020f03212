r"""Which method answers for a layer, and within what budget: the analysis decides here.

A conv layer's matrix ``M`` (``m x n``) has three sources of truth, tried in this order,
the way :func:`scipy.signal.choose_conv_method` picks what :func:`scipy.signal.convolve`
runs:

* ``'fft'``: block-circulant (circular padding, one period of output on every axis):
  exact, from the symbol's SVD at each frequency;
* ``'dense'``: small enough for the dense matrix: exact (to rounding). A spectrum
  (every singular value: a full SVD) while ``m n <=`` :data:`DENSE_LIMIT`; the norm
  alone (``numpy.linalg.norm(M, 2)``) while ``min(m, n) <=`` :data:`DENSE_NORM_SIDE`,
  where it is cheaper than proving a bracket;
* otherwise iterative: ``'krylov'`` (block Krylov from the symbol's peaks) for
  singular values and condition numbers, ``'bracket'`` (the circulant bound above,
  Lanczos below) for the norm.

``sigma_min`` beyond the dense limit is found by shift-invert on a sparse LU while
``M`` has at most :data:`SHIFT_INVERT_MAX_NNZ` nonzeros
(:func:`shift_invert_affordable`).

Every limit is read when the choice is made, so a test may lower one for a while.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._geometry import check_choice, check_int
from .._layer import Layer
from .._typing import SeedLike
from ._symbol import is_circulant

__all__ = [
    "DENSE_LIMIT",
    "DENSE_NORM_SIDE",
    "MAXITER",
    "METHODS",
    "SHIFT_INVERT_MAX_NNZ",
    "Budget",
    "as_generator",
    "check_rtol",
    "check_tol",
    "choose_method",
    "complete_spectrum_error",
    "shift_invert_affordable",
    "spectrum_method",
]

#: Largest matrix (``rows * cols`` entries) whose spectrum is computed from the
#: dense matrix: 2**22 entries is 32 MiB in float64, e.g. 2048 x 2048, whose full
#: SVD takes about a second on one core.
DENSE_LIMIT: int = 2**22
#: The spectral norm alone by dense SVD while ``min(rows, cols)`` is at most this.
DENSE_NORM_SIDE: int = 256
#: ``sigma_min`` by a sparse LU (shift-invert) while ``M`` has at most this many nonzeros.
SHIFT_INVERT_MAX_NNZ: int = 12_000_000
#: Default budget of block Krylov steps (``singular_values``, ``condition_number``).
MAXITER: int = 100
#: The methods ``singular_values`` accepts.
METHODS: tuple[str, ...] = ("auto", "fft", "dense", "krylov", "svds")
_GOALS = ("spectrum", "norm")


# --------------------------------------------------------------------------- arguments
def check_rtol(rtol: object) -> float:
    """`rtol` as a float in ``(0, 1)``, or ``TypeError``/``ValueError`` naming it."""
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)):
        raise TypeError(f"`rtol` must be a float in (0, 1); got {rtol!r}")
    rtol = float(rtol)
    if not 0 < rtol < 1:
        raise ValueError(f"`rtol` must be a float in (0, 1); got {rtol}")
    return rtol


def check_tol(tol: object) -> float:
    """`tol` as a finite float ``>= 0``, or ``TypeError``/``ValueError`` naming it."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)):
        raise TypeError(f"`tol` must be a float >= 0; got {tol!r} of type {type(tol).__name__}")
    value = float(tol)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"`tol` must be a finite float >= 0; got {tol!r}")
    return value


def as_generator(rng: SeedLike) -> np.random.Generator:
    """`rng` (``None``: seed 0, an int seed, or a Generator) as a numpy Generator."""
    try:
        return np.random.default_rng(0 if rng is None else rng)
    except (TypeError, ValueError):
        raise TypeError(
            f"`rng` must be None, an int seed or a numpy.random.Generator; got {rng!r}"
        ) from None


class Budget:
    """Most steps and (optionally) seconds an iterative method may take, validated.

    Made once from a public function's `maxiter` (``None``: :data:`MAXITER`) and
    `time_limit` (``None`` or seconds ``> 0``) and handed down whole: its deadline is
    fixed when it is made, so every part of the call shares it. ``expired(step)`` is
    true once `step` reaches ``maxiter`` or the wall clock passes the deadline.

    Examples
    --------
    >>> Budget(None, None).describe()
    'maxiter=100'
    >>> Budget(5, 2).describe()
    'maxiter=5 or time_limit=2 s'
    >>> Budget(-1, None)
    Traceback (most recent call last):
    ...
    ValueError: `maxiter` must be an integer >= 0, got -1
    """

    def __init__(self, maxiter: object = None, time_limit: object = None) -> None:
        self.maxiter = MAXITER if maxiter is None else check_int(maxiter, "maxiter", minimum=0)
        if time_limit is not None:
            if isinstance(time_limit, bool) or not isinstance(
                time_limit, (int, float, np.floating, np.integer)
            ):
                raise TypeError(
                    f"`time_limit` must be None or a number of seconds > 0; got {time_limit!r}"
                )
            if not float(time_limit) > 0:
                raise ValueError(
                    f"`time_limit` must be None or a number of seconds > 0; got {time_limit!r}"
                )
            time_limit = float(time_limit)
        self.time_limit = time_limit
        self.deadline = None if time_limit is None else time.monotonic() + time_limit

    def expired(self, step: int) -> bool:
        return step >= self.maxiter or self.out_of_time()

    def remaining(self) -> float | None:
        """Seconds left (at least a microsecond), or ``None`` without a time limit."""
        if self.deadline is None:
            return None
        return max(self.deadline - time.monotonic(), 1e-6)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def describe(self) -> str:
        seconds = "" if self.time_limit is None else f" or time_limit={self.time_limit:g} s"
        return f"maxiter={self.maxiter}{seconds}"


# --------------------------------------------------------------------------- the choice
def choose_method(layer: Layer, goal: str = "spectrum") -> str:
    """The method that answers for `layer`: ``'fft'``, ``'dense'``, or an iterative one.

    ``goal='spectrum'`` (singular values, the condition number): ``'fft'`` for a
    block-circulant layer, ``'dense'`` while ``m n <=`` :data:`DENSE_LIMIT`, else
    ``'krylov'``. ``goal='norm'`` (the spectral norm and its bracket): ``'fft'``,
    ``'dense'`` while ``min(m, n) <=`` :data:`DENSE_NORM_SIDE`, else ``'bracket'``.
    """
    check_choice(goal, "goal", _GOALS)
    if is_circulant(layer):
        return "fft"
    m, n = layer.shape
    if goal == "norm":
        return "dense" if min(m, n) <= DENSE_NORM_SIDE else "bracket"
    return "dense" if m * n <= DENSE_LIMIT else "krylov"


def spectrum_method(layer: Layer, method: str, k: int | None) -> str:
    """``singular_values``'s `method` (one of :data:`METHODS`), resolved and checked.

    ``'auto'`` is :func:`choose_method`'s choice; ``'krylov'`` and ``'svds'`` need
    `k`; ``'fft'`` needs a block-circulant layer. `k` must already be validated.
    """
    method = check_choice(method, "method", METHODS)
    if k is None and method in ("krylov", "svds"):
        m, n = layer.shape
        full = min(m, n)
        raise ValueError(
            f"`method`={method!r} computes the k largest singular values: pass `k` "
            f"(1 <= k <= {full}), or method='dense' for all {full} of this {m}x{n} matrix"
        )
    if method == "auto":
        method = choose_method(layer)
    if method == "fft" and not is_circulant(layer):
        g = layer.geoms
        out, st, size = (
            tuple(getattr(x, a) for x in g) for a in ("output_length", "stride", "input_length")
        )
        if layer.ndim == 1:
            out, st, size = out[0], st[0], size[0]
        raise ValueError(
            "`method`='fft' needs a block-circulant layer: padding_mode='circular' "
            f"with output_length * stride == input_length on every axis; got "
            f"output_length={out}, stride={st}, input_length={size}, "
            f"padding_mode={g[0].padding_mode!r}"
        )
    return method


def complete_spectrum_error(layer: Layer) -> ValueError:
    """The error for the whole spectrum of a layer past :data:`DENSE_LIMIT` (no `k`)."""
    m, n = layer.shape
    return ValueError(
        f"the complete spectrum of this {m}x{n} matrix needs the dense matrix, "
        f"which has {m * n:,} entries, more than DENSE_LIMIT = {DENSE_LIMIT:,}; "
        "pass `k` for the k largest (by block Krylov), or method='dense' to insist"
    )


def shift_invert_affordable(layer: Layer) -> bool:
    """Whether ``sigma_min`` comes from a sparse LU: ``M`` has at most
    :data:`SHIFT_INVERT_MAX_NNZ` nonzeros (``m`` rows of ``C_in/groups prod(K_a)``)."""
    m = layer.shape[0]
    return m * layer.group_channels * math.prod(layer.kernel_size) <= SHIFT_INVERT_MAX_NNZ

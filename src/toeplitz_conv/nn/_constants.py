r"""Lipschitz constants of the elementwise activations and of max pooling.

Each function returns ``(lower, upper, how)``: the constant is attained (``lower``,
the supremum of the derivative or a ratio reached by a pair of inputs) and proved
(``upper``, the same number rounded up by a relative margin of 1e-12 where it comes
from a numerical maximisation).

No torch here: the callers read the modules' parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np

__all__ = ["activation_constant", "gelu_constant", "maxpool_constant", "silu_constant"]

_MARGIN = 1e-12  # relative: the numerical maximisations below are accurate to ~1e-15


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@cache
def gelu_constant(approximate: str = "none") -> float:
    r"""``sup_x |GELU'(x)|``: about 1.1289 (exact GELU) or 1.1297 (tanh approximation).

    Exact GELU: ``d/dx x Phi(x) = Phi(x) + x phi(x)``, whose derivative
    ``phi(x) (2 - x^2)`` vanishes at ``x = sqrt(2)``: the maximum is
    ``Phi(sqrt 2) + sqrt(2) phi(sqrt 2) = 1.12837...``, a closed form. The tanh
    approximation ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` has no closed form:
    its derivative is maximised numerically on ``[0, 4]`` (bounded Brent, to 1e-13).
    In both cases the derivative tends to 1 at ``+inf`` and 0 at ``-inf``, and is at
    least ``-0.13`` below 0, so the supremum of ``|GELU'|`` is this maximum.
    """
    if approximate == "none":
        r = math.sqrt(2.0)
        return _Phi(r) + r * _phi(r)
    c = math.sqrt(2 / math.pi)

    def deriv(x: float) -> float:
        inner = c * (x + 0.044715 * x**3)
        t = math.tanh(inner)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)

    return _maximise(deriv, 0.0, 4.0)


@cache
def silu_constant() -> float:
    r"""``sup_x |SiLU'(x)| = 1.0998...``: ``d/dx x sigma(x) = sigma(x) (1 + x (1 - sigma(x)))``.

    Maximised numerically on ``[0, 5]`` (the maximum is at ``x ~ 2.3994``; the derivative
    tends to 1 at ``+inf``, 0 at ``-inf``, and its minimum is ``-0.0998``).
    """

    def deriv(x: float) -> float:
        s = 1 / (1 + math.exp(-x))
        return s * (1 + x * (1 - s))

    return _maximise(deriv, 0.0, 5.0)


def _maximise(f: Callable[[float], float], a: float, b: float) -> float:
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(
        lambda x: -f(x), bounds=(a, b), method="bounded", options={"xatol": 1e-13}
    )
    # a dense grid guards against a local maximum (f is smooth and unimodal here)
    grid = max(f(x) for x in np.linspace(a, b, 2001))
    return max(-float(res.fun), grid)


def activation_constant(kind: str, **params: float) -> tuple[float, float, str]:
    """``(lower, upper, how)`` for the activation `kind` with its parameters.

    kinds: relu, relu6, hardtanh, identity, leaky_relu (``negative_slope``), elu
    (``alpha``), gelu (``approximate``), silu, tanh, sigmoid, softplus.
    """
    if kind in ("relu", "relu6", "hardtanh", "identity"):
        return 1.0, 1.0, "slope 1"
    if kind == "leaky_relu":
        c = max(1.0, abs(float(params["negative_slope"])))
        return c, c, "max(1, |negative_slope|)"
    if kind == "elu":
        c = max(1.0, abs(float(params["alpha"])))
        return c, c, "max(1, |alpha|)"
    if kind == "gelu":
        approx = str(params.get("approximate", "none"))
        c = gelu_constant(approx)
        how = "Phi(sqrt2) + sqrt2 phi(sqrt2)" if approx == "none" else "max GELU'(x), numerical"
        return c, c * (1 + _MARGIN), how
    if kind == "silu":
        c = silu_constant()
        return c, c * (1 + _MARGIN), "max SiLU'(x), numerical"
    if kind == "tanh":
        return 1.0, 1.0, "tanh'(0) = 1"
    if kind == "sigmoid":
        return 0.25, 0.25, "sigmoid'(0) = 1/4"
    if kind == "softplus":
        return 1.0, 1.0, "sup sigmoid(beta x) = 1"
    raise ValueError(f"no Lipschitz constant for the activation {kind!r}")  # pragma: no cover


def _window_counts(size: int, out: int, starts: list[int], ends: list[int]) -> int:
    """The most windows ``[start, end)`` (clipped to ``[0, size)``) holding one position."""
    count = np.zeros(size, dtype=np.int64)
    for a, b in zip(starts, ends, strict=True):
        count[max(a, 0) : min(b, size)] += 1
    return int(count.max()) if size else 0


def maxpool_counts(
    input_size: tuple[int, ...],
    output_size: tuple[int, ...],
    kernel: tuple[int, ...] | None,
    stride: tuple[int, ...] | None,
    padding: tuple[int, ...] | None,
    dilation: tuple[int, ...] | None,
) -> int:
    """The most pooling windows one input position belongs to (``kernel=None``: adaptive).

    Windows are separable, so the count is the product of the per-axis counts. Dilated
    windows hold every ``d``-th position only.
    """
    total = 1
    for a, (n, m) in enumerate(zip(input_size, output_size, strict=True)):
        if kernel is None:  # adaptive: [floor(j n/m), ceil((j+1) n/m))
            starts = [(j * n) // m for j in range(m)]
            ends = [-((-(j + 1) * n) // m) for j in range(m)]
            total *= _window_counts(n, m, starts, ends)
            continue
        k, s, p, d = kernel[a], stride[a], padding[a], dilation[a]  # type: ignore[index]  # all given with kernel
        count = np.zeros(n, dtype=np.int64)
        for j in range(m):
            taps = j * s - p + d * np.arange(k)
            taps = taps[(taps >= 0) & (taps < n)]
            count[taps] += 1
        total *= int(count.max()) if n else 0
    return total


def maxpool_constant(count: int) -> tuple[float, float, str]:
    r"""``(lower, upper, how)`` for a max pooling: at most `count` windows hold one position.

    ``|max_w x - max_w y| <= max_{i in w} |x_i - y_i|``, so
    ``||P(x) - P(y)||^2 <= sum_w sum_{i in w} (x_i - y_i)^2
    = sum_i n_i (x_i - y_i)^2 <= (max_i n_i) ||x - y||^2`` with ``n_i`` the number of
    windows holding ``i``: ``L <= sqrt(max_i n_i)``. Non-overlapping windows give 1, and
    1 is attained (move one maximum). The upper end is attained too, by a position in
    ``n`` windows made the maximum of each while everything else is far below: then the
    output changes in ``n`` places by the same amount, a ratio of ``sqrt(n)``; so the
    constant is exactly ``sqrt(max_i n_i)``.
    """
    c = math.sqrt(count)
    how = "non-overlapping windows" if count == 1 else f"sqrt({count} windows per position)"
    return c, c, how

"""Text of a layer: its header, numbers, the labelled matrix and certified values.

A transposed convolution is the library's :class:`~toeplitz_conv._layer.Layer` of
the convolution it transposes, with ``transpose=True``: its input is that layer's
output and the other way round (:func:`sides`).
"""

from __future__ import annotations

import decimal
import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._layer import Layer

__all__ = [
    "MAX_DIGITS",
    "certified",
    "certified_digits",
    "directed",
    "header_lines",
    "labels",
    "matrix_lines",
    "number",
    "sides",
]

#: Axis names in headers and labels: 2-D (H, W), 3-D (D, H, W).
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
#: The most significant digits printed for a certified value or bound.
MAX_DIGITS = 10


def sides(layer: Layer, transpose: bool) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """``((C_in, input size), (C_out, output size))`` of the layer or of its transpose."""
    x = (layer.in_channels, layer.input_size)
    y = (layer.out_channels, layer.output_size)
    return (y, x) if transpose else (x, y)


def number(value: Any) -> str:
    """A matrix entry: an integer without ``.0``, else 6 significant digits."""
    if isinstance(value, complex | np.complexfloating):
        if value.imag == 0:
            return number(value.real)
        return f"{complex(value):.4g}".strip("()")
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def labels(name: str, channels: int, size: tuple[int, ...]) -> list[str]:
    """``y[0], y[1], ...``; ``y[o,i]`` with channels; ``y[o,i,j]`` in 2-D (row-major)."""
    positions = [",".join(map(str, idx)) for idx in np.ndindex(*size)]
    if channels == 1:
        return [f"{name}[{p}]" for p in positions]
    return [f"{name}[{c},{p}]" for c in range(channels) for p in positions]


def matrix_lines(
    M: sp.csr_array,
    row_labels: list[str],
    col_labels: list[str],
    blocks: tuple[int, int] | None = None,
) -> list[str]:
    """The matrix with labelled rows and columns; ``.`` where no entry is stored.

    `blocks` ``(rows, cols)`` draws ``|`` and ``-`` between blocks of that size (the
    Toeplitz blocks of an N-d layer).
    """
    cells = np.full(M.shape, ".", dtype=object)
    coo = M.tocoo()
    for r, c, v in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True):
        cells[r, c] = number(v)
    widths = [max(len(col_labels[j]), *(len(s) for s in cells[:, j])) for j in range(M.shape[1])]
    left = max(len(s) for s in row_labels)
    rb, cb = blocks if blocks is not None else (0, 0)

    def join(items: list[str], gap: str = "  ", fence: str = " | ") -> str:
        parts = [items[0]]
        for j in range(1, len(items)):
            parts += [fence if cb and j % cb == 0 else gap, items[j]]
        return "".join(parts)

    header = join([lab.rjust(w) for lab, w in zip(col_labels, widths, strict=True)])
    lines = [" " * left + "  " + header]
    rule = " " * left + "  " + join(["-" * w for w in widths], "--", "-+-")
    for i, lab in enumerate(row_labels):
        if rb and i and i % rb == 0:
            lines.append(rule)
        row = join([cells[i, j].rjust(widths[j]) for j in range(M.shape[1])])
        lines.append(lab.ljust(left) + "  " + row)
    return lines


def _kernel_values(w: np.ndarray) -> str:
    """`` = [4, 3]`` or `` = [[1, 2], [3, 4]]``: a one-channel 1-D or 2-D kernel's values."""
    if w.ndim == 3:
        return " = [" + ", ".join(map(number, w[0, 0])) + "]"
    return " = [" + ", ".join("[" + ", ".join(map(number, row)) + "]" for row in w[0, 0]) + "]"


def header_lines(layer: Layer, transpose: bool) -> list[str]:
    """Shapes, weight, (per-axis) parameters and the matrix's shape of the layer."""
    n, w = layer.ndim, layer.weight
    axes = _AXES[n]
    kernel = "K" if n == 1 else ", ".join(f"K_{a + 1}" for a in range(n))
    (c_in, in_size), (c_out, out_size) = sides(layer, transpose)
    params = ", ".join(f"{k}={v!r}" for k, v in layer.arguments(transpose=transpose)[1].items())

    def sizes(names: tuple[str, ...], values: tuple[int, ...]) -> str:
        return ", ".join(f"{a}={v}" for a, v in zip(names, values, strict=True))

    if transpose:
        op, x, layout = f"conv_transpose{n}d", "z", "C_in, C_out/groups"
        ins, outs = tuple(f"{a}_in" for a in axes), tuple(f"{a}'" for a in axes)
    else:
        op, x, layout = f"conv{n}d", "x", "C_out, C_in/groups"
        ins, outs = axes, tuple(f"{a}_out" for a in axes)
    lines = [
        f"{op}: {x} (C_in={c_in}, {sizes(ins, in_size)}) -> "
        f"y (C_out={c_out}, {sizes(outs, out_size)})",
        f"weight ({layout}, {kernel}) = {w.shape}",
        params,
    ]
    if w.shape[:2] == (1, 1) and w.size <= 16 and n <= 2:  # one channel: the kernel's values
        lines[1] += _kernel_values(w)
    m, k = layer.shape[::-1] if transpose else layer.shape
    order = "" if n == 1 else " (row-major over channel, " + ", ".join(axes) + ")"
    lines.append(
        f"M: {m} x {k} = (C_out*{'*'.join(outs)}) x (C_in*{'*'.join(ins)}), "
        f"vec(y) = M @ vec({x}){order}"
    )
    return lines


def certified_digits(lo: float, hi: float) -> int:
    """Significant digits of a value in ``[lo, hi]`` that the bracket certifies (1 to 10).

    ``d = floor(log10(max(|lo|, |hi|) / (hi - lo)))``: the bracket is narrower than
    one unit in the ``d``-th significant digit, so a value of the bracket printed to
    ``d`` digits is within one unit in its last digit of everything the bracket holds.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return 1
    scale = max(abs(lo), abs(hi))
    if hi == lo or scale == 0:
        return MAX_DIGITS
    return int(min(MAX_DIGITS, max(1, math.floor(math.log10(scale / (hi - lo))))))


def certified(value: float, lo: float, hi: float) -> tuple[str, int]:
    """`value` (clipped to ``[lo, hi]``) printed to the digits ``[lo, hi]`` certifies,
    and that number of digits."""
    value = min(max(value, lo), hi) if lo <= hi else value
    digits = certified_digits(lo, hi)
    return f"{value:.{digits}g}", digits


def directed(bound: float, direction: str, digits: int = MAX_DIGITS) -> str:
    """`bound` to `digits` significant digits, rounded ``'down'`` or ``'up'``: still a bound.

    Rounding a lower bound to nearest can print a number above it; the text returned,
    read back as a float, is never above (``'down'``) or below (``'up'``) `bound`.
    """
    nearest = f"{bound:.{digits}g}"
    if not math.isfinite(bound) or (
        float(nearest) <= bound if direction == "down" else float(nearest) >= bound
    ):
        return nearest  # read back as a float, it is still the bound
    exact = decimal.Decimal(bound)
    step = decimal.Decimal(1).scaleb(exact.adjusted() - digits + 1)
    mode = decimal.ROUND_FLOOR if direction == "down" else decimal.ROUND_CEILING
    return f"{float(exact.quantize(step, rounding=mode)):.{digits}g}"

r"""The formula of a conv layer's matrix, with the user's numbers substituted.

The answer to the classic question "what is conv1d with stride and padding, as a
matrix?": the output-length arithmetic, the element formula ``y[o, i] = ...``, how the
padded signal reads the input, and where each weight lands in ``M`` -- as plain text or
as LaTeX.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ._geometry import ConvGeometry, PaddingND, check_choice
from ._layer import Layer, conv_layer, transpose_layer
from ._public import renamed_keyword
from ._typing import ArrayLike, PaddingMode

__all__ = ["formula", "layer_formula"]

_STYLES: tuple[str, ...] = ("text", "latex")
_EXPAND_MAX_TAPS = 8  # write the sum out term by term up to this many taps (1-D)
_EXPAND_MAX_TAPS_ND = 9  # and N-d: a 3x3 kernel


class _Style:
    """The few notational differences between plain text and LaTeX."""

    def __init__(self, latex: bool) -> None:
        self.latex = latex

    def sub(self, name: str, *indices: str) -> str:
        if self.latex:
            base = {"x~": r"\tilde{x}"}.get(name, name)
            return f"{base}_{{{', '.join(indices)}}}"
        return f"{name}[{', '.join(indices)}]"

    def name(self, name: str) -> str:
        if self.latex:
            return {"L_out": r"L_{\mathrm{out}}", "src": r"\operatorname{src}"}.get(name, name)
        return name

    def times(self, a: str, b: str) -> str:
        """``a`` times ``b`` where ``a`` is a number or symbol and ``b`` an expression."""
        return f"{a} \\cdot {b}" if self.latex else f"{a}*{b}"

    def coef(self, c: str, v: str) -> str:
        """A coefficient next to a variable: ``4*x[i]`` / ``4\\,x_{i}``."""
        return f"{c}\\,{v}" if self.latex else f"{c}*{v}"

    def floor(self, e: str) -> str:
        return rf"\left\lfloor {e} \right\rfloor" if self.latex else f"floor({e})"

    def frac(self, a: str, b: str) -> str:
        return rf"\frac{{{a}}}{{{b}}}" if self.latex else f"({a}) / {b}"

    def sum(self, var: str, hi: int | str) -> str:
        return rf"\sum_{{{var}=0}}^{{{hi}}} " if self.latex else f"sum_{{{var}=0}}^{{{hi}}} "

    def idiv(self, a: str, b: int) -> str:
        return rf"\lfloor {a}/{b} \rfloor" if self.latex else f"{a} // {b}"

    def mod(self, a: str, b: int) -> str:
        return rf"{a} \;\mathrm{{mod}}\; {b}" if self.latex else f"{a} mod {b}"

    def range(self, var: str, hi: int) -> str:
        if hi == 0:
            return f"{var} = 0"
        if self.latex:
            return rf"{var} = 0, \dots, {hi}" if hi > 1 else f"{var} = 0, 1"
        return f"{var} = 0, ..., {hi}" if hi > 1 else f"{var} = 0, 1"

    def quad(self) -> str:
        return r",\quad " if self.latex else ",   "


def _affine(terms: Sequence[tuple[int, str]], const: int, style: _Style) -> str:
    """``2*i + k - 1`` from ``[(2, 'i'), (1, 'k')]`` and ``-1``."""
    parts: list[str] = []
    for c, v in terms:
        if c == 0:
            continue
        term = v if abs(c) == 1 else (f"{abs(c)}{v}" if style.latex else f"{abs(c)}*{v}")
        parts.append(("- " if c < 0 else "+ ") + term)
    if const:
        parts.append(("- " if const < 0 else "+ ") + str(abs(const)))
    if not parts:
        return "0"
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _number(value: complex | float) -> str:
    """A weight as a short literal: ``4``, ``0.25``, ``-1.5e-08``, ``(1+2j)``."""
    if isinstance(value, complex) or np.iscomplexobj(value):
        return f"({complex(value):.6g})"
    return f"{float(value):.6g}"


def _expanded(w: np.ndarray, positions: Sequence[tuple[str, ...]], var: str, style: _Style) -> str:
    """``4*x[i] + 3*x[i + 1]`` for a one-channel kernel `w` (flat, one index tuple per tap)."""
    parts: list[str] = []
    for value, pos in zip(w, positions, strict=True):
        if value == 0:
            continue
        term = style.sub(var, *pos)
        if np.iscomplexobj(value) and value.imag != 0:
            parts.append("+ " + style.coef(_number(value), term))
            continue
        value = value.real
        if float(value) == 1:
            parts.append("+ " + term)
        elif float(value) == -1:
            parts.append("- " + term)
        else:
            mag = _number(abs(float(value)))
            parts.append(("- " if value < 0 else "+ ") + style.coef(mag, term))
    if not parts:
        return "0"
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _padded_signal(
    geom: ConvGeometry, style: _Style, channel: str | None
) -> tuple[str, list[str]] | None:
    """How ``x~`` reads ``x`` outside ``[0, L)``; None when nothing is padded."""
    L = geom.input_length
    if geom.pad_left == 0 and geom.pad_right == 0:
        return None
    S = style
    ch = [channel] if channel else []

    def x(pos: str) -> str:
        return S.sub("x", *ch, pos)

    mode = geom.padding_mode
    if mode == "zeros":
        rhs = f"{x('j')} if 0 <= j < {L}, else 0"
        if S.latex:
            rhs = rf"{x('j')} \text{{ if }} 0 \leq j < {L}, \text{{ else }} 0"
    elif mode == "circular":
        rhs = x(S.mod("j", L))
    elif mode == "replicate":
        rhs = x(rf"\min(\max(j, 0), {L - 1})" if S.latex else f"min(max(j, 0), {L - 1})")
    else:  # reflect: one mirror suffices as the padding is < L
        left, right = x("-j"), x(f"{2 * (L - 1)} - j")
        if S.latex:
            rhs = rf"{left} \text{{ if }} j < 0,\ {right} \text{{ if }} j \geq {L},\ "
            rhs += rf"{x('j')} \text{{ otherwise}}"
        else:
            rhs = f"{left} if j < 0, {right} if j >= {L}, {x('j')} otherwise"
    j_range = f"j = {-geom.pad_left}, ..., {L + geom.pad_right - 1}"
    note = f"(padding_mode='{mode}', {j_range})"
    if S.latex:
        dots = j_range.replace("...", r"\dots")
        note = rf"\quad \text{{(padding\_mode='{mode}')}},\ {dots}"
    return S.sub("x~", *ch, "j"), [f"= {rhs}", note]


def _channel(S: _Style, groups: int, per_group: int, G: int) -> str:
    """``g(o)*G + c`` substituted: the channel on the other side of output channel ``o``."""
    g = "0" if groups == 1 else ("o" if per_group == 1 else S.idiv("o", per_group))
    if G == 1:
        return g
    if g == "0":
        return "c"
    return _scaled(G, g, S) + " + c"


def _scaled(n: int, expr: str, S: _Style) -> str:
    """``n*expr`` with parentheses where needed; ``expr`` when ``n`` is 1."""
    atomic = (" + " not in expr and " - " not in expr) if S.latex else (" " not in expr)
    if n == 1:
        return expr
    if expr == "0":
        return "0"
    if not atomic:
        expr = f"({expr})"
    return f"{n}{expr}" if S.latex else f"{n}*{expr}"


def _plus(a: str, b: str) -> str:
    return b if a == "0" else f"{a} + {b}"


def _names(n: int) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Index names per axis: output positions, kernel taps, padded-signal positions."""
    if n == 1:
        return ("i",), ("k",), ("j",)
    if n <= 3:
        return ("i", "j", "m")[:n], ("k", "l", "n")[:n], ("u", "v", "t")[:n]
    return (
        tuple(f"i{a}" for a in range(n)),
        tuple(f"k{a}" for a in range(n)),
        tuple(f"u{a}" for a in range(n)),
    )


def _flat(sizes: Sequence[int], exprs: Sequence[str], S: _Style) -> str:
    """The row-major flat index ``4*i + j`` of per-axis indices `exprs` in a grid `sizes`."""
    parts = []
    for a, expr in enumerate(exprs):
        stride = math.prod(sizes[a + 1 :])
        if stride == 1:
            parts.append(expr)
        elif expr.startswith(S.name("src")):  # a function call is one factor
            parts.append(f"{stride}{expr}" if S.latex else f"{stride}*{expr}")
        else:
            parts.append(_scaled(stride, expr, S))
    return " + ".join(parts)


def _src(S: _Style, axis: int | None, pos: str) -> str:
    """``src(pos)`` (1-D) or ``src_0(pos)``, read as one factor."""
    name = S.name("src") + ("" if axis is None else f"_{axis}" if not S.latex else f"_{{{axis}}}")
    return f"{name}({pos})"


def _bounds_nd(conds: Sequence[tuple[str, int]], S: _Style) -> str:
    """``(only where 0 <= a < 4 and 0 <= b < 5)``."""
    if S.latex:
        inner = r",\ ".join(rf"0 \leq {e} < {n}" for e, n in conds)
        return rf"\quad \text{{(only where }} {inner} \text{{)}}"
    return "(only where " + " and ".join(f"0 <= {e} < {n}" for e, n in conds) + ")"


def _size_lines(geoms: Sequence[ConvGeometry], S: _Style) -> list[tuple[str, list[str]]]:
    """The output-size arithmetic: general, then substituted on each axis."""
    span = "d(K-1)" if S.latex else "d*(K-1)"
    if len(geoms) == 1:
        g = geoms[0]
        L, K, s, d, p_l, p_r = (
            g.input_length,
            g.kernel_size,
            g.stride,
            g.dilation,
            g.pad_left,
            g.pad_right,
        )
        general = S.floor(S.frac(f"L + p_l + p_r - {span} - 1", "s")) + " + 1"
        numbers = S.floor(
            S.frac(f"{L} + {p_l} + {p_r} - {S.times(str(d), f'({K}-1)')} - 1", str(s))
        )
        return [(S.name("L_out"), [f"= {general}", f"= {numbers} + 1", f"= {g.output_length}"])]
    if S.latex:
        general = S.floor(S.frac(r"L_a + p_{l,a} + p_{r,a} - d_a(K_a-1) - 1", "s_a")) + " + 1"
        lhs = [rf"L_{{\mathrm{{out}},{a}}}" for a in range(len(geoms))]
        lines = [(r"L_{\mathrm{out},a}", [f"= {general}"])]
    else:
        general = S.floor(S.frac("L[a] + p_l[a] + p_r[a] - d[a]*(K[a]-1) - 1", "s[a]")) + " + 1"
        lhs = [f"L_out[{a}]" for a in range(len(geoms))]
        lines = [("L_out[a]", [f"= {general}"])]
    for a, g in enumerate(geoms):
        span_n = S.times(str(g.dilation), f"({g.kernel_size}-1)")
        numbers = S.floor(
            S.frac(f"{g.input_length} + {g.pad_left} + {g.pad_right} - {span_n} - 1", str(g.stride))
        )
        lines.append((lhs[a], [f"= {numbers} + 1", f"= {g.output_length}"]))
    return lines


def _src_rule(mode: str, L: int, var: str, S: _Style) -> str:
    """Where padded position `var` of one axis reads the input, for a non-zero padding mode."""
    if mode == "circular":
        return S.mod(var, L)
    if mode == "replicate":
        return rf"\min(\max({var}, 0), {L - 1})" if S.latex else f"min(max({var}, 0), {L - 1})"
    if S.latex:  # reflect: one mirror suffices as the padding is < L
        return (
            rf"-{var} \text{{ if }} {var} < 0,\ {2 * (L - 1)} - {var} \text{{ if }} {var} \geq "
            rf"{L},\ {var} \text{{ otherwise}}"
        )
    return f"-{var} if {var} < 0, {2 * (L - 1)} - {var} if {var} >= {L}, {var} otherwise"


def _padded_signal_nd(
    geoms: Sequence[ConvGeometry], S: _Style, channel: str | None
) -> list[tuple[str, list[str]]]:
    """How ``x~`` reads ``x`` on an N-d layer: separable, one rule per padded axis."""
    _, _, us = _names(len(geoms))
    ch = [channel] if channel else []
    padded = [a for a, g in enumerate(geoms) if g.pad_left or g.pad_right]
    mode = geoms[0].padding_mode

    def span(a: int) -> str:
        g = geoms[a]
        text = f"{us[a]} = {-g.pad_left}, ..., {g.input_length + g.pad_right - 1}"
        return text.replace("...", r"\dots") if S.latex else text

    lhs = S.sub("x~", *ch, *us)
    if mode == "zeros":
        inside = S.sub("x", *ch, *us)
        if S.latex:
            conds = r",\ ".join(rf"0 \leq {us[a]} < {geoms[a].input_length}" for a in padded)
            rhs = rf"{inside} \text{{ if }} {conds}, \text{{ else }} 0"
            note = r"\quad \text{(padding\_mode='zeros')},\ " + r",\ ".join(map(span, padded))
        else:
            conds = " and ".join(f"0 <= {us[a]} < {geoms[a].input_length}" for a in padded)
            rhs = f"{inside} if {conds}, else 0"
            note = "(padding_mode='zeros', " + ", ".join(map(span, padded)) + ")"
        return [(lhs, [f"= {rhs}", note])]
    reads = [_src(S, a, us[a]) if a in padded else us[a] for a in range(len(geoms))]
    lines = [(lhs, [f"= {S.sub('x', *ch, *reads)}"])]
    for a in padded:
        if S.latex:
            note = rf"\quad \text{{(padding\_mode='{mode}')}},\ {span(a)}"
        else:
            note = f"(padding_mode='{mode}', {span(a)})"
        lines.append(
            (_src(S, a, us[a]), [f"= {_src_rule(mode, geoms[a].input_length, us[a], S)}", note])
        )
    return lines


def _conv_lines(layer: Layer, style: _Style) -> list[tuple[str, list[str]]]:
    w, geoms, groups = layer.weight, layer.geoms, layer.groups
    n = len(geoms)
    c_out, G = w.shape[:2]
    outs, taps, _ = _names(n)
    S = style
    lines = _size_lines(geoms, S)

    # the element formula
    padded = [a for a, g in enumerate(geoms) if g.pad_left or g.pad_right]
    xs = "x~" if padded else "x"
    one_channel = c_out == 1 and layer.in_channels == 1
    positions = [
        _affine([(g.stride, outs[a]), (g.dilation, taps[a])], -g.pad_left, S)
        for a, g in enumerate(geoms)
    ]
    tap_sums = "".join(S.sum(taps[a], g.kernel_size - 1) for a, g in enumerate(geoms))
    out_ranges = [S.range(outs[a], g.output_length - 1) for a, g in enumerate(geoms)]
    if one_channel:
        weight = S.sub("w", *taps)
        body = tap_sums + S.coef(weight, S.sub(xs, *positions))
        if n == 1:
            rhs = [f"= {body}{S.quad()}{out_ranges[0]}"]
        else:  # the ranges on a line of their own, after the expanded sum
            rhs = [f"= {body}"]
        if w.size <= (_EXPAND_MAX_TAPS if n == 1 else _EXPAND_MAX_TAPS_ND):
            tap_reads = [
                tuple(
                    _affine([(g.stride, outs[a])], k[a] * g.dilation - g.pad_left, S)
                    for a, g in enumerate(geoms)
                )
                for k in np.ndindex(*w.shape[2:])
            ]
            rhs.append("= " + _expanded(w[0, 0].ravel(), tap_reads, xs, S))
        if n > 1:
            ranges = ", ".join(out_ranges)
            rhs.append(rf"\quad \text{{for }} {ranges}" if S.latex else f"for {ranges}")
        lines.append((S.sub("y", *outs), rhs))
    else:
        channel = _channel(S, groups, c_out // groups, G)
        sums = (S.sum("c", G - 1) if G > 1 else "") + tap_sums
        weight = S.sub("W", "o", "c" if G > 1 else "0", *taps)
        term = S.coef(weight, S.sub(xs, channel, *positions))
        ranges = ", ".join([S.range("o", c_out - 1), *out_ranges])
        for_all = rf"\quad \text{{for }} {ranges}" if S.latex else f"for {ranges}"
        lines.append((S.sub("y", "o", *outs), [f"= {sums}{term}", for_all]))
    if n == 1:
        signal = _padded_signal(geoms[0], S, None if one_channel else "c")
        if signal is not None:
            lines.append((signal[0], signal[1]))
    elif padded:
        lines += _padded_signal_nd(geoms, S, None if one_channel else "c")

    # where each weight lands in M
    out_size, in_size = layer.output_size, layer.input_size
    if one_channel:
        row = _flat(out_size, outs, S)
    else:
        row = _affine([(math.prod(out_size), "o")], 0, S) + " + " + _flat(out_size, outs, S)
    block = "0" if one_channel else _scaled(math.prod(in_size), channel, S)
    folded = padded and geoms[0].padding_mode != "zeros"
    if folded:
        reads = [
            _src(S, None if n == 1 else a, positions[a]) if a in padded else positions[a]
            for a in range(n)
        ]
        col = _plus(block, _flat(in_size, reads, S))
        op = "{+}=" if S.latex else "+="
        note = []
    else:
        col = _plus(block, _flat(in_size, positions, S))
        op = "="
        note = [_bounds_nd([(positions[a], in_size[a]) for a in padded], S)] if padded else []
    lines.append((S.sub("M", row, col), [f"{op} {weight}", *note]))
    return lines


def _transpose_lines(layer: Layer, S: _Style) -> list[tuple[str, list[str]]]:
    # `layer.weight` is (C_in, C_out/groups, K_1..K_n) in torch's transposed layout; the
    # geometries are the conv's on L' samples with L_in output rows, whose matrix this one
    # transposes.
    w, geoms, groups = layer.weight, layer.geoms, layer.groups
    n = len(geoms)
    n_in, G = w.shape[:2]
    c_out = G * groups
    outs, taps, _ = _names(n)
    L_in, Lp = layer.output_size, layer.input_size
    # output_padding per axis: what L' has beyond the natural length
    qs = [g.output_padding for g in geoms]
    lines: list[tuple[str, list[str]]] = []
    if n == 1:
        g, q = geoms[0], qs[0]
        s, d, K, p_l, p_r = g.stride, g.dilation, g.kernel_size, g.pad_left, g.pad_right
        if S.latex:
            general = r"(L_{\mathrm{in}} - 1)s - p_l - p_r + d(K-1) + q + 1"
            numbers = rf"({L_in[0]} - 1) \cdot {s} - {p_l} - {p_r} + {d} \cdot ({K}-1) + {q} + 1"
        else:
            general = "(L_in - 1)*s - p_l - p_r + d*(K-1) + output_padding + 1"
            numbers = f"({L_in[0]} - 1)*{s} - {p_l} - {p_r} + {d}*({K}-1) + {q} + 1"
        lines.append((S.name("L'"), [f"= {general}", f"= {numbers}", f"= {Lp[0]}"]))
    else:
        if S.latex:
            general = r"(L_{\mathrm{in},a} - 1)s_a - p_{l,a} - p_{r,a} + d_a(K_a-1) + q_a + 1"
            lines.append(("L'_a", [f"= {general}"]))
        else:
            general = "(L_in[a] - 1)*s[a] - p_l[a] - p_r[a] + d[a]*(K[a]-1) + output_padding[a] + 1"
            lines.append(("L'[a]", [f"= {general}"]))
        for a, (g, q) in enumerate(zip(geoms, qs, strict=True)):
            dot = r" \cdot " if S.latex else "*"
            numbers = (
                f"({L_in[a]} - 1){dot}{g.stride} - {g.pad_left} - {g.pad_right} + "
                f"{g.dilation}{dot}({g.kernel_size}-1) + {q} + 1"
            )
            lhs = f"L'_{{{a}}}" if S.latex else f"L'[{a}]"
            lines.append((lhs, [f"= {numbers}", f"= {Lp[a]}"]))
    positions = [
        _affine([(g.stride, outs[a]), (g.dilation, taps[a])], -g.pad_left, S)
        for a, g in enumerate(geoms)
    ]
    plus = "{+}=" if S.latex else "+="
    # positions run over [-p_l, L' + p_r - q - 1]: those outside [0, L') are cut off
    clipped = [
        a for a, (g, q) in enumerate(zip(geoms, qs, strict=True)) if g.pad_left or g.pad_right > q
    ]
    out_ranges = [S.range(outs[a], L_in[a] - 1) for a in range(n)]
    tap_ranges = [S.range(taps[a], g.kernel_size - 1) for a, g in enumerate(geoms)]
    if n_in == 1 and c_out == 1:
        weight = S.sub("w", *taps)
        ranges = ", ".join([*out_ranges, *tap_ranges])
        lines.append((S.sub("y", *positions), [f"{plus} {S.coef(weight, S.sub('z', *outs))}"]))
        row, col = _flat(Lp, positions, S), _flat(L_in, outs, S)
    else:
        channel = _channel(S, groups, n_in // groups, G)
        weight = S.sub("W", "o", "c" if G > 1 else "0", *taps)
        ranges = ", ".join([S.range("o", n_in - 1), *out_ranges, *tap_ranges])
        if G > 1:
            ranges += f", {S.range('c', G - 1)}"
        term = S.coef(weight, S.sub("z", "o", *outs))
        lines.append((S.sub("y", channel, *positions), [f"{plus} {term}"]))
        row = _plus(_scaled(math.prod(Lp), channel, S), _flat(Lp, positions, S))
        col = _affine([(math.prod(L_in), "o")], 0, S) + " + " + _flat(L_in, outs, S)
    for_all = rf"\quad \text{{for }} {ranges}" if S.latex else f"for {ranges}"
    lines[-1][1].append(for_all)
    bounds = _bounds_nd([(positions[a], Lp[a]) for a in clipped], S) if clipped else None
    if bounds:
        lines[-1][1].append(bounds)
    lines.append((S.sub("M", row, col), [f"= {weight}"]))
    if bounds:
        lines[-1][1].append(bounds)
    return lines


def _render(lines: list[tuple[str, list[str]]], style: _Style) -> str:
    """Chains ``lhs = rhs_1 = rhs_2 ...``, one piece per line, aligned on the first."""
    if style.latex:
        rows = []
        for lhs, rhss in lines:
            rows.append(f"{lhs} &{rhss[0]}")
            rows.extend(f"&{rhs}" for rhs in rhss[1:])
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
    out = []
    for lhs, rhss in lines:
        out.append(f"{lhs} {rhss[0]}")
        out.extend(" " * len(lhs) + " " + rhs for rhs in rhss[1:])
    return "\n".join(out)


@renamed_keyword("input_length", "input_size")
def formula(
    weight: ArrayLike,
    input_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: PaddingND = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    transpose: bool = False,
    output_padding: int | Sequence[int] = 0,
    style: Literal["text", "latex"] = "text",
) -> str:
    r"""The matrix formula of a convolution (or transposed convolution) with your numbers in it.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, ..., K_n) or (K_1, ..., K_n)
        The kernel in torch's layout (``(C_in, C_out/groups, K_1, ..., K_n)`` when
        `transpose`); the kernel axes alone mean one channel in and out. For a single
        channel with at most 8 taps (1-D) or 9 taps (N-d, a 3x3 kernel) the sum is also
        written out with its values.
    input_size : int or tuple of int
        ``L`` (1-D), or ``(L_1, ..., L_n)`` (``L_in`` of the transposed convolution when
        `transpose`). The number of spatial axes ``n`` is as in :func:`conv_matrix`.
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`conv_matrix`: an int for every axis or one per axis.
    transpose : bool, optional
        Describe the transposed convolution (its matrix is the transpose of the conv's).
    output_padding : int or tuple of int, optional
        For `transpose` only, as in :func:`conv_transpose_matrix`.
    style : {'text', 'latex'}, optional
        Plain text, or a LaTeX ``aligned`` environment (for ``$$ ... $$`` or ``\[ ... \]``).

    Returns
    -------
    str
        Several lines: the output-size arithmetic (general, then substituted on each axis),
        the element formula ``y[o, i] = ...`` (``y[o, i, j]`` in 2-D, ``y[o, i, j, m]`` in
        3-D; taps ``k, l, n``) with the stride, dilation and padding substituted, how the
        padded signal ``x~`` reads ``x`` (per axis: padding is separable), and where each
        weight lands in ``M``. The flattening is row-major over ``(channel, L_1, ..., L_n)``,
        ``vec(x)[c*L + l] = x[c, l]`` in 1-D, so ``vec(y) = M @ vec(x)``.

    Raises
    ------
    TypeError, ValueError
        For invalid parameters, exactly as :func:`conv_matrix` would.

    Examples
    --------
    >>> print(formula([4.0, 3.0], 5))
    L_out = floor((L + p_l + p_r - d*(K-1) - 1) / s) + 1
          = floor((5 + 0 + 0 - 1*(2-1) - 1) / 1) + 1
          = 4
    y[i] = sum_{k=0}^{1} w[k]*x[i + k],   i = 0, ..., 3
         = 4*x[i] + 3*x[i + 1]
    M[i, i + k] = w[k]

    >>> print(formula([1.0, 2.0, 1.0], 6, stride=2, padding=1, padding_mode="reflect"))
    L_out = floor((L + p_l + p_r - d*(K-1) - 1) / s) + 1
          = floor((6 + 1 + 1 - 1*(3-1) - 1) / 2) + 1
          = 3
    y[i] = sum_{k=0}^{2} w[k]*x~[2*i + k - 1],   i = 0, ..., 2
         = x~[2*i - 1] + 2*x~[2*i] + x~[2*i + 1]
    x~[j] = x[-j] if j < 0, x[10 - j] if j >= 6, x[j] otherwise
          (padding_mode='reflect', j = -1, ..., 6)
    M[i, src(2*i + k - 1)] += w[k]

    >>> print(formula([4.0, 3.0], 5, style="latex"))
    \begin{aligned}
    L_{\mathrm{out}} &= \left\lfloor \frac{L + p_l + p_r - d(K-1) - 1}{s} \right\rfloor + 1 \\
    &= \left\lfloor \frac{5 + 0 + 0 - 1 \cdot (2-1) - 1}{1} \right\rfloor + 1 \\
    &= 4 \\
    y_{i} &= \sum_{k=0}^{1} w_{k}\,x_{i + k},\quad i = 0, \dots, 3 \\
    &= 4\,x_{i} + 3\,x_{i + 1} \\
    M_{i, i + k} &= w_{k}
    \end{aligned}

    In 2-D, a 2x2 kernel on a 3x4 image, stride 2 on the last axis:

    >>> print(formula([[1.0, 2.0], [3.0, 4.0]], (3, 4), stride=(1, 2), padding=(0, 1)))
    L_out[a] = floor((L[a] + p_l[a] + p_r[a] - d[a]*(K[a]-1) - 1) / s[a]) + 1
    L_out[0] = floor((3 + 0 + 0 - 1*(2-1) - 1) / 1) + 1
             = 2
    L_out[1] = floor((4 + 1 + 1 - 1*(2-1) - 1) / 2) + 1
             = 3
    y[i, j] = sum_{k=0}^{1} sum_{l=0}^{1} w[k, l]*x~[i + k, 2*j + l - 1]
            = x~[i, 2*j - 1] + 2*x~[i, 2*j] + 3*x~[i + 1, 2*j - 1] + 4*x~[i + 1, 2*j]
            for i = 0, 1, j = 0, ..., 2
    x~[u, v] = x[u, v] if 0 <= v < 4, else 0
             (padding_mode='zeros', v = -1, ..., 4)
    M[3*i + j, 4*(i + k) + 2*j + l - 1] = w[k, l]
                                        (only where 0 <= 2*j + l - 1 < 4)
    """
    check_choice(style, "style", _STYLES)
    if not isinstance(transpose, bool):
        raise TypeError(f"`transpose` must be True or False; got {transpose!r}")
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    if transpose:
        if padding_mode != "zeros":
            raise ValueError(
                "`padding_mode` of a transposed convolution must be 'zeros' (as in torch); "
                f"got {padding_mode!r}"
            )
        layer = transpose_layer(
            weight, input_size, output_padding=output_padding, ndim=None, **geometry
        )
    else:
        if output_padding != 0:
            raise ValueError(
                f"`output_padding` is for transposed convolutions only; got {output_padding!r} "
                "with transpose=False"
            )
        layer = conv_layer(weight, input_size, padding_mode=padding_mode, ndim=None, **geometry)
    return layer_formula(layer, transpose=transpose, style=style)


def layer_formula(layer: Layer, *, transpose: bool = False, style: str = "text") -> str:
    """:func:`formula` of a validated `layer` (with `transpose`, of its transposed convolution)."""
    S = _Style(style == "latex")
    return _render(_transpose_lines(layer, S) if transpose else _conv_lines(layer, S), S)

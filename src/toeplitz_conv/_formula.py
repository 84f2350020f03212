r"""The formula of a conv layer's matrix, with the user's numbers substituted.

The answer to the classic question "what is conv1d with stride and padding, as a
matrix?": the output-length arithmetic, the element formula ``y[o, i] = ...``, how the
padded signal reads the input, and where each weight lands in ``M`` -- as plain text or
as LaTeX.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._geometry import ConvGeometry, Padding, check_choice
from ._layer import conv_layer, transpose_layer

__all__ = ["formula"]

_STYLES: tuple[str, ...] = ("text", "latex")
_EXPAND_MAX_TAPS = 8  # write the sum out term by term up to this many taps


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


def _expanded(w: np.ndarray, positions: list[str], var: str, style: _Style) -> str:
    """``4*x[i] + 3*x[i + 1]`` for a single-channel kernel `w`."""
    parts: list[str] = []
    for value, pos in zip(w, positions, strict=True):
        if value == 0:
            continue
        term = style.sub(var, pos)
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


def _conv_lines(
    w: np.ndarray, geom: ConvGeometry, groups: int, c_in: int, style: _Style
) -> list[tuple[str, list[str]]]:
    c_out, G, K = w.shape
    L, L_out, s, d = geom.input_length, geom.output_length, geom.stride, geom.dilation
    p_l, p_r = geom.pad_left, geom.pad_right
    S = style
    lines: list[tuple[str, list[str]]] = []

    # the output length
    span = "d(K-1)" if S.latex else "d*(K-1)"
    general = S.floor(S.frac(f"L + p_l + p_r - {span} - 1", "s")) + " + 1"
    numbers = S.floor(S.frac(f"{L} + {p_l} + {p_r} - {S.times(str(d), f'({K}-1)')} - 1", str(s)))
    lines.append((S.name("L_out"), [f"= {general}", f"= {numbers} + 1", f"= {L_out}"]))

    # the element formula
    padded = p_l > 0 or p_r > 0
    xs = "x~" if padded else "x"
    one_channel = c_out == 1 and c_in == 1
    position = _affine([(s, "i"), (d, "k")], -p_l, S)
    if one_channel:
        body = S.sum("k", K - 1) + S.coef(S.sub("w", "k"), S.sub(xs, position))
        rhs = [f"= {body}{S.quad()}{S.range('i', L_out - 1)}"]
        if K <= _EXPAND_MAX_TAPS:
            taps = [_affine([(s, "i")], k * d - p_l, S) for k in range(K)]
            rhs.append("= " + _expanded(w[0, 0], taps, xs, S))
        lines.append((S.sub("y", "i"), rhs))
        weight = S.sub("w", "k")
    else:
        channel = _channel(S, groups, c_out // groups, G)
        sums = (S.sum("c", G - 1) if G > 1 else "") + S.sum("k", K - 1)
        weight = S.sub("W", "o", "c" if G > 1 else "0", "k")
        term = S.coef(weight, S.sub(xs, channel, position))
        ranges = f"{S.range('o', c_out - 1)}, {S.range('i', L_out - 1)}"
        for_all = rf"\quad \text{{for }} {ranges}" if S.latex else f"for {ranges}"
        lines.append((S.sub("y", "o", "i"), [f"= {sums}{term}", for_all]))
    signal = _padded_signal(geom, S, None if one_channel else "c")
    if signal is not None:
        lines.append((signal[0], signal[1]))

    # where each weight lands in M
    row = "i" if one_channel else _affine([(L_out, "o"), (1, "i")], 0, S)
    block = "0" if one_channel else _scaled(L, channel, S)
    if padded and geom.padding_mode != "zeros":
        col = _plus(block, f"{S.name('src')}({position})")
        op = "{+}=" if S.latex else "+="
        note = []
    else:
        col = _plus(block, position)
        op = "="
        note = [] if not padded else [_bounds(position, L, S)]
    lines.append((S.sub("M", row, col), [f"{op} {weight}", *note]))
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


def _bounds(position: str, n: int, S: _Style) -> str:
    if S.latex:
        return rf"\quad \text{{(only where }} 0 \leq {position} < {n} \text{{)}}"
    return f"(only where 0 <= {position} < {n})"


def _transpose_lines(
    w: np.ndarray, geom: ConvGeometry, groups: int, output_padding: int, S: _Style
) -> list[tuple[str, list[str]]]:
    # `w` is (C_in, C_out/groups, K) in torch's transposed layout; `geom` is the conv1d
    # geometry on L' samples with L_in output rows, whose matrix this one transposes.
    n_in, G, K = w.shape
    L_in, Lp, s, d = geom.output_length, geom.input_length, geom.stride, geom.dilation
    p_l, p_r, q = geom.pad_left, geom.pad_right, output_padding
    c_out = G * groups
    lines: list[tuple[str, list[str]]] = []
    if S.latex:
        general = r"(L_{\mathrm{in}} - 1)s - p_l - p_r + d(K-1) + q + 1"
        numbers = rf"({L_in} - 1) \cdot {s} - {p_l} - {p_r} + {d} \cdot ({K}-1) + {q} + 1"
    else:
        general = "(L_in - 1)*s - p_l - p_r + d*(K-1) + output_padding + 1"
        numbers = f"({L_in} - 1)*{s} - {p_l} - {p_r} + {d}*({K}-1) + {q} + 1"
    lines.append((S.name("L'"), [f"= {general}", f"= {numbers}", f"= {Lp}"]))
    position = _affine([(s, "i"), (d, "k")], -p_l, S)
    plus = "{+}=" if S.latex else "+="
    # positions run over [-p_l, L' + p_r - q - 1]: those outside [0, L') are cut off
    clipped = p_l > 0 or p_r > q
    if n_in == 1 and c_out == 1:
        weight = S.sub("w", "k")
        ranges = f"{S.range('i', L_in - 1)}, {S.range('k', K - 1)}"
        lines.append((S.sub("y", position), [f"{plus} {S.coef(weight, S.sub('z', 'i'))}"]))
        row, col = position, "i"
    else:
        channel = _channel(S, groups, n_in // groups, G)
        weight = S.sub("W", "o", "c" if G > 1 else "0", "k")
        ranges = f"{S.range('o', n_in - 1)}, {S.range('i', L_in - 1)}, {S.range('k', K - 1)}"
        if G > 1:
            ranges += f", {S.range('c', G - 1)}"
        term = S.coef(weight, S.sub("z", "o", "i"))
        lines.append((S.sub("y", channel, position), [f"{plus} {term}"]))
        row = _plus(_scaled(Lp, channel, S), position)
        col = _affine([(L_in, "o"), (1, "i")], 0, S)
    for_all = rf"\quad \text{{for }} {ranges}" if S.latex else f"for {ranges}"
    lines[-1][1].append(for_all)
    if clipped:
        lines[-1][1].append(_bounds(position, Lp, S))
    lines.append((S.sub("M", row, col), [f"= {weight}"]))
    if clipped:
        lines[-1][1].append(_bounds(position, Lp, S))
    return lines


def formula(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    transpose: bool = False,
    output_padding: int = 0,
    style: str = "text",
) -> str:
    r"""The matrix formula of a ``conv1d`` (or ``conv_transpose1d``) with your numbers in it.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
        The kernel in torch's layout (``(C_in, C_out/groups, K)`` when `transpose`). For a
        single channel with at most 8 taps the sum is also written out with its values.
    input_length : int
        ``L`` (``L_in`` of the transposed convolution when `transpose`).
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`conv1d_matrix`.
    transpose : bool, optional
        Describe ``conv_transpose1d`` (its matrix is the transpose of ``conv1d``'s).
    output_padding : int, optional
        For `transpose` only, as in :func:`conv_transpose1d_matrix`.
    style : {'text', 'latex'}, optional
        Plain text, or a LaTeX ``aligned`` environment (for ``$$ ... $$`` or ``\[ ... \]``).

    Returns
    -------
    str
        Several lines: the output-length arithmetic (general, then substituted), the element
        formula ``y[o, i] = ...`` with the stride, dilation and padding substituted, how the
        padded signal ``x~`` reads ``x``, and where each weight lands in ``M``. The flattening
        is ``vec(x)[c*L + l] = x[c, l]``, so ``vec(y) = M @ vec(x)``.

    Raises
    ------
    TypeError, ValueError
        For invalid parameters, exactly as :func:`conv1d_matrix` would.

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
    """
    check_choice(style, "style", _STYLES)
    if not isinstance(transpose, bool):
        raise TypeError(f"`transpose` must be True or False; got {transpose!r}")
    S = _Style(style == "latex")
    if transpose:
        if padding_mode != "zeros":
            raise ValueError(
                "`padding_mode` of a transposed convolution must be 'zeros' (as in torch); "
                f"got {padding_mode!r}"
            )
        layer = transpose_layer(
            weight,
            input_length,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
            dilation=dilation,
        )
        lines = _transpose_lines(layer.weight, layer.geom, layer.groups, int(output_padding), S)
    else:
        if output_padding != 0:
            raise ValueError(
                f"`output_padding` is for transposed convolutions only; got {output_padding!r} "
                "with transpose=False"
            )
        layer = conv_layer(
            weight,
            input_length,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
        )
        lines = _conv_lines(layer.weight, layer.geom, layer.groups, layer.in_channels, S)
    return _render(lines, S)

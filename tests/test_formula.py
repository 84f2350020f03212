"""formula(): pinned text for the seed, and every formula it prints checked by evaluating it.

The plain-text formulas use Python's operators (``*``, ``//``, ``+``), so the test runs the
printed ``M[row, col] = value`` line over all indices and compares the matrix it builds with
``conv1d_matrix``; for one channel it also evaluates the expanded sum ``y[i] = 4*x[i] + ...``
against a padded signal built independently with ``np.pad``.
"""

from __future__ import annotations

import itertools
import os
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from toeplitz_conv import formula

SEED = """\
L_out = floor((L + p_l + p_r - d*(K-1) - 1) / s) + 1
      = floor((5 + 0 + 0 - 1*(2-1) - 1) / 1) + 1
      = 4
y[i] = sum_{k=0}^{1} w[k]*x[i + k],   i = 0, ..., 3
     = 4*x[i] + 3*x[i + 1]
M[i, i + k] = w[k]"""

NP_PAD = {"zeros": "constant", "circular": "wrap", "reflect": "reflect", "replicate": "edge"}


def test_seed():
    assert formula([4, 3], 5) == SEED
    assert tc.formula is formula


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses/brackets."""
    parts, depth, start = [], 0, 0
    for n, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            parts.append(text[start:n].strip())
            start = n + 1
    parts.append(text[start:].strip())
    return parts


CONV_CASES = [
    ([4.0, 3.0], 5, {}),
    ([1.0, -2.0, 0.5], 7, {"stride": 2, "padding": 1}),
    ([1.0, -2.0, 0.5], 7, {"padding": "same", "dilation": 2}),
    ([1.0, 2.0, 3.0, 4.0], 6, {"padding": (3, 1), "padding_mode": "reflect", "stride": 2}),
    ([1.0, 2.0, 3.0], 5, {"padding": 4, "padding_mode": "replicate"}),
    ([1.0, 2.0, 3.0], 5, {"padding": 5, "padding_mode": "circular", "dilation": 2}),
    (np.arange(1.0, 19).reshape(3, 2, 3), 6, {"stride": 2, "padding": 1}),
    (
        np.arange(1.0, 25).reshape(6, 2, 2),
        5,
        {"groups": 2, "padding_mode": "circular", "padding": 1},
    ),
    (
        np.arange(1.0, 13).reshape(4, 1, 3),
        5,
        {"groups": 4, "padding": 2, "padding_mode": "reflect"},
    ),
    (np.arange(1.0, 13).reshape(4, 1, 3), 5, {"groups": 2}),
    (np.arange(1.0, 7).reshape(2, 1, 3), 5, {"padding": 1}),
]


def _m_line(text: str) -> tuple[str, str, str, str, tuple[str, int] | None]:
    """The printed ``M[row, col] op value`` line, split, and its ``(only where ...)`` bound."""
    lines = text.splitlines()
    n = next(n for n, ln in enumerate(lines) if ln.startswith("M["))
    match = re.fullmatch(r"M\[(.*)\] (\+?=) (.*)", lines[n])
    assert match, lines[n]
    row_expr, col_expr = _split_top(match.group(1))
    bound = None
    if n + 1 < len(lines):
        where = re.fullmatch(r"\s*\(only where 0 <= (.*) < (\d+)\)", lines[n + 1])
        assert where, lines[n + 1]
        bound = (where.group(1), int(where.group(2)))
    return row_expr, col_expr, match.group(3), match.group(2), bound


def _build(text, W3, n_rows_loop, expected, src=None):
    """Run the M line over o, c, k and i < `n_rows_loop`; return the matrix it builds."""
    row_expr, col_expr, value_expr, op, bound = _m_line(text)
    built = np.zeros_like(expected)
    n_a, G, K = W3.shape
    for o, c, k, i in itertools.product(range(n_a), range(G), range(K), range(n_rows_loop)):
        env = {"o": o, "c": c, "k": k, "i": i, "W": W3, "w": W3[0, 0], "src": src}
        if bound is not None and not 0 <= eval(bound[0], env) < bound[1]:
            continue
        built[eval(row_expr, env), eval(col_expr, env)] += eval(value_expr, env)
    return built, op, col_expr


def _w3(weight):
    W = np.asarray(weight, dtype=float)
    return W.reshape(1, 1, -1) if W.ndim == 1 else W


@pytest.mark.parametrize(("weight", "L", "settings"), CONV_CASES)
def test_conv_formula_builds_the_matrix(weight, L, settings):
    W3 = _w3(weight)
    text = formula(weight, L, **settings)
    expected = tc.conv1d_matrix(weight, L, format="dense", **settings)
    L_out = expected.shape[0] // W3.shape[0]
    assert f"= {L_out}\n" in text  # the output-length arithmetic ends in L_out
    mode = settings.get("padding_mode", "zeros")

    def src(j):  # independent of the library: numpy's own padding of an index ramp
        ramp = np.pad(np.arange(L), (2 * L, 2 * L), mode=NP_PAD[mode])
        return int(ramp[j + 2 * L])

    built, op, col_expr = _build(text, W3, L_out, expected, src)
    np.testing.assert_array_equal(built, expected)
    assert op == ("+=" if "src(" in col_expr else "=")


@pytest.mark.parametrize(("weight", "L", "settings"), [c for c in CONV_CASES if np.ndim(c[0]) == 1])
def test_expanded_sum(weight, L, settings):
    """``y[i] = 4*x[i] + 3*x[i + 1]``, evaluated on a signal padded by np.pad."""
    text = formula(weight, L, **settings)
    y_lines = [ln for ln in text.splitlines() if ln.lstrip().startswith("= ") and "x" in ln]
    expanded = y_lines[-1].split("= ", 1)[1]
    x = np.arange(1.0, L + 1) ** 1.5
    mode = settings.get("padding_mode", "zeros")
    pad = 2 * L
    padded = np.pad(x, (pad, pad), mode=NP_PAD[mode])

    class Padded:
        def __getitem__(self, j):
            return padded[j + pad]

    expected = tc.conv1d(x, weight, **settings)
    got = [
        eval(expanded.replace("x~[", "xt[").replace("x[", "xt["), {"xt": Padded(), "i": i})
        for i in range(expected.size)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-14)


TRANSPOSE_CASES = [
    ([4.0, 3.0], 4, {}),
    ([4.0, 3.0, 1.0], 4, {"stride": 2, "padding": 1, "output_padding": 1}),
    (np.arange(1.0, 25).reshape(4, 3, 2), 3, {"stride": 2, "groups": 2}),
    (np.arange(1.0, 13).reshape(2, 2, 3), 3, {"dilation": 3, "stride": 2, "output_padding": 2}),
    (np.arange(1.0, 13).reshape(4, 1, 3), 3, {"groups": 4, "padding": 2}),
    (np.arange(1.0, 13).reshape(4, 1, 3), 3, {"groups": 2, "padding": (1, 0)}),
]


@pytest.mark.parametrize(("weight", "L_in", "settings"), TRANSPOSE_CASES)
def test_transpose_formula_builds_the_matrix(weight, L_in, settings):
    W3 = _w3(weight)
    text = formula(weight, L_in, transpose=True, **settings)
    expected = tc.conv_transpose1d_matrix(weight, L_in, format="dense", **settings)
    L_prime = expected.shape[0] // (W3.shape[1] * settings.get("groups", 1))
    assert f"= {L_prime}\n" in text  # L' arithmetic
    built, op, _ = _build(text, W3, L_in, expected)
    np.testing.assert_array_equal(built, expected)
    assert op == "="


def test_latex_structure():
    tex = formula(
        np.ones((6, 2, 3)), 8, stride=2, padding=1, groups=2, padding_mode="circular", style="latex"
    )
    lines = tex.splitlines()
    assert lines[0] == r"\begin{aligned}" and lines[-1] == r"\end{aligned}"
    assert all(ln.endswith(r" \\") for ln in lines[1:-2]) and not lines[-2].endswith("\\")
    assert all("&" in ln for ln in lines[1:-1])
    assert tex.count("{") == tex.count("}")
    assert r"\tilde{x}_{c, j} &= x_{c, j \;\mathrm{mod}\; 8}" in tex
    M_row = r"M_{4o + i, 8(2\lfloor o/3 \rfloor + c) + \operatorname{src}(2i + k - 1)}"
    assert M_row + r" &{+}= W_{o, c, k}" in tex


LATEX_CASES = [
    ([4.0, 3.0], 5, {}),
    ([1.0, -2.0, 0.5], 7, {"stride": 2, "padding": 1}),
    ([1.0, 2.0, 3.0, 4.0], 6, {"padding": (3, 1), "padding_mode": "reflect", "stride": 2}),
    ([1.0, 2.0, 3.0], 5, {"padding": 4, "padding_mode": "replicate"}),
    (np.ones((6, 2, 3)), 8, {"stride": 2, "padding": 1, "groups": 2, "padding_mode": "circular"}),
    (np.ones((4, 3, 2)), 4, {"transpose": True, "stride": 2, "groups": 2, "padding": 1}),
    ([1 + 2j, -0.5], 4, {}),
]


@pytest.mark.parametrize(("weight", "L", "settings"), LATEX_CASES)
def test_latex_rows_render_with_mathtext(weight, L, settings):
    """Every row is valid math for matplotlib's mathtext (a subset of LaTeX)."""
    if os.environ.get("TOEPLITZ_CONV_REQUIRE_PLOT") == "1":  # CI: a missing matplotlib fails
        import matplotlib.mathtext as mathtext
    else:
        mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    tex = formula(weight, L, style="latex", **settings)
    for row in tex.splitlines()[1:-1]:
        parser.parse("$" + row.removesuffix(r" \\").replace("&", "") + "$")


def test_complex_and_values():
    text = formula([1 + 2j, -0.5, 1.0, -1.0, 0.0, 2.5e-9], 8)
    assert "= (1+2j)*x[i] - 0.5*x[i + 1] + x[i + 2] - x[i + 3] + 2.5e-09*x[i + 5]" in text
    long = formula(np.ones(9), 12)
    assert "w[k]*x[i + k]" in long and "x[i + 8]" not in long  # more than 8 taps: not expanded


@pytest.mark.parametrize(
    ("kwargs", "error", "msg"),
    [
        ({"style": "html"}, ValueError, r"`style` must be one of 'text', 'latex'; got 'html'"),
        ({"transpose": 1}, TypeError, r"`transpose` must be True or False; got 1"),
        (
            {"transpose": True, "padding_mode": "reflect"},
            ValueError,
            r"`padding_mode` of a transposed convolution must be 'zeros' \(as in torch\); "
            r"got 'reflect'",
        ),
        (
            {"output_padding": 1},
            ValueError,
            r"`output_padding` is for transposed convolutions only; got 1 with transpose=False",
        ),
        ({"stride": 0}, ValueError, r"`stride` must be an integer >= 1, got 0"),
        ({"padding": "same", "stride": 2}, ValueError, r"`padding`='same' requires `stride`=1"),
        ({"groups": 3}, ValueError, r"`groups`=3 must divide the output channels C_out=1"),
        (
            {"transpose": True, "padding": "same"},
            TypeError,
            r"`padding` of a transposed convolution must be an int",
        ),
    ],
)
def test_errors(kwargs, error, msg):
    with pytest.raises(error, match=msg):
        formula([4.0, 3.0], 5, **kwargs)
    with pytest.raises(ValueError, match=r"the output would be empty"):
        formula(np.ones(7), 3)


@st.composite
def _layers(draw):
    groups = draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 2))
    G = draw(st.integers(1, 2))
    K = draw(st.integers(1, 4))
    W = np.arange(1.0, 1 + c_out * G * K).reshape(c_out, G, K)
    L = draw(st.integers(1, 9))
    stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    mode = draw(st.sampled_from(sorted(NP_PAD)))
    limit = L - 1 if mode == "reflect" else (L if mode == "circular" else 4)
    padding = (draw(st.integers(0, min(limit, 4))), draw(st.integers(0, min(limit, 4))))
    settings = {"stride": stride, "dilation": dilation, "groups": groups}
    settings.update(padding=padding, padding_mode=mode)
    return W, L, settings


@settings(max_examples=60)
@given(_layers())
def test_conv_formula_hypothesis(layer):
    W, L, conv = layer
    try:
        expected = tc.conv1d_matrix(W, L, format="dense", **conv)
    except ValueError:
        assume(False)  # empty output: not a layer
    text = formula(W, L, **conv)
    mode = conv["padding_mode"]

    def src(j):
        pad = 2 * L + 8  # more than any padding drawn
        return int(np.pad(np.arange(L), (pad, pad), mode=NP_PAD[mode])[j + pad])

    built, _, _ = _build(text, W, expected.shape[0] // W.shape[0], expected, src)
    np.testing.assert_array_equal(built, expected)


@settings(max_examples=60)
@given(_layers(), st.integers(0, 2))
def test_transpose_formula_hypothesis(layer, q):
    W, L_in, conv = layer
    conv = {k: v for k, v in conv.items() if k != "padding_mode"}
    conv["output_padding"] = q
    try:
        expected = tc.conv_transpose1d_matrix(W, L_in, format="dense", **conv)
    except ValueError:
        assume(False)  # output_padding too large or an empty output
    built, _, _ = _build(formula(W, L_in, transpose=True, **conv), W, L_in, expected)
    np.testing.assert_array_equal(built, expected)

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


# --------------------------------------------------------------------------- N-d
TORCH_PAD = {"zeros": "constant", "circular": "circular", "reflect": "reflect"}
TORCH_PAD["replicate"] = "replicate"


def _pairs(padding, n):
    """Per-axis (left, right) pairs of an N-d `padding` (no 'same' here)."""
    items = (padding,) * n if isinstance(padding, int) else padding
    return [(p, p) if isinstance(p, int) else tuple(p) for p in items]


def _torch_conv_matrix(torch, W, size, *, stride=1, padding=0, dilation=1, groups=1,
                       padding_mode="zeros"):  # fmt: skip
    """The matrix of torch's conv{n}d, column by column: torch applied to the unit vectors."""
    F = torch.nn.functional
    n = len(size)
    c_in = W.shape[1] * groups
    cols = c_in * int(np.prod(size))
    basis = torch.eye(cols, dtype=torch.float64).reshape(cols, c_in, *size)
    flat = [p for pair in reversed(_pairs(padding, n)) for p in pair]  # F.pad: last axis first
    padded = F.pad(basis, flat, mode=TORCH_PAD[padding_mode])
    conv = {2: F.conv2d, 3: F.conv3d}[n]
    y = conv(padded, torch.from_numpy(W), stride=stride, dilation=dilation, groups=groups)
    return y.reshape(cols, -1).T.numpy()


def _torch_transpose_matrix(torch, W, size, **kw):
    F = torch.nn.functional
    n = len(size)
    c_in = W.shape[0]
    cols = c_in * int(np.prod(size))
    basis = torch.eye(cols, dtype=torch.float64).reshape(cols, c_in, *size)
    conv = {2: F.conv_transpose2d, 3: F.conv_transpose3d}[n]
    return conv(basis, torch.from_numpy(W), **kw).reshape(cols, -1).T.numpy()


def _m_line_nd(text):
    """``M[row, col] op value`` and its ``(only where 0 <= e < n and ...)`` conditions."""
    lines = text.splitlines()
    n = next(n for n, ln in enumerate(lines) if ln.startswith("M["))
    match = re.fullmatch(r"M\[(.*)\] (\+?=) (.*)", lines[n])
    assert match, lines[n]
    row_expr, col_expr = _split_top(match.group(1))
    conds = []
    if n + 1 < len(lines):
        where = re.fullmatch(r"\s*\(only where (.*)\)", lines[n + 1])
        assert where, lines[n + 1]
        for cond in where.group(1).split(" and "):
            m = re.fullmatch(r"0 <= (.*) < (\d+)", cond)
            assert m, cond
            conds.append((m.group(1), int(m.group(2))))
    return row_expr, col_expr, match.group(3), match.group(2), conds


_OUTS = {2: ("i", "j"), 3: ("i", "j", "m")}
_TAPS = {2: ("k", "l"), 3: ("k", "l", "n")}


def _build_nd(text, W, loop_sizes, shape, srcs=()):
    """Run the printed M line over o, c, the taps and the positions; the matrix it builds."""
    row_expr, col_expr, value_expr, op, conds = _m_line_nd(text)
    n = len(loop_sizes)
    built = np.zeros(shape)
    env = {"W": W, "w": W[0, 0]}
    env.update({f"src_{a}": f for a, f in enumerate(srcs)})
    for o, c in itertools.product(range(W.shape[0]), range(W.shape[1])):
        for taps in np.ndindex(*W.shape[2:]):
            for pos in np.ndindex(*loop_sizes):
                env.update(o=o, c=c)
                env.update(zip(_TAPS[n], taps, strict=True))
                env.update(zip(_OUTS[n], pos, strict=True))
                if not all(0 <= eval(e, env) < b for e, b in conds):
                    continue
                built[eval(row_expr, env), eval(col_expr, env)] += eval(value_expr, env)
    return built, op


def _src_funcs(size, pairs, mode):
    """Per-axis source maps, from numpy's own padding of an index ramp."""

    def one(L, pad):
        ramp = np.pad(np.arange(L), (pad, pad), mode=NP_PAD[mode])
        return lambda j: int(ramp[j + pad])

    return [one(L, max(p) + 1) for L, p in zip(size, pairs, strict=True)]


ND_CASES = [
    (np.arange(1.0, 10).reshape(3, 3), (4, 4), {"padding": 1}),
    (np.arange(1.0, 5).reshape(2, 2), (3, 5), {"stride": (1, 2), "padding": (0, 1)}),
    (np.arange(1.0, 37).reshape(2, 2, 3, 3), (5, 4), {"stride": 2, "padding": (1, (0, 2))}),
    (np.arange(1.0, 19).reshape(2, 1, 3, 3), (5, 6), {"dilation": (2, 1), "groups": 2}),
    (np.arange(1.0, 37).reshape(4, 1, 3, 3), (4, 5),
     {"groups": 2, "padding": 2, "padding_mode": "circular", "stride": (1, 2)}),
    (np.arange(1.0, 25).reshape(2, 3, 2, 2), (4, 3),
     {"padding": ((1, 0), 1), "padding_mode": "reflect"}),
    (np.arange(1.0, 10).reshape(1, 1, 3, 3), (3, 4),
     {"padding": (0, 2), "padding_mode": "replicate"}),
    (np.arange(1.0, 17).reshape(2, 1, 2, 2, 2), (3, 4, 3),
     {"padding": (1, 0, 1), "stride": (1, 2, 1)}),
    (np.arange(1.0, 9).reshape(2, 2, 2), (3, 3, 4), {"padding": 1, "padding_mode": "circular"}),
]  # fmt: skip


@pytest.mark.parametrize(("weight", "size", "settings"), ND_CASES)
def test_nd_formula_builds_torchs_matrix(torch, weight, size, settings):
    """The printed M line, run over every index, rebuilds torch's conv2d/conv3d matrix."""
    n = len(size)
    W = weight if weight.ndim == n + 2 else weight.reshape(1, 1, *weight.shape)
    text = formula(weight, size, **settings)
    expected = _torch_conv_matrix(torch, W, size, **settings)
    mode = settings.get("padding_mode", "zeros")
    pairs = _pairs(settings.get("padding", 0), n)
    out = []
    for a in range(n):  # the output-size arithmetic, axis by axis
        match = re.search(rf"^L_out\[{a}\] = .*\n\s+= (\d+)$", text, re.M)
        assert match, text
        out.append(int(match.group(1)))
    assert expected.shape[0] == W.shape[0] * int(np.prod(out))
    built, op = _build_nd(text, W, out, expected.shape, _src_funcs(size, pairs, mode))
    np.testing.assert_array_equal(built, expected)
    assert op == ("+=" if mode != "zeros" and any(map(any, pairs)) else "=")


@pytest.mark.parametrize(
    ("weight", "size", "settings"),
    [c for c in ND_CASES if c[0].ndim == len(c[1]) or c[0].shape[:2] == (1, 1)],
)
def test_nd_expanded_sum(torch, weight, size, settings):
    """``y[i, j] = x~[i - 1, j - 1] + 2*x~[i - 1, j] + ...`` evaluated on a padded image."""
    text = formula(weight, size, **settings)
    lines = text.splitlines()
    n = next(k for k, ln in enumerate(lines) if ln.startswith("y["))
    expanded = lines[n + 1].split("= ", 1)[1]
    assert lines[n + 2].lstrip().startswith("for i = 0")
    W = weight.reshape(1, 1, *weight.shape[-len(size) :])
    x = np.arange(1.0, 1 + np.prod(size)).reshape(size) ** 1.5
    pairs = _pairs(settings.get("padding", 0), len(size))
    mode = settings.get("padding_mode", "zeros")
    pad = [(p_l, p_r) for p_l, p_r in pairs]
    padded = np.pad(x, pad, mode=NP_PAD[mode])
    lo = [p[0] for p in pairs]

    class Padded:
        def __getitem__(self, idx):
            return padded[tuple(j + p for j, p in zip(idx, lo, strict=True))]

    expected = _torch_conv_matrix(torch, W, size, **settings) @ x.ravel()
    out_shape = [int(ln.split("= ")[-1]) for ln in lines if re.fullmatch(r"\s+= \d+", ln)]
    env = {"xt": Padded()}
    got = []
    for pos in np.ndindex(*out_shape):
        env.update(zip(_OUTS[len(size)], pos, strict=True))
        got.append(eval(expanded.replace("x~[", "xt[").replace("x[", "xt["), env))
    np.testing.assert_allclose(got, expected, rtol=1e-14)


ND_TRANSPOSE_CASES = [
    (np.arange(1.0, 10).reshape(3, 3), (3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    (np.arange(1.0, 49).reshape(4, 3, 2, 2), (3, 2),
     {"stride": (2, 1), "groups": 2, "dilation": (1, 2)}),
    (np.arange(1.0, 19).reshape(2, 1, 3, 3), (2, 3),
     {"groups": 2, "padding": (1, 0), "stride": (1, 3), "output_padding": (0, 2)}),
    (np.arange(1.0, 17).reshape(2, 1, 2, 2, 2), (2, 3, 2), {"stride": 2, "padding": (1, 0, 0)}),
]  # fmt: skip


@pytest.mark.parametrize(("weight", "size", "settings"), ND_TRANSPOSE_CASES)
def test_nd_transpose_formula_builds_torchs_matrix(torch, weight, size, settings):
    n = len(size)
    W = weight if weight.ndim == n + 2 else weight.reshape(1, 1, *weight.shape)
    text = formula(weight, size, transpose=True, **settings)
    expected = _torch_transpose_matrix(torch, W, size, **settings)
    for a in range(n):
        assert re.search(rf"^L'\[{a}\] = .*\n\s+= \d+$", text, re.M), text
    built, op = _build_nd(text, W, size, expected.shape)
    np.testing.assert_array_equal(built, expected)
    assert op == "="


def test_nd_pinned_2d():
    """A 3x3 kernel on a 4x4 image: the text, pinned."""
    text = formula(np.arange(1.0, 10).reshape(3, 3), (4, 4), padding=1)
    assert text == (
        "L_out[a] = floor((L[a] + p_l[a] + p_r[a] - d[a]*(K[a]-1) - 1) / s[a]) + 1\n"
        "L_out[0] = floor((4 + 1 + 1 - 1*(3-1) - 1) / 1) + 1\n"
        "         = 4\n"
        "L_out[1] = floor((4 + 1 + 1 - 1*(3-1) - 1) / 1) + 1\n"
        "         = 4\n"
        "y[i, j] = sum_{k=0}^{2} sum_{l=0}^{2} w[k, l]*x~[i + k - 1, j + l - 1]\n"
        "        = x~[i - 1, j - 1] + 2*x~[i - 1, j] + 3*x~[i - 1, j + 1] + 4*x~[i, j - 1] "
        "+ 5*x~[i, j] + 6*x~[i, j + 1] + 7*x~[i + 1, j - 1] + 8*x~[i + 1, j] "
        "+ 9*x~[i + 1, j + 1]\n"
        "        for i = 0, ..., 3, j = 0, ..., 3\n"
        "x~[u, v] = x[u, v] if 0 <= u < 4 and 0 <= v < 4, else 0\n"
        "         (padding_mode='zeros', u = -1, ..., 4, v = -1, ..., 4)\n"
        "M[4*i + j, 4*(i + k - 1) + j + l - 1] = w[k, l]\n"
        "                                      (only where 0 <= i + k - 1 < 4 and "
        "0 <= j + l - 1 < 4)"
    )
    # the 1-D spelling is untouched by the N-d path: a 1-tuple size is 1-D
    assert formula([4, 3], (5,)) == SEED


ND_LATEX_CASES = [
    (np.arange(1.0, 10).reshape(3, 3), (4, 4), {"padding": 1}),
    (np.ones((4, 1, 3, 3)), (4, 5), {"groups": 2, "padding": 2, "padding_mode": "circular"}),
    (np.ones((2, 3, 2, 2)), (4, 3), {"padding": ((1, 0), 1), "padding_mode": "reflect"}),
    (np.ones((1, 1, 3, 3)), (3, 4), {"padding": (0, 2), "padding_mode": "replicate"}),
    (np.ones((2, 2, 2)), (3, 3, 3), {"padding": (0, 1, (1, 0))}),
    (np.ones((4, 3, 2, 2)), (3, 2), {"transpose": True, "stride": 2, "groups": 2, "padding": 1}),
    (np.ones((2, 2)), (3, 3), {"transpose": True, "output_padding": (0, 1), "stride": 2}),
]


@pytest.mark.parametrize(("weight", "size", "settings"), ND_LATEX_CASES)
def test_nd_latex_rows_render_with_mathtext(weight, size, settings):
    if os.environ.get("TOEPLITZ_CONV_REQUIRE_PLOT") == "1":
        import matplotlib.mathtext as mathtext
    else:
        mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    tex = formula(weight, size, style="latex", **settings)
    lines = tex.splitlines()
    assert lines[0] == r"\begin{aligned}" and lines[-1] == r"\end{aligned}"
    assert tex.count("{") == tex.count("}") and "floor(" not in tex
    for row in lines[1:-1]:
        parser.parse("$" + row.removesuffix(r" \\").replace("&", "") + "$")


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "msg"),
    [
        ((np.ones((3, 3)), (4, 4)), {"stride": (1, 0)}, ValueError,
         r"`stride\[1\]` must be an integer >= 1, got 0"),
        ((np.ones((3, 3)), (4, 4)), {"stride": (1, 2, 3)}, ValueError,
         r"`stride` must be an int or a tuple of 2 ints"),
        ((np.ones((3, 3)), (4, 4, 4)), {}, ValueError, r"`weight` must have shape"),
        ((np.ones((3, 3)), (4, 2)), {}, ValueError, r"the output would be empty on axis 1"),
        ((np.ones((3, 3)), (4, 4)), {"padding": (1, 2, 3)}, ValueError,
         r"`padding` must be an int, 'same', 'valid' or a tuple of 2 items"),
        ((np.ones((3, 3)), (4, 4)), {"transpose": True, "output_padding": (0, 1)}, ValueError,
         r"`output_padding\[1\]` must be smaller than max\(stride, dilation\)"),
    ],
)  # fmt: skip
def test_nd_errors(args, kwargs, error, msg):
    with pytest.raises(error, match=msg):
        formula(*args, **kwargs)


@st.composite
def _layers_2d(draw):
    groups = draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    G = draw(st.integers(1, 2))
    K = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    W = np.arange(1.0, 1 + c_out * G * K[0] * K[1]).reshape(c_out, G, *K)
    size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    mode = draw(st.sampled_from(sorted(NP_PAD)))
    padding = []
    for L in size:
        limit = min(L - 1 if mode == "reflect" else (L if mode == "circular" else 3), 3)
        padding.append((draw(st.integers(0, limit)), draw(st.integers(0, limit))))
    settings = {
        "stride": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        "dilation": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        "groups": groups,
        "padding": tuple(padding),
        "padding_mode": mode,
    }
    return W, size, settings


@settings(max_examples=40)
@given(_layers_2d())
def test_nd_formula_hypothesis(layer):
    """Random 2-D layers, every padding mode: the printed M line rebuilds conv2d_matrix."""
    W, size, conv = layer
    try:
        expected = tc.conv2d_matrix(W, size, format="dense", **conv)
    except ValueError:
        assume(False)  # empty output: not a layer
    text = formula(W, size, **conv)
    out = [int(m) for m in re.findall(r"^\s+= (\d+)$", text, re.M)]
    srcs = _src_funcs(size, conv["padding"], conv["padding_mode"])
    built, _ = _build_nd(text, W, out, expected.shape, srcs)
    np.testing.assert_array_equal(built, expected)

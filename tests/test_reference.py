"""The library against the loop-by-the-formula reference of docs/math.md, 1, 2 and 3 axes.

Small cases over the whole parameter space (tests/strategies.py: ``conv_configs`` for 1-D,
``conv_nd_configs``/``conv_transpose_nd_configs`` for N axes): every padding mode and padding
spelling (int, pair, per-axis ints and pairs, mixed, "same", "valid"), stride (also larger
than the kernel), dilation, groups (depthwise with a channel multiplier included),
multi-channel, batched and unbatched inputs, taps that land twice on one column; every output
format in canonical form and the dtype rules; transposed convolutions, unfold, output sizes,
``bias_vector``, row slices (``rows=``), the generic names and the 1-D spellings; dot tests
(real and complex) for the matrices, the functional pair and the operators.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from conftest import assert_canonical_sparse, to_dense
from reference import (
    PADDING_MODES,
    as_axes,
    assert_close,
    padding_ok,
    ref_conv1d,
    ref_conv1d_coo,
    ref_conv1d_matrix,
    ref_conv_nd,
    ref_conv_nd_matrix,
    ref_conv_transpose1d,
    ref_conv_transpose1d_matrix,
    ref_conv_transpose_length,
    ref_conv_transpose_nd,
    ref_conv_transpose_nd_matrix,
    ref_conv_transpose_size,
    ref_output_length,
    ref_output_size,
    ref_padded,
    ref_padded_nd,
    ref_unfold,
    ref_unfold_nd,
    resolve_padding_nd,
)
from strategies import (
    PADDING_FORMS,
    conv_configs,
    conv_kwargs,
    conv_nd_configs,
    conv_transpose_nd_configs,
    transpose_kwargs,
)

RTOL = 1e-12


ATOL = 1e-12


SPARSE_FORMATS = ("csr", "csc", "coo", "bsr")


ALL_FORMATS = (*SPARSE_FORMATS, "dense")


def matrix_fn(n):
    return {1: tc.conv1d_matrix, 2: tc.conv2d_matrix, 3: tc.conv3d_matrix}[n]


def transpose_matrix_fn(n):
    return {
        1: tc.conv_transpose1d_matrix,
        2: tc.conv_transpose2d_matrix,
        3: tc.conv_transpose3d_matrix,
    }[n]


def conv_fn(n):
    return {1: tc.conv1d, 2: tc.conv2d, 3: tc.conv3d}[n]


def transpose_fn(n):
    return {1: tc.conv_transpose1d, 2: tc.conv_transpose2d, 3: tc.conv_transpose3d}[n]


def make_case(seed, c_in, c_out, groups, k, length, batch=None, dtype=np.float64):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, c_in // groups, k)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    shape = (c_in, length) if batch is None else (batch, c_in, length)
    x = rng.standard_normal(shape).astype(dtype)
    return w, b, x


def check_all(w, b, x, stride, padding, dilation, groups, mode):
    """Dense matrix, M @ vec(x) + bias, conv1d and unfold, all against the reference."""
    c_in, length = x.shape
    c_out, _, k = w.shape
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    ref_m = ref_conv1d_matrix(w, length, groups=groups, padding_mode=mode, **kw)
    ref_y = ref_conv1d(x, w, b, groups=groups, padding_mode=mode, **kw)
    l_out = ref_y.shape[1]

    assert tc.output_length(length, k, **kw) == l_out

    m = tc.conv1d_matrix(w, length, groups=groups, padding_mode=mode, format="dense", **kw)
    assert isinstance(m, np.ndarray)
    assert m.shape == (c_out * l_out, c_in * length)
    assert m.dtype == np.float64
    assert_close(m, ref_m)

    m_csr = tc.conv1d_matrix(w, length, groups=groups, padding_mode=mode, **kw)
    assert_canonical_sparse(m_csr, "csr")
    assert_close(m_csr.toarray(), ref_m)
    bias_vec = tc.bias_vector(b, l_out)
    assert_close(bias_vec, np.repeat(b, l_out))
    assert_close(m_csr @ x.ravel() + bias_vec, ref_y.ravel())

    y = tc.conv1d(x, w, b, groups=groups, padding_mode=mode, **kw)
    assert_close(y, ref_y)
    y0 = tc.conv1d(x, w, groups=groups, padding_mode=mode, **kw)
    assert_close(y0, ref_conv1d(x, w, None, groups=groups, padding_mode=mode, **kw))

    u = tc.unfold(x, k, padding_mode=mode, **kw)
    ref_u = ref_unfold(x, k, padding_mode=mode, **kw)
    assert_close(u, ref_u)
    # The weight side: y = W_flat @ U per group.
    g_in = c_in // groups
    per = c_out // groups
    for g in range(groups):
        rows = slice(g * g_in * k, (g + 1) * g_in * k)
        w_flat = w[g * per : (g + 1) * per].reshape(per, g_in * k)
        assert_close(
            w_flat @ u[rows] + b[g * per : (g + 1) * per, None], ref_y[g * per : (g + 1) * per]
        )


def make(cfg, dtype=np.float64):
    rng = np.random.default_rng(cfg["seed"])
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel_size"]))
    b = rng.standard_normal(cfg["c_out"])
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["input_size"]))
    return w.astype(dtype), b.astype(dtype), x.astype(dtype)


def check_all_nd(cfg):
    """Matrix, M @ vec(x) + bias, forward passes, unfold and output_size vs the reference."""
    n = cfg["n"]
    w, b, x = make(cfg)
    kw = conv_kwargs(cfg)
    size, ks = cfg["input_size"], cfg["kernel_size"]
    ref_m = ref_conv_nd_matrix(w, size, **kw)
    ref_y = ref_conv_nd(x, w, b, **kw)
    s_out = ref_y.shape[2:]
    geo = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    assert tc.output_size(size, ks, **geo) == s_out == ref_output_size(size, ks, **geo)

    dense = matrix_fn(n)(w, size, format="dense", **kw)
    assert type(dense) is np.ndarray and dense.dtype == np.float64
    assert dense.shape == (cfg["c_out"] * np.prod(s_out), cfg["c_in"] * np.prod(size))
    assert_close(dense, ref_m)
    m = matrix_fn(n)(w, size, **kw)
    assert_canonical_sparse(m, "csr")
    assert_close(m.toarray(), ref_m)
    generic = tc.conv_matrix(w, size, **kw)
    assert_canonical_sparse(generic, "csr")
    np.testing.assert_array_equal(generic.toarray(), m.toarray())

    c = tc.bias_vector(b, s_out)
    assert_close(c, np.repeat(b, np.prod(s_out)))
    batch = len(x)
    assert_close(x.reshape(batch, -1) @ m.T + c, ref_y.reshape(batch, -1))

    assert_close(conv_fn(n)(x, w, b, **kw), ref_y)
    assert_close(conv_fn(n)(x[0], w, b, **kw), ref_y[0])
    assert_close(tc.conv(x, w, b, **kw), ref_y)
    assert_close(conv_fn(n)(x, w, **kw), ref_conv_nd(x, w, None, **kw))

    kw_u = dict(geo, padding_mode=cfg["mode"])
    u = tc.unfold(x, ks, **kw_u)
    assert_close(u, ref_unfold_nd(x, ks, **kw_u))
    assert_close(tc.unfold(x[0], ks, **kw_u), ref_unfold_nd(x[0], ks, **kw_u))


# ============================================================= the reference


def test_reference_padded_modes():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(ref_padded(x, 2, 3, "zeros"), [0, 0, 1, 2, 3, 4, 0, 0, 0])
    np.testing.assert_array_equal(ref_padded(x, 2, 3, "circular"), [3, 4, 1, 2, 3, 4, 1, 2, 3])
    np.testing.assert_array_equal(ref_padded(x, 2, 3, "reflect"), [3, 2, 1, 2, 3, 4, 3, 2, 1])
    np.testing.assert_array_equal(ref_padded(x, 2, 3, "replicate"), [1, 1, 1, 2, 3, 4, 4, 4, 4])


def test_reference_matrix_matches_reference_conv():
    w, _, x = make_case(0, 4, 6, 2, 3, 7)
    for mode in PADDING_MODES:
        m = ref_conv1d_matrix(
            w, 7, stride=2, padding=(2, 1), dilation=2, groups=2, padding_mode=mode
        )
        y = ref_conv1d(
            x, w, None, stride=2, padding=(2, 1), dilation=2, groups=2, padding_mode=mode
        )
        assert_close(m @ x.ravel(), y.ravel())


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_reference_coo_is_the_reference_matrix(mode):
    """``ref_conv1d_coo`` (for long signals) is ``ref_conv1d_matrix``, canonical, any rows."""
    w, _, _ = make_case(3, 4, 6, 2, 3, 5)
    kw = dict(stride=2, padding=(2, 1), dilation=2, groups=2, padding_mode=mode)
    full = ref_conv1d_matrix(w, 5, **kw)
    coo = ref_conv1d_coo(w, 5, **kw)
    assert coo.has_canonical_format and coo.dtype == full.dtype
    key = coo.coords[0] * coo.shape[1] + coo.coords[1]
    assert np.all(np.diff(key) > 0)
    np.testing.assert_array_equal(coo.toarray(), full)
    l_out = full.shape[0] // 6
    rows = (np.arange(6)[:, None] * l_out + np.arange(l_out - 1)[None, :]).ravel()
    part = ref_conv1d_coo(w, 5, positions=l_out - 1, **kw)
    np.testing.assert_array_equal(part.toarray(), full[rows])


def test_reference_padded_nd_is_separable():
    x = np.arange(1.0, 7.0).reshape(1, 2, 3)
    pads = ((1, 0), (2, 1))
    np.testing.assert_array_equal(
        ref_padded_nd(x, pads, "zeros")[0],
        [[0, 0, 0, 0, 0, 0], [0, 0, 1, 2, 3, 0], [0, 0, 4, 5, 6, 0]],
    )
    np.testing.assert_array_equal(
        ref_padded_nd(x, pads, "circular")[0],
        [[5, 6, 4, 5, 6, 4], [2, 3, 1, 2, 3, 1], [5, 6, 4, 5, 6, 4]],
    )
    np.testing.assert_array_equal(
        ref_padded_nd(x, pads, "reflect")[0],
        [[6, 5, 4, 5, 6, 5], [3, 2, 1, 2, 3, 2], [6, 5, 4, 5, 6, 5]],
    )
    np.testing.assert_array_equal(
        ref_padded_nd(x, pads, "replicate")[0],
        [[1, 1, 1, 2, 3, 3], [1, 1, 1, 2, 3, 3], [4, 4, 4, 5, 6, 6]],
    )


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_reference_is_a_sum_of_kronecker_products(mode):
    """docs/math.md: block (o, c) = sum_k W[o, c, k] S_1^{k_1} (x) S_2^{k_2} (x) S_3^{k_3}."""
    rng = np.random.default_rng(7)
    ks, size = (2, 3, 2), (3, 4, 2)
    stride, dilation, padding = (2, 1, 1), (1, 2, 1), ((1, 1), (2, 1), (1, 0))
    w = rng.standard_normal((2, 1, *ks))
    m = ref_conv_nd_matrix(w, size, stride, padding, dilation, 2, mode)
    sel = [
        [
            ref_conv1d_matrix(
                np.eye(ks[a])[k], size[a], stride[a], padding[a], dilation[a], 1, mode
            )
            for k in range(ks[a])
        ]
        for a in range(3)
    ]
    n_out = int(np.prod([s[0].shape[0] for s in sel]))
    n_in = int(np.prod(size))
    for o in range(2):
        block = sum(
            w[(o, 0, *kk)] * np.kron(np.kron(sel[0][kk[0]], sel[1][kk[1]]), sel[2][kk[2]])
            for kk in itertools.product(*(range(k) for k in ks))
        )
        assert_close(m[o * n_out : (o + 1) * n_out, o * n_in : (o + 1) * n_in], block)
        assert not m[o * n_out : (o + 1) * n_out, (1 - o) * n_in : (2 - o) * n_in].any()


# ====================================================== explicit small cases


def test_classic_example():
    w = np.array([4.0, 3.0])
    m = tc.conv1d_matrix(w, 5, format="dense")
    expected = np.array(
        [[4, 3, 0, 0, 0], [0, 4, 3, 0, 0], [0, 0, 4, 3, 0], [0, 0, 0, 4, 3]], dtype=float
    )
    np.testing.assert_array_equal(m, expected)
    np.testing.assert_array_equal(tc.conv1d_matrix(w, 5).toarray(), expected)
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = tc.conv1d(x, w)
    assert y.shape == (4,)
    np.testing.assert_array_equal(y, [10, 17, 24, 31])
    np.testing.assert_array_equal(tc.conv1d_matrix(w, 5) @ x, [10, 17, 24, 31])
    # The same with explicit channel axes.
    y2 = tc.conv1d(x[None], w[None, None])
    np.testing.assert_array_equal(y2, [[10, 17, 24, 31]])
    np.testing.assert_array_equal(tc.conv1d_matrix(w[None, None], 5, format="dense"), expected)
    assert tc.output_length(5, 2) == 4


def test_classic_example_integer_inputs():
    m = tc.conv1d_matrix([4, 3], 5)
    assert m.dtype == np.float64
    y = tc.conv1d(np.arange(1, 6), np.array([4, 3]))
    np.testing.assert_allclose(y, [10, 17, 24, 31], rtol=0, atol=0)


def test_circular_double_tap_explicit():
    w = np.array([1.0, 10.0, 100.0])
    m = tc.conv1d_matrix(w, 2, padding=1, padding_mode="circular", format="dense")
    np.testing.assert_array_equal(m, [[10.0, 101.0], [101.0, 10.0]])
    m = tc.conv1d_matrix(w, 1, padding=1, padding_mode="circular", format="dense")
    np.testing.assert_array_equal(m, [[111.0]])
    m = tc.conv1d_matrix(w, 2, padding=1, padding_mode="reflect", format="dense")
    np.testing.assert_array_equal(m, [[10.0, 101.0], [101.0, 10.0]])
    m = tc.conv1d_matrix(w, 1, padding=2, padding_mode="replicate", format="dense")
    np.testing.assert_array_equal(m, [[111.0], [111.0], [111.0]])
    m = tc.conv1d_matrix(w, 2, padding=1, padding_mode="replicate", format="csr")
    assert_canonical_sparse(m, "csr")
    np.testing.assert_array_equal(m.toarray(), [[11.0, 100.0], [1.0, 110.0]])


def test_stride_larger_than_kernel():
    w = np.array([1.0, 2.0])
    m = tc.conv1d_matrix(w, 9, stride=4, format="dense")
    expected = np.zeros((2, 9))
    expected[0, 0:2] = [1, 2]
    expected[1, 4:6] = [1, 2]
    np.testing.assert_array_equal(m, expected)
    np.testing.assert_array_equal(tc.conv1d(np.arange(9.0), w, stride=4), [2.0, 14.0])


def test_same_padding_puts_extra_on_the_right():
    # K=2, d=1: t=1 -> (0, 1); the last output sees x[L-1] and a zero.
    w = np.array([1.0, 1.0])
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tc.conv1d(x, w, padding="same"), [3.0, 5.0, 3.0])
    # K=4, d=1: t=3 -> (1, 2).
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    np.testing.assert_array_equal(tc.conv1d(x, w, padding="same"), ref_conv1d(x, w, padding=(1, 2)))
    np.testing.assert_array_equal(tc.conv1d(x, w, padding="same"), [3210.0, 321.0, 32.0])


def test_small_2d_example_by_hand():
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.array([[1, 2, 0, 3, 4, 0], [0, 1, 2, 0, 3, 4]], dtype=float)
    np.testing.assert_array_equal(tc.conv2d_matrix(w, (2, 3), format="dense"), expected)
    np.testing.assert_array_equal(tc.conv2d_matrix(w[None, None], (2, 3)).toarray(), expected)
    np.testing.assert_array_equal(tc.conv_matrix(w, (2, 3)).toarray(), expected)
    x = np.arange(1.0, 7.0).reshape(1, 2, 3)
    np.testing.assert_array_equal(tc.conv2d(x, w[None, None]), [[[37.0, 47.0]]])
    assert tc.output_size((2, 3), (2, 2)) == (1, 2)


def test_3x3_on_4x4_is_bttb():
    """Zero padding 1: 4x4 blocks of 4x4 Toeplitz blocks, block (i, j) depends on i - j only."""
    w = np.arange(1.0, 10.0).reshape(3, 3)
    m = tc.conv2d_matrix(w, (4, 4), padding=1, format="dense")
    assert m.shape == (16, 16)
    assert_close(m, ref_conv_nd_matrix(w, (4, 4), padding=1))
    blocks = m.reshape(4, 4, 4, 4).transpose(0, 2, 1, 3)  # [row block, col block]
    for i, j in itertools.product(range(4), repeat=2):
        expected = w[j - i + 1] if abs(i - j) <= 1 else np.zeros(3)
        band = np.diag(np.full(3, expected[0]), -1) + np.diag(np.full(4, expected[1]))
        band += np.diag(np.full(3, expected[2]), 1)
        assert_close(blocks[i, j], band)


def test_circular_same_is_bccb():
    w = np.random.default_rng(2).standard_normal((3, 3))
    m = tc.conv2d_matrix(w, (4, 5), padding="same", padding_mode="circular", format="dense")
    assert_close(m, ref_conv_nd_matrix(w, (4, 5), padding="same", padding_mode="circular"))
    # shifting the image by one row and one column shifts the output the same way
    x = np.random.default_rng(3).standard_normal((4, 5))
    y = (m @ x.ravel()).reshape(4, 5)
    y_shift = (m @ np.roll(x, (1, 2), axis=(0, 1)).ravel()).reshape(4, 5)
    assert_close(y_shift, np.roll(y, (1, 2), axis=(0, 1)))


# ====================================================== grids and hypothesis


GRID_PADDINGS = [0, 1, 2, (0, 2), (3, 1), "same", "valid"]


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("padding", GRID_PADDINGS, ids=str)
@pytest.mark.parametrize("stride", [1, 2, 3, 5])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_geometry_grid(mode, padding, stride, dilation, k):
    length = 7
    if not padding_ok(mode, padding, length, k, dilation, stride):
        with pytest.raises(ValueError):  # outside the domain: refused, never a wrong answer
            tc.conv1d_matrix(
                np.ones(k),
                length,
                stride=stride,
                padding=padding,
                dilation=dilation,
                padding_mode=mode,
            )
        return
    w, b, x = make_case(k * 100 + stride * 10 + dilation, 4, 6, 2, k, length)
    check_all(w, b, x, stride, padding, dilation, 2, mode)


def test_grid_sizes_are_sane():
    # Guard against an accidentally empty grid (every case skipped).
    n_ok = sum(
        padding_ok(mode, p, 7, k, d, s)
        for mode, p, s, d, k in itertools.product(
            PADDING_MODES, GRID_PADDINGS, [1, 2, 3, 5], [1, 2], [1, 2, 3, 4]
        )
    )
    assert n_ok > 300


@pytest.mark.parametrize("form", PADDING_FORMS)
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_conv2d_every_form_and_mode(form, mode):
    @settings(max_examples=4)
    @given(cfg=conv_nd_configs(n=2, forms=(form,), modes=(mode,)))
    def run(cfg):
        check_all_nd(cfg)

    run()


@settings(max_examples=250)
@given(conv_configs(max_stride=4, max_length=9, max_padding=4, max_out_per_group=2))
def test_hypothesis_conv1d_vs_reference(cfg):
    w, b, x = make_case(
        cfg["seed"], cfg["c_in"], cfg["c_out"], cfg["groups"], cfg["k"], cfg["length"]
    )
    check_all(w, b, x, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"], cfg["mode"])


@pytest.mark.parametrize(
    ("n", "examples", "limits"),
    [(2, 40, {}), (3, 15, dict(max_length=4, max_channels=3))],
    ids=["2d", "3d"],
)
def test_hypothesis_conv_nd(n, examples, limits):
    """Random 2-D and 3-D layers (every padding form and mode) against the reference."""

    @settings(max_examples=examples)
    @given(cfg=conv_nd_configs(n=n, **limits))
    def run(cfg):
        check_all_nd(cfg)

    run()


@settings(max_examples=15)
@given(cfg=conv_nd_configs(n=1, max_length=8))
def test_hypothesis_n1_through_the_nd_path(cfg):
    """n = 1 with the N-d spellings (1-tuples) equals the 1-D functions and the reference."""
    w, b, x = make(cfg)
    kw = conv_kwargs(cfg)
    size = cfg["input_size"]
    ref = ref_conv_nd_matrix(w, size, **kw)
    assert_close(tc.conv_matrix(w, size, format="dense", **kw), ref)
    kw1 = dict(kw, stride=cfg["stride"][0], dilation=cfg["dilation"][0], padding=cfg["pads"][0])
    np.testing.assert_array_equal(
        tc.conv_matrix(w, size[0], **kw1).toarray(), tc.conv1d_matrix(w, size[0], **kw1).toarray()
    )
    assert_close(tc.conv_matrix(w, size[0], **kw1).toarray(), ref)
    assert_close(tc.conv(x, w, b, **kw), ref_conv_nd(x, w, b, **kw))


@settings(max_examples=200)
@given(
    conv_configs(max_stride=4, max_length=9, max_padding=4, max_out_per_group=2),
    st.sampled_from(ALL_FORMATS),
)
def test_hypothesis_formats(cfg, fmt):
    w, _, _ = make_case(
        cfg["seed"], cfg["c_in"], cfg["c_out"], cfg["groups"], cfg["k"], cfg["length"]
    )
    m = tc.conv1d_matrix(
        w,
        cfg["length"],
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
        padding_mode=cfg["mode"],
        format=fmt,
    )
    if fmt != "dense":
        assert_canonical_sparse(m, fmt)
    ref = ref_conv1d_matrix(
        w, cfg["length"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"], cfg["mode"]
    )
    assert_close(to_dense(m), ref)


# ====================================== channels, groups, taps landing twice


CHANNEL_CASES = [
    # (c_in, c_out, groups)
    (1, 1, 1),
    (1, 3, 1),
    (3, 1, 1),
    (3, 2, 1),
    (4, 4, 2),
    (4, 6, 2),
    (6, 4, 2),
    (3, 3, 3),  # depthwise
    (3, 6, 3),  # depthwise, channel multiplier 2
    (4, 12, 4),  # depthwise, channel multiplier 3
    (6, 6, 3),
]


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("padding", [1, (2, 0), "same"], ids=str)
@pytest.mark.parametrize(("c_in", "c_out", "groups"), CHANNEL_CASES)
def test_channels_and_groups(mode, padding, c_in, c_out, groups):
    length, k, dilation, stride = 6, 3, 2, 1
    w, b, x = make_case(c_in * 31 + c_out * 7 + groups, c_in, c_out, groups, k, length)
    check_all(w, b, x, stride, padding, dilation, groups, mode)
    # and a strided variant
    check_all(w, b, x, 2, padding if padding != "same" else 2, 1, groups, mode)


CHANNEL_CASES_2D = [(1, 1, 1), (3, 2, 1), (4, 4, 2), (2, 6, 2), (3, 3, 3), (2, 4, 2), (4, 4, 4)]


@pytest.mark.parametrize(("c_in", "c_out", "groups"), CHANNEL_CASES_2D)
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_channels_and_groups_2d(c_in, c_out, groups, mode):
    cfg = dict(
        n=2, groups=groups, c_in=c_in, c_out=c_out, kernel_size=(3, 2), stride=(2, 1),
        dilation=(1, 2), input_size=(5, 4), mode=mode, padding=((2, 1), 1), batch=2,
        seed=c_in * 100 + c_out * 10 + groups,
    )  # fmt: skip
    cfg["pads"] = resolve_padding_nd(cfg["padding"], cfg["kernel_size"], cfg["dilation"])
    check_all_nd(cfg)


# Cases where one row gets two or more taps on the same column (the += in section 2).
DOUBLE_TAP_CASES = [
    # (mode, length, k, padding, dilation, stride)
    ("circular", 2, 3, 1, 1, 1),
    ("circular", 1, 3, 1, 1, 1),
    ("circular", 2, 5, 2, 1, 1),
    ("circular", 3, 4, 3, 2, 1),
    ("circular", 2, 3, (2, 1), 2, 1),
    ("circular", 3, 3, "same", 3, 1),
    ("circular", 3, 7, 3, 1, 2),
    ("reflect", 2, 3, 1, 1, 1),
    ("reflect", 3, 5, 2, 1, 1),
    ("reflect", 3, 3, 2, 2, 1),
    ("reflect", 4, 7, 3, 1, 1),
    ("reflect", 4, 3, (3, 0), 3, 1),
    ("replicate", 1, 3, 2, 1, 1),
    ("replicate", 2, 4, 3, 2, 1),
    ("replicate", 2, 3, "same", 4, 1),
    ("zeros", 2, 3, 5, 1, 1),
]


@pytest.mark.parametrize(("mode", "length", "k", "padding", "dilation", "stride"), DOUBLE_TAP_CASES)
@pytest.mark.parametrize(("c_in", "c_out", "groups"), [(1, 1, 1), (2, 4, 2), (2, 3, 1)])
def test_taps_landing_twice(mode, length, k, padding, dilation, stride, c_in, c_out, groups):
    assert padding_ok(mode, padding, length, k, dilation, stride)
    w, b, x = make_case(length * 13 + k, c_in, c_out, groups, k, length)
    check_all(w, b, x, stride, padding, dilation, groups, mode)
    for fmt in SPARSE_FORMATS:
        m = tc.conv1d_matrix(
            w,
            length,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=mode,
            format=fmt,
        )
        assert_canonical_sparse(m, fmt)
        assert_close(
            m.toarray(), ref_conv1d_matrix(w, length, stride, padding, dilation, groups, mode)
        )


# Small axes where reflect/circular/replicate fold two or more taps onto one column (the +=).
@pytest.mark.parametrize(
    ("mode", "size", "ks", "padding"),
    [
        ("circular", (2, 1), (3, 3), 1),
        ("circular", (2, 3), (5, 3), (2, (1, 1))),
        ("reflect", (2, 2), (3, 3), 1),
        ("reflect", (3, 2), (5, 3), ((2, 2), (1, 0))),
        ("replicate", (1, 2), (3, 4), (2, 3)),
        ("zeros", (2, 2), (3, 3), 3),
    ],
    ids=str,
)
def test_taps_landing_twice_2d(mode, size, ks, padding):
    cfg = dict(
        n=2, groups=2, c_in=2, c_out=4, kernel_size=ks, stride=(1, 1), dilation=(1, 1),
        input_size=size, mode=mode, padding=padding, batch=1, seed=11,
    )  # fmt: skip
    cfg["pads"] = resolve_padding_nd(padding, ks, (1, 1))
    check_all_nd(cfg)
    w, _, _ = make(cfg)
    for fmt in SPARSE_FORMATS:
        m = tc.conv2d_matrix(w, size, format=fmt, **conv_kwargs(cfg))
        assert_canonical_sparse(m, fmt)
        assert_close(m.toarray(), ref_conv_nd_matrix(w, size, **conv_kwargs(cfg)))


# ============================================ batched, 1-D and N-d spellings


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("stride", "padding", "dilation"), [(1, 0, 1), (2, 1, 1), (1, "same", 2), (3, (2, 1), 2)]
)
def test_batched(mode, stride, padding, dilation):
    n, c_in, c_out, groups, k, length = 3, 4, 6, 2, 3, 8
    w, b, x = make_case(5, c_in, c_out, groups, k, length, batch=n)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    y = tc.conv1d(x, w, b, **kw)
    ref_y = ref_conv1d(x, w, b, **kw)
    assert y.shape == ref_y.shape
    assert_close(y, ref_y)
    m = tc.conv1d_matrix(w, length, **kw)
    l_out = ref_y.shape[-1]
    assert_close(x.reshape(n, -1) @ m.T + tc.bias_vector(b, l_out), ref_y.reshape(n, -1))
    kw_u = dict(stride=stride, padding=padding, dilation=dilation, padding_mode=mode)
    u = tc.unfold(x, (k,), **kw_u)
    assert u.shape == (n, c_in * k, l_out)
    assert_close(u, ref_unfold(x, k, **kw_u))
    for i in range(n):
        assert_close(u[i], tc.unfold(x[i], k, **kw_u))


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation"),
    [(1, 0, 0, 1), (2, 1, 1, 1), (3, (2, 0), 2, 2), (1, 1, 1, 3)],
)
def test_conv_transpose_batched(stride, padding, output_padding, dilation):
    n, c_in_t, c_out_t, groups, k, length_z = 2, 4, 6, 2, 3, 5
    rng = np.random.default_rng(11)
    w = rng.standard_normal((c_in_t, c_out_t // groups, k))
    b = rng.standard_normal(c_out_t)
    z = rng.standard_normal((n, c_in_t, length_z))
    kw = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    out = tc.conv_transpose1d(z, w, b, **kw)
    ref = ref_conv_transpose1d(z, w, b, **kw)
    assert out.shape == ref.shape
    assert_close(out, ref)
    for i in range(n):
        assert_close(out[i], tc.conv_transpose1d(z[i], w, b, **kw))


def test_one_dimensional_input_and_weight():
    rng = np.random.default_rng(3)
    w = rng.standard_normal(3)
    x = rng.standard_normal(9)
    for mode in PADDING_MODES:
        for kw in (dict(), dict(stride=2, padding=2, dilation=2), dict(padding="same")):
            y = tc.conv1d(x, w, padding_mode=mode, **kw)
            ref = ref_conv1d(x, w, None, padding_mode=mode, **kw)
            assert y.shape == ref.shape and y.ndim == 1
            assert_close(y, ref)
            m = tc.conv1d_matrix(w, 9, padding_mode=mode, format="dense", **kw)
            assert m.shape == (ref.shape[0], 9)
            assert_close(m @ x, ref)
    z = rng.standard_normal(4)
    out = tc.conv_transpose1d(z, w, stride=2, padding=1, output_padding=1)
    ref = ref_conv_transpose1d(z, w, None, stride=2, padding=1, output_padding=1)
    assert out.shape == ref.shape and out.ndim == 1
    assert_close(out, ref)


def test_one_d_spellings_unchanged():
    """conv1d_matrix(w, L) IS conv_matrix(w, L); the 1-tuple forms are accepted for 1-D."""
    rng = np.random.default_rng(59)
    w = rng.standard_normal((4, 2, 3))
    ref = ref_conv1d_matrix(w, 7, 2, (1, 2), 1, 2, "reflect")
    kw = dict(padding=(1, 2), groups=2, padding_mode="reflect")
    for m in (
        tc.conv1d_matrix(w, 7, stride=2, **kw),
        tc.conv_matrix(w, 7, stride=2, **kw),
        tc.conv_matrix(w, (7,), stride=(2,), **kw),
        tc.conv1d_matrix(w, (7,), stride=(2,), dilation=(1,), **kw),
        tc.conv_matrix(w, 7, stride=2, padding=((1, 2),), groups=2, padding_mode="reflect"),
    ):
        assert_canonical_sparse(m, "csr")
        assert_close(m.toarray(), ref)
    kernel = np.array([4.0, 3.0])
    np.testing.assert_array_equal(
        tc.conv_matrix(kernel, 5, format="dense"), tc.conv1d_matrix(kernel, 5, format="dense")
    )
    assert tc.conv_matrix(kernel, 5).shape == (4, 5)
    x = rng.standard_normal((4, 7))
    assert_close(tc.conv(x[None], w, stride=2, **kw), tc.conv1d(x[None], w, stride=2, **kw))
    assert_close(tc.conv(x, w, stride=2, **kw).ravel(), ref @ x.ravel())
    assert tc.output_size((7,), (3,)) == (5,)


def test_int_input_size_broadcasts_and_bare_kernels():
    rng = np.random.default_rng(53)
    w2, w3 = rng.standard_normal((3, 2)), rng.standard_normal((2, 2, 2))
    np.testing.assert_array_equal(
        tc.conv2d_matrix(w2, 4).toarray(), tc.conv2d_matrix(w2, (4, 4)).toarray()
    )
    np.testing.assert_array_equal(
        tc.conv3d_matrix(w3, 3).toarray(), tc.conv3d_matrix(w3[None, None], (3, 3, 3)).toarray()
    )
    assert_close(
        tc.conv_matrix(w2, (4, 5), padding=1).toarray(), ref_conv_nd_matrix(w2, (4, 5), padding=1)
    )
    assert_close(tc.conv_matrix(w3, (3, 2, 4)).toarray(), ref_conv_nd_matrix(w3, (3, 2, 4)))


# ================================================================ transposes


TRANSPOSE_CASES = [
    # (c_in_t, c_out_t, groups, k, length_z, stride, padding, output_padding, dilation)
    (1, 1, 1, 2, 4, 1, 0, 0, 1),
    (1, 1, 1, 3, 4, 2, 1, 1, 1),
    (1, 1, 1, 1, 5, 3, 0, 2, 1),
    (2, 3, 1, 3, 4, 2, 0, 0, 2),
    (4, 6, 2, 3, 3, 3, 2, 1, 1),
    (4, 4, 4, 2, 5, 2, 1, 0, 3),
    (3, 6, 3, 3, 4, 1, 2, 1, 2),  # q >= s, allowed because d > s
    (2, 2, 1, 3, 3, 1, 0, 2, 3),  # q = 2 >= s = 1, d = 3
    (2, 4, 2, 2, 4, 2, 0, 3, 4),  # q = 3 >= s = 2, d = 4
    (2, 2, 2, 4, 3, 2, (1, 3), 1, 1),
    (2, 4, 1, 3, 4, 3, (0, 2), 2, 2),
    (1, 1, 1, 5, 2, 4, (3, 0), 3, 1),  # stride larger than the kernel-span bits
    (3, 3, 1, 2, 6, 5, 0, 4, 1),
    (2, 2, 2, 6, 4, 1, 2, 0, 1),
    (2, 2, 1, 6, 9, 1, 1, 0, 1),
]


def _transpose_geometry(case):
    _, _, _, k, length_z, stride, padding, q, dilation = case
    return ref_conv_transpose_length(length_z, k, stride, padding, q, dilation)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose(case):
    c_in_t, c_out_t, groups, k, length_z, stride, padding, q, dilation = case
    assert 0 <= q < max(stride, dilation)
    length = _transpose_geometry(case)
    assert length >= 1
    rng = np.random.default_rng(length_z * 7 + k)
    w = rng.standard_normal((c_in_t, c_out_t // groups, k))
    b = rng.standard_normal(c_out_t)
    z = rng.standard_normal((c_in_t, length_z))
    kw = dict(stride=stride, padding=padding, output_padding=q, groups=groups, dilation=dilation)

    ref_out = ref_conv_transpose1d(z, w, b, **kw)
    assert ref_out.shape == (c_out_t, length)
    out = tc.conv_transpose1d(z, w, b, **kw)
    assert_close(out, ref_out)
    assert_close(tc.conv_transpose1d(z, w, **kw), ref_conv_transpose1d(z, w, None, **kw))

    mt = tc.conv_transpose1d_matrix(w, length_z, **kw)
    assert_canonical_sparse(mt, "csr")
    assert mt.shape == (c_out_t * length, c_in_t * length_z)
    ref_mt = ref_conv_transpose1d_matrix(w, length_z, **kw)
    assert_close(mt.toarray(), ref_mt)
    assert_close(mt @ z.ravel() + tc.bias_vector(b, length), ref_out.ravel())
    assert_close(tc.conv_transpose1d_matrix(w, length_z, format="dense", **kw), ref_mt)

    # It is the transpose of conv1d_matrix(W, L') (first L_z output rows of each channel).
    m = tc.conv1d_matrix(
        w, length, stride=stride, padding=padding, dilation=dilation, groups=groups, format="dense"
    )
    l_out = ref_output_length(length, k, stride, padding, dilation)
    assert l_out == length_z + q // stride
    rows = (np.arange(c_in_t)[:, None] * l_out + np.arange(length_z)[None, :]).ravel()
    assert_close(mt.toarray(), m[rows].T)
    assert_close(ref_mt, ref_conv1d_matrix(w, length, stride, padding, dilation, groups)[rows].T)


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose_formats(case, fmt):
    c_in_t, c_out_t, groups, k, length_z, stride, padding, q, dilation = case
    rng = np.random.default_rng(length_z * 5 + k)
    w = rng.standard_normal((c_in_t, c_out_t // groups, k))
    kw = dict(stride=stride, padding=padding, output_padding=q, groups=groups, dilation=dilation)
    mf = tc.conv_transpose1d_matrix(w, length_z, format=fmt, **kw)
    assert_canonical_sparse(mf, fmt)
    assert_close(mf.toarray(), ref_conv_transpose1d_matrix(w, length_z, **kw))


@st.composite
def transpose_configs(draw):
    groups = draw(st.integers(1, 3))
    g_in = draw(st.integers(1, 2))
    g_out = draw(st.integers(1, 2))
    k = draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 4))
    length_z = draw(st.integers(1, 6))
    q = draw(st.integers(0, max(stride, dilation) - 1))
    if draw(st.booleans()):
        padding = draw(st.integers(0, 3))
    else:
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    length = ref_conv_transpose_length(length_z, k, stride, padding, q, dilation)
    assume(length >= 1)
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(
        groups=groups,
        c_in_t=g_in * groups,
        c_out_t=g_out * groups,
        k=k,
        dilation=dilation,
        stride=stride,
        length_z=length_z,
        output_padding=q,
        padding=padding,
        length=length,
        seed=seed,
    )


@settings(max_examples=200)
@given(transpose_configs(), st.sampled_from(ALL_FORMATS))
def test_hypothesis_conv_transpose_vs_reference(cfg, fmt):
    rng = np.random.default_rng(cfg["seed"])
    groups, k = cfg["groups"], cfg["k"]
    w = rng.standard_normal((cfg["c_in_t"], cfg["c_out_t"] // groups, k))
    b = rng.standard_normal(cfg["c_out_t"])
    z = rng.standard_normal((cfg["c_in_t"], cfg["length_z"]))
    kw = dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        output_padding=cfg["output_padding"],
        groups=groups,
        dilation=cfg["dilation"],
    )
    ref_out = ref_conv_transpose1d(z, w, b, **kw)
    assert_close(tc.conv_transpose1d(z, w, b, **kw), ref_out)
    mt = tc.conv_transpose1d_matrix(w, cfg["length_z"], format=fmt, **kw)
    if fmt != "dense":
        assert_canonical_sparse(mt, fmt)
    mt = sp.csr_array(mt)
    assert_close(mt @ z.ravel() + tc.bias_vector(b, cfg["length"]), ref_out.ravel())
    length = cfg["length"]
    m = tc.conv1d_matrix(
        w,
        length,
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=groups,
        format="dense",
    )
    l_out = m.shape[0] // cfg["c_in_t"]
    rows = (np.arange(cfg["c_in_t"])[:, None] * l_out + np.arange(cfg["length_z"])[None, :]).ravel()
    assert_close(mt.toarray(), m[rows].T)


def check_transpose_nd(cfg, fmt="csr"):
    n = cfg["n"]
    rng = np.random.default_rng(cfg["seed"])
    w = rng.standard_normal((cfg["c_in_t"], cfg["c_out_t"] // cfg["groups"], *cfg["kernel_size"]))
    b = rng.standard_normal(cfg["c_out_t"])
    z = rng.standard_normal((cfg["batch"], cfg["c_in_t"], *cfg["input_size"]))
    kw = transpose_kwargs(cfg)
    size_z, size = cfg["input_size"], cfg["size"]
    ref_out = ref_conv_transpose_nd(z, w, b, **kw)
    assert ref_out.shape[2:] == size
    assert_close(transpose_fn(n)(z, w, b, **kw), ref_out)
    assert_close(transpose_fn(n)(z[0], w, b, **kw), ref_out[0])
    assert_close(tc.conv_transpose(z, w, b, **kw), ref_out)

    ref_mt = ref_conv_transpose_nd_matrix(w, size_z, **kw)
    mt = transpose_matrix_fn(n)(w, size_z, format=fmt, **kw)
    if fmt != "dense":
        assert_canonical_sparse(mt, fmt)
    assert (
        mt.shape
        == ref_mt.shape
        == (cfg["c_out_t"] * np.prod(size), cfg["c_in_t"] * np.prod(size_z))
    )
    assert_close(to_dense(mt), ref_mt)
    generic = tc.conv_transpose_matrix(w, size_z, format=fmt, **kw)
    np.testing.assert_array_equal(to_dense(generic), to_dense(mt))
    c = tc.bias_vector(b, size)
    batch = len(z)
    assert_close(z.reshape(batch, -1) @ to_dense(mt).T + c, ref_out.reshape(batch, -1))

    # conv_matrix(W, L').T, on the output positions i_a < L_z,a of conv(L') (more exist when
    # q_a >= s_a, which torch allows when d_a > s_a).
    conv_kw_ = dict(
        stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"]
    )
    m = matrix_fn(n)(w, size, format="dense", **conv_kw_)
    s_out = ref_output_size(
        size, cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"]
    )
    keep = np.zeros((cfg["c_in_t"], *s_out), dtype=bool)
    keep[(slice(None), *(slice(0, v) for v in size_z))] = True
    assert_close(to_dense(mt), m[keep.ravel()].T)
    assert_close(ref_mt, ref_conv_nd_matrix(w, size, **conv_kw_)[keep.ravel()].T)


@pytest.mark.parametrize(
    ("n", "examples", "limits", "formats"),
    [
        (2, 30, {}, ALL_FORMATS),
        (3, 12, dict(max_length=3, max_channels=3), ("csr",)),
    ],
    ids=["2d", "3d"],
)
def test_hypothesis_conv_transpose_nd(n, examples, limits, formats):
    """Random 2-D and 3-D transposed convolutions against the reference, in every format."""

    @settings(max_examples=examples)
    @given(cfg=conv_transpose_nd_configs(n=n, **limits), fmt=st.sampled_from(formats))
    def run(cfg, fmt):
        check_transpose_nd(cfg, fmt)

    run()


def test_conv_transpose_output_size():
    for size_z, ks, s, p, q, d in [
        ((3, 4), (3, 2), (2, 1), (1, 0), (1, 0), (1, 1)),
        ((2, 2), (2, 3), (1, 2), ((0, 1), (2, 0)), (1, 1), (2, 1)),
        ((2, 3, 1), (1, 2, 3), (3, 1, 1), 0, (2, 0, 0), 1),
    ]:
        expected = ref_conv_transpose_size(size_z, ks, s, p, q, d)
        w = np.ones((1, 1, *ks))
        kw = dict(stride=s, padding=p, output_padding=q, dilation=d)
        mt = tc.conv_transpose_matrix(w, size_z, **kw)
        assert mt.shape == (int(np.prod(expected)), int(np.prod(size_z)))
        z = np.ones((1, *size_z))
        assert tc.conv_transpose(z, w, **kw).shape == (1, *expected)


# ================================================================= dot tests


DOT_MATRIX_CASES = [
    # (n, weight shape, input size, geometry)
    (1, (6, 4, 3), 9, dict(stride=1, padding=0, dilation=1, groups=1)),
    (1, (6, 2, 3), 9, dict(stride=2, padding=1, dilation=2, groups=2)),
    (1, (6, 4, 3), 9, dict(stride=3, padding=(2, 1), dilation=1, groups=1)),
    (1, (6, 2, 3), 9, dict(stride=1, padding="same", dilation=3, groups=2)),
    (2, (4, 1, 3, 2), (5, 4), dict(stride=(2, 1), padding=1, groups=2)),
    (3, (4, 1, 2, 3, 2), (3, 4, 3), dict(stride=(2, 1, 1), padding=1, groups=2)),
]


@pytest.mark.parametrize("complex_weight", [False, True])
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("case", DOT_MATRIX_CASES, ids=str)
def test_dot_matrix(case, mode, complex_weight):
    """``<M x, y> == <x, M^H y>`` for every format, 1, 2 and 3 axes."""
    n, shape, size, kw = case
    rng = np.random.default_rng(17)
    w = rng.standard_normal(shape)
    if complex_weight:
        w = w + 1j * rng.standard_normal(w.shape)
    for fmt in ALL_FORMATS:
        m = matrix_fn(n)(w, size, format=fmt, padding_mode=mode, **kw)
        x = rng.standard_normal(m.shape[1]) + 1j * rng.standard_normal(m.shape[1])
        y = rng.standard_normal(m.shape[0]) + 1j * rng.standard_normal(m.shape[0])
        # <M x, y> == <x, M^H y>  (the adjoint is the conjugate transpose, not .T)
        lhs = np.vdot(m @ x, y)
        rhs = np.vdot(x, m.conj().T @ y)
        assert abs(lhs - rhs) <= 1e-12 * (np.abs(m @ x).sum() * np.abs(y).max() + 1)
        xr, yr = x.real, y.real
        lhs_r, rhs_r = np.dot(m @ xr, yr), np.dot(xr, m.T @ yr)
        assert abs(lhs_r - rhs_r) <= 1e-12 * (np.abs(m @ xr).sum() * np.abs(yr).max() + 1)
        if complex_weight:
            assert abs(np.vdot(x, m.T @ y) - lhs) > 1e-6  # the transpose is not the adjoint


@pytest.mark.parametrize("complex_weight", [False, True])
@pytest.mark.parametrize(
    ("size", "ks", "stride", "padding", "dilation", "groups", "c_out"),
    [
        ((8,), (3,), 1, 0, 1, 1, 6),
        ((9,), (3,), 2, 1, 1, 2, 6),
        ((10,), (3,), 2, 1, 1, 2, 6),
        ((11,), (3,), 3, (2, 0), 2, 1, 6),
        ((7,), (3,), 4, 3, 1, 2, 6),
        ((6,), (3,), 1, (0, 3), 3, 2, 6),
        ((6, 5), (3, 2), (2, 1), 1, (1, 2), 2, 4),
        ((7, 4), (2, 3), (3, 2), ((2, 0), (1, 1)), 1, 1, 4),
        ((4, 3, 5), (2, 2, 3), (2, 1, 2), (1, 0, 1), (1, 1, 1), 2, 4),
    ],
    ids=str,
)
def test_dot_conv_and_transpose(size, ks, stride, padding, dilation, groups, c_out, complex_weight):
    """<conv(x), z> == <x, conv_transpose(z)> (bilinear; q picked so that L' == L per axis)."""
    rng = np.random.default_rng(23)
    n = len(size)
    w = rng.standard_normal((c_out, 4 // groups, *ks))
    if complex_weight:
        w = w + 1j * rng.standard_normal(w.shape)
    pads = resolve_padding_nd(padding, ks, dilation)
    q = tuple(
        (length + p_l + p_r - d * (k - 1) - 1) % s
        for length, (p_l, p_r), d, k, s in zip(
            size, pads, as_axes(dilation, n), ks, as_axes(stride, n), strict=True
        )
    )
    q = q[0] if n == 1 else q  # the 1-D spelling: an int
    x = rng.standard_normal((4, *size))
    y = conv_fn(n)(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    z = rng.standard_normal(y.shape)
    xt = transpose_fn(n)(
        z, w, stride=stride, padding=padding, output_padding=q, groups=groups, dilation=dilation
    )
    assert xt.shape == x.shape
    lhs, rhs = np.sum(y * z), np.sum(x * xt)
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(y).sum() + np.abs(x).sum()) * 10


@pytest.mark.parametrize("complex_weight", [False, True])
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_operators_equal_the_matrix(mode, complex_weight):
    rng = np.random.default_rng(43)
    w = rng.standard_normal((4, 2, 3, 2))
    if complex_weight:
        w = w + 1j * rng.standard_normal(w.shape)
    kw = dict(stride=(1, 2), padding=((1, 2), 1), dilation=(2, 1), groups=1, padding_mode=mode)
    m = tc.conv2d_matrix(w, (4, 5), format="dense", **kw)
    for op in (tc.conv2d_operator(w, (4, 5), **kw), tc.conv_operator(w, (4, 5), **kw)):
        assert op.shape == m.shape
        x = rng.standard_normal(m.shape[1]) + 1j * rng.standard_normal(m.shape[1])
        y = rng.standard_normal(m.shape[0]) + 1j * rng.standard_normal(m.shape[0])
        assert_close(op @ x, m @ x)
        assert_close(op.matmat(np.stack([x, 2 * x], 1)), m @ np.stack([x, 2 * x], 1))
        assert_close(op.T @ y, m.T @ y)
        assert_close(op.H @ y, m.conj().T @ y)
        assert_close(op.adjoint() @ y, m.conj().T @ y)
        assert_close(op.rmatvec(y), m.conj().T @ y)
        assert abs(np.vdot(op @ x, y) - np.vdot(x, op.H @ y)) <= 1e-10 * np.abs(m).sum()
    xr = rng.standard_normal((2, 4, 5))
    assert_close(tc.conv2d_operator(w, (4, 5), **kw) @ xr.ravel(), tc.conv2d(xr, w, **kw).ravel())
    tkw = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2))
    mt = tc.conv_transpose2d_matrix(w, (3, 2), format="dense", **tkw)
    for op in (
        tc.conv_transpose2d_operator(w, (3, 2), **tkw),
        tc.conv_transpose_operator(w, (3, 2), **tkw),
    ):
        z = rng.standard_normal(mt.shape[1]) + 1j * rng.standard_normal(mt.shape[1])
        v = rng.standard_normal(mt.shape[0]) + 1j * rng.standard_normal(mt.shape[0])
        assert_close(op @ z, mt @ z)
        assert_close(op.H @ v, mt.conj().T @ v)
        assert_close(op.T @ v, mt.T @ v)


# ======================================================== formats and dtypes


FORMAT_CASES_1D = [
    # (c_in, c_out, groups, k, length, stride, padding, mode, dilation)
    (1, 1, 1, 3, 7, 1, 1, "zeros", 1),
    (1, 1, 1, 3, 7, 1, 1, "circular", 1),
    (2, 3, 1, 2, 6, 2, 1, "reflect", 1),
    (4, 4, 2, 3, 5, 1, "same", "replicate", 2),
    (3, 6, 3, 4, 8, 3, (2, 1), "circular", 1),
    (2, 2, 1, 3, 2, 1, 1, "circular", 1),
    # wrap-around taps put a far block before near ones in a block row (BSR sorting)
    (3, 3, 3, 6, 16, 1, "same", "circular", 1),
    (4, 4, 4, 6, 10, 1, "same", "zeros", 1),
    (2, 4, 2, 5, 7, 2, (1, 0), "circular", 1),
]


FORMAT_CASES_ND = [
    # (n, c_in, c_out, groups, ks, size, stride, padding, dilation, mode)
    (2, 1, 1, 1, (3, 3), (4, 4), 1, 1, 1, "zeros"),
    (2, 2, 3, 1, (2, 3), (5, 4), (2, 1), ((1, 0), 2), (1, 2), "reflect"),
    (2, 3, 3, 3, (3, 3), (4, 5), 1, "same", (2, 1), "circular"),
    (2, 2, 4, 2, (3, 1), (3, 6), (1, 3), (1, 0), 1, "replicate"),
    (3, 2, 2, 1, (2, 2, 3), (3, 4, 3), (1, 2, 1), 1, 1, "circular"),
    (3, 2, 4, 2, (3, 1, 2), (3, 3, 4), 1, "valid", (1, 1, 2), "zeros"),
]


FORMAT_CASES = [
    *(
        (1, c_in, c_out, g, (k,), length, s, p, d, mode)
        for c_in, c_out, g, k, length, s, p, mode, d in FORMAT_CASES_1D
    ),
    *FORMAT_CASES_ND,
]  # (n, c_in, c_out, groups, ks, size, stride, padding, dilation, mode)


@pytest.mark.parametrize("case", FORMAT_CASES, ids=str)
def test_every_format_same_values(case):
    n, c_in, c_out, groups, ks, size, stride, padding, dilation, mode = case
    w = np.random.default_rng(29).standard_normal((c_out, c_in // groups, *ks))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    ref = ref_conv_nd_matrix(w, size, **kw)
    dense = matrix_fn(n)(w, size, format="dense", **kw)
    assert type(dense) is np.ndarray
    assert_close(dense, ref)
    default = matrix_fn(n)(w, size, **kw)
    assert_canonical_sparse(default, "csr")
    for fmt in SPARSE_FORMATS:
        m = matrix_fn(n)(w, size, format=fmt, **kw)
        assert_canonical_sparse(m, fmt)
        assert m.shape == ref.shape and m.dtype == np.float64
        np.testing.assert_array_equal(m.toarray(), dense)
        if fmt != "bsr":  # BSR may store explicit zeros inside its blocks
            assert sp.csr_array(m).nnz == default.nnz == np.count_nonzero(ref)


@pytest.mark.parametrize(
    ("ks", "size", "padding", "dilation", "mode"),
    [
        ((3,), 7, 0, 1, "zeros"),
        ((3,), 7, 1, 1, "zeros"),
        ((4,), 9, "same", 2, "zeros"),
        ((2,), 5, (0, 1), 1, "zeros"),
        ((3,), 6, 1, 1, "circular"),
        ((1,), 4, 0, 1, "zeros"),
        ((3, 3), (4, 5), "same", 1, "zeros"),
        ((2, 3), (5, 4), "same", (2, 1), "zeros"),
        ((3, 3), (4, 4), 1, 1, "circular"),
        ((3, 2, 2), (3, 3, 4), "same", 1, "zeros"),
    ],
    ids=str,
)
def test_dia_where_compact(ks, size, padding, dilation, mode):
    """One channel, stride 1: the DIA matrix has no more diagonals than distinct offsets."""
    w = np.random.default_rng(31).standard_normal(ks)
    kw = dict(padding=padding, dilation=dilation, padding_mode=mode)
    build = tc.conv1d_matrix if len(ks) == 1 else tc.conv_matrix
    m = build(w, size, format="dia", **kw)
    assert_canonical_sparse(m, "dia")
    ref = ref_conv_nd_matrix(w, size, **kw)
    assert_close(m.toarray(), ref)
    r, c = np.nonzero(ref)
    assert len(m.offsets) <= len(np.unique(c - r))


def _weights_of(dtype, shape, rng):
    if np.issubdtype(dtype, np.complexfloating):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# n -> (weight shape, input size, geometry, transposed input size); the transposes take
# stride 2, padding 1
DTYPE_LAYERS = {
    1: ((4, 2, 3), 6, dict(stride=2, padding=1, groups=1, padding_mode="reflect"), 3),
    2: ((4, 2, 2, 3), (4, 5), dict(stride=(2, 1), padding=(1, (0, 2)), padding_mode="reflect"),
        (3, 2)),
}  # fmt: skip
# n -> (weight shape, input size, geometry, transposed input size, transposed geometry)
OVERRIDE_LAYERS = {
    1: ((3, 1, 2), 5, dict(groups=3, padding=1, padding_mode="circular"), 5,
        dict(groups=3, padding=1)),
    3: ((2, 1, 2, 2, 2), (3, 3, 2), dict(padding=(1, 0, 1)), (2, 2, 2), {}),
}  # fmt: skip


@pytest.mark.parametrize(
    ("wdtype", "expected"),
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.complex128, np.complex128),
        (np.complex64, np.complex64),
        (np.int64, np.float64),
        (np.int32, np.float64),
        (np.int8, np.float64),
    ],
)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("n", [1, 2])
def test_dtype_follows_weight(n, wdtype, expected, fmt):
    rng = np.random.default_rng(37)
    shape, size, kw, size_t = DTYPE_LAYERS[n]
    w = _weights_of(np.dtype(wdtype), shape, rng)
    m = matrix_fn(n)(w, size, format=fmt, **kw)
    assert m.dtype == expected
    if fmt != "dense":
        assert_canonical_sparse(m, fmt)
    w_ref = w.astype(np.complex128 if np.iscomplexobj(w) else np.float64)
    low = np.dtype(expected) in (np.dtype(np.float32), np.dtype(np.complex64))
    tol = 1e-6 if low else RTOL
    assert_close(to_dense(m), ref_conv_nd_matrix(w_ref, size, **kw), rtol=tol, atol=tol)
    mt = transpose_matrix_fn(n)(w, size_t, stride=2, padding=1, format=fmt)
    assert mt.dtype == expected


@pytest.mark.parametrize(
    ("wdtype", "dtype"),
    [
        (np.float64, np.float32),
        (np.float32, np.float64),
        (np.float64, np.complex128),
        (np.int64, np.float32),
        (np.complex128, np.complex128),
    ],
)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("n", [1, 3])
def test_dtype_override(n, wdtype, dtype, fmt):
    """``dtype=`` overrides the weight's dtype, for the matrix and its transpose."""
    shape, size, kw, size_t, kw_t = OVERRIDE_LAYERS[n]
    w = _weights_of(np.dtype(wdtype), shape, np.random.default_rng(41))
    m = matrix_fn(n)(w, size, format=fmt, dtype=dtype, **kw)
    assert m.dtype == np.dtype(dtype)
    tol = 1e-6 if np.dtype(dtype) == np.float32 else RTOL
    w_ref = w.astype(np.complex128 if np.iscomplexobj(w) else np.float64)
    assert_close(to_dense(m), ref_conv_nd_matrix(w_ref, size, **kw), rtol=tol, atol=tol)
    mt = transpose_matrix_fn(n)(w, size_t, format=fmt, dtype=dtype, **kw_t)
    assert mt.dtype == np.dtype(dtype)


def test_complex_weights_values():
    rng = np.random.default_rng(43)
    w = rng.standard_normal((2, 2, 3)) + 1j * rng.standard_normal((2, 2, 3))
    x = rng.standard_normal((2, 7)) + 1j * rng.standard_normal((2, 7))
    for mode in PADDING_MODES:
        m = tc.conv1d_matrix(w, 7, padding=2, padding_mode=mode, stride=2)
        assert m.dtype == np.complex128
        ref_m = ref_conv1d_matrix(w, 7, 2, 2, 1, 1, mode)
        assert_close(m.toarray(), ref_m)
        assert_close(m @ x.ravel(), ref_conv1d(x, w, None, 2, 2, 1, 1, mode).ravel())
        assert_close(
            tc.conv1d(x, w, padding=2, padding_mode=mode, stride=2),
            ref_conv1d(x, w, None, 2, 2, 1, 1, mode),
        )


def test_list_weight_accepted():
    m = tc.conv1d_matrix([[[1.0, 2.0]], [[3.0, 4.0]]], 3, format="dense")
    assert_close(m, ref_conv1d_matrix(np.array([[[1.0, 2.0]], [[3.0, 4.0]]]), 3))


def test_index_dtype_int32_larger():
    w = np.random.default_rng(47).standard_normal((8, 8, 5))
    m = tc.conv1d_matrix(w, 200, padding="same")
    assert_canonical_sparse(m, "csr")
    assert m.nnz == np.count_nonzero(ref_conv1d_matrix(w[:1, :1], 200, padding="same")) * 64


# ======================================================== rows=, bias, sizes


@pytest.mark.parametrize(
    ("n", "mode", "padding", "stride"),
    [(2, "zeros", 1, (2, 1)), (2, "circular", "same", 1), (2, "reflect", ((2, 1), 0), 1),
     (3, "replicate", (1, 0, 1), (1, 2, 1)), (3, "zeros", "valid", 1)],
    ids=str,
)  # fmt: skip
def test_rows_slices_equal_the_full_matrix(n, mode, padding, stride):
    rng = np.random.default_rng(47)
    ks, size = ((3, 2), (4, 5)) if n == 2 else ((2, 2, 3), (3, 3, 4))
    w = rng.standard_normal((4, 1, *ks))
    kw = dict(stride=stride, padding=padding, groups=2, padding_mode=mode)
    full = matrix_fn(n)(w, size, **kw).toarray()
    n_rows = full.shape[0]
    cuts = sorted({0, 1, 3, n_rows // 3, n_rows // 2, n_rows - 2, n_rows - 1, n_rows})
    spans = list(itertools.combinations(cuts, 2))
    for r0, r1 in spans:
        part = matrix_fn(n)(w, size, rows=(r0, r1), **kw)
        assert_canonical_sparse(part, "csr")
        assert part.shape == (r1 - r0, full.shape[1])
        np.testing.assert_array_equal(part.toarray(), full[r0:r1])
        part_d = matrix_fn(n)(w, size, rows=(r0, r1), format="dense", **kw)
        np.testing.assert_array_equal(part_d, full[r0:r1])
        np.testing.assert_array_equal(
            tc.conv_matrix(w, size, rows=(r0, r1), **kw).toarray(), full[r0:r1]
        )


def test_rows_empty_range_and_other_formats():
    rng = np.random.default_rng(49)
    w = rng.standard_normal((2, 2, 2, 3)).astype(np.float32)
    kw = dict(padding=(1, 0), stride=(1, 2), padding_mode="circular")
    full = tc.conv2d_matrix(w, (3, 5), **kw).toarray()
    empty = tc.conv2d_matrix(w, (3, 5), rows=(4, 4), **kw)
    assert empty.shape == (0, full.shape[1]) and empty.dtype == np.float32 and empty.nnz == 0
    for fmt in ("coo", "dense"):
        part = tc.conv2d_matrix(w, (3, 5), rows=(3, 11), format=fmt, **kw)
        assert part.dtype == np.float32
        if fmt != "dense":
            assert_canonical_sparse(part, fmt)
        np.testing.assert_array_equal(to_dense(part), full[3:11])


def test_bias_vector():
    b = np.array([1.5, -2.0, 3.25])
    np.testing.assert_array_equal(tc.bias_vector(b, 4), np.repeat(b, 4))
    np.testing.assert_array_equal(tc.bias_vector(b, 1), b)
    np.testing.assert_array_equal(tc.bias_vector(b, (2, 3)), np.repeat(b, 6))
    np.testing.assert_array_equal(tc.bias_vector(b, (2, 1, 2)), np.repeat(b, 4))
    np.testing.assert_array_equal(tc.bias_vector(b, (1, 1)), b)


@pytest.mark.parametrize("padding", [0, 1, 2, 3, (1, 2), (0, 3), (4, 0), "same", "valid"], ids=str)
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_output_length(padding, k, dilation, stride):
    if padding == "same" and stride != 1:
        return
    for length in (1, 2, 5, 8):
        expected = ref_output_length(length, k, stride, padding, dilation)
        if expected < 1:
            continue
        assert (
            tc.output_length(length, k, stride=stride, padding=padding, dilation=dilation)
            == expected
        )
        if padding == "same":
            assert expected == length


OUTPUT_SIZE_CASES = [
    (padding, stride, dilation)
    for padding in [0, 2, (1, 0), ((0, 2), (1, 1)), (3, (0, 1)), "same", "valid"]
    for stride in [1, (2, 1), (1, 3)]
    for dilation in [1, (2, 1)]
    if not (padding == "same" and stride != 1)  # "same" needs stride 1 (tests/test_errors.py)
]


@pytest.mark.parametrize(("padding", "stride", "dilation"), OUTPUT_SIZE_CASES, ids=str)
def test_output_size(padding, stride, dilation):
    ks = (3, 2)
    for size in [(4, 5), (7, 3), (6, 6)]:
        expected = ref_output_size(size, ks, stride, padding, dilation)
        if min(expected) < 1:  # empty on some axis: refused (tests/test_errors.py)
            with pytest.raises(ValueError):
                tc.output_size(size, ks, stride=stride, padding=padding, dilation=dilation)
            continue
        got = tc.output_size(size, ks, stride=stride, padding=padding, dilation=dilation)
        assert isinstance(got, tuple) and got == expected
        if padding == "same":
            assert got == size
    assert tc.output_size((5, 5, 5), (3, 3, 3), padding=1) == (5, 5, 5)
    assert tc.output_size((5,), (2,)) == (4,)


# =================================================== forward dtypes, layouts


@pytest.mark.parametrize(
    ("xdtype", "wdtype", "expected"),
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float32, np.float64),
        (np.float32, np.complex64, np.complex64),
        (np.complex128, np.float64, np.complex128),
        (np.int64, np.int32, np.float64),
    ],
)
def test_forward_dtypes(xdtype, wdtype, expected):
    rng = np.random.default_rng(71)
    w = _weights_of(np.dtype(wdtype), (4, 1, 2, 3), rng)
    x = _weights_of(np.dtype(xdtype), (2, 2, 4, 5), rng)
    b = _weights_of(np.dtype(wdtype), (4,), rng)
    kw = dict(stride=(1, 2), padding=(1, (2, 0)), groups=2, padding_mode="circular")
    y = tc.conv2d(x, w, b, **kw)
    assert y.dtype == expected
    low = np.dtype(expected) in (np.dtype(np.float32), np.dtype(np.complex64))
    tol = 1e-5 if low else 1e-12
    ref = ref_conv_nd(x.astype(np.complex128), w.astype(np.complex128), b, **kw)
    assert_close(y, ref if np.dtype(expected).kind == "c" else ref.real, rtol=tol, atol=tol)
    z = _weights_of(np.dtype(xdtype), (2, 4, 3, 2), rng)
    tkw = dict(stride=2, padding=(1, 0), output_padding=(1, 0), groups=2)
    bt = b[:2]  # C_out_t = 1 * groups
    out = tc.conv_transpose2d(z, w, bt, **tkw)
    assert out.dtype == expected
    ref_t = ref_conv_transpose_nd(z.astype(np.complex128), w.astype(np.complex128), bt, **tkw)
    assert_close(out, ref_t if np.dtype(expected).kind == "c" else ref_t.real, rtol=tol, atol=tol)


def test_forward_non_contiguous_inputs():
    """Strided, transposed and Fortran-ordered views give the same result as a copy."""
    rng = np.random.default_rng(73)
    w = rng.standard_normal((3, 2, 2, 2, 3))
    base = rng.standard_normal((2, 4, 6, 8, 5))
    x = base[:, ::2, ::2, ::2, :]  # (2, 2, 3, 4, 5), strided
    kw = dict(stride=(1, 2, 1), padding=(1, 0, (1, 2)), padding_mode="reflect")
    ref = ref_conv_nd(np.ascontiguousarray(x), w, None, **kw)
    assert_close(tc.conv3d(x, w, **kw), ref)
    assert_close(tc.conv3d(np.asfortranarray(x), np.asfortranarray(w), **kw), ref)
    x2 = rng.standard_normal((5, 4, 2)).transpose(2, 1, 0)  # (2, 4, 5)
    w2 = rng.standard_normal((3, 3, 2)).transpose(2, 0, 1)[:, None]  # (2, 1, 3, 3)
    kw2 = dict(padding=1, padding_mode="replicate", groups=2)
    ref2 = ref_conv_nd(np.ascontiguousarray(x2), np.ascontiguousarray(w2), None, **kw2)
    assert_close(tc.conv2d(x2, w2, **kw2), ref2)
    assert_close(tc.conv2d_matrix(w2, (4, 5), **kw2) @ x2.ravel(), ref2.ravel())
    assert_close(tc.unfold(x2, (3, 3), padding=1), ref_unfold_nd(x2, (3, 3), padding=1))

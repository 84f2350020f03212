"""The library against the loop-by-the-formula reference of docs/math.md.

Small cases over the whole parameter space: every padding mode and padding spelling, stride
(also larger than the kernel), dilation, groups (incl. depthwise with a channel multiplier),
multi-channel, batched and 1-D inputs, taps that land twice on one column, every output
format and the dtype rules.
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
    assert_close,
    padding_ok,
    ref_conv1d,
    ref_conv1d_matrix,
    ref_conv_transpose1d,
    ref_conv_transpose1d_matrix,
    ref_conv_transpose_length,
    ref_output_length,
    ref_padded,
    ref_unfold,
    resolve_padding,
)
from strategies import conv_configs

RTOL = 1e-12
ATOL = 1e-12
SPARSE_FORMATS = ("csr", "csc", "coo", "bsr")
ALL_FORMATS = (*SPARSE_FORMATS, "dense")


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


# --------------------------------------------------------------------------- reference sanity
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


# --------------------------------------------------------------------------- classic example
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


# --------------------------------------------------------------------------- grids
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


def test_same_padding_puts_extra_on_the_right():
    # K=2, d=1: t=1 -> (0, 1); the last output sees x[L-1] and a zero.
    w = np.array([1.0, 1.0])
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tc.conv1d(x, w, padding="same"), [3.0, 5.0, 3.0])
    # K=4, d=1: t=3 -> (1, 2).
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    np.testing.assert_array_equal(tc.conv1d(x, w, padding="same"), ref_conv1d(x, w, padding=(1, 2)))
    np.testing.assert_array_equal(tc.conv1d(x, w, padding="same"), [3210.0, 321.0, 32.0])


def test_bias_vector():
    b = np.array([1.5, -2.0, 3.25])
    np.testing.assert_array_equal(tc.bias_vector(b, 4), np.repeat(b, 4))
    np.testing.assert_array_equal(tc.bias_vector(b, 1), b)


# --------------------------------------------------------------------------- batched / 1-D
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


# --------------------------------------------------------------------------- transpose
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


# --------------------------------------------------------------------------- dot tests
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 0, 1, 1), (2, 1, 2, 2), (3, (2, 1), 1, 1), (1, "same", 3, 2)],
    ids=str,
)
def test_dot_matrix(mode, stride, padding, dilation, groups):
    rng = np.random.default_rng(17)
    c_in, c_out, k, length = 4, 6, 3, 9
    w = rng.standard_normal((c_out, c_in // groups, k))
    for fmt in ALL_FORMATS:
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
        x = rng.standard_normal(m.shape[1])
        y = rng.standard_normal(m.shape[0])
        lhs = np.dot(m @ x, y)
        rhs = np.dot(x, m.T @ y)
        assert abs(lhs - rhs) <= 1e-12 * (np.abs(m @ x).sum() * np.abs(y).max() + 1)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups", "length"),
    [
        (1, 0, 1, 1, 8),
        (2, 1, 1, 2, 9),
        (2, 1, 1, 2, 10),
        (3, (2, 0), 2, 1, 11),
        (4, 3, 1, 2, 7),
        (1, (0, 3), 3, 2, 6),
    ],
    ids=str,
)
def test_dot_conv_and_transpose(stride, padding, dilation, groups, length):
    """<conv1d(x), z> == <x, conv_transpose1d(z)> with output_padding picked so L' == L."""
    rng = np.random.default_rng(23)
    c_in, c_out, k = 4, 6, 3
    w = rng.standard_normal((c_out, c_in // groups, k))
    p_l, p_r = resolve_padding(padding, k, dilation)
    q = (length + p_l + p_r - dilation * (k - 1) - 1) % stride
    x = rng.standard_normal((c_in, length))
    y = tc.conv1d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    z = rng.standard_normal(y.shape)
    xt = tc.conv_transpose1d(
        z, w, stride=stride, padding=padding, output_padding=q, groups=groups, dilation=dilation
    )
    assert xt.shape == x.shape
    lhs = np.vdot(y, z)
    rhs = np.vdot(x, xt)
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(y).sum() + np.abs(x).sum()) * 10


# --------------------------------------------------------------------------- formats, dtypes
FORMAT_CASES = [
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


@pytest.mark.parametrize("case", FORMAT_CASES, ids=str)
def test_every_format_same_values(case):
    c_in, c_out, groups, k, length, stride, padding, mode, dilation = case
    rng = np.random.default_rng(29)
    w = rng.standard_normal((c_out, c_in // groups, k))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    ref = ref_conv1d_matrix(w, length, stride, padding, dilation, groups, mode)
    dense = tc.conv1d_matrix(w, length, format="dense", **kw)
    assert type(dense) is np.ndarray
    assert_close(dense, ref)
    default = tc.conv1d_matrix(w, length, **kw)
    assert_canonical_sparse(default, "csr")
    for fmt in SPARSE_FORMATS:
        m = tc.conv1d_matrix(w, length, format=fmt, **kw)
        assert_canonical_sparse(m, fmt)
        assert m.shape == ref.shape
        assert m.dtype == np.float64
        np.testing.assert_array_equal(m.toarray(), dense)
        # Same stored entries as the default CSR (BSR may pad blocks with explicit zeros).
        if fmt != "bsr":
            assert sp.csr_array(m).nnz == default.nnz


@pytest.mark.parametrize(
    ("k", "length", "padding", "dilation", "mode"),
    [
        (3, 7, 0, 1, "zeros"),
        (3, 7, 1, 1, "zeros"),
        (4, 9, "same", 2, "zeros"),
        (2, 5, (0, 1), 1, "zeros"),
        (3, 6, 1, 1, "circular"),
        (1, 4, 0, 1, "zeros"),
    ],
    ids=str,
)
def test_dia_format_single_channel_stride_one(k, length, padding, dilation, mode):
    rng = np.random.default_rng(31)
    w = rng.standard_normal(k)
    m = tc.conv1d_matrix(
        w, length, padding=padding, dilation=dilation, padding_mode=mode, format="dia"
    )
    assert_canonical_sparse(m, "dia")
    ref = ref_conv1d_matrix(w, length, 1, padding, dilation, 1, mode)
    assert_close(m.toarray(), ref)
    # Compact: no more diagonals than there are distinct offsets in the matrix.
    r, c = np.nonzero(ref)
    assert len(m.offsets) <= len(np.unique(c - r))


def _weights_of(dtype, shape, rng):
    if np.issubdtype(dtype, np.complexfloating):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


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
def test_dtype_follows_weight(wdtype, expected, fmt):
    rng = np.random.default_rng(37)
    w = _weights_of(np.dtype(wdtype), (4, 2, 3), rng)
    kw = dict(stride=2, padding=1, groups=1, padding_mode="reflect")
    m = tc.conv1d_matrix(w, 6, format=fmt, **kw)
    assert m.dtype == expected
    ref = ref_conv1d_matrix(
        w.astype(np.complex128 if np.iscomplexobj(w) else np.float64), 6, 2, 1, 1, 1, "reflect"
    )
    tol = 1e-6 if np.dtype(expected) in (np.dtype(np.float32), np.dtype(np.complex64)) else RTOL
    assert_close(to_dense(m), ref, rtol=tol, atol=tol)
    if fmt != "dense":
        assert_canonical_sparse(m, fmt)
    mt = tc.conv_transpose1d_matrix(w, 3, stride=2, padding=1, format=fmt)
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
def test_dtype_override(wdtype, dtype, fmt):
    rng = np.random.default_rng(41)
    w = _weights_of(np.dtype(wdtype), (3, 1, 2), rng)
    m = tc.conv1d_matrix(
        w, 5, groups=3, padding=1, padding_mode="circular", format=fmt, dtype=dtype
    )
    assert m.dtype == np.dtype(dtype)
    ref = ref_conv1d_matrix(
        w.astype(np.complex128 if np.iscomplexobj(w) else np.float64), 5, 1, 1, 1, 3, "circular"
    )
    tol = 1e-6 if np.dtype(dtype) == np.float32 else RTOL
    assert_close(to_dense(m), ref, rtol=tol, atol=tol)
    mt = tc.conv_transpose1d_matrix(w, 5, groups=3, padding=1, format=fmt, dtype=dtype)
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


# --------------------------------------------------------------------------- hypothesis
@settings(max_examples=250)
@given(conv_configs(max_stride=4, max_length=9, max_padding=4, max_out_per_group=2))
def test_hypothesis_conv1d_vs_reference(cfg):
    w, b, x = make_case(
        cfg["seed"], cfg["c_in"], cfg["c_out"], cfg["groups"], cfg["k"], cfg["length"]
    )
    check_all(w, b, x, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"], cfg["mode"])


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


def test_grid_sizes_are_sane():
    # Guard against an accidentally empty grid (every case skipped).
    n_ok = sum(
        padding_ok(mode, p, 7, k, d, s)
        for mode, p, s, d, k in itertools.product(
            PADDING_MODES, GRID_PADDINGS, [1, 2, 3, 5], [1, 2], [1, 2, 3, 4]
        )
    )
    assert n_ok > 300

"""The matrix-free operators: equal to the matrix, adjoint-consistent, torch-exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, lsqr

import toeplitz_conv as tc
from checks import assert_operator_matches
from strategies import conv_configs
from toeplitz_conv.operators import Conv1dOperator, ConvTranspose1dOperator

MODES = ("zeros", "reflect", "replicate", "circular")

# (C_out, C_in, groups, K, stride, dilation, padding, L)
LAYERS = [
    (1, 1, 1, 3, 1, 1, 1, 7),
    (4, 6, 2, 4, 2, 1, (2, 1), 9),
    (3, 2, 1, 2, 3, 2, 2, 11),
    (2, 2, 2, 5, 1, 2, 0, 12),
    (2, 3, 1, 1, 1, 1, 0, 3),
    (3, 3, 3, 3, 2, 3, 4, 6),
    (2, 1, 1, 2, 1, 1, (3, 0), 4),
]


def _layer_kwargs(stride, dilation, padding, groups, mode):
    return dict(stride=stride, dilation=dilation, padding=padding, groups=groups, padding_mode=mode)


def _dense_and_op(weight, L, **kw):
    M = tc.conv1d_matrix(weight, L, format="dense", **kw)
    return M, tc.conv1d_operator(weight, L, **kw)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer", LAYERS)
def test_operator_equals_matrix(mode, layer):
    c_out, c_in, groups, K, s, d, p, L = layer
    rng = np.random.default_rng(0)
    w = rng.standard_normal((c_out, c_in // groups, K))
    kw = _layer_kwargs(s, d, p, groups, mode)
    try:
        M, op = _dense_and_op(w, L, **kw)
    except ValueError:
        pytest.skip("padding not allowed in this mode")
    assert isinstance(op, LinearOperator) and op.shape == M.shape and op.dtype == np.float64
    x, y = rng.standard_normal(M.shape[1]), rng.standard_normal(M.shape[0])
    X, Y = rng.standard_normal((M.shape[1], 3)), rng.standard_normal((M.shape[0], 4))
    np.testing.assert_allclose(op.matvec(x), M @ x, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(y), M.T @ y, atol=1e-12)
    np.testing.assert_allclose(op.matmat(X), M @ X, atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(Y), M.T @ Y, atol=1e-12)
    np.testing.assert_allclose(op @ X[:, :1], M @ X[:, :1], atol=1e-12)  # a single column
    for adj in (op.T, op.H, op.adjoint()):
        assert isinstance(adj, ConvTranspose1dOperator) and adj.shape == M.shape[::-1]
        np.testing.assert_allclose(adj @ y, M.T @ y, atol=1e-12)
        np.testing.assert_allclose(adj.matmat(Y), M.T @ Y, atol=1e-12)
        np.testing.assert_allclose(adj.rmatvec(x), M @ x, atol=1e-12)
        assert adj.H is op and adj.T is op


def _dot_test(op, rng, complex_=False):
    m, n = op.shape
    x = rng.standard_normal(n)
    y = rng.standard_normal(m)
    if complex_:
        x = x + 1j * rng.standard_normal(n)
        y = y + 1j * rng.standard_normal(m)
    lhs = np.vdot(y, op.matvec(x))
    rhs = np.vdot(op.rmatvec(y), x)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


@settings(max_examples=40)
@given(
    mode=st.sampled_from(MODES),
    groups=st.integers(1, 2),
    c_out_g=st.integers(1, 3),
    c_in_g=st.integers(1, 3),
    K=st.integers(1, 5),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    pad=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    L=st.integers(1, 20),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_operator_hypothesis(
    mode, groups, c_out_g, c_in_g, K, stride, dilation, pad, L, batch, seed
):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out_g * groups, c_in_g, K))
    kw = _layer_kwargs(stride, dilation, pad, groups, mode)
    try:
        M, op = _dense_and_op(w, L, **kw)
    except ValueError:
        return  # an invalid layer: the geometry refuses it for the matrix and the operator alike
    X = rng.standard_normal((M.shape[1], batch))
    Y = rng.standard_normal((M.shape[0], batch))
    np.testing.assert_allclose(op.matmat(X), M @ X, atol=1e-11)
    np.testing.assert_allclose(op.H.matmat(Y), M.T @ Y, atol=1e-11)
    _dot_test(op, rng)
    _dot_test(op.H, rng)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_dot_test_complex(mode, stride):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 2, 3)) + 1j * rng.standard_normal((4, 2, 3))
    op = tc.conv1d_operator(w, 10, stride=stride, padding=2, groups=2, padding_mode=mode)
    assert op.dtype == np.complex128
    _dot_test(op, rng, complex_=True)
    _dot_test(op.H, rng, complex_=True)
    M = tc.conv1d_matrix(
        w, 10, stride=stride, padding=2, groups=2, padding_mode=mode, format="dense"
    )
    y = rng.standard_normal(M.shape[0]) + 1j * rng.standard_normal(M.shape[0])
    np.testing.assert_allclose(op.H @ y, M.conj().T @ y, atol=1e-12)
    np.testing.assert_allclose(op.T @ y, M.T @ y, atol=1e-12)
    x = rng.standard_normal(M.shape[1]) + 1j * rng.standard_normal(M.shape[1])
    np.testing.assert_allclose(op.T.T @ x, M @ x, atol=1e-12)


def test_operator_matches_functional_conv1d():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 2, 3))
    x = rng.standard_normal((3, 4, 17))  # a batch of 3 inputs, 4 channels
    op = tc.conv1d_operator(w, 17, stride=2, padding=2, groups=2, padding_mode="reflect")
    y = tc.conv1d(x, w, stride=2, padding=2, groups=2, padding_mode="reflect")
    got = op.matmat(x.reshape(3, -1).T).T.reshape(y.shape)
    np.testing.assert_allclose(got, y, atol=1e-12)


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups"),
    [(1, 0, 0, 1, 1), (2, 1, 1, 1, 2), (3, (2, 1), 2, 2, 1), (1, 2, 0, 3, 2)],
)
def test_conv_transpose1d_operator(stride, padding, output_padding, dilation, groups):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 3, 3))
    kw = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    M = tc.conv_transpose1d_matrix(w, 6, format="dense", **kw)
    op = tc.conv_transpose1d_operator(w, 6, **kw)
    assert op.shape == M.shape
    x = rng.standard_normal((M.shape[1], 2))
    np.testing.assert_allclose(op.matmat(x), M @ x, atol=1e-12)
    z = tc.conv_transpose1d(x[:, 0].reshape(4, 6), w, **kw)
    np.testing.assert_allclose(op @ x[:, 0], z.ravel(), atol=1e-12)
    assert isinstance(op.H, Conv1dOperator)
    _dot_test(op, rng)


def test_dtypes():
    w32 = np.ones((2, 2, 3), dtype=np.float32)
    op = tc.conv1d_operator(w32, 8)
    assert op.dtype == np.float32 and op.H.dtype == np.float32
    assert (op @ np.ones(16, dtype=np.float32)).dtype == np.float32
    assert (op @ np.ones(16)).dtype == np.float64  # computed in the common dtype
    assert (op.H @ np.ones(12, dtype=np.float32)).dtype == np.float32
    assert tc.conv1d_operator([1, 2, 3], 8).dtype == np.float64  # integers become float64
    assert tc.conv1d_operator(w32, 8, dtype=np.complex128).dtype == np.complex128
    assert (tc.conv1d_operator([1.0, 2.0], 4) @ np.arange(4)).dtype == np.float64


def test_repr_and_attributes():
    op = tc.conv1d_operator(np.ones((4, 2, 3)), 10, stride=2, padding=1, groups=2)
    assert (op.in_channels, op.out_channels, op.groups) == (4, 4, 2)
    assert (op.input_length, op.output_length) == (10, 5)
    assert op.shape == (20, 40)
    assert "Conv1dOperator" in repr(op) and "groups=2" in repr(op)
    assert "adjoint of" in repr(op.H)


def test_lsqr_deconvolution():
    rng = np.random.default_rng(11)
    w = np.array([0.25, 1.0, 0.5])
    x = rng.standard_normal(200)
    op = tc.conv1d_operator(w, 200, padding=1)
    y = op @ x
    got = lsqr(op, y, atol=1e-14, btol=1e-14, iter_lim=2000)[0]
    np.testing.assert_allclose(got, x, atol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(weight=np.ones((2, 2)), input_length=5), ValueError, r"`weight` must have shape"),
        (dict(weight=np.ones((3, 2, 2)), input_length=5, groups=2), ValueError, r"`groups`=2"),
        (dict(weight=[1.0], input_length=0), ValueError, r"`input_length` must be an integer"),
        (
            dict(weight=[1.0], input_length=5, padding_mode="wrap"),
            ValueError,
            r"`padding_mode` must be one of 'zeros', 'reflect', 'replicate', "
            r"'circular'; got 'wrap'",
        ),
        (dict(weight=[1.0, 2.0], input_length=3, stride=0), ValueError, r"`stride` must be"),
        (dict(weight=[1.0], input_length=5, dtype=np.int32), TypeError, r"`dtype` must be"),
        (dict(weight=["a"], input_length=5), TypeError, r"`weight` must hold numbers"),
        (
            dict(weight=[1.0, 2.0, 3.0], input_length=2),
            ValueError,
            r"the output would be empty",
        ),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        tc.conv1d_operator(**kwargs)


def test_errors_transpose():
    with pytest.raises(ValueError, match=r"`output_padding` must be smaller than"):
        tc.conv_transpose1d_operator([1.0, 2.0], 4, output_padding=1)
    with pytest.raises(TypeError, match=r"`padding` of a transposed convolution"):
        tc.conv_transpose1d_operator([1.0, 2.0], 4, padding="same")


def test_wrong_vector_length():
    op = tc.conv1d_operator([1.0, 2.0], 5)
    with pytest.raises(
        ValueError, match=r"takes a vector of length 5 .*got an array of shape \(4,\)"
    ):
        op.matvec(np.ones(4))


def test_torch_oracle(torch):
    rng = np.random.default_rng(13)
    F = torch.nn.functional
    for mode in MODES:
        w = rng.standard_normal((6, 2, 3)).astype(np.float32)
        x = rng.standard_normal((4, 19)).astype(np.float32)
        op = tc.conv1d_operator(w, 19, stride=2, padding=2, groups=2, padding_mode=mode)
        tw, tx = torch.from_numpy(w), torch.from_numpy(x)[None]
        if mode == "zeros":
            ty = F.conv1d(tx, tw, stride=2, padding=2, groups=2)
        else:
            ty = F.conv1d(F.pad(tx, (2, 2), mode=mode), tw, stride=2, groups=2)
        np.testing.assert_allclose(op @ x.ravel(), ty.numpy().ravel(), rtol=1e-4, atol=1e-4)
    # the adjoint is conv_transpose1d (zero padding), i.e. the input gradient
    w = rng.standard_normal((4, 3, 5)).astype(np.float32)
    op = tc.conv1d_operator(w, 20, stride=3, padding=2, dilation=2)
    g = rng.standard_normal(op.shape[0]).astype(np.float32)
    tg = torch.from_numpy(g.reshape(1, 4, -1))
    out = F.conv_transpose1d(
        tg, torch.from_numpy(w), stride=3, padding=2, dilation=2, output_padding=0
    )
    assert out.shape[-1] == 20
    np.testing.assert_allclose(op.H @ g, out.numpy().ravel(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("c_out", [1, 8, 20])  # thin (broadcast, flipped adjoint) and thick
@pytest.mark.parametrize("stride", [1, 2, 3])  # 3 with dilation 2: taps in every phase
@pytest.mark.parametrize("mode", MODES)
def test_blocked_application(monkeypatch, c_out, stride, mode):
    """Many small blocks, with a partial last one, give the same result as one block."""
    from toeplitz_conv import _kernel

    rng = np.random.default_rng(17)
    w = rng.standard_normal((c_out, 3, 4))
    M, op = _dense_and_op(w, 50, stride=stride, padding=3, dilation=2, padding_mode=mode)
    X = rng.standard_normal((M.shape[1], 2))
    Y = rng.standard_normal((M.shape[0], 2))
    monkeypatch.setattr(_kernel, "_BLOCK_BYTES", 64)
    monkeypatch.setattr(_kernel, "_THIN_BLOCK_BYTES", 64)
    monkeypatch.setattr(_kernel, "_MIN_BLOCK_COLS", 1)
    assert _kernel._block_positions(12, 2, 8, op.output_length, True) < op.output_length
    np.testing.assert_allclose(op.matmat(X), M @ X, atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(Y), M.T @ Y, atol=1e-12)
    np.testing.assert_allclose(op @ X[:, 0], M @ X[:, 0], atol=1e-12)
    np.testing.assert_allclose(op.H @ Y[:, 0], M.T @ Y[:, 0], atol=1e-12)


# ------------------------------------------------------------ operator, functional, matrix
def _weight(rng, shape, complex_):
    w = rng.standard_normal(shape)
    return w + 1j * rng.standard_normal(shape) if complex_ else w


@settings(max_examples=60)
@given(cfg=conv_configs(), complex_=st.booleans())
def test_conv1d_triple_agrees(cfg, complex_):
    """``conv1d_operator``, ``conv1d`` and ``conv1d_matrix`` are one map, real or complex."""
    rng = np.random.default_rng(cfg["seed"])
    w = _weight(rng, (cfg["c_out"], cfg["c_in"] // cfg["groups"], cfg["k"]), complex_)
    kw = _layer_kwargs(cfg["stride"], cfg["dilation"], cfg["padding"], cfg["groups"], cfg["mode"])
    M = tc.conv1d_matrix(w, cfg["length"], format="dense", **kw)
    op = tc.conv1d_operator(w, cfg["length"], **kw)
    assert op.dtype == M.dtype
    assert_operator_matches(op, M, rng)
    x = _weight(rng, (cfg["n"], cfg["c_in"], cfg["length"]), complex_)
    y = tc.conv1d(x, w, **kw)
    np.testing.assert_allclose(y.reshape(cfg["n"], -1), x.reshape(cfg["n"], -1) @ M.T, atol=1e-10)


@st.composite
def _transpose_configs(draw):
    groups = draw(st.integers(1, 2))
    stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return dict(
        groups=groups,
        c_in=groups * draw(st.integers(1, 2)),
        c_out=groups * draw(st.integers(1, 2)),
        k=draw(st.integers(1, 4)),
        stride=stride,
        dilation=dilation,
        padding=draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)))),
        output_padding=draw(st.integers(0, max(stride, dilation) - 1)),
        length=draw(st.integers(1, 8)),
        n=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=60)
@given(cfg=_transpose_configs(), complex_=st.booleans())
def test_conv_transpose1d_triple_agrees(cfg, complex_):
    """``conv_transpose1d_operator`` is ``conv_transpose1d`` and its matrix, not its conjugate."""
    rng = np.random.default_rng(cfg["seed"])
    # torch's layout: (C_in, C_out/groups, K), C_in being the transposed conv's input channels
    w = _weight(rng, (cfg["c_in"], cfg["c_out"] // cfg["groups"], cfg["k"]), complex_)
    kw = dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        output_padding=cfg["output_padding"],
        groups=cfg["groups"],
        dilation=cfg["dilation"],
    )
    try:
        M = tc.conv_transpose1d_matrix(w, cfg["length"], format="dense", **kw)
    except ValueError:
        with pytest.raises(ValueError):
            tc.conv_transpose1d_operator(w, cfg["length"], **kw)
        return  # an empty output: refused by the matrix and the operator alike
    op = tc.conv_transpose1d_operator(w, cfg["length"], **kw)
    assert op.dtype == M.dtype
    assert_operator_matches(op, M, rng)
    x = _weight(rng, (cfg["n"], cfg["c_in"], cfg["length"]), complex_)
    z = tc.conv_transpose1d(x, w, **kw)
    np.testing.assert_allclose(z.reshape(cfg["n"], -1), x.reshape(cfg["n"], -1) @ M.T, atol=1e-10)


def test_conv_transpose1d_operator_complex_is_not_conjugated():
    """The case of issue 8: ``op @ z`` was ``conj(M) @ z``."""
    w = np.array([[[1 + 2j, 3 - 1j]]])
    z = np.array([1.0, 1j])
    op = tc.conv_transpose1d_operator(w, 2, stride=2)
    want = tc.conv_transpose1d(z, w, stride=2)
    np.testing.assert_allclose(want, [1 + 2j, 3 - 1j, -2 + 1j, 1 + 3j])
    np.testing.assert_allclose(op @ z, want)
    np.testing.assert_allclose(op.H @ want, tc.conv1d(want, w.conj(), stride=2))


def test_conv1d_operator_class_takes_one_geometry():
    """``Conv1dOperator(weight, geometry, groups)`` (one ConvGeometry) is the 1-D ConvOperator."""
    from toeplitz_conv._layer import conv_layer

    layer = conv_layer(np.arange(12.0).reshape(2, 2, 3), 9, stride=2, padding=1)
    op = Conv1dOperator(layer.weight, layer.geom, layer.groups)
    assert op.geometries == (layer.geom,) and op.geometry is layer.geom
    assert (op.input_length, op.output_length) == (9, 5)
    M = tc.conv1d_matrix(layer.weight, 9, stride=2, padding=1, format="dense")
    x = np.arange(18.0)
    np.testing.assert_allclose(op @ x, M @ x, atol=1e-12)
    op2 = tc.conv2d_operator(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match=r"this is a 2-D layer; it has one geometry per axis"):
        _ = op2.input_length

"""The forward passes and the matrix-free operators, 1, 2 and 3 spatial axes.

Equal to the matrix (every way scipy applies a ``LinearOperator``, real and complex weights),
adjoint-consistent (dot tests), torch-exact (forward, input gradient, ``unfold``,
``from_torch``), with the public surface (dtypes, names, reprs, errors) on top.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, lsqr

import toeplitz_conv as tc
from checks import assert_operator_matches, dot_test
from strategies import conv_configs
from toeplitz_conv import _plan as plan_module
from toeplitz_conv._plan import Blocking
from toeplitz_conv.operators import (
    Conv1dOperator,
    ConvOperator,
    ConvTransposeOperator,
)

MODES = ("zeros", "reflect", "replicate", "circular")
OPERATOR = {1: tc.conv1d_operator, 2: tc.conv2d_operator, 3: tc.conv3d_operator}
FORWARD = {1: tc.conv1d, 2: tc.conv2d, 3: tc.conv3d}
TRANSPOSE_OPERATOR = {
    1: tc.conv_transpose1d_operator,
    2: tc.conv_transpose2d_operator,
    3: tc.conv_transpose3d_operator,
}

# (C_out, C_in, groups, K, stride, dilation, padding, size), per-axis spellings
LAYERS_1D = [
    (1, 1, 1, (3,), 1, 1, 1, (7,)),
    (4, 6, 2, (4,), 2, 1, ((2, 1),), (9,)),
    (3, 2, 1, (2,), 3, 2, 2, (11,)),
    (2, 2, 2, (5,), 1, 2, 0, (12,)),
    (2, 3, 1, (1,), 1, 1, 0, (3,)),
    (3, 3, 3, (3,), 2, 3, 4, (6,)),
    (2, 1, 1, (2,), 1, 1, ((3, 0),), (4,)),
]
LAYERS_2D = [
    (3, 2, 1, (3, 3), 1, 1, 1, (7, 6)),
    (4, 4, 2, (2, 3), (2, 1), (1, 2), ((2, 1), (0, 2)), (9, 8)),
    (4, 4, 4, (3, 3), 2, 1, (1, (1, 0)), (8, 7)),  # depthwise, stride 2, mixed padding
    (2, 3, 1, (1, 4), (1, 3), (1, 1), (0, 3), (5, 11)),
    (20, 2, 1, (3, 2), (3, 2), (2, 1), "valid", (10, 9)),  # thick, stride > K*d on axis 0
    (2, 2, 1, (3, 3), 1, (2, 1), "same", (6, 5)),
]
LAYERS_3D = [
    (2, 3, 1, (2, 3, 2), 1, 1, 1, (4, 5, 4)),
    (4, 2, 2, (3, 2, 2), (2, 1, 2), (1, 2, 1), ((1, 0), 1, (0, 1)), (6, 5, 5)),
    (3, 3, 3, (3, 3, 3), (1, 2, 1), 1, 1, (4, 6, 3)),  # depthwise
]
LAYERS = LAYERS_1D + LAYERS_2D + LAYERS_3D


def _layer_kwargs(stride, dilation, padding, groups, mode):
    return dict(stride=stride, dilation=dilation, padding=padding, groups=groups, padding_mode=mode)


def _torch_pad(padding, ndim, ksize, dilation):
    """torch's F.pad list (last axis first) for our per-axis padding."""
    d = (dilation,) * ndim if isinstance(dilation, int) else dilation
    if padding == "valid":
        pairs = [(0, 0)] * ndim
    elif padding == "same":
        pairs = [(t // 2, t - t // 2) for t in (d[a] * (ksize[a] - 1) for a in range(ndim))]
    elif isinstance(padding, int):
        pairs = [(padding, padding)] * ndim
    else:
        pairs = [(p, p) if isinstance(p, int) else tuple(p) for p in padding]
    return [v for pair in reversed(pairs) for v in pair]


def _torch_conv(torch, x, w, b, *, stride, padding, dilation, groups, mode):
    F = torch.nn.functional
    ndim = w.ndim - 2
    pad = _torch_pad(padding, ndim, w.shape[2:], dilation)
    xp = F.pad(x, pad, mode="constant" if mode == "zeros" else mode)
    conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
    return conv(xp, w, b, stride=stride, dilation=dilation, groups=groups)


def _layer(layer, rng, complex_=False):
    c_out, c_in, groups, K, s, d, p, size = layer
    w = rng.standard_normal((c_out, c_in // groups, *K))
    if complex_:
        w = w + 1j * rng.standard_normal(w.shape)
    return w, dict(stride=s, dilation=d, padding=p, groups=groups), size, c_in


def _valid(fn):
    """Run `fn`; None when the geometry refuses the layer (e.g. reflect beyond the signal)."""
    try:
        return fn()
    except ValueError as exc:
        if "padding_mode" in str(exc):
            return None
        raise


# --------------------------------------------------------------------------- operator == matrix
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer", LAYERS_1D + LAYERS_2D[:4] + LAYERS_3D[:2])
def test_operator_is_the_matrix(mode, layer, complex_):
    rng = np.random.default_rng(4)
    w, kw, size, _ = _layer(layer, rng, complex_)
    M = _valid(lambda: tc.conv_matrix(w, size, padding_mode=mode, format="dense", **kw))
    if M is None:
        with pytest.raises(ValueError, match=r"padding_mode"):
            tc.conv_operator(w, size, padding_mode=mode, **kw)
        return  # refused by the geometry, for the matrix and the operator alike
    op = tc.conv_operator(w, size, padding_mode=mode, **kw)
    assert isinstance(op, ConvOperator) and isinstance(op, LinearOperator)
    assert op.shape == M.shape and op.dtype == w.dtype
    assert op.ndim == len(size) and op.input_size == size
    assert_operator_matches(op, M, rng, depth=1)
    for adj in (op.T, op.H, op.adjoint()):
        assert isinstance(adj, ConvTransposeOperator) and adj.shape == M.shape[::-1]
    for adj in (op.H, op.adjoint()):
        assert adj.H is op
    if complex_:  # the transpose is not the adjoint
        y = rng.standard_normal(M.shape[0])
        assert not np.allclose(op.T @ y, op.H @ y)
    else:
        assert op.T.H is op and op.T.T is op and op.H.T is op and op.adjoint().T is op


@settings(max_examples=80)
@given(
    ndim=st.integers(1, 3),
    mode=st.sampled_from(MODES),
    groups=st.integers(1, 2),
    c_out_g=st.sampled_from([1, 2, 3, 17]),
    c_in_g=st.integers(1, 3),
    complex_=st.booleans(),
    data=st.data(),
    batch=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_operator_hypothesis(ndim, mode, groups, c_out_g, c_in_g, complex_, data, batch, seed):
    """Operator == matrix on random layers: longer kernels and signals in 1-D, small in N-d."""
    one = ndim == 1
    axes = lambda hi: st.tuples(*[st.integers(1, hi)] * ndim)  # noqa: E731
    K, stride, dilation = (
        data.draw(axes(5 if one else 3)),
        data.draw(axes(3)),
        data.draw(axes(3 if one else 2)),
    )
    size = data.draw(axes(20 if one else 7))
    pad = st.integers(0, 4 if one else 2)
    padding = data.draw(st.tuples(*[st.tuples(pad, pad)] * ndim))
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out_g * groups, c_in_g, *K))
    if complex_:
        w = w + 1j * rng.standard_normal(w.shape)
    kw = _layer_kwargs(stride, dilation, padding, groups, mode)
    try:
        M = tc.conv_matrix(w, size, format="dense", **kw)
    except ValueError:
        with pytest.raises(ValueError):
            tc.conv_operator(w, size, **kw)
        return  # refused by the geometry, for the matrix and the operator alike
    op = tc.conv_operator(w, size, **kw)
    X = rng.standard_normal((M.shape[1], batch)) + 1j * rng.standard_normal((M.shape[1], batch))
    Y = rng.standard_normal((M.shape[0], batch))
    np.testing.assert_allclose(op.matmat(X), M @ X, atol=1e-11)
    np.testing.assert_allclose(op.matmat(X.real), M @ X.real, atol=1e-11)
    np.testing.assert_allclose(op.H.matmat(Y), M.conj().T @ Y, atol=1e-11)
    np.testing.assert_allclose(op.T.matmat(Y), M.T @ Y, atol=1e-11)
    dot_test(op, rng)
    dot_test(op.H, rng)
    dot_test(op.T, rng)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_dot_test_complex(mode, stride):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 2, 3)) + 1j * rng.standard_normal((4, 2, 3))
    op = tc.conv1d_operator(w, 10, stride=stride, padding=2, groups=2, padding_mode=mode)
    assert op.dtype == np.complex128
    dot_test(op, rng)
    dot_test(op.H, rng)
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


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize(
    ("ndim", "kw"),
    [
        (1, dict(stride=1, padding=0, output_padding=0, dilation=1, groups=1)),
        (1, dict(stride=2, padding=1, output_padding=1, dilation=1, groups=2)),
        (1, dict(stride=3, padding=(2, 1), output_padding=2, dilation=2, groups=1)),
        (1, dict(stride=1, padding=2, output_padding=0, dilation=3, groups=2)),
        (2, dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2))),
        (3, dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2, 1))),
    ],
    ids=str,
)
def test_transpose_operator_is_the_matrix(ndim, kw, complex_):
    """``conv_transpose*d_operator`` is its matrix and ``conv_transpose``; its adjoint a conv."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, *(3, 2, 2)[:ndim]))
    if complex_:
        w = w + 1j * rng.standard_normal(w.shape)
    size = (6,) if ndim == 1 else (3, 4, 2)[:ndim]
    M = tc.conv_transpose_matrix(w, size, format="dense", **kw)
    op = TRANSPOSE_OPERATOR[ndim](w, size[0] if ndim == 1 else size, **kw)
    assert op.shape == M.shape
    assert_operator_matches(op, M, rng, depth=1)
    x = rng.standard_normal((4, *size))
    np.testing.assert_allclose(op @ x.ravel(), tc.conv_transpose(x, w, **kw).ravel(), atol=1e-12)
    assert isinstance(op.H, ConvOperator)
    if ndim == 1:
        assert isinstance(op.H, Conv1dOperator)
        z = tc.conv_transpose1d(x, w, **kw)
        np.testing.assert_allclose(op @ x.ravel(), z.ravel(), atol=1e-12)
    dot_test(op, rng)


BLOCKED_CASES = [
    # 1-D: thin (broadcast, flipped adjoint) and thick, stride 3 with dilation 2 (taps in
    # every phase), every padding mode
    *((1, c_out, stride, mode) for c_out in (1, 8, 20) for stride in (1, 2, 3) for mode in MODES),
    # 2-D: thin and thick, a stride per axis, zeros and reflect
    *(
        (2, c_out, stride, mode)
        for c_out in (1, 20)
        for stride in (1, (2, 3))
        for mode in MODES[:2]
    ),
]


@pytest.mark.parametrize(("ndim", "c_out", "stride", "mode"), BLOCKED_CASES, ids=str)
def test_blocked_application(monkeypatch, ndim, c_out, stride, mode):
    """Many small blocks, with a partial last one, give the same result as one block."""
    rng = np.random.default_rng(17 if ndim == 1 else 6)
    if ndim == 1:
        w, size = rng.standard_normal((c_out, 3, 4)), (50,)
        kw = dict(stride=stride, padding=3, dilation=2, padding_mode=mode)
    else:
        w, size = rng.standard_normal((c_out, 2, 3, 2)), (9, 8)
        kw = dict(stride=stride, padding=(2, (1, 0)), dilation=(1, 2), padding_mode=mode)
    M = tc.conv_matrix(w, size, format="dense", **kw)
    tiny = Blocking(block_bytes=64, thin_bytes=64, min_cols=1)
    monkeypatch.setattr(plan_module, "BLOCKING", tiny)  # the operator plans tiny blocks
    op = OPERATOR[ndim](w, size[0] if ndim == 1 else size, **kw)
    assert op.method == "direct"
    X, Y = rng.standard_normal((M.shape[1], 2)), rng.standard_normal((M.shape[0], 2))
    positions = int(np.prod(op.output_size))
    assert tiny.positions(12, 2, 8, positions, True) < positions
    if ndim == 1:
        assert positions == op.output_length
    np.testing.assert_allclose(op.matmat(X), M @ X, atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(Y), M.T @ Y, atol=1e-12)
    np.testing.assert_allclose(op @ X[:, 0], M @ X[:, 0], atol=1e-12)
    np.testing.assert_allclose(op.H @ Y[:, 0], M.T @ Y[:, 0], atol=1e-12)


# --------------------------------------------------------------------------- torch oracle
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer", LAYERS)
def test_conv_matches_torch_and_autograd(torch, mode, layer):
    rng = np.random.default_rng(0)
    w, kw, size, c_in = _layer(layer, rng)
    n = len(size)
    x = rng.standard_normal((2, c_in, *size))
    b = rng.standard_normal(w.shape[0])
    conv = FORWARD[n]
    y = _valid(lambda: conv(x, w, b, padding_mode=mode, **kw))
    if y is None:
        with pytest.raises(ValueError, match=r"padding_mode`='reflect' needs padding"):
            conv(x, w, b, padding_mode=mode, **kw)
        return
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = _torch_conv(
        torch,
        tx,
        torch.from_numpy(w),
        torch.from_numpy(b),
        stride=kw["stride"],
        padding=kw["padding"],
        dilation=kw["dilation"],
        groups=kw["groups"],
        mode=mode,
    )
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv(x[1], w, b, padding_mode=mode, **kw), y[1], atol=1e-12)
    # the adjoint is the input gradient, whatever the padding mode
    op = tc.conv_operator(w, size, padding_mode=mode, **kw)
    assert op.shape == (y[0].size, x[0].size)
    g = rng.standard_normal(ty.shape)
    ty.backward(torch.from_numpy(g))
    got = op.rmatmat(g.reshape(2, -1).T).T.reshape(x.shape)
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        op @ x[0].ravel(), (y[0] - b.reshape(-1, *(1,) * n)).ravel(), atol=1e-12
    )


@pytest.mark.parametrize(
    ("ndim", "stride", "padding", "output_padding", "dilation", "groups"),
    [
        (2, 1, 0, 0, 1, 1),
        (2, (2, 3), (1, 2), (1, 2), 1, 2),
        (2, 2, ((1, 0), (2, 1)), (0, 1), (1, 2), 1),
        (2, (1, 2), 1, (0, 1), (2, 1), 4),  # depthwise
        (3, 2, 1, 1, 1, 2),
        (3, (1, 2, 3), (0, 1, 2), (0, 1, 0), (2, 1, 1), 1),
    ],
)
def test_conv_transpose_matches_torch(
    torch, ndim, stride, padding, output_padding, dilation, groups
):
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    c_in, c_out_g = 4, 1 if groups == 4 else 3
    K = (3, 2, 2)[:ndim]
    w = rng.standard_normal((c_in, c_out_g, *K))
    b = rng.standard_normal(c_out_g * groups)
    size = (4, 5, 3)[:ndim]
    x = rng.standard_normal((2, c_in, *size))
    kw = dict(stride=stride, output_padding=output_padding, dilation=dilation, groups=groups)
    z = (tc.conv_transpose2d, tc.conv_transpose3d)[ndim - 2](x, w, b, padding=padding, **kw)
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):  # asymmetric: crop torch's
        full = (F.conv_transpose2d, F.conv_transpose3d)[ndim - 2](
            torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=0, **kw
        ).numpy()
        crop = tuple(slice(lo, full.shape[2 + a] - hi) for a, (lo, hi) in enumerate(padding))
        want = full[(slice(None), slice(None), *crop)]
    else:
        want = (F.conv_transpose2d, F.conv_transpose3d)[ndim - 2](
            torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=padding, **kw
        ).numpy()
    assert z.shape == want.shape
    np.testing.assert_allclose(z, want, rtol=1e-12, atol=1e-12)
    op = tc.conv_transpose_operator(w, size, padding=padding, **kw)
    bias = np.repeat(b, np.prod(z.shape[2:]))
    np.testing.assert_allclose(op @ x[0].ravel() + bias, z[0].ravel(), atol=1e-12)
    np.testing.assert_allclose(tc.conv_transpose(x, w, b, padding=padding, **kw), z, atol=1e-12)


@pytest.mark.parametrize(
    ("K", "stride", "padding", "dilation"),
    [((3, 3), 1, 0, 1), ((2, 3), (2, 1), (1, 2), (1, 2)), ((3, 1), 3, 2, (2, 1))],
)
def test_unfold_is_torch_unfold(torch, K, stride, padding, dilation):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 7))
    U = tc.unfold(x, K, stride=stride, padding=padding, dilation=dilation)
    want = torch.nn.functional.unfold(
        torch.from_numpy(x), K, stride=stride, padding=padding, dilation=dilation
    ).numpy()
    np.testing.assert_array_equal(U, want)
    np.testing.assert_array_equal(
        tc.unfold(x[0], K, stride=stride, padding=padding, dilation=dilation), want[0]
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("K", [(3,), (2, 3), (2, 1, 3)])
def test_unfold_gives_the_convolution(mode, K):
    """``conv(x, W) == W.reshape(C_out, -1) @ U`` with rows (c, k_1..k_n), columns (i_1..i_n)."""
    rng = np.random.default_rng(3)
    n = len(K)
    x = rng.standard_normal((3, *(6, 5, 4)[:n]))
    w = rng.standard_normal((4, 3, *K))
    kw = dict(stride=(2, 1, 1)[:n], padding=((1, 2),) + (1,) * (n - 1), dilation=(1, 2, 1)[:n])
    U = tc.unfold(x, K, padding_mode=mode, **kw)
    y = tc.conv(x, w, padding_mode=mode, **kw)
    assert U.shape == (3 * np.prod(K), np.prod(y.shape[1:]))
    np.testing.assert_allclose(w.reshape(4, -1) @ U, y.reshape(4, -1), atol=1e-12)


# --------------------------------------------------------------------------- the public surface
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_dtypes(ndim):
    """The operator's dtype follows the weight; applying it computes in the common dtype."""
    w32 = np.ones((2, 2, *(3,) * ndim), dtype=np.float32)
    op = OPERATOR[ndim](w32, 5, padding=1)
    m, n = op.shape
    assert op.dtype == np.float32 and op.H.dtype == np.float32
    assert (op @ np.ones(n, dtype=np.float32)).dtype == np.float32
    assert (op @ np.ones(n)).dtype == np.float64  # computed in the common dtype
    assert (op.H @ np.ones(m, dtype=np.float32)).dtype == np.float32
    kernel = np.ones((3,) * ndim, dtype=int)
    assert OPERATOR[ndim](kernel, 5).dtype == np.float64  # integers become float64
    assert OPERATOR[ndim](w32, 5, dtype=np.complex128).dtype == np.complex128
    small = OPERATOR[ndim](np.ones((2,) * ndim), 4)
    assert (small @ np.arange(small.shape[1])).dtype == np.float64
    x_shape = (2, *(5,) * ndim)
    assert FORWARD[ndim](np.ones(x_shape, dtype=np.float32), w32).dtype == np.float32
    assert FORWARD[ndim](np.ones(x_shape, dtype=np.int64), w32).dtype == np.float64
    assert tc.conv1d_operator([1, 2, 3], 8).dtype == np.float64  # a list of integers


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


def test_generic_names_agree_with_the_fixed_ones():
    rng = np.random.default_rng(7)
    w2 = rng.standard_normal((3, 2, 2, 3))
    x2 = rng.standard_normal((2, 5, 6))
    np.testing.assert_array_equal(tc.conv(x2, w2, padding=1), tc.conv2d(x2, w2, padding=1))
    w1 = rng.standard_normal(3)
    np.testing.assert_array_equal(tc.conv(np.arange(6.0), w1), tc.conv1d(np.arange(6.0), w1))
    # a kernel-only weight: one channel in and out
    k = rng.standard_normal((2, 2))
    np.testing.assert_array_equal(tc.conv2d(x2[:1], k), tc.conv2d(x2[:1], k[None, None]))
    op = tc.conv2d_operator(k, 4)  # an int input_size applies to both axes
    assert op.input_size == (4, 4) and op.shape == (9, 16)
    assert tc.Conv1dOperator is tc.ConvOperator
    assert tc.ConvTranspose1dOperator is tc.ConvTransposeOperator
    assert isinstance(tc.conv1d_operator(w1, 5), tc.Conv1dOperator)
    assert "Conv2dOperator" in repr(op) and "input_size=(4, 4)" in repr(op)
    assert "Conv3dOperator" in repr(tc.conv3d_operator(np.ones((1, 1, 1)), 2))
    x3 = rng.standard_normal((2, 3, 4, 5))
    w3 = rng.standard_normal((2, 1, 2, 2, 2))
    np.testing.assert_allclose(
        tc.conv3d_operator(w3, (3, 4, 5), groups=2, stride=(1, 2, 1)) @ x3.ravel(),
        tc.conv3d(x3, w3, groups=2, stride=(1, 2, 1)).ravel(),
        atol=1e-12,
    )


def test_empty_batches():
    w = np.ones((3, 2, 2, 2))
    y = tc.conv2d(np.ones((0, 2, 4, 4)), w, stride=2)
    assert y.shape == (0, 3, 2, 2)
    assert tc.conv_transpose2d(np.ones((0, 3, 2, 2)), w, stride=2).shape == (0, 2, 4, 4)
    assert tc.unfold(np.ones((0, 2, 4, 4)), (2, 2)).shape == (0, 8, 9)
    op = tc.conv2d_operator(w, 4, padding=1)
    assert op.matmat(np.ones((op.shape[1], 0))).shape == (op.shape[0], 0)
    assert op.rmatmat(np.ones((op.shape[0], 0))).shape == (op.shape[1], 0)


def test_from_torch_nd(torch):
    nn = torch.nn
    torch.manual_seed(0)
    modules = [
        (
            nn.Conv2d(
                4,
                6,
                (3, 2),
                stride=(2, 1),
                padding=(1, 2),
                dilation=(1, 2),
                groups=2,
                padding_mode="reflect",
            ),
            (7, 8),
        ),
        (nn.Conv2d(3, 3, 3, padding="same", groups=3, bias=False), 6),
        (
            nn.Conv3d(
                2, 4, (2, 3, 2), stride=(1, 2, 1), padding=(1, 0, 1), padding_mode="circular"
            ),
            (4, 5, 3),
        ),
        (
            nn.ConvTranspose2d(
                4, 2, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2
            ),
            (3, 4),
        ),
        (nn.ConvTranspose3d(2, 3, 2, stride=2, dilation=(1, 2, 1)), (2, 3, 2)),
        (nn.Conv1d(2, 3, 3, padding=1, padding_mode="replicate"), 9),
        (nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1), (5,)),
    ]
    for module, size in modules:
        M, c = tc.from_torch(module, size)
        n = module.weight.ndim - 2
        spatial = (size,) * n if isinstance(size, int) else size
        x = torch.randn(2, module.in_channels, *spatial)
        with torch.no_grad():
            want = module(x).reshape(2, -1).numpy()
        got = x.reshape(2, -1).numpy() @ M.T + c
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=repr(module))


def test_float32_operator_matches_torch(torch):
    """float32 1-D operators against F.pad + F.conv1d; the adjoint is F.conv_transpose1d."""
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


# --------------------------------------------------------------------------- errors
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
    """Issue 14.8: a vector of the wrong length is refused by name, not scipy's bare message."""
    op = tc.conv1d_operator(np.ones((3, 2, 2)), 10)  # 27 x 20: (2, 10) -> (3, 9)
    forward = r"this 27x20 operator takes a vector \(n,\) or \(n, 1\) with n = 20 = "
    with pytest.raises(ValueError, match=forward + r".*\(2, 10\) array; got shape \(7,\)"):
        op.matvec(np.ones(7))
    with pytest.raises(ValueError, match=forward):
        op @ np.ones(27)
    with pytest.raises(ValueError, match=r"adjoint \(rmatvec\) of this 27x20 .* n = 27 .*\(3, 9\)"):
        op.rmatvec(np.ones(20))
    with pytest.raises(ValueError, match=r"takes columns \(n, B\) with n = 20"):
        op.matmat(np.ones((7, 2)))
    with pytest.raises(ValueError, match=r"this 20x27 operator takes .* n = 27"):
        op.H @ np.ones(20)
    # the right lengths still work, as vectors and as columns
    assert (op @ np.ones(20)).shape == (27,)
    assert (op @ np.ones((20, 3))).shape == (27, 3)
    assert op.rmatvec(np.ones((27, 1))).shape == (20, 1)


@pytest.mark.parametrize(
    "shape, size, method",
    [
        ((2, 2, 3), 10, "direct"),
        ((2, 2, 3), 10, "winograd"),
        ((2, 2, 70), 90, "fft"),
        ((4, 4, 3, 3), (9, 8), "winograd2"),
        ((4, 4, 3, 3), (9, 8), "direct"),
    ],
)
def test_operator_keeps_its_own_weight(shape, size, method):
    """The operator copies the weight when it is made: changing the caller's array in
    place afterwards (an optimiser step) changes neither pass, whichever ran first."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal(shape)
    op = tc.conv_operator(w, size, padding=1, method=method)
    x, y = rng.standard_normal(op.shape[1]), rng.standard_normal(op.shape[0])
    before, before_h = op @ x, op.H @ y
    w *= 2.0
    np.testing.assert_array_equal(op @ x, before)
    np.testing.assert_array_equal(op.H @ y, before_h)
    np.testing.assert_allclose(np.vdot(y, before), np.vdot(before_h, x), rtol=1e-12)
    np.testing.assert_array_equal(op.weight * 2.0, w)
    assert not op.weight.flags.writeable


class _Subclass(np.ndarray):
    pass


def test_vector_forms_agree():
    """A plain vector of the right length goes straight to the kernel; lists, columns and
    subclasses go through scipy's wrapper: every form gives the same numbers and shape."""
    rng = np.random.default_rng(3)
    fwd = tc.conv2d_operator(rng.standard_normal((3, 2, 3, 3)), (5, 6), stride=2, padding=1)
    for op in (fwd, fwd.H, fwd.T):
        x = rng.standard_normal(op.shape[1])
        y = rng.standard_normal(op.shape[0])
        want, want_h = op.matvec(x), op.rmatvec(y)
        assert want.shape == (op.shape[0],) and want_h.shape == (op.shape[1],)
        np.testing.assert_array_equal(op.matvec(x.tolist()), want)
        np.testing.assert_array_equal(op.matvec(x[:, None]), want[:, None])
        np.testing.assert_array_equal(op.matvec(x.view(_Subclass)), want)
        np.testing.assert_array_equal(op.rmatvec(y.tolist()), want_h)
        np.testing.assert_array_equal(op @ x, want)
        # the adjoint pass, by the dot test
        np.testing.assert_allclose(np.vdot(y, want), np.vdot(want_h, x), rtol=1e-12)


def test_errors_nd():
    w = np.ones((2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"`x` must have shape \(C, H, W\) or \(N, C, H, W\)"):
        tc.conv2d(np.ones((5, 5)), w)
    with pytest.raises(ValueError, match=r"`x` has 2 channels .*but the weight expects 3"):
        tc.conv2d(np.ones((2, 5, 5)), w)
    with pytest.raises(ValueError, match=r"`x` must have at least one sample"):
        tc.conv2d(np.ones((3, 0, 5)), w)
    with pytest.raises(ValueError, match=r"`stride\[1\]` must be an integer >= 1, got 0"):
        tc.conv2d(np.ones((3, 5, 5)), w, stride=(1, 0))
    with pytest.raises(ValueError, match=r"for a one-channel 2-D or 3-D kernel call conv2d"):
        tc.conv(np.ones((5, 5)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"`kernel_size` must be an int or a tuple of 1, 2 or 3"):
        tc.unfold(np.ones((1, 3, 3, 3, 3)), (1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"`kernel_size\[1\]` must be an integer >= 1, got 0"):
        tc.unfold(np.ones((1, 3, 3)), (1, 0))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(2,\)"):
        tc.conv2d(np.ones((3, 5, 5)), w, np.ones(3))
    with pytest.raises(ValueError, match=r"`input_size`"):
        tc.conv2d_operator(w, (5, 5, 5))
    with pytest.raises(ValueError, match=r"'reflect' needs padding < input_length"):
        tc.conv2d_operator(w, (5, 2), padding=2, padding_mode="reflect")


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

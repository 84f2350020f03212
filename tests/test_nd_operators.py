"""N-d forward passes and operators: torch-exact, equal to the matrix, adjoint-consistent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator

import toeplitz_conv as tc
from checks import assert_operator_matches, dot_test
from toeplitz_conv import _kernel
from toeplitz_conv.operators import ConvOperator, ConvTransposeOperator

MODES = ("zeros", "reflect", "replicate", "circular")

# (C_out, C_in, groups, K, stride, dilation, padding, size)
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


# --------------------------------------------------------------------------- torch oracle
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer", LAYERS_2D + LAYERS_3D)
def test_conv_matches_torch_and_autograd(torch, mode, layer):
    rng = np.random.default_rng(0)
    w, kw, size, c_in = _layer(layer, rng)
    n = len(size)
    x = rng.standard_normal((2, c_in, *size))
    b = rng.standard_normal(w.shape[0])
    conv = (tc.conv2d, tc.conv3d)[n - 2]
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
@pytest.mark.parametrize("K", [(2, 3), (2, 1, 3)])
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


# --------------------------------------------------------------------------- operator == matrix
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer", LAYERS_2D[:4] + LAYERS_3D[:2])
def test_operator_is_the_matrix(mode, layer, complex_):
    rng = np.random.default_rng(4)
    w, kw, size, _ = _layer(layer, rng, complex_)
    M = _valid(lambda: tc.conv_matrix(w, size, padding_mode=mode, format="dense", **kw))
    if M is None:
        return
    op = tc.conv_operator(w, size, padding_mode=mode, **kw)
    assert isinstance(op, ConvOperator) and isinstance(op, LinearOperator)
    assert op.dtype == w.dtype and op.ndim == len(size) and op.input_size == size
    assert_operator_matches(op, M, rng, depth=1)
    for adj in (op.H, op.adjoint()):
        assert isinstance(adj, ConvTransposeOperator) and adj.H is op
    if complex_:  # the transpose is not the adjoint
        y = rng.standard_normal(M.shape[0])
        assert not np.allclose(op.T @ y, op.H @ y)


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("ndim", [2, 3])
def test_transpose_operator_is_the_matrix(ndim, complex_):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, *(3, 2, 2)[:ndim]))
    if complex_:
        w = w + 1j * rng.standard_normal(w.shape)
    kw = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2, 1)[:ndim])
    size = (3, 4, 2)[:ndim]
    M = tc.conv_transpose_matrix(w, size, format="dense", **kw)
    op = (tc.conv_transpose2d_operator, tc.conv_transpose3d_operator)[ndim - 2](w, size, **kw)
    assert_operator_matches(op, M, rng, depth=1)
    x = rng.standard_normal((4, *size))
    np.testing.assert_allclose(op @ x.ravel(), tc.conv_transpose(x, w, **kw).ravel(), atol=1e-12)


@settings(max_examples=40)
@given(
    ndim=st.integers(2, 3),
    mode=st.sampled_from(MODES),
    groups=st.integers(1, 2),
    c_out_g=st.sampled_from([1, 2, 17]),
    c_in_g=st.integers(1, 2),
    data=st.data(),
    batch=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_operator_hypothesis(ndim, mode, groups, c_out_g, c_in_g, data, batch, seed):
    axes = st.tuples(*[st.integers(1, 3)] * ndim)
    K, stride, dilation = (
        data.draw(axes),
        data.draw(axes),
        data.draw(st.tuples(*[st.integers(1, 2)] * ndim)),
    )
    size = data.draw(st.tuples(*[st.integers(1, 7)] * ndim))
    padding = data.draw(st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * ndim))
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out_g * groups, c_in_g, *K))
    w = w + 1j * rng.standard_normal(w.shape)
    kw = dict(stride=stride, dilation=dilation, padding=padding, groups=groups, padding_mode=mode)
    try:
        M = tc.conv_matrix(w, size, format="dense", **kw)
    except ValueError:
        return  # refused by the geometry, for the matrix and the operator alike
    op = tc.conv_operator(w, size, **kw)
    X = rng.standard_normal((M.shape[1], batch)) + 1j * rng.standard_normal((M.shape[1], batch))
    Y = rng.standard_normal((M.shape[0], batch))
    np.testing.assert_allclose(op.matmat(X), M @ X, atol=1e-11)
    np.testing.assert_allclose(op.H.matmat(Y), M.conj().T @ Y, atol=1e-11)
    np.testing.assert_allclose(op.T.matmat(Y), M.T @ Y, atol=1e-11)
    dot_test(op, rng)
    dot_test(op.T, rng)


@pytest.mark.parametrize("c_out", [1, 20])  # thin (flipped adjoint) and thick
@pytest.mark.parametrize("stride", [1, (2, 3)])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_blocked_application_nd(monkeypatch, c_out, stride, mode):
    """Many small blocks, with a partial last one, give the same result as one block."""
    rng = np.random.default_rng(6)
    w = rng.standard_normal((c_out, 2, 3, 2))
    kw = dict(stride=stride, padding=(2, (1, 0)), dilation=(1, 2), padding_mode=mode)
    M = tc.conv2d_matrix(w, (9, 8), format="dense", **kw)
    op = tc.conv2d_operator(w, (9, 8), **kw)
    X, Y = rng.standard_normal((M.shape[1], 2)), rng.standard_normal((M.shape[0], 2))
    monkeypatch.setattr(_kernel, "_BLOCK_BYTES", 64)
    monkeypatch.setattr(_kernel, "_THIN_BLOCK_BYTES", 64)
    monkeypatch.setattr(_kernel, "_MIN_BLOCK_COLS", 1)
    assert _kernel._block_positions(12, 2, 8, 30, True) < 30
    np.testing.assert_allclose(op.matmat(X), M @ X, atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(Y), M.T @ Y, atol=1e-12)
    np.testing.assert_allclose(op @ X[:, 0], M @ X[:, 0], atol=1e-12)
    np.testing.assert_allclose(op.H @ Y[:, 0], M.T @ Y[:, 0], atol=1e-12)


# --------------------------------------------------------------------------- the public surface
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


def test_dtypes_nd():
    w32 = np.ones((2, 2, 3, 3), dtype=np.float32)
    op = tc.conv2d_operator(w32, 5, padding=1)
    assert op.dtype == np.float32
    assert (op @ np.ones(50, dtype=np.float32)).dtype == np.float32
    assert (op @ np.ones(50)).dtype == np.float64
    assert tc.conv2d(np.ones((2, 5, 5), dtype=np.float32), w32).dtype == np.float32
    assert tc.conv2d(np.ones((2, 5, 5), dtype=np.int64), w32).dtype == np.float64
    assert tc.conv2d_operator(np.ones((3, 3), dtype=int), 5).dtype == np.float64


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


# --------------------------------------------------------------------------- errors
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

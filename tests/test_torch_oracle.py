"""PyTorch (CPU, float64) as the oracle for toeplitz_conv.

Skipped when torch is missing, unless ``TOEPLITZ_CONV_REQUIRE_TORCH=1`` (then it fails).

* ``F.conv1d`` -- for a non-zeros padding mode: ``F.pad(x, (p_l, p_r), mode=...)`` then conv1d
  with padding 0; zeros and the ``"same"``/``"valid"`` strings also straight through
  ``F.conv1d(..., padding=...)``;
* ``torch.nn.Conv1d`` modules with ``padding_mode`` set;
* ``F.conv_transpose1d`` with output_padding / groups / dilation;
* ``F.unfold`` on the input viewed as ``(N, C, 1, L)`` and ``Tensor.unfold``;
* autograd: ``grad_x == M.T @ vec(grad_y)`` and ``grad_W == grad_y @ U.T``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from conftest import assert_canonical_sparse, require_torch
from reference import (
    PADDING_MODES,
    assert_close,
    padding_ok,
    ref_conv1d,
    ref_conv1d_matrix,
    ref_conv_transpose1d,
    ref_unfold,
    resolve_padding,
)
from strategies import conv_configs

torch = require_torch()
F = torch.nn.functional

TORCH_PAD_MODE = {
    "zeros": "constant",
    "circular": "circular",
    "reflect": "reflect",
    "replicate": "replicate",
}


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def torch_padded(x, p_l, p_r, mode):
    xt = T(x)
    if p_l == 0 and p_r == 0:
        return xt
    if mode == "zeros":
        return F.pad(xt, (p_l, p_r), mode="constant", value=0.0)
    return F.pad(xt, (p_l, p_r), mode=TORCH_PAD_MODE[mode])


def torch_conv1d(x, w, b, stride, padding, dilation, groups, mode):
    """x: (N, C, L) numpy -> (N, C_out, L_out) numpy via explicit F.pad + F.conv1d."""
    p_l, p_r = resolve_padding(padding, w.shape[-1], dilation)
    xt = torch_padded(x, p_l, p_r, mode)
    y = F.conv1d(
        xt,
        T(w),
        None if b is None else T(b),
        stride=stride,
        padding=0,
        dilation=dilation,
        groups=groups,
    )
    return y.numpy()


def make(seed, n, c_in, c_out, groups, k, length):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, c_in // groups, k))
    b = rng.standard_normal(c_out)
    x = rng.standard_normal((n, c_in, length))
    return w, b, x


def check_against_torch(w, b, x, stride, padding, dilation, groups, mode):
    n, c_in, length = x.shape
    c_out, _, k = w.shape
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    y_t = torch_conv1d(x, w, b, stride, padding, dilation, groups, mode)
    l_out = y_t.shape[-1]
    assert tc.output_length(length, k, **kw) == l_out

    # numpy forward, batched and one sample at a time
    assert_close(tc.conv1d(x, w, b, groups=groups, padding_mode=mode, **kw), y_t)
    assert_close(tc.conv1d(x[0], w, b, groups=groups, padding_mode=mode, **kw), y_t[0])

    # the matrix
    m = tc.conv1d_matrix(w, length, groups=groups, padding_mode=mode, **kw)
    assert_canonical_sparse(m, "csr")
    assert m.shape == (c_out * l_out, c_in * length)
    y_m = x.reshape(n, -1) @ m.T + tc.bias_vector(b, l_out)
    assert_close(y_m, y_t.reshape(n, -1))

    # unfold against F.unfold on the padded input viewed as an image of height 1
    p_l, p_r = resolve_padding(padding, k, dilation)
    xp = torch_padded(x, p_l, p_r, mode)
    u_t = F.unfold(
        xp[:, :, None, :], kernel_size=(1, k), dilation=(1, dilation), padding=0, stride=(1, stride)
    ).numpy()
    u = tc.unfold(x, (k,), padding_mode=mode, **kw)
    assert_close(u, u_t)
    return y_t


# --------------------------------------------------------------------------- the reference itself
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 1, 1, 1), (2, (2, 1), 2, 2), (1, "same", 2, 2), (3, 3, 1, 1), (1, "same", 1, 1)],
    ids=str,
)
def test_reference_agrees_with_torch(mode, stride, padding, dilation, groups):
    w, b, x = make(1, 2, 4, 6, groups, 4, 7)
    assert padding_ok(mode, padding, 7, 4, dilation, stride)
    y_t = torch_conv1d(x, w, b, stride, padding, dilation, groups, mode)
    assert_close(ref_conv1d(x, w, b, stride, padding, dilation, groups, mode), y_t)
    m = ref_conv1d_matrix(w, 7, stride, padding, dilation, groups, mode)
    assert_close(x.reshape(2, -1) @ m.T, y_t.reshape(2, -1) - np.repeat(b, y_t.shape[-1]))
    p_l, p_r = resolve_padding(padding, 4, dilation)
    u_t = F.unfold(
        torch_padded(x, p_l, p_r, mode)[:, :, None, :],
        (1, 4),
        dilation=(1, dilation),
        stride=(1, stride),
    ).numpy()
    assert_close(ref_unfold(x, 4, stride, padding, dilation, mode), u_t)


def assert_both_refuse(mode, padding, stride, dilation, k, length):
    """Outside torch's domain torch raises, and so do we (a ValueError, not a wrong answer)."""
    with pytest.raises(ValueError):
        tc.conv1d_matrix(
            np.ones(k),
            length,
            stride=stride,
            padding=padding,
            dilation=dilation,
            padding_mode=mode,
        )
    x = torch.ones(1, 1, length, dtype=torch.float64)
    w = torch.ones(1, 1, k, dtype=torch.float64)
    with pytest.raises((RuntimeError, ValueError, NotImplementedError)):
        if isinstance(padding, str):
            conv = torch.nn.Conv1d(
                1,
                1,
                k,
                stride=stride,
                padding=padding,
                dilation=dilation,
                padding_mode=mode,
                bias=False,
                dtype=torch.float64,
            )
            conv(x)
        else:
            p_l, p_r = resolve_padding(padding, k, dilation)
            F.conv1d(
                F.pad(x, (p_l, p_r), mode=TORCH_PAD_MODE[mode]), w, stride=stride, dilation=dilation
            )


# --------------------------------------------------------------------------- conv1d grid
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("padding", [0, 1, 3, (0, 2), (3, 1), "same", "valid"], ids=str)
@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("dilation", [1, 3])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_conv1d_grid(mode, padding, stride, dilation, k):
    length = 6
    if not padding_ok(mode, padding, length, k, dilation, stride):
        assert_both_refuse(mode, padding, stride, dilation, k, length)
        return
    w, b, x = make(k * 100 + stride * 10 + dilation, 2, 4, 6, 2, k, length)
    check_against_torch(w, b, x, stride, padding, dilation, 2, mode)


@pytest.mark.parametrize(
    ("c_in", "c_out", "groups"), [(1, 1, 1), (3, 2, 1), (4, 6, 2), (3, 3, 3), (3, 6, 3), (4, 8, 4)]
)
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_conv1d_channels_groups(c_in, c_out, groups, mode):
    w, b, x = make(c_in + 10 * c_out, 3, c_in, c_out, groups, 3, 8)
    check_against_torch(w, b, x, 1, 2, 2, groups, mode)
    check_against_torch(w, b, x, 3, (1, 2), 1, groups, mode)


@pytest.mark.parametrize(
    ("mode", "length", "k", "padding", "dilation"),
    [
        ("circular", 2, 3, 1, 1),
        ("circular", 1, 3, 1, 1),
        ("circular", 2, 5, 2, 1),
        ("circular", 3, 4, 3, 2),
        ("reflect", 2, 3, 1, 1),
        ("reflect", 3, 5, 2, 1),
        ("reflect", 3, 3, 2, 2),
        ("replicate", 1, 3, 2, 1),
        ("replicate", 2, 4, 3, 2),
    ],
)
def test_taps_landing_twice_torch(mode, length, k, padding, dilation):
    w, b, x = make(length * 3 + k, 2, 2, 4, 2, k, length)
    check_against_torch(w, b, x, 1, padding, dilation, 2, mode)


@pytest.mark.parametrize(
    ("k", "dilation"), [(1, 1), (2, 1), (3, 1), (4, 1), (2, 3), (3, 2), (4, 2), (5, 3)]
)
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_string_padding_direct(k, dilation, padding):
    """Zeros padding through torch's own ``padding="same"`` / ``"valid"``."""
    length = 14
    w, b, x = make(k * 7 + dilation, 2, 4, 2, 1, k, length)
    y_t = F.conv1d(T(x), T(w), T(b), padding=padding, dilation=dilation).numpy()
    assert_close(tc.conv1d(x, w, b, padding=padding, dilation=dilation), y_t)
    m = tc.conv1d_matrix(w, length, padding=padding, dilation=dilation)
    l_out = y_t.shape[-1]
    if padding == "same":
        assert l_out == length
    assert_close(x.reshape(2, -1) @ m.T + tc.bias_vector(b, l_out), y_t.reshape(2, -1))


@pytest.mark.parametrize("padding", [0, 1, 2, 5])
@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2), (3, 2), (5, 1)])
def test_int_padding_direct(padding, stride, dilation):
    """Zeros padding through ``F.conv1d(..., padding=p)``."""
    w, b, x = make(padding + 10 * stride, 2, 2, 3, 1, 3, 9)
    y_t = F.conv1d(T(x), T(w), T(b), stride=stride, padding=padding, dilation=dilation).numpy()
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    assert_close(tc.conv1d(x, w, b, **kw), y_t)
    m = tc.conv1d_matrix(w, 9, **kw)
    assert_close(x.reshape(2, -1) @ m.T + tc.bias_vector(b, y_t.shape[-1]), y_t.reshape(2, -1))


# --------------------------------------------------------------------------- nn.Conv1d modules
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "stride", "padding", "dilation", "groups"),
    [
        (3, 4, 3, 1, 1, 1, 1),
        (2, 4, 4, 1, "same", 2, 2),
        (3, 3, 2, 1, "same", 1, 3),
        (4, 2, 5, 2, 2, 1, 2),
        (2, 6, 3, 3, "valid", 1, 2),
        (1, 2, 4, 1, "same", 3, 1),
    ],
    ids=str,
)
def test_nn_conv1d_module(mode, c_in, c_out, k, stride, padding, dilation, groups):
    length = 9
    assert padding_ok(mode, padding, length, k, dilation, stride)
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(
        c_in,
        c_out,
        k,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=True,
        padding_mode=mode,
        dtype=torch.float64,
    )
    w = conv.weight.detach().numpy().copy()
    b = conv.bias.detach().numpy().copy()
    x = np.random.default_rng(5).standard_normal((2, c_in, length))
    with torch.no_grad():
        y_t = conv(T(x)).numpy()
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    assert_close(tc.conv1d(x, w, b, **kw), y_t)
    # weight given as torch tensors
    assert_close(tc.conv1d(x, conv.weight.detach(), conv.bias.detach(), **kw), y_t)
    m = tc.conv1d_matrix(conv.weight.detach(), length, **kw)
    assert_canonical_sparse(m, "csr")
    assert m.dtype == np.float64
    assert_close(x.reshape(2, -1) @ m.T + tc.bias_vector(b, y_t.shape[-1]), y_t.reshape(2, -1))


def test_torch_tensor_weight_dtype():
    wt = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(1))  # float32
    m = tc.conv1d_matrix(wt, 7, padding=1)
    assert m.dtype == np.float32
    assert_close(
        m.toarray(), ref_conv1d_matrix(wt.double().numpy(), 7, padding=1), rtol=1e-6, atol=1e-6
    )
    m64 = tc.conv1d_matrix(wt.double(), 7, padding=1)
    assert m64.dtype == np.float64
    mt = tc.conv_transpose1d_matrix(wt.double(), 4, stride=2)
    assert mt.dtype == np.float64


# --------------------------------------------------------------------------- conv_transpose1d
TRANSPOSE_CASES = [
    # (c_in_t, c_out_t, groups, k, length_z, stride, padding, output_padding, dilation)
    (1, 1, 1, 3, 5, 1, 0, 0, 1),
    (1, 1, 1, 3, 5, 2, 1, 1, 1),
    (2, 3, 1, 4, 4, 3, 2, 2, 1),
    (4, 6, 2, 3, 4, 2, 0, 1, 2),
    (4, 4, 4, 2, 5, 1, 1, 2, 3),  # q >= s, allowed since d > s
    (3, 6, 3, 3, 3, 2, 2, 3, 4),  # q >= s, allowed since d > s
    (2, 2, 2, 5, 3, 4, 3, 3, 1),
    (3, 3, 1, 1, 6, 5, 0, 4, 1),
    (2, 4, 2, 3, 2, 1, 2, 0, 2),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose1d(case):
    c_in_t, c_out_t, groups, k, length_z, stride, padding, q, dilation = case
    rng = np.random.default_rng(length_z * 11 + k)
    w = rng.standard_normal((c_in_t, c_out_t // groups, k))
    b = rng.standard_normal(c_out_t)
    z = rng.standard_normal((3, c_in_t, length_z))
    kw = dict(stride=stride, padding=padding, output_padding=q, groups=groups, dilation=dilation)
    out_t = F.conv_transpose1d(T(z), T(w), T(b), **kw).numpy()
    length = out_t.shape[-1]
    assert_close(ref_conv_transpose1d(z, w, b, **kw), out_t)
    assert_close(tc.conv_transpose1d(z, w, b, **kw), out_t)
    assert_close(tc.conv_transpose1d(z[1], w, b, **kw), out_t[1])
    mt = tc.conv_transpose1d_matrix(w, length_z, **kw)
    assert_canonical_sparse(mt, "csr")
    assert mt.shape == (c_out_t * length, c_in_t * length_z)
    assert_close(z.reshape(3, -1) @ mt.T + tc.bias_vector(b, length), out_t.reshape(3, -1))

    # conv_transpose1d is the gradient of conv1d with respect to its input
    x = torch.zeros((3, c_out_t, length), dtype=torch.float64, requires_grad=True)
    y = F.conv1d(x, T(w), stride=stride, padding=padding, dilation=dilation, groups=groups)
    zz = T(z[:, :, : y.shape[-1]])
    if y.shape[-1] == length_z:
        (y * zz).sum().backward()
        assert_close(x.grad.numpy(), out_t - b[None, :, None])


# --------------------------------------------------------------------------- unfold
@pytest.mark.parametrize(
    ("k", "stride", "padding", "dilation"),
    [
        (1, 1, 0, 1),
        (3, 1, 1, 1),
        (3, 2, 2, 1),
        (2, 3, 0, 2),
        (4, 1, 3, 2),
        (3, 5, 1, 3),
    ],
)
def test_unfold_direct(k, stride, padding, dilation):
    x = np.random.default_rng(k + stride).standard_normal((2, 3, 10))
    u_t = F.unfold(
        T(x)[:, :, None, :],
        kernel_size=(1, k),
        padding=(0, padding),
        dilation=(1, dilation),
        stride=(1, stride),
    ).numpy()
    u = tc.unfold(x, (k,), stride=stride, padding=padding, dilation=dilation)
    assert u.shape == u_t.shape
    assert_close(u, u_t)
    assert_close(tc.unfold(x[1], k, stride=stride, padding=padding, dilation=dilation), u_t[1])
    if dilation == 1:
        # Tensor.unfold(2, K, s) on the padded input gives (N, C, L_out, K).
        xp = F.pad(T(x), (padding, padding))
        v = xp.unfold(2, k, stride).permute(0, 1, 3, 2).reshape(2, 3 * k, -1).numpy()
        assert_close(u, v)


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("k", "stride", "padding", "dilation"),
    [(3, 1, 1, 1), (3, 2, (2, 1), 1), (2, 1, "same", 3), (4, 3, 3, 1), (3, 1, "same", 2)],
)
def test_unfold_modes_and_weight_grad(mode, k, stride, padding, dilation):
    """grad_W == grad_y @ U.T (per group), and U against F.unfold of the padded input."""
    n, c_in, c_out, groups, length = 2, 4, 6, 2, 7
    w, b, x = make(k * 5 + stride, n, c_in, c_out, groups, k, length)
    p_l, p_r = resolve_padding(padding, k, dilation)
    wt = T(w).requires_grad_(True)
    xp = torch_padded(x, p_l, p_r, mode)
    y = F.conv1d(xp, wt, T(b), stride=stride, dilation=dilation, groups=groups)
    g = np.random.default_rng(9).standard_normal(tuple(y.shape))
    (y * T(g)).sum().backward()
    u = tc.unfold(x, (k,), stride=stride, padding=padding, dilation=dilation, padding_mode=mode)
    u_t = F.unfold(xp[:, :, None, :], (1, k), dilation=(1, dilation), stride=(1, stride))
    assert_close(u, u_t.numpy())
    g_in, per = c_in // groups, c_out // groups
    grad_w = np.zeros_like(w)
    for gi in range(groups):
        rows = slice(gi * g_in * k, (gi + 1) * g_in * k)
        outs = slice(gi * per, (gi + 1) * per)
        for i in range(n):
            grad_w[outs] += (g[i, outs] @ u[i, rows].T).reshape(per, g_in, k)
    assert_close(grad_w, wt.grad.numpy())


# --------------------------------------------------------------------------- autograd, grad_x
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups", "length"),
    [
        (1, 1, 1, 1, 6),
        (2, 2, 1, 2, 7),
        (1, "same", 2, 2, 5),
        (3, (1, 2), 2, 1, 9),
        (1, 2, 1, 2, 2),
        (1, 1, 1, 1, 2),  # tiny L: taps land twice on one column
    ],
    ids=str,
)
def test_grad_x_is_transpose(mode, stride, padding, dilation, groups, length):
    k = 3
    if not padding_ok(mode, padding, length, k, dilation, stride):
        assert_both_refuse(mode, padding, stride, dilation, k, length)
        return
    n, c_in, c_out = 2, 2, 4
    w, b, x = make(length * 3 + stride, n, c_in, c_out, groups, k, length)
    p_l, p_r = resolve_padding(padding, k, dilation)
    xt = T(x).requires_grad_(True)
    if mode == "zeros":
        xp = F.pad(xt, (p_l, p_r))
    else:
        xp = F.pad(xt, (p_l, p_r), mode=TORCH_PAD_MODE[mode])
    y = F.conv1d(xp, T(w), T(b), stride=stride, dilation=dilation, groups=groups)
    g = np.random.default_rng(13).standard_normal(tuple(y.shape))
    (y * T(g)).sum().backward()
    for fmt in ("csr", "csc", "coo", "bsr", "dense"):
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
        grad = (m.T @ g.reshape(n, -1).T).T
        assert_close(grad.reshape(x.shape), xt.grad.numpy())


# --------------------------------------------------------------------------- hypothesis
@settings(max_examples=60)
@given(conv_configs())
def test_hypothesis_conv1d_torch(cfg):
    n, c_in, c_out, groups, k, length = (
        cfg[key] for key in ("n", "c_in", "c_out", "groups", "k", "length")
    )
    stride, padding, dilation, mode, seed = (
        cfg[key] for key in ("stride", "padding", "dilation", "mode", "seed")
    )
    w, b, x = make(seed, n, c_in, c_out, groups, k, length)
    y_t = check_against_torch(w, b, x, stride, padding, dilation, groups, mode)
    # grad_x through autograd == M.T @ vec(g)
    p_l, p_r = resolve_padding(padding, k, dilation)
    xt = T(x).requires_grad_(True)
    mode_t = "constant" if mode == "zeros" else TORCH_PAD_MODE[mode]
    xp = F.pad(xt, (p_l, p_r), mode=mode_t) if (p_l or p_r) else xt
    y = F.conv1d(xp, T(w), None, stride=stride, dilation=dilation, groups=groups)
    assert y.shape == y_t.shape
    g = np.random.default_rng(seed ^ 1).standard_normal(tuple(y.shape))
    (y * T(g)).sum().backward()
    m = tc.conv1d_matrix(
        w,
        length,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=mode,
    )
    assert_close((g.reshape(n, -1) @ m).reshape(x.shape), xt.grad.numpy())


@st.composite
def transpose_configs(draw):
    groups = draw(st.integers(1, 3))
    c_in_t = groups * draw(st.integers(1, 2))
    c_out_t = groups * draw(st.integers(1, 2))
    k = draw(st.integers(1, 5))
    dilation = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 4))
    length_z = draw(st.integers(1, 6))
    q = draw(st.integers(0, max(stride, dilation) - 1))
    padding = draw(st.integers(0, 3))
    length = (length_z - 1) * stride - 2 * padding + dilation * (k - 1) + q + 1
    assume(length >= 1)
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, c_in_t, c_out_t, groups, k, length_z, stride, padding, q, dilation, seed


@settings(max_examples=60)
@given(transpose_configs())
def test_hypothesis_conv_transpose_torch(cfg):
    n, c_in_t, c_out_t, groups, k, length_z, stride, padding, q, dilation, seed = cfg
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_in_t, c_out_t // groups, k))
    b = rng.standard_normal(c_out_t)
    z = rng.standard_normal((n, c_in_t, length_z))
    kw = dict(stride=stride, padding=padding, output_padding=q, groups=groups, dilation=dilation)
    out_t = F.conv_transpose1d(T(z), T(w), T(b), **kw).numpy()
    length = out_t.shape[-1]
    assert_close(tc.conv_transpose1d(z, w, b, **kw), out_t)
    mt = tc.conv_transpose1d_matrix(w, length_z, **kw)
    assert_canonical_sparse(mt, "csr")
    assert_close(z.reshape(n, -1) @ mt.T + tc.bias_vector(b, length), out_t.reshape(n, -1))
    # and it is conv1d_matrix(W, L').T on the first L_z rows of each channel
    m = tc.conv1d_matrix(
        w, length, stride=stride, padding=padding, dilation=dilation, groups=groups, format="dense"
    )
    l_out = m.shape[0] // c_in_t
    assert l_out == length_z + q // stride
    rows = (np.arange(c_in_t)[:, None] * l_out + np.arange(length_z)[None, :]).ravel()
    assert_close(mt.toarray(), m[rows].T)

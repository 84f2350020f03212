"""PyTorch (CPU, float64) as the oracle for toeplitz_conv, 1, 2 and 3 spatial axes.

Skipped when torch is missing, unless ``TOEPLITZ_CONV_REQUIRE_TORCH=1`` (then it fails).

* the loop-by-the-formula reference itself against torch first (``test_reference_*``): that is
  what makes it an oracle for the library where torch has no counterpart (per-side padding
  pairs of a transposed convolution, unfold with padding modes, 3-D unfold);
* ``F.conv1d``/``F.conv2d``/``F.conv3d`` after ``F.pad`` (``F.pad`` takes the last axis first)
  for every padding mode; zeros and the ``"same"``/``"valid"`` strings also straight through
  torch's own ``padding=``; ``nn.Conv1d``/``nn.Conv2d``/``nn.Conv3d`` modules with
  ``padding_mode`` set, and ``from_torch``;
* ``F.conv_transpose1d/2d/3d`` with ``output_padding``/groups/dilation; per-side padding pairs
  (our extension) as torch's padding-0 output cropped by ``p_l`` on the left and ``p_r`` on
  the right; ``nn.ConvTranspose2d``/``nn.ConvTranspose3d`` and ``from_torch``;
* ``F.unfold`` (1-D inputs viewed as ``(N, C, 1, L)``, 2-D) and ``Tensor.unfold``;
* autograd: ``grad_x == M.T @ vec(grad_y)`` and ``grad_W == grad_y @ U.T``;
* the domain: where torch raises we raise a ValueError, elsewhere we agree.
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
    as_axes,
    assert_close,
    padding_ok,
    padding_ok_nd,
    ref_conv1d,
    ref_conv1d_matrix,
    ref_conv_nd,
    ref_conv_nd_matrix,
    ref_conv_transpose1d,
    ref_conv_transpose_nd,
    ref_conv_transpose_nd_matrix,
    ref_unfold,
    ref_unfold_nd,
    resolve_padding,
    resolve_padding_nd,
)
from strategies import (
    conv_configs,
    conv_kwargs,
    conv_nd_configs,
    conv_transpose_nd_configs,
    transpose_kwargs,
)

torch = require_torch()


F = torch.nn.functional


pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


TORCH_PAD_MODE = {
    "zeros": "constant",
    "circular": "circular",
    "reflect": "reflect",
    "replicate": "replicate",
}


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


MATRIX = {1: "conv1d_matrix", 2: "conv2d_matrix", 3: "conv3d_matrix"}


FORWARD = {1: "conv1d", 2: "conv2d", 3: "conv3d"}


T_MATRIX = {2: "conv_transpose2d_matrix", 3: "conv_transpose3d_matrix"}


T_FORWARD = {2: "conv_transpose2d", 3: "conv_transpose3d"}


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def torch_padded(xt, pads, mode):
    """``F.pad`` of ``(N, C, *S)`` by per-axis ``(left, right)`` pairs (given last axis first)."""
    flat = tuple(p for pair in reversed(pads) for p in pair)
    if not any(flat):
        return xt
    return F.pad(xt, flat, mode=TORCH_PAD_MODE[mode])


def torch_conv(x, w, b, stride, pads, dilation, groups, mode):
    """``(N, C, *S)`` -> ``(N, C_out, *S_out)`` (numpy) via explicit ``F.pad`` + ``F.convNd``."""
    n = w.ndim - 2
    xp = torch_padded(T(x), pads, mode)
    y = CONV[n](
        xp, T(w), None if b is None else T(b), stride=stride, dilation=dilation, groups=groups
    )
    return y.numpy()


def torch_conv1d(x, w, b, stride, padding, dilation, groups, mode):
    """x: (N, C, L) numpy -> (N, C_out, L_out) numpy via explicit F.pad + F.conv1d."""
    pads = (resolve_padding(padding, w.shape[-1], dilation),)
    return torch_conv(x, w, b, stride, pads, dilation, groups, mode)


def torch_conv_transpose(z, w, b, stride, pads, output_padding, groups, dilation):
    """Torch's transposed conv with per-side padding: padding 0, then crop ``p_l`` / ``p_r``.

    With padding 0 torch's output is ``(L-1)s + d(K-1) + q + 1`` long; padding ``(p_l, p_r)``
    removes ``p_l`` samples on the left and ``p_r`` on the right (for ``p_l = p_r`` that is
    exactly torch's ``padding=p``, checked in ``test_reference_matches_torch_transpose``).
    """
    n = w.ndim - 2
    out = CONV_T[n](
        T(z),
        T(w),
        None if b is None else T(b),
        stride=stride,
        padding=0,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    ).numpy()
    crop = [slice(p_l, size - p_r) for (p_l, p_r), size in zip(pads, out.shape[2:], strict=True)]
    return out[(slice(None), slice(None), *crop)]


def make_1d(seed, n, c_in, c_out, groups, k, length):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, c_in // groups, k))
    b = rng.standard_normal(c_out)
    x = rng.standard_normal((n, c_in, length))
    return w, b, x


def make(cfg, dtype=np.float64):
    rng = np.random.default_rng(cfg["seed"])
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel_size"]))
    b = rng.standard_normal(cfg["c_out"])
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["input_size"]))
    return w.astype(dtype), b.astype(dtype), x.astype(dtype)


def make_t(cfg):
    rng = np.random.default_rng(cfg["seed"])
    w = rng.standard_normal((cfg["c_in_t"], cfg["c_out_t"] // cfg["groups"], *cfg["kernel_size"]))
    b = rng.standard_normal(cfg["c_out_t"])
    z = rng.standard_normal((cfg["batch"], cfg["c_in_t"], *cfg["input_size"]))
    return w, b, z


def torch_of(cfg, w, b, x):
    return torch_conv(
        x, w, b, cfg["stride"], cfg["pads"], cfg["dilation"], cfg["groups"], cfg["mode"]
    )


def check_against_torch_1d(w, b, x, stride, padding, dilation, groups, mode):
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
    xp = torch_padded(T(x), ((p_l, p_r),), mode)
    u_t = F.unfold(
        xp[:, :, None, :], kernel_size=(1, k), dilation=(1, dilation), padding=0, stride=(1, stride)
    ).numpy()
    u = tc.unfold(x, (k,), padding_mode=mode, **kw)
    assert_close(u, u_t)
    return y_t


def check_against_torch(cfg, formats=("csr",)):
    """Forward passes, the matrix (+ bias), unfold and the input gradient against torch."""
    n = cfg["n"]
    w, b, x = make(cfg)
    kw = conv_kwargs(cfg)
    y_t = torch_of(cfg, w, b, x)
    s_out = y_t.shape[2:]
    geo = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    assert tc.output_size(cfg["input_size"], cfg["kernel_size"], **geo) == s_out

    forward = getattr(tc, FORWARD[n])
    assert_close(forward(x, w, b, **kw), y_t)
    assert_close(forward(x[-1], w, b, **kw), y_t[-1])

    # autograd through F.pad + F.convNd: grad_x == M.T @ vec(g)
    xt = T(x).requires_grad_(True)
    y = CONV[n](
        torch_padded(xt, cfg["pads"], cfg["mode"]),
        T(w),
        stride=cfg["stride"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
    )
    g = np.random.default_rng(cfg["seed"] ^ 1).standard_normal(tuple(y.shape))
    (y * T(g)).sum().backward()
    batch = len(x)
    for fmt in formats:
        m = getattr(tc, MATRIX[n])(w, cfg["input_size"], format=fmt, **kw)
        if fmt != "dense":
            assert_canonical_sparse(m, fmt)
        assert m.shape == (cfg["c_out"] * np.prod(s_out), cfg["c_in"] * np.prod(cfg["input_size"]))
        y_m = x.reshape(batch, -1) @ m.T + tc.bias_vector(b, s_out)
        assert_close(y_m, y_t.reshape(batch, -1))
        assert_close((g.reshape(batch, -1) @ m).reshape(x.shape), xt.grad.numpy())

    if n == 2:
        xp = torch_padded(T(x), cfg["pads"], cfg["mode"])
        u_t = F.unfold(xp, cfg["kernel_size"], dilation=cfg["dilation"], stride=cfg["stride"])
        kw_u = dict(geo, padding_mode=cfg["mode"])
        assert_close(tc.unfold(x, cfg["kernel_size"], **kw_u), u_t.numpy())
    return y_t


# ------------------------------------------------------ the reference itself


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 1, 1, 1), (2, (2, 1), 2, 2), (1, "same", 2, 2), (3, 3, 1, 1), (1, "same", 1, 1)],
    ids=str,
)
def test_reference_agrees_with_torch(mode, stride, padding, dilation, groups):
    w, b, x = make_1d(1, 2, 4, 6, groups, 4, 7)
    assert padding_ok(mode, padding, 7, 4, dilation, stride)
    y_t = torch_conv1d(x, w, b, stride, padding, dilation, groups, mode)
    assert_close(ref_conv1d(x, w, b, stride, padding, dilation, groups, mode), y_t)
    m = ref_conv1d_matrix(w, 7, stride, padding, dilation, groups, mode)
    assert_close(x.reshape(2, -1) @ m.T, y_t.reshape(2, -1) - np.repeat(b, y_t.shape[-1]))
    p_l, p_r = resolve_padding(padding, 4, dilation)
    u_t = F.unfold(
        torch_padded(T(x), ((p_l, p_r),), mode)[:, :, None, :],
        (1, 4),
        dilation=(1, dilation),
        stride=(1, stride),
    ).numpy()
    assert_close(ref_unfold(x, 4, stride, padding, dilation, mode), u_t)


def check_reference_conv(cfg):
    """ref_conv_nd, ref_conv_nd_matrix and ref_unfold_nd against torch for one layer."""
    w, b, x = make(cfg)
    n, kw = cfg["n"], conv_kwargs(cfg)
    y_t = torch_of(cfg, w, b, x)
    assert_close(ref_conv_nd(x, w, b, **kw), y_t)
    m = ref_conv_nd_matrix(w, cfg["input_size"], **kw)
    s_out = y_t.shape[2:]
    assert m.shape == (cfg["c_out"] * np.prod(s_out), cfg["c_in"] * np.prod(cfg["input_size"]))
    assert_close(
        x.reshape(len(x), -1) @ m.T + np.repeat(b, np.prod(s_out)), y_t.reshape(len(x), -1)
    )
    kw_u = {k: v for k, v in kw.items() if k != "groups"}
    u = ref_unfold_nd(x, cfg["kernel_size"], **kw_u)
    if n == 2:
        xp = torch_padded(T(x), cfg["pads"], cfg["mode"])
        u_t = F.unfold(xp, cfg["kernel_size"], dilation=cfg["dilation"], stride=cfg["stride"])
        assert_close(u, u_t.numpy())
    # the weight side, y = W_flat @ U (per group), for every n
    groups, k_all = cfg["groups"], int(np.prod(cfg["kernel_size"]))
    g_in, per = cfg["c_in"] // groups, cfg["c_out"] // groups
    for g in range(groups):
        rows = slice(g * g_in * k_all, (g + 1) * g_in * k_all)
        outs = slice(g * per, (g + 1) * per)
        y_g = w[outs].reshape(per, -1) @ u[:, rows] + b[outs, None]
        assert_close(y_g, y_t[:, outs].reshape(len(x), per, -1))


@pytest.mark.parametrize(
    ("n", "examples", "limits"),
    [(2, 40, {}), (3, 15, dict(max_length=4, max_channels=3))],
    ids=["2d", "3d"],
)
def test_reference_matches_torch_conv_nd(n, examples, limits):
    """The N-d reference against torch on random 2-D and 3-D layers."""

    @settings(max_examples=examples)
    @given(cfg=conv_nd_configs(n=n, **limits))
    def run(cfg):
        check_reference_conv(cfg)

    run()


@settings(max_examples=20)
@given(cfg=conv_nd_configs(n=1, max_length=8))
def test_reference_nd_is_the_1d_reference_for_n_1(cfg):
    """For n = 1 the N-d reference is the 1-D one (and torch agrees)."""
    w, b, x = make(cfg)
    kw = conv_kwargs(cfg)
    kw1 = dict(kw, padding=cfg["pads"][0], stride=cfg["stride"][0], dilation=cfg["dilation"][0])
    assert_close(ref_conv_nd(x, w, b, **kw), ref_conv1d(x, w, b, **kw1))
    assert_close(
        ref_conv_nd_matrix(w, cfg["input_size"], **kw),
        ref_conv1d_matrix(w, cfg["input_size"][0], **kw1),
    )
    check_reference_conv(cfg)


def check_reference_transpose(cfg):
    w, b, z = make_t(cfg)
    kw = transpose_kwargs(cfg)
    out_t = torch_conv_transpose(
        z, w, b, cfg["stride"], cfg["pads"], cfg["output_padding"], cfg["groups"], cfg["dilation"]
    )
    assert out_t.shape[2:] == cfg["size"]
    assert_close(ref_conv_transpose_nd(z, w, b, **kw), out_t)
    mt = ref_conv_transpose_nd_matrix(w, cfg["input_size"], **kw)
    c = np.repeat(b, np.prod(cfg["size"]))
    assert_close(z.reshape(len(z), -1) @ mt.T + c, out_t.reshape(len(z), -1))
    if all(p_l == p_r for p_l, p_r in cfg["pads"]):  # torch's own symmetric padding
        direct = CONV_T[cfg["n"]](
            T(z),
            T(w),
            T(b),
            stride=cfg["stride"],
            padding=tuple(p for p, _ in cfg["pads"]),
            output_padding=cfg["output_padding"],
            groups=cfg["groups"],
            dilation=cfg["dilation"],
        ).numpy()
        assert_close(direct, out_t)


@pytest.mark.parametrize(
    ("n", "examples", "limits"),
    [(2, 40, {}), (3, 15, dict(max_length=3, max_channels=3))],
    ids=["2d", "3d"],
)
def test_reference_matches_torch_transpose_nd(n, examples, limits):
    """The N-d transposed reference against torch on random 2-D and 3-D layers."""

    @settings(max_examples=examples)
    @given(cfg=conv_transpose_nd_configs(n=n, **limits))
    def run(cfg):
        check_reference_transpose(cfg)

    run()


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_reference_matches_torch_grad_x(mode):
    """The reference matrix's transpose is torch's input gradient (2-D, every mode)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 1, 3, 2))
    x = rng.standard_normal((2, 2, 4, 5))
    pads = ((2, 1), (1, 1))
    kw = dict(stride=(1, 2), padding=pads, dilation=(1, 2), groups=2, padding_mode=mode)
    xt = T(x).requires_grad_(True)
    y = F.conv2d(torch_padded(xt, pads, mode), T(w), stride=(1, 2), dilation=(1, 2), groups=2)
    g = rng.standard_normal(tuple(y.shape))
    (y * T(g)).sum().backward()
    m = ref_conv_nd_matrix(w, (4, 5), **kw)
    assert_close(g.reshape(2, -1) @ m, xt.grad.numpy().reshape(2, -1))


# --------------------------------------------------------------- conv, grids


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
    w, b, x = make_1d(k * 100 + stride * 10 + dilation, 2, 4, 6, 2, k, length)
    check_against_torch_1d(w, b, x, stride, padding, dilation, 2, mode)


@pytest.mark.parametrize(
    ("c_in", "c_out", "groups"), [(1, 1, 1), (3, 2, 1), (4, 6, 2), (3, 3, 3), (3, 6, 3), (4, 8, 4)]
)
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_conv1d_channels_groups(c_in, c_out, groups, mode):
    w, b, x = make_1d(c_in + 10 * c_out, 3, c_in, c_out, groups, 3, 8)
    check_against_torch_1d(w, b, x, 1, 2, 2, groups, mode)
    check_against_torch_1d(w, b, x, 3, (1, 2), 1, groups, mode)


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
    w, b, x = make_1d(length * 3 + k, 2, 2, 4, 2, k, length)
    check_against_torch_1d(w, b, x, 1, padding, dilation, 2, mode)


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    ("n", "size", "ks", "stride", "padding", "dilation", "groups"),
    [
        (2, (5, 6), (3, 2), (2, 1), ((2, 1), 1), (1, 2), 2),
        (2, (2, 3), (3, 3), 1, 1, 1, 1),  # small axes: taps fold onto one column
        (2, (4, 4), (2, 4), 1, "same", (2, 1), 4),  # depthwise, even kernel
        (3, (3, 4, 2), (2, 3, 2), (1, 2, 1), (1, (0, 2), 1), 1, 2),
        (3, (3, 3, 3), (3, 3, 3), 1, "same", 1, 1),
    ],
    ids=str,
)
def test_grid_every_format(mode, n, size, ks, stride, padding, dilation, groups):
    cfg = dict(
        n=n, groups=groups, c_in=4 if groups == 4 else 2 * groups, c_out=4, kernel_size=ks,
        stride=stride, dilation=dilation, input_size=size, mode=mode, padding=padding, batch=2,
        seed=n * 1000 + sum(size),
    )  # fmt: skip
    cfg["pads"] = resolve_padding_nd(padding, ks, dilation)
    assert padding_ok_nd(mode, padding, size, ks, dilation, stride)
    check_against_torch(cfg, formats=("csr", "csc", "coo", "bsr", "dense"))


# ------------------------------------------------------ torch's own padding=


@pytest.mark.parametrize(
    ("k", "dilation"), [(1, 1), (2, 1), (3, 1), (4, 1), (2, 3), (3, 2), (4, 2), (5, 3)]
)
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_string_padding_direct(k, dilation, padding):
    """Zeros padding through torch's own ``padding="same"`` / ``"valid"``."""
    length = 14
    w, b, x = make_1d(k * 7 + dilation, 2, 4, 2, 1, k, length)
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
    w, b, x = make_1d(padding + 10 * stride, 2, 2, 3, 1, 3, 9)
    y_t = F.conv1d(T(x), T(w), T(b), stride=stride, padding=padding, dilation=dilation).numpy()
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    assert_close(tc.conv1d(x, w, b, **kw), y_t)
    m = tc.conv1d_matrix(w, 9, **kw)
    assert_close(x.reshape(2, -1) @ m.T + tc.bias_vector(b, y_t.shape[-1]), y_t.reshape(2, -1))


@pytest.mark.parametrize(
    ("n", "padding", "stride", "dilation"),
    [
        (2, 1, 1, 1),
        (2, (2, 0), (2, 1), (1, 2)),
        (2, "same", 1, (2, 1)),
        (2, "valid", (1, 3), 1),
        (3, (1, 0, 2), (1, 2, 1), 1),
        (3, "same", 1, (1, 2, 1)),
        (3, "valid", 2, 1),
    ],
    ids=str,
)
def test_torch_padding_argument_direct(n, padding, stride, dilation):
    """Zeros padding through torch's own ``padding=`` (int, tuple, "same", "valid")."""
    rng = np.random.default_rng(61)
    ks = (3, 2, 2)[:n] if n == 3 else (3, 4)
    size = (5, 6, 4)[:n] if n == 3 else (6, 7)
    w, b = rng.standard_normal((4, 2, *ks)), rng.standard_normal(4)
    x = rng.standard_normal((2, 2, *size))
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    y_t = CONV[n](T(x), T(w), T(b), **kw).numpy()
    assert_close(getattr(tc, FORWARD[n])(x, w, b, **kw), y_t)
    m = getattr(tc, MATRIX[n])(w, size, **kw)
    assert_close(x.reshape(2, -1) @ m.T + tc.bias_vector(b, y_t.shape[2:]), y_t.reshape(2, -1))


# ---------------------------------------------------- nn modules, from_torch


MODULE_CASES = [
    # (n, c_in, c_out, ks, stride, padding, dilation, groups, size)
    (1, 3, 4, 3, 1, 1, 1, 1, (9,)),
    (1, 2, 4, 4, 1, "same", 2, 2, (9,)),
    (1, 3, 3, 2, 1, "same", 1, 3, (9,)),
    (1, 4, 2, 5, 2, 2, 1, 2, (9,)),
    (1, 2, 6, 3, 3, "valid", 1, 2, (9,)),
    (1, 1, 2, 4, 1, "same", 3, 1, (9,)),
    (2, 3, 4, 3, 1, 1, 1, 1, (5, 6)),
    (2, 2, 4, (3, 2), (2, 1), (1, 0), (1, 2), 2, (6, 5)),
    (2, 4, 4, (2, 3), 1, "same", (2, 1), 4, (5, 4)),
    (2, 2, 2, 3, (1, 2), "valid", 1, 1, (4, 6)),
    (2, 2, 2, (2, 4), 1, "same", 1, 1, (4, 5)),  # even kernels: the odd pad on the right
    (3, 2, 4, (2, 3, 2), (1, 2, 1), (1, 1, 0), 1, 2, (3, 4, 3)),
    (3, 2, 2, 3, 1, "same", (1, 2, 1), 1, (3, 4, 3)),
]


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("case", MODULE_CASES, ids=str)
def test_nn_conv_modules_and_from_torch(mode, case):
    n, c_in, c_out, ks, stride, padding, dilation, groups, size = case
    cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[n]
    assert padding_ok_nd(mode, padding, size, as_axes(ks, n), dilation, stride)
    torch.manual_seed(0)
    conv = cls(
        c_in, c_out, ks, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=mode, dtype=torch.float64,
    )  # fmt: skip
    w = conv.weight.detach().numpy().copy()
    b = conv.bias.detach().numpy().copy()
    x = np.random.default_rng(5).standard_normal((2, c_in, *size))
    with torch.no_grad():
        y_t = conv(T(x)).numpy()
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    assert_close(getattr(tc, FORWARD[n])(x, w, b, **kw), y_t)
    assert_close(getattr(tc, FORWARD[n])(x, conv.weight.detach(), conv.bias.detach(), **kw), y_t)
    m = getattr(tc, MATRIX[n])(conv.weight.detach(), size, **kw)
    assert_canonical_sparse(m, "csr")
    assert m.dtype == np.float64
    assert_close(x.reshape(2, -1) @ m.T + tc.bias_vector(b, y_t.shape[2:]), y_t.reshape(2, -1))

    M, c = tc.from_torch(conv, size)
    assert_canonical_sparse(M, "csr")
    assert c.shape == (M.shape[0],)
    assert_close(x.reshape(2, -1) @ M.T + c, y_t.reshape(2, -1))
    M_dense, _ = tc.from_torch(conv, size, format="dense")
    assert_close(M_dense, M.toarray())


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


def test_from_torch_float32_and_no_bias():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(2, 3, (2, 3), padding=(1, 0), bias=False)
    M, c = tc.from_torch(conv, (4, 5))
    assert M.dtype == np.float32 and not c.any()
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = conv(x).numpy()
    assert_close(M @ x.numpy().ravel() + c, y.ravel(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("n", "c_in", "c_out", "ks", "stride", "padding", "output_padding", "dilation", "groups"),
    [
        (2, 2, 3, 3, 2, 1, 1, 1, 1),
        (2, 4, 2, (2, 3), (1, 2), (0, 1), (0, 1), (2, 1), 2),
        (2, 3, 3, (3, 1), (3, 1), (1, 0), (2, 0), 1, 3),
        (2, 2, 2, 3, 1, 0, (1, 0), (2, 1), 1),  # q >= s allowed since d > s
        (3, 2, 4, (2, 2, 3), (2, 1, 1), (0, 1, 1), (1, 0, 0), 1, 2),
        (3, 2, 2, 2, (1, 2, 1), 0, (0, 1, 1), (1, 1, 2), 1),
    ],
    ids=str,
)
def test_nn_conv_transpose_modules_and_from_torch(
    n, c_in, c_out, ks, stride, padding, output_padding, dilation, groups
):
    cls = {2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}[n]
    torch.manual_seed(3)
    conv = cls(
        c_in, c_out, ks, stride=stride, padding=padding, output_padding=output_padding,
        groups=groups, dilation=dilation, dtype=torch.float64,
    )  # fmt: skip
    size = (3, 2, 4)[:n] if n == 3 else (3, 4)
    w = conv.weight.detach().numpy().copy()
    b = conv.bias.detach().numpy().copy()
    z = np.random.default_rng(7).standard_normal((2, c_in, *size))
    with torch.no_grad():
        out_t = conv(T(z)).numpy()
    kw = dict(
        stride=stride, padding=padding, output_padding=output_padding, groups=groups,
        dilation=dilation,
    )  # fmt: skip
    assert_close(getattr(tc, T_FORWARD[n])(z, w, b, **kw), out_t)
    assert_close(getattr(tc, T_FORWARD[n])(z[0], w, b, **kw), out_t[0])
    mt = getattr(tc, T_MATRIX[n])(w, size, **kw)
    assert_canonical_sparse(mt, "csr")
    c = tc.bias_vector(b, out_t.shape[2:])
    assert_close(z.reshape(2, -1) @ mt.T + c, out_t.reshape(2, -1))
    M, c2 = tc.from_torch(conv, size)
    assert_canonical_sparse(M, "csr")
    assert_close(z.reshape(2, -1) @ M.T + c2, out_t.reshape(2, -1))


# ------------------------------------------------------------ conv_transpose


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


def check_transpose_against_torch(cfg, fmt="csr"):
    n = cfg["n"]
    w, b, z = make_t(cfg)
    kw = transpose_kwargs(cfg)
    out_t = torch_conv_transpose(
        z, w, b, cfg["stride"], cfg["pads"], cfg["output_padding"], cfg["groups"], cfg["dilation"]
    )
    assert_close(getattr(tc, T_FORWARD[n])(z, w, b, **kw), out_t)
    mt = getattr(tc, T_MATRIX[n])(w, cfg["input_size"], format=fmt, **kw)
    if fmt != "dense":
        assert_canonical_sparse(mt, fmt)
    c = tc.bias_vector(b, out_t.shape[2:])
    batch = len(z)
    assert_close(z.reshape(batch, -1) @ mt.T + c, out_t.reshape(batch, -1))
    # The transposed convolution is the input gradient of the convolution on L'.
    x = torch.zeros((batch, cfg["c_out_t"], *out_t.shape[2:]), dtype=torch.float64)
    x.requires_grad_(True)
    y = CONV[n](
        torch_padded(x, cfg["pads"], "zeros"),
        T(w),
        stride=cfg["stride"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
    )
    crop = tuple(slice(0, v) for v in cfg["input_size"])
    (y[(slice(None), slice(None), *crop)] * T(z)).sum().backward()
    assert_close(x.grad.numpy(), out_t - b.reshape((-1,) + (1,) * n))


@pytest.mark.parametrize(
    ("n", "examples", "limits"),
    [(2, 30, {}), (3, 12, dict(max_length=3, max_channels=3))],
    ids=["2d", "3d"],
)
def test_hypothesis_conv_transpose_nd_torch(n, examples, limits):
    """The library's transposed convolutions against torch, random 2-D and 3-D layers."""

    @settings(max_examples=examples)
    @given(cfg=conv_transpose_nd_configs(n=n, **limits))
    def run(cfg):
        check_transpose_against_torch(cfg)

    run()


# -------------------------------------------------------------------- unfold


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
    w, b, x = make_1d(k * 5 + stride, n, c_in, c_out, groups, k, length)
    p_l, p_r = resolve_padding(padding, k, dilation)
    wt = T(w).requires_grad_(True)
    xp = torch_padded(T(x), ((p_l, p_r),), mode)
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


@pytest.mark.parametrize(
    ("ks", "stride", "padding", "dilation"),
    [((1, 1), 1, 0, 1), ((3, 3), 1, 1, 1), ((3, 2), (2, 1), (2, 0), 1), ((2, 3), 3, 1, (2, 1))],
    ids=str,
)
def test_unfold_direct_and_weight_grad(ks, stride, padding, dilation):
    """tc.unfold == F.unfold (zero padding), and grad_W == grad_y @ U.T per group."""
    rng = np.random.default_rng(67)
    x = rng.standard_normal((2, 4, 6, 7))
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    u_t = F.unfold(T(x), ks, **kw).numpy()
    u = tc.unfold(x, ks, **kw)
    assert u.shape == u_t.shape
    assert_close(u, u_t)
    assert_close(tc.unfold(x[1], ks, **kw), u_t[1])
    groups, c_out = 2, 6
    w = rng.standard_normal((c_out, 4 // groups, *ks))
    wt = T(w).requires_grad_(True)
    y = F.conv2d(T(x), wt, groups=groups, **kw)
    g = rng.standard_normal(tuple(y.shape))
    (y * T(g)).sum().backward()
    k_all, g_in, per = int(np.prod(ks)), 4 // groups, c_out // groups
    grad_w = np.zeros_like(w)
    for gi in range(groups):
        rows = slice(gi * g_in * k_all, (gi + 1) * g_in * k_all)
        outs = slice(gi * per, (gi + 1) * per)
        for i in range(2):
            grad_w[outs] += (g[i, outs].reshape(per, -1) @ u[i, rows].T).reshape(w[outs].shape)
    assert_close(grad_w, wt.grad.numpy())


# ---------------------------------------------------------- autograd, grad_x


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
    w, b, x = make_1d(length * 3 + stride, n, c_in, c_out, groups, k, length)
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


# ---------------------------------------------------------------- hypothesis


@settings(max_examples=60)
@given(conv_configs())
def test_hypothesis_conv1d_torch(cfg):
    n, c_in, c_out, groups, k, length = (
        cfg[key] for key in ("n", "c_in", "c_out", "groups", "k", "length")
    )
    stride, padding, dilation, mode, seed = (
        cfg[key] for key in ("stride", "padding", "dilation", "mode", "seed")
    )
    w, b, x = make_1d(seed, n, c_in, c_out, groups, k, length)
    y_t = check_against_torch_1d(w, b, x, stride, padding, dilation, groups, mode)
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


@pytest.mark.parametrize(
    ("n", "examples", "limits"),
    [(2, 40, {}), (3, 20, dict(max_length=4, max_channels=3))],
    ids=["2d", "3d"],
)
def test_hypothesis_conv_nd_torch(n, examples, limits):
    """The library against torch on random 2-D and 3-D layers."""

    @settings(max_examples=examples)
    @given(cfg=conv_nd_configs(n=n, **limits))
    def run(cfg):
        check_against_torch(cfg)

    run()


@st.composite
def transpose_configs_1d(draw):
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
@given(transpose_configs_1d())
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


# -------------------------------------------------------- outside the domain


@pytest.mark.parametrize(
    ("mode", "size", "ks", "padding"),
    [
        ("reflect", (5, 2), (3, 3), 2),  # axis 1: p = 2 >= L = 2
        ("reflect", (2, 6), (1, 1), (2, 0)),  # axis 0
        ("circular", (6, 3), (3, 3), (1, 4)),  # axis 1: p = 4 > L = 3
        ("zeros", (6, 2), (3, 4), 0),  # axis 1: empty output
    ],
    ids=str,
)
def test_both_refuse_outside_the_domain(mode, size, ks, padding):
    """Where torch raises, so do we: a ValueError, never a wrong answer."""
    w = np.ones((1, 1, *ks))
    with pytest.raises(ValueError):
        tc.conv2d_matrix(w, size, padding=padding, padding_mode=mode)
    with pytest.raises(ValueError):
        tc.conv2d(np.ones((1, *size)), w, padding=padding, padding_mode=mode)
    conv = torch.nn.Conv2d(1, 1, ks, padding=padding, padding_mode=mode, bias=False)
    with pytest.raises((RuntimeError, ValueError, NotImplementedError)):
        conv(torch.ones(1, 1, *size))


@st.composite
def any_layer_2d(draw):
    """Per-axis parameters with no regard for the domain (the fuzz below sorts it out)."""
    ks = tuple(draw(st.integers(1, 4)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    size = tuple(draw(st.integers(1, 4)) for _ in range(2))
    pads = tuple(draw(st.tuples(st.integers(0, 6), st.integers(0, 6))) for _ in range(2))
    mode = draw(st.sampled_from(PADDING_MODES))
    return ks, dilation, stride, size, pads, mode


@settings(max_examples=60)
@given(layer=any_layer_2d())
def test_hypothesis_domain_agrees_with_torch(layer):
    """Anywhere in (or out of) the domain: torch raises and we raise a ValueError, or both agree."""
    ks, dilation, stride, size, pads, mode = layer
    rng = np.random.default_rng(sum(ks) + 7 * sum(size))
    w, x = rng.standard_normal((2, 1, *ks)), rng.standard_normal((1, 1, *size))
    kw = dict(stride=stride, padding=pads, dilation=dilation, padding_mode=mode)
    try:
        y_t = torch_conv(x, w, None, stride, pads, dilation, 1, mode)
    except (RuntimeError, ValueError, NotImplementedError):
        y_t = None
    if y_t is None or y_t.size == 0:
        with pytest.raises(ValueError):
            tc.conv2d_matrix(w, size, **kw)
        with pytest.raises(ValueError):
            tc.conv2d(x, w, **kw)
        return
    assert padding_ok_nd(mode, pads, size, ks, dilation, stride)
    m = tc.conv2d_matrix(w, size, **kw)
    assert_close(m @ x.ravel(), y_t.ravel())
    assert_close(tc.conv2d(x, w, **kw), y_t)

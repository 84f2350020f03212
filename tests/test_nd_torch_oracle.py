"""PyTorch (CPU, float64) as the oracle for the N-d API (conv2d / conv3d), DESIGN.md section 2b.

Skipped when torch is missing, unless ``TOEPLITZ_CONV_REQUIRE_TORCH=1`` (then it fails).

* the loop-by-the-formula reference itself against torch first (``test_reference_matches_*``):
  that is what makes it an oracle for the library where torch has no counterpart (per-side
  padding pairs of a transposed convolution, unfold with padding modes, 3-D unfold);
* ``F.conv2d``/``F.conv3d`` after ``F.pad`` (``F.pad`` takes the last axis first) for every
  padding mode, and ``nn.Conv2d``/``nn.Conv3d`` modules with ``padding_mode`` set;
* ``F.conv_transpose2d``/``F.conv_transpose3d`` with ``output_padding``; per-side padding pairs
  (our extension) as torch's padding-0 output cropped by ``p_l`` on the left and ``p_r`` on
  the right;
* ``F.unfold`` (2-D) on the padded input;
* autograd: ``grad_x == M.T @ vec(grad_y)`` and ``grad_W == grad_y @ U.T``;
* ``from_torch`` for ``nn.Conv2d``, ``nn.Conv3d``, ``nn.ConvTranspose2d``, ``nn.ConvTranspose3d``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import toeplitz_conv as tc
from conftest import assert_canonical_sparse, require_torch
from reference import (
    PADDING_MODES,
    assert_close,
    padding_ok_nd,
    ref_conv1d,
    ref_conv1d_matrix,
    ref_conv_nd,
    ref_conv_nd_matrix,
    ref_conv_transpose_nd,
    ref_conv_transpose_nd_matrix,
    ref_unfold_nd,
    resolve_padding_nd,
)
from strategies import conv_nd_configs, conv_transpose_nd_configs

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


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def torch_padded(xt, pads, mode):
    """``F.pad`` of ``(N, C, *S)`` by per-axis ``(left, right)`` pairs (F.pad wants them reversed)."""
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


def conv_kw(cfg):
    return dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
        padding_mode=cfg["mode"],
    )


def transpose_kw(cfg):
    return dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        output_padding=cfg["output_padding"],
        groups=cfg["groups"],
        dilation=cfg["dilation"],
    )


def torch_of(cfg, w, b, x):
    return torch_conv(
        x, w, b, cfg["stride"], cfg["pads"], cfg["dilation"], cfg["groups"], cfg["mode"]
    )


# =========================================================================== the reference
def check_reference_conv(cfg):
    """ref_conv_nd, ref_conv_nd_matrix and ref_unfold_nd against torch for one layer."""
    w, b, x = make(cfg)
    n, kw = cfg["n"], conv_kw(cfg)
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


@settings(max_examples=40)
@given(cfg=conv_nd_configs(n=2))
def test_reference_matches_torch_conv2d(cfg):
    check_reference_conv(cfg)


@settings(max_examples=15)
@given(cfg=conv_nd_configs(n=3, max_length=4, max_channels=3))
def test_reference_matches_torch_conv3d(cfg):
    check_reference_conv(cfg)


@settings(max_examples=20)
@given(cfg=conv_nd_configs(n=1, max_length=8))
def test_reference_nd_is_the_1d_reference_for_n_1(cfg):
    """For n = 1 the N-d reference is the 1-D one (and torch agrees)."""
    w, b, x = make(cfg)
    kw = conv_kw(cfg)
    kw1 = dict(kw, padding=cfg["pads"][0], stride=cfg["stride"][0], dilation=cfg["dilation"][0])
    assert_close(ref_conv_nd(x, w, b, **kw), ref_conv1d(x, w, b, **kw1))
    assert_close(
        ref_conv_nd_matrix(w, cfg["input_size"], **kw),
        ref_conv1d_matrix(w, cfg["input_size"][0], **kw1),
    )
    check_reference_conv(cfg)


def check_reference_transpose(cfg):
    w, b, z = make_t(cfg)
    kw = transpose_kw(cfg)
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


@settings(max_examples=40)
@given(cfg=conv_transpose_nd_configs(n=2))
def test_reference_matches_torch_transpose2d(cfg):
    check_reference_transpose(cfg)


@settings(max_examples=15)
@given(cfg=conv_transpose_nd_configs(n=3, max_length=3, max_channels=3))
def test_reference_matches_torch_transpose3d(cfg):
    check_reference_transpose(cfg)


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

"""Independent loop-by-the-formula reference for toeplitz_conv (DESIGN.md section 2).

Written straight from the formulas, with explicit Python loops, and without importing the
library.  Slow on purpose: it is only ever used on tiny inputs, and being obviously correct is
its only job.

Conventions (PyTorch semantics):

* input ``x`` is ``(C_in, L)``; a batch ``(N, C_in, L)`` is handled by looping over ``N``;
  a 1-D ``(L,)`` input goes with a 1-D ``(K,)`` weight and gives a 1-D output;
* weight ``W`` is ``(C_out, C_in/groups, K)``; a 1-D ``(K,)`` weight is one channel in and out;
* ``y[o, i] = b[o] + sum_{c<G} sum_{k<K} W[o, c, k] * x~[g(o)*G + c, i*s + k*d - p_l]``
  with ``g(o) = o // (C_out/groups)``, ``G = C_in/groups``;
* flattening is row-major over ``(channel, position)``.
"""

from __future__ import annotations

import numpy as np

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")


def resolve_padding(padding, kernel_size, dilation=1):
    """Return ``(p_l, p_r)`` for an int, a pair, ``"valid"`` or ``"same"``."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            total = dilation * (kernel_size - 1)
            left = total // 2
            return left, total - left
        raise ValueError(padding)
    if isinstance(padding, (tuple, list)):
        p_l, p_r = padding
        return int(p_l), int(p_r)
    return int(padding), int(padding)


def ref_output_length(length, kernel_size, stride=1, padding=0, dilation=1):
    p_l, p_r = resolve_padding(padding, kernel_size, dilation)
    return (length + p_l + p_r - dilation * (kernel_size - 1) - 1) // stride + 1


def src(j, length, mode):
    """Source index in ``[0, length)`` of padded index ``j``, or ``None`` for a zero."""
    if 0 <= j < length:
        return j
    if mode == "zeros":
        return None
    if mode == "circular":
        return j % length
    if mode == "replicate":
        return 0 if j < 0 else length - 1
    if mode == "reflect":
        # Mirror about the edge sample without repeating it (needs p < L).
        r = -j if j < 0 else 2 * (length - 1) - j
        assert 0 <= r < length, "reflect padding needs p < L"
        return r
    raise ValueError(mode)


def ref_padded(x, p_l, p_r, mode="zeros"):
    """Padded signal ``x~`` of shape ``(C, p_l + L + p_r)``; column ``j + p_l`` is ``x~[:, j]``."""
    x = np.asarray(x)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None, :]
    n_ch, length = x.shape
    out = np.zeros((n_ch, p_l + length + p_r), dtype=x.dtype)
    for c in range(n_ch):
        for j in range(-p_l, length + p_r):
            s = src(j, length, mode)
            if s is not None:
                out[c, j + p_l] = x[c, s]
    return out[0] if squeeze else out


def _as_weight3(weight):
    weight = np.asarray(weight)
    if weight.ndim == 1:
        return weight[None, None, :]
    return weight


def _result_dtype(*arrays):
    dt = np.result_type(*[np.asarray(a) for a in arrays if a is not None])
    if not (np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.complexfloating)):
        dt = np.dtype(np.float64)
    return dt


def ref_conv1d_matrix(
    weight, length, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """Dense ``M`` of shape ``(C_out*L_out, C_in*L)`` built entry by entry with ``+=``."""
    w = _as_weight3(weight)
    c_out, g_in, k_size = w.shape
    c_in = g_in * groups
    p_l, p_r = resolve_padding(padding, k_size, dilation)
    l_out = (length + p_l + p_r - dilation * (k_size - 1) - 1) // stride + 1
    assert l_out >= 1
    out_per_group = c_out // groups
    m = np.zeros((c_out * l_out, c_in * length), dtype=_result_dtype(w))
    for o in range(c_out):
        g = o // out_per_group
        for i in range(l_out):
            for c in range(g_in):
                for k in range(k_size):
                    s = src(i * stride + k * dilation - p_l, length, padding_mode)
                    if s is None:
                        continue
                    m[o * l_out + i, (g * g_in + c) * length + s] += w[o, c, k]
    return m


def ref_conv1d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """Loop over ``y[o, i] = b[o] + sum_c sum_k W[o, c, k] x~[g(o)G + c, i s + k d - p_l]``."""
    x = np.asarray(x)
    if x.ndim == 3:
        return np.stack(
            [
                ref_conv1d(xb, weight, bias, stride, padding, dilation, groups, padding_mode)
                for xb in x
            ]
        )
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None, :]
    w = _as_weight3(weight)
    c_out, g_in, k_size = w.shape
    length = x.shape[1]
    assert x.shape[0] == g_in * groups
    p_l, p_r = resolve_padding(padding, k_size, dilation)
    l_out = (length + p_l + p_r - dilation * (k_size - 1) - 1) // stride + 1
    assert l_out >= 1
    out_per_group = c_out // groups
    y = np.zeros((c_out, l_out), dtype=_result_dtype(x, w, bias))
    for o in range(c_out):
        g = o // out_per_group
        for i in range(l_out):
            acc = 0
            if bias is not None:
                acc += np.asarray(bias)[o]
            for c in range(g_in):
                for k in range(k_size):
                    s = src(i * stride + k * dilation - p_l, length, padding_mode)
                    if s is not None:
                        acc += w[o, c, k] * x[g * g_in + c, s]
            y[o, i] = acc
    return y[0] if squeeze else y


def ref_unfold(x, kernel_size, stride=1, padding=0, dilation=1, padding_mode="zeros"):
    """Patch matrix ``U[c*K + k, i] = x~[c, i*s + k*d - p_l]``; ``(N, C, L)`` loops over N."""
    x = np.asarray(x)
    if x.ndim == 3:
        return np.stack(
            [ref_unfold(xb, kernel_size, stride, padding, dilation, padding_mode) for xb in x]
        )
    if x.ndim == 1:
        x = x[None, :]
    n_ch, length = x.shape
    k_size = kernel_size
    p_l, p_r = resolve_padding(padding, k_size, dilation)
    l_out = (length + p_l + p_r - dilation * (k_size - 1) - 1) // stride + 1
    assert l_out >= 1
    u = np.zeros((n_ch * k_size, l_out), dtype=x.dtype)
    for c in range(n_ch):
        for k in range(k_size):
            for i in range(l_out):
                s = src(i * stride + k * dilation - p_l, length, padding_mode)
                if s is not None:
                    u[c * k_size + k, i] = x[c, s]
    return u


def ref_conv_transpose_length(
    length_z, kernel_size, stride=1, padding=0, output_padding=0, dilation=1
):
    p_l, p_r = resolve_padding(padding, kernel_size, dilation)
    return (length_z - 1) * stride - p_l - p_r + dilation * (kernel_size - 1) + output_padding + 1


def ref_conv_transpose1d(
    z, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Scatter: ``out[g*G_out + c, i*s + k*d - p_l] += W[o, c, k] * z[o, i]`` (kept if in range).

    ``weight`` is ``(C_in_t, C_out_t/groups, K)`` (torch's layout for conv_transpose1d); ``z`` is
    ``(C_in_t, L_z)``; the output has ``C_out_t`` channels and length
    ``(L_z-1)s - p_l - p_r + d(K-1) + q + 1``.
    """
    z = np.asarray(z)
    if z.ndim == 3:
        return np.stack(
            [
                ref_conv_transpose1d(
                    zb, weight, bias, stride, padding, output_padding, groups, dilation
                )
                for zb in z
            ]
        )
    squeeze = z.ndim == 1
    if squeeze:
        z = z[None, :]
    w = _as_weight3(weight)
    c_in_t, g_out, k_size = w.shape
    assert z.shape[0] == c_in_t
    c_out_t = g_out * groups
    in_per_group = c_in_t // groups
    length_z = z.shape[1]
    p_l, _ = resolve_padding(padding, k_size, dilation)
    length = ref_conv_transpose_length(length_z, k_size, stride, padding, output_padding, dilation)
    assert length >= 1
    out = np.zeros((c_out_t, length), dtype=_result_dtype(z, w, bias))
    for o in range(c_in_t):
        g = o // in_per_group
        for i in range(length_z):
            for c in range(g_out):
                for k in range(k_size):
                    pos = i * stride + k * dilation - p_l
                    if 0 <= pos < length:
                        out[g * g_out + c, pos] += w[o, c, k] * z[o, i]
    if bias is not None:
        b = np.asarray(bias)
        for c in range(c_out_t):
            for pos in range(length):
                out[c, pos] += b[c]
    return out[0] if squeeze else out


def ref_conv_transpose1d_matrix(
    weight, length_z, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Dense matrix of the transposed convolution, built column by column from the scatter."""
    w = _as_weight3(weight)
    c_in_t = w.shape[0]
    cols = []
    dt = _result_dtype(w)
    for o in range(c_in_t):
        for i in range(length_z):
            e = np.zeros((c_in_t, length_z), dtype=dt)
            e[o, i] = 1
            cols.append(
                ref_conv_transpose1d(
                    e, w, None, stride, padding, output_padding, groups, dilation
                ).ravel()
            )
    return np.stack(cols, axis=1)


def padding_ok(mode, padding, length, kernel_size, dilation, stride):
    """Inside torch's domain (DESIGN.md section 2): reflect needs p < L, circular p <= L,
    "same" only with stride 1, and a non-empty output."""
    if padding == "same" and stride != 1:
        return False
    p_l, p_r = resolve_padding(padding, kernel_size, dilation)
    if p_l < 0 or p_r < 0:
        return False
    if mode == "reflect" and max(p_l, p_r) >= length:
        return False
    if mode == "circular" and max(p_l, p_r) > length:
        return False
    return ref_output_length(length, kernel_size, stride, padding, dilation) >= 1


def assert_close(actual, expected, rtol=1e-12, atol=1e-12):
    """Same shape, and equal to `rtol`, with `atol` relative to the largest expected value."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)

"""Independent loop-by-the-formula reference for toeplitz_conv (docs/math.md).

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

N spatial axes (section 2b, the ``*_nd`` functions): weight ``(C_out, C_in/groups, K_1..K_n)``,
input ``(C_in, L_1..L_n)``; stride, dilation and padding per axis; padding separable per axis
(``x~[c, j_1..j_n] = x[c, src_1(j_1), ..., src_n(j_n)]``); flattening row-major over
``(channel, L_1, ..., L_n)``.  The 1-D functions stay as they were; for n = 1 the N-d ones
give identical results (checked in ``test_torch_oracle.py``).
"""

from __future__ import annotations

import itertools

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


def ref_conv1d_coo(
    weight,
    length,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    positions=None,
):
    """The matrix of :func:`ref_conv1d_matrix` as a canonical ``scipy.sparse.coo_array``.

    For signals too long for a dense matrix.  Entries are visited in the order of the sum,
    ``(o, i, c, k)``, and the taps that land on one ``(row, column)`` are added one by one in
    tap order (the order the library's builders promise, so the values match bit for bit);
    the result is sorted row-major with no duplicates.  ``positions`` keeps only the first
    ``positions`` output positions of each channel (``L_out`` when ``None``), the rows a
    transposed convolution uses when ``q >= s``.  The matrix dtype is the weight's.
    """
    import scipy.sparse as sp

    w = _as_weight3(weight)
    c_out, g_in, k_size = w.shape
    p_l, _ = resolve_padding(padding, k_size, dilation)
    l_out = ref_output_length(length, k_size, stride, padding, dilation)
    l_out = l_out if positions is None else positions
    out_per_group = c_out // groups
    entries = {}
    for o in range(c_out):
        g = o // out_per_group
        for i in range(l_out):
            for c in range(g_in):
                for k in range(k_size):
                    s = src(i * stride + k * dilation - p_l, length, padding_mode)
                    if s is None:
                        continue
                    key = (o * l_out + i, (g * g_in + c) * length + s)
                    entries[key] = entries[key] + w[o, c, k] if key in entries else w[o, c, k]
    keys = sorted(entries)
    row = np.array([r for r, _ in keys], dtype=np.int64)
    col = np.array([c for _, c in keys], dtype=np.int64)
    data = np.array([entries[key] for key in keys], dtype=w.dtype)
    coo = sp.coo_array((data, (row, col)), shape=(c_out * l_out, groups * g_in * length))
    coo.has_canonical_format = True
    return coo


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
    """Inside torch's domain (docs/math.md): reflect needs p < L, circular p <= L,
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


# =========================================================================== N spatial axes
# docs/math.md, N axes: the same map on every spatial axis.  Index tuples run row-major
# (``itertools.product`` order), which is ``x.reshape(-1)`` of one sample ``(C, L_1..L_n)``.


def as_axes(value, n, name="value"):
    """An int (every axis) or a sequence of ``n`` ints -> a tuple of ``n`` ints."""
    if isinstance(value, (tuple, list)):
        assert len(value) == n, (name, value, n)
        return tuple(int(v) for v in value)
    return (int(value),) * n


def resolve_padding_nd(padding, kernel_size, dilation=1):
    """Per-axis ``((p_l, p_r), ...)`` for every padding form of docs/math.md, N axes.

    ``padding``: an int (every axis, both sides), ``"same"``/``"valid"`` (every axis), or an
    n-tuple whose items are an int (both sides) or a ``(left, right)`` pair.  For n = 1 the
    1-D forms also hold: a ``(p_l, p_r)`` pair of ints and ``(p,)``.
    """
    kernel_size = tuple(kernel_size)
    n = len(kernel_size)
    dilation = as_axes(dilation, n, "dilation")
    if isinstance(padding, str) or not isinstance(padding, (tuple, list)):
        return tuple(
            resolve_padding(padding, k, d) for k, d in zip(kernel_size, dilation, strict=True)
        )
    if n == 1 and len(padding) == 2 and all(not isinstance(p, (tuple, list)) for p in padding):
        return (resolve_padding(tuple(padding), kernel_size[0], dilation[0]),)
    assert len(padding) == n, (padding, n)
    return tuple(
        resolve_padding(p, k, d) for p, k, d in zip(padding, kernel_size, dilation, strict=True)
    )


def ref_output_size(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """``L_out,a = floor((L_a + p_a,l + p_a,r - d_a(K_a-1) - 1) / s_a) + 1`` per axis."""
    kernel_size = tuple(kernel_size)
    n = len(kernel_size)
    input_size = as_axes(input_size, n, "input_size")
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    pads = resolve_padding_nd(padding, kernel_size, dilation)
    return tuple(
        (length + p_l + p_r - d * (k - 1) - 1) // s + 1
        for length, k, s, d, (p_l, p_r) in zip(
            input_size, kernel_size, stride, dilation, pads, strict=True
        )
    )


def ref_conv_transpose_size(
    input_size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1
):
    """``L'_a = (L_a - 1)s_a - p_a,l - p_a,r + d_a(K_a-1) + q_a + 1`` per axis."""
    kernel_size = tuple(kernel_size)
    n = len(kernel_size)
    input_size = as_axes(input_size, n, "input_size")
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    output_padding = as_axes(output_padding, n)
    pads = resolve_padding_nd(padding, kernel_size, dilation)
    return tuple(
        (length - 1) * s - p_l - p_r + d * (k - 1) + q + 1
        for length, k, s, d, q, (p_l, p_r) in zip(
            input_size, kernel_size, stride, dilation, output_padding, pads, strict=True
        )
    )


def padding_ok_nd(mode, padding, input_size, kernel_size, dilation=1, stride=1):
    """Inside torch's domain on every axis (see :func:`padding_ok`)."""
    kernel_size = tuple(kernel_size)
    n = len(kernel_size)
    input_size = as_axes(input_size, n)
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    if padding == "same" and any(s != 1 for s in stride):
        return False
    pads = resolve_padding_nd(padding, kernel_size, dilation)
    return all(
        padding_ok(mode, pad, length, k, d, s)
        for pad, length, k, d, s in zip(
            pads, input_size, kernel_size, dilation, stride, strict=True
        )
    )


def _as_weight_nd(weight, n):
    """``(C_out, G, K_1..K_n)``; a weight with only the ``n`` kernel axes is one channel."""
    weight = np.asarray(weight)
    if weight.ndim == n:
        return weight[None, None]
    assert weight.ndim == n + 2, (weight.shape, n)
    return weight


def ref_padded_nd(x, pads, mode="zeros"):
    """``x~`` of one sample ``(C, L_1..L_n)``, shape ``(C, p_1,l + L_1 + p_1,r, ...)``.

    ``x~[c, j_1..j_n] = x[c, src_1(j_1), ..., src_n(j_n)]``, zero if any axis says "nothing";
    entry ``(c, j_1 + p_1,l, ...)`` holds ``x~[c, j_1, ...]``.
    """
    x = np.asarray(x)
    sizes = x.shape[1:]
    out_shape = (
        x.shape[0],
        *tuple(p_l + s + p_r for s, (p_l, p_r) in zip(sizes, pads, strict=True)),
    )
    out = np.zeros(out_shape, dtype=x.dtype)
    for jj in itertools.product(
        *(range(-p_l, s + p_r) for s, (p_l, p_r) in zip(sizes, pads, strict=True))
    ):
        srcs = tuple(src(j, s, mode) for j, s in zip(jj, sizes, strict=True))
        if any(s is None for s in srcs):
            continue
        out[(slice(None), *tuple(j + p_l for j, (p_l, _) in zip(jj, pads, strict=True)))] = x[
            (slice(None), *srcs)
        ]
    return out


def ref_conv_nd_matrix(
    weight, input_size, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """Dense ``M`` of shape ``(C_out*prod(S_out), C_in*prod(S))`` built entry by entry.

    ``M[(o, i_1..i_n), (g(o)G + c, src_1(i_1 s_1 + k_1 d_1 - p_1,l), ...)] += W[o, c, k_1..k_n]``
    (a ``+=``: reflect/circular may fold several taps onto one column).
    """
    input_size = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,)
    n = len(input_size)
    w = _as_weight_nd(weight, n)
    c_out, g_in = w.shape[:2]
    ks = w.shape[2:]
    c_in = g_in * groups
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    pads = resolve_padding_nd(padding, ks, dilation)
    out_size = ref_output_size(input_size, ks, stride, padding, dilation)
    assert min(out_size) >= 1, out_size
    n_in, n_out = int(np.prod(input_size)), int(np.prod(out_size))
    per = c_out // groups
    m = np.zeros((c_out * n_out, c_in * n_in), dtype=_result_dtype(w))
    for o in range(c_out):
        g = o // per
        for r, ii in enumerate(itertools.product(*(range(v) for v in out_size))):
            for kk in itertools.product(*(range(k) for k in ks)):
                srcs = [
                    src(i * s + k * d - p_l, length, padding_mode)
                    for i, k, s, d, (p_l, _), length in zip(
                        ii, kk, stride, dilation, pads, input_size, strict=True
                    )
                ]
                if any(s is None for s in srcs):
                    continue
                flat = int(np.ravel_multi_index(srcs, input_size))
                for c in range(g_in):
                    m[o * n_out + r, (g * g_in + c) * n_in + flat] += w[(o, c, *kk)]
    return m


def ref_conv_nd(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """``y[o, i] = b[o] + sum_{c<G} sum_k W[o, c, k] x~[g(o)G + c, i_a s_a + k_a d_a - p_a]``.

    ``x`` is ``(C_in, L_1..L_n)`` or ``(N, C_in, L_1..L_n)`` with ``n = weight.ndim - 2``.
    """
    w = np.asarray(weight)
    n = w.ndim - 2
    x = np.asarray(x)
    if x.ndim == n + 2:
        return np.stack(
            [ref_conv_nd(xb, w, bias, stride, padding, dilation, groups, padding_mode) for xb in x]
        )
    assert x.ndim == n + 1, (x.shape, w.shape)
    c_out, g_in = w.shape[:2]
    ks = w.shape[2:]
    assert x.shape[0] == g_in * groups
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    pads = resolve_padding_nd(padding, ks, dilation)
    out_size = ref_output_size(x.shape[1:], ks, stride, padding, dilation)
    assert min(out_size) >= 1, out_size
    xp = ref_padded_nd(x, pads, padding_mode)
    per = c_out // groups
    y = np.zeros((c_out, *out_size), dtype=_result_dtype(x, w, bias))
    for o in range(c_out):
        g = o // per
        for ii in itertools.product(*(range(v) for v in out_size)):
            acc = 0 if bias is None else np.asarray(bias)[o]
            for c in range(g_in):
                for kk in itertools.product(*(range(k) for k in ks)):
                    # padded index i s + k d - p_l sits at i s + k d in ``xp``
                    jj = tuple(
                        i * s + k * d for i, k, s, d in zip(ii, kk, stride, dilation, strict=True)
                    )
                    acc = acc + w[(o, c, *kk)] * xp[(g * g_in + c, *jj)]
            y[(o, *ii)] = acc
    return y


def ref_unfold_nd(x, kernel_size, stride=1, padding=0, dilation=1, padding_mode="zeros"):
    """``U[(c, k_1..k_n), (i_1..i_n)] = x~[c, i_a s_a + k_a d_a - p_a]``, rows/columns row-major.

    ``x`` is ``(C, L_1..L_n)`` or ``(N, C, L_1..L_n)`` with ``n = len(kernel_size)``.
    """
    ks = tuple(kernel_size)
    n = len(ks)
    x = np.asarray(x)
    if x.ndim == n + 2:
        return np.stack(
            [ref_unfold_nd(xb, ks, stride, padding, dilation, padding_mode) for xb in x]
        )
    assert x.ndim == n + 1
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    pads = resolve_padding_nd(padding, ks, dilation)
    out_size = ref_output_size(x.shape[1:], ks, stride, padding, dilation)
    assert min(out_size) >= 1, out_size
    n_ch = x.shape[0]
    k_all = int(np.prod(ks))
    u = np.zeros((n_ch * k_all, int(np.prod(out_size))), dtype=x.dtype)
    for c in range(n_ch):
        for rk, kk in enumerate(itertools.product(*(range(k) for k in ks))):
            for col, ii in enumerate(itertools.product(*(range(v) for v in out_size))):
                srcs = [
                    src(i * s + k * d - p_l, length, padding_mode)
                    for i, k, s, d, (p_l, _), length in zip(
                        ii, kk, stride, dilation, pads, x.shape[1:], strict=True
                    )
                ]
                if all(s is not None for s in srcs):
                    u[c * k_all + rk, col] = x[(c, *tuple(srcs))]
    return u


def ref_conv_transpose_nd(
    z, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Scatter: ``out[g*G_out + c, i_a s_a + k_a d_a - p_a,l] += W[o, c, k] z[o, i]``.

    ``weight`` is torch's ``(C_in_t, C_out_t/groups, K_1..K_n)``; ``z`` is ``(C_in_t, *S_z)`` or
    ``(N, C_in_t, *S_z)``; the output has size :func:`ref_conv_transpose_size` (entries that
    fall outside it are dropped, which is what the padding crop means).
    """
    w = np.asarray(weight)
    n = w.ndim - 2
    z = np.asarray(z)
    if z.ndim == n + 2:
        return np.stack(
            [
                ref_conv_transpose_nd(
                    zb, w, bias, stride, padding, output_padding, groups, dilation
                )
                for zb in z
            ]
        )
    assert z.ndim == n + 1
    c_in_t, g_out = w.shape[:2]
    ks = w.shape[2:]
    assert z.shape[0] == c_in_t
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    pads = resolve_padding_nd(padding, ks, dilation)
    size = ref_conv_transpose_size(z.shape[1:], ks, stride, padding, output_padding, dilation)
    assert min(size) >= 1, size
    per = c_in_t // groups
    out = np.zeros((g_out * groups, *size), dtype=_result_dtype(z, w, bias))
    for o in range(c_in_t):
        g = o // per
        for ii in itertools.product(*(range(v) for v in z.shape[1:])):
            for kk in itertools.product(*(range(k) for k in ks)):
                pos = tuple(
                    i * s + k * d - p_l
                    for i, k, s, d, (p_l, _) in zip(ii, kk, stride, dilation, pads, strict=True)
                )
                if all(0 <= p < length for p, length in zip(pos, size, strict=True)):
                    for c in range(g_out):
                        out[(g * g_out + c, *pos)] += w[(o, c, *kk)] * z[(o, *ii)]
    if bias is not None:
        out += np.asarray(bias).reshape((-1,) + (1,) * n)
    return out


def ref_conv_transpose_nd_matrix(
    weight, input_size, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Dense matrix of the transposed convolution, entry by entry from the scatter formula.

    ``Mt[(g*G_out + c, pos), (o, i)] += W[o, c, k]`` with ``pos_a = i_a s_a + k_a d_a - p_a,l``
    inside the output; shape ``(C_out_t*prod(S'), C_in_t*prod(S_z))``.
    """
    input_size = tuple(input_size)
    n = len(input_size)
    w = _as_weight_nd(weight, n)
    c_in_t, g_out = w.shape[:2]
    ks = w.shape[2:]
    stride, dilation = as_axes(stride, n), as_axes(dilation, n)
    pads = resolve_padding_nd(padding, ks, dilation)
    size = ref_conv_transpose_size(input_size, ks, stride, padding, output_padding, dilation)
    assert min(size) >= 1, size
    n_in, n_out = int(np.prod(input_size)), int(np.prod(size))
    per = c_in_t // groups
    m = np.zeros((g_out * groups * n_out, c_in_t * n_in), dtype=_result_dtype(w))
    for o in range(c_in_t):
        g = o // per
        for col, ii in enumerate(itertools.product(*(range(v) for v in input_size))):
            for kk in itertools.product(*(range(k) for k in ks)):
                pos = tuple(
                    i * s + k * d - p_l
                    for i, k, s, d, (p_l, _) in zip(ii, kk, stride, dilation, pads, strict=True)
                )
                if not all(0 <= p < length for p, length in zip(pos, size, strict=True)):
                    continue
                flat = int(np.ravel_multi_index(pos, size))
                for c in range(g_out):
                    m[(g * g_out + c) * n_out + flat, o * n_in + col] += w[(o, c, *kk)]
    return m

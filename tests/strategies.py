"""Hypothesis strategies shared by the test modules: the conv1d and the N-d parameter spaces."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from reference import (
    PADDING_MODES,
    padding_ok,
    padding_ok_nd,
    ref_conv_transpose_size,
    resolve_padding_nd,
)


@st.composite
def conv_configs(draw, *, max_stride=5, max_length=10, max_padding=5, max_out_per_group=3):
    """A layer inside torch's domain, as a dict of its parameters plus a batch size and a seed.

    Channels, groups (depthwise included), kernel size, dilation, stride, length, every padding
    mode and every padding form: an int, a ``(left, right)`` pair, ``"same"`` and ``"valid"``.
    """
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, max_out_per_group))
    k = draw(st.integers(1, 5))
    dilation = draw(st.integers(1, 3))
    stride = draw(st.integers(1, max_stride))
    length = draw(st.integers(1, max_length))
    mode = draw(st.sampled_from(PADDING_MODES))
    kind = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    if kind == "int":
        padding = draw(st.integers(0, max_padding))
    elif kind == "pair":
        padding = (draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding)))
    elif kind == "same":
        padding, stride = "same", 1
    else:
        padding = "valid"
    assume(padding_ok(mode, padding, length, k, dilation, stride))
    return dict(
        n=draw(st.integers(1, 3)),
        groups=groups,
        c_in=c_in,
        c_out=c_out,
        k=k,
        dilation=dilation,
        stride=stride,
        length=length,
        mode=mode,
        padding=padding,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


PADDING_FORMS = ("int", "axis_ints", "axis_pairs", "mixed", "same", "valid")


def _min_length(mode, pad, k, d):
    """The shortest axis that keeps ``pad`` inside torch's domain with a non-empty output."""
    p_l, p_r = pad
    need = max(1, d * (k - 1) + 1 - p_l - p_r)
    if mode == "reflect":
        need = max(need, p_l + 1, p_r + 1)
    elif mode == "circular":
        need = max(need, p_l, p_r)
    return need


@st.composite
def conv_nd_configs(
    draw,
    *,
    n=2,
    max_channels=4,
    max_kernel=3,
    max_dilation=2,
    max_stride=3,
    max_padding=2,
    max_length=6,
    forms=PADDING_FORMS,
    modes=PADDING_MODES,
):
    """An n-D layer inside torch's domain, as a dict of its parameters, a batch size and a seed.

    Channels (at most ``max_channels`` in and out), groups (depthwise and channel multipliers
    included), per-axis kernel size, stride, dilation and input size, one padding mode for all
    axes, and every padding form of docs/math.md, N axes: ``"int"`` (every axis), ``"axis_ints"``
    (a tuple of per-axis ints), ``"axis_pairs"`` (a tuple of per-axis ``(left, right)`` pairs),
    ``"mixed"`` (ints and pairs), ``"same"`` (stride 1) and ``"valid"``.  The input size is drawn
    after the padding, from the lengths that keep every axis valid (no rejection sampling).

    Keys: ``n, groups, c_in, c_out, kernel_size, stride, dilation, input_size, mode, padding,
    pads`` (the resolved per-axis pairs), ``form``, ``batch``, ``seed``.
    """
    groups = draw(st.sampled_from([g for g in (1, 2, 3, 4) if g <= max_channels]))
    c_in = groups * draw(st.integers(1, max(1, max_channels // groups)))
    c_out = groups * draw(st.integers(1, max(1, max_channels // groups)))
    ks = tuple(draw(st.integers(1, max_kernel)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, max_dilation)) for _ in range(n))
    form = draw(st.sampled_from(forms))
    mode = draw(st.sampled_from(modes))
    pad_int = st.integers(0, max_padding)
    pair = st.tuples(pad_int, pad_int)
    if form == "same":
        stride = (1,) * n
    else:
        stride = tuple(draw(st.integers(1, max_stride)) for _ in range(n))
    if form == "int":
        padding = draw(pad_int)
    elif form == "axis_ints":
        padding = tuple(draw(pad_int) for _ in range(n))
    elif form == "axis_pairs":
        padding = tuple(draw(pair) for _ in range(n))
    elif form == "mixed":
        padding = tuple(draw(st.one_of(pad_int, pair)) for _ in range(n))
        if n >= 2 and all(isinstance(p, int) for p in padding):
            padding = (draw(pair), *padding[1:])
    else:
        padding = form
    pads = resolve_padding_nd(padding, ks, dilation)
    input_size = []
    for k, d, pad in zip(ks, dilation, pads, strict=True):
        lo = _min_length(mode, pad, k, d)
        assume(lo <= max_length)
        input_size.append(draw(st.integers(lo, max_length)))
    input_size = tuple(input_size)
    assert padding_ok_nd(mode, padding, input_size, ks, dilation, stride)
    return dict(
        n=n,
        groups=groups,
        c_in=c_in,
        c_out=c_out,
        kernel_size=ks,
        stride=stride,
        dilation=dilation,
        input_size=input_size,
        mode=mode,
        padding=padding,
        pads=pads,
        form=form,
        batch=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@st.composite
def conv_transpose_nd_configs(
    draw,
    *,
    n=2,
    max_channels=4,
    max_kernel=3,
    max_dilation=2,
    max_stride=3,
    max_length=4,
    pairs=True,
):
    """An n-D transposed convolution inside torch's domain (``0 <= q_a < max(s_a, d_a)``).

    Padding: an int, per-axis ints, or (``pairs=True``, our extension) per-axis pairs.
    Keys: ``n, groups, c_in_t, c_out_t, kernel_size, stride, dilation, output_padding,
    padding, pads, input_size`` (of ``z``), ``size`` (of the output), ``batch``, ``seed``.
    """
    groups = draw(st.sampled_from([g for g in (1, 2, 3, 4) if g <= max_channels]))
    c_in_t = groups * draw(st.integers(1, max(1, max_channels // groups)))
    c_out_t = groups * draw(st.integers(1, max(1, max_channels // groups)))
    ks = tuple(draw(st.integers(1, max_kernel)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, max_dilation)) for _ in range(n))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(n))
    q = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    input_size = tuple(draw(st.integers(1, max_length)) for _ in range(n))
    kinds = ["int", "axis_ints"] + (["axis_pairs"] if pairs else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        padding = draw(st.integers(0, 2))
    elif kind == "axis_ints":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
    else:
        padding = tuple(draw(st.tuples(st.integers(0, 2), st.integers(0, 2))) for _ in range(n))
    pads = resolve_padding_nd(padding, ks, dilation)
    size = ref_conv_transpose_size(input_size, ks, stride, padding, q, dilation)
    assume(min(size) >= 1)
    return dict(
        n=n,
        groups=groups,
        c_in_t=c_in_t,
        c_out_t=c_out_t,
        kernel_size=ks,
        stride=stride,
        dilation=dilation,
        output_padding=q,
        padding=padding,
        pads=pads,
        input_size=input_size,
        size=size,
        batch=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def conv_kwargs(cfg):
    """The keyword arguments of the layer a :func:`conv_nd_configs` example draws."""
    return {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")} | {
        "padding_mode": cfg["mode"]
    }


def transpose_kwargs(cfg):
    """The keyword arguments of the layer a :func:`conv_transpose_nd_configs` example draws."""
    return {k: cfg[k] for k in ("stride", "padding", "output_padding", "groups", "dilation")}


def conv_geometries(cfg):
    """The per-axis ``ConvGeometry`` of a :func:`conv_nd_configs` example."""
    from toeplitz_conv._geometry import conv_geometry

    return tuple(
        conv_geometry(L, k, stride=s, padding=p, dilation=d, padding_mode=cfg["mode"])
        for L, k, s, p, d in zip(
            cfg["input_size"],
            cfg["kernel_size"],
            cfg["stride"],
            cfg["pads"],
            cfg["dilation"],
            strict=True,
        )
    )

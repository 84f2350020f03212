"""Hypothesis strategies shared by the test modules: the whole conv1d parameter space."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from reference import PADDING_MODES, padding_ok


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

"""Every N-d bad input of issue 9 gets a clear error naming the argument (and the axis) and value.

The messages are the implementers' wording; these tests pin what must be in them -- the
argument's name in backticks, the axis index, the offending value -- with regexes, not whole
sentences.  Every error is raised before anything big is allocated.
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

import toeplitz_conv as tc
from toeplitz_conv import _arrays

W2 = np.ones((4, 2, 3, 3))  # C_out=4, C_in/groups=2, 3x3
W3 = np.ones((2, 1, 2, 2, 2))
S2 = (6, 6)
S3 = (4, 4, 4)


def builders_2d():
    return [
        ("conv2d_matrix", lambda **kw: tc.conv2d_matrix(W2, S2, **kw)),
        ("conv_matrix", lambda **kw: tc.conv_matrix(W2, S2, **kw)),
        ("conv2d", lambda **kw: tc.conv2d(np.ones((2, *S2)), W2, **kw)),
        ("conv2d_operator", lambda **kw: tc.conv2d_operator(W2, S2, **kw)),
    ]


def transpose_builders_2d():
    return [
        ("conv_transpose2d_matrix", lambda **kw: tc.conv_transpose2d_matrix(W2, S2, **kw)),
        ("conv_transpose_matrix", lambda **kw: tc.conv_transpose_matrix(W2, S2, **kw)),
        ("conv_transpose2d", lambda **kw: tc.conv_transpose2d(np.ones((4, *S2)), W2, **kw)),
    ]


NAMES_2D = ["conv2d_matrix", "conv_matrix", "conv2d", "conv2d_operator"]
NAMES_T2D = ["conv_transpose2d_matrix", "conv_transpose_matrix", "conv_transpose2d"]


def call(name, **kw):
    return dict(builders_2d() + transpose_builders_2d())[name](**kw)


# --------------------------------------------------------------------------- per-axis parameters
PER_AXIS_CASES = [
    # kwargs, exception, regexes that must all be found in the message
    ({"stride": (1, 0)}, ValueError, [r"`stride\[1\]`", r">= 1", r"got 0"]),
    ({"stride": (0, 1)}, ValueError, [r"`stride\[0\]`", r"got 0"]),
    ({"stride": (1, -2)}, ValueError, [r"`stride\[1\]`", r"-2"]),
    ({"stride": (1, 1.5)}, TypeError, [r"`stride\[1\]`", r"1\.5"]),
    ({"stride": (True, 1)}, TypeError, [r"`stride\[0\]`", r"True"]),
    ({"stride": 0}, ValueError, [r"`stride", r"got 0"]),
    ({"dilation": (1, 0)}, ValueError, [r"`dilation\[1\]`", r"got 0"]),
    ({"dilation": (2.0, 1)}, TypeError, [r"`dilation\[0\]`", r"2\.0"]),
    ({"stride": (1, 2, 3)}, ValueError, [r"`stride`", r"2", r"\(1, 2, 3\)"]),
    ({"stride": (2,)}, ValueError, [r"`stride`", r"\(2,\)"]),
    ({"dilation": (1, 1, 1)}, ValueError, [r"`dilation`", r"\(1, 1, 1\)"]),
    ({"padding": (1, -1)}, ValueError, [r"`padding\[1\]", r"-1"]),
    ({"padding": ((1, 0), (0, -2))}, ValueError, [r"`padding\[1\]", r"-2"]),
    ({"padding": ((1, 0, 2), 1)}, ValueError, [r"`padding\[0\]", r"\(1, 0, 2\)"]),
    ({"padding": (1, 2, 3)}, ValueError, [r"`padding`", r"\(1, 2, 3\)"]),
    ({"padding": (1.5, 1)}, TypeError, [r"`padding", r"1\.5"]),
    ({"padding": -1}, ValueError, [r"`padding", r"-1"]),
    ({"groups": 0}, ValueError, [r"`groups`", r"got 0"]),
    ({"groups": 3}, ValueError, [r"`groups`", r"3", r"4"]),
]


def assert_message(excinfo, patterns):
    msg = str(excinfo.value)
    for pattern in patterns:
        assert re.search(pattern, msg), f"{pattern!r} not found in {msg!r}"


@pytest.mark.parametrize("name", NAMES_2D)
@pytest.mark.parametrize(("kwargs", "exc", "patterns"), PER_AXIS_CASES, ids=str)
def test_per_axis_parameters(name, kwargs, exc, patterns):
    with pytest.raises(exc) as excinfo:
        call(name, **kwargs)
    assert_message(excinfo, patterns)


TRANSPOSE_CASES = [
    *PER_AXIS_CASES,
    ({"output_padding": (0, -1)}, ValueError, [r"`output_padding\[1\]`", r"-1"]),
    ({"output_padding": (1, 1, 1)}, ValueError, [r"`output_padding`", r"\(1, 1, 1\)"]),
    # q_a < max(s_a, d_a) on every axis: axis 1 has stride 1, dilation 1
    ({"stride": (2, 1), "output_padding": (1, 1)}, ValueError, [r"`output_padding\[1\]`", r"1"]),
    ({"stride": 2, "output_padding": (0, 2)}, ValueError, [r"`output_padding\[1\]`", r"2"]),
    ({"dilation": (1, 3), "output_padding": (1, 0)}, ValueError, [r"`output_padding\[0\]`"]),
]


@pytest.mark.parametrize("name", NAMES_T2D)
@pytest.mark.parametrize(("kwargs", "exc", "patterns"), TRANSPOSE_CASES, ids=str)
def test_per_axis_parameters_transpose(name, kwargs, exc, patterns):
    with pytest.raises(exc) as excinfo:
        call(name, **kwargs)
    assert_message(excinfo, patterns)


def test_output_padding_at_torch_limit_is_allowed():
    # q_a = max(s_a, d_a) - 1 on each axis (torch allows it)
    m = tc.conv_transpose2d_matrix(
        W2, (3, 3), stride=(2, 1), dilation=(1, 3), output_padding=(1, 2)
    )
    assert m.shape[1] == 4 * 9


@pytest.mark.parametrize("name", NAMES_2D + NAMES_T2D)
def test_padding_strings(name):
    if name in NAMES_T2D:
        with pytest.raises((TypeError, ValueError)) as excinfo:
            call(name, padding="same")
        assert_message(excinfo, [r"`padding`"])
        return
    with pytest.raises(ValueError) as excinfo:
        call(name, padding="full")
    assert_message(excinfo, [r"`padding`", r"'full'", r"same", r"valid"])
    with pytest.raises(ValueError) as excinfo:
        call(name, padding="same", stride=(1, 2))
    assert_message(excinfo, [r"same", r"`?stride"])


@pytest.mark.parametrize("name", NAMES_2D)
def test_padding_mode_and_format(name):
    with pytest.raises(ValueError) as excinfo:
        call(name, padding_mode="mirror")
    assert_message(excinfo, [r"`padding_mode`", r"'mirror'", r"reflect"])
    if name.endswith("matrix"):
        with pytest.raises(ValueError) as excinfo:
            call(name, format="lil")
        assert_message(excinfo, [r"`format`", r"'lil'"])


# --------------------------------------------------------------------------- sizes and weights
@pytest.mark.parametrize(
    ("name", "size", "exc", "patterns"),
    [
        ("conv2d_matrix", (6, 0), ValueError, [r"`input_size\[1\]`", r"got 0"]),
        ("conv2d_matrix", (-1, 6), ValueError, [r"`input_size\[0\]`", r"-1"]),
        ("conv2d_matrix", (6, 6.0), TypeError, [r"`input_size\[1\]`", r"6\.0"]),
        ("conv2d_matrix", (6, 6, 6), ValueError, [r"`input_size`", r"\(6, 6, 6\)"]),
        # the generic builder may blame either side of the disagreement
        ("conv_matrix", (6, 6, 6), ValueError, [r"`input_size`|`weight`", r"\(6, 6, 6\)|4 dim"]),
        ("conv_matrix", (6,), ValueError, [r"`input_size`|`weight`", r"\(6,\)|4 dim"]),
        ("conv2d_matrix", 0, ValueError, [r"`input_size", r"0"]),
        ("conv_transpose2d_matrix", (6, 6, 6), ValueError, [r"`input_size`", r"\(6, 6, 6\)"]),
        ("conv_transpose2d_matrix", (0, 6), ValueError, [r"`input_size\[0\]`", r"0"]),
    ],
    ids=str,
)
def test_bad_input_size(name, size, exc, patterns):
    with pytest.raises(exc) as excinfo:
        getattr(tc, name)(W2, size)
    assert_message(excinfo, patterns)


@pytest.mark.parametrize(
    ("build", "weight", "size"),
    [
        (tc.conv_matrix, np.ones((1, 1, 2, 2, 2, 2)), (4, 4, 4, 4)),  # 4 spatial axes
        (tc.conv_matrix, np.ones((1, 1, 2, 2, 2, 2, 2)), (4, 4, 4, 4, 4)),  # 5
        (tc.conv_matrix, np.ones((2, 3)), 5),  # 0 spatial axes with a 1-D size
        (tc.conv_matrix, np.ones(()), 5),  # a scalar
        (tc.conv2d_matrix, np.ones((1, 1, 3)), (4, 4)),  # 1 spatial axis for conv2d
        (tc.conv2d_matrix, np.ones((1, 1, 2, 2, 2)), (4, 4)),  # 3 for conv2d
        (tc.conv3d_matrix, np.ones((1, 1, 2, 2)), (4, 4, 4)),  # 2 for conv3d
        (tc.conv_transpose_matrix, np.ones((1, 1, 2, 2, 2, 2)), (4, 4, 4, 4)),
        (tc.conv_transpose3d_matrix, np.ones((1, 1, 2, 2)), (4, 4, 4)),
    ],
    ids=lambda v: str(getattr(v, "shape", v if not callable(v) else v.__name__)),
)
def test_weight_dimension(build, weight, size):
    with pytest.raises(ValueError) as excinfo:
        build(weight, size)
    assert_message(excinfo, [r"`weight`", re.escape(str(weight.shape))])


def test_weight_empty_or_not_numbers():
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d_matrix(np.ones((2, 1, 3, 0)), (5, 5))
    assert_message(excinfo, [r"`weight`", r"empty|\(2, 1, 3, 0\)"])
    with pytest.raises(TypeError) as excinfo:
        tc.conv2d_matrix(np.array([["a", "b"], ["c", "d"]]), (5, 5))
    assert_message(excinfo, [r"`weight`"])


# --------------------------------------------------------------------------- domain, per axis
def test_reflect_beyond_an_axis():
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d_matrix(W2, (6, 2), padding=2, padding_mode="reflect")
    assert_message(excinfo, [r"reflect", r"\[1\]|axis 1", r"2"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d_matrix(W2, (3, 6), padding=((0, 3), 1), padding_mode="reflect")
    assert_message(excinfo, [r"reflect", r"\[0\]|axis 0", r"3"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv3d_matrix(W3, (4, 4, 2), padding=(0, 0, 2), padding_mode="reflect")
    assert_message(excinfo, [r"reflect", r"\[2\]|axis 2"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d(np.ones((2, 6, 2)), W2, padding=2, padding_mode="reflect")
    assert_message(excinfo, [r"reflect"])
    with pytest.raises(ValueError) as excinfo:
        tc.unfold(np.ones((1, 6, 2)), (3, 3), padding=2, padding_mode="reflect")
    assert_message(excinfo, [r"reflect"])
    # at torch's limit (p = L - 1) it is allowed
    assert tc.conv2d_matrix(W2, (6, 2), padding=(2, 1), padding_mode="reflect").shape[1] == 24


def test_circular_beyond_an_axis():
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d_matrix(W2, (6, 3), padding=(1, 4), padding_mode="circular")
    assert_message(excinfo, [r"circular", r"\[1\]|axis 1", r"4"])
    # p = L is allowed
    assert tc.conv2d_matrix(W2, (6, 3), padding=(1, 3), padding_mode="circular").shape[1] == 36


def test_empty_output_on_one_axis():
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d_matrix(np.ones((1, 1, 3, 4)), (6, 2))
    assert_message(excinfo, [r"empty", r"\[1\]|axis 1"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d_matrix(np.ones((1, 1, 3, 3)), (6, 6), dilation=(3, 1))
    assert_message(excinfo, [r"empty", r"\[0\]|axis 0"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv3d(np.ones((1, 4, 4, 1)), W3[:1])
    assert_message(excinfo, [r"empty"])
    with pytest.raises(ValueError) as excinfo:
        tc.output_size((2, 4), (3, 3))
    assert_message(excinfo, [r"empty"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv_transpose2d_matrix(np.ones((1, 1, 3, 3)), (4, 1), padding=(0, 2))
    assert_message(excinfo, [r"empty"])


# --------------------------------------------------------------------------- memory
def test_dense_too_large_is_refused_before_allocating():
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as excinfo:
            tc.conv2d_matrix(np.ones((1, 1, 3, 3)), (10**4, 10**4), format="dense")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_message(excinfo, [r"dense", r"[\d,.]+ [GTP]iB"])
    assert peak < 50 * 2**20, peak


def test_sparse_too_large_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(_arrays, "_physical_memory", lambda: 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as excinfo:
            tc.conv2d_matrix(np.ones((16, 16, 3, 3)), (100, 100))  # ~23M nonzeros
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_message(excinfo, [r"[\d,.]+ [GMTP]iB"])
    assert peak < 50 * 2**20, peak
    with pytest.raises(ValueError):
        tc.conv3d_matrix(np.ones((8, 8, 3, 3, 3)), (20, 20, 20))


def test_unfold_too_large_is_refused_before_allocating():
    x = np.ones((1, 3000, 3000))
    with pytest.raises(ValueError) as excinfo:
        tc.unfold(x, (1000, 1000), padding=500)
    assert_message(excinfo, [r"[\d,.]+ [GTP]iB"])


# --------------------------------------------------------------------------- functional inputs
def test_forward_input_shapes():
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d(np.ones((6, 6)), W2)  # (H, W): no channel axis
    assert_message(excinfo, [r"`x`", r"\(6, 6\)"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d(np.ones((1, 1, 2, 6, 6)), W2)
    assert_message(excinfo, [r"`x`"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d(np.ones((3, 6, 6)), W2)  # 3 channels, the weight wants 2
    assert_message(excinfo, [r"`x`", r"3", r"2"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv3d(np.ones((2, 4, 4, 4)), W3)  # 2 channels, the weight wants 1
    assert_message(excinfo, [r"`x`", r"2", r"1"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv_transpose2d(np.ones((2, 6, 6)), W2)  # the transpose wants 4
    assert_message(excinfo, [r"`x`", r"2", r"4"])
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d(np.ones((2, 6, 6)), W2, np.ones(3))
    assert_message(excinfo, [r"`bias`", r"\(4,\)|4"])
    with pytest.raises(TypeError) as excinfo:
        tc.conv2d(np.full((2, 6, 6), "a"), W2)
    assert_message(excinfo, [r"`x`"])


def test_unfold_errors():
    with pytest.raises(ValueError) as excinfo:
        tc.unfold(np.ones((1, 5, 5)), (2, 0))
    assert_message(excinfo, [r"`kernel_size\[1\]`", r"got 0"])
    with pytest.raises(ValueError) as excinfo:
        tc.unfold(np.ones((1, 5, 5)), (2, 2), stride=(1, 0))
    assert_message(excinfo, [r"`stride\[1\]`", r"got 0"])
    with pytest.raises(ValueError) as excinfo:
        tc.unfold(np.ones(5), (2, 2))  # one axis for a 2-D kernel
    assert_message(excinfo, [r"`x`|`kernel_size`"])
    with pytest.raises(ValueError) as excinfo:
        tc.unfold(np.ones((1, 5, 5)), (2, 2), padding=(1, 1, 1))
    assert_message(excinfo, [r"`padding`", r"\(1, 1, 1\)"])


def test_output_size_and_bias_vector_errors():
    with pytest.raises(ValueError) as excinfo:
        tc.output_size((4, 4), (2, 2, 2))
    assert_message(excinfo, [r"`input_size`|`kernel_size`", r"\(4, 4\)|\(2, 2, 2\)"])
    with pytest.raises(ValueError) as excinfo:
        tc.output_size((4, 4), (2, 2), stride=(1, 0))
    assert_message(excinfo, [r"`stride\[1\]`", r"got 0"])
    with pytest.raises(ValueError) as excinfo:
        tc.bias_vector(np.ones(2), (3, 0))
    assert_message(excinfo, [r"`output_size|`output_length", r"0"])


def test_rows_out_of_range():
    full = tc.conv2d_matrix(W2, S2)
    n_rows = full.shape[0]
    for rows in [(0, n_rows + 1), (-1, 3), (5, 4)]:
        with pytest.raises(ValueError) as excinfo:
            tc.conv2d_matrix(W2, S2, rows=rows)
        assert_message(excinfo, [r"`rows"])


def test_dia_refused_where_not_compact():
    with pytest.raises(ValueError) as excinfo:
        tc.conv2d_matrix(np.ones((1, 1, 3, 3)), (60, 60), stride=(3, 2), format="dia")
    assert_message(excinfo, [r"`format`", r"dia"])

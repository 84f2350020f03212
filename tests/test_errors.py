"""Every bad input gets a clear error naming the argument (and axis), the value and what is allowed.

One file for 1, 2 and 3 spatial axes: a case that is the same idea on every number of axes ``n``
is parametrised over ``n``.  The messages are the implementers' wording; these tests pin what must
be in them -- the argument's name in backticks, the axis index ``[a]`` of an N-d parameter, the
offending value -- with regexes, and every refusal happens before anything big is allocated.
"""

from __future__ import annotations

import math
import re
import tracemalloc

import numpy as np
import pytest

import toeplitz_conv as tc
from toeplitz_conv import _arrays

# --------------------------------------------------------------------------- shared builders
N_AXES = [1, 2, 3]
#: a bare kernel (K,) * n; for n = 1 it is [1, 2, 3]
KERNEL = {n: np.arange(1.0, 3**n + 1).reshape((3,) * n) for n in N_AXES}
#: C_out=4, C_in/groups=2, kernel 3 on every axis
WEIGHT = {n: np.ones((4, 2) + (3,) * n) for n in N_AXES}
SIZE = {1: 8, 2: (6, 6), 3: (5, 5, 5)}


def spatial(n):
    """The spatial shape of the test input on ``n`` axes, as a tuple."""
    return (SIZE[n],) if n == 1 else SIZE[n]


def size_of(n, length):
    """``length`` on each of ``n`` axes: an int for one axis (``input_length``), else a tuple."""
    return length if n == 1 else (length,) * n


def api(template, n):
    """``tc.conv{n}d_matrix`` and friends from a name template."""
    return getattr(tc, template.format(n=n))


def at(n, axis, value, fill=1):
    """An ``n``-tuple of ``fill`` with ``value`` on ``axis``."""
    items = [fill] * n
    items[axis] = value
    return tuple(items)


def _matrix(template, weight):
    return lambda n, size=None, **kw: api(template, n)(
        weight[n], SIZE[n] if size is None else size, **kw
    )


def _functional(template, channels):
    return lambda n, **kw: api(template, n)(np.ones((channels, *spatial(n))), WEIGHT[n], **kw)


#: every forward entry point, called on n axes with a valid weight (and size or input)
FORWARD = {
    "conv{n}d_matrix(kernel)": _matrix("conv{n}d_matrix", KERNEL),
    "conv{n}d_matrix": _matrix("conv{n}d_matrix", WEIGHT),
    "conv_matrix": _matrix("conv_matrix", WEIGHT),
    "conv{n}d": _functional("conv{n}d", 2),
    "conv{n}d_operator": _matrix("conv{n}d_operator", WEIGHT),
}
#: every transposed entry point, likewise
TRANSPOSE = {
    "conv_transpose{n}d_matrix(kernel)": _matrix("conv_transpose{n}d_matrix", KERNEL),
    "conv_transpose{n}d_matrix": _matrix("conv_transpose{n}d_matrix", WEIGHT),
    "conv_transpose_matrix": _matrix("conv_transpose_matrix", WEIGHT),
    "conv_transpose{n}d": _functional("conv_transpose{n}d", 4),
    "conv_transpose{n}d_operator": _matrix("conv_transpose{n}d_operator", WEIGHT),
}
BUILDERS = {**FORWARD, **TRANSPOSE}
MATRICES = [name for name in BUILDERS if "_matrix" in name]
OPERATORS = [name for name in BUILDERS if name.endswith("_operator")]
FULL_WEIGHT = [name for name in BUILDERS if not name.endswith("(kernel)")]


def call(name, n, **kw):
    return BUILDERS[name](n, **kw)


def assert_message(excinfo, patterns):
    msg = str(excinfo.value)
    for pattern in patterns:
        assert re.search(pattern, msg), f"{pattern!r} not found in {msg!r}"


def raises(exc, patterns, build, *args, **kwargs):
    """``build(*args, **kwargs)`` raises ``exc`` whose message matches every pattern."""
    with pytest.raises(exc) as excinfo:
        build(*args, **kwargs)
    assert_message(excinfo, patterns)
    return excinfo


def cases(make, ns=N_AXES):
    """``(n, *case)`` for every case ``make(n)`` returns, over the numbers of axes ``ns``."""
    return [(n, *case) for n in ns for case in make(n)]


def ids(value):
    """A short test id: arrays by shape, functions by name, the message regexes left out."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype.kind}{value.shape}"
    if isinstance(value, dict):
        return ",".join(f"{k}={ids(v)}" for k, v in value.items())
    if isinstance(value, tuple):
        return f"({','.join(ids(v) for v in value)})"
    if isinstance(value, list):  # the regexes: the test id is long enough without them
        return "msg"
    return getattr(value, "__name__", str(value))


# --------------------------------------------------------------------------- per-axis parameters
#: the same message whatever the number of axes: kwargs, exception, regexes
SCALAR_CASES = [
    ({"stride": 0}, ValueError, [r"`stride` must be an integer >= 1, got 0"]),
    ({"stride": -2}, ValueError, [r"`stride` must be an integer >= 1, got -2"]),
    ({"stride": 1.5}, TypeError, [r"`stride` must be an integer >= 1, got 1.5 of type float"]),
    ({"stride": True}, TypeError, [r"`stride` must be an integer >= 1, got True of type bool"]),
    ({"dilation": 0}, ValueError, [r"`dilation` must be an integer >= 1, got 0"]),
    ({"padding": -1}, ValueError, [r"`padding` must be an integer >= 0, got -1"]),
    ({"groups": 0}, ValueError, [r"`groups` must be an integer >= 1, got 0"]),
]


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("n", N_AXES)
@pytest.mark.parametrize(("kwargs", "exc", "patterns"), SCALAR_CASES, ids=ids)
def test_scalar_parameters(n, name, kwargs, exc, patterns):
    raises(exc, patterns, call, name, n, **kwargs)


def axis_cases(n):
    """Bad ``stride``/``dilation``/``padding`` on ``n`` axes: kwargs, exception, regexes."""
    # a tuple of the wrong length: the message names the parameter, the axes and the value
    wrong = [
        ("stride", tuple(range(1, n + 2)), [str(n)]),
        ("stride", (2,) * (n - 1), []),
        ("dilation", (1,) * (n + 1), []),
    ]
    wrong = [
        ({key: value}, ValueError, [rf"`{key}`", *more, re.escape(str(value))])
        for key, value, more in wrong
    ]
    if n == 1:  # one axis: `padding` is an int or a (left, right) pair; [1] is the right side
        return [
            *wrong,
            ({"padding": 1.0}, TypeError, [r"`padding` must be an int, a \(left, right\) pair"]),
            ({"padding": (1, -1)}, ValueError, [r"`padding\[1\]` must be an integer >= 0, got -1"]),
            ({"padding": (1, 2, 3)}, ValueError, [r"got a sequence of length 3"]),
        ]
    last = n - 1
    return [
        *wrong,
        ({"stride": at(n, last, 0)}, ValueError, [rf"`stride\[{last}\]`", r">= 1", r"got 0"]),
        ({"stride": at(n, 0, 0)}, ValueError, [r"`stride\[0\]`", r"got 0"]),
        ({"stride": at(n, last, -2)}, ValueError, [rf"`stride\[{last}\]`", r"-2"]),
        ({"stride": at(n, last, 1.5)}, TypeError, [rf"`stride\[{last}\]`", r"1\.5"]),
        ({"stride": at(n, 0, True)}, TypeError, [r"`stride\[0\]`", r"True"]),
        ({"dilation": at(n, last, 0)}, ValueError, [rf"`dilation\[{last}\]`", r"got 0"]),
        ({"dilation": at(n, 0, 2.0)}, TypeError, [r"`dilation\[0\]`", r"2\.0"]),
        ({"padding": 1.0}, TypeError, [rf"`padding` must be an int, a tuple of {n} per-axis"]),
        ({"padding": at(n, last, -1)}, ValueError, [rf"`padding\[{last}\]", r"-1"]),
        ({"padding": at(n, last, (0, -2), (1, 0))}, ValueError, [rf"`padding\[{last}\]", r"-2"]),
        ({"padding": at(n, 0, (1, 0, 2))}, ValueError, [r"`padding\[0\]", r"\(1, 0, 2\)"]),
        (
            {"padding": tuple(range(1, n + 2))},
            ValueError,
            [r"`padding`", re.escape(str(tuple(range(1, n + 2))))],
        ),
        ({"padding": at(n, 0, 1.5)}, TypeError, [r"`padding", r"1\.5"]),
    ]


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize(("n", "kwargs", "exc", "patterns"), cases(axis_cases), ids=ids)
def test_per_axis_parameters(n, name, kwargs, exc, patterns):
    raises(exc, patterns, call, name, n, **kwargs)


@pytest.mark.parametrize("name", FULL_WEIGHT)
@pytest.mark.parametrize("n", N_AXES)
def test_groups_must_divide_out_channels(n, name):
    match = r"`groups`=3 must divide the output channels C_out=4"
    raises(ValueError, [match, r"`groups`", r"3", r"4"], call, name, n, groups=3)


@pytest.mark.parametrize("name", MATRICES)
@pytest.mark.parametrize("n", N_AXES)
def test_format(n, name):
    match = r"`format` must be one of 'csr', 'csc', 'coo'.*got 'lil'"
    raises(ValueError, [match], call, name, n, format="lil")


@pytest.mark.parametrize("name", MATRICES + OPERATORS)
@pytest.mark.parametrize("n", N_AXES)
@pytest.mark.parametrize(
    ("dtype", "match"),
    [
        (np.int32, r"`dtype` must be one of float32.*; got int32"),
        ("nonsense", r"`dtype` must be a numpy dtype; got 'nonsense'"),
    ],
)
def test_dtype(n, name, dtype, match):
    raises(TypeError, [match], call, name, n, dtype=dtype)


# --------------------------------------------------------------------------- sizes
def size_cases(n):
    """Bad ``input_length``/``input_size`` for ``n`` axes: size, exception, regexes."""
    if n == 1:
        return [
            (0, ValueError, [r"`input_length` must be an integer >= 1, got 0"]),
            (-3, ValueError, [r"`input_length` must be an integer >= 1, got -3"]),
            (8.0, TypeError, [r"`input_length` must be an integer >= 1, got 8.0"]),
        ]
    last = n - 1
    return [
        (at(n, last, 0, 6), ValueError, [rf"`input_size\[{last}\]`", r"got 0"]),
        (at(n, 0, -1, 6), ValueError, [r"`input_size\[0\]`", r"-1"]),
        (at(n, 0, 0, 6), ValueError, [r"`input_size\[0\]`", r"0"]),
        (at(n, last, 6.0, 6), TypeError, [rf"`input_size\[{last}\]`", r"6\.0"]),
        ((6,) * (n + 1), ValueError, [r"`input_size`", re.escape(str((6,) * (n + 1)))]),
        (0, ValueError, [r"`input_size", r"0"]),
    ]


@pytest.mark.parametrize("name", [name for name in MATRICES + OPERATORS if "{n}" in name])
@pytest.mark.parametrize(("n", "size", "exc", "patterns"), cases(size_cases), ids=ids)
def test_bad_input_size(n, name, size, exc, patterns):
    raises(exc, patterns, BUILDERS[name], n, size)


@pytest.mark.parametrize("build", [tc.conv_matrix, tc.conv_transpose_matrix])
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("extra", [1, -1])
def test_generic_builder_size_disagrees_with_weight(n, build, extra):
    size = (6,) * (n + extra)
    # the generic builder may blame either side of the disagreement
    patterns = [r"`input_size`|`weight`", rf"{re.escape(str(size))}|{n + 2} dim"]
    raises(ValueError, patterns, build, WEIGHT[n], size)


def empty_output_cases(n):
    """Inputs whose output is empty (on one axis): build, args, kwargs, regexes."""
    k = np.ones((1, 1) + (3,) * n)
    if n == 1:
        msg = r"the output would be empty: .* = 0 < 1 for input_length=2, kernel_size=3"
        return [
            (tc.conv1d_matrix, (KERNEL[1], 2), {}, [msg]),
            (
                tc.conv1d_matrix,
                (KERNEL[1], 8),
                {"dilation": 4},
                [r"output would be empty.*dilation=4"],
            ),
            (tc.conv1d, (np.ones((1, 2)), k), {}, [r"empty"]),
            (tc.output_length, (2, 5), {}, [r"the output would be empty"]),
        ]
    last = n - 1
    small = np.ones((1, 1) + (2,) * n)
    short = np.ones((1, 1) + (3,) * last + (4,))  # a kernel longer than the input on axis n-1
    return [
        (
            api("conv{n}d_matrix", n),
            (short, at(n, last, 2, 6)),
            {},
            [r"empty", rf"\[{last}\]|axis {last}"],
        ),
        (
            api("conv{n}d_matrix", n),
            (k, (6,) * n),
            {"dilation": at(n, 0, 3)},
            [r"empty", r"\[0\]|axis 0"],
        ),
        (api("conv{n}d", n), (np.ones((1, *at(n, last, 1, 4))), small), {}, [r"empty"]),
        (tc.output_size, (at(n, 0, 2, 4), (3,) * n), {}, [r"empty"]),
    ]


@pytest.mark.parametrize(
    ("n", "build", "args", "kwargs", "patterns"), cases(empty_output_cases), ids=ids
)
def test_empty_output(n, build, args, kwargs, patterns):
    raises(ValueError, patterns, build, *args, **kwargs)


def test_output_length_of_a_valid_input():
    assert tc.output_length(5, 2) == 4


# --------------------------------------------------------------------------- weights
def weight_cases(n):
    """Bad weights for ``n`` axes: weight, exception, regexes."""
    shape = r"\(C_out, C_in/groups, K\) or" if n == 1 else rf"\(C_out, C_in/groups, K_1, .*K_{n}\)"
    few = np.ones((2,) * n + (3,))  # n + 1 axes: neither a bare kernel nor a full weight
    many = np.ones((1,) * (n + 2) + (3,))
    empty = np.ones((2, 1) + (3,) * (n - 1) + (0,))
    letters = np.array(list("abcdefgh")[: 2**n]).reshape((2,) * n)
    return [
        (few, ValueError, [rf"`weight` must have shape {shape}", re.escape(str(few.shape))]),
        (many, ValueError, [rf"got {n + 3} dimensions with shape {re.escape(str(many.shape))}"]),
        (
            empty,
            ValueError,
            [rf"`weight` must not be empty; got shape {re.escape(str(empty.shape))}"],
        ),
        (letters, TypeError, [r"`weight` must hold numbers.*got dtype <U1"]),
        (np.array(3.0), ValueError, [r"`weight`", r"got 0 dimensions"]),
        (np.array([]), ValueError, [r"`weight` must not be empty" if n == 1 else r"got 1 dim"]),
    ]


@pytest.mark.parametrize(
    "build_template", ["conv{n}d_matrix", "conv_transpose{n}d_matrix", "conv{n}d_operator"]
)
@pytest.mark.parametrize(("n", "weight", "exc", "patterns"), cases(weight_cases), ids=ids)
def test_bad_weight(n, build_template, weight, exc, patterns):
    raises(exc, patterns, api(build_template, n), weight, SIZE[n])


@pytest.mark.parametrize(
    ("build", "weight", "size"),
    [
        (tc.conv_matrix, np.ones((1, 1, 2, 2, 2, 2)), (4, 4, 4, 4)),  # 4 spatial axes
        (tc.conv_matrix, np.ones((1, 1, 2, 2, 2, 2, 2)), (4, 4, 4, 4, 4)),  # 5
        (tc.conv_matrix, np.ones((2, 3)), 5),  # 0 spatial axes with a 1-D size
        (tc.conv_matrix, np.ones(()), 5),  # a scalar
        (tc.conv1d_matrix, np.ones((1, 1, 2, 2)), 4),  # 2 spatial axes for conv1d
        (tc.conv2d_matrix, np.ones((1, 1, 3)), (4, 4)),  # 1 spatial axis for conv2d
        (tc.conv2d_matrix, np.ones((1, 1, 2, 2, 2)), (4, 4)),  # 3 for conv2d
        (tc.conv3d_matrix, np.ones((1, 1, 2, 2)), (4, 4, 4)),  # 2 for conv3d
        (tc.conv_transpose_matrix, np.ones((1, 1, 2, 2, 2, 2)), (4, 4, 4, 4)),
        (tc.conv_transpose1d_matrix, np.ones((1, 1, 2, 2)), 4),
        (tc.conv_transpose3d_matrix, np.ones((1, 1, 2, 2)), (4, 4, 4)),
    ],
    ids=lambda v: str(getattr(v, "shape", v if not callable(v) else v.__name__)),
)
def test_weight_axes_disagree_with_the_builder(build, weight, size):
    raises(ValueError, [r"`weight`", re.escape(str(weight.shape))], build, weight, size)


@pytest.mark.parametrize("n", N_AXES)
def test_nan_in_weight_propagates(n):
    kernel = np.ones((2,) * n)
    kernel[(1,) * n] = np.nan  # the last tap: every row of the matrix holds it once
    M = api("conv{n}d_matrix", n)(kernel.tolist(), size_of(n, 4))
    assert np.isnan(M.data).sum() == 3**n
    assert np.isnan(api("conv{n}d", n)(np.ones((1,) + (4,) * n), kernel[None, None])).all()
    if n == 1:  # a bare kernel and a bare signal
        assert np.isnan(tc.conv1d(np.ones(4), [1.0, np.nan])).all()


def test_int_size_with_a_2d_kernel_says_what_to_pass():
    """Issue 14.8: the message names the readings instead of contradicting itself."""
    with pytest.raises(ValueError, match=r"2-D kernel alone, \(K_1, K_2\), needs `input_size` as"):
        tc.conv_matrix(np.ones((3, 3)), 5)
    assert tc.conv_matrix(np.ones((3, 3)), (5, 5)).shape == (9, 25)


# --------------------------------------------------------------------------- padding rules
@pytest.mark.parametrize("name", list(FORWARD))
@pytest.mark.parametrize("n", N_AXES)
def test_padding_mode_and_strings(n, name):
    modes = r"`padding_mode` must be one of 'zeros', 'reflect', "
    raises(ValueError, [modes, r"'mirror'"], call, name, n, padding_mode="mirror")
    strings = r"`padding` must be one of 'same', 'valid'; got 'full'"
    raises(ValueError, [strings], call, name, n, padding="full")
    if n == 1:
        same = r"`padding`='same' requires `stride`=1.*got stride=2"
        raises(ValueError, [same], call, name, n, padding="same", stride=2)
    else:
        same = rf"`padding`='same' requires `stride\[{n - 1}\]`=1.*got stride=2"
        raises(ValueError, [same], call, name, n, padding="same", stride=at(n, n - 1, 2))


def _beyond(n, weight, size, padding, mode):
    """``conv{n}d_matrix`` with the padding ``mode`` of ``padding``, to call later."""
    return lambda: api("conv{n}d_matrix", n)(weight, size, padding=padding, padding_mode=mode)


BEYOND_CASES = [
    (
        "1-reflect",
        _beyond(1, np.ones(9), 4, 4, "reflect"),
        [r"'reflect' needs padding < input_length.*padding=\(4, 4\).*input_length=4"],
    ),
    (
        "1-reflect-pair",
        _beyond(1, np.ones(9), 4, (0, 5), "reflect"),
        [r"'reflect' needs padding < input_length"],
    ),
    (
        "1-circular",
        _beyond(1, np.ones(9), 4, 5, "circular"),
        [r"'circular' needs padding <= input_length.*padding=\(5, 5\)"],
    ),
    (
        "1-conv1d",
        lambda: tc.conv1d(np.ones((2, 2)), WEIGHT[1], padding=2, padding_mode="reflect"),
        [r"reflect"],
    ),
    (
        "1-unfold",
        lambda: tc.unfold(np.ones(3), 2, padding=3, padding_mode="reflect"),
        [r"'reflect' needs padding < input_length"],
    ),
    (
        "2-reflect",
        _beyond(2, WEIGHT[2], (6, 2), 2, "reflect"),
        [r"reflect", r"\[1\]|axis 1", r"2"],
    ),
    (
        "2-reflect-pair",
        _beyond(2, WEIGHT[2], (3, 6), ((0, 3), 1), "reflect"),
        [r"reflect", r"\[0\]|axis 0", r"3"],
    ),
    (
        "2-circular",
        _beyond(2, WEIGHT[2], (6, 3), (1, 4), "circular"),
        [r"circular", r"\[1\]|axis 1", r"4"],
    ),
    (
        "2-conv2d",
        lambda: tc.conv2d(np.ones((2, 6, 2)), WEIGHT[2], padding=2, padding_mode="reflect"),
        [r"reflect"],
    ),
    (
        "2-unfold",
        lambda: tc.unfold(np.ones((1, 6, 2)), (3, 3), padding=2, padding_mode="reflect"),
        [r"reflect"],
    ),
    (
        "3-reflect",
        _beyond(3, np.ones((2, 1, 2, 2, 2)), (4, 4, 2), (0, 0, 2), "reflect"),
        [r"reflect", r"\[2\]|axis 2"],
    ),
    (
        "3-circular",
        _beyond(3, WEIGHT[3], (5, 5, 3), (0, 1, 4), "circular"),
        [r"circular", r"\[2\]|axis 2", r"4"],
    ),
    (
        "3-conv3d",
        lambda: tc.conv3d(np.ones((2, 5, 5, 2)), WEIGHT[3], padding=2, padding_mode="reflect"),
        [r"reflect"],
    ),
    (
        "3-unfold",
        lambda: tc.unfold(np.ones((1, 5, 5, 2)), (3, 3, 3), padding=2, padding_mode="reflect"),
        [r"reflect"],
    ),
]


@pytest.mark.parametrize(
    ("build", "patterns"), [pytest.param(*c[1:], id=c[0]) for c in BEYOND_CASES]
)
def test_padding_beyond_an_axis(build, patterns):
    raises(ValueError, patterns, build)


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        # at torch's limits: reflect p = L - 1, circular p = L, replicate anything
        pytest.param(_beyond(1, KERNEL[1], 4, 3, "reflect"), (8, 4), id="1-reflect"),
        pytest.param(_beyond(1, KERNEL[1], 4, 4, "circular"), (10, 4), id="1-circular"),
        pytest.param(_beyond(1, KERNEL[1], 4, 50, "replicate"), (102, 4), id="1-replicate"),
        pytest.param(
            _beyond(2, WEIGHT[2], (6, 2), (2, 1), "reflect"), (4 * 8 * 2, 24), id="2-reflect"
        ),
        pytest.param(
            _beyond(2, WEIGHT[2], (6, 3), (1, 3), "circular"), (4 * 6 * 7, 36), id="2-circular"
        ),
        pytest.param(
            _beyond(3, WEIGHT[3], (3, 3, 2), (2, 2, 1), "reflect"),
            (4 * 5 * 5 * 2, 36),
            id="3-reflect",
        ),
        pytest.param(
            _beyond(3, WEIGHT[3], (3, 3, 2), (3, 3, 2), "circular"),
            (4 * 7 * 7 * 4, 36),
            id="3-circular",
        ),
    ],
)
def test_padding_at_torch_limit_is_allowed(build, shape):
    assert build().shape == shape


@pytest.mark.parametrize(
    ("n", "weight", "size", "stride"),
    [
        (1, KERNEL[1], 200, 3),
        (2, np.ones((1, 1, 3, 3)), (60, 60), (3, 2)),
        (3, np.ones((1, 1, 3, 3, 3)), (20, 20, 20), 3),
    ],
)
def test_dia_refused_where_not_compact(n, weight, size, stride):
    patterns = [r"`format`='dia' would store .* diagonals", r"`format`", r"dia"]
    raises(
        ValueError, patterns, api("conv{n}d_matrix", n), weight, size, stride=stride, format="dia"
    )


# ------------------------------------------------------------------------ transposed convolutions
def output_padding_cases(n):
    """Bad ``output_padding`` (alone or against stride and dilation): kwargs, exception, regexes."""
    axis = "" if n == 1 else r"\[0\]"
    range_msg = rf"`output_padding{axis}` must be smaller than max\(stride, dilation\) = 2"
    common = [
        ({"stride": 2, "output_padding": 2}, ValueError, [rf"{range_msg}.*got output_padding=2"]),
        ({"output_padding": -1}, ValueError, [r"`output_padding` must be an integer >= 0, got -1"]),
        (
            {"output_padding": (1,) * (n + 1)},
            ValueError,
            [r"`output_padding`", re.escape(str((1,) * (n + 1)))],
        ),
    ]
    if n == 1:
        return common
    last = n - 1
    return [
        *common,
        (
            {"output_padding": at(n, last, -1, 0)},
            ValueError,
            [rf"`output_padding\[{last}\]`", r"-1"],
        ),
        # q_a < max(s_a, d_a) on every axis: axis n-1 has stride 1, dilation 1
        (
            {"stride": at(n, last, 1, 2), "output_padding": (1,) * n},
            ValueError,
            [rf"`output_padding\[{last}\]`", r"1"],
        ),
        (
            {"stride": 2, "output_padding": at(n, last, 2, 0)},
            ValueError,
            [rf"`output_padding\[{last}\]`", r"2"],
        ),
        (
            {"dilation": at(n, last, 3), "output_padding": at(n, 0, 1, 0)},
            ValueError,
            [r"`output_padding\[0\]`"],
        ),
    ]


@pytest.mark.parametrize("name", list(TRANSPOSE))
@pytest.mark.parametrize(("n", "kwargs", "exc", "patterns"), cases(output_padding_cases), ids=ids)
def test_output_padding(n, name, kwargs, exc, patterns):
    raises(exc, patterns, call, name, n, **kwargs)


@pytest.mark.parametrize(
    ("n", "weight", "size", "kwargs", "shape"),
    [
        (1, KERNEL[1], 4, {"dilation": 3, "output_padding": 2}, (12, 4)),
        (
            2,
            WEIGHT[2],
            (3, 3),
            {"stride": (2, 1), "dilation": (1, 3), "output_padding": (1, 2)},
            (2 * 8 * 11, 4 * 9),
        ),
        (
            3,
            WEIGHT[3],
            (3, 3, 3),
            {"stride": (2, 1, 1), "dilation": (1, 3, 1), "output_padding": (1, 2, 0)},
            (2 * 8 * 11 * 5, 4 * 27),
        ),
    ],
)
def test_output_padding_at_torch_limit_is_allowed(n, weight, size, kwargs, shape):
    # q_a = max(s_a, d_a) - 1 on each axis (torch allows it)
    assert api("conv_transpose{n}d_matrix", n)(weight, size, **kwargs).shape == shape


@pytest.mark.parametrize("name", list(TRANSPOSE))
@pytest.mark.parametrize("n", N_AXES)
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_transpose_padding_string_refused(n, name, padding):
    match = r"`padding` of a transposed convolution must be an int"
    raises(TypeError, [match, r"`padding`"], call, name, n, padding=padding)


@pytest.mark.parametrize("n", N_AXES)
def test_transpose_empty_output(n):
    kernel = np.ones((1, 1) + (3,) * n)
    size = 1 if n == 1 else at(n, n - 1, 1, 4)
    padding = 2 if n == 1 else at(n, n - 1, 2, 0)
    match = r"transposed convolution's output would be empty"
    raises(
        ValueError,
        [match, r"empty"],
        api("conv_transpose{n}d_matrix", n),
        kernel,
        size,
        padding=padding,
    )
    if n == 1:  # a bare kernel too
        raises(ValueError, [match], tc.conv_transpose1d_matrix, KERNEL[1], 1, padding=2)


# --------------------------------------------------------------------------- memory
def _peak_while_refused(build, *args, **kwargs):
    """The ValueError ``build`` raises and the peak traced allocation until then."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as excinfo:
            build(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return excinfo, peak


@pytest.mark.parametrize(
    ("n", "weight", "size"),
    [
        (1, KERNEL[1], 10**7),
        (2, np.ones((1, 1, 3, 3)), (10**4, 10**4)),
        (3, np.ones((1, 1, 3, 3, 3)), (10**3,) * 3),
    ],
)
def test_dense_too_large_is_refused_before_allocating(n, weight, size):
    build = api("conv{n}d_matrix", n)
    excinfo, peak = _peak_while_refused(build, weight, size, format="dense")
    assert_message(
        excinfo, [r"the dense .* matrix would take [\d,.]+ GiB, more than", r"[\d,.]+ [GTP]iB"]
    )
    assert peak < 50 * 2**20, peak


@pytest.mark.parametrize(
    ("n", "weight", "size"),
    [
        (1, np.ones((64, 64, 9)), 10**5),
        (2, np.ones((16, 16, 3, 3)), (100, 100)),  # ~23M nonzeros
        (3, np.ones((8, 8, 3, 3, 3)), (20, 20, 20)),
    ],
)
def test_sparse_too_large_is_refused_before_allocating(monkeypatch, n, weight, size):
    monkeypatch.setattr(_arrays, "_physical_memory", lambda: 2**20)
    excinfo, peak = _peak_while_refused(api("conv{n}d_matrix", n), weight, size)
    assert_message(excinfo, [r"nonzeros would take .* GiB, more than", r"[\d,.]+ [GMTP]iB"])
    assert peak < 50 * 2**20, peak


@pytest.mark.parametrize("n", N_AXES)
def test_memory_hints_fit_the_request(monkeypatch, n):
    """Issue 14.8: a sparse request that does not fit is not told to use a sparse format."""
    monkeypatch.setattr("toeplitz_conv._arrays._physical_memory", lambda: 1000)
    size = {1: 1000, 2: (40, 40), 3: (12, 12, 12)}[n]
    build = api("conv{n}d_matrix", n)
    with pytest.raises(ValueError, match=r"nonzeros would take .* rows=\(r0, r1\)") as sparse:
        build(np.ones((3,) * n), size)
    assert "sparse format" not in str(sparse.value)
    shape = (math.prod(s - 2 for s in np.atleast_1d(size)), math.prod(np.atleast_1d(size)))
    with pytest.raises(
        ValueError, match=rf"dense \({shape[0]}, {shape[1]}\) matrix .*\(format='csr'\)"
    ):
        build(np.ones((3,) * n), size, format="dense")


@pytest.mark.parametrize(
    ("n", "x", "kernel_size", "padding", "shape"),
    [
        (1, (1, 10**7), 100000, 50000, "(100000, 10000001)"),
        (2, (1, 3000, 3000), (1000, 1000), 500, "(1000000, 9006001)"),
        (3, (1, 100, 100, 100), (50, 50, 50), 25, "(125000, 1030301)"),
    ],
)
def test_unfold_too_large_is_refused_before_allocating(n, x, kernel_size, padding, shape):
    msg = rf"the {re.escape(shape)} patch matrix would take [\d,.]+ GiB, more than"
    raises(
        ValueError, [msg, r"[\d,.]+ [GTP]iB"], tc.unfold, np.ones(x), kernel_size, padding=padding
    )


@pytest.mark.parametrize("n", N_AXES)
def test_rows_out_of_range(n):
    build = api("conv{n}d_matrix", n)
    n_rows = build(WEIGHT[n], SIZE[n]).shape[0]
    for rows in [(0, n_rows + 1), (-1, 3), (5, 4)]:
        raises(ValueError, [r"`rows"], build, WEIGHT[n], SIZE[n], rows=rows)


# --------------------------------------------------------------------------- inputs and batches
FORMS = {
    1: r"\(L,\), \(C, L\) or \(N, C, L\)",
    2: r"\(C, H, W\) or \(N, C, H, W\)",
    3: r"\(C, D, H, W\) or \(N, C, D, H, W\)",
}


def input_cases(n):
    """Bad ``x`` for ``conv{n}d``: function, x, weight, kwargs, exception, regexes."""
    sp, w = spatial(n), WEIGHT[n]
    conv, conv_t = api("conv{n}d", n), api("conv_transpose{n}d", n)
    bare = (  # an x without a channel axis
        [r"a 1-D `x` of shape \(8,\) has one channel"]
        if n == 1
        else [rf"`x` must have shape {FORMS[n]}", re.escape(str(sp))]
    )
    weight_1 = np.ones((2, 1) + (2,) * n)  # C_in/groups = 1
    return [
        (
            conv,
            np.ones((2,) + (4,) * n),
            weight_1,
            {},
            ValueError,
            [r"`x` has 2 channels .*expects 1"],
        ),
        *[  # one axis too many, of length 1 or 2
            (conv, np.ones((1, 1, k, *sp)), w, {}, ValueError, [rf"`x` must have shape {FORMS[n]}"])
            for k in (1, 2)
        ],
        (conv, np.ones(sp), w, {}, ValueError, bare),
        (
            conv,
            np.ones((1,) + (0,) * n),
            KERNEL[n],
            {},
            ValueError,
            [r"`x` must have at least one sample"],
        ),
        (conv, np.full((2, *sp), "a"), w, {}, TypeError, [r"`x` must hold numbers"]),
        (conv, np.full(sp, "a"), KERNEL[n], {}, TypeError, [r"`x` must hold numbers"]),
        (
            conv,
            np.ones((3, *sp)),
            w,
            {},
            ValueError,
            [r"`x` has 3 channels .*but the weight expects 2"],
        ),
        (
            conv,
            np.ones((3, *sp)),
            w,
            {"groups": 2},
            ValueError,
            [r"`x` has 3 channels .*but the weight expects 4"],
        ),
        (
            conv_t,
            np.ones((2, *sp)),
            w,
            {},
            ValueError,
            [r"`x` has 2 channels .*but the weight expects 4"],
        ),
        (
            conv,
            np.ones((2, *sp)),
            w,
            {"bias": np.ones(3)},
            ValueError,
            [r"`bias` must have shape \(4,\), one value per output"],
        ),
    ]


@pytest.mark.parametrize(
    ("n", "fn", "x", "weight", "kwargs", "exc", "patterns"), cases(input_cases), ids=ids
)
def test_bad_input(n, fn, x, weight, kwargs, exc, patterns):
    raises(exc, patterns, fn, x, weight, **kwargs)


@pytest.mark.parametrize("n", N_AXES)
def test_bias_vector_and_output_size_errors(n):
    raises(
        ValueError,
        [r"`bias` must have shape \(C_out,\); got shape \(2, 2\)"],
        tc.bias_vector,
        np.ones((2, 2)),
        size_of(n, 3),
    )
    if n == 1:
        match = r"`output_length` must be an integer >= 1, got 0"
        raises(ValueError, [match], tc.bias_vector, np.ones(2), 0)
        raises(
            ValueError,
            [r"`stride` must be an integer >= 1, got 0"],
            tc.output_length,
            4,
            2,
            stride=0,
        )
        return
    last = n - 1
    patterns = [r"`output_size|`output_length", rf"`output_size\[{last}\]`", r"0"]
    raises(ValueError, patterns, tc.bias_vector, np.ones(2), at(n, last, 0, 3))
    kernel_size = (2,) * (n + 1)
    either = f"{re.escape(str((4,) * n))}|{re.escape(str(kernel_size))}"
    raises(
        ValueError, [r"`input_size`|`kernel_size`", either], tc.output_size, (4,) * n, kernel_size
    )
    patterns = [rf"`stride\[{last}\]`", r"got 0"]
    raises(ValueError, patterns, tc.output_size, (4,) * n, (2,) * n, stride=at(n, last, 0))


@pytest.mark.parametrize("n", N_AXES)
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_empty_batch_gives_torch_shape(torch, n, mode):
    """A batch of no signals is torch's empty result, not a ZeroDivisionError (issue 8)."""
    w = np.ones((3, 2) + (3,) * n)
    five = (5,) * n
    y = api("conv{n}d", n)(np.zeros((0, 2, *five)), w, np.ones(3), padding=1, padding_mode=mode)
    layer = getattr(torch.nn, f"Conv{n}d")(2, 3, 3, padding=1, padding_mode=mode)
    want = layer(torch.zeros(0, 2, *five))
    assert y.shape == tuple(want.shape) == (0, 3, *five)
    z = api("conv_transpose{n}d", n)(np.zeros((0, 3, *five)), w, stride=2)
    want = getattr(torch.nn.functional, f"conv_transpose{n}d")(
        torch.zeros(0, 3, *five, dtype=torch.float64), torch.from_numpy(w), stride=2
    )
    assert z.shape == tuple(want.shape) == (0, 2, *(11,) * n)
    u = tc.unfold(np.zeros((0, 2, *five)), (3,) * n, padding=1, padding_mode=mode)
    assert u.shape == (0, 2 * 3**n, 5**n)


@pytest.mark.parametrize("n", N_AXES)
@pytest.mark.parametrize("template", ["conv{n}d_operator", "conv_transpose{n}d_operator"])
def test_operator_empty_batch(n, template):
    op = api(template, n)(np.ones((3, 2) + (3,) * n) * (1 + 1j), size_of(n, 5), stride=2)
    m, k = op.shape
    assert op.matmat(np.ones((k, 0))).shape == (m, 0)
    assert op.rmatmat(np.ones((m, 0))).shape == (k, 0)
    assert (op.H @ np.ones((m, 0))).shape == (k, 0)


# --------------------------------------------------------------------------- dtype
@pytest.mark.parametrize(
    "template",
    [
        "conv{n}d_matrix",
        "conv_transpose{n}d_matrix",
        "conv{n}d_operator",
        "conv_transpose{n}d_operator",
    ],
)
@pytest.mark.parametrize("n", N_AXES)
@pytest.mark.parametrize("dtype", [np.float64, "float32"])
def test_complex_weight_refuses_real_dtype(n, template, dtype):
    """It used to drop the imaginary part with only a ComplexWarning (issue 8)."""
    build = api(template, n)
    shape, size = (1,) * (n - 1) + (2,), size_of(n, 5)
    complex_kernel = np.array([1 + 1j, 2.0]).reshape(shape)
    msg = r"`dtype`=float(64|32) is real but the weight is complex \(complex128\); a real matrix"
    raises(ValueError, [msg], build, complex_kernel, size, dtype=dtype)
    assert build(complex_kernel, size, dtype=np.complex64).dtype == np.complex64
    real_kernel = np.array([1.0, 2.0]).reshape(shape)  # real -> complex: fine
    assert build(real_kernel, size, dtype=np.complex64).dtype == np.complex64
    if n == 1:  # a list, as torch takes none but numpy does
        raises(ValueError, [msg], build, [1 + 1j, 2.0], 5, dtype=dtype)
        assert build([1 + 1j, 2.0], 5, dtype=np.complex64).dtype == np.complex64


@pytest.mark.parametrize("n", N_AXES)
def test_from_torch_complex_weight_refuses_real_dtype(torch, n):
    layer = getattr(torch.nn, f"Conv{n}d")(1, 1, 2, bias=False, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"`dtype`=float64 is real but the weight is complex"):
        tc.from_torch(layer, size_of(n, 5), dtype=np.float64)


# --------------------------------------------------------------------------- torch tensors
@pytest.mark.parametrize("name", ["bfloat16", "float16", "float8_e4m3fn"])
def test_torch_low_precision_weight_is_accepted(torch, name):
    """torch convolves a bfloat16 weight; we used to raise a TypeError naming nothing."""
    dt = getattr(torch, name)
    w = torch.tensor([[[0.5, -1.25, 2.0]], [[1.0, 0.75, -0.5]]]).to(dt)  # exact in every dtype
    x = torch.tensor([[1.0, 2.0, -3.0, 4.0, 0.5]]).to(dt)
    exact = w.to(torch.float64)
    M = tc.conv1d_matrix(w, 5, format="dense")
    assert M.dtype == np.float32
    np.testing.assert_array_equal(M, tc.conv1d_matrix(exact, 5, format="dense"))
    y = tc.conv1d(x, w)
    assert y.dtype == (np.float16 if name == "float16" else np.float32)  # numpy has float16
    np.testing.assert_array_equal(y, tc.conv1d(x.to(torch.float64), exact))
    if name == "bfloat16":  # torch's own bfloat16 convolution: the same up to its rounding
        want = torch.nn.functional.conv1d(x, w).to(torch.float64).numpy()
        np.testing.assert_allclose(y, want, rtol=1e-2)
    op = tc.conv_transpose1d_operator(w, 4)
    assert op.dtype == np.float32


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_torch_complex_tensors(torch):
    w = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64)
    np.testing.assert_array_equal(
        tc.conv1d_matrix(w.conj(), 3, format="dense"), [[1 - 2j, 3 + 1j, 0], [0, 1 - 2j, 3 + 1j]]
    )  # the lazy conj bit is resolved
    half = tc.conv1d_matrix(w.to(torch.complex32), 3, format="dense")
    assert half.dtype == np.complex64
    np.testing.assert_array_equal(half, tc.conv1d_matrix(w, 3, format="dense"))


@pytest.mark.parametrize("n", N_AXES)
def test_torch_meta_tensor_is_refused(torch, n):
    meta = torch.empty(2, 1, *(3,) * n, device="meta")
    size = size_of(n, 5)
    msg = r"`weight` is on torch's 'meta' device, which holds no values"
    raises(ValueError, [msg], api("conv{n}d_matrix", n), meta, size)
    raises(ValueError, [msg], api("conv{n}d_operator", n), meta, size)
    x = torch.empty(1, *(5,) * n, device="meta")
    raises(
        ValueError,
        [r"`x` is on torch's 'meta' device"],
        api("conv{n}d", n),
        x,
        np.ones((2, 1) + (3,) * n),
    )


@pytest.mark.parametrize("n", N_AXES)
def test_torch_sparse_tensor_is_refused(torch, n):
    sparse = torch.ones((2,) * n).to_sparse()
    match = r"`weight` must be a dense \(strided\) tensor; got layout"
    raises(TypeError, [match], api("conv{n}d_matrix", n), sparse, size_of(n, 5))


# --------------------------------------------------------------------------- unfold
def test_unfold_returns_a_fresh_array():
    x = np.arange(5.0)
    u = tc.unfold(x, 2)
    assert u.flags.writeable and u.flags.c_contiguous and not np.shares_memory(u, x)
    u[0, 1] = 99.0  # overlapping windows would make this write show up at u[1, 0] too
    assert u[1, 0] == 1.0


@pytest.mark.parametrize("n", N_AXES)
def test_unfold_errors(n):
    x = np.ones((1,) + (5,) * n)
    if n == 1:
        match = r"`kernel_size` must be an integer >= 1, got 0"
        raises(ValueError, [match], tc.unfold, np.ones(8), 0)
        raises(ValueError, [match], tc.unfold, x, (0,))
        return
    last = n - 1
    raises(ValueError, [rf"`kernel_size\[{last}\]`", r"got 0"], tc.unfold, x, at(n, last, 0, 2))
    patterns = [rf"`stride\[{last}\]`", r"got 0"]
    raises(ValueError, patterns, tc.unfold, x, (2,) * n, stride=at(n, last, 0))
    raises(ValueError, [r"`x`|`kernel_size`"], tc.unfold, np.ones(5), (2,) * n)  # one axis
    wrong = (1,) * (n + 1)
    raises(ValueError, [r"`padding`", re.escape(str(wrong))], tc.unfold, x, (2,) * n, padding=wrong)


def test_unfold_int_kernel_size_reads_as_torch_or_refuses():
    """Issue 14.8: an int kernel_size means what torch's F.unfold means, or is refused."""
    img = np.arange(2 * 2 * 5 * 5, dtype=float).reshape(2, 2, 5, 5)
    assert np.array_equal(tc.unfold(img, 3), tc.unfold(img, (3, 3)))  # (N, C, H, W): 3x3
    assert np.array_equal(tc.unfold(img[0, 0], 2), tc.unfold(img[0, 0], (2,)))  # (C, L)
    with pytest.raises(ValueError, match=r"int `kernel_size` with a 3-dimensional `x`.*ambiguous"):
        tc.unfold(img[0], 3)
    assert tc.unfold(img[0], (3, 3)).shape == (18, 9)
    assert tc.unfold(img[0], (3,)).shape == (2, 15, 3)

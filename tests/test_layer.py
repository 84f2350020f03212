"""The validated layer: per-axis parameters, how many spatial axes, and the size limits."""

from __future__ import annotations

import numpy as np
import pytest

import toeplitz_conv as tc
from conftest import require_torch
from toeplitz_conv._geometry import MAX_INT
from toeplitz_conv._layer import conv_layer, transpose_layer

W2 = np.ones((3, 2, 3, 2))  # (C_out, C_in, K_1, K_2)


def test_two_axes_from_the_weight():
    layer = conv_layer(W2, (6, 5), stride=(2, 1), padding=(1, (0, 2)), ndim=None)
    assert layer.ndim == 2
    assert layer.input_size == (6, 5)
    assert layer.kernel_size == (3, 2)
    assert [(g.pad_left, g.pad_right) for g in layer.geoms] == [(1, 1), (0, 2)]
    assert layer.output_size == ((6 + 2 - 3) // 2 + 1, 5 + 2 - 2 + 1)
    assert layer.shape == (3 * 3 * 6, 2 * 30)


def test_int_input_size_applies_to_every_axis():
    layer = conv_layer(np.ones((1, 1, 2, 2, 2)), 4, ndim=None)
    assert layer.input_size == (4, 4, 4)
    assert layer.output_size == (3, 3, 3)


def test_kernel_only_weight_is_one_channel():
    layer = conv_layer(np.ones((3, 3)), (4, 4), ndim=None)
    assert layer.weight.shape == (1, 1, 3, 3)
    assert layer.ndim == 2


def test_same_padding_per_axis_puts_the_odd_sample_right():
    layer = conv_layer(np.ones((1, 1, 2, 4)), (5, 5), padding="same", dilation=(1, 1), ndim=None)
    assert [(g.pad_left, g.pad_right) for g in layer.geoms] == [(0, 1), (1, 2)]


def test_one_dimensional_layer_keeps_its_geometry():
    layer = conv_layer([1.0, 2.0], 5)
    assert layer.ndim == 1
    assert layer.geom is layer.geoms[0]
    with pytest.raises(ValueError, match="2-D layer"):
        _ = conv_layer(W2, (6, 5), ndim=None).geom


@pytest.mark.parametrize(
    ("kwargs", "attribute", "value"),
    [
        ({"stride": (2,)}, "stride", 2),
        ({"dilation": (2,)}, "dilation", 2),
        ({"padding": ((1, 2),)}, "pad_right", 2),
    ],
)
def test_torch_one_tuples_accepted_in_1d(kwargs, attribute, value):
    # torch's conv1d takes stride=(2,), dilation=(2,): so do we
    geom = conv_layer(np.ones(3), 9, **kwargs).geom
    assert getattr(geom, attribute) == value
    M = tc.conv1d_matrix(np.ones(3), 9, **kwargs)
    assert M.shape[1] == 9


def test_output_padding_one_tuple():
    geom = transpose_layer(np.ones(3), 4, stride=2, output_padding=(1,)).geom
    assert geom.input_length == (4 - 1) * 2 + 2 + 1 + 1


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"stride": (1, 0)}, ValueError, r"`stride\[1\]` must be an integer >= 1, got 0"),
        ({"dilation": (1, 2, 3)}, ValueError, r"`dilation` must be an int or a tuple of 2 ints"),
        ({"padding": (1, (0, -1))}, ValueError, r"`padding\[1\]\[1\]` must be an integer >= 0"),
        ({"padding": (1, 2, 3)}, ValueError, r"`padding` must be .* a tuple of 2 items"),
        ({"padding": "same", "stride": (1, 2)}, ValueError, r"requires `stride\[1\]`=1"),
        ({"padding": 1.5}, TypeError, r"`padding` must be an int, a tuple of 2"),
        ({"input_size": (6, 0)}, ValueError, r"`input_size\[1\]` must be an integer >= 1, got 0"),
        ({"input_size": (6, 5, 4)}, ValueError, r"`weight` must have shape .*K_1, K_2, K_3"),
        ({"input_size": (6, 1)}, ValueError, r"output would be empty on axis 1"),
        (
            {"padding": (0, 5), "padding_mode": "reflect"},
            ValueError,
            r"'reflect' needs padding < input_length.*input_size\[1\]=5 on axis 1",
        ),
    ],
)
def test_axis_named_errors(kwargs, exc, match):
    kwargs = {"input_size": (6, 5), **kwargs}
    with pytest.raises(exc, match=match):
        conv_layer(W2, ndim=None, **kwargs)


@pytest.mark.parametrize("shape", [(2, 3), (1, 1, 1, 1, 1, 1)])
def test_weight_dimension_refused(shape):
    # (2, 3) is a 2-D kernel alone: the message says it needs a tuple input_size
    match = r"2-D kernel alone" if len(shape) == 2 else r"`weight` must have shape"
    with pytest.raises(ValueError, match=match + r".* with shape"):
        conv_layer(np.ones(shape), 8, ndim=None)


def test_weight_dimension_must_match_a_fixed_ndim():
    with pytest.raises(ValueError, match=r"\(C_out, C_in/groups, K_1, K_2\) or \(K_1, K_2\)"):
        conv_layer(np.ones((1, 1, 3)), 8, ndim=2)


@pytest.mark.parametrize(
    "kwargs", [{"stride": 10**30}, {"dilation": 2**60}, {"padding": 10**20}, {"input_size": 10**30}]
)
def test_huge_parameters_refused_before_any_arithmetic(kwargs):
    # was an OverflowError from numpy (stride=10**30) or silently accepted (input_length=10**30)
    kwargs = {"input_size": 8, **kwargs}
    with pytest.raises(ValueError, match=r"must be an integer <= .* \(indices must fit in 64"):
        conv_layer(np.ones(3), **kwargs)


def test_flattened_size_must_be_indexable():
    with pytest.raises(ValueError, match=r"at most .* can be indexed"):
        conv_layer(np.ones((1, 1, 1, 1, 1)), (MAX_INT, MAX_INT, 4), ndim=None)


# --------------------------------------------------------------------------- size refusals
# Found by trying the N-d API as a new user: each was a MemoryError from deep inside numpy.
@pytest.mark.parametrize(
    "call",
    [
        lambda: tc.conv2d(np.ones((1, 1, 1)), np.ones((1, 1, 1, 1)), padding=10**6),
        lambda: tc.conv1d(np.ones(10), [1.0], padding=10**11),
        lambda: tc.conv_transpose1d(np.ones(10**6), [1.0], stride=10**8),
        lambda: tc.conv2d(np.broadcast_to(1.0, (10**5, 1, 100, 100)), np.ones((64, 1, 3, 3))),
    ],
)
def test_forward_pass_too_big_is_refused_before_allocating(call):
    with pytest.raises(ValueError, match=r"convolution of [\d,]+ sample\(s\) .* would take"):
        call()


@pytest.mark.parametrize("fmt", ["csr", "coo"])
def test_transposed_matrix_counts_its_long_index_pointer(fmt):
    with pytest.raises(ValueError, match=r"index pointer and 1,000,000 nonzeros would take"):
        tc.conv_transpose1d_matrix([1.0], 10**6, stride=10**8, format=fmt)
    # by columns the pointer runs over the short side: it fits
    M = tc.conv_transpose1d_matrix([1.0], 10**6, stride=10**8, format="csc")
    assert M.shape == ((10**6 - 1) * 10**8 + 1, 10**6)
    assert M.nnz == 10**6


def test_bias_vector_too_big_is_refused():
    with pytest.raises(ValueError, match=r"the bias vector of 640,000,000,000 values would take"):
        tc.bias_vector(np.ones(64), (10**5, 10**5))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: tc.output_size((5, 5, 5, 5), 1), "input_size"),
        (lambda: tc.output_size(5, (1, 1, 1, 1)), "kernel_size"),
        (lambda: tc.bias_vector([1.0], ()), "output_size"),
    ],
)
def test_sizes_have_one_to_three_axes(call, name):
    with pytest.raises(ValueError, match=rf"`{name}` must be an int or a tuple of 1, 2 or 3 ints"):
        call()


def test_input_size_length_is_named_when_it_disagrees_with_the_weight():
    with pytest.raises(ValueError, match=r"for the 3 spatial axes of `input_size`=\(5, 5, 5\)"):
        tc.conv_matrix(np.ones((2, 1, 3, 3)), (5, 5, 5))


# --------------------------------------------------------------------------- renamed keywords
def test_one_dimensional_keywords_from_before_nd_still_work():
    # from_torch/formula took `input_length` and bias_vector `output_length` before N-d
    np.testing.assert_array_equal(
        tc.bias_vector([1.0, 2.0], output_length=2), tc.bias_vector([1.0, 2.0], 2)
    )
    assert tc.formula([4.0, 3.0], input_length=5) == tc.formula([4.0, 3.0], 5)
    w = np.array([1.0, -2.0, 1.0])
    assert tc.spectral_norm(w, input_length=64) == tc.spectral_norm(w, 64)
    assert tc.condition_number(w, input_length=64) == tc.condition_number(w, 64)
    np.testing.assert_array_equal(tc.singular_values(w, input_length=16), tc.singular_values(w, 16))
    assert tc.spectral_norm_bounds(w, input_length=64) == tc.spectral_norm_bounds(w, 64)
    with pytest.raises(TypeError, match=r"got both `input_length` and `input_size`"):
        tc.formula([4.0, 3.0], input_length=5, input_size=5)


def test_from_torch_keeps_its_input_length_keyword():
    torch = require_torch()
    module = torch.nn.Conv1d(2, 3, 3, padding=1)
    M, c = tc.from_torch(module, input_length=7)
    M2, c2 = tc.from_torch(module, 7)
    assert (M != M2).nnz == 0
    np.testing.assert_array_equal(c, c2)


def test_warnings_point_at_the_callers_line(monkeypatch):
    # through the renamed-keyword wrapper and the package's inner modules: the user's line
    from toeplitz_conv.spectral import _method

    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)  # no exact dense answer
    w = np.random.default_rng(0).standard_normal((4, 4, 3, 3))
    with pytest.warns(RuntimeWarning, match="did not close") as record:
        tc.spectral_norm(w, (12, 12), padding=1, rtol=1e-12, maxiter=0)
    assert record[0].filename == __file__


def test_fft_path_memory_is_counted(monkeypatch):
    # a long kernel runs through the FFT path, which needs about three times the direct one's
    from toeplitz_conv import _arrays

    x, w = np.ones((1, 1, 4096)), np.ones(128)
    need = 8 * (4096 + 2 * 127 + 4096 + 127) * 3  # (padded signal + result) x 3, float64
    monkeypatch.setattr(_arrays, "_physical_memory", lambda: need - 1)
    with pytest.raises(ValueError, match=r"convolution of 1 sample\(s\)"):
        tc.conv1d(x, w, padding=127)
    monkeypatch.setattr(_arrays, "_physical_memory", lambda: need)
    assert tc.conv1d(x, w, padding=127).shape == (1, 1, 4096 + 127)

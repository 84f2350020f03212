"""Every bad input gets a clear error naming the argument, the value and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

import toeplitz_conv as tc
from toeplitz_conv import _arrays

W1 = np.array([1.0, 2.0, 3.0])
W3 = np.ones((4, 2, 3))  # C_out=4, C_in/groups=2, K=3

BUILDERS = [tc.conv1d_matrix, tc.conv_transpose1d_matrix]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"stride": 0}, ValueError, r"`stride` must be an integer >= 1, got 0"),
        ({"stride": -2}, ValueError, r"`stride` must be an integer >= 1, got -2"),
        ({"stride": 1.5}, TypeError, r"`stride` must be an integer >= 1, got 1.5 of type float"),
        ({"stride": True}, TypeError, r"`stride` must be an integer >= 1, got True of type bool"),
        ({"dilation": 0}, ValueError, r"`dilation` must be an integer >= 1, got 0"),
        ({"padding": -1}, ValueError, r"`padding` must be an integer >= 0, got -1"),
        ({"padding": 1.0}, TypeError, r"`padding` must be an int, a \(left, right\) pair"),
        ({"padding": (1, -1)}, ValueError, r"`padding\[1\]` must be an integer >= 0, got -1"),
        ({"padding": (1, 2, 3)}, ValueError, r"got a sequence of length 3"),
        ({"groups": 0}, ValueError, r"`groups` must be an integer >= 1, got 0"),
        ({"format": "lil"}, ValueError, r"`format` must be one of 'csr', 'csc', 'coo'.*got 'lil'"),
        ({"dtype": np.int32}, TypeError, r"`dtype` must be one of float32.*; got int32"),
        ({"dtype": "nonsense"}, TypeError, r"`dtype` must be a numpy dtype; got 'nonsense'"),
    ],
)
def test_bad_parameters(build, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build(W1, 8, **kwargs)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("length", [0, -3])
def test_bad_length(build, length):
    with pytest.raises(ValueError, match=rf"`input_length` must be an integer >= 1, got {length}"):
        build(W1, length)


@pytest.mark.parametrize("build", BUILDERS)
def test_length_not_integer(build):
    with pytest.raises(TypeError, match=r"`input_length` must be an integer >= 1, got 8.0"):
        build(W1, 8.0)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("weight", "exc", "match"),
    [
        (np.ones((2, 3)), ValueError, r"`weight` must have shape \(C_out, C_in/groups, K\) or"),
        (np.ones((1, 1, 1, 3)), ValueError, r"got 4 dimensions with shape \(1, 1, 1, 3\)"),
        (np.ones((2, 1, 0)), ValueError, r"`weight` must not be empty; got shape \(2, 1, 0\)"),
        (np.array([]), ValueError, r"`weight` must not be empty"),
        (np.array(["a", "b"]), TypeError, r"`weight` must hold numbers.*got dtype <U1"),
        (np.array(3.0), ValueError, r"got 0 dimensions"),
    ],
)
def test_bad_weight(build, weight, exc, match):
    with pytest.raises(exc, match=match):
        build(weight, 8)


@pytest.mark.parametrize("build", BUILDERS)
def test_groups_must_divide_out_channels(build):
    with pytest.raises(ValueError, match=r"`groups`=3 must divide the output channels C_out=4"):
        build(W3, 8, groups=3)


def test_unknown_padding_mode():
    with pytest.raises(ValueError, match=r"`padding_mode` must be one of 'zeros', 'reflect', "):
        tc.conv1d_matrix(W1, 8, padding_mode="mirror")


def test_unknown_padding_string():
    with pytest.raises(ValueError, match=r"`padding` must be one of 'same', 'valid'; got 'full'"):
        tc.conv1d_matrix(W1, 8, padding="full")


def test_same_needs_stride_one():
    with pytest.raises(ValueError, match=r"`padding`='same' requires `stride`=1.*got stride=2"):
        tc.conv1d_matrix(W1, 8, padding="same", stride=2)


def test_empty_output():
    msg = r"the output would be empty: .* = 0 < 1 for input_length=2, kernel_size=3"
    with pytest.raises(ValueError, match=msg):
        tc.conv1d_matrix(W1, 2)
    with pytest.raises(ValueError, match=r"output would be empty.*dilation=4"):
        tc.conv1d_matrix(W1, 8, dilation=4)


@pytest.mark.parametrize(
    ("mode", "padding", "match"),
    [
        ("reflect", 4, r"'reflect' needs padding < input_length.*padding=\(4, 4\).*input_length=4"),
        ("reflect", (0, 5), r"'reflect' needs padding < input_length"),
        ("circular", 5, r"'circular' needs padding <= input_length.*padding=\(5, 5\)"),
    ],
)
def test_padding_beyond_length(mode, padding, match):
    with pytest.raises(ValueError, match=match):
        tc.conv1d_matrix(np.ones(9), 4, padding=padding, padding_mode=mode)


def test_padding_at_torch_limit_is_allowed():
    assert tc.conv1d_matrix(W1, 4, padding=3, padding_mode="reflect").shape == (8, 4)
    assert tc.conv1d_matrix(W1, 4, padding=4, padding_mode="circular").shape == (10, 4)
    assert tc.conv1d_matrix(W1, 4, padding=50, padding_mode="replicate").shape == (102, 4)


def test_output_padding_range():
    msg = r"`output_padding` must be smaller than max\(stride, dilation\) = 2.*got output_padding=2"
    with pytest.raises(ValueError, match=msg):
        tc.conv_transpose1d_matrix(W1, 4, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"`output_padding` must be an integer >= 0, got -1"):
        tc.conv_transpose1d_matrix(W1, 4, output_padding=-1)
    # allowed up to max(stride, dilation) - 1, as torch does
    assert tc.conv_transpose1d_matrix(W1, 4, dilation=3, output_padding=2).shape == (12, 4)


def test_transpose_padding_string_refused():
    with pytest.raises(TypeError, match=r"`padding` of a transposed convolution must be an int"):
        tc.conv_transpose1d_matrix(W1, 4, padding="same")


def test_transpose_empty_output():
    with pytest.raises(ValueError, match=r"transposed convolution's output would be empty"):
        tc.conv_transpose1d_matrix(W1, 1, padding=2)


def test_dia_refused_where_not_compact():
    with pytest.raises(ValueError, match=r"`format`='dia' would store .* diagonals"):
        tc.conv1d_matrix(W1, 200, stride=3, format="dia")


def test_dense_too_large_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"the dense .* matrix would take [\d,.]+ GiB, more than"):
        tc.conv1d_matrix(W1, 10**7, format="dense")


def test_sparse_too_large_is_refused(monkeypatch):
    monkeypatch.setattr(_arrays, "_physical_memory", lambda: 2**20)
    with pytest.raises(ValueError, match=r"nonzeros would take .* GiB, more than"):
        tc.conv1d_matrix(np.ones((64, 64, 9)), 10**5)


def test_conv1d_channel_mismatch():
    with pytest.raises(ValueError, match=r"`x` has 3 channels .*but the weight expects 2"):
        tc.conv1d(np.ones((3, 8)), W3)
    with pytest.raises(ValueError, match=r"`x` has 3 channels .*but the weight expects 4"):
        tc.conv1d(np.ones((3, 8)), W3, groups=2)


def test_conv1d_bad_input_shapes():
    with pytest.raises(ValueError, match=r"`x` must have shape \(L,\), \(C, L\) or \(N, C, L\)"):
        tc.conv1d(np.ones((1, 1, 1, 8)), W1)
    with pytest.raises(ValueError, match=r"a 1-D `x` of shape \(8,\) has one channel"):
        tc.conv1d(np.ones(8), W3)
    with pytest.raises(ValueError, match=r"`x` must have at least one sample"):
        tc.conv1d(np.ones((1, 0)), W1)
    with pytest.raises(TypeError, match=r"`x` must hold numbers"):
        tc.conv1d(np.array(["a"] * 8), W1)


def test_conv_transpose1d_channel_mismatch():
    with pytest.raises(ValueError, match=r"`x` has 2 channels .*but the weight expects 4"):
        tc.conv_transpose1d(np.ones((2, 8)), W3)


def test_bad_bias():
    with pytest.raises(ValueError, match=r"`bias` must have shape \(4,\), one value per output"):
        tc.conv1d(np.ones((2, 8)), W3, np.ones(3))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(C_out,\); got shape \(2, 2\)"):
        tc.bias_vector(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match=r"`output_length` must be an integer >= 1, got 0"):
        tc.bias_vector(np.ones(2), 0)


def test_unfold_too_large_is_refused_before_allocating():
    msg = r"the \(100000, 10000001\) patch matrix would take [\d,.]+ GiB, more than"
    with pytest.raises(ValueError, match=msg):
        tc.unfold(np.ones((1, 10**7)), 100000, padding=50000)


def test_unfold_returns_a_fresh_array():
    x = np.arange(5.0)
    u = tc.unfold(x, 2)
    assert u.flags.writeable and u.flags.c_contiguous and not np.shares_memory(u, x)
    u[0, 1] = 99.0  # overlapping windows would make this write show up at u[1, 0] too
    assert u[1, 0] == 1.0


def test_unfold_errors():
    with pytest.raises(ValueError, match=r"`kernel_size` must be an integer >= 1, got 0"):
        tc.unfold(np.ones(8), 0)
    with pytest.raises(ValueError, match=r"'reflect' needs padding < input_length"):
        tc.unfold(np.ones(3), 2, padding=3, padding_mode="reflect")


def test_output_length_errors():
    assert tc.output_length(5, 2) == 4
    with pytest.raises(ValueError, match=r"the output would be empty"):
        tc.output_length(2, 5)


def test_nan_in_weight_propagates():
    M = tc.conv1d_matrix([1.0, np.nan], 4)
    assert np.isnan(M.data).sum() == 3
    assert np.isnan(tc.conv1d(np.ones(4), [1.0, np.nan])).all()


# --------------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_empty_batch_gives_torch_shape(torch, mode):
    """A batch of no signals is torch's empty result, not a ZeroDivisionError (issue 8)."""
    w = np.ones((3, 2, 3))
    y = tc.conv1d(np.zeros((0, 2, 5)), w, np.ones(3), padding=1, padding_mode=mode)
    want = torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode=mode)(torch.zeros(0, 2, 5))
    assert y.shape == tuple(want.shape) == (0, 3, 5)
    z = tc.conv_transpose1d(np.zeros((0, 3, 5)), w, stride=2)
    want = torch.nn.functional.conv_transpose1d(
        torch.zeros(0, 3, 5, dtype=torch.float64), torch.from_numpy(w), stride=2
    )
    assert z.shape == tuple(want.shape) == (0, 2, 11)
    u = tc.unfold(np.zeros((0, 2, 5)), 3, padding=1, padding_mode=mode)
    assert u.shape == (0, 6, 5)


@pytest.mark.parametrize("make", [tc.conv1d_operator, tc.conv_transpose1d_operator])
def test_operator_empty_batch(make):
    op = make(np.ones((3, 2, 3)) * (1 + 1j), 5, stride=2)
    m, n = op.shape
    assert op.matmat(np.ones((n, 0))).shape == (m, 0)
    assert op.rmatmat(np.ones((m, 0))).shape == (n, 0)
    assert (op.H @ np.ones((m, 0))).shape == (n, 0)


# --------------------------------------------------------------------------- dtype
@pytest.mark.parametrize(
    "build",
    [
        tc.conv1d_matrix,
        tc.conv_transpose1d_matrix,
        tc.conv1d_operator,
        tc.conv_transpose1d_operator,
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, "float32"])
def test_complex_weight_refuses_real_dtype(build, dtype):
    """It used to drop the imaginary part with only a ComplexWarning (issue 8)."""
    msg = r"`dtype`=float(64|32) is real but the weight is complex \(complex128\); a real matrix"
    with pytest.raises(ValueError, match=msg):
        build([1 + 1j, 2.0], 5, dtype=dtype)
    assert build([1 + 1j, 2.0], 5, dtype=np.complex64).dtype == np.complex64
    assert build([1.0, 2.0], 5, dtype=np.complex64).dtype == np.complex64  # real -> complex: fine


def test_from_torch_complex_weight_refuses_real_dtype(torch):
    layer = torch.nn.Conv1d(1, 1, 2, bias=False, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"`dtype`=float64 is real but the weight is complex"):
        tc.from_torch(layer, 5, dtype=np.float64)


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


def test_torch_meta_tensor_is_refused(torch):
    meta = torch.empty(2, 1, 3, device="meta")
    msg = r"`weight` is on torch's 'meta' device, which holds no values"
    with pytest.raises(ValueError, match=msg):
        tc.conv1d_matrix(meta, 5)
    with pytest.raises(ValueError, match=msg):
        tc.conv1d_operator(meta, 5)
    with pytest.raises(ValueError, match=r"`x` is on torch's 'meta' device"):
        tc.conv1d(torch.empty(1, 5, device="meta"), np.ones((2, 1, 3)))


def test_torch_sparse_tensor_is_refused(torch):
    with pytest.raises(TypeError, match=r"`weight` must be a dense \(strided\) tensor; got layout"):
        tc.conv1d_matrix(torch.tensor([1.0, 2.0]).to_sparse(), 5)


# --------------------------------------------------------------------------- issue 14 (8)
def test_operator_given_a_vector_of_the_wrong_length_names_the_length():
    """Issue 14 (8): was scipy's bare 'dimension mismatch'."""
    op = tc.conv_operator(np.ones((2, 3, 3, 3)), (5, 5), padding=1)  # 50 x 75
    with pytest.raises(ValueError, match=r"`matvec` .* length 75 .*input of shape \(3, 5, 5\)"):
        op @ np.ones(7)
    with pytest.raises(ValueError, match=r"`rmatvec` .* length 50 .*output of shape \(2, 5, 5\)"):
        op.rmatvec(np.ones(75))
    with pytest.raises(ValueError, match=r"`matvec` of this 75x50 operator .* length 50"):
        op.H @ np.ones(75)
    with pytest.raises(ValueError, match=r"`matmat` .* shape \(75, B\).*got an array of shape"):
        op.matmat(np.ones((7, 2)))
    assert (op @ np.ones(75)).shape == (50,) and op.matmat(np.ones((75, 2))).shape == (50, 2)


def test_memory_refusal_of_a_sparse_request_does_not_suggest_a_sparse_format(monkeypatch):
    """Issue 14 (8): 'use a sparse format' was suggested for a request already sparse."""
    monkeypatch.setattr(_arrays, "_physical_memory", lambda: 2**10)
    with pytest.raises(ValueError, match=r"format='csr' is already sparse") as info:
        tc.conv1d_matrix(np.ones(3), 1000, format="csr")
    assert "use a sparse format" not in str(info.value)


def test_int_size_with_a_2d_kernel_alone_says_what_to_pass():
    """Issue 14 (8): the message listed (K_1, ..., K_n) as allowed while refusing (3, 3)."""
    for fn in (tc.conv_matrix, tc.singular_values):
        with pytest.raises(
            ValueError, match=r"2-D kernel alone, .* needs a tuple `input_size`"
        ) as e:
            fn(np.ones((3, 3)), 10)
        assert "(10, 10)" in str(e.value) and "or (K_1, ..., K_n)" not in str(e.value)
    assert tc.conv_matrix(np.ones((3, 3)), (10, 10)).shape == (64, 100)

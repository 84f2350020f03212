"""The FFT path of the 1-D kernel (long kernels): equal to the direct path and to the matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from checks import assert_operator_matches, dot_test
from reference import PADDING_MODES, padding_ok
from toeplitz_conv._fft import Correlator, dilate
from toeplitz_conv._kernel import FFT_MIN_TAPS


def _op(w, L, fft: bool, **kw):
    """The operator with the FFT path asked for, or the direct one."""
    op = tc.conv1d_operator(w, L, method="fft" if fft else "direct", **kw)
    assert op.method == ("fft" if fft else "direct")
    assert op.H.method == op.method
    return op


def _random(rng, shape, complex_):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _close(got, want, rtol):
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    assert float(np.abs(got - want).max(initial=0.0)) <= rtol * scale


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(PADDING_MODES),
    groups=st.integers(1, 3),
    c_in_g=st.integers(1, 3),
    c_out_g=st.integers(1, 3),
    K=st.integers(1, 12),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    kind=st.sampled_from(["int", "pair", "same", "valid"]),
    pads=st.tuples(st.integers(0, 8), st.integers(0, 8)),
    L=st.integers(1, 80),
    batch=st.integers(0, 3),
    complex_=st.booleans(),
    single=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fft_equals_direct_and_matrix(
    mode, groups, c_in_g, c_out_g, K, stride, dilation, kind, pads, L, batch, complex_, single, seed
):
    padding = {"int": pads[0], "pair": pads, "same": "same", "valid": "valid"}[kind]
    stride = 1 if kind == "same" else stride
    assume(padding_ok(mode, padding, L, K, dilation, stride))
    rng = np.random.default_rng(seed)
    w = _random(rng, (c_out_g * groups, c_in_g, K), complex_)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    fft, direct = _op(w, L, True, **kw), _op(w, L, False, **kw)
    M = tc.conv1d_matrix(w, L, format="dense", **kw)
    X = _random(rng, (M.shape[1], batch), complex_)
    Y = _random(rng, (M.shape[0], batch), complex_)
    _close(fft.matmat(X), direct.matmat(X), 1e-12)
    _close(fft.matmat(X), M @ X, 1e-12)
    _close(fft.rmatmat(Y), direct.rmatmat(Y), 1e-12)
    _close(fft.rmatmat(Y), M.conj().T @ Y, 1e-12)
    if single:  # float32 in, float32 out, to float32 accuracy
        w32 = w.astype(np.complex64 if complex_ else np.float32)
        fft32 = _op(w32, L, True, **kw)
        x32, y32 = X.astype(w32.dtype), Y.astype(w32.dtype)
        got, got_t = fft32.matmat(x32), fft32.rmatmat(y32)
        assert got.dtype == w32.dtype and got_t.dtype == w32.dtype
        _close(got.astype(M.dtype), (M @ x32).astype(M.dtype), 1e-5)
        _close(got_t.astype(M.dtype), (M.conj().T @ y32).astype(M.dtype), 1e-5)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_fft_dot_test_complex(mode, stride):
    rng = np.random.default_rng(5)
    w = _random(rng, (4, 3, 70), True)  # long enough for the automatic choice too
    op = tc.conv1d_operator(w, 200, stride=stride, padding=(9, 4), groups=1, padding_mode=mode)
    assert op.method == "fft"
    dot_test(op, rng)
    dot_test(op.H, rng)
    dot_test(op, rng, complex_model=False, complex_data=False)


@pytest.mark.parametrize("complex_", [False, True])
def test_fft_operator_matches_matrix_every_way(complex_):
    rng = np.random.default_rng(1)
    w = _random(rng, (4, 1, 9), complex_)
    kw = dict(stride=2, dilation=3, padding=(7, 2), groups=2, padding_mode="reflect")
    op = _op(w, 57, True, **kw)
    assert_operator_matches(op, tc.conv1d_matrix(w, 57, format="dense", **kw), rng)


@pytest.mark.parametrize("K, dilation", [(1, 1), (3, 1), (5, 4)])
def test_correlator_many_segments(K, dilation):
    """Overlap-save over many segments against the sum written out."""
    rng = np.random.default_rng(2)
    h = dilate(_random(rng, (2, 3, 2, K), True), dilation)
    corr = Correlator(h)
    D, E, B = h.shape[-1], 9000, 2
    M = E - D + 1
    assert corr.fft_size(M) < M + D - 1  # more than one segment
    x = _random(rng, (4, E, B), True)
    want = np.zeros((6, M, B), dtype=complex)
    for g in range(2):
        for o in range(3):
            for c in range(2):
                for m in range(D):
                    want[3 * g + o] += h[g, o, c, m] * x[2 * g + c, m : m + M]
    _close(corr(x, M), want, 1e-12)


def test_automatic_choice():
    rng = np.random.default_rng(0)
    t = FFT_MIN_TAPS

    def uses_fft(shape, size, **kw):
        return tc.conv_operator(rng.standard_normal(shape), size, **kw).method == "fft"

    assert uses_fft((1, 1, t), 500)
    assert not uses_fft((1, 1, t - 1), 500)
    assert uses_fft((2, 2, t), 500, stride=4)
    assert not uses_fft((2, 2, t), 500, stride=8)  # the FFT computes every shift
    assert uses_fft((2, 2, 2 * t), 500, stride=8)
    assert not uses_fft((1, 1, t, 2), (300, 10))  # 1-D only


@pytest.mark.parametrize("complex_", [False, True])
def test_functional_long_kernel(complex_):
    """tc.conv1d and tc.conv_transpose1d take the FFT path and match the matrix."""
    rng = np.random.default_rng(4)
    w = _random(rng, (3, 2, 100), complex_)
    x = _random(rng, (2, 2, 400), complex_)
    M = tc.conv1d_matrix(w, 400, stride=3, padding=20, format="dense")
    y = tc.conv1d(x, w, stride=3, padding=20)
    _close(y, np.stack([(M @ xi.ravel()).reshape(3, -1) for xi in x]), 1e-12)
    yt = _random(rng, y.shape, complex_)
    g = tc.conv_transpose1d(yt, w, stride=3, padding=20, output_padding=1)
    _close(g, np.stack([(M.T @ yi.ravel()).reshape(2, -1) for yi in yt]), 1e-12)


def test_torch_oracle_long_kernel(torch):
    rng = np.random.default_rng(6)
    w = rng.standard_normal((4, 2, 130))
    x = rng.standard_normal((3, 4, 1000))
    kw = dict(stride=2, padding=11, dilation=2, groups=2)
    got = tc.conv1d(x, w, **kw)
    want = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()
    _close(got, want, 1e-12)

"""``method=`` of the operators and forward passes: every algorithm is the same matrix.

Each method ("direct", "fft", "winograd", "winograd2", and "auto"'s choice) is checked against the
explicit matrix of :func:`toeplitz_conv.conv_matrix` (forward, adjoint, transpose, batches
of 0, 1 and several columns, complex vectors), against torch, by dot tests, and in float32
against the float64 matrix; bad and inapplicable methods raise ValueError.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from checks import assert_close, assert_operator_matches, dot_test
from reference import PADDING_MODES, ref_conv_nd, ref_conv_nd_matrix
from strategies import conv_kwargs, conv_nd_configs
from toeplitz_conv import _compiled
from toeplitz_conv import _tunables as tunables

METHODS = ("direct", "fft", "winograd", "winograd2")
WINOGRAD = ("winograd", "winograd2")


def _random(rng, shape, complex_=False):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _applies(method: str, n: int, K, stride, dilation) -> bool:
    if method == "fft":
        return n == 1
    if method in WINOGRAD:
        strides = ({1}, {2}) if method == "winograd2" else ({1},)
        return n <= 2 and all(k == 3 for k in K) and set(dilation) == {1} and set(stride) in strides
    return True


def _check_methods(cfg, complex_: bool) -> None:
    """Every applicable method's operator is the matrix, every way round (batches 0, 1, 3)."""
    rng = np.random.default_rng(cfg["seed"])
    n, K = cfg["n"], cfg["kernel_size"]
    w = _random(rng, (cfg["c_out"], cfg["c_in"] // cfg["groups"], *K), complex_)
    kw = conv_kwargs(cfg)
    M = tc.conv_matrix(w, cfg["input_size"], format="dense", **kw)
    for method in METHODS:
        if not _applies(method, n, K, cfg["stride"], cfg["dilation"]):
            continue
        op = tc.conv_operator(w, cfg["input_size"], method=method, **kw)
        assert op.method == method
        assert_operator_matches(op, M, rng, rtol=1e-10, depth=1)


@settings(max_examples=40, deadline=None)
@given(cfg=conv_nd_configs(n=1, max_kernel=4, max_length=9), complex_=st.booleans())
def test_1d_methods_equal_the_matrix(cfg, complex_):
    _check_methods(cfg, complex_)


@settings(max_examples=40, deadline=None)
@given(cfg=conv_nd_configs(n=2, max_kernel=3, max_length=7), complex_=st.booleans())
def test_2d_methods_equal_the_matrix(cfg, complex_):
    _check_methods(cfg, complex_)


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(WINOGRAD),
    stride=st.integers(1, 2),
    n=st.integers(1, 2),
    groups=st.integers(1, 3),
    c_in_g=st.integers(1, 3),
    c_out_g=st.integers(1, 3),
    mode=st.sampled_from(PADDING_MODES),
    pads=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=2),
    size=st.lists(st.integers(3, 13), min_size=2, max_size=2),
    complex_=st.booleans(),
    compiled=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_winograd_layers_equal_the_matrix(
    method, stride, n, groups, c_in_g, c_out_g, mode, pads, size, complex_, compiled, seed
):
    """3-tap / 3x3 layers with stride 1 (and 2 for "winograd2", the layers Winograd takes):
    tiles that do not divide the output, every padding mode, groups and channel
    multipliers; 2-D layers on the compiled transforms (with numba) and on numpy's GEMMs."""
    stride = 1 if method == "winograd" else stride
    with _compiled_switch(compiled):
        _check_winograd(
            method, stride, n, groups, c_in_g, c_out_g, mode, pads, size, complex_, seed
        )


@contextlib.contextmanager
def _compiled_switch(on: bool):
    """tunables.COMPILED set to `on` for the duration (hypothesis tests take no fixtures)."""
    before = tunables.COMPILED
    tunables.COMPILED = on
    try:
        yield
    finally:
        tunables.COMPILED = before


def _check_winograd(method, stride, n, groups, c_in_g, c_out_g, mode, pads, size, complex_, seed):
    rng = np.random.default_rng(seed)
    w = _random(rng, (groups * c_out_g, c_in_g, *(3,) * n), complex_)
    padding = tuple(pads[:n])  # at most 2 < 3 <= every size: valid for every mode
    kw = dict(stride=stride, groups=groups, padding=padding, padding_mode=mode)
    M = tc.conv_matrix(w, tuple(size[:n]), format="dense", **kw)
    op = tc.conv_operator(w, tuple(size[:n]), method=method, **kw)
    assert op.method == method
    assert_operator_matches(op, M, rng, rtol=1e-10, depth=1)


@pytest.mark.parametrize("multiplier", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_direct_path_large(compiled, multiplier, stride):
    """Depthwise layers (one input channel per group) spanning several blocks of positions."""
    rng = np.random.default_rng(multiplier)
    C = 6
    w = rng.standard_normal((C * multiplier, 1, 3, 3))
    size = (70, 90)
    kw = dict(stride=stride, padding=1, groups=C, padding_mode="reflect")
    op = tc.conv_operator(w, size, **kw)
    assert op.method == "direct"
    M = tc.conv_matrix(w, size, **kw)
    X = rng.standard_normal((M.shape[1], 2))
    Y = rng.standard_normal((M.shape[0], 2))
    assert_close(op.matmat(X), M @ X, 1e-12)
    assert_close(op.rmatmat(Y), M.T @ Y, 1e-12)
    # 1-D: one channel much longer than a block of positions
    w1 = rng.standard_normal((2 * multiplier, 1, 5))
    op1 = tc.conv_operator(w1, 30_000, groups=2, stride=stride, padding=2)
    M1 = tc.conv_matrix(w1, 30_000, groups=2, stride=stride, padding=2)
    x1 = rng.standard_normal(M1.shape[1])
    assert_close(op1 @ x1, M1 @ x1, 1e-12)


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def compiled(request, monkeypatch):
    """Depthwise layers on the compiled kernels (when numba is installed) and on numpy's."""
    monkeypatch.setattr(tunables, "COMPILED", request.param)
    return request.param and _compiled.kernels(np.dtype(np.float64)) is not None


def test_compiled_kernels_load_when_numba_is_installed():
    """With numba installed (CI installs the ``[fast]`` extra) the compiled path is taken, for
    the dtypes numba compiles; float16 keeps numpy's path."""
    import importlib.util

    installed = importlib.util.find_spec("numba") is not None
    for dtype in (np.float32, np.float64, np.complex64, np.complex128):
        assert (_compiled.kernels(np.dtype(dtype)) is not None) == installed
    assert _compiled.kernels(np.dtype(np.float16)) is None
    w = np.arange(18.0).reshape(2, 1, 3, 3)
    x = np.linspace(-1, 1, 2 * 36)
    want = tc.conv_operator(w, (6, 6), padding=1, groups=2) @ x
    half = tc.conv_operator(w.astype(np.float16), (6, 6), padding=1, groups=2)
    assert_close(half @ x.astype(np.float16), want, 1e-2)


@pytest.mark.parametrize(
    ("n", "stride", "dilation", "padding", "mode"),
    [
        (2, 1, 1, 1, "zeros"),  # padded in the kernel, adjoint by the flipped kernel
        (2, 1, 1, ((2, 0), (0, 1)), "zeros"),
        (2, 1, 2, 0, "zeros"),  # no padding: the signal itself
        (2, 2, 1, 1, "zeros"),  # phases, adjoint by scattered adds
        (2, (2, 1), (1, 2), 2, "reflect"),
        (2, 1, 1, 1, "circular"),
        (1, 1, 1, 2, "zeros"),  # one long output row
        (1, 3, 2, 3, "replicate"),
        (3, 1, 1, 1, "zeros"),
        (3, (1, 2, 1), 1, 1, "reflect"),
    ],
    ids=str,
)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_paths(compiled, n, stride, dilation, padding, mode, multiplier):
    """Depthwise layers (one input channel per group), compiled and numpy, against the loop
    reference's matrix every way round (complex, batches) and in float32."""
    rng = np.random.default_rng(n * 10 + multiplier)
    C, K = 3, (3, 2, 3)[:n]
    size = {1: (23,), 2: (9, 12), 3: (5, 6, 7)}[n]
    w = rng.standard_normal((C * multiplier, 1, *K))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=C, padding_mode=mode)
    M = ref_conv_nd_matrix(w, size, **kw)
    op = tc.conv_operator(w, size, **kw)
    assert op.method == "direct"
    assert_operator_matches(op, M, rng, rtol=1e-12, depth=1)
    x = rng.standard_normal((2, C, *size))
    assert_close(tc.conv(x, w, **kw), ref_conv_nd(x, w, **kw), 1e-12)
    op32 = tc.conv_operator(w.astype(np.float32), size, **kw)
    X = rng.standard_normal((M.shape[1], 2)).astype(np.float32)
    Y = rng.standard_normal((M.shape[0], 2)).astype(np.float32)
    assert_close(op32.matmat(X), M @ X, 1e-5)
    assert_close(op32.rmatmat(Y), M.T @ Y, 1e-5)


@pytest.mark.parametrize("n", [1, 2])
def test_depthwise_tiny_blocks(compiled, monkeypatch, n):
    """Depthwise blocks of a few values (numpy), and channels too large to pad in the
    compiled kernel (padded by numpy first), forward and adjoint."""
    import toeplitz_conv._kernel as kernel_module

    monkeypatch.setattr(kernel_module, "DEPTHWISE_BYTES", 40)
    rng = np.random.default_rng(n)
    size = (31,) if n == 1 else (7, 9)
    w = rng.standard_normal((4, 1, *(3,) * n))
    kw = dict(padding=1, groups=2)
    M = ref_conv_nd_matrix(w, size, **kw)
    op = tc.conv_operator(w, size, **kw)
    X = rng.standard_normal((M.shape[1], 3))
    Y = rng.standard_normal((M.shape[0], 3))
    assert_close(op.matmat(X), M @ X, 1e-12)
    assert_close(op.rmatmat(Y), M.T @ Y, 1e-12)


# (method, stride): every method, and "winograd2" at stride 2 (polyphase tiles)
METHOD_STRIDES = [*((m, 1) for m in METHODS), ("winograd2", 2)]


@pytest.mark.parametrize(("method", "stride"), METHOD_STRIDES, ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_dot_tests(compiled, method, stride, complex_):
    rng = np.random.default_rng(3)
    if method == "fft":
        w, size = _random(rng, (4, 2, 7), complex_), (50,)
        kw = dict(stride=2, padding=(3, 1), groups=2, padding_mode="circular")
    else:
        w, size = _random(rng, (4, 2, 3, 3), complex_), (11, 9)
        kw = dict(stride=stride, padding=((2, 1), 1), groups=2, padding_mode="reflect")
    op = tc.conv_operator(w, size, method=method, **kw)
    dot_test(op, rng)
    dot_test(op.H, rng)
    dot_test(op.T, rng)
    dot_test(op, rng, complex_model=False, complex_data=False)
    tr = tc.conv_transpose_operator(w, size, method=method, groups=kw["groups"], stride=stride)
    assert tr.method == method
    dot_test(tr, rng)


# winograd's float32 error is ~1e-6 to 1e-5 of the output's scale: allowed 1e-4
F32_RTOL = {"direct": 1e-5, "fft": 1e-5, "winograd": 1e-4, "winograd2": 1e-5}


@pytest.mark.parametrize(("method", "stride"), METHOD_STRIDES, ids=str)
@pytest.mark.parametrize("batch", [0, 1, 3])
def test_float32_against_float64_matrix(compiled, method, stride, batch):
    rng = np.random.default_rng(4)
    if method == "fft":
        w, size, kw = rng.standard_normal((8, 8, 3)), (300,), dict(padding=1)
    else:
        w, size = rng.standard_normal((16, 8, 3, 3)), (20, 23)
        kw = dict(padding=1, stride=stride)
    M = tc.conv_matrix(w, size, format="dense", **kw)
    op = tc.conv_operator(w.astype(np.float32), size, method=method, **kw)
    X = rng.standard_normal((M.shape[1], batch)).astype(np.float32)
    Y = rng.standard_normal((M.shape[0], batch)).astype(np.float32)
    got, got_t = op.matmat(X), op.rmatmat(Y)
    assert got.dtype == np.float32 and got_t.dtype == np.float32
    assert got.shape == (M.shape[0], batch) and got_t.shape == (M.shape[1], batch)
    assert_close(got, M @ X.astype(np.float64), F32_RTOL[method])
    assert_close(got_t, M.T @ Y.astype(np.float64), F32_RTOL[method])


@pytest.mark.parametrize(("method", "stride"), [("auto", 1), ("auto", 2), *METHOD_STRIDES], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_passes_against_torch(compiled, torch, method, stride, dtype):
    """tc.conv / tc.conv_transpose with `method` against torch, batches of 0 and 2."""
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    rtol = {np.float32: F32_RTOL.get(method, 1e-5), np.float64: 1e-11}[dtype]
    n = 1 if method == "fft" else 2
    w = rng.standard_normal((6, 3, *(3,) * n)).astype(dtype)
    kw = dict(padding=1, groups=2, stride=stride)
    for batch in (0, 2):
        x = rng.standard_normal((batch, 6, *(17,) * n)).astype(dtype)
        conv, conv_t = (F.conv1d, F.conv_transpose1d) if n == 1 else (F.conv2d, F.conv_transpose2d)
        got = tc.conv(x, w, method=method, **kw)
        want = conv(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()
        assert got.dtype == dtype
        assert_close(got, want, rtol)
        y = rng.standard_normal((batch, 6, *(17,) * n)).astype(dtype)
        got_t = tc.conv_transpose(y, w, method=method, **kw)
        want_t = conv_t(torch.from_numpy(y), torch.from_numpy(w), **kw).numpy()
        assert_close(got_t, want_t, rtol)


def test_auto_choice_is_public_and_small_layers_run_direct():
    rng = np.random.default_rng(6)
    assert tc.conv_operator(rng.standard_normal((4, 4, 3, 3)), 9).method == "direct"
    assert tc.conv_operator(rng.standard_normal((2, 2, 3)), 90).method == "direct"
    thick_3d = rng.standard_normal((64, 64, 3, 3, 3)).astype(np.float32)  # no 3-D tiles
    assert tc.conv_operator(thick_3d, (12, 12, 12), padding=1).method == "direct"
    op = tc.conv1d_operator(rng.standard_normal((2, 2, 100)), 400)
    assert op.method == "fft"
    assert op.H.method == op.T.method == op.adjoint().method == "fft"
    assert tc.conv2d_operator(rng.standard_normal((3, 3)), 8, method="winograd").method == (
        "winograd"
    )
    with pytest.raises(AttributeError):
        op.method = "direct"


@pytest.mark.parametrize(
    ("shape", "size", "kw", "want"),
    [
        ((64, 64, 3, 3), (28, 28), dict(padding=1), "winograd2"),
        ((128, 64, 3, 3), (30, 30), dict(padding="valid"), "winograd2"),
        ((64, 64, 3, 3), (28, 28), dict(padding=1, padding_mode="reflect"), "winograd2"),
        ((64, 64, 3, 3), (6, 6), dict(padding=1), "direct"),  # too small
        ((64, 64, 3, 3), (28, 28), dict(padding=1, stride=2), "s2"),
        ((128, 128, 3, 3), (28, 28), dict(padding=1, stride=2), "s2"),
        ((128, 64, 3, 3), (56, 56), dict(padding=1, stride=2), "direct"),  # widens
        ((64, 128, 3, 3), (28, 28), dict(padding=1, stride=2), "s2"),  # narrows
        ((256, 256, 3, 3), (28, 28), dict(padding=1, stride=2), "direct"),  # 256 channels
        ((64, 64, 3, 3), (14, 14), dict(padding=1, stride=2), "direct"),  # too small
        ((64, 64, 3, 3), (28, 28), dict(padding=1, stride=(2, 1)), "direct"),
        ((64, 64, 3, 3), (28, 28), dict(padding=2, dilation=2), "direct"),
        ((64, 64, 5, 5), (28, 28), dict(padding=2), "direct"),
        ((64, 1, 3, 3), (56, 56), dict(padding=1, groups=64), "direct"),  # depthwise
        ((64, 8, 3, 3), (56, 56), dict(padding=1, groups=8), "direct"),  # thin groups
    ],
    ids=str,
)
def test_auto_takes_winograd2_for_thick_dense_3x3(compiled, shape, size, kw, want):
    """ "auto" takes F(2x2, 3x3) for thick 2-D 3x3 layers (the thresholds of WINOGRAD2_FROM,
    compiled or numpy; "s2": stride 2, WINOGRAD2_STRIDE2, compiled only), forward and
    adjoint, and rounds within 10x the direct sum (float32, against the float64 direct
    operator)."""
    if want == "s2":
        want = "winograd2" if compiled else "direct"
    rng = np.random.default_rng(7)
    w = rng.standard_normal(shape)
    w32 = w.astype(np.float32)
    auto = tc.conv_operator(w32, size, **kw)
    assert auto.method == want
    assert auto.H.method == want
    if want == "direct":
        return
    exact = tc.conv_operator(w, size, method="direct", **kw)
    direct = tc.conv_operator(w32, size, method="direct", **kw)
    x = rng.standard_normal(exact.shape[1])
    y = rng.standard_normal(exact.shape[0])
    for apply, v, ref in (
        (lambda o, u: o @ u, x, exact @ x),
        (lambda o, u: o.H @ u, y, exact.H @ y),
    ):
        err = {
            name: float(np.abs(apply(op, v.astype(np.float32)) - ref).max() / np.abs(ref).max())
            for name, op in (("auto", auto), ("direct", direct))
        }
        assert err["auto"] <= 10 * err["direct"], err
        assert err["auto"] <= 2e-6, err


@pytest.mark.parametrize("compiled_path", [True, False], ids=["compiled", "numpy"])
def test_auto_thresholds(monkeypatch, compiled_path):
    """The thresholds of WINOGRAD2_FROM and WINOGRAD2_MOST: channels per group and output
    volume, at the edge."""
    import toeplitz_conv._kernel as kernel_module

    monkeypatch.setattr(tunables, "COMPILED", compiled_path)
    fast = compiled_path and _compiled.kernels(np.dtype(np.float32)) is not None
    channels, volume = kernel_module.WINOGRAD2_FROM["compiled" if fast else "numpy"]
    side = int(np.ceil(np.sqrt(volume / channels)))
    w = np.zeros((channels, channels, 3, 3), dtype=np.float32)
    assert tc.conv_operator(w, side, padding=1).method == "winograd2"
    assert tc.conv_operator(w, side - 1, padding=1).method == "direct"
    w_thin = np.zeros((channels, channels - 1, 3, 3), dtype=np.float32)
    assert tc.conv_operator(w_thin, 2 * side, padding=1).method == "direct"
    most = kernel_module.WINOGRAD2_MOST  # and at most this many channels per group
    w_most = np.zeros((most, most, 3, 3), dtype=np.float32)
    assert tc.conv_operator(w_most, side, padding=1).method == "winograd2"
    for shape in ((most + 1, most), (most, most + 1), (2 * most, 2 * most)):
        w_wide = np.zeros((*shape, 3, 3), dtype=np.float32)
        assert tc.conv_operator(w_wide, side, padding=1).method == "direct", shape


def test_auto_stride2_thresholds(compiled):
    """The thresholds of WINOGRAD2_STRIDE2 at their edges: channels per group at least
    ``least`` and at most ``most``, not widening, and the output volume; numpy never."""
    import toeplitz_conv._kernel as kernel_module

    least, most, volume = kernel_module.WINOGRAD2_STRIDE2
    side = int(np.ceil(np.sqrt(volume / least)))  # the output side: input 2 side, padding 1

    def method(c_out, c_in, out_side, groups=1):
        w = np.zeros((c_out, c_in // groups, 3, 3), dtype=np.float32)
        return tc.conv_operator(w, 2 * out_side, stride=2, padding=1, groups=groups).method

    want = "winograd2" if compiled else "direct"
    assert method(least, least, side) == want
    assert method(most, most, side) == want
    assert method(least, 2 * least, side) == want  # narrows
    assert method(least, least, side - 1) == "direct"
    assert method(least - 1, least - 1, 2 * side) == "direct"
    assert method(most + 1, most + 1, side) == "direct"
    assert method(2 * least, least, side) == "direct"  # widens
    assert method(2 * least, 2 * least, side, groups=2) == want  # per group


@pytest.mark.parametrize("bad", ["Direct", "fast", "", None, 3])
def test_bad_method_names_the_argument_value_and_choices(bad):
    w = np.ones((1, 1, 3, 3))
    for make in (
        lambda: tc.conv_operator(w, 8, method=bad),
        lambda: tc.conv_transpose2d_operator(w, 8, method=bad),
        lambda: tc.conv2d(np.ones((1, 8, 8)), w, method=bad),
        lambda: tc.conv_transpose(np.ones((1, 8, 8)), w, method=bad),
    ):
        with pytest.raises(ValueError, match="`method` must be one of") as info:
            make()
        assert repr(bad) in str(info.value)
        assert "'winograd'" in str(info.value) and "'auto'" in str(info.value)


@pytest.mark.parametrize(
    "shape, size, kw, why",
    [
        ((1, 1, 5, 5), (9, 9), {}, "kernel_size=\\(5, 5\\)"),
        ((1, 1, 3, 3), (9, 9), {"stride": (2, 1)}, "stride=\\(2, 1\\)"),
        ((1, 1, 3, 3), (9, 9), {"stride": 3}, "stride=\\(3, 3\\)"),
        ((1, 1, 3), (9,), {"dilation": 2}, "dilation=\\(2,\\)"),
        ((1, 1, 3, 3, 3), (5, 5, 5), {}, "kernel_size=\\(3, 3, 3\\)"),
    ],
)
@pytest.mark.parametrize("method", WINOGRAD)
def test_winograd_refuses_other_layers(shape, size, kw, why, method):
    with pytest.raises(ValueError, match=rf"method='{method}' computes.*{why}"):
        tc.conv_operator(np.ones(shape), size, method=method, **kw)
    with pytest.raises(ValueError, match=f"method='{method}'"):
        tc.conv(np.ones((1, *size)), np.ones(shape), method=method, **kw)


def test_winograd_f4_refuses_stride_2():
    """Only F(2, 3) has stride-2 tiles; F(4, 3) names what it takes."""
    with pytest.raises(ValueError, match=r"method='winograd' computes.*stride 1 on every axis"):
        tc.conv_operator(np.ones((1, 1, 3, 3)), 9, stride=2, method="winograd")
    assert tc.conv_operator(np.ones((1, 1, 3, 3)), 9, stride=2, method="winograd2").method == (
        "winograd2"
    )


def test_fft_refuses_nd_layers():
    with pytest.raises(ValueError, match=r"method=.fft. is for 1-D layers.*2 spatial axes"):
        tc.conv_operator(np.ones((1, 1, 3, 3)), 9, method="fft")
    with pytest.raises(ValueError, match=r"method=.fft. is for 1-D layers.*3 spatial axes"):
        tc.conv3d(np.ones((1, 4, 4, 4)), np.ones((2, 2, 2)), method="fft")


@pytest.mark.parametrize("c, K, n", [(1, 64, 4096), (1, 700, 4096), (4, 100, 2048)])
def test_auto_error_within_ten_times_direct(c, K, n):
    """What "auto" picks (FFT on these long kernels) rounds within 10x the direct sum (float32)."""
    rng = np.random.default_rng(K)
    w, x = rng.standard_normal((c, c, K)), rng.standard_normal(c * n)
    exact = tc.conv_operator(w, (n,), method="direct") @ x
    w32, x32 = w.astype(np.float32), x.astype(np.float32)
    auto = tc.conv_operator(w32, (n,))
    assert auto.method == "fft"
    err = {
        m: float(np.abs(op @ x32 - exact).max() / np.abs(exact).max())
        for m, op in (("auto", auto), ("direct", tc.conv_operator(w32, (n,), method="direct")))
    }
    assert err["auto"] <= 10 * err["direct"], err


@pytest.mark.parametrize(("method", "stride"), [(m, 1) for m in WINOGRAD] + [("winograd2", 2)])
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_winograd_in_many_blocks(compiled, monkeypatch, method, stride, n, dtype):
    """Tiles taken a few rows at a time (tiny blocks, a partial last one), batches of 3."""
    import toeplitz_conv._plan as plan_module

    tiny = plan_module.Blocking(block_bytes=64, thin_bytes=64, min_cols=1)
    monkeypatch.setattr(plan_module, "BLOCKING", tiny)
    rng = np.random.default_rng(n)
    w = _random(rng, (5, 4, *(3,) * n), dtype == np.complex128)
    size = (23,) if n == 1 else (19, 10)
    kw = dict(padding=1, padding_mode="zeros", stride=stride)
    M = tc.conv_matrix(w, size, format="dense", **kw)
    op = tc.conv_operator(w, size, method=method, **kw)
    assert op.method == method
    X = _random(rng, (M.shape[1], 3), dtype == np.complex128)
    Y = _random(rng, (M.shape[0], 3), dtype == np.complex128)
    assert_close(op.matmat(X), M @ X, 1e-10)
    assert_close(op.rmatmat(Y), M.conj().T @ Y, 1e-10)
    dot_test(op, rng)


@pytest.mark.parametrize(
    ("padding", "dilation", "mode"),
    [
        (1, 1, "zeros"),  # the flipped pass computes just the signal
        (((2, 0), (0, 1)), 1, "zeros"),
        ((3, 2), 1, "zeros"),  # left padding above d(K-1): padded gradient, folded
        (2, 2, "zeros"),
        (0, 1, "reflect"),  # nothing to fold
        (1, 1, "reflect"),  # folded: products and scattered adds
        (1, 1, "circular"),
    ],
    ids=str,
)
@pytest.mark.parametrize("method", ["direct", *WINOGRAD])
def test_thick_adjoint_paths(compiled, padding, dilation, mode, method):
    """Thick layers (16+ output channels): the adjoint by the flipped kernel's forward pass
    where no padding is folded, otherwise as before; float32 against the float64 matrix."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((16, 3, 3, 3))
    size = (9, 11)
    kw = dict(padding=padding, dilation=dilation, padding_mode=mode)
    if method in WINOGRAD and dilation != 1:  # refused by name, not computed
        with pytest.raises(ValueError, match=rf"method='{method}'.*dilation=\(2, 2\)"):
            tc.conv_operator(w, size, method=method, **kw)
        return
    M = tc.conv_matrix(w, size, format="dense", **kw)
    op = tc.conv_operator(w, size, method=method, **kw)
    Y = rng.standard_normal((M.shape[0], 2))
    assert_close(op.rmatmat(Y), M.T @ Y, 1e-10)
    dot_test(op, rng)
    op32 = tc.conv_operator(w.astype(np.float32), size, method=method, **kw)
    assert_close(op32.rmatmat(Y.astype(np.float32)), M.T @ Y, 1e-4)


def test_winograd_without_numba(monkeypatch):
    """numba missing (its import fails): the 2-D Winograd transforms run numpy's GEMMs and
    "auto" chooses by numpy's thresholds, with the same results."""
    import sys

    import toeplitz_conv._kernel as kernel_module

    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    monkeypatch.setattr(_compiled, "_built", {})
    assert _compiled.kernels(np.dtype(np.float32)) is None
    channels, volume = kernel_module.WINOGRAD2_FROM["numpy"]
    side = int(np.ceil(np.sqrt(volume / channels)))
    rng = np.random.default_rng(8)
    w = rng.standard_normal((channels, channels, 3, 3))
    op = tc.conv_operator(w.astype(np.float32), side, padding=1)
    assert op.method == "winograd2"
    thin = tc.conv_operator(w[: channels // 2, : channels // 2].astype(np.float32), 2 * side)
    assert thin.method == "direct"
    exact = tc.conv_operator(w, side, padding=1, method="direct")
    x, y = rng.standard_normal(exact.shape[1]), rng.standard_normal(exact.shape[0])
    assert_close(op @ x.astype(np.float32), exact @ x, 1e-5)
    assert_close(op.H @ y.astype(np.float32), exact.H @ y, 1e-5)
    f4 = tc.conv_operator(w[:4, :3], (9, 7), padding=1, method="winograd")
    M = tc.conv_matrix(w[:4, :3], (9, 7), padding=1, format="dense")
    assert_operator_matches(f4, M, rng, rtol=1e-10, depth=1)
    strided = tc.conv_operator(w.astype(np.float32), 2 * side, stride=2, padding=1)
    assert strided.method == "direct"  # the stride-2 tiles only with numba
    s2 = tc.conv_operator(w[:4, :3], (9, 7), stride=2, padding=1, method="winograd2")
    M2 = tc.conv_matrix(w[:4, :3], (9, 7), stride=2, padding=1, format="dense")
    assert_operator_matches(s2, M2, rng, rtol=1e-10, depth=1)


@pytest.mark.parametrize(("method", "stride"), [(m, 1) for m in WINOGRAD] + [("winograd2", 2)])
@pytest.mark.parametrize("threads", ["2", "3"])
@pytest.mark.parametrize("batch", [1, 2])
def test_winograd_2d_blocks_on_threads(compiled, monkeypatch, method, stride, threads, batch):
    """2-D tiles in runs of blocks on several threads (uneven on three), forward and adjoint
    (at stride 2 each run's rows of the gradient added on at the end), complex, against the
    matrix."""
    import toeplitz_conv._plan as plan_module
    import toeplitz_conv._winograd as winograd_module

    monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", threads)
    monkeypatch.setattr(winograd_module, "PARALLEL_BYTES", 0)
    tiny = plan_module.Blocking(block_bytes=4096, thin_bytes=4096, min_cols=1)
    monkeypatch.setattr(plan_module, "BLOCKING", tiny)  # blocks of a tile row or two
    rng = np.random.default_rng(int(threads) + batch)
    w = _random(rng, (6, 4, 3, 3), True)
    size = (29, 13)  # 15 (stride 1) or 8 (stride 2) tile rows of 2; 4 of 4 outputs
    kw = dict(padding=1, stride=stride, groups=2)
    M = tc.conv_matrix(w, size, format="dense", **kw)
    op = tc.conv_operator(w, size, method=method, **kw)
    X = _random(rng, (M.shape[1], batch), True)
    Y = _random(rng, (M.shape[0], batch), True)
    assert_close(op.matmat(X), M @ X, 1e-10)
    assert_close(op.rmatmat(Y), M.conj().T @ Y, 1e-10)
    dot_test(op, rng)

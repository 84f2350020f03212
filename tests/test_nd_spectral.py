"""N-d spectra, norms and certified brackets against independent references.

References written here, not taken from the library: Sedghi et al.'s formula (the
``fftn`` of the kernel padded to the input size, one SVD per frequency), and the dense
matrix built by pushing the identity through torch's ``conv2d``/``conv3d`` after
``F.pad`` (probing, in the tests only).
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from strategies import conv_nd_configs
from toeplitz_conv._linop import LayerOperator
from toeplitz_conv.spectral import _bracket, _certify, _krylov, _localize, _method
from toeplitz_conv.spectral import _symbol as _sym

MODES = ["zeros", "reflect", "replicate", "circular"]


def torch_matrix(torch, w, size, *, stride=1, padding=0, dilation=1, groups=1, mode="zeros"):
    """The dense matrix of an N-d conv, by probing torch with the identity (complex: by parts)."""
    w = np.asarray(w)
    if w.dtype.kind == "c":
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, mode=mode)
        return torch_matrix(torch, w.real, size, **kw) + 1j * torch_matrix(
            torch, w.imag, size, **kw
        )
    F = torch.nn.functional
    n = len(size)
    pads = [padding] * n if isinstance(padding, int) else list(padding)
    pads = [(p, p) if isinstance(p, int) else tuple(p) for p in pads]
    c_in = w.shape[1] * groups
    cols = c_in * int(np.prod(size))
    x = torch.eye(cols, dtype=torch.float64).reshape(cols, c_in, *size)
    flat = [v for p in reversed(pads) for v in p]  # F.pad: last axis first
    x = F.pad(x, flat, mode="constant" if mode == "zeros" else mode)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    y = conv(x, torch.from_numpy(w), stride=stride, dilation=dilation, groups=groups)
    return y.reshape(cols, -1).T.numpy()


def sedghi_singular_values(w, size, dilation=(1, 1)):
    """Sedghi, Gupta & Long (2019): fftn of the (dilated) kernel padded to the input size."""
    c_out, c_in = w.shape[:2]
    K = w.shape[2:]
    big = np.zeros((c_out, c_in, *(d * (k - 1) + 1 for d, k in zip(dilation, K, strict=True))))
    big = big.astype(w.dtype)
    big[(slice(None), slice(None), *(slice(None, None, d) for d in dilation))] = w
    A = np.fft.fftn(big, s=size, axes=tuple(range(2, 2 + len(size))))
    A = np.moveaxis(A.reshape(c_out, c_in, -1), 2, 0)
    return np.sort(np.linalg.svd(A, compute_uv=False).ravel())[::-1]


# --------------------------------------------------------------------------- circular
@pytest.mark.parametrize("complex_weights", [False, True])
@pytest.mark.parametrize(
    ("shape", "size", "dilation"),
    [
        ((3, 4, 3, 3), (6, 5), (1, 1)),
        ((4, 2, 2, 3), (8, 7), (2, 1)),
        ((2, 3, 3, 1), (5, 4), (1, 1)),
        ((2, 2, 3, 2, 2), (4, 5, 3), (1, 1, 1)),
    ],
)
def test_circular_spectrum_is_sedghis(shape, size, dilation, complex_weights):
    rng = np.random.default_rng(sum(shape) + len(size))
    w = rng.standard_normal(shape)
    if complex_weights:
        w = w + 1j * rng.standard_normal(shape)
    n = len(size)
    pad = tuple(d * (k - 1) // 2 for d, k in zip(dilation, shape[2:], strict=True))
    pad = tuple((p, d * (k - 1) - p) for p, d, k in zip(pad, dilation, shape[2:], strict=True))
    got = tc.singular_values(w, size, padding=pad, dilation=dilation, padding_mode="circular")
    expected = sedghi_singular_values(w, size, dilation[:n])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * expected[0])
    norm = tc.spectral_norm(w, size, padding=pad, dilation=dilation, padding_mode="circular")
    assert norm == pytest.approx(expected[0], rel=1e-13)
    lo, hi = tc.spectral_norm_bounds(
        w, size, padding=pad, dilation=dilation, padding_mode="circular"
    )
    assert lo <= expected[0] * (1 + 1e-13) and hi >= expected[0] * (1 - 1e-13)
    assert hi - lo <= 1e-12 * hi
    cond = tc.condition_number(w, size, padding=pad, dilation=dilation, padding_mode="circular")
    assert cond == pytest.approx(expected[0] / expected[-1], rel=1e-9)


@pytest.mark.parametrize("complex_weights", [False, True])
@pytest.mark.parametrize(
    ("shape", "size", "stride", "dilation", "groups", "padding"),
    [
        ((4, 3, 3, 3), (8, 6), (2, 1), (1, 1), 1, 1),
        ((4, 2, 3, 2), (6, 8), (3, 2), (1, 2), 2, ((1, 0), (1, 1))),
        ((2, 2, 2, 2, 3), (4, 4, 6), (2, 1, 3), 1, 1, (0, (1, 0), 1)),
        ((6, 1, 3, 3), (4, 6), 2, 1, 2, 1),
    ],
)
def test_strided_circular_spectrum_matches_dense(
    torch, shape, size, stride, dilation, groups, padding, complex_weights
):
    """The per-axis polyphase split: exact where every stride divides its axis."""
    rng = np.random.default_rng(len(size) * 7 + shape[0])
    w = rng.standard_normal(shape)
    if complex_weights:
        w = w + 1j * rng.standard_normal(shape)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    layer = _sym.analysis_layer(w, size, stride, padding, dilation, groups, "circular")
    assert _sym.is_circulant(layer)
    got = tc.singular_values(w, size, padding_mode="circular", method="fft", **kw)
    M = torch_matrix(torch, w, size, mode="circular", **kw)
    expected = np.linalg.svd(M, compute_uv=False)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * expected[0])
    assert tc.spectral_norm(w, size, padding_mode="circular", **kw) == pytest.approx(
        expected[0], rel=1e-13
    )


def test_fft_refused_for_a_layer_that_is_not_circulant():
    w = np.ones((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"method`='fft' needs a block-circulant layer"):
        tc.singular_values(
            w, (6, 5), padding=1, stride=(1, 2), padding_mode="circular", method="fft"
        )


def test_one_axis_tuple_is_the_1d_layer():
    w = np.random.default_rng(3).standard_normal((3, 2, 4))
    for mode in MODES:
        a = tc.singular_values(w, 9, padding=2, padding_mode=mode)
        b = tc.singular_values(w, (9,), padding=(2,), padding_mode=mode)
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- the symbol
def test_symbol_is_the_fft_of_the_kernel():
    """``A(theta)`` at the grid angles is the phase-shifted ``fftn`` of each channel pair."""
    w = np.random.default_rng(4).standard_normal((3, 2, 3, 4))
    size = (7, 9)
    layer = _sym.analysis_layer(w, size, 1, (1, 2), 1, 1, "circular")
    sym = _sym.layer_symbol(layer)
    f = np.array(list(itertools.product(range(7), range(9))))
    A = sym(2 * np.pi * f / np.array(size))[:, 0]  # (T, 3, 2)
    # A(theta) = sum_k W[k] e^{i theta.(k - p - c)} = conj(fft)(f) up to one phase per f
    F = np.fft.fftn(w, s=size, axes=(2, 3)).reshape(3, 2, -1).transpose(2, 0, 1)
    ratio = A / F.conj()
    np.testing.assert_allclose(np.abs(ratio), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ratio, ratio[:, :1, :1] * np.ones_like(ratio), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n_axes=st.integers(2, 3),
    c_out=st.integers(1, 4),
    c_in=st.integers(1, 4),
    K=st.integers(1, 3),
    complex_weights=st.booleans(),
    rtol=st.sampled_from([0.0, 1e-9, 1e-3]),
    seed=st.integers(0, 2**16),
)
def test_box_branch_and_bound_is_certified(n_axes, c_out, c_in, K, complex_weights, rtol, seed):
    """Upper covers every grid value of an n-D grid; best is a grid value it attains."""
    rng = np.random.default_rng(seed)
    shape = (c_out, c_in, *([K] * n_axes))
    w = rng.standard_normal(shape)
    if complex_weights:
        w = w + 1j * rng.standard_normal(shape)
    size = tuple(int(v) for v in rng.integers(3, 25 if n_axes == 2 else 9, n_axes))
    layer = _sym.analysis_layer(w, size, 1, K // 2, 1, 1, "zeros")
    sym = _sym.layer_symbol(layer)
    upper, best, f = _certify.grid_max(sym, size, rtol=rtol)
    grid = np.array(list(itertools.product(*(range(v) for v in size))))
    values = np.linalg.svd(sym(2 * np.pi * grid / np.array(size)), compute_uv=False)[..., 0]
    values = values.max(axis=-1).reshape(size)
    top = values.max()
    assert top * (1 - 1e-13) <= upper <= top * (1 + rtol) + 1e-9 * top
    assert best <= values[f] * (1 + 1e-13)
    assert best >= top * (1 - 1e-9) / (1 + rtol)


def test_prove_below_is_sound_in_2d():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((3, 4, 3, 2)) + 1j * rng.standard_normal((3, 4, 3, 2))
    sym = _sym.layer_symbol(_sym.analysis_layer(w, (10, 12), (2, 1), 1, 1, 1, "zeros"))
    theta = rng.uniform(-np.pi, np.pi, (15, 2))
    top = np.linalg.svd(sym(theta), compute_uv=False)[..., 0].max(axis=-1)
    assert not _certify._prove_below(sym, theta, top * (1 - 1e-9)).any()
    assert _certify._prove_below(sym, theta, top * (1 + 1e-8)).all()


# --------------------------------------------------------------------------- brackets
def _layers():
    """Small N-d layers for every padding mode and stride."""
    yield (4, 3, 3, 3), (9, 8), dict(padding=1)
    yield (3, 2, 3, 2), (10, 7), dict(padding=(1, (0, 1)), stride=(2, 1))
    yield (2, 4, 3, 3), (8, 9), dict(padding=2, dilation=(2, 1), stride=(1, 3))
    yield (4, 2, 2, 3, 2), (5, 4, 6), dict(padding=(1, 1, (1, 0)), stride=(2, 1, 1))
    yield (4, 1, 3, 3), (7, 8), dict(padding=1, groups=2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(_layers()))
def test_bracket_contains_the_dense_norm(torch, monkeypatch, mode, case):
    """The iterative bracket alone (dense fallback off) contains the norm of the dense matrix."""
    shape, size, kw = case
    groups = kw.get("groups", 1)
    w = np.random.default_rng(sum(shape)).standard_normal(shape)
    if shape[1] * groups < shape[0]:
        w = w[: shape[0]]
    layer = _sym.analysis_layer(
        w, size, kw.get("stride", 1), kw["padding"], kw.get("dilation", 1), groups, mode
    )
    M = torch_matrix(torch, w, size, mode=mode, **kw)
    norm = np.linalg.norm(M, 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    lower, upper = _bracket.bracket(layer, 1e-6, _method.Budget(60, None), np.random.default_rng(0))
    assert lower <= norm * (1 + 1e-12)
    assert upper >= norm * (1 - 1e-12)
    if mode == "zeros":  # the circulant embedding alone: within the boundary effect
        assert upper <= norm * 1.5
    if _sym.is_circulant(layer):  # the public path: exact by FFT
        lo, hi = tc.spectral_norm_bounds(w, size, padding_mode=mode, **kw)
        assert lo <= norm * (1 + 1e-13) and hi >= norm * (1 - 1e-13)
        assert hi - lo <= 1e-12 * hi


@pytest.mark.parametrize("complex_weights", [False, True])
def test_bracket_2d_complex_and_real(torch, monkeypatch, complex_weights):
    rng = np.random.default_rng(21)
    w = rng.standard_normal((3, 3, 3, 3))
    if complex_weights:
        w = w + 1j * rng.standard_normal(w.shape)
    size = (14, 12)
    M = torch_matrix(torch, w, size, padding=1)
    norm = np.linalg.norm(M, 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    layer = _sym.analysis_layer(w, size, 1, 1, 1, 1, "zeros")
    lower, upper = _bracket.bracket(layer, 1e-4, _method.Budget(80, None))
    assert lower <= norm * (1 + 1e-12) <= upper * (1 + 2e-12)
    assert (norm - lower) <= 1e-4 * norm  # Lanczos from the windowed exponential converges
    assert upper <= norm * 1.05


def test_start_vector_nd_is_near_the_top():
    """The separable windowed exponential at the peak: a unit vector with a high quotient."""
    w = np.random.default_rng(2).standard_normal((4, 3, 3, 3))
    layer = _sym.analysis_layer(w, (40, 36), 1, 1, 1, 1, "zeros")
    sym = _sym.layer_symbol(layer)
    upper, _, f = _certify.grid_max(sym, layer.input_size, rtol=1e-6)
    theta = _certify.refine_peak(sym, f, layer.input_size)
    x, mx = _krylov.start_vector(layer, sym, theta)
    assert mx is None and x.dtype == np.float64
    assert np.linalg.norm(x) == pytest.approx(1.0)
    quotient = np.linalg.norm(LayerOperator(layer).matvec(x))
    assert 0.97 * upper <= quotient <= upper


def test_operator_matches_torch_2d(torch):
    """The N-d operator the Lanczos runs on: ``M x`` and ``M^H y`` of the probed matrix."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 2, 3, 2)) + 1j * rng.standard_normal((3, 2, 3, 2))
    kw = dict(padding=(1, (1, 0)), stride=(2, 1))
    M = torch_matrix(torch, w, (7, 6), mode="reflect", **kw)
    op = LayerOperator(_sym.analysis_layer(w, (7, 6), (2, 1), kw["padding"], 1, 1, "reflect"))
    x = rng.standard_normal(M.shape[1]) + 1j * rng.standard_normal(M.shape[1])
    y = rng.standard_normal(M.shape[0]) + 1j * rng.standard_normal(M.shape[0])
    np.testing.assert_allclose(op.matvec(x), M @ x, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(y), M.conj().T @ y, atol=1e-12)


# --------------------------------------------------------------------------- budgets
def test_exhausted_budget_warns_with_the_certified_bracket(torch, monkeypatch):
    """maxiter=0: no Lanczos step; the warning names a bracket that holds the norm."""
    w = np.random.default_rng(8).standard_normal((4, 4, 3, 3))
    size = (12, 10)
    M = torch_matrix(torch, w, size, padding=1, mode="replicate")
    norm = np.linalg.norm(M, 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    monkeypatch.setattr(_method, "DENSE_NORM_SIDE", 0)
    with pytest.warns(RuntimeWarning, match=r"certified bracket \[") as record:
        value = tc.spectral_norm(w, size, padding=1, padding_mode="replicate", maxiter=0)
    assert value <= norm * (1 + 1e-12)
    text = str(record[0].message)
    lo, hi = (float(v) for v in text.split("[")[1].split("]")[0].split(","))
    assert lo <= norm * (1 + 1e-9) and hi >= norm * (1 - 1e-9)
    bounds = tc.spectral_norm_bounds(w, size, padding=1, padding_mode="replicate", maxiter=0)
    assert bounds.lower <= norm * (1 + 1e-12) and bounds.upper >= norm * (1 - 1e-12)


def test_tuple_input_size_errors():
    w = np.ones((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"weight|input_size"):
        tc.spectral_norm(w, (5, 5, 5))
    with pytest.raises(ValueError, match=r"stride\[1\]"):
        tc.singular_values(w, (5, 5), stride=(1, 0))


def test_deterministic_nd():
    w = np.random.default_rng(6).standard_normal((3, 3, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = _sym.analysis_layer(w, (30, 31), 1, 1, 1, 1, "zeros")
        a = _bracket.bracket(layer, 1e-3, _method.Budget(30, None))
        b = _bracket.bracket(layer, 1e-3, _method.Budget(30, None))
    assert a == b


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(_layers()))
def test_small_layers_exact_by_dense_svd(torch, mode, case):
    """Small N-d matrices: the whole spectrum, the norm and the condition number, exact."""
    shape, size, kw = case
    w = np.random.default_rng(sum(shape) + 1).standard_normal(shape)
    M = torch_matrix(torch, w, size, mode=mode, **kw)
    expected = np.linalg.svd(M, compute_uv=False)
    got = tc.singular_values(w, size, padding_mode=mode, **kw)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * expected[0])
    np.testing.assert_allclose(
        tc.singular_values(w, size, padding_mode=mode, k=3, **kw), expected[:3], rtol=1e-12
    )
    assert tc.spectral_norm(w, size, padding_mode=mode, **kw) == pytest.approx(
        expected[0], rel=1e-12
    )
    lo, hi = tc.spectral_norm_bounds(w, size, padding_mode=mode, **kw)
    assert lo <= expected[0] * (1 + 1e-12) and hi >= expected[0] * (1 - 1e-12)
    cond = tc.condition_number(w, size, padding_mode=mode, **kw)
    small = expected[-1] <= max(M.shape) * np.finfo(float).eps * expected[0]
    assert cond == (np.inf if small else pytest.approx(expected[0] / expected[-1], rel=1e-8))


def test_resnet_layer_tiny_time_limit_returns_a_valid_bracket():
    """A ResNet-shaped layer (256 channels, 14x14) under a tiny time_limit: the grid maximum's
    branch and bound stops at the deadline, and the bracket is still certified."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 256, 3, 3)) * np.sqrt(2 / (256 * 9))
    lo, hi = tc.spectral_norm_bounds(w, (14, 14), padding=1, time_limit=0.01)
    assert 0 < lo <= hi
    layer = _sym.analysis_layer(w, (14, 14), 1, 1, 1, 1, "zeros")
    x = rng.standard_normal(layer.shape[1])
    op = LayerOperator(layer)
    for _ in range(3):  # a few power steps: an attained ratio, below every valid upper end
        x = op.rmatvec(op.matvec(x))
        x /= np.linalg.norm(x)
    assert np.linalg.norm(op.matvec(x)) <= hi * (1 + 1e-12)
    with pytest.warns(RuntimeWarning, match="time_limit=0.01"):
        norm = tc.spectral_norm(w, (14, 14), padding=1, rtol=1e-9, time_limit=0.01)
    assert lo * (1 - 1e-9) <= norm <= hi


def test_grid_max_deadline_keeps_a_valid_bound():
    """Past the deadline the open boxes keep their bound: the result still covers the grid."""
    w = np.random.default_rng(1).standard_normal((8, 8, 3, 3))
    layer = _sym.analysis_layer(w, (40, 40), 1, 1, 1, 1, "circular")
    sym = _sym.layer_symbol(layer)
    exact, _, _ = _certify.grid_max(sym, (40, 40), rtol=0.0)
    upper, best, _ = _certify.grid_max(_sym.layer_symbol(layer), (40, 40), rtol=1e-9, deadline=0.0)
    assert best <= exact * (1 + 1e-12) and upper >= exact * (1 - 1e-12)


# --------------------------------------------------------------------------- edge localisation
def _circulant_bound(layer):
    """``||T||`` for the zero-padded part: the symbol's certified maximum on the embedding."""
    sym = _sym.layer_symbol(layer)
    return _certify.grid_max(sym, _certify.embedding_lengths(layer, np.nan, 1)[0], rtol=1e-3)[0]


def _localized_case(cfg, complex_weights):
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel_size"])
    w = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if complex_weights else 0)
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    M = tc.conv_matrix(
        w, cfg["input_size"], groups=cfg["groups"], padding_mode=cfg["mode"], format="dense", **kw
    )
    layer = _sym.analysis_layer(
        w,
        cfg["input_size"],
        cfg["stride"],
        cfg["padding"],
        cfg["dilation"],
        cfg["groups"],
        cfg["mode"],
    )
    return M, layer


@settings(max_examples=40, deadline=None)
@given(
    cfg=st.one_of(
        conv_nd_configs(n=2, modes=("reflect", "replicate"), max_length=20),
        conv_nd_configs(n=3, modes=("reflect", "replicate"), max_length=10, max_channels=1),
    ),
    complex_weights=st.booleans(),
    ell=st.integers(1, 4),
)
def test_localized_bound_holds_the_dense_norm(cfg, complex_weights, ell):
    """The N-d edge localisation (forced on small images, any ramp length) bounds the norm
    from above: strides, dilations, groups, complex weights, ``C_in != C_out``."""
    M, layer = _localized_case(cfg, complex_weights)
    norm = np.linalg.norm(M, 2)
    if not norm > 0:
        return
    up = _localize.localized_bound(layer, _circulant_bound(layer), norm, 1e-3, ell=ell)
    assert up is None or up >= norm * (1 - 1e-12)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize(
    ("shape", "size", "kw"),
    [
        ((3, 2, 3, 3), (16, 14), dict(padding=1)),
        ((2, 4, 3, 2), (15, 16), dict(padding=(1, (0, 1)), stride=(2, 1), groups=2)),
        ((2, 2, 3, 3), (17, 16), dict(padding=2, dilation=(2, 1))),
        ((2, 1, 3, 2, 3), (8, 7, 9), dict(padding=1)),
    ],
)
def test_localized_bound_proves_something_above_the_norm(mode, shape, size, kw):
    """Deterministic cases where the localisation runs (not ``None``) and holds the norm; it
    narrows as the ramps lengthen."""
    w = np.random.default_rng(sum(shape)).standard_normal(shape) * (1 + 0.5j)
    M = tc.conv_matrix(w, size, padding_mode=mode, format="dense", **kw)
    norm = np.linalg.norm(M, 2)
    layer = _sym.analysis_layer(
        w,
        size,
        kw.get("stride", 1),
        kw["padding"],
        kw.get("dilation", 1),
        kw.get("groups", 1),
        mode,
    )
    circ = _circulant_bound(layer)
    ups = [_localize.localized_bound(layer, circ, norm, 1e-3, ell=ell) for ell in (1, 2)]
    assert all(u is not None and u >= norm * (1 - 1e-12) for u in ups)
    assert ups[1] < ups[0]


def test_localized_bound_of_the_ones_kernel_is_near_nine():
    """``ones(3, 3)`` with replicate padding has norm 9 (constants are kept); the localised
    bound (the whole-Gram certificate aside) certifies it within 0.5% on 64 x 64."""
    layer = _sym.analysis_layer(np.ones((1, 1, 3, 3)), (64, 64), 1, 1, 1, 1, "replicate")
    up = _localize.localized_bound(layer, _circulant_bound(layer), 9.0, 1e-6)
    assert up is not None and 9 <= up <= 9 * 1.005


def test_localized_bound_refuses_what_it_cannot_do():
    w = np.random.default_rng(8).standard_normal((2, 2, 3, 3))
    zeros = _sym.analysis_layer(w, (12, 12), 1, 1, 1, 1, "zeros")
    assert _localize.localized_bound(zeros, 10.0, 5.0, 1e-3) is None  # nothing touched
    small = _sym.analysis_layer(w, (5, 12), 1, 1, 1, 1, "reflect")
    assert _localize.localized_bound(small, 10.0, 5.0, 1e-3) is None  # no room for a ramp
    layer = _sym.analysis_layer(w, (12, 12), 1, 1, 1, 1, "reflect")
    late = _localize.localized_bound(layer, 10.0, 5.0, 1e-3, deadline=time.monotonic() - 1)
    assert late is None


def test_localized_bound_with_a_deadline_tries_shorter_ramps_first():
    """A far deadline: half-length ramps, then the full ones; the least bound, still sound."""
    w = np.random.default_rng(10).standard_normal((2, 2, 3, 3))
    size = (20, 18)
    M = tc.conv_matrix(w, size, padding=1, padding_mode="replicate", format="dense")
    norm = np.linalg.norm(M, 2)
    layer = _sym.analysis_layer(w, size, 1, 1, 1, 1, "replicate")
    circ = _circulant_bound(layer)
    plain = _localize.localized_bound(layer, circ, norm, 1e-9)
    timed = _localize.localized_bound(layer, circ, norm, 1e-9, deadline=time.monotonic() + 600)
    assert plain is not None and timed is not None
    assert norm * (1 - 1e-12) <= timed <= plain


def test_localization_narrows_the_bracket_past_the_whole_gram_cap(monkeypatch):
    """Past the block-Cholesky certificate's cap (set to 0 here) the edge strips and the
    circulant narrow the reflect bracket, which still holds the dense norm."""
    w = np.random.default_rng(9).standard_normal((3, 3, 3, 3))
    size = (20, 20)
    M = tc.conv_matrix(w, size, padding=1, padding_mode="reflect", format="dense")
    norm = np.linalg.norm(M, 2)
    layer = _sym.analysis_layer(w, size, 1, 1, 1, 1, "reflect")
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    monkeypatch.setattr(_certify, "_GRAM_FLOPS_ND", 0)
    brackets = []
    for flops in (0, _localize._LOCAL_FLOPS_ND):
        monkeypatch.setattr(_localize, "_LOCAL_FLOPS_ND", flops)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo, hi = _bracket.bracket(
                layer, 1e-4, _method.Budget(300, None), np.random.default_rng(0)
            )
        assert lo <= norm * (1 + 1e-12) and hi >= norm * (1 - 1e-12)
        brackets.append((hi - lo) / hi)
    assert brackets[1] < brackets[0] / 4

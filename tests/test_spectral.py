"""Spectra, norms and condition numbers against the dense SVD of ``conv1d_matrix``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from toeplitz_conv import spectral
from toeplitz_conv._linop import LayerOperator
from toeplitz_conv.spectral import _bracket, _certify, _krylov, _localize, _method, _smallest
from toeplitz_conv.spectral import _symbol as _sym

MODES = ("zeros", "reflect", "replicate", "circular")


def _dense_svd(weight, L, **kw):
    M = tc.conv1d_matrix(weight, L, format="dense", **kw)
    return np.linalg.svd(M, compute_uv=False), M


# (C_out, C_in, groups, K, stride, dilation, padding, L)
LAYERS = [
    (1, 1, 1, 3, 1, 1, 1, 9),
    (4, 6, 2, 4, 2, 1, (2, 1), 12),
    (3, 2, 1, 2, 3, 2, 2, 11),
    (2, 2, 2, 5, 1, 2, 0, 16),
    (3, 3, 3, 3, 2, 3, 4, 8),
    (2, 3, 1, 1, 1, 1, 0, 5),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer", LAYERS)
def test_singular_values_match_dense(mode, layer):
    c_out, c_in, groups, K, s, d, p, L = layer
    w = np.random.default_rng(1).standard_normal((c_out, c_in // groups, K))
    kw = dict(stride=s, dilation=d, padding=p, groups=groups, padding_mode=mode)
    try:
        ref, _ = _dense_svd(w, L, **kw)
    except ValueError:
        pytest.skip("padding not allowed in this mode")
    got = tc.singular_values(w, L, **kw)
    assert got.shape == ref.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, atol=1e-10)
    np.testing.assert_allclose(tc.singular_values(w, L, k=2, **kw), ref[:2], atol=1e-10)
    assert tc.spectral_norm(w, L, **kw) == pytest.approx(ref[0], rel=1e-12)


@pytest.mark.parametrize(
    ("c_out", "c_in", "groups", "K", "stride", "dilation", "L"),
    [
        (1, 1, 1, 3, 1, 1, 8),
        (3, 2, 1, 4, 2, 1, 12),  # strided: the polyphase split
        (4, 4, 2, 3, 3, 2, 12),
        (2, 3, 1, 5, 4, 1, 16),
        (5, 2, 1, 1, 2, 1, 10),
        (2, 2, 1, 2, 1, 3, 7),  # odd length
    ],
)
def test_circular_spectrum_by_fft(c_out, c_in, groups, K, stride, dilation, L):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((c_out, c_in // groups, K))
    t = dilation * (K - 1)
    pad = (t // 2, t - t // 2)  # total d(K-1): L_out = L / s
    kw = dict(stride=stride, dilation=dilation, padding=pad, groups=groups, padding_mode="circular")
    assert tc.output_length(L, K, stride=stride, padding=pad, dilation=dilation) * stride == L
    ref, _ = _dense_svd(w, L, **kw)
    got = tc.singular_values(w, L, method="fft", **kw)
    np.testing.assert_allclose(got, ref, atol=1e-10)
    lo, hi = tc.spectral_norm_bounds(w, L, **kw)
    assert lo <= ref[0] <= hi and hi - lo <= 1e-12 * hi
    cond = tc.condition_number(w, L, **kw)
    expected = ref[0] / ref[-1] if ref[-1] > 0 else np.inf
    assert cond == pytest.approx(expected, rel=1e-8) or (np.isinf(cond) and expected > 1e12)


def test_circular_complex_weights():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3))
    kw = dict(padding=1, padding_mode="circular")
    ref, _ = _dense_svd(w, 9, **kw)
    np.testing.assert_allclose(tc.singular_values(w, 9, **kw), ref, atol=1e-10)
    assert tc.spectral_norm(w, 9, **kw) == pytest.approx(ref[0], rel=1e-12)


def test_large_circular_layer_is_fast():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 8, 5))
    values = tc.singular_values(w, 4096, padding=2, padding_mode="circular")
    assert values.shape == (8 * 4096,) and np.all(np.diff(values) <= 0)
    # Parseval: the squared singular values sum to ||M||_F^2 = L * ||W||_F^2
    assert np.sum(values**2) == pytest.approx(4096 * np.sum(w**2), rel=1e-10)


@settings(max_examples=60)
@given(
    mode=st.sampled_from(MODES),
    groups=st.integers(1, 2),
    c_out_g=st.integers(1, 3),
    c_in_g=st.integers(1, 3),
    K=st.integers(1, 5),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    pad=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    L=st.integers(3, 40),
    seed=st.integers(0, 2**16),
)
def test_bracket_is_certified(mode, groups, c_out_g, c_in_g, K, stride, dilation, pad, L, seed):
    """The bracket (forced, with no dense shortcut) always contains the dense SVD's norm."""
    w = np.random.default_rng(seed).standard_normal((c_out_g * groups, c_in_g, K))
    kw = dict(stride=stride, dilation=dilation, padding=pad, groups=groups, padding_mode=mode)
    try:
        ref, _ = _dense_svd(w, L, **kw)
    except ValueError:
        return
    layer = _sym.analysis_layer(w, L, stride, pad, dilation, groups, mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo, hi = _bracket.bracket(layer, 1e-6, _method.Budget(20, None))
    assert lo <= ref[0] * (1 + 1e-13)
    assert hi >= ref[0] * (1 - 1e-13)
    # and the public function, which may take the dense path, too
    lo, hi = tc.spectral_norm_bounds(w, L, **kw)
    assert lo <= ref[0] * (1 + 1e-13) <= hi * (1 + 2e-13)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate"])
def test_bracket_closes(mode):
    """Without the dense shortcut the bracket still closes to rtol on a mid-size layer."""
    w = np.random.default_rng(5).standard_normal((3, 3, 5))
    L = 400
    ref, _ = _dense_svd(w, L, padding=2, padding_mode=mode)
    layer = _sym.analysis_layer(w, L, 1, 2, 1, 1, mode)
    lo, hi = _bracket.bracket(layer, 1e-6, _method.Budget(50, None))
    assert lo <= ref[0] <= hi
    assert hi - lo <= 1e-6 * hi


def test_zero_padded_bracket_from_the_circulant_alone(monkeypatch):
    """Long zero-padded layers close by the circulant bound, with no Cholesky and no dense."""
    monkeypatch.setattr(_certify, "_GRAM_FLOPS", 0)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    w = np.random.default_rng(6).standard_normal((4, 4, 5))
    lo, hi = tc.spectral_norm_bounds(w, 3000, padding=2, rtol=1e-5)
    assert hi - lo <= 1e-5 * hi
    assert hi - lo <= 2e-6 * hi  # the O(1/L^2) gap of the circulant bound
    # and it agrees with the Gram-Cholesky certificate of the same layer
    monkeypatch.undo()
    layer = _sym.analysis_layer(w, 3000, 1, 2, 1, 1, "zeros")
    assert _certify.gram_certificate(layer, lo * (1 - 1e-7)) is None  # below the norm: fails
    assert _certify.gram_certificate(layer, hi) is not None


def test_bracket_warns_when_it_cannot_close(monkeypatch):
    monkeypatch.setattr(_certify, "_GRAM_FLOPS", 0)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    monkeypatch.setattr(_method, "DENSE_NORM_SIDE", 0)
    w = np.random.default_rng(7).standard_normal((2, 2, 5))
    ref, _ = _dense_svd(w, 300, padding=2, padding_mode="reflect")
    with pytest.warns(RuntimeWarning, match=r"certified bracket \[.*\] .* did not close"):
        value = tc.spectral_norm(w, 300, padding=2, padding_mode="reflect", maxiter=5)
    assert value <= ref[0] * (1 + 1e-12)
    lo, hi = tc.spectral_norm_bounds(w, 300, padding=2, padding_mode="reflect", maxiter=5)
    assert lo <= ref[0] <= hi


def test_svds_path_and_complete_spectrum_refused(monkeypatch):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(8).standard_normal((2, 2, 3))
    ref, _ = _dense_svd(w, 30, padding=1)
    np.testing.assert_allclose(tc.singular_values(w, 30, padding=1, k=3), ref[:3], rtol=1e-8)
    with pytest.raises(ValueError, match=r"more than DENSE_LIMIT = 100; pass `k`"):
        tc.singular_values(w, 30, padding=1)
    # method='dense' insists
    np.testing.assert_allclose(
        tc.singular_values(w, 30, padding=1, method="dense"), ref, atol=1e-10
    )
    # beyond the sparse-LU limit too: the Lanczos estimate of the condition number (on a
    # layer whose sigma_min is far above the rounding floor of top^2 I - M^H M)
    monkeypatch.setattr(_method, "SHIFT_INVERT_MAX_NNZ", 0)
    w = np.random.default_rng(10).standard_normal((2, 2, 3))
    ref, _ = _dense_svd(w, 30, padding=1)
    cond = tc.condition_number(w, 30, padding=1, tol=1e-12)
    assert cond == pytest.approx(ref[0] / ref[-1], rel=1e-6)


@pytest.mark.parametrize(
    ("shape", "kw"),
    [
        ((1, 1, 3), dict(padding=1)),  # square, second difference below: ill-conditioned
        ((4, 2, 5), dict(stride=2, padding=1, padding_mode="reflect")),  # wide, strided
        ((4, 2, 5), dict(padding=2)),  # tall
        ((2, 4, 3), dict(padding=1, padding_mode="replicate")),  # wide
        ((3, 1, 4), dict(groups=3, padding=(1, 2), padding_mode="circular", dilation=2)),
    ],
)
def test_condition_number_beyond_dense_by_sparse_lu(monkeypatch, shape, kw):
    """Above DENSE_LIMIT sigma_min comes from shift-invert Lanczos on a sparse LU: exact."""
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(21).standard_normal(shape)
    if shape == (1, 1, 3):
        w = np.array([[[1.0, -2.0, 1.0]]])
    M = tc.conv1d_matrix(w, 300, format="dense", **kw)
    assert tc.condition_number(w, 300, **kw) == pytest.approx(np.linalg.cond(M), rel=1e-5)


def test_condition_number_singular_beyond_dense(monkeypatch):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    # a circular difference filter with L_out != L (not circulant): constants are still lost
    assert tc.condition_number([1.0, -1.0], 300, padding=(1, 1), padding_mode="circular") == (
        np.inf
    )
    assert tc.condition_number(np.zeros((2, 2, 3)), 300, padding=1) == np.inf


def test_condition_number():
    w = np.random.default_rng(9).standard_normal((3, 2, 3))
    for mode in MODES:
        M = tc.conv1d_matrix(w, 10, padding=1, padding_mode=mode, format="dense")
        assert tc.condition_number(w, 10, padding=1, padding_mode=mode) == pytest.approx(
            np.linalg.cond(M), rel=1e-8
        )
    # a difference filter annihilates constants: singular
    assert tc.condition_number([1.0, -1.0], 8, padding=(0, 1), padding_mode="circular") == np.inf
    assert tc.condition_number([0.0, 0.0], 8) == np.inf
    assert tc.condition_number([2.0], 5) == 1.0


def test_deterministic():
    w = np.random.default_rng(10).standard_normal((4, 4, 5))
    a = tc.spectral_norm_bounds(w, 3000, padding=2)
    b = tc.spectral_norm_bounds(w, 3000, padding=2, rng=123)
    assert a == b
    assert isinstance(a, tc.NormBounds) and a.lower <= a.upper


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(k=0), ValueError, r"`k` must be an integer >= 1, got 0"),
        (dict(k=100), ValueError, r"`k` must be at most min\(rows, cols\) = 8"),
        (dict(k=1.5), TypeError, r"`k` must be an integer"),
        (
            dict(method="eig"),
            ValueError,
            r"`method` must be one of 'auto', 'fft', 'dense', 'krylov', 'svds'; got 'eig'",
        ),
        (dict(method="fft"), ValueError, r"`method`='fft' needs a block-circulant layer"),
        (dict(padding_mode="wrap"), ValueError, r"`padding_mode` must be one of"),
    ],
)
def test_singular_values_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        tc.singular_values([1.0, 2.0, 3.0], 10, **kwargs)


@pytest.mark.parametrize("fn", [tc.spectral_norm, tc.spectral_norm_bounds])
def test_norm_errors(fn):
    with pytest.raises(ValueError, match=r"`rtol` must be a float in \(0, 1\); got 0.0"):
        fn([1.0, 2.0], 10, rtol=0.0)
    with pytest.raises(TypeError, match=r"`rtol` must be a float in \(0, 1\); got '1e-6'"):
        fn([1.0, 2.0], 10, rtol="1e-6")
    with pytest.raises(ValueError, match=r"`maxiter` must be an integer >= 0, got -1"):
        fn([1.0, 2.0], 10, maxiter=-1)
    with pytest.raises(TypeError, match=r"`rng` must be None, an int seed or a numpy"):
        fn([1.0, 2.0], 10, rng="seed")
    with pytest.raises(ValueError, match=r"`weight` must"):
        fn(np.ones((2, 2)), 10)


def test_threaded_and_serial_paths_agree(monkeypatch):
    """Two threads on the package's pool give exactly the one-thread answer (both paths run)."""
    from toeplitz_conv import _threads

    w = np.random.default_rng(12).standard_normal((6, 6, 3))
    kw = dict(padding=1, padding_mode="circular")
    pooled = []
    real_executor = _threads._executor

    def spy(size):
        pooled.append(size)
        return real_executor(size)

    monkeypatch.setattr(_threads, "_executor", spy)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", threads)
        pooled.clear()
        results[threads] = (
            tc.singular_values(w, 256, **kw),
            tc.spectral_norm_bounds(w, 900, padding=1),
            tc.spectral_norm(w, 900, padding=1, padding_mode="reflect"),
        )
        assert (len(pooled) > 0) == (threads == "2"), pooled  # the pool ran only when asked
        assert set(pooled) <= {2}
    np.testing.assert_array_equal(results["1"][0], results["2"][0])
    # the Lanczos products split in halves: the same sums, maybe not in the same order
    assert tuple(results["1"][1]) == pytest.approx(tuple(results["2"][1]), rel=1e-14)
    assert results["1"][2] == pytest.approx(results["2"][2], rel=1e-14)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("groups", [1, 2])
def test_start_vector_product_is_exact(mode, groups):
    """The separable shortcut for ``M x`` of the start vector equals the operator's product."""
    w = np.random.default_rng(14).standard_normal((4, 6 // groups, 5))
    layer = _sym.analysis_layer(w, 40, 1, (2, 3), 2, groups, mode)
    sym = _sym.layer_symbol(layer)
    for theta in (0.0, 0.7, np.pi):
        x, mx = _krylov.start_vector(layer, sym, theta)
        assert mx is not None and np.linalg.norm(x) == pytest.approx(1.0)
        np.testing.assert_allclose(mx, LayerOperator(layer) @ x, atol=1e-12)
    # strided and complex layers take the operator
    strided = _sym.analysis_layer(w, 40, 2, 2, 1, groups, mode)
    assert _krylov.start_vector(strided, _sym.layer_symbol(strided), 0.5)[1] is None


@pytest.mark.parametrize("mode", MODES)
def test_split_operator_equals_operator(mode):
    """The two-halves products used by the bracket's Lanczos equal the whole operator's."""
    w = np.random.default_rng(16).standard_normal((5, 3, 4))
    layer = _sym.analysis_layer(w, 30, 1, (2, 1), 2, 1, mode)
    op, split = LayerOperator(layer), _krylov.SplitOperator(layer)
    x = np.random.default_rng(17).standard_normal(op.shape[1])
    y = np.random.default_rng(18).standard_normal(op.shape[0])
    np.testing.assert_allclose(split.matvec(x), op.matvec(x), atol=1e-12)
    np.testing.assert_allclose(split.rmatvec(y), op.rmatvec(y), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    groups=st.integers(1, 2),
    c_out_g=st.integers(1, 5),
    c_in_g=st.integers(1, 5),
    K=st.integers(1, 5),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    complex_weights=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_cholesky_proof_is_sound(
    groups, c_out_g, c_in_g, K, stride, dilation, complex_weights, seed
):
    """``_prove_below`` proves mu just above sigma_max, never mu at or below it."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((groups * c_out_g, c_in_g, K))
    if complex_weights:
        w = w + 1j * rng.standard_normal(w.shape)
    layer = _sym.analysis_layer(w, 40, stride, K // 2, dilation, groups, "zeros")
    sym = _sym.layer_symbol(layer)
    theta = rng.uniform(-np.pi, np.pi, 12)
    top = np.linalg.svd(sym(theta), compute_uv=False)[..., 0].max(axis=-1)
    assert not _certify._prove_below(sym, theta, top).any()
    assert not _certify._prove_below(sym, theta, top * (1 - 1e-9)).any()
    assert not _certify._prove_below(sym, theta, top * 0.5).any()
    assert _certify._prove_below(sym, theta, top * (1 + 1e-8) + 1e-300).all()


def test_cholesky_proof_fails_below_the_norm_of_a_rank_one_symbol():
    """A symbol with one nonzero singular value: mu a hair below it is never proved."""
    u, v = np.arange(1.0, 5.0), np.arange(1.0, 4.0)
    w = np.outer(u, v)[:, :, None] * np.array([1.0, -2.0, 0.5])  # (4, 3, 3)
    sym = _sym.layer_symbol(_sym.analysis_layer(w, 30, 1, 1, 1, 1, "zeros"))
    theta = np.linspace(0, np.pi, 7)
    top = np.linalg.svd(sym(theta), compute_uv=False)[..., 0].max(axis=-1)
    assert not _certify._prove_below(sym, theta, top * (1 - 1e-12)).any()
    assert _certify._prove_below(sym, theta, top * (1 + 1e-9)).all()


def test_grid_max_with_proofs_bounds_every_grid_point():
    """The branch and bound's upper end covers every grid value, evaluated or only proved."""
    w = np.random.default_rng(5).standard_normal((8, 6, 5))
    for n, rtol in ((257, 1e-6), (300, 0.0), (128, 1e-3)):
        sym = _sym.layer_symbol(_sym.analysis_layer(w, 50, 1, 2, 1, 1, "zeros"))
        upper, best, f = _certify.grid_max(sym, n, rtol=rtol)
        values = np.linalg.svd(sym(2 * np.pi * np.arange(n) / n), compute_uv=False)[..., 0]
        assert values.max() <= upper <= values.max() * (1 + rtol + 1e-12)
        exact = values.max(axis=-1)[f]  # best: a lower bound of the value at f, exact if rtol=0
        assert exact * (1 - 1e-10) <= best <= exact * (1 + 1e-14)
        assert rtol > 0 or best == pytest.approx(exact, rel=1e-13)


@settings(max_examples=40, deadline=None)
@given(
    groups=st.integers(1, 2),
    c_out_g=st.integers(1, 4),
    c_in_g=st.integers(1, 4),
    K=st.integers(1, 5),
    stride=st.integers(1, 3),
    complex_weights=st.booleans(),
    n=st.integers(2, 400),
    rtol=st.sampled_from([0.0, 1e-9, 1e-6, 1e-2]),
    seed=st.integers(0, 2**16),
)
def test_grid_max_is_certified(groups, c_out_g, c_in_g, K, stride, complex_weights, n, rtol, seed):
    """Proofs, Gram eigenvalues or SVDs: upper covers every grid value; best is attained."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((groups * c_out_g, c_in_g, K))
    if complex_weights:
        w = w + 1j * rng.standard_normal(w.shape)
    sym = _sym.layer_symbol(_sym.analysis_layer(w, 30, stride, K // 2, 1, groups, "zeros"))
    upper, best, f = _certify.grid_max(sym, n, rtol=rtol)
    values = np.linalg.svd(sym(2 * np.pi * np.arange(n) / n), compute_uv=False)[..., 0]
    top = values.max()
    assert top * (1 - 1e-13) <= upper <= top * (1 + rtol) + 1e-9 * top
    assert best <= values.max(axis=-1)[f] * (1 + 1e-13)
    assert best >= top * (1 - 1e-9) / (1 + rtol)


def test_huge_layers_are_refused_before_allocating(monkeypatch):
    from toeplitz_conv import _arrays

    monkeypatch.setattr(_arrays, "_physical_memory", lambda: 2**20)
    w = np.ones((4, 4, 3))
    with pytest.raises(ValueError, match=r"the spectrum's 400,000 singular values would take"):
        tc.singular_values(w, 10**5, padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match=r"the iterative bracket's vectors .* would take"):
        tc.spectral_norm_bounds(w, 10**5, padding=1)
    # the circulant's norm needs no spectrum: a branch and bound over a few frequencies
    assert tc.spectral_norm(w, 10**5, padding=1, padding_mode="circular") == pytest.approx(12.0)


# --------------------------------------------------------------------------- issue 8: budgets
@pytest.mark.parametrize(
    ("shape", "kw", "complex_weights"),
    [
        ((3, 3, 5), dict(padding=2), False),
        ((3, 3, 5), dict(padding=2, padding_mode="reflect"), False),
        ((2, 3, 4), dict(padding=(2, 1), padding_mode="replicate", stride=2), False),
        ((4, 1, 3), dict(padding=1, groups=2, dilation=2), True),
        ((2, 4, 3), dict(padding=1), True),  # wide
        ((1, 1, 3), dict(padding=(1, 2), padding_mode="circular"), False),
    ],
)
def test_block_krylov_top_values_are_certified(shape, kw, complex_weights):
    """method='krylov': each value is <= sigma_i and within its error of an exact value."""
    rng = np.random.default_rng(31)
    w = rng.standard_normal(shape)
    if complex_weights:
        w = w + 1j * rng.standard_normal(shape)
    ref, _ = _dense_svd(w, 120, **kw)
    values, errors = tc.singular_values(
        w, 120, k=4, method="krylov", tol=1e-9, return_errors=True, **kw
    )
    assert values.shape == errors.shape == (4,)
    assert np.all(values <= ref[:4] * (1 + 1e-12))  # Ritz values interlace
    for v, e in zip(values, errors, strict=True):
        assert np.min(np.abs(ref - v)) <= e * (1 + 1e-9) + 1e-12 * ref[0]
    np.testing.assert_allclose(values, ref[:4], rtol=1e-8)


def test_top_values_with_a_small_budget_warn_with_what_they_reached():
    w = np.random.default_rng(32).standard_normal((4, 4, 5))
    ref, _ = _dense_svd(w, 200, padding=2)
    with pytest.warns(RuntimeWarning, match=r"ran out of its budget \(maxiter=0\).*: [0-9.]+ \+- "):
        values = tc.singular_values(w, 200, k=3, padding=2, method="krylov", maxiter=0)
    assert np.all(values <= ref[:3] * (1 + 1e-12))  # still certified lower ends
    with pytest.warns(RuntimeWarning, match=r"time_limit=1e-09 s"):
        tc.singular_values(w, 200, k=3, padding=2, method="krylov", time_limit=1e-9)
    # ARPACK gets the same budget, and its no-convergence becomes the same warning
    with pytest.warns(RuntimeWarning, match=r"method='svds' ran out of its budget"):
        tc.singular_values(w, 200, k=3, padding=2, method="svds", maxiter=1, tol=1e-15)


def test_auto_beyond_the_dense_limit_is_block_krylov(monkeypatch):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(33).standard_normal((2, 3, 3))
    ref, _ = _dense_svd(w, 90, padding=1, padding_mode="replicate")
    values, errors = tc.singular_values(
        w, 90, k=2, padding=1, padding_mode="replicate", return_errors=True
    )
    np.testing.assert_allclose(values, ref[:2], rtol=1e-8)
    assert np.all(errors <= 1e-5 * values)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_condition_number_beyond_dense_every_mode(monkeypatch, mode):
    """sigma_min by shift-invert block Krylov for every padding mode (was unbounded ARPACK)."""
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(0).standard_normal(3)  # the shape of the replicate case
    kw = dict(padding=(2, 0), padding_mode=mode)
    M = tc.conv1d_matrix(w, 300, format="dense", **kw)
    assert tc.condition_number(w, 300, **kw) == pytest.approx(np.linalg.cond(M), rel=1e-5)


def test_condition_number_with_a_small_budget_warns(monkeypatch):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(34).standard_normal((3, 3, 3))
    M = tc.conv1d_matrix(w, 150, padding=1, padding_mode="reflect", format="dense")
    with pytest.warns(RuntimeWarning, match=r"sigma_min by .* ran out of its budget .*maxiter=0"):
        cond = tc.condition_number(w, 150, padding=1, padding_mode="reflect", maxiter=0)
    assert cond <= np.linalg.cond(M) * (1 + 1e-9)  # sigma_min's attained upper end: a lower bound
    # without a sparse LU (too many nonzeros): block Krylov on the flipped Gram matrix
    monkeypatch.setattr(_method, "SHIFT_INVERT_MAX_NNZ", 0)
    with pytest.warns(RuntimeWarning, match=r"no LU"):
        cond = tc.condition_number(w, 150, padding=1, padding_mode="reflect", maxiter=2)
    assert cond <= np.linalg.cond(M) * (1 + 1e-9)


def test_numerically_singular_layer_beyond_dense_is_inf():
    """Issue 8 (5): was ArpackError (and LAPACK's DLASCL message); the dense path says inf."""
    w = np.random.default_rng(0).standard_normal((2, 2, 3))
    assert tc.condition_number(w, 1030, padding=(2, 0)) == np.inf


@pytest.mark.parametrize("fn", [tc.singular_values, tc.condition_number])
def test_tol_is_validated(fn):
    with pytest.raises(ValueError, match=r"`tol` must be a finite float >= 0; got -1"):
        fn([1.0, 2.0], 10, tol=-1)
    with pytest.raises(TypeError, match=r"`tol` must be a float >= 0; got 'x'"):
        fn([1.0, 2.0], 10, tol="x")
    with pytest.raises(ValueError, match=r"`tol` must be a finite float >= 0; got nan"):
        fn([1.0, 2.0], 10, tol=float("nan"))
    with pytest.raises(ValueError, match=r"`time_limit` must be None or a number of seconds > 0"):
        fn([1.0, 2.0], 10, time_limit=0)
    with pytest.raises(ValueError, match=r"`maxiter` must be an integer >= 0, got -1"):
        fn([1.0, 2.0], 10, maxiter=-1)


@pytest.mark.parametrize(
    "fn", [tc.singular_values, tc.condition_number, tc.spectral_norm, tc.spectral_norm_bounds]
)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_weight_is_refused(fn, bad):
    """Was `LinAlgError: SVD did not converge` from spectral_norm."""
    with pytest.raises(ValueError, match=r"`weight` has NaN or inf entries \(1 of 3\)"):
        fn([1.0, bad, 2.0], 10)


def test_svds_without_k_says_so():
    """Issue 8 (7): was '80 entries, more than DENSE_LIMIT', which contradicts itself."""
    for method in ("svds", "krylov"):
        with pytest.raises(ValueError, match=rf"`method`='{method}' computes the k largest") as e:
            tc.singular_values([1, 2, 3], 10, method=method)
        assert "DENSE_LIMIT" not in str(e.value)


@pytest.mark.parametrize(
    ("mode", "shape", "kw"),
    [
        ("reflect", (2, 2, 5), dict(padding=2)),
        ("replicate", (3, 2, 3), dict(padding=(2, 1))),
        ("reflect", (2, 3, 3), dict(padding=2, stride=2, dilation=2)),
        ("replicate", (4, 1, 3), dict(padding=1, groups=2)),
    ],
)
def test_reflect_bracket_beyond_the_gram_budget_stays_narrow(monkeypatch, mode, shape, kw):
    """Issue 8 (4): past the whole-Gram budget the edges' Gram matrices keep the bracket tight.

    It was ``min(sqrt(copies) ||C||, ||C|| + ||boundary||)``: 22% wide at 16 channels, L=8192.
    """
    calls = []
    real = _localize.localized_bound

    def spy(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(_bracket, "localized_bound", spy)
    monkeypatch.setattr(_certify, "_GRAM_FLOPS", 0)  # no whole-Gram certificate
    monkeypatch.setattr(_localize, "_LOCAL_ENTRIES", 2e5)  # short windows: a quick test
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    w = np.random.default_rng(41).standard_normal(shape)
    L = 600
    ref, _ = _dense_svd(w, L, padding_mode=mode, **kw)
    layer = _sym.analysis_layer(
        w, L, kw.get("stride", 1), kw["padding"], kw.get("dilation", 1), kw.get("groups", 1), mode
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo, hi = _bracket.bracket(layer, 1e-6, _method.Budget(50, None))
    assert calls and calls[0] is not None  # the localised bound ran and proved something
    assert lo <= ref[0] * (1 + 1e-13) and hi >= ref[0] * (1 - 1e-13)
    assert hi - lo <= 2e-3 * hi


def test_norm_bracket_with_a_time_limit_returns_what_it_reached(monkeypatch):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    monkeypatch.setattr(_method, "DENSE_NORM_SIDE", 0)
    w = np.random.default_rng(42).standard_normal((2, 2, 5))
    ref, _ = _dense_svd(w, 300, padding=2, padding_mode="reflect")
    lo, hi = tc.spectral_norm_bounds(w, 300, padding=2, padding_mode="reflect", time_limit=1e-9)
    assert lo <= ref[0] <= hi
    with pytest.warns(RuntimeWarning, match=r"certified bracket \[.*\] .* did not close"):
        tc.spectral_norm(w, 300, padding=2, padding_mode="reflect", time_limit=1e-9)
    with pytest.raises(TypeError, match=r"`time_limit` must be None or a number of seconds"):
        tc.spectral_norm(w, 300, padding=2, time_limit="1")


def test_huge_iterative_requests_are_refused_before_allocating():
    """Issue 8 (6): was a MemoryError after trying to allocate 7.3 TiB."""
    with pytest.raises(ValueError, match=r"singular_values's \d+ Krylov vectors would take"):
        tc.singular_values([1.0, 2.0], 10**12, k=1)
    with pytest.raises(ValueError, match=r"would take .* use a shorter input"):
        tc.condition_number([1.0, 2.0], 10**12)


# --------------------------------------------------------------------------- issue 14 (1)
@pytest.mark.parametrize(
    ("weight", "size"),
    [(np.zeros(3), 5000), (np.zeros((1, 1, 2, 2)), (100, 100)), (np.zeros((2, 3, 3)), 3000)],
)
def test_zero_weight_is_the_zero_map(weight, size):
    """Issue 14 (1): was an IndexError (krylov) and an ArpackError (svds)."""
    for method in ("auto", "krylov", "svds"):
        values, errors = tc.singular_values(weight, size, k=2, method=method, return_errors=True)
        np.testing.assert_array_equal(values, np.zeros(2))
        np.testing.assert_array_equal(errors, np.zeros(2))
    m, n = tc.conv_matrix(weight, size).shape
    np.testing.assert_array_equal(tc.singular_values(weight, size), np.zeros(min(m, n)))
    assert tc.spectral_norm_bounds(weight, size) == (0.0, 0.0)
    assert tc.spectral_norm(weight, size) == 0.0
    assert tc.condition_number(weight, size) == np.inf  # singular, as numpy.linalg.cond says
    assert np.linalg.cond(np.zeros((2, 2))) == np.inf


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_zero_weight_every_padding_mode(mode):
    w = np.zeros((1, 1, 3, 3))
    kw = dict(padding=1, padding_mode=mode)
    np.testing.assert_array_equal(tc.singular_values(w, (64, 64), k=3, **kw), np.zeros(3))
    assert tc.spectral_norm_bounds(w, (64, 64), **kw) == (0.0, 0.0)
    assert tc.condition_number(w, (64, 64), **kw) == np.inf


def test_krylov_on_a_wide_layer_whose_start_block_is_in_the_null_space():
    """The cause of issue 14 (1): a wide layer's start block ``M X`` vanished (zero weight).

    Random output-space vectors keep the block nonzero; block Krylov on the zero map's
    Gram matrix then finds the exact zeros.
    """
    layer = _sym.analysis_layer(np.zeros((1, 1, 2, 2)), (30, 30), 1, 0, 1, 1, "zeros")
    assert layer.shape[0] < layer.shape[1]  # wide
    budget = _method.Budget(10, None)
    values, errors, done, _ = _krylov.top_singular_values(
        layer, 2, tol=1e-6, budget=budget, rng=np.random.default_rng(0)
    )
    assert done
    np.testing.assert_array_equal(values, np.zeros(2))
    np.testing.assert_array_equal(errors, np.zeros(2))
    w = np.zeros((1, 2, 3))
    w[0, 1] = [1.0, 2.0, 1.0]  # input channel 0 unused
    ref, _ = _dense_svd(w, 300)
    np.testing.assert_allclose(tc.singular_values(w, 300, k=2, method="krylov"), ref[:2], rtol=1e-6)


def test_svds_that_stops_short_returns_k_values_with_nan():
    """ARPACK may converge fewer than k values: the rest are nan (with a warning), not dropped."""
    w = np.zeros((4, 2, 3))
    w[:2] = np.random.default_rng(0).standard_normal((2, 2, 3))
    with pytest.warns(RuntimeWarning, match="ran out of its budget"):
        got = tc.singular_values(w, 200, k=2, method="svds", maxiter=1)
    assert got.shape == (2,)
    ref, _ = _dense_svd(w, 200)
    done = ~np.isnan(got)
    np.testing.assert_allclose(got[done], ref[:2][done], rtol=1e-6)


# --------------------------------------------------------------------------- issue 14 (2, 3)
def _binomial_closed_form(n):
    """cond of the 2-D conv by outer([1, 2, 1], [1, 2, 1]), zero padding 1, on n x n.

    Each axis is the symmetric tridiagonal Toeplitz ``tridiag(1, 2, 1)`` of order ``n``,
    with eigenvalues ``2 + 2 cos(j pi / (n + 1))``; the 2-D matrix is their Kronecker product.
    """
    j = np.arange(1, n + 1)
    ev = np.outer(2 + 2 * np.cos(j * np.pi / (n + 1)), 2 + 2 * np.cos(j * np.pi / (n + 1)))
    return ev.max() / ev.min()


@pytest.mark.parametrize("channels", ["square", "tall", "wide"])
def test_condition_number_matches_the_closed_form_beyond_dense(channels):
    """Issue 14 (2, 3): tall and wide gave inf (the singularity test squared kappa), the
    square layer was 0.2% off at the default tol without a warning (||M v|| of a Ritz vector
    whose components along the top singular vectors it multiplies by kappa)."""
    k = np.outer([1.0, 2, 1], [1.0, 2, 1])
    w = {"square": k[None, None], "tall": np.stack([k, k])[:, None], "wide": np.stack([k, k])[None]}
    w = w[channels]
    m, n = tc.conv_matrix(w, (54, 54), padding=1).shape
    assert m * n > spectral.DENSE_LIMIT
    ref = _binomial_closed_form(54)  # stacking two copies scales every singular value by sqrt 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = tc.condition_number(w, (54, 54), padding=1)
    assert got == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize(
    ("shape", "size", "kw", "complex_weights"),
    [
        ((2, 2, 3, 3), (34, 34), dict(padding=1), True),
        ((2, 2, 3, 3), (34, 34), dict(padding=1), False),
        ((2, 1, 3, 3), (40, 40), dict(padding=1), False),
        ((1, 2, 3, 3), (40, 40), dict(padding=1), False),
        ((3, 2, 3, 3), (30, 30), dict(padding=1, padding_mode="reflect"), False),
    ],
)
def test_condition_number_beyond_dense_matches_dense_svd(shape, size, kw, complex_weights):
    """Issue 14 (3): a complex 2 -> 2 layer on 34x34 was 4.8e-3 off (sigma_max from an
    unclosed 2-D bracket's lower end, sigma_min from an uncorrected Ritz vector)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if complex_weights else 0)
    M = tc.conv_matrix(w, size, format="dense", **kw)
    assert M.size > spectral.DENSE_LIMIT
    ref = np.linalg.cond(M)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = tc.condition_number(w, size, **kw)
    if caught:  # only where rounding (16 eps kappa relative) cannot give tol = 1e-6
        assert ref * 16 * np.finfo(float).eps > 1e-6
        assert "rounding floor" in str(caught[0].message)
        assert got == pytest.approx(ref, rel=1e-4)
    else:
        assert got == pytest.approx(ref, rel=2e-6)


def test_smallest_singular_value_error_is_within_tol():
    """The value returned for sigma_min is as accurate as the error it states (tol 1e-6)."""
    k = np.outer([1.0, 2, 1], [1.0, 2, 1])
    layer = _sym.analysis_layer(np.stack([k, k])[:, None], (54, 54), 1, 1, 1, 1, "zeros")
    j = np.arange(1, 55)
    exact = np.sqrt(2) * (2 + 2 * np.cos(54 * np.pi / 55)) ** 2
    value, error, done, how = _smallest.smallest_singular_value(
        layer, tol=1e-6, budget=_method.Budget(100, None), rng=np.random.default_rng(0), top=64
    )
    assert done and "augmented" in how
    assert abs(value - exact) <= error <= 1.5e-6 * value
    assert j.size == 54


# --------------------------------------------------------------------------- issue 14 (7)
def test_condition_number_time_limit_covers_sigma_max(monkeypatch):
    """Issue 14 (7): sigma_max had its own hard-coded budget (50 steps, no time limit)."""
    w = np.random.default_rng(3).standard_normal((2, 2, 3, 3))
    assert np.prod(tc.conv_matrix(w, (40, 40), padding=1).shape) > spectral.DENSE_LIMIT
    with pytest.warns(RuntimeWarning, match=r"sigma_max by block Krylov did not reach .*1e-09 s"):
        tc.condition_number(w, (40, 40), padding=1, time_limit=1e-9)


def test_circular_spectrum_honours_the_time_limit():
    """Issue 14 (7): the full circular spectrum ran to its end whatever time_limit said."""
    w = np.random.default_rng(4).standard_normal((8, 8, 3, 3))
    kw = dict(padding=1, padding_mode="circular")
    with pytest.raises(TimeoutError, match=r"reached [\d,]+ of its [\d,]+ frequencies"):
        tc.singular_values(w, (128, 128), time_limit=1e-9, **kw)
    with pytest.raises(TimeoutError, match=r"time_limit"):
        tc.condition_number(w, (128, 128), time_limit=1e-9, **kw)
    assert tc.singular_values(w, (16, 16), **kw).shape == (8 * 256,)


# ------------------------------------------- sigma_min without a sparse LU (top^2 I - M^H M)
@settings(max_examples=40, deadline=None)
@given(
    ndim=st.sampled_from([1, 2]),
    c_out=st.integers(1, 3),
    c_in=st.integers(1, 3),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    pad=st.integers(0, 2),
    mode=st.sampled_from(MODES),
    size=st.integers(4, 20),
    tol=st.sampled_from([1e-6, 1e-10]),
    seed=st.integers(0, 2**16),
)
def test_condition_number_without_lu_matches_dense_or_warns_a_true_bound(
    ndim, c_out, c_in, kernel, stride, pad, mode, size, tol, seed
):
    """The no-LU path on tiny layers (where Krylov spans the whole space): the
    condition number within `tol` of the dense SVD's, or a warning whose stated
    bounds hold (it once stated ``sigma_min <= 11.3`` for a true 0.31: the basis
    had lost its orthogonality)."""
    import re

    size = size if ndim == 1 else (size // 3 + 3, size // 4 + 3)
    sizes = (size,) if ndim == 1 else size
    pad = min(pad, min(sizes) - 1)  # reflect needs padding < input size
    w = np.random.default_rng(seed).standard_normal((c_out, c_in) + (kernel,) * ndim)
    kw = dict(stride=stride, padding=pad, padding_mode=mode)
    M = tc.conv_matrix(w, size, format="dense", **kw)
    s = np.linalg.svd(M, compute_uv=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_method, "DENSE_LIMIT", 100)
        mp.setattr(_method, "SHIFT_INVERT_MAX_NNZ", 0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = tc.condition_number(w, size, tol=tol, **kw)
    messages = [str(c.message) for c in caught if issubclass(c.category, RuntimeWarning)]
    slack = 1e-9 * s[0]  # the warnings print 10 significant digits
    for msg in messages:
        low = re.search(r"sigma_min <= ([-+.\deE]+) \(an exact singular value within (\S+)\)", msg)
        if low:
            bound, err = float(low[1]), float(low[2])
            assert s[-1] <= bound + slack, msg
            assert np.min(np.abs(s - bound)) <= err + slack, msg
        top = re.search(r"sigma_max >= ([-+.\deE]+) \(attained; <= ([-+.\deE]+) proved", msg)
        if top:
            assert float(top[1]) - slack <= s[0] <= float(top[2]) + slack, msg
        assert low or top, msg
    singular = s[-1] <= max(M.shape) * np.finfo(float).eps * s[0]  # as condition_number
    ref = np.inf if singular else s[0] / s[-1]
    if not messages:
        if np.isinf(ref):
            assert np.isinf(got)
        else:
            assert got == pytest.approx(ref, rel=3 * tol + 1e-13)
    else:
        assert got <= ref * (1 + 1e-9)  # sigma_max attained, sigma_min from above


def test_operator_products_are_fresh_arrays_when_one_output_row_is_kept():
    """A strided 2-D layer with one output row returned a view of a pooled buffer: the
    next product overwrote it, and Lanczos stated a norm lower bound above the norm."""
    w = np.random.default_rng(1).standard_normal((1, 3, 5, 5))
    layer = _sym.analysis_layer(w, (7, 6), 3, 0, 1, 1, "zeros")
    op = LayerOperator(layer)
    M = tc.conv_matrix(w, (7, 6), stride=3, format="dense")
    x, y = np.random.default_rng(2).standard_normal((2, M.shape[1]))
    a = op.matvec(x)
    b = op.matvec(y)
    assert not np.shares_memory(a, b)
    np.testing.assert_allclose(a, M @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, M @ y, rtol=1e-12, atol=1e-12)
    lower = _bracket.bracket(
        layer, 1e-6, _method.Budget(100, None), np.random.default_rng(0), certify=False
    )[0]
    assert lower <= np.linalg.norm(M, 2) * (1 + 1e-12)


def _check_analysis(a, ref, k, methods):
    """`a` (an Analysis) against the dense singular values `ref`, descending."""
    assert a.methods == methods
    assert a.shape[0] * a.shape[1] > 0 and min(a.shape) == ref.size
    lo, hi = a.bounds
    assert lo <= ref[0] * (1 + 1e-13) and hi >= ref[0] * (1 - 1e-13)
    assert lo <= a.norm <= hi
    assert a.singular_values.shape == a.errors.shape == (min(k, ref.size),)
    for v, e, exact in zip(a.singular_values, a.errors, ref, strict=False):
        assert abs(v - exact) <= e + 1e-12 * ref[0]  # within its certified error
    np.testing.assert_allclose(a.singular_values, ref[:k], rtol=1e-5)
    kappa = np.linalg.cond(np.diag(ref)) if ref[-1] > ref.size * 2.3e-16 * ref[0] else np.inf
    if np.isfinite(kappa):
        assert a.condition_number == pytest.approx(kappa, rel=1e-5)
    else:
        assert a.condition_number == np.inf


@pytest.mark.parametrize("mode", MODES)
def test_analyze_matches_the_dense_svd(mode):
    w = np.random.default_rng(60).standard_normal((3, 2, 3))
    ref, _ = _dense_svd(w, 12, padding=1, padding_mode=mode)
    a = tc.analyze(w, 12, padding=1, padding_mode=mode, k=4)
    how = "fft" if mode == "circular" else "dense"
    _check_analysis(a, ref, 4, dict.fromkeys(("norm", "condition_number", "singular_values"), how))
    assert a.norm == pytest.approx(tc.spectral_norm(w, 12, padding=1, padding_mode=mode), rel=1e-14)
    assert a.condition_number == pytest.approx(
        tc.condition_number(w, 12, padding=1, padding_mode=mode), rel=1e-12
    )


def test_analyze_2d_and_a_k_past_the_size():
    w = np.random.default_rng(61).standard_normal((2, 2, 3, 3))
    M = tc.conv_matrix(w, (5, 4), padding=1, format="dense")
    ref = np.linalg.svd(M, compute_uv=False)
    a = tc.analyze(w, (5, 4), padding=1, k=1000)  # at most min(m, n) values
    _check_analysis(a, ref, ref.size, dict.fromkeys(a.methods, "dense"))


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_analyze_beyond_the_dense_limit_is_iterative(monkeypatch, mode):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    monkeypatch.setattr(_method, "DENSE_NORM_SIDE", 0)
    w = np.random.default_rng(62).standard_normal((2, 2, 3))
    ref, _ = _dense_svd(w, 60, padding=1, padding_mode=mode)
    a = tc.analyze(w, 60, padding=1, padding_mode=mode, k=3, tol=1e-9)
    methods = {"norm": "bracket", "condition_number": "krylov", "singular_values": "krylov"}
    _check_analysis(a, ref, 3, methods)
    assert a.norm == pytest.approx(ref[0], rel=1e-6)


def test_analyze_the_zero_map_and_bad_arguments():
    a = tc.analyze(np.zeros((2, 2, 3)), 10, k=2)
    assert a.norm == 0 and tuple(a.bounds) == (0, 0) and a.condition_number == np.inf
    assert set(a.methods.values()) == {"zero"} and not a.singular_values.any()
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        tc.analyze([1.0, 2.0], 8, k=0)
    with pytest.raises(ValueError, match="`rtol` must be a float in"):
        tc.analyze([1.0, 2.0], 8, rtol=2.0)
    with pytest.raises(TypeError, match="`time_limit` must be None or a number"):
        tc.analyze([1.0, 2.0], 8, time_limit="1")

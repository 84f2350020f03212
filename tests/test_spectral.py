"""Spectra, norms, certified brackets and condition numbers of 1-, 2- and 3-D layers.

Every case is checked against references written here, not taken from the analysis code:
the dense SVD of the layer's matrix (``conv_matrix(..., format="dense")``; for N-d layers
also the matrix probed from torch's ``conv2d``/``conv3d`` after ``F.pad``, in the tests only),
and Sedghi et al.'s formula for circular layers (the ``fftn`` of the kernel padded to the
input size, one SVD per frequency).  Cases that are the same idea in any number of spatial
axes are parametrised over it (ids ``1d-...``, ``2d-...``, ``3d-...``).

Sections: exact spectra; iterative values; the condition number; norm brackets and
certificates (zero / reflect / replicate / circular padding, the symbol and its grid
maximum, the operators and start vectors, edge localisation); budgets and warnings;
``analyze``; errors.
"""

from __future__ import annotations

import itertools
import math
import re
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from strategies import conv_nd_configs
from toeplitz_conv import spectral
from toeplitz_conv._linop import LayerOperator
from toeplitz_conv.spectral import _bracket, _certify, _krylov, _localize, _method, _smallest
from toeplitz_conv.spectral import _symbol as _sym

MODES = ("zeros", "reflect", "replicate", "circular")


# --------------------------------------------------------------------------- shared helpers
def _dense_svd(weight, size, **kw):
    """The dense singular values (descending) and the dense matrix of the layer."""
    M = tc.conv_matrix(weight, size, format="dense", **kw)
    return np.linalg.svd(M, compute_uv=False), M


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


def reference_matrix(request, w, size, mode="zeros", **kw):
    """The dense matrix a test compares with: 1-D, ``conv_matrix`` (itself checked against
    torch in ``test_torch_oracle``); N-d, torch's probe (an independent construction)."""
    if isinstance(size, int) or len(size) == 1:
        return tc.conv_matrix(w, size, padding_mode=mode, format="dense", **kw)
    return torch_matrix(request.getfixturevalue("torch"), w, size, mode=mode, **kw)


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


def layer_of(w, size, mode, kw):
    """The analysis layer of ``conv_matrix(w, size, padding_mode=mode, **kw)``."""
    return _sym.analysis_layer(
        w,
        size,
        kw.get("stride", 1),
        kw.get("padding", 0),
        kw.get("dilation", 1),
        kw.get("groups", 1),
        mode,
    )


def weights(rng, shape, complex_weights=False):
    """Standard normal weights (complex: a second draw for the imaginary part)."""
    w = rng.standard_normal(shape)
    return w + 1j * rng.standard_normal(shape) if complex_weights else w


def case(shape, size, *rest):
    """A ``pytest.param`` whose id starts with the number of spatial axes."""
    return pytest.param(shape, size, *rest, id=f"{len(shape) - 2}d-{shape}-{size}")


def _circulant_bound(layer):
    """``||T||`` for the zero-padded part: the symbol's certified maximum on the embedding."""
    sym = _sym.layer_symbol(layer)
    return _certify.grid_max(sym, _certify.embedding_lengths(layer, np.nan, 1)[0], rtol=1e-3)[0]


def _binomial_closed_form(n):
    """cond of the 2-D conv by outer([1, 2, 1], [1, 2, 1]), zero padding 1, on n x n.

    Each axis is the symmetric tridiagonal Toeplitz ``tridiag(1, 2, 1)`` of order ``n``,
    with eigenvalues ``2 + 2 cos(j pi / (n + 1))``; the 2-D matrix is their Kronecker product.
    """
    j = np.arange(1, n + 1)
    ev = np.outer(2 + 2 * np.cos(j * np.pi / (n + 1)), 2 + 2 * np.cos(j * np.pi / (n + 1)))
    return ev.max() / ev.min()


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


# Small layers of 1, 2 and 3 axes for every padding mode: (shape, size, kw, seed).
# The 1-D ones are (C_out, C_in / groups, K) with stride, dilation, padding and groups.
SMALL_LAYERS = [
    case((1, 1, 3), 9, dict(padding=1)),
    case((4, 3, 4), 12, dict(stride=2, padding=(2, 1), groups=2)),
    case((3, 2, 2), 11, dict(stride=3, dilation=2, padding=2)),
    case((2, 1, 5), 16, dict(dilation=2, padding=0, groups=2)),
    case((3, 1, 3), 8, dict(stride=2, dilation=3, padding=4, groups=3)),
    case((2, 3, 1), 5, dict(padding=0)),
    case((4, 3, 3, 3), (9, 8), dict(padding=1)),
    case((3, 2, 3, 2), (10, 7), dict(padding=(1, (0, 1)), stride=(2, 1))),
    case((2, 4, 3, 3), (8, 9), dict(padding=2, dilation=(2, 1), stride=(1, 3))),
    case((4, 2, 2, 3, 2), (5, 4, 6), dict(padding=(1, 1, (1, 0)), stride=(2, 1, 1))),
    case((4, 1, 3, 3), (7, 8), dict(padding=1, groups=2)),
]


def _seed(shape, n_seed, one_d_seed):
    """The seed a case had before the 1-D and N-d files merged (the same weights)."""
    return one_d_seed if len(shape) == 3 else sum(shape) + n_seed


# =========================================================================== exact spectra
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("shape", "size", "kw"), SMALL_LAYERS)
def test_small_layers_exact_by_dense_svd(request, mode, shape, size, kw):
    """Small matrices: the whole spectrum, the top values, the norm, its bracket and the
    condition number, exact against the dense SVD."""
    w = np.random.default_rng(_seed(shape, 1, 1)).standard_normal(shape)
    try:
        M = reference_matrix(request, w, size, mode, **kw)
    except ValueError:
        pytest.skip("padding not allowed in this mode")
    expected = np.linalg.svd(M, compute_uv=False)
    got = tc.singular_values(w, size, padding_mode=mode, **kw)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=min(1e-10, 1e-12 * expected[0]))
    for k in (2, 3):
        top = tc.singular_values(w, size, padding_mode=mode, k=k, **kw)
        np.testing.assert_allclose(top, expected[:k], atol=1e-10)
        np.testing.assert_allclose(top, expected[:k], rtol=1e-12)
    assert tc.spectral_norm(w, size, padding_mode=mode, **kw) == pytest.approx(
        expected[0], rel=1e-12
    )
    lo, hi = tc.spectral_norm_bounds(w, size, padding_mode=mode, **kw)
    assert lo <= expected[0] * (1 + 1e-12) and hi >= expected[0] * (1 - 1e-12)
    cond = tc.condition_number(w, size, padding_mode=mode, **kw)
    small = expected[-1] <= max(M.shape) * np.finfo(float).eps * expected[0]
    assert cond == (np.inf if small else pytest.approx(expected[0] / expected[-1], rel=1e-8))


# (shape, size, stride, dilation, groups, padding, seed); padding None: total d (K - 1) split
# as evenly as it goes, so that every strided axis keeps size / stride outputs.
CIRCULANT_LAYERS = [
    case((1, 1, 3), 8, 1, 1, 1, None, 2),
    case((3, 2, 4), 12, 2, 1, 1, None, 2),  # strided: the polyphase split
    case((4, 2, 3), 12, 3, 2, 2, None, 2),
    case((2, 3, 5), 16, 4, 1, 1, None, 2),
    case((5, 2, 1), 10, 2, 1, 1, None, 2),
    case((2, 2, 2), 7, 1, 3, 1, None, 2),  # odd length
    case((2, 3, 3), 9, 1, 1, 1, 1, 3),
    case((4, 3, 3, 3), (8, 6), (2, 1), (1, 1), 1, 1, "nd"),
    case((4, 2, 3, 2), (6, 8), (3, 2), (1, 2), 2, ((1, 0), (1, 1)), "nd"),
    case((2, 2, 2, 2, 3), (4, 4, 6), (2, 1, 3), 1, 1, (0, (1, 0), 1), "nd"),
    case((6, 1, 3, 3), (4, 6), 2, 1, 2, 1, "nd"),
]


@pytest.mark.parametrize("complex_weights", [False, True])
@pytest.mark.parametrize(
    ("shape", "size", "stride", "dilation", "groups", "padding", "seed"), CIRCULANT_LAYERS
)
def test_circular_spectrum_by_fft_matches_dense(
    request, shape, size, stride, dilation, groups, padding, seed, complex_weights
):
    """The block-circulant path (the per-axis polyphase split where strided): exact where
    every stride divides its axis."""
    sizes = (size,) if isinstance(size, int) else size
    n = len(sizes)
    K = shape[2:]
    strides, dilations = (np.broadcast_to(v, n) for v in (stride, dilation))
    if padding is None:
        padding = tuple(
            (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
            for d, k in zip(dilations, K, strict=True)
        )
        padding = padding[0] if n == 1 else padding
    if seed == "nd":
        seed = n * 7 + shape[0]
    w = weights(np.random.default_rng(seed), shape, complex_weights)
    kw = dict(stride=stride, dilation=dilation, padding=padding, groups=groups)
    pads = [padding] * n if n == 1 or isinstance(padding, int) else list(padding)
    for L, k, s, d, p in zip(sizes, K, strides, dilations, pads, strict=True):
        assert tc.output_length(L, k, stride=int(s), padding=p, dilation=int(d)) * s == L
    assert _sym.is_circulant(layer_of(w, size, "circular", kw))
    M = reference_matrix(request, w, size, "circular", **kw)
    ref = np.linalg.svd(M, compute_uv=False)
    atol = min(1e-10, 1e-12 * ref[0])
    got = tc.singular_values(w, size, method="fft", padding_mode="circular", **kw)
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    auto = tc.singular_values(w, size, padding_mode="circular", **kw)
    np.testing.assert_allclose(auto, ref, rtol=0, atol=atol)
    norm = tc.spectral_norm(w, size, padding_mode="circular", **kw)
    assert norm == pytest.approx(ref[0], rel=1e-13)
    lo, hi = tc.spectral_norm_bounds(w, size, padding_mode="circular", **kw)
    assert lo <= ref[0] <= hi and hi - lo <= 1e-12 * hi
    cond = tc.condition_number(w, size, padding_mode="circular", **kw)
    expected = ref[0] / ref[-1] if ref[-1] > 0 else np.inf
    assert cond == pytest.approx(expected, rel=1e-8) or (np.isinf(cond) and expected > 1e12)


@pytest.mark.parametrize("complex_weights", [False, True])
@pytest.mark.parametrize(
    ("shape", "size", "dilation"),
    [
        case((3, 4, 3), (9,), (1,)),
        case((2, 3, 2), (8,), (3,)),
        case((3, 4, 3, 3), (6, 5), (1, 1)),
        case((4, 2, 2, 3), (8, 7), (2, 1)),
        case((2, 3, 3, 1), (5, 4), (1, 1)),
        case((2, 2, 3, 2, 2), (4, 5, 3), (1, 1, 1)),
    ],
)
def test_circular_spectrum_is_sedghis(shape, size, dilation, complex_weights):
    rng = np.random.default_rng(sum(shape) + len(size))
    w = weights(rng, shape, complex_weights)
    n = len(size)
    pad = tuple(d * (k - 1) // 2 for d, k in zip(dilation, shape[2:], strict=True))
    pad = tuple((p, d * (k - 1) - p) for p, d, k in zip(pad, dilation, shape[2:], strict=True))
    kw = dict(padding=pad, dilation=dilation, padding_mode="circular")
    got = tc.singular_values(w, size, **kw)
    expected = sedghi_singular_values(w, size, dilation[:n])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * expected[0])
    norm = tc.spectral_norm(w, size, **kw)
    assert norm == pytest.approx(expected[0], rel=1e-13)
    lo, hi = tc.spectral_norm_bounds(w, size, **kw)
    assert lo <= expected[0] * (1 + 1e-13) and hi >= expected[0] * (1 - 1e-13)
    assert hi - lo <= 1e-12 * hi
    cond = tc.condition_number(w, size, **kw)
    assert cond == pytest.approx(expected[0] / expected[-1], rel=1e-9)


def test_one_axis_tuple_is_the_1d_layer():
    w = np.random.default_rng(3).standard_normal((3, 2, 4))
    for mode in MODES:
        a = tc.singular_values(w, 9, padding=2, padding_mode=mode)
        b = tc.singular_values(w, (9,), padding=(2,), padding_mode=mode)
        np.testing.assert_array_equal(a, b)


def test_large_circular_layer_is_fast():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 8, 5))
    values = tc.singular_values(w, 4096, padding=2, padding_mode="circular")
    assert values.shape == (8 * 4096,) and np.all(np.diff(values) <= 0)
    # Parseval: the squared singular values sum to ||M||_F^2 = L * ||W||_F^2
    assert np.sum(values**2) == pytest.approx(4096 * np.sum(w**2), rel=1e-10)


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


# =========================================================================== iterative values
@pytest.mark.parametrize(
    ("shape", "size", "kw", "complex_weights"),
    [
        case((3, 3, 5), 120, dict(padding=2), False),
        case((3, 3, 5), 120, dict(padding=2, padding_mode="reflect"), False),
        case((2, 3, 4), 120, dict(padding=(2, 1), padding_mode="replicate", stride=2), False),
        case((4, 1, 3), 120, dict(padding=1, groups=2, dilation=2), True),
        case((2, 4, 3), 120, dict(padding=1), True),  # wide
        case((1, 1, 3), 120, dict(padding=(1, 2), padding_mode="circular"), False),
        case((3, 3, 3, 3), (12, 10), dict(padding=1), False),
        case((2, 3, 3, 2), (11, 12), dict(padding=1, padding_mode="reflect", stride=(2, 1)), True),
        case((2, 2, 3, 3, 3), (6, 5, 6), dict(padding=1, padding_mode="replicate"), False),
    ],
)
def test_block_krylov_top_values_are_certified(shape, size, kw, complex_weights):
    """method='krylov': each value is <= sigma_i and within its error of an exact value."""
    w = weights(np.random.default_rng(31), shape, complex_weights)
    ref, _ = _dense_svd(w, size, **kw)
    values, errors = tc.singular_values(
        w, size, k=4, method="krylov", tol=1e-9, return_errors=True, **kw
    )
    assert values.shape == errors.shape == (4,)
    assert np.all(values <= ref[:4] * (1 + 1e-12))  # Ritz values interlace
    for v, e in zip(values, errors, strict=True):
        assert np.min(np.abs(ref - v)) <= e * (1 + 1e-9) + 1e-12 * ref[0]
    np.testing.assert_allclose(values, ref[:4], rtol=1e-8)


def test_auto_beyond_the_dense_limit_is_block_krylov(monkeypatch):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(33).standard_normal((2, 3, 3))
    ref, _ = _dense_svd(w, 90, padding=1, padding_mode="replicate")
    values, errors = tc.singular_values(
        w, 90, k=2, padding=1, padding_mode="replicate", return_errors=True
    )
    np.testing.assert_allclose(values, ref[:2], rtol=1e-8)
    assert np.all(errors <= 1e-5 * values)


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


# --------------------------------------------------------------------------- the zero map
@pytest.mark.parametrize(
    ("weight", "size"),
    [
        pytest.param(np.zeros(3), 5000, id="1d-(3,)"),
        pytest.param(np.zeros((2, 3, 3)), 3000, id="1d-(2,3,3)"),
        pytest.param(np.zeros((1, 1, 2, 2)), (100, 100), id="2d"),
    ],
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
@pytest.mark.parametrize(
    ("shape", "size"),
    [case((1, 1, 3), 4096), case((1, 1, 3, 3), (64, 64)), case((1, 1, 3, 3, 3), (16, 16, 16))],
)
def test_zero_weight_every_padding_mode(shape, size, mode):
    w = np.zeros(shape)
    kw = dict(padding=1, padding_mode=mode)
    np.testing.assert_array_equal(tc.singular_values(w, size, k=3, **kw), np.zeros(3))
    assert tc.spectral_norm_bounds(w, size, **kw) == (0.0, 0.0)
    assert tc.condition_number(w, size, **kw) == np.inf


# =========================================================================== condition number
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("shape", "size"),
    [case((3, 2, 3), 10), case((3, 2, 3, 3), (5, 4)), case((2, 2, 3, 3, 3), (3, 4, 3))],
)
def test_condition_number(shape, size, mode):
    w = np.random.default_rng(9).standard_normal(shape)
    M = tc.conv_matrix(w, size, padding=1, padding_mode=mode, format="dense")
    assert tc.condition_number(w, size, padding=1, padding_mode=mode) == pytest.approx(
        np.linalg.cond(M), rel=1e-8
    )


def test_condition_number_of_singular_and_scalar_filters():
    # a difference filter annihilates constants: singular
    assert tc.condition_number([1.0, -1.0], 8, padding=(0, 1), padding_mode="circular") == np.inf
    assert tc.condition_number([0.0, 0.0], 8) == np.inf
    assert tc.condition_number([2.0], 5) == 1.0


@pytest.mark.parametrize(
    ("shape", "size", "kw"),
    [
        # square, second difference below: ill-conditioned
        case((1, 1, 3), 300, dict(padding=1)),
        case((4, 2, 5), 300, dict(stride=2, padding=1, padding_mode="reflect")),  # wide, strided
        case((4, 2, 5), 300, dict(padding=2)),  # tall
        case((2, 4, 3), 300, dict(padding=1, padding_mode="replicate")),  # wide
        case((3, 1, 4), 300, dict(groups=3, padding=(1, 2), padding_mode="circular", dilation=2)),
        case((2, 3, 3, 3), (12, 11), dict(padding=1, padding_mode="reflect")),
        case((2, 2, 2, 3, 2), (6, 5, 6), dict(padding=1, padding_mode="replicate")),
    ],
)
def test_condition_number_beyond_dense_by_sparse_lu(monkeypatch, shape, size, kw):
    """Above DENSE_LIMIT sigma_min comes from shift-invert Lanczos on a sparse LU: exact."""
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(21).standard_normal(shape)
    if shape == (1, 1, 3):
        w = np.array([[[1.0, -2.0, 1.0]]])
    M = tc.conv_matrix(w, size, format="dense", **kw)
    assert tc.condition_number(w, size, **kw) == pytest.approx(np.linalg.cond(M), rel=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_condition_number_beyond_dense_every_mode(monkeypatch, mode):
    """sigma_min by shift-invert block Krylov for every padding mode (was unbounded ARPACK)."""
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(0).standard_normal(3)  # the shape of the replicate case
    kw = dict(padding=(2, 0), padding_mode=mode)
    M = tc.conv1d_matrix(w, 300, format="dense", **kw)
    assert tc.condition_number(w, 300, **kw) == pytest.approx(np.linalg.cond(M), rel=1e-5)


def test_condition_number_singular_beyond_dense(monkeypatch):
    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    # a circular difference filter with L_out != L (not circulant): constants are still lost
    assert tc.condition_number([1.0, -1.0], 300, padding=(1, 1), padding_mode="circular") == (
        np.inf
    )
    assert tc.condition_number(np.zeros((2, 2, 3)), 300, padding=1) == np.inf


def test_numerically_singular_layer_beyond_dense_is_inf():
    """Issue 8 (5): was ArpackError (and LAPACK's DLASCL message); the dense path says inf."""
    w = np.random.default_rng(0).standard_normal((2, 2, 3))
    assert tc.condition_number(w, 1030, padding=(2, 0)) == np.inf


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


# sigma_min without a sparse LU (top^2 I - M^H M)
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
    size = size if ndim == 1 else (size // 3 + 3, size // 4 + 3)
    sizes = (size,) if ndim == 1 else size
    pad = min(pad, min(sizes) - 1)  # reflect needs padding < input size
    w = np.random.default_rng(seed).standard_normal((c_out, c_in) + (kernel,) * ndim)
    kw = dict(stride=stride, padding=pad, padding_mode=mode)
    s, M = _dense_svd(w, size, **kw)
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


# =========================================================================== brackets
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("shape", "size", "kw"), SMALL_LAYERS)
def test_bracket_contains_the_dense_norm(request, monkeypatch, mode, shape, size, kw):
    """The iterative bracket alone (dense fallback off) contains the norm of the dense matrix."""
    w = np.random.default_rng(_seed(shape, 0, 11)).standard_normal(shape)
    try:
        M = reference_matrix(request, w, size, mode, **kw)
    except ValueError:
        pytest.skip("padding not allowed in this mode")
    layer = layer_of(w, size, mode, kw)
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
    """The 1-D bracket (forced, with no dense shortcut) always contains the dense SVD's norm."""
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


@pytest.mark.parametrize(
    ("shape", "size", "mode", "complex_weights", "rtol", "steps"),
    [
        case((3, 3, 5), 400, "zeros", False, 1e-6, 50),
        case((3, 3, 5), 400, "reflect", False, 1e-6, 50),
        case((3, 3, 5), 400, "replicate", False, 1e-6, 50),
        case((3, 3, 3, 3), (14, 12), "zeros", False, 1e-4, 80),
        case((3, 3, 3, 3), (14, 12), "zeros", True, 1e-4, 80),
    ],
)
def test_bracket_closes(request, monkeypatch, shape, size, mode, complex_weights, rtol, steps):
    """Without the dense shortcut the bracket closes on a mid-size layer: to rtol in 1-D;
    in 2-D Lanczos from the windowed exponential reaches the norm, and the circulant
    embedding's upper end is within 5%."""
    n = len(shape) - 2
    rng = np.random.default_rng(5 if n == 1 else 21)
    w = weights(rng, shape, complex_weights)
    padding = (shape[-1] - 1) // 2
    M = reference_matrix(request, w, size, mode, padding=padding)
    norm = np.linalg.norm(M, 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    layer = _sym.analysis_layer(w, size, 1, padding, 1, 1, mode)
    lo, hi = _bracket.bracket(layer, rtol, _method.Budget(steps, None))
    assert (norm - lo) <= rtol * norm
    if n == 1:
        assert lo <= norm <= hi
        assert hi - lo <= rtol * hi
    else:
        assert lo <= norm * (1 + 1e-12) <= hi * (1 + 2e-12)
        assert hi <= norm * 1.05


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


@pytest.mark.parametrize(
    ("shape", "size", "padding", "seed"),
    [case((4, 4, 5), 3000, 2, 10), case((3, 3, 3, 3), (30, 31), 1, 6)],
)
def test_deterministic(shape, size, padding, seed):
    """The bracket, internal and public, does not depend on the random generator."""
    w = np.random.default_rng(seed).standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = _sym.analysis_layer(w, size, 1, padding, 1, 1, "zeros")
        a = _bracket.bracket(layer, 1e-3, _method.Budget(30, None))
        b = _bracket.bracket(layer, 1e-3, _method.Budget(30, None))
    assert a == b
    if len(shape) == 3:  # the public bracket too (on the 2-D layer: 0.4 s more, kept out)
        a = tc.spectral_norm_bounds(w, size, padding=padding)
        b = tc.spectral_norm_bounds(w, size, padding=padding, rng=123)
        assert a == b
        assert isinstance(a, tc.NormBounds) and a.lower <= a.upper


# ------------------------------------------------------------- the symbol, grid maximum
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
    """``_prove_below`` proves mu just above sigma_max, never mu at or below it (1-D)."""
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


@pytest.mark.parametrize(
    ("shape", "size", "stride"),
    [
        case((3, 4, 3), 30, 2),
        case((3, 4, 3, 2), (10, 12), (2, 1)),
        case((2, 3, 3, 2, 2), (6, 5, 6), (1, 2, 1)),
    ],
)
def test_prove_below_is_sound_on_random_angles(shape, size, stride):
    rng = np.random.default_rng(9)
    w = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    sym = _sym.layer_symbol(_sym.analysis_layer(w, size, stride, 1, 1, 1, "zeros"))
    theta = rng.uniform(-np.pi, np.pi, (15, len(shape) - 2))
    theta = theta[:, 0] if len(shape) == 3 else theta
    top = np.linalg.svd(sym(theta), compute_uv=False)[..., 0].max(axis=-1)
    assert not _certify._prove_below(sym, theta, top * (1 - 1e-9)).any()
    assert _certify._prove_below(sym, theta, top * (1 + 1e-8)).all()


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
    """1-D: proofs, Gram eigenvalues or SVDs: upper covers every grid value; best is attained."""
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
    """N-d: upper covers every grid value of an n-D grid; best is a grid value it attains."""
    rng = np.random.default_rng(seed)
    shape = (c_out, c_in, *([K] * n_axes))
    w = weights(rng, shape, complex_weights)
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


def test_grid_max_deadline_keeps_a_valid_bound():
    """Past the deadline the open boxes keep their bound: the result still covers the grid."""
    w = np.random.default_rng(1).standard_normal((8, 8, 3, 3))
    layer = _sym.analysis_layer(w, (40, 40), 1, 1, 1, 1, "circular")
    sym = _sym.layer_symbol(layer)
    exact, _, _ = _certify.grid_max(sym, (40, 40), rtol=0.0)
    upper, best, _ = _certify.grid_max(_sym.layer_symbol(layer), (40, 40), rtol=1e-9, deadline=0.0)
    assert best <= exact * (1 + 1e-12) and upper >= exact * (1 - 1e-12)


# ------------------------------------------------------------- operators, start vectors
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("groups", [1, 2])
def test_start_vector_product_is_exact(mode, groups):
    """The separable shortcut for ``M x`` of the 1-D start vector equals the operator's product."""
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


@pytest.mark.parametrize(
    ("shape", "size", "kw"),
    [
        case((3, 2, 3), 13, dict(padding=(1, 0), stride=2)),
        case((3, 2, 3, 2), (7, 6), dict(padding=(1, (1, 0)), stride=(2, 1))),
        case((2, 2, 3, 2, 2), (5, 4, 6), dict(padding=(1, (1, 0), 1), stride=(2, 1, 1))),
    ],
)
def test_operator_matches_the_dense_matrix(request, shape, size, kw):
    """The operator the Lanczos runs on: ``M x`` and ``M^H y`` of the dense matrix."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    M = reference_matrix(request, w, size, "reflect", **kw)
    op = LayerOperator(layer_of(w, size, "reflect", kw))
    x = rng.standard_normal(M.shape[1]) + 1j * rng.standard_normal(M.shape[1])
    y = rng.standard_normal(M.shape[0]) + 1j * rng.standard_normal(M.shape[0])
    np.testing.assert_allclose(op.matvec(x), M @ x, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(y), M.conj().T @ y, atol=1e-12)


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


# --------------------------------------------------------------------------- edge localisation
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
    """Issue 8 (4): past the whole-Gram budget the edges' Gram matrices keep the 1-D bracket
    tight.

    It was ``min(sqrt(copies) ||C||, ||C|| + ||boundary||)``: 22% wide at 16 channels, L=8192.
    """
    calls = []
    real = _localize.localized_bound

    def spy(*args, **kwargs):
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(_bracket, "localized_bound", spy)
    monkeypatch.setattr(_certify, "_GRAM_FLOPS", 0)  # no whole-Gram certificate
    monkeypatch.setattr(_localize, "_LOCAL_ENTRIES", 2e5)  # short windows: a quick test
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    w = np.random.default_rng(41).standard_normal(shape)
    L = 600
    ref, _ = _dense_svd(w, L, padding_mode=mode, **kw)
    layer = layer_of(w, L, mode, kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo, hi = _bracket.bracket(layer, 1e-6, _method.Budget(50, None))
    assert calls and calls[0] is not None  # the localised bound ran and proved something
    assert lo <= ref[0] * (1 + 1e-13) and hi >= ref[0] * (1 - 1e-13)
    assert hi - lo <= 2e-3 * hi


def test_localization_narrows_the_bracket_past_the_whole_gram_cap(monkeypatch):
    """Past the block-Cholesky certificate's cap (set to 0 here) the edge strips and the
    circulant narrow the 2-D reflect bracket, which still holds the dense norm."""
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


def _localized_case(cfg, complex_weights):
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel_size"])
    w = weights(rng, shape, complex_weights)
    kw = dict(
        stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"]
    )
    M = tc.conv_matrix(w, cfg["input_size"], padding_mode=cfg["mode"], format="dense", **kw)
    return M, layer_of(w, cfg["input_size"], cfg["mode"], kw)


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
        case((3, 2, 3, 3), (16, 14), dict(padding=1)),
        case((2, 4, 3, 2), (15, 16), dict(padding=(1, (0, 1)), stride=(2, 1), groups=2)),
        case((2, 2, 3, 3), (17, 16), dict(padding=2, dilation=(2, 1))),
        case((2, 1, 3, 2, 3), (8, 7, 9), dict(padding=1)),
    ],
)
def test_localized_bound_proves_something_above_the_norm(mode, shape, size, kw):
    """Deterministic cases where the localisation runs (not ``None``) and holds the norm; it
    narrows as the ramps lengthen."""
    w = np.random.default_rng(sum(shape)).standard_normal(shape) * (1 + 0.5j)
    M = tc.conv_matrix(w, size, padding_mode=mode, format="dense", **kw)
    norm = np.linalg.norm(M, 2)
    layer = layer_of(w, size, mode, kw)
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


# =========================================================================== budgets and warnings
@pytest.mark.parametrize(
    ("shape", "size", "mode", "maxiter", "seed"),
    [
        case((2, 2, 5), 300, "reflect", 5, 7),
        case((4, 4, 3, 3), (12, 10), "replicate", 0, 8),
    ],
)
def test_bracket_that_cannot_close_warns_with_a_certified_bracket(
    request, monkeypatch, shape, size, mode, maxiter, seed
):
    """A small budget: the warning names a bracket that holds the norm, and the value and
    the public bracket hold it too (maxiter=0: no Lanczos step)."""
    monkeypatch.setattr(_certify, "_GRAM_FLOPS", 0)
    w = np.random.default_rng(seed).standard_normal(shape)
    padding = (shape[-1] - 1) // 2
    M = reference_matrix(request, w, size, mode, padding=padding)
    norm = np.linalg.norm(M, 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    monkeypatch.setattr(_method, "DENSE_NORM_SIDE", 0)
    kw = dict(padding=padding, padding_mode=mode, maxiter=maxiter)
    with pytest.warns(RuntimeWarning, match=r"certified bracket \[.*\] .* did not close") as record:
        value = tc.spectral_norm(w, size, **kw)
    assert value <= norm * (1 + 1e-12)
    text = str(record[0].message)
    lo, hi = (float(v) for v in text.split("[")[1].split("]")[0].split(","))
    assert lo <= norm * (1 + 1e-9) and hi >= norm * (1 - 1e-9)
    bounds = tc.spectral_norm_bounds(w, size, **kw)
    assert bounds.lower <= norm * (1 + 1e-12) and bounds.upper >= norm * (1 - 1e-12)
    if len(shape) == 3:
        assert bounds.lower <= norm <= bounds.upper


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


def test_condition_number_time_limit_covers_sigma_max(monkeypatch):
    """Issue 14 (7): sigma_max had its own hard-coded budget (50 steps, no time limit)."""
    w = np.random.default_rng(3).standard_normal((2, 2, 3, 3))
    assert np.prod(tc.conv_matrix(w, (40, 40), padding=1).shape) > spectral.DENSE_LIMIT
    with pytest.warns(RuntimeWarning, match=r"sigma_max by block Krylov did not reach .*1e-09 s"):
        tc.condition_number(w, (40, 40), padding=1, time_limit=1e-9)


@pytest.mark.parametrize(
    ("shape", "size", "small"),
    [
        case((8, 8, 3), 16384, 256),
        case((8, 8, 3, 3), (128, 128), (16, 16)),
        case((8, 8, 3, 3, 3), (32, 32, 16), (8, 4, 8)),
    ],
)
def test_circular_spectrum_honours_the_time_limit(shape, size, small):
    """Issue 14 (7): the full circular spectrum ran to its end whatever time_limit said."""
    w = np.random.default_rng(4).standard_normal(shape)
    kw = dict(padding=1, padding_mode="circular")
    with pytest.raises(TimeoutError, match=r"reached [\d,]+ of its [\d,]+ frequencies"):
        tc.singular_values(w, size, time_limit=1e-9, **kw)
    with pytest.raises(TimeoutError, match=r"time_limit"):
        tc.condition_number(w, size, time_limit=1e-9, **kw)
    assert tc.singular_values(w, small, **kw).shape == (8 * int(np.prod(small)),)


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


def test_huge_iterative_requests_are_refused_before_allocating():
    """Issue 8 (6): was a MemoryError after trying to allocate 7.3 TiB."""
    with pytest.raises(ValueError, match=r"singular_values's \d+ Krylov vectors would take"):
        tc.singular_values([1.0, 2.0], 10**12, k=1)
    with pytest.raises(ValueError, match=r"would take .* use a shorter input"):
        tc.condition_number([1.0, 2.0], 10**12)


# =========================================================================== analyze
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("shape", "size", "k", "seed"),
    [
        case((3, 2, 3), 12, 4, 60),
        case((2, 2, 3, 3), (5, 4), 1000, 61),  # k past the size: at most min(m, n) values
        case((2, 1, 3, 3, 3), (3, 4, 3), 5, 63),
    ],
)
def test_analyze_matches_the_dense_svd(mode, shape, size, k, seed):
    w = np.random.default_rng(seed).standard_normal(shape)
    kw = dict(padding=1, padding_mode=mode)
    ref, _ = _dense_svd(w, size, **kw)
    a = tc.analyze(w, size, k=k, **kw)
    how = "fft" if mode == "circular" else "dense"
    _check_analysis(a, ref, k, dict.fromkeys(("norm", "condition_number", "singular_values"), how))
    assert a.norm == pytest.approx(tc.spectral_norm(w, size, **kw), rel=1e-14)
    assert a.condition_number == pytest.approx(tc.condition_number(w, size, **kw), rel=1e-12)


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


# =========================================================================== errors
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


@pytest.mark.parametrize(
    ("shape", "size", "stride"),
    [
        case((2, 2, 3), 10, 3),
        case((2, 2, 3, 3), (6, 5), (1, 2)),
        case((2, 2, 3, 3, 3), (4, 6, 5), (1, 1, 2)),
    ],
)
def test_fft_refused_for_a_layer_that_is_not_circulant(shape, size, stride):
    w = np.ones(shape)
    with pytest.raises(ValueError, match=r"method`='fft' needs a block-circulant layer"):
        tc.singular_values(w, size, padding=1, stride=stride, padding_mode="circular", method="fft")


def test_tuple_input_size_errors():
    w = np.ones((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"weight|input_size"):
        tc.spectral_norm(w, (5, 5, 5))
    with pytest.raises(ValueError, match=r"stride\[1\]"):
        tc.singular_values(w, (5, 5), stride=(1, 0))


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
    ("weight", "size", "kw"),
    [
        ([1.0, 2.0, 3.0], 50, {"padding": 1, "padding_mode": "circular"}),  # fft
        ([1.0, 2.0, 3.0], 50, {"padding": 1}),  # dense
        ([1.0, 2.0, 3.0], 5000, {"padding": 1}),  # the certified bracket
    ],
)
def test_bounds_are_python_floats(weight, size, kw):
    """Every path returns plain floats (a user's repr shows numbers, not np.float64(...))."""
    bounds = tc.spectral_norm_bounds(weight, size, **kw)
    assert type(bounds.lower) is float and type(bounds.upper) is float
    assert type(tc.analyze(weight, size, k=1, **kw).bounds.lower) is float


@pytest.mark.parametrize("scale", [2.0**-600, 1e-170, 1e-100, 2.0**500, 1e160])
@pytest.mark.parametrize(
    "shape, size, kw",
    [
        ((1, 1, 2), 3000, {}),  # past the dense limit: the bracket and Krylov searches
        ((2, 2, 3), 1500, {"padding": 1, "padding_mode": "reflect"}),
        ((2, 2, 3, 3), (9, 8), {"padding": 1}),  # dense SVD
        ((2, 2, 3), 16, {"padding": 1, "padding_mode": "circular"}),  # FFT
    ],
)
def test_results_scale_with_the_weight(scale, shape, size, kw):
    """Norms, brackets and singular values scale with the weight and the condition number
    does not, at any magnitude: squared scales (Gram matrices, 1 / sigma^2) neither
    overflow nor underflow (1e-170 once gave a "certified" bracket [0, 0])."""
    w = np.random.default_rng(4).standard_normal(shape)
    ws = w * scale
    ratio = ws.flat[0] / w.flat[0]  # the scale the rounded weight carries
    lo, hi = tc.spectral_norm_bounds(w, size, **kw)
    lo_s, hi_s = tc.spectral_norm_bounds(ws, size, **kw)
    np.testing.assert_allclose([lo_s / ratio, hi_s / ratio], [lo, hi], rtol=1e-9)
    assert 0 < lo_s <= hi_s < math.inf
    np.testing.assert_allclose(tc.spectral_norm(ws, size, **kw) / ratio, lo, rtol=1e-9)
    np.testing.assert_allclose(
        tc.condition_number(ws, size, **kw), tc.condition_number(w, size, **kw), rtol=1e-6
    )
    np.testing.assert_allclose(
        tc.singular_values(ws, size, k=2, **kw) / ratio,
        tc.singular_values(w, size, k=2, **kw),
        rtol=1e-9,
    )
    a, a_s = tc.analyze(w, size, k=2, **kw), tc.analyze(ws, size, k=2, **kw)
    np.testing.assert_allclose(
        [a_s.norm / ratio, *(np.array(a_s.bounds) / ratio)], [a.norm, *a.bounds], rtol=1e-9
    )
    np.testing.assert_allclose(a_s.singular_values / ratio, a.singular_values, rtol=1e-9)
    assert a_s.condition_number == pytest.approx(a.condition_number, rel=1e-6)

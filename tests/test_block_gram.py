"""The N-d block-Cholesky certificate (``_blockgram``) against dense SVDs of the matrix."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from strategies import conv_nd_configs
from toeplitz_conv.spectral import _blockgram, _bracket, _certify, _localize, _method
from toeplitz_conv.spectral import _symbol as _sym


def _setup(cfg, complex_weights=False):
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel_size"])
    w = rng.standard_normal(shape)
    if complex_weights:
        w = w + 1j * rng.standard_normal(shape)
    kw = dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
        padding_mode=cfg["mode"],
    )
    M = tc.conv_matrix(w, cfg["input_size"], format="dense", **kw)
    layer = _sym.analysis_layer(
        w, cfg["input_size"], kw["stride"], kw["padding"], kw["dilation"], kw["groups"], cfg["mode"]
    )
    return w, kw, M, layer


def _pixel_major(M, c_in, size):
    """``M^H M`` reordered from the matrix's ``(c, x_1, ..., x_n)`` columns to ``(x, c)``."""
    G = M.conj().T @ M
    perm = np.arange(G.shape[0]).reshape(c_in, -1).T.ravel()
    return G[np.ix_(perm, perm)]


@settings(max_examples=40, deadline=None)
@given(
    cfg=conv_nd_configs(n=2, modes=("zeros", "reflect", "replicate"), max_length=7),
    complex_weights=st.booleans(),
)
def test_gram_blocks_are_the_gram_matrix_2d(cfg, complex_weights):
    """Every block ``G[(h, .), (h', .)]`` from the weights equals the assembled ``M^H M``."""
    _, _, M, layer = _setup(cfg, complex_weights)
    G = _pixel_major(M, cfg["c_in"], cfg["input_size"])
    groups, c_out = cfg["groups"], cfg["c_out"] // cfg["groups"]
    H, c_g = cfg["input_size"][0], cfg["c_in"] // cfg["groups"]
    for g in range(groups):
        blocks = _blockgram._GramBlocks(layer.weight[g * c_out : (g + 1) * c_out], layer.geoms)
        n = blocks.n
        # this group's unknowns: channels g*c_g ... in pixel-major order
        idx = np.arange(G.shape[0]).reshape(-1, cfg["c_in"])[:, g * c_g : (g + 1) * c_g].ravel()
        Gg = G[np.ix_(idx, idx)]
        for h in range(H):
            for h2 in range(H):
                want = Gg[h * n : (h + 1) * n, h2 * n : (h2 + 1) * n]
                np.testing.assert_allclose(blocks(h, h2), want, atol=1e-12 * (1 + abs(G).max()))


@settings(max_examples=30, deadline=None)
@given(
    cfg=conv_nd_configs(n=2, modes=("zeros", "reflect", "replicate"), max_length=7),
    complex_weights=st.booleans(),
)
def test_output_gram_blocks_are_m_m_h(cfg, complex_weights):
    """``side='out'``: the blocks are ``M M^H`` in output-pixel-major order."""
    _, _, M, layer = _setup(cfg, complex_weights)
    G = M @ M.conj().T
    c_out = cfg["c_out"]
    perm = np.arange(G.shape[0]).reshape(c_out, -1).T.ravel()
    G = G[np.ix_(perm, perm)]
    groups, c_g = cfg["groups"], c_out // cfg["groups"]
    H = layer.output_size[0]
    for g in range(groups):
        blocks = _blockgram._GramBlocks(layer.weight[g * c_g : (g + 1) * c_g], layer.geoms, "out")
        n = blocks.n
        idx = np.arange(G.shape[0]).reshape(-1, c_out)[:, g * c_g : (g + 1) * c_g].ravel()
        Gg = G[np.ix_(idx, idx)]
        for h in range(H):
            for h2 in range(H):
                want = Gg[h * n : (h + 1) * n, h2 * n : (h2 + 1) * n]
                np.testing.assert_allclose(blocks(h, h2), want, atol=1e-12 * (1 + abs(G).max()))


def test_strided_layer_uses_the_output_gram():
    """Stride 2: ``M M^H`` has a quarter of the unknowns and a narrower band; still sound."""
    w = np.random.default_rng(7).standard_normal((6, 3, 3, 3))
    layer = _sym.analysis_layer(w, (12, 10), 2, 1, 1, 1, "zeros")
    assert _blockgram._plan(layer)[0] == "out"
    norm = np.linalg.norm(tc.conv_matrix(w, (12, 10), stride=2, padding=1, format="dense"), 2)
    up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-8))
    assert up is not None and norm <= up <= norm * (1 + 1e-6)
    assert _blockgram.block_gram_certificate(layer, norm * (1 - 1e-6)) is None


@pytest.mark.parametrize("every_thread", [False, True])
@settings(max_examples=60, deadline=None)
@given(
    cfg=conv_nd_configs(n=2, modes=("zeros", "reflect", "replicate"), max_length=7),
    complex_weights=st.booleans(),
)
def test_certificate_brackets_the_dense_norm_2d(every_thread, cfg, complex_weights):
    """Proves ``mu`` just above the dense norm (a bound within 1e-6), refuses just below; also
    on the path of large blocks (every BLAS thread)."""
    _, _, M, layer = _setup(cfg, complex_weights)
    norm = np.linalg.norm(M, 2)
    if norm == 0:
        return
    with pytest.MonkeyPatch.context() as mp:
        if every_thread:
            mp.setattr(_blockgram, "_THREADED_BLOCK", 1)
        up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-8))
        below = _blockgram.block_gram_certificate(layer, norm * (1 - 1e-6))
    assert up is not None and norm <= up <= norm * (1 + 1e-6)
    assert below is None


@settings(max_examples=25, deadline=None)
@given(
    cfg=conv_nd_configs(n=3, max_channels=3, modes=("zeros", "reflect", "replicate"), max_length=4)
)
def test_certificate_brackets_the_dense_norm_3d(cfg):
    _, _, M, layer = _setup(cfg)
    norm = np.linalg.norm(M, 2)
    if norm == 0:
        return
    up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-8))
    assert up is not None and norm <= up <= norm * (1 + 1e-6)
    assert _blockgram.block_gram_certificate(layer, norm * (1 - 1e-6)) is None


def test_ones_kernel_replicate_is_nine():
    """Issue 14.4: every row of the replicate-padded ones 3x3 conv sums to 9; the norm is 9."""
    lo, hi = tc.spectral_norm_bounds(
        np.ones((1, 1, 3, 3)), (64, 64), padding=1, padding_mode="replicate", maxiter=500
    )
    assert lo <= 9 * (1 + 1e-12) and hi >= 9
    assert hi - lo <= 1e-6 * hi


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate"])
def test_bracket_closes_in_2d(monkeypatch, mode):
    """The bracket (dense fallback off) closes to rtol for every padding mode and holds the norm."""
    w = np.random.default_rng(3).standard_normal((4, 3, 3, 3))
    size, kw = (13, 11), dict(padding=1, stride=(1, 2))
    M = tc.conv_matrix(w, size, format="dense", padding_mode=mode, **kw)
    norm = np.linalg.norm(M, 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    layer = _sym.analysis_layer(w, size, (1, 2), 1, 1, 1, mode)
    lower, upper = _bracket.bracket(
        layer, 1e-5, _method.Budget(200, None), np.random.default_rng(0)
    )
    assert lower <= norm * (1 + 1e-12) and upper >= norm
    assert upper - lower <= 1e-5 * upper


def test_bracket_closes_for_reflect_3d(monkeypatch):
    w = np.random.default_rng(4).standard_normal((2, 2, 3, 2, 3))
    size = (6, 5, 7)
    M = tc.conv_matrix(w, size, padding=1, padding_mode="reflect", format="dense")
    norm = np.linalg.norm(M, 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    layer = _sym.analysis_layer(w, size, 1, 1, 1, 1, "reflect")
    lower, upper = _bracket.bracket(
        layer, 1e-4, _method.Budget(200, None), np.random.default_rng(0)
    )
    assert lower <= norm * (1 + 1e-12) and upper >= norm
    assert upper - lower <= 1e-4 * upper


def test_bracket_runs_lanczos_again_when_the_proof_fails(monkeypatch):
    """A first Lanczos run short of the top (4 steps) makes the proof at lower (1 + rtol/2)
    fail; a second run from a random start lifts the lower end and the bracket closes."""
    w = np.random.default_rng(1).standard_normal((8, 8, 3, 3))
    size, rtol = (10, 10), 1e-4
    norm = np.linalg.norm(tc.conv_matrix(w, size, padding=1, format="dense"), 2)
    monkeypatch.setattr(_method, "DENSE_LIMIT", 0)
    runs: list[float] = []
    lanczos = _bracket.lanczos_lower

    def counted(*args, **kwargs):
        lower, steps = lanczos(*args, **kwargs)
        runs.append(lower)
        return lower, steps

    monkeypatch.setattr(_bracket, "lanczos_lower", counted)
    layer = _sym.analysis_layer(w, size, 1, 1, 1, 1, "zeros")
    lower, upper = _bracket.bracket(layer, rtol, _method.Budget(4, None))
    assert len(runs) == 2 and runs[0] < norm * (1 - rtol / 2) < runs[1]
    assert lower <= norm * (1 + 1e-12) and upper >= norm
    assert upper - lower <= rtol * upper


def test_gram_bound_escalates_when_the_lower_end_is_short():
    """A lower end 1% short still gets a proved upper bound (the try at 1e-1 succeeds)."""
    w = np.random.default_rng(5).standard_normal((3, 3, 3, 3))
    size = (9, 8)
    M = tc.conv_matrix(w, size, padding=1, padding_mode="replicate", format="dense")
    norm = np.linalg.norm(M, 2)
    layer = _sym.analysis_layer(w, size, 1, 1, 1, 1, "replicate")
    up = _certify.gram_bound(layer, norm * 0.99, norm * 10, 1e-6)
    assert up is not None and norm <= up <= norm * 0.99 * 1.1 * (1 + 1e-6)
    assert _certify.gram_bound(layer, norm * 0.99, norm * 1.05, 1e-6) is None  # all above upper


def test_certificate_stops_at_the_deadline_and_refuses_circular():
    w = np.random.default_rng(6).standard_normal((2, 2, 3, 3))
    layer = _sym.analysis_layer(w, (8, 8), 1, 1, 1, 1, "zeros")
    assert _blockgram.block_gram_certificate(layer, 100.0, deadline=time.monotonic() - 1) is None
    assert _blockgram.block_gram_certificate(layer, 100.0) is not None
    circ = _sym.analysis_layer(w, (8, 8), 1, (1, (1, 0)), 1, 1, "circular")
    assert _blockgram.block_gram_certificate(circ, 100.0) is None
    assert _blockgram.block_gram_certificate(layer, 0.0) is None


@settings(max_examples=30, deadline=None)
@given(
    cfg=conv_nd_configs(n=2, modes=("zeros", "reflect", "replicate"), max_length=8),
    complex_weights=st.booleans(),
    data=st.data(),
)
def test_windowed_certificate_is_the_strip_norm(cfg, complex_weights, data):
    """A `window` certifies ``||M[:, S]||`` for the strip ``S`` of samples on one axis: just
    above that norm, and not below it."""
    _, _, M, layer = _setup(cfg, complex_weights)
    axis = data.draw(st.integers(0, 1))
    L = cfg["input_size"][axis]
    start = data.draw(st.integers(0, L - 1))
    stop = data.draw(st.integers(start + 1, L))
    cols = np.arange(M.shape[1]).reshape(cfg["c_in"], *cfg["input_size"])
    cols = np.take(cols, np.arange(start, stop), axis=1 + axis).ravel()
    norm = np.linalg.norm(M[:, cols], 2)
    if not norm > 1e-8:
        return
    window = (axis, start, stop)
    up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-8), window=window)
    assert up is not None and norm <= up <= norm * (1 + 1e-7)
    assert _blockgram.block_gram_certificate(layer, norm * (1 - 1e-6), window=window) is None


def test_windowed_certificate_in_3d_and_the_cost_of_a_window():
    w = np.random.default_rng(7).standard_normal((2, 3, 3, 2, 3))
    size = (6, 5, 7)
    M = tc.conv_matrix(w, size, padding=1, padding_mode="replicate", format="dense")
    layer = _sym.analysis_layer(w, size, 1, 1, 1, 1, "replicate")
    cols = np.arange(M.shape[1]).reshape(3, *size)[:, :, :, 4:].ravel()
    norm = np.linalg.norm(M[:, cols], 2)
    up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-9), window=(2, 4, 7))
    assert up is not None and norm <= up <= norm * (1 + 1e-8)
    assert _blockgram.block_gram_cost(layer, (2, 4, 7))[0] < _blockgram.block_gram_cost(layer)[0]


@pytest.mark.parametrize(
    ("mode", "pad", "kernel", "dilation", "stride", "want"),
    [
        ("reflect", 1, 3, 1, 1, (2, 2)),  # reads sample 1: the outputs that fold see 0 and 1
        ("replicate", 1, 3, 1, 1, (2, 2)),  # touches sample 0; the fold's output reads 0 and 1
        ("reflect", 2, 3, 2, 1, (4, 4)),
        ("replicate", (0, 2), 3, 1, 1, (0, 2)),
        ("zeros", 1, 3, 1, 1, (0, 0)),
    ],
)
def test_flat_edges_cover_every_output_that_reads_padding(
    mode, pad, kernel, dilation, stride, want
):
    layer = _sym.analysis_layer(np.ones((1, 1, kernel)), 20, stride, pad, dilation, 1, mode)
    g = layer.geoms[0]
    assert _localize._flat_edges(g) == want
    a, b = want
    lo, hi = _localize.touched_columns(g)
    assert lo <= a and hi <= b
    weights = _localize._commutator_weights(g, a, b, 4)
    assert weights.shape == (kernel,) and np.all(weights >= 0)
    if a or b:  # an off-centre tap crosses the ramp: about (pi / 10)^2, never more
        assert 0 < weights.max() <= (np.pi / 10) ** 2 * ((kernel - 1) * dilation / 2) ** 2 * 1.01


def test_band_flops_and_the_plan():
    """The flop count is the sum over the block rows of potrf + trsm + syrk + gemm."""
    n = 10.0
    # H = 4, b = 2: rows with 2, 2, 1, 0 blocks right of the diagonal
    want = sum(n**3 / 3 + w * n**3 + w * n**3 + w * (w - 1) * n**3 for w in (2, 2, 1, 0))
    assert _blockgram._band_flops(4, 2, 10) == pytest.approx(want)
    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)) + 0j  # complex: 4x the flops
    layer = _sym.analysis_layer(w, (5, 7), 1, 1, 1, 1, "zeros")
    side, _, flops, nbytes = _blockgram._plan(layer)
    assert side == "in" and nbytes > 0
    by_axis = [4 * _blockgram._band_flops(5, 2, 7 * 3), 4 * _blockgram._band_flops(7, 2, 5 * 3)]
    assert flops == pytest.approx(min(by_axis))


class _FakeTime:
    """A stand-in for the ``time`` module: ``monotonic`` returns `now`, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_clock_stops_once_the_rate_cannot_finish(monkeypatch):
    fake = _FakeTime()
    monkeypatch.setattr(_blockgram, "time", fake)
    clock = _blockgram._Clock(100.0, deadline=110.0)
    fake.now = 101.0
    assert clock.on_time(5.0)  # under a tenth of the work: no projection yet
    fake.now = 102.0
    assert clock.on_time(15.0)  # 20% in 2 s: done at 110, just in time
    fake.now = 104.0
    assert not clock.on_time(10.0)  # 30% in 4 s: done at ~113, after the deadline
    fake.now = 111.0
    assert not _blockgram._Clock(100.0, deadline=110.0).on_time()  # past it
    assert _blockgram._Clock(100.0, deadline=None).on_time(1.0)


def test_time_budget_refuses_what_it_cannot_finish(monkeypatch):
    """With a deadline, a certificate predicted to take longer than the time left is not
    started (one within it is); without one, a flop budget decides (not the machine)."""
    w = np.random.default_rng(8).standard_normal((64, 64, 3, 3))
    layer = _sym.analysis_layer(w, (8, 8), 1, 1, 1, 1, "zeros")
    flops = _blockgram.block_gram_cost(layer)[0]
    assert flops > 1e9
    monkeypatch.setitem(_blockgram._RATE, "seen", flops / 1000.0)  # as if 1000 s
    assert not _certify.nd_gram_affordable(layer, time.monotonic() + 60)
    assert _certify.gram_certificate(layer, 1e3, time.monotonic() + 60) is None  # not started
    assert _certify.nd_gram_affordable(layer, time.monotonic() + 3600)
    assert _certify.nd_gram_affordable(layer)  # no time limit: the flops decide
    monkeypatch.setattr(_certify, "_GRAM_FLOPS_DEFAULT", flops / 2)
    assert not _certify.nd_gram_affordable(layer)
    assert _certify.nd_gram_affordable(layer, time.monotonic() + 3600)
    monkeypatch.setattr(_certify, "_GRAM_FLOPS_ND", flops / 2)  # the ceiling, whatever the time
    assert not _certify.nd_gram_affordable(layer, time.monotonic() + 3600)
    monkeypatch.setattr(_certify, "_GRAM_FLOPS_ND", 1e14)
    monkeypatch.setattr(_certify, "GRAM_BYTES_ND", 1000)  # the memory cap
    assert not _certify.nd_gram_affordable(layer, time.monotonic() + 3600)


def test_predicted_seconds_from_a_measured_rate(monkeypatch):
    monkeypatch.delitem(_blockgram._RATE, "seen", raising=False)
    monkeypatch.delitem(_blockgram._RATE, "gemm", raising=False)
    first = _blockgram.predicted_seconds(1e12)
    assert first > 0 and "gemm" in _blockgram._RATE
    assert _blockgram.predicted_seconds(2e12) == pytest.approx(2 * first)
    monkeypatch.setitem(_blockgram._RATE, "seen", 1e10)
    assert _blockgram.predicted_seconds(1e12) == pytest.approx(100.0)


def _backend(kind, dtype):
    """``'sub'``: scipy's Cython BLAS in place (:class:`_SubBlas`); ``'whole'``: the fallback."""
    if kind == "sub":
        ops = _blockgram._SubBlas.load(np.dtype(dtype))
        assert ops is not None  # scipy ships the capsules
        return ops
    return _blockgram._WholeBlas(np.dtype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("kind", ["sub", "whole"])
def test_blas_on_sub_blocks_in_place(kind, dtype):
    """potrf, trsm, herk and gemm on trailing blocks of a Fortran array (leading dimension
    larger than the block) match numpy and leave every other entry alone."""
    rng = np.random.default_rng(0)

    def rand(*shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if dtype is np.complex128 else x

    ops = _backend(kind, dtype)
    big = np.asfortranarray(rand(11, 30))
    A = rand(5, 5)
    A = A.conj().T @ A + 5 * np.eye(5)
    big[2:7, 3:8] = A
    keep = big.copy()
    assert ops.potrf(big[2:7, 3:8]) == 0
    U = np.triu(big[2:7, 3:8])
    np.testing.assert_allclose(U.conj().T @ U, A, atol=1e-12)
    keep[2:7, 3:8] = big[2:7, 3:8]
    np.testing.assert_array_equal(big, keep)
    B = big[2:7, 9:13].copy()
    ops.trsm(big[2:7, 3:8], big[2:7, 9:13])  # reads the upper triangle only
    np.testing.assert_allclose(U.conj().T @ big[2:7, 9:13], B, atol=1e-12)
    keep[2:7, 9:13] = big[2:7, 9:13]
    sub = big[4:7, 20:23]
    sub[np.diag_indices(3)] = sub.diagonal().real  # herk's target is Hermitian
    keep[4:7, 20:23] = sub
    X, C = big[1:10, 14:17], sub.copy()
    ops.herk(X, big[4:7, 20:23])
    want = C - X.conj().T @ X
    np.testing.assert_allclose(np.triu(big[4:7, 20:23]), np.triu(want), atol=1e-12)
    keep[4:7, 20:23] = big[4:7, 20:23]
    Y, C = big[1:10, 17:19], big[3:6, 25:27].copy()
    ops.gemm(X, Y, big[3:6, 25:27])
    np.testing.assert_allclose(big[3:6, 25:27], C - X.conj().T @ Y, atol=1e-12)
    keep[3:6, 25:27] = big[3:6, 25:27]
    np.testing.assert_array_equal(big, keep)  # nothing outside the targets moved
    ops.herk(X[:0], big[4:7, 20:23])  # no terms: nothing to do
    ops.gemm(X[:, :0], Y, big[:0, 25:27])
    ops.trsm(big[:0, :0], big[:0, 9:13])
    np.testing.assert_array_equal(big, keep)
    bad = _blockgram._SubBlas.load(np.dtype(dtype))
    with pytest.raises(ValueError, match="contiguous"):
        bad.herk(X, big[4:7, 20:23].T)  # rows of a C-order view are not contiguous
    with pytest.raises(TypeError, match="A: a 2-d"):
        bad.potrf(np.eye(3, dtype=np.float32))
    if kind == "sub":
        assert not ops.potrf(np.asfortranarray(-np.eye(3, dtype=dtype))) == 0  # not positive


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("kind", ["sub", "whole"])
def test_row_step_skips_only_zeros(kind, dtype):
    """A block row whose last block is zero above a staircase: its update by column ranges
    (the zeros skipped) equals the whole-block update and the dense formula."""
    rng = np.random.default_rng(1)

    def rand(*shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if dtype is np.complex128 else x

    chans, pixels, w = 3, 7, 2
    n = chans * pixels
    first = np.repeat(np.maximum(np.arange(pixels) - 2, 0) * chans, chans)
    last = _blockgram._chunks(first, 4, chans)
    assert len(last) == 4 and all(f <= first[c0:c1].min() for c0, c1, f in last)
    U = np.asfortranarray(np.triu(rand(n, n)) + 4 * np.eye(n))
    R = np.asfortranarray(np.hstack([U, rand(n, n), rand(n, n)]))
    last_block = R[:, 2 * n :]
    last_block[np.arange(n)[:, None] < first[None, :]] = 0
    below = [np.asfortranarray(rand(n, 2 * n)), np.asfortranarray(rand(n, n))]
    for x in below:  # Hermitian diagonal blocks: a real diagonal
        x[np.arange(n), np.arange(n)] = x[np.arange(n), np.arange(n)].real
    ops = _backend(kind, dtype)
    got = [R.copy(order="F"), [x.copy(order="F") for x in below]]
    whole = [R.copy(order="F"), [x.copy(order="F") for x in below]]
    _blockgram._row_step(ops, got[0], got[1], n, last)
    _blockgram._row_step(ops, whole[0], whole[1], n, [(0, n, 0)])
    X = np.linalg.solve(U.conj().T, R[:, n:])
    X1, X2 = X[:, :n], X[:, n:]
    want1 = below[0] - X1.conj().T @ X
    want2 = below[1] - X2.conj().T @ X2
    for a, b in [(got, whole), (whole, None)]:
        np.testing.assert_allclose(a[0][:, n:], X, atol=1e-10)
        np.testing.assert_allclose(np.triu(a[1][0][:, :n]), np.triu(want1[:, :n]), atol=1e-10)
        np.testing.assert_allclose(a[1][0][:, n:], want1[:, n:], atol=1e-10)
        np.testing.assert_allclose(np.triu(a[1][1]), np.triu(want2), atol=1e-10)
        np.testing.assert_array_equal(np.tril(a[1][1], -1), np.tril(below[1], -1))
        if b is not None:
            np.testing.assert_allclose(a[0], b[0], atol=1e-12)
    assert w == len(below)


@settings(max_examples=30, deadline=None)
@given(
    cfg=conv_nd_configs(n=2, modes=("zeros", "reflect", "replicate"), max_length=7),
    side=st.sampled_from(["in", "out"]),
)
def test_formed_blocks_are_zero_above_the_profile(cfg, side):
    """``first_rows``: every formed block ``A_h,h2 = -G_h,h2`` (as a block row holds it) is
    exactly zero above it, whatever the pair of slices."""
    _, _, _, layer = _setup(cfg)
    c_g = cfg["c_out"] // cfg["groups"]
    blocks = _blockgram._GramBlocks(layer.weight[:c_g], layer.geoms, side)
    first = blocks.first_rows()
    H = (layer.input_size if side == "in" else layer.output_size)[0]
    above = np.arange(blocks.n)[:, None] < first[None, :]
    for h in range(H):
        for h2 in range(h, min(H, h + blocks.r + 1)):
            out = np.zeros((blocks.n, blocks.n), order="F")
            blocks.fill(h2, h, out.T)
            assert not out[above].any()


@settings(max_examples=50, deadline=None)
@given(
    cfg=conv_nd_configs(n=2, modes=("zeros", "reflect", "replicate"), max_length=7),
    complex_weights=st.booleans(),
    path=st.sampled_from(
        ["whole blocks", "whole, chunked", "sub, unchunked", "threads", "threads, no row ahead"]
    ),
)
def test_certificate_on_every_blas_path(cfg, complex_weights, path):
    """The fallback without scipy's Cython BLAS (whole blocks; also forced to column ranges,
    i.e. copies), the in-place path without the skipped zeros, and the rows' tasks on the
    package's threads (the next pivot and row ahead; without the row) prove the same bracket."""
    _, _, M, layer = _setup(cfg, complex_weights)
    norm = np.linalg.norm(M, 2)
    if norm == 0:
        return
    with pytest.MonkeyPatch.context() as mp:
        if path.startswith("whole"):
            mp.setattr(_blockgram._SubBlas, "load", classmethod(lambda cls, dtype: None))
        if path == "whole, chunked":
            factorise = _blockgram._factorise
            mp.setattr(_blockgram, "_factorise", lambda *a, **k: factorise(*a, **k, chunks=3))
        if path == "sub, unchunked":
            mp.setattr(_blockgram, "_PROFILE_CHUNKS", 1)
        if path.startswith("threads"):
            mp.setattr(_blockgram, "_THREADED_BLOCK", 1)
            mp.setattr(_blockgram, "max_threads", lambda: 2)
            mp.setattr(_blockgram, "_blas_thread_limit", lambda: 2)  # under pytest-xdist: 1
            mp.setattr(_blockgram, "_DENSE_CHUNKS", 2)
        if path == "threads, no row ahead":
            mp.setattr(_blockgram, "_AHEAD_BYTES", 0)
        up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-8))
        below = _blockgram.block_gram_certificate(layer, norm * (1 - 1e-6))
    assert up is not None and norm <= up <= norm * (1 + 1e-6)
    assert below is None


@pytest.mark.parametrize("blas_limit", [1, 2])
def test_rows_run_as_tasks_when_blas_may_use_threads(monkeypatch, blas_limit):
    """Blocks past _THREADED_BLOCK on two CPUs: the rows' tasks go to the package's pool
    (three batches a row: the solve, the next pivot's update, the pivot ahead with the rest),
    unless the caller limited BLAS to one thread."""
    w = np.random.default_rng(9).standard_normal((4, 4, 3, 3))
    layer = _sym.analysis_layer(w, (9, 8), 1, 1, 1, 1, "zeros")
    norm = np.linalg.norm(tc.conv_matrix(w, (9, 8), padding=1, format="dense"), 2)
    batches: list[int] = []

    def counted(tasks, **kwargs):
        batches.append(len(tasks))
        for task in tasks:
            task()

    monkeypatch.setattr(_blockgram, "run", counted)
    monkeypatch.setattr(_blockgram, "_THREADED_BLOCK", 1)
    monkeypatch.setattr(_blockgram, "max_threads", lambda: 2)
    monkeypatch.setattr(_blockgram, "_blas_thread_limit", lambda: blas_limit)
    up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-8))
    assert up is not None and norm <= up <= norm * (1 + 1e-6)
    assert len(batches) == (3 * 8 if blas_limit > 1 else 0)  # 9 rows, 8 with rows below

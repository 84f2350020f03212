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


@settings(max_examples=60, deadline=None)
@given(
    cfg=conv_nd_configs(n=2, modes=("zeros", "reflect", "replicate"), max_length=7),
    complex_weights=st.booleans(),
)
def test_certificate_brackets_the_dense_norm_2d(cfg, complex_weights):
    """Proves ``mu`` just above the dense norm (a bound within 1e-6), refuses just below."""
    _, _, M, layer = _setup(cfg, complex_weights)
    norm = np.linalg.norm(M, 2)
    if norm == 0:
        return
    up = _blockgram.block_gram_certificate(layer, norm * (1 + 1e-8))
    assert up is not None
    assert norm <= up <= norm * (1 + 1e-6)
    assert _blockgram.block_gram_certificate(layer, norm * (1 - 1e-6)) is None


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

"""The fused 1-D Winograd F(4, 3) path (:mod:`toeplitz_conv._winograd1d`).

Compiled (numba) and numpy (the fallback, ``_tunables.COMPILED = False``) alike: every
layer it takes (3 taps, stride 1, dilation 1, any padding and mode, groups, batches,
float32/float64/complex) is the explicit matrix, forward and adjoint, with dot tests;
torch agrees; the plain-Python kernels compute what the compiled ones do; ``"auto"``
takes it for thick layers with numba only, within 10x the direct sum's rounding.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from checks import assert_operator_matches, dot_test
from reference import PADDING_MODES
from toeplitz_conv import _tunables as tunables
from toeplitz_conv import _winograd1d as w1d
from toeplitz_conv._plan import Pool

HAVE_NUMBA = w1d.compiled_kernels(np.dtype(np.float64)) is not None


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def compiled(request, monkeypatch):
    """The compiled transforms (when numba is installed) and the numpy fallback."""
    monkeypatch.setattr(tunables, "COMPILED", request.param)
    return request.param and HAVE_NUMBA


def _random(rng, shape, complex_=False):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _rel(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max(initial=0.0) / max(1e-300, np.abs(want).max(initial=0.0)))


def test_transform_matrices_are_exact():
    """``A^T [(G g) * (B^T d)]`` is the 3-tap correlation of every 6-sample tile."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, g = rng.standard_normal(6), rng.standard_normal(3)
        got = w1d._AT @ ((w1d._G @ g) * (w1d._BT @ d))
        want = np.array([d[i : i + 3] @ g for i in range(4)])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


@settings(max_examples=30, deadline=None)
@given(
    groups=st.integers(1, 3),
    c_in_g=st.integers(1, 3),
    c_out_g=st.integers(1, 3),
    mode=st.sampled_from(PADDING_MODES),
    pads=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    size=st.integers(3, 40),
    complex_=st.booleans(),
    seed=st.integers(0, 2**16),
)
@pytest.mark.parametrize("on", [True, False], ids=["compiled", "numpy"])
def test_layers_equal_the_matrix(on, groups, c_in_g, c_out_g, mode, pads, size, complex_, seed):
    """Every layer the path takes, both ways round, batches of 0, 1 and several columns."""
    before = tunables.COMPILED
    tunables.COMPILED = on
    try:
        rng = np.random.default_rng(seed)
        w = _random(rng, (groups * c_out_g, c_in_g, 3), complex_)
        kw = dict(groups=groups, padding=pads, padding_mode=mode)
        M = tc.conv_matrix(w, size, format="dense", **kw)
        op = tc.conv_operator(w, size, method="winograd", **kw)
        assert op.method == "winograd"
        assert_operator_matches(op, M, rng, rtol=1e-10, depth=1)
    finally:
        tunables.COMPILED = before


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("pad", [0, 1, 5])
@pytest.mark.parametrize("threads", ["1", "3"])
def test_many_blocks(compiled, monkeypatch, batch, pad, threads):
    """Blocks of a few tiles (a partial last one), zero padding wider than a tile, signals
    shorter and longer than a block, one tile; float64 and complex128; the blocks in the
    caller's thread, or in uneven runs on three threads."""
    monkeypatch.setattr(w1d, "BLOCK_COLS", 1)  # one tile a block
    monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", threads)
    rng = np.random.default_rng(batch + pad)
    for size, dtype in ((1 + 2 * (pad == 0), np.float64), (9, np.complex128), (203, np.float64)):
        w = _random(rng, (5, 4, 3), dtype == np.complex128)
        op = tc.conv_operator(w, size, padding=pad, method="winograd")
        M = tc.conv_matrix(w, size, padding=pad, format="dense")
        X = _random(rng, (M.shape[1], batch), dtype == np.complex128)
        Y = _random(rng, (M.shape[0], batch), dtype == np.complex128)
        assert _rel(op.matmat(X), M @ X) < 1e-12
        assert _rel(op.rmatmat(Y), M.conj().T @ Y) < 1e-12
        dot_test(op, rng)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("pad, block", [(2, 192), (0, 1)])
def test_python_kernels_compute_what_numba_does(monkeypatch, batch, pad, block):
    """The plain-Python kernels (what numba compiles) on a small layer, in one block
    (zeros on both sides) and in blocks of one tile (inside the signal): the same result
    as the compiled ones and as the sum (they are otherwise only run compiled)."""
    monkeypatch.setattr(w1d, "BLOCK_COLS", block * batch)
    rng = np.random.default_rng(batch)
    w = rng.standard_normal((6, 2, 3))  # 4 -> 6 channels in 2 groups
    L = 11
    L_out = L + 2 * pad - 2  # the last tile cut by the end
    x = rng.standard_normal((4, L, batch))
    m = w1d.weight6(w, 2, np.dtype(np.float64))
    python = SimpleNamespace(tiles_in=w1d._tiles_in, tiles_out=w1d._tiles_out)
    got = w1d.correlate3(x, m, pad, L_out, 6, python, Pool())
    xp = np.zeros((4, L_out + 2, batch))
    xp[:, pad : pad + L] = x
    wg = w.reshape(2, 3, 2, 3)
    want = np.stack(
        [
            sum(wg[g, o, c, k] * xp[2 * g + c, k : k + L_out] for c in range(2) for k in range(3))
            for g in range(2)
            for o in range(3)
        ]
    )
    assert _rel(got, want) < 1e-13
    if HAVE_NUMBA:
        fast = w1d.compiled_kernels(np.dtype(np.float64))
        assert _rel(w1d.correlate3(x, m, pad, L_out, 6, fast, Pool()), want) < 1e-13


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_torch(torch, compiled, dtype):
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 32, 301)).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for kw in (dict(padding=1, groups=2), dict(padding=0, groups=1), dict(padding=2, groups=4)):
        w = rng.standard_normal((32, 32 // kw["groups"], 3)).astype(dtype)
        got = tc.conv1d(x, w, method="winograd", **kw)
        want = F.conv1d(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()
        assert got.dtype == dtype
        assert _rel(got, want) < rtol
        y = rng.standard_normal(want.shape).astype(dtype)
        got_t = tc.conv_transpose1d(y, w, method="winograd", **kw)
        want_t = F.conv_transpose1d(torch.from_numpy(y), torch.from_numpy(w), **kw).numpy()
        assert _rel(got_t, want_t) < rtol


def test_auto_takes_it_for_thick_layers_with_numba(monkeypatch):
    rng = np.random.default_rng(3)
    thick = rng.standard_normal((16, 16, 3)).astype(np.float32)
    op = tc.conv_operator(thick, 100, padding=1)
    assert op.method == ("winograd" if HAVE_NUMBA else "direct")
    assert op.H.method == op.method
    # thin, depthwise, strided, dilated, 5 taps, 2-D: direct
    for w, kw in (
        (rng.standard_normal((8, 8, 3)), {}),
        (rng.standard_normal((16, 1, 3)), dict(groups=16)),
        (thick, dict(stride=2)),
        (thick, dict(dilation=2)),
        (rng.standard_normal((16, 16, 5)), {}),
        (rng.standard_normal((16, 16, 3, 3)), {}),
    ):
        assert tc.conv_operator(w, (100,) * (w.ndim - 2), **kw).method == "direct"
    monkeypatch.setattr(tunables, "COMPILED", False)
    assert tc.conv_operator(thick, 100, padding=1).method == "direct"
    assert tc.conv_operator(thick, 100, method="winograd").method == "winograd"


def _exact(w, x, y, groups, pad):
    """The forward and adjoint products of a zero-padded 3-tap layer, in long double."""
    w, x, y = (a.astype(np.longdouble) for a in (w, x, y))
    c_out, G, _ = w.shape
    n = x.shape[1]
    xp = np.zeros((x.shape[0], n + 2 * pad), dtype=np.longdouble)
    xp[:, pad : pad + n] = x
    n_out = n + 2 * pad - 2
    fwd = np.zeros((c_out, n_out), dtype=np.longdouble)
    gp = np.zeros_like(xp)
    m = c_out // groups
    for g in range(groups):
        wg, rows = w[g * m : (g + 1) * m], slice(g * G, (g + 1) * G)
        for k in range(3):
            fwd[g * m : (g + 1) * m] += wg[:, :, k] @ xp[rows, k : k + n_out]
            gp[rows, k : k + n_out] += wg[:, :, k].T @ y[g * m : (g + 1) * m]
    return fwd.astype(np.float64).ravel(), gp[:, pad : pad + n].astype(np.float64).ravel()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c, groups, n", [(64, 1, 4096), (32, 2, 1000), (128, 1, 600)])
def test_auto_error_within_ten_times_direct(compiled, dtype, c, groups, n):
    """The rounding of ``"auto"``'s choice (this path with numba) against a long double
    sum: at most 10x the direct sum's (measured: 1.2-2x), forward and adjoint, float32 and
    float64; the numpy fallback's too."""
    rng = np.random.default_rng(c + n)
    w = rng.standard_normal((c, c // groups, 3)).astype(dtype)
    x, y = rng.standard_normal((c, n)).astype(dtype), rng.standard_normal((c, n)).astype(dtype)
    want, want_t = _exact(w, x, y, groups, 1)
    kw = dict(padding=1, groups=groups)
    auto = tc.conv_operator(w, n, **kw)
    assert auto.method == ("winograd" if compiled else "direct")
    wino = tc.conv_operator(w, n, method="winograd", **kw)
    direct = tc.conv_operator(w, n, method="direct", **kw)
    x_, y_ = x.ravel(), y.ravel()
    for name, op in (("auto", auto), ("winograd", wino)):
        for got, ref, truth in ((op @ x_, direct @ x_, want), (op.H @ y_, direct.H @ y_, want_t)):
            assert _rel(got, truth) <= 10 * _rel(ref, truth), name


def test_scratch_and_dtypes(compiled):
    """float16 (not compiled: numpy's path) and repeated calls reusing scratch."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 4, 3))
    op = tc.conv_operator(w, 50, padding=1, method="winograd")
    M = tc.conv_matrix(w, 50, padding=1, format="dense")
    x = rng.standard_normal(op.shape[1])
    for _ in range(3):
        assert _rel(op @ x, M @ x) < 1e-12
    op16 = tc.conv_operator(w.astype(np.float16), 50, padding=1, method="winograd")
    assert _rel(op16 @ x.astype(np.float16), M @ x) < 5e-2

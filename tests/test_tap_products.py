"""The direct pass's tap products in place: numpy's BLAS on the taps' windows, no patches.

:meth:`toeplitz_conv._kernel._Direct._tap_products` multiplies each group of taps
(:attr:`toeplitz_conv._plan.Plan.tap_groups`) where its window lies in the phases and adds
the products up in the output (forward) or onto the phases (adjoint) through
:func:`toeplitz_conv._blas.gemm`. Checked: the GEMM against ``np.matmul`` on strided views
and its refusals; the tap groups by brute force; every layer kind (strides, dilation,
groups, padding modes, batches, float32 and float64, one block and many) against the loop
reference's matrix with the path forced; dot tests; the benchmark layers against torch;
and the switch back to the patches.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
import toeplitz_conv._plan as plan_module
from checks import assert_close, dot_test
from reference import ref_conv_nd_matrix
from strategies import conv_geometries, conv_kwargs, conv_nd_configs
from toeplitz_conv import _blas, _kernel
from toeplitz_conv import _tunables as tunables
from toeplitz_conv._geometry import conv_geometry

pytestmark = pytest.mark.skipif(
    not _blas.available(np.dtype(np.float64)), reason="numpy's BLAS is not a bundled OpenBLAS"
)


# --------------------------------------------------------------------------- the GEMM
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("add", [False, True])
@pytest.mark.parametrize("shape", [(5, 7, 3), (1, 1, 1), (4, 0, 6), (0, 3, 2), (3, 4, 0)])
def test_gemm_on_strided_views(dtype, add, shape):
    """``out (+)= a @ b`` with every operand a view whose rows are further apart than long."""
    M, K, N = shape
    rng = np.random.default_rng(M + 10 * K + 100 * N)
    a = rng.standard_normal((M, K + 2)).astype(dtype)[:, 1 : K + 1]
    b = rng.standard_normal((K, N + 5)).astype(dtype)[:, 3 : N + 3]
    base = rng.standard_normal((M, N + 1)).astype(dtype)
    out = base.copy()
    _blas.gemm(a, b, out[:, :N], add=add)
    want = a.astype(np.float64) @ b.astype(np.float64) + (base[:, :N] if add else 0)
    assert_close(out[:, :N], want, 1e-5 if dtype == np.float32 else 1e-13)
    assert np.array_equal(out[:, N:], base[:, N:])  # nothing written past the view


def test_gemm_refusals():
    a, b = np.ones((3, 4)), np.ones((4, 5))
    with pytest.raises(ValueError, match="do not match"):
        _blas.gemm(a, b, np.empty((3, 4)))
    with pytest.raises(TypeError, match="float32 or float64"):
        _blas.gemm(a.astype(np.float32), b, np.empty((3, 5)))
    with pytest.raises(TypeError, match="float32 or float64"):
        _blas.gemm(a + 0j, b + 0j, np.empty((3, 5), complex))
    with pytest.raises(ValueError, match="contiguous rows"):
        _blas.gemm(a, np.ones((5, 4)).T, np.empty((3, 5)))
    with pytest.raises(ValueError, match="overlap"):
        rows = np.lib.stride_tricks.as_strided(np.ones(20), shape=(4, 5), strides=(8, 8))
        _blas.gemm(a, rows, np.empty((3, 5)))
    assert not _blas.available(np.dtype(np.complex128))
    assert not _blas.available(np.dtype(np.float64), largest=2**80)


def test_switch_turns_the_gemm_off(monkeypatch):
    monkeypatch.setattr(tunables, "NUMPY_BLAS", False)
    assert not _blas.available(np.dtype(np.float64))


# --------------------------------------------------------------------------- the tap groups
@settings(max_examples=80, deadline=None)
@given(cfg=conv_nd_configs(n=2, max_kernel=4, max_stride=3, max_length=9))
def test_tap_groups_by_brute_force(cfg):
    """Every tap once; row ``(c, j)`` of a group's matrix is tap ``j``'s window in channel
    ``c``: at ``c R F + start + j step`` in the channels' rows of phases."""
    geoms = conv_geometries(cfg)
    plan = plan_module.Plan(geoms, 1, False)
    row = plan.n_phases * plan.phase_size
    seen = []
    for taps, start, step in plan.tap_groups:
        assert len(taps) * step == row
        for j, k in enumerate(taps):
            assert start + j * step == plan.tap_start[k]
            # the window of every output stays inside the channel's row (a strided view of
            # the rows is not bounds-checked)
            assert 0 <= plan.tap_start[k] and plan.tap_start[k] + plan.n_flat <= row
        seen += taps
    assert sorted(seen) == list(range(plan.taps))


def test_tap_groups_of_the_benchmark_layer():
    """1-D, K = 5, stride 2: taps (0, 1) and (2, 3) side by side in the two phases, 4 alone."""
    plan = plan_module.Plan((conv_geometry(8192, 5, stride=2),), 5, False)
    F = plan.phase_size
    assert plan.tap_groups == (((0, 1), 0, F), ((2, 3), 1, F), ((4,), 2, 2 * F))


# --------------------------------------------------------------------------- the passes
@pytest.fixture
def forced(monkeypatch):
    """Every layer with more than one input channel per group takes the tap products;
    counts their calls (forward, adjoint)."""
    monkeypatch.setattr(tunables, "NUMPY_BLAS", True)
    monkeypatch.setattr(_kernel, "TAP_GEMM_FROM", (2, 0))
    monkeypatch.setattr(_kernel, "_THIN_GEMM", 0)
    calls = {"forward": 0, "adjoint": 0}
    products = _kernel._Direct._tap_products

    def counted(self, rows, y_g, B, adjoint=False):
        calls["adjoint" if adjoint else "forward"] += 1
        return products(self, rows, y_g, B, adjoint)

    monkeypatch.setattr(_kernel._Direct, "_tap_products", counted)
    return calls


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cfg=st.one_of(
        conv_nd_configs(n=1, max_kernel=5, max_stride=4, max_length=14),
        conv_nd_configs(n=2, max_kernel=3, max_stride=3, max_length=8),
        conv_nd_configs(n=3, max_kernel=2, max_stride=2, max_length=4, max_channels=3),
    ),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_tap_products_are_the_matrix(cfg, dtype, forced, blocking):
    """Forward and adjoint, a vector and a batch, against the loop reference's matrix."""
    forced.update(forward=0, adjoint=0)
    rng = np.random.default_rng(cfg["seed"])
    G = cfg["c_in"] // cfg["groups"]
    w = rng.standard_normal((cfg["c_out"], G, *cfg["kernel_size"]))
    kw = conv_kwargs(cfg)
    M = ref_conv_nd_matrix(w, cfg["input_size"], **kw)
    op = tc.conv_operator(w.astype(dtype), cfg["input_size"], method="direct", **kw)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for batch in (None, cfg["batch"]):
        shape = (M.shape[1],) if batch is None else (M.shape[1], batch)
        x = rng.standard_normal(shape).astype(dtype)
        y = rng.standard_normal((M.shape[0], *shape[1:])).astype(dtype)
        assert_close(op @ x, M @ x, rtol, "forward")
        assert_close(op.H @ y, M.T @ y, rtol, "adjoint")
    direct = op._kernel._pass
    assert direct.in_place == (G > 1)
    one = cfg["batch"] == 1  # (then both products are of one sample)
    # one sample of a strided, zero-padded 2-D layer keeps the exact grid's patches
    if direct.in_place and not (direct.exact and cfg["n"] == 2 and one):
        assert forced["forward"] > 0
    if direct.in_place and not direct.flipped_adjoint and not (direct.exact_adjoint and one):
        assert forced["adjoint"] > 0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tap_products_dot_tests(n, forced):
    rng = np.random.default_rng(n)
    w = rng.standard_normal((6, 4, 3, 2, 2)[: 2 + n])
    kw = dict(stride=(2, 3, 1)[:n], padding=(1, 2, 1)[:n], dilation=(1, 2, 1)[:n], groups=2)
    op = tc.conv_operator(w, (11, 9, 5)[:n], padding_mode="reflect", method="direct", **kw)
    for each in (op, op.H, op.T):
        dot_test(each, rng, complex_model=False, complex_data=False)
    assert forced["forward"] > 0 and forced["adjoint"] > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n, c_in, c_out, K, stride, padding, size",
    [
        (1, 64, 128, 5, 2, 0, (8192,)),  # the benchmark's strided 1-D layer
        (1, 64, 64, 3, 1, 1, (700,)),
        (2, 64, 64, 3, 1, 1, (30, 31)),
        (2, 32, 48, 3, 1, (1, 0), (40, 30)),
        (2, 64, 3, 3, 1, 1, (30, 31)),  # thin outputs: blocks of thin_bytes
        (3, 32, 32, 3, 2, 1, (20, 16, 12)),  # strided 3-D: the phases
        (2, 64, 64, 3, 2, 1, (46, 44)),  # strided 2-D: one sample's forward the exact grid
    ],
    ids=str,
)
def test_tap_products_against_torch(torch, dtype, n, c_in, c_out, K, stride, padding, size):
    """Default thresholds: thick layers of 512 output positions and more take the tap
    products; forward and transposed convolution against torch, one sample and a batch."""
    F = torch.nn.functional
    rng = np.random.default_rng(c_in + c_out)
    w = rng.standard_normal((c_out, c_in, *(K,) * n)).astype(dtype)
    op = tc.conv_operator(w, size, stride=stride, padding=padding, method="direct")
    assert op._kernel._pass._in_place(np.dtype(dtype), 1)
    conv = (F.conv1d, F.conv2d, F.conv3d)[n - 1]
    conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]
    rtol = 2e-5 if dtype == np.float32 else 1e-11
    for batch in (1, 3):
        x = rng.standard_normal((batch, c_in, *size)).astype(dtype)
        want = conv(torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=padding)
        got = (op @ x.reshape(batch, -1).T).T.reshape(want.shape)
        assert_close(got, want.numpy(), rtol)
        y = want.numpy()
        pad = np.broadcast_to(padding, (n,))
        extra = tuple(
            L - ((Lo - 1) * s - 2 * p + K)
            for L, Lo, s, p in zip(
                size, y.shape[2:], np.broadcast_to(stride, (n,)), pad, strict=True
            )
        )
        want_t = conv_t(
            torch.from_numpy(y), torch.from_numpy(w), stride=stride, padding=padding,
            output_padding=extra,
        )  # fmt: skip
        got_t = (op.H @ y.reshape(batch, -1).T).T.reshape(want_t.shape)
        assert_close(got_t, want_t.numpy(), rtol * max(1.0, float(np.abs(y).max())))


def test_patches_without_numpys_blas(monkeypatch):
    """With the switch off the same layer copies patches and gives the same result."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((40, 40, 3, 3))
    x = rng.standard_normal(40 * 30 * 31)
    on = tc.conv_operator(w, (30, 31), padding=1, method="direct")
    calls = []
    patches = _kernel._Direct._patch_product
    monkeypatch.setattr(
        _kernel._Direct, "_patch_product", lambda self, *a: calls.append(1) or patches(self, *a)
    )
    want = on @ x
    assert not calls
    monkeypatch.setattr(tunables, "NUMPY_BLAS", False)
    assert_close(on @ x, want, 1e-12)
    assert calls

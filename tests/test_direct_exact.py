"""The direct path's exact output grid: strided, zero-padded 1-D and 2-D layers, one sample.

:meth:`toeplitz_conv._kernel._Direct._exact_forward` copies each tap's strided window
straight onto the output positions and :meth:`~toeplitz_conv._kernel._Direct._exact_adjoint`
adds the products back onto them (assigning the first tap of each residue class, zeroing
only :attr:`~toeplitz_conv._plan.Plan.unassigned`). Checked against the loop reference's
matrix and torch, forward and adjoint, float32 and float64, groups, dilation, padding and
strides of every size, in one block and in many; dot tests; the plan's cell sets by brute
force; and the zeroed pool.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
import toeplitz_conv._plan as plan_module
from checks import assert_close, assert_operator_matches, dot_test
from reference import ref_conv_nd, ref_conv_nd_matrix, resolve_padding_nd
from strategies import conv_geometries, conv_nd_configs
from toeplitz_conv import _kernel
from toeplitz_conv import _tunables as tunables


@pytest.fixture
def counted(monkeypatch):
    """Counts the calls of the exact forward pass and adjoint (numpy's BLAS in place off:
    1-D layers of 32 channels and more would take the tap products instead)."""
    monkeypatch.setattr(tunables, "NUMPY_BLAS", False)
    calls = {"forward": 0, "adjoint": 0}
    forward, adjoint = _kernel._Direct._exact_forward, _kernel._Direct._exact_adjoint

    def counted_forward(self, *args):
        calls["forward"] += 1
        return forward(self, *args)

    def counted_adjoint(self, *args):
        calls["adjoint"] += 1
        return adjoint(self, *args)

    monkeypatch.setattr(_kernel._Direct, "_exact_forward", counted_forward)
    monkeypatch.setattr(_kernel._Direct, "_exact_adjoint", counted_adjoint)
    return calls


def _layer(cfg, rng, dtype=np.float64):
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel_size"]))
    kw = dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
    )
    return w.astype(dtype), kw


def _exact_runs(cfg) -> bool:
    """Whether the exact grid takes the layer: strided, more than one input channel per
    group (depthwise layers have their own pass), 1-D or 2-D; zero padding is drawn."""
    return any(s > 1 for s in cfg["stride"]) and cfg["c_in"] > cfg["groups"]


# the fixtures patch the module for the whole test; the counts are reset per example
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cfg=st.one_of(
        conv_nd_configs(n=1, max_kernel=5, max_stride=4, max_length=14, modes=("zeros",)),
        conv_nd_configs(n=2, max_kernel=4, max_stride=3, max_length=9, modes=("zeros",)),
    )
)
def test_exact_grid_is_the_matrix(cfg, counted, blocking):
    """Every way round (vectors take the exact grid, batches the phases) against the loop
    reference's matrix, with complex vectors and a dot test, in one block and in many."""
    counted.update(forward=0, adjoint=0)
    rng = np.random.default_rng(cfg["seed"])
    w, kw = _layer(cfg, rng)
    M = ref_conv_nd_matrix(w, cfg["input_size"], **kw)
    op = tc.conv_operator(w, cfg["input_size"], **kw)
    assert op.method == "direct"
    assert_operator_matches(op, M, rng, rtol=1e-10, depth=1)
    if _exact_runs(cfg):
        assert counted["forward"] > 0
        assert (counted["adjoint"] > 0) == (cfg["n"] == 1)


@settings(max_examples=40, deadline=None)
@given(cfg=conv_nd_configs(n=2, max_kernel=4, max_stride=3, max_length=9, modes=("zeros",)))
def test_exact_adjoint_in_2d(cfg):
    """The exact adjoint is N-d (2-D layers take the phases by default: forced here), in
    one block and in blocks of one output row."""
    rng = np.random.default_rng(cfg["seed"])
    w, kw = _layer(cfg, rng)
    M = ref_conv_nd_matrix(w, cfg["input_size"], **kw)
    for blocking in (plan_module.BLOCKING, plan_module.Blocking(64, 64, 1)):
        op = tc.conv_operator(w, cfg["input_size"], **kw)
        object.__setattr__(op._kernel.plan, "blocking", blocking)
        direct = op._kernel._pass
        if not isinstance(direct, _kernel._Direct) or not direct.exact:
            return
        direct.exact_adjoint = True
        y = rng.standard_normal(M.shape[0]) + 1j * rng.standard_normal(M.shape[0])
        assert_close(op.rmatvec(y), M.T @ y, 1e-10)
        assert_close(op.rmatvec(y.real), M.T @ y.real, 1e-10)
        dot_test(op, rng)


@settings(max_examples=30, deadline=None)
@given(
    cfg=st.one_of(
        conv_nd_configs(n=1, max_kernel=5, max_stride=4, max_length=14, modes=("zeros",)),
        conv_nd_configs(n=2, max_kernel=3, max_stride=3, max_length=8, modes=("zeros",)),
    )
)
def test_exact_grid_float32_against_float64(cfg):
    """float32 within 1e-5 of the float64 reference, forward and adjoint."""
    rng = np.random.default_rng(cfg["seed"])
    w, kw = _layer(cfg, rng)
    M = ref_conv_nd_matrix(w, cfg["input_size"], **kw)
    op = tc.conv_operator(w.astype(np.float32), cfg["input_size"], **kw)
    x = rng.standard_normal(M.shape[1]).astype(np.float32)
    y = rng.standard_normal(M.shape[0]).astype(np.float32)
    got, got_t = op @ x, op.rmatvec(y)
    assert got.dtype == got_t.dtype == np.float32
    assert_close(got, M @ x.astype(np.float64), 1e-5)
    assert_close(got_t, M.T @ y.astype(np.float64), 1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("n", "c_in", "c_out", "K", "stride", "padding", "dilation", "groups", "size"),
    [
        (2, 128, 128, 3, 2, 1, 1, 1, (28, 28)),  # the benchmark's layer
        (1, 64, 128, 5, 2, 0, 1, 1, (8192,)),  # the benchmark's 1-D layer (nothing padded)
        (2, 8, 6, (3, 2), (2, 3), ((2, 0), (1, 2)), (1, 2), 2, (13, 17)),
        (2, 6, 4, 1, 3, 0, 1, 1, (10, 11)),  # 1x1: most cells of the signal read nothing
        (1, 6, 9, 3, 4, (3, 1), 2, 3, (50,)),
        (1, 4, 4, 2, 5, 1, 1, 2, (37,)),  # stride above the kernel: gaps in the gradient
    ],
    ids=str,
)
def test_exact_grid_against_torch(
    torch, counted, dtype, n, c_in, c_out, K, stride, padding, dilation, groups, size
):
    """The forward pass and the transposed convolution against torch, one sample (the exact
    grid) and a batch of three (the phases)."""
    F = torch.nn.functional
    rng = np.random.default_rng(c_in + c_out)
    K = (K,) * n if isinstance(K, int) else K
    w = rng.standard_normal((c_out, c_in // groups, *K)).astype(dtype)
    # (method: the benchmark's 2-D layer runs "winograd2" by default with numba)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, method="direct")
    pads = resolve_padding_nd(padding, K, dilation)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    conv = F.conv1d if n == 1 else F.conv2d
    op = tc.conv_operator(w, size, **kw)
    for batch in (1, 3):
        x = rng.standard_normal((batch, c_in, *size)).astype(dtype)
        flat = [v for p in reversed(pads) for v in p]  # F.pad's order: last axis first
        xp = F.pad(torch.from_numpy(x), flat)
        want = conv(xp, torch.from_numpy(w), stride=stride, dilation=dilation, groups=groups)
        got = tc.conv(x, w, **kw)
        assert got.dtype == dtype
        assert_close(got, want.numpy(), rtol)
        y = rng.standard_normal(want.shape).astype(dtype)
        yt = torch.from_numpy(y).requires_grad_(False)
        # the adjoint of the forward pass: torch's gradient of <y, conv(x)> in x
        xt = torch.from_numpy(x).requires_grad_(True)
        out = conv(
            F.pad(xt, flat), torch.from_numpy(w), stride=stride, dilation=dilation, groups=groups
        )
        (grad,) = torch.autograd.grad((out * yt).sum(), xt)
        got_t = op.rmatmat(y.reshape(batch, -1).T).T.reshape(x.shape)
        assert_close(got_t, grad.numpy(), rtol)
    assert counted["forward"] > 0
    assert (counted["adjoint"] > 0) == (n == 1)


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("complex_", [False, True])
def test_exact_grid_dot_tests(n, complex_, counted):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 2, 3, 2)[: 2 + n])
    if complex_:
        w = w + 1j * rng.standard_normal(w.shape)
    kw = dict(stride=(2, 3), padding=((2, 1), 1), dilation=(1, 2))
    if n == 1:
        kw = {key: value[0] for key, value in kw.items()}
    op = tc.conv_operator(w, (11, 9)[:n], groups=2, **kw)
    dot_test(op, rng)
    dot_test(op.H, rng)
    dot_test(op.T, rng)
    dot_test(op, rng, complex_model=False, complex_data=False)
    assert counted["forward"] > 0
    assert (counted["adjoint"] > 0) == (n == 1)


def test_forward_passes_against_the_formula_reference(counted):
    """``tc.conv`` of one sample against the formula reference (not the matrix)."""
    rng = np.random.default_rng(8)
    for n, size in ((1, (31,)), (2, (12, 10))):
        w = rng.standard_normal((4, 3, *(3,) * n))
        x = rng.standard_normal((1, 3, *size))
        kw = dict(stride=2, padding=1, dilation=2)
        assert_close(tc.conv(x, w, **kw), ref_conv_nd(x, w, **kw), 1e-12)
    assert counted["forward"] == 2


@pytest.mark.parametrize(
    ("mode", "stride", "n", "groups", "c_in"),
    [
        ("reflect", 2, 2, 1, 4),  # padding copied from the signal: the phases
        ("circular", 2, 1, 1, 4),
        ("zeros", 1, 2, 1, 4),  # unit strides: flat shifts of one phase
        ("zeros", 2, 2, 4, 4),  # depthwise: its own pass
        ("zeros", 2, 3, 1, 4),  # 3-D: the phases
    ],
)
def test_other_layers_keep_their_paths(counted, mode, stride, n, groups, c_in):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((4, c_in // groups, *(3,) * n))
    size = (7,) * n
    kw = dict(stride=stride, padding=1, padding_mode=mode, groups=groups)
    op = tc.conv_operator(w, size, **kw)
    M = ref_conv_nd_matrix(w, size, **kw)
    x, y = rng.standard_normal(M.shape[1]), rng.standard_normal(M.shape[0])
    assert_close(op @ x, M @ x, 1e-12)
    assert_close(op.rmatvec(y), M.T @ y, 1e-12)
    assert counted == {"forward": 0, "adjoint": 0}


@settings(max_examples=60, deadline=None)
@given(
    cfg=st.one_of(
        conv_nd_configs(n=1, max_kernel=5, max_stride=4, max_length=14, modes=("zeros",)),
        conv_nd_configs(n=2, max_kernel=4, max_stride=3, max_length=9, modes=("zeros",)),
    )
)
def test_plan_cells_by_brute_force(cfg):
    """:meth:`Plan.windows` covers what the taps read; :attr:`Plan.unassigned` is exactly
    the cells outside the first taps' windows; the first taps' windows are disjoint."""
    geoms = conv_geometries(cfg)
    plan = plan_module.Plan(geoms, 1, False)
    shape = (1, *plan.extent, 1)
    first_hits = np.zeros(shape, dtype=int)
    O = plan.output_size
    for k, window in enumerate(plan.windows(0, O[0])):
        cells = np.zeros(shape, dtype=int)
        cells[window] = 1
        assert cells.sum() == np.prod(O)  # one cell per output
        if plan.first_taps[k]:
            first_hits += cells
    assert first_hits.max() <= 1
    zeroed = np.zeros(shape, dtype=int)
    for index in plan.unassigned:
        zeroed[index] += 1
    assert zeroed.max() <= 1  # the slabs do not overlap
    np.testing.assert_array_equal(zeroed, 1 - first_hits)
    # the windows of blocks of one output row are the whole grid's, row by row
    for k, window in enumerate(plan.windows(0, O[0])):
        whole = np.zeros(shape, dtype=int)
        whole[window] = 1
        rows = np.zeros(shape, dtype=int)
        for r in range(O[0]):
            rows[plan.windows(r, r + 1)[k]] += 1
        np.testing.assert_array_equal(rows, whole)


@settings(max_examples=60, deadline=None)
@given(
    cfg=st.one_of(
        conv_nd_configs(n=1, max_kernel=5, max_stride=4, max_length=14, modes=("zeros",)),
        conv_nd_configs(n=2, max_kernel=4, max_stride=3, max_length=9, modes=("zeros",)),
    ),
    rows=st.integers(1, 4),
)
def test_clipped_windows_are_the_padded_windows(cfg, rows):
    """A block of patches from :meth:`Plan.clipped` (the signal itself) is the padded
    signal's :meth:`Plan.windows`; :meth:`Plan.strips` are exactly the rows of the block
    that read padding along the first axis, given a block whose cells read along the
    other axes are zero."""
    plan = plan_module.Plan(conv_geometries(cfg), 1, False)
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((2, *plan.input_size, 1))
    xp = np.zeros((2, *plan.extent, 1))
    xp[(slice(None), *plan.inside)] = x
    O = plan.output_size
    for r0 in range(0, O[0], rows):
        r1 = min(O[0], r0 + rows)
        want = np.stack([xp[window] for window in plan.windows(r0, r1)], axis=1)
        got = np.zeros_like(want)
        for into, source in plan.clipped(r0, r1):
            got[into] = x[source]
        np.testing.assert_array_equal(got, want)
        read = np.zeros(want.shape, dtype=bool)  # cells some sample lands on
        for into, _ in plan.clipped(r0, r1):
            read[into] = True
        stripped = np.zeros(want.shape, dtype=bool)
        for cells in plan.strips(r0, r1):
            assert not stripped[cells].any()
            stripped[cells] = True
        rows_read = read.any(axis=tuple(range(3, read.ndim)))  # (C, taps, rows)
        np.testing.assert_array_equal(stripped.all(axis=tuple(range(3, read.ndim))), ~rows_read)
        np.testing.assert_array_equal(stripped.any(axis=tuple(range(3, read.ndim))), ~rows_read)


def test_zeroed_pool():
    """``Pool(zeros=True)`` hands out zeros first, and the buffers given back afterwards."""
    pool = plan_module.Pool(zeros=True)
    a = pool.take((3, 4), np.dtype(np.float32))
    assert a.dtype == np.float32 and not a.any()
    a[1:2] = 5
    pool.give(a)
    assert pool.take((3, 4), np.dtype(np.float32)) is a
    b = plan_module.Pool().take((3, 4), np.dtype(np.float64))
    assert b.shape == (3, 4) and b.dtype == np.float64

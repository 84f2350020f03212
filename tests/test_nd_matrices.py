"""The N-d builders (conv_matrix, conv2d/3d_matrix, their transposes, rows=) checked directly.

Against torch (``F.pad`` + ``F.conv2d``/``conv3d`` for the padding modes,
``F.conv_transpose2d/3d``), against the loop-by-the-formula reference
(``reference.ref_conv_nd_matrix``, complex weights), and against the full matrix for
row blocks. Integer-valued weights and inputs keep every comparison exact whatever the
summation order. The assembler's chunked, threaded and int64 paths are forced on small inputs.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from conftest import assert_canonical_sparse, require_torch
from reference import ref_conv_nd_matrix
from toeplitz_conv import _assemble, _threads
from toeplitz_conv import _tunables as tunables

MODES = ("zeros", "reflect", "replicate", "circular")
FORMATS = ("csr", "csc", "coo", "bsr", "dia", "dense")


@st.composite
def nd_layers(draw, *, dims=(2, 3), max_size=5):
    """A small N-d layer inside torch's domain: per-axis parameters, pairs, every mode."""
    n = draw(st.sampled_from(dims))
    groups = draw(st.integers(1, 2))
    G, per_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    mode = draw(st.sampled_from(MODES))
    K, s, d, L, pads = [], [], [], [], []
    for _ in range(n):
        K.append(draw(st.integers(1, 3)))
        s.append(draw(st.integers(1, 3)))
        d.append(draw(st.integers(1, 2)))
        L.append(draw(st.integers(1, max_size)))
        pads.append((draw(st.integers(0, 3)), draw(st.integers(0, 3))))
    for a in range(n):
        limit = L[a] - 1 if mode == "reflect" else L[a]
        pads[a] = (min(pads[a][0], limit), min(pads[a][1], limit))
        assume(L[a] + sum(pads[a]) - d[a] * (K[a] - 1) - 1 >= 0)
    return dict(
        n=n,
        shape=(per_group * groups, G, *K),
        size=tuple(L),
        stride=tuple(s),
        dilation=tuple(d),
        pads=tuple(pads),
        groups=groups,
        mode=mode,
        seed=draw(st.integers(0, 2**16)),
    )


def _integer_weights(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).integers(-4, 5, shape).astype(dtype)


def _build(layer, w, fmt="csr", **extra):
    return tc.conv_matrix(
        w,
        layer["size"],
        stride=layer["stride"],
        padding=layer["pads"],
        dilation=layer["dilation"],
        groups=layer["groups"],
        padding_mode=layer["mode"],
        format=fmt,
        **extra,
    )


def _dense(m) -> np.ndarray:
    return m if isinstance(m, np.ndarray) else m.toarray()


def _torch_forward(torch, layer, w, x):
    F = torch.nn.functional
    flat = [p for pair in reversed(layer["pads"]) for p in pair]
    mode = "constant" if layer["mode"] == "zeros" else layer["mode"]
    xp = F.pad(torch.from_numpy(x)[None], flat, mode=mode)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[layer["n"]]
    y = conv(
        xp,
        torch.from_numpy(w),
        stride=layer["stride"],
        dilation=layer["dilation"],
        groups=layer["groups"],
    )
    return y[0].numpy()


@settings(max_examples=60)
@given(nd_layers())
def test_every_format_matches_torch(layer):
    torch = require_torch()
    w = _integer_weights(layer["shape"], layer["seed"])
    c_in = layer["shape"][1] * layer["groups"]
    x = _integer_weights((c_in, *layer["size"]), layer["seed"] + 1)
    want = _torch_forward(torch, layer, w, x).reshape(-1)
    for fmt in FORMATS:
        try:
            m = _build(layer, w, fmt)
        except ValueError as exc:
            assert fmt == "dia" and "would store" in str(exc), exc
            continue
        if fmt != "dense":
            assert_canonical_sparse(m, fmt)
        assert m.shape == (want.size, x.size) and m.dtype == np.float64
        np.testing.assert_array_equal(_dense(m) @ x.reshape(-1), want)


@settings(max_examples=40)
@given(nd_layers(max_size=4), st.sampled_from([np.complex128, np.complex64, np.float32]))
def test_complex_and_single_weights_match_the_formula(layer, dtype):
    rng = np.random.default_rng(layer["seed"])
    w = rng.integers(-3, 4, layer["shape"]).astype(dtype)
    if np.dtype(dtype).kind == "c":
        w = (w + 1j * rng.integers(-3, 4, layer["shape"])).astype(dtype)
    want = ref_conv_nd_matrix(
        w,
        layer["size"],
        stride=layer["stride"],
        padding=layer["pads"],
        dilation=layer["dilation"],
        groups=layer["groups"],
        padding_mode=layer["mode"],
    )
    for fmt in ("csr", "csc", "coo"):
        m = _build(layer, w, fmt)
        assert m.dtype == dtype
        assert_canonical_sparse(m, fmt)
        np.testing.assert_array_equal(m.toarray(), want)


@st.composite
def transposed_layers(draw):
    n = draw(st.sampled_from([2, 3]))
    groups = draw(st.integers(1, 2))
    G, per_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    K, s, d, L, p, q = ([] for _ in range(6))
    for _ in range(n):
        K.append(draw(st.integers(1, 3)))
        s.append(draw(st.integers(1, 3)))
        d.append(draw(st.integers(1, 2)))
        L.append(draw(st.integers(1, 4)))
        p.append(draw(st.integers(0, 2)))
        q.append(draw(st.integers(0, max(s[-1], d[-1]) - 1)))
        assume((L[-1] - 1) * s[-1] - 2 * p[-1] + d[-1] * (K[-1] - 1) + q[-1] + 1 >= 1)
    return dict(
        n=n,
        shape=(G * groups, per_group, *K),
        size=tuple(L),
        stride=tuple(s),
        dilation=tuple(d),
        padding=tuple(p),
        output_padding=tuple(q),
        groups=groups,
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=50)
@given(transposed_layers())
def test_conv_transpose_matches_torch(layer):
    torch = require_torch()
    F = torch.nn.functional
    w = _integer_weights(layer["shape"], layer["seed"])
    z = _integer_weights((layer["shape"][0], *layer["size"]), layer["seed"] + 1)
    kw = {k: layer[k] for k in ("stride", "padding", "output_padding", "groups", "dilation")}
    fn = {2: F.conv_transpose2d, 3: F.conv_transpose3d}[layer["n"]]
    want = fn(torch.from_numpy(z)[None], torch.from_numpy(w), **kw)[0].numpy().reshape(-1)
    named = {2: tc.conv_transpose2d_matrix, 3: tc.conv_transpose3d_matrix}[layer["n"]]
    for fmt in FORMATS:
        try:
            m = named(w, layer["size"], format=fmt, **kw)
        except ValueError as exc:
            assert fmt == "dia" and "would store" in str(exc), exc
            continue
        if fmt != "dense":
            assert_canonical_sparse(m, fmt)
        np.testing.assert_array_equal(_dense(m) @ z.reshape(-1), want)
    # and it is the forward matrix on L' transposed (each q < s: exactly L outputs)
    m = tc.conv_transpose_matrix(w, layer["size"], **kw)
    if all(q < s for q, s in zip(layer["output_padding"], layer["stride"], strict=True)):
        size_out = tuple(
            (L - 1) * s - 2 * p + d * (K - 1) + q + 1
            for L, s, p, d, K, q in zip(
                layer["size"],
                layer["stride"],
                layer["padding"],
                layer["dilation"],
                layer["shape"][2:],
                layer["output_padding"],
                strict=False,
            )
        )
        forward = tc.conv_matrix(
            w,
            size_out,
            stride=layer["stride"],
            padding=layer["padding"],
            dilation=layer["dilation"],
            groups=layer["groups"],
            format="csc",
        )
        np.testing.assert_array_equal(m.indptr, forward.indptr)
        np.testing.assert_array_equal(m.indices, forward.indices)
        np.testing.assert_array_equal(m.data, forward.data)


@pytest.mark.parametrize("complex_weights", [False, True])
def test_dot_test_nd(complex_weights):
    """<M x, y> == <x, M^T y> with the CSC build (the transposed assembly) as M^T."""
    rng = np.random.default_rng(12)
    w = rng.standard_normal((4, 2, 3, 2, 3))
    if complex_weights:
        w = w + 1j * rng.standard_normal(w.shape)
    for mode in MODES:
        kw = dict(
            stride=(1, 2, 1),
            padding=((1, 2), 1, (0, 2)),
            dilation=(2, 1, 1),
            groups=2,
            padding_mode=mode,
        )
        m = tc.conv3d_matrix(w, (5, 4, 6), **kw)
        mt = tc.conv3d_matrix(w, (5, 4, 6), format="csc", **kw).T  # built by columns
        x = rng.standard_normal(m.shape[1]) + 1j * rng.standard_normal(m.shape[1])
        y = rng.standard_normal(m.shape[0]) + 1j * rng.standard_normal(m.shape[0])
        np.testing.assert_allclose(np.vdot(y, m @ x), np.vdot(mt.conj() @ y, x), rtol=1e-12)


def test_conv2d_matrix_example_is_bttb():
    w = np.arange(1.0, 10.0).reshape(3, 3)
    m = tc.conv2d_matrix(w, (4, 4)).toarray()
    # block (i, j) of 2x4 blocks is the Toeplitz block of kernel row j - i
    for i, j in itertools.product(range(2), range(4)):
        block = m[2 * i : 2 * i + 2, 4 * j : 4 * j + 4]
        if 0 <= j - i < 3:
            np.testing.assert_array_equal(block, tc.conv1d_matrix(w[j - i], 4).toarray())
        else:
            assert not block.any()


def test_circular_2d_is_bccb():
    w = np.random.default_rng(2).integers(-3, 4, (3, 3)).astype(float)
    m = tc.conv2d_matrix(w, (4, 5), padding=1, padding_mode="circular").toarray()
    # shifting the image cyclically shifts the output: M P = P M for both axes
    idx = np.arange(20).reshape(4, 5)
    for shift in (np.roll(idx, 1, axis=0).ravel(), np.roll(idx, 1, axis=1).ravel()):
        np.testing.assert_array_equal(m[np.ix_(shift, shift)], m)


def test_one_dimensional_is_the_same_code_path():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 2, 5))
    kw = dict(stride=2, padding=(3, 1), dilation=2, groups=2, padding_mode="reflect")
    a = tc.conv1d_matrix(w, 17, **kw)
    for b in (tc.conv_matrix(w, 17, **kw), tc.conv_matrix(w, (17,), **kw)):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)
    # a kernel-only weight: n from the input size
    assert tc.conv_matrix(np.ones((2, 2)), (3, 3)).shape == (4, 9)
    assert tc.conv_matrix(np.ones(2), 3).shape == (2, 3)


def test_output_size_and_bias_vector():
    assert tc.output_size((56, 56), 3, padding=1) == (56, 56)
    assert tc.output_size(10, (3, 3), stride=2) == (4, 4)
    assert tc.output_size((7, 8, 9), (3, 1, 2), dilation=(1, 1, 3), padding="same") == (7, 8, 9)
    rng = np.random.default_rng(4)
    w, b = rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    x = rng.standard_normal((2, 6, 5))
    size = tc.output_size((6, 5), (3, 2), stride=(2, 1))
    c = tc.bias_vector(b, size)
    assert c.shape == (3 * size[0] * size[1],)
    torch = require_torch()
    y = torch.nn.functional.conv2d(
        torch.from_numpy(x)[None], torch.from_numpy(w), torch.from_numpy(b), stride=(2, 1)
    )
    m = tc.conv2d_matrix(w, (6, 5), stride=(2, 1))
    np.testing.assert_allclose(m @ x.reshape(-1) + c, y.numpy().reshape(-1), rtol=1e-12)
    with pytest.raises(ValueError, match=r"`output_size\[1\]` must be an integer >= 1, got 0"):
        tc.bias_vector(b, (2, 0))
    with pytest.raises(ValueError, match=r"`stride\[1\]` must be an integer >= 1, got 0"):
        tc.output_size((5, 5), 3, stride=(1, 0))


# -- rows=(r0, r1) --------------------------------------------------------------------------


def _ranges(n_rows: int, block: int, channel: int, rng) -> list[tuple[int, int]]:
    """Ranges cutting row blocks and channels anywhere, aligned ones, empty and whole."""
    cuts = {0, n_rows, 1, n_rows - 1, block + 1, channel, channel - 1, 2 * channel - 1}
    cuts = sorted(c for c in cuts if 0 <= c <= n_rows)
    out = [(a, b) for a, b in itertools.combinations_with_replacement(cuts, 2)][::2]
    out += [tuple(sorted(rng.integers(0, n_rows + 1, 2).tolist())) for _ in range(8)]
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_rows_equal_the_slice_of_the_full_matrix(n, mode):
    rng = np.random.default_rng(n)
    K = (3, 2, 3)[:n]
    w = rng.standard_normal((4, 1, *K))
    size = (5, 4, 6)[:n]
    kw = dict(
        stride=(1, 2, 1)[:n],
        padding=((1, 2), 1, (2, 0))[:n],
        dilation=(1, 1, 2)[:n],
        groups=2,
        padding_mode=mode,
    )
    if n == 1:
        kw = {k: (v[0] if isinstance(v, tuple) else v) for k, v in kw.items()}
        size = size[0]
    full = tc.conv_matrix(w, size, **kw)
    out = tc.output_size(
        size, K, stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"]
    )
    channel = int(np.prod(out))
    for r0, r1 in _ranges(full.shape[0], out[-1], channel, rng):
        want = full[r0:r1]
        for fmt in ("csr", "coo", "dense"):
            part = tc.conv_matrix(w, size, rows=(r0, r1), format=fmt, **kw)
            assert part.shape == (r1 - r0, full.shape[1])
            if fmt == "dense":
                np.testing.assert_array_equal(part, want.toarray())
                continue
            assert_canonical_sparse(part, fmt)
            part = part.tocsr()
            np.testing.assert_array_equal(part.indptr, want.indptr)
            np.testing.assert_array_equal(part.indices, want.indices)
            np.testing.assert_array_equal(part.data, want.data)


def test_rows_named_builders_and_int64(monkeypatch):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((2, 2, 3, 3))
    full = tc.conv2d_matrix(w, (6, 7), padding=1, padding_mode="reflect")
    part = tc.conv2d_matrix(w, (6, 7), padding=1, padding_mode="reflect", rows=(10, 61))
    np.testing.assert_array_equal(part.toarray(), full[10:61].toarray())
    w3 = rng.standard_normal((2, 1, 2, 2, 2))
    full3 = tc.conv3d_matrix(w3, 4, padding="same", padding_mode="circular")
    part3 = tc.conv3d_matrix(w3, 4, padding="same", padding_mode="circular", rows=(17, 100))
    np.testing.assert_array_equal(part3.toarray(), full3[17:100].toarray())
    w1 = rng.standard_normal(4)
    np.testing.assert_array_equal(
        tc.conv1d_matrix(w1, 30, padding=2, rows=(3, 9)).toarray(),
        tc.conv1d_matrix(w1, 30, padding=2)[3:9].toarray(),
    )
    for fmt in ("csr", "coo", "dense"):  # empty row ranges keep the dtype
        for r in ((0, 0), (5, 5), (40, 40)):
            empty = tc.conv2d_matrix(w.astype(np.float32), (6, 7), rows=r, format=fmt)
            assert empty.shape == (0, 84) and empty.dtype == np.float32
    monkeypatch.setattr("toeplitz_conv._build._INT32_MAX", 0)
    part = tc.conv2d_matrix(w, (6, 7), padding=1, padding_mode="reflect", rows=(10, 61))
    assert part.indices.dtype == part.indptr.dtype == np.int64
    np.testing.assert_array_equal(part.toarray(), full[10:61].toarray())


def test_rows_cost_only_the_rows():
    """Rows of a matrix far too big to build: the memory is that of the rows."""
    w = np.random.default_rng(8).integers(-4, 5, (1, 1, 3, 3)).astype(float)
    H = W = 100_000  # 10^10 rows, about 9e10 nonzeros in full
    tc.conv2d_matrix(w, (H, W), padding=1, rows=(0, 1))  # warm the caches
    r0, r1 = 123_456_789, 123_456_789 + 250_000
    tracemalloc.start()
    try:
        part = tc.conv2d_matrix(w, (H, W), padding=1, rows=(r0, r1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nbytes = part.data.nbytes + part.indices.nbytes + part.indptr.nbytes
    assert peak <= 1.2 * nbytes + 2**20, (peak, nbytes)
    # the same rows straight from the formula: row (i, j) reads (i + k1 - 1, j + k2 - 1)
    r = np.arange(r0, r1)[:, None, None]
    k1, k2 = np.arange(3)[None, :, None], np.arange(3)[None, None, :]
    i, j = r // W + k1 - 1, r % W + k2 - 1
    keep = np.broadcast_to((j >= 0) & (j < W) & (i >= 0) & (i < H), (r1 - r0, 3, 3))
    rows = np.broadcast_to(r - r0, keep.shape)[keep]
    cols = np.broadcast_to(i * W + j, keep.shape)[keep]
    vals = np.broadcast_to(w[0, 0], keep.shape)[keep]
    want = sp.csr_array((vals, (rows, cols)), shape=(r1 - r0, H * W))
    assert part.nnz == want.nnz == 9 * 250_000 - 2 * 3 * 3
    np.testing.assert_array_equal(part.indptr, want.indptr)
    np.testing.assert_array_equal(part.indices, want.indices)
    np.testing.assert_array_equal(part.data, want.data)


def test_rows_errors():
    w = np.ones((2, 1, 3, 3))
    n_rows = 2 * 4 * 4
    with pytest.raises(ValueError, match=r"0 <= r0 <= r1 <= 32"):
        tc.conv2d_matrix(w, 6, rows=(3, n_rows + 1))
    with pytest.raises(ValueError, match=r"0 <= r0 <= r1"):
        tc.conv2d_matrix(w, 6, rows=(5, 4))
    with pytest.raises(ValueError, match=r"`rows\[0\]` must be an integer >= 0, got -1"):
        tc.conv2d_matrix(w, 6, rows=(-1, 4))
    with pytest.raises(TypeError, match=r"`rows\[1\]` must be an integer"):
        tc.conv2d_matrix(w, 6, rows=(0, 2.5))
    with pytest.raises(TypeError, match=r"`rows` must be a pair \(r0, r1\)"):
        tc.conv2d_matrix(w, 6, rows=3)
    with pytest.raises(ValueError, match=r"`format`='csc' is not available with `rows`"):
        tc.conv2d_matrix(w, 6, rows=(0, 3), format="csc")


# -- the assembler's paths on small inputs ---------------------------------------------------


def _nd_cases(seed: int, count: int):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        n = int(rng.integers(2, 4))
        mode = MODES[int(rng.integers(4))]
        size = tuple(int(v) for v in rng.integers(2, 7, n))
        K = tuple(int(v) for v in rng.integers(1, 4, n))
        pads = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(n))
        pads = tuple((min(a, L - 1), min(b, L - 1)) for (a, b), L in zip(pads, size, strict=True))
        stride = tuple(int(v) for v in rng.integers(1, 3, n))
        if any(L + sum(p) - (k - 1) - 1 < 0 for L, p, k in zip(size, pads, K, strict=True)):
            continue
        groups = int(rng.integers(1, 3))
        w = rng.integers(-3, 4, (2 * groups, 2, *K)).astype(float)
        cases.append((w, size, dict(stride=stride, padding=pads, groups=groups, padding_mode=mode)))
    return cases


def test_chunked_threaded_nd(monkeypatch):
    cases = _nd_cases(9, 25)
    want = [
        tc.conv_matrix(w, size, format=fmt, **kw)
        for w, size, kw in cases
        for fmt in ("csr", "csc", "coo")
    ]
    monkeypatch.setattr(tunables, "CHUNK_ENTRIES", 7)
    monkeypatch.setattr(tunables, "PARALLEL_MIN_ENTRIES", 0)
    monkeypatch.setattr(tunables, "UNIT_ENTRIES", 3)
    monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", "2")
    _assemble._cached_layout.cache_clear()
    calls = []
    original = _threads.run
    monkeypatch.setattr(
        _threads, "run", lambda tasks, **kw: (calls.append(len(tasks)), original(tasks, **kw))
    )
    got = [
        tc.conv_matrix(w, size, format=fmt, **kw)
        for w, size, kw in cases
        for fmt in ("csr", "csc", "coo")
    ]
    _assemble._cached_layout.cache_clear()
    for a, b in zip(want, got, strict=True):
        assert_canonical_sparse(b, a.format)
        assert (a != b).nnz == 0 and a.nnz == b.nnz
    assert max(calls) > 20
    # long row blocks split by rows: one channel, a long innermost axis
    w = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    ref = sp.csr_array(
        ref_conv_nd_matrix(
            w,
            (3, 40),
            stride=(1, 1),
            padding=((1, 1), (2, 2)),
            dilation=(1, 1),
            groups=1,
            padding_mode="reflect",
        )
    )
    m = tc.conv2d_matrix(w, (3, 40), padding=(1, 2), padding_mode="reflect")
    np.testing.assert_array_equal(m.toarray(), ref.toarray())


def test_int64_index_path_nd(monkeypatch):
    monkeypatch.setattr("toeplitz_conv._build._INT32_MAX", 0)
    for w, size, kw in _nd_cases(10, 10):
        for fmt in ("csr", "csc", "coo"):
            m = tc.conv_matrix(w, size, format=fmt, **kw)
            idx = m.coords if fmt == "coo" else (m.indices, m.indptr)
            assert all(a.dtype == np.int64 for a in idx)
            ref = ref_conv_nd_matrix(
                w,
                size,
                stride=kw["stride"],
                padding=kw["padding"],
                dilation=(1,) * len(size),
                groups=kw["groups"],
                padding_mode=kw["padding_mode"],
            )
            np.testing.assert_array_equal(m.toarray(), ref)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_peak_memory_is_the_result_2d(fmt):
    w = np.random.default_rng(6).standard_normal((8, 8, 3, 3))
    tc.conv2d_matrix(w, 12, padding=1, format=fmt)  # warm the caches
    tracemalloc.start()
    try:
        m = tc.conv2d_matrix(w, 64, padding=1, format=fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    names = ("data", "row", "col") if fmt == "coo" else ("data", "indices", "indptr")
    nbytes = sum(getattr(m, a).nbytes for a in names)
    assert peak <= 1.1 * nbytes, (peak, nbytes)


def test_size_refused_before_allocating():
    w = np.ones((64, 64, 3, 3))
    with pytest.raises(ValueError, match=r"dense .* would take"):
        tc.conv2d_matrix(w, 4096, padding=1, format="dense")
    with pytest.raises(ValueError, match="nonzeros would take"):
        tc.conv3d_matrix(np.ones((64, 64, 3, 3, 3)), 2048, padding=1)


def test_the_package_imports_without_docstrings():
    """Under ``python -OO`` docstrings are None: filling the shared parameter text skips them."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    code = "import toeplitz_conv as tc; print(tc.conv_matrix([1.0, 2.0], 3).shape)"
    result = subprocess.run(
        [sys.executable, "-OO", "-c", code],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 3)"

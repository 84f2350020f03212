"""The fast builders against a straightforward reference assembly, bit for bit.

The reference (``reference.ref_conv1d_coo``) visits every tap of every row straight
from the formula of docs/math.md and sums the duplicates one by one in tap order, the
order the builders promise. Every format must then
match it exactly: the same arrays, the same index dtype, the same canonical
order. The chunked, threaded and int64 paths are forced on small inputs by
shrinking their thresholds.
"""

from __future__ import annotations

import contextlib
import functools
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import toeplitz_conv as tc
from reference import ref_conv1d_coo
from toeplitz_conv import _pattern, _threads
from toeplitz_conv import _tunables as tunables
from toeplitz_conv._geometry import conv_geometry

MODES = ("zeros", "reflect", "replicate", "circular")


def reference_coo(w, length, *, stride, pad, dilation, groups, mode, rows=None):
    """Canonical COO of ``conv1d``'s matrix by the formula (``reference.ref_conv1d_coo``)."""
    return ref_conv1d_coo(w, length, stride, pad, dilation, groups, mode, positions=rows)


def reference_dia(coo: sp.coo_array) -> tuple[np.ndarray, np.ndarray]:
    offsets, which = np.unique(coo.col.astype(np.int64) - coo.row, return_inverse=True)
    data = np.zeros((offsets.size, coo.shape[1]), dtype=coo.dtype)
    data[which, coo.col] = coo.data
    return offsets, data


def assert_same(result, ref: sp.coo_array, fmt: str, index_dtype=np.int32) -> None:
    """`result` in `fmt` holds exactly `ref`, canonical, with `index_dtype` indices."""
    if fmt == "dense":
        assert result.dtype == ref.dtype
        np.testing.assert_array_equal(result, ref.toarray(), strict=True)
        return
    assert result.format == fmt and result.shape == ref.shape and result.dtype == ref.dtype
    if fmt in ("csr", "csc"):
        want = ref.tocsr() if fmt == "csr" else ref.tocsc()
        assert result.has_canonical_format and result.has_sorted_indices
        assert result.indices.dtype == index_dtype and result.indptr.dtype == index_dtype
        np.testing.assert_array_equal(result.indptr, want.indptr)
        np.testing.assert_array_equal(result.indices, want.indices)
        np.testing.assert_array_equal(result.data, want.data, strict=True)
    elif fmt == "coo":
        assert result.has_canonical_format
        assert result.row.dtype == index_dtype and result.col.dtype == index_dtype
        np.testing.assert_array_equal(result.row, ref.row)
        np.testing.assert_array_equal(result.col, ref.col)
        np.testing.assert_array_equal(result.data, ref.data, strict=True)
    elif fmt == "bsr":
        want = ref.tocsr().tobsr()
        want.sort_indices()
        assert result.has_sorted_indices and result.blocksize == want.blocksize
        np.testing.assert_array_equal(result.indptr, want.indptr)
        np.testing.assert_array_equal(result.indices, want.indices)
        np.testing.assert_array_equal(result.data, want.data, strict=True)
    elif fmt == "dia":
        offsets, data = reference_dia(ref)
        np.testing.assert_array_equal(result.offsets, offsets)
        np.testing.assert_array_equal(result.data, data, strict=True)
    else:  # pragma: no cover
        raise AssertionError(fmt)


def random_cases(n: int, seed: int):
    """Random small layers over the whole parameter space, valid for torch."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        groups = int(rng.integers(1, 4))
        G, per_group = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        K, d, s = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        length = int(rng.integers(1, 25))
        mode = MODES[int(rng.integers(4))]
        pad = (int(rng.integers(0, 7)), int(rng.integers(0, 7)))
        if (mode == "reflect" and max(pad) >= length) or (mode == "circular" and max(pad) > length):
            continue
        if (length + sum(pad) - d * (K - 1) - 1) // s + 1 < 1:
            continue
        dtype = (np.float64, np.float32, np.complex128)[int(rng.integers(3))]
        w = rng.standard_normal((per_group * groups, G, K)).astype(dtype)
        if dtype == np.complex128:
            w = w + 1j * rng.standard_normal(w.shape)
        cases.append((w, length, dict(stride=s, pad=pad, dilation=d, groups=groups, mode=mode)))
    return cases


def build(w, length, fmt, *, stride, pad, dilation, groups, mode):
    return tc.conv1d_matrix(
        w,
        length,
        stride=stride,
        padding=pad,
        dilation=dilation,
        groups=groups,
        padding_mode=mode,
        format=fmt,
    )


def check_format(w, length, fmt, ref, kw, index_dtype=np.int32) -> None:
    """`fmt` matches `ref`, or is DIA refused exactly when DIA would not be compact."""
    try:
        result = build(w, length, fmt, **kw)
    except ValueError as exc:
        assert fmt == "dia" and "would store" in str(exc), exc
        offsets, _ = reference_dia(ref)
        assert offsets.size * ref.shape[1] > 3 * ref.nnz + ref.shape[1]
        return
    assert_same(result, ref, fmt, index_dtype)


def check_all_formats(cases) -> None:
    for w, length, kw in cases:
        ref = reference_coo(w, length, **kw)
        for fmt in ("csr", "csc", "coo", "bsr", "dense", "dia"):
            check_format(w, length, fmt, ref, kw)


@pytest.mark.parametrize("seed", range(4))
def test_every_format_matches_reference(seed):
    check_all_formats(random_cases(60, seed))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "dia"])
def test_large_padding_and_dilation(mode, fmt):
    # taps landing two and three times on one sample, edges wider than the interior
    w = np.arange(1.0, 1 + 2 * 2 * 5).reshape(2, 2, 5) / 7
    pad = {"zeros": (9, 4), "reflect": (5, 5), "replicate": (8, 2), "circular": (6, 6)}[mode]
    for stride, dilation in ((1, 1), (1, 3), (2, 2), (3, 1)):
        kw = dict(stride=stride, pad=pad, dilation=dilation, groups=1, mode=mode)
        check_format(w, 6, fmt, reference_coo(w, 6, **kw), kw)


def test_chunked_threaded_path(monkeypatch):
    """Tiny chunks and super-units, on two threads: many tasks, every remainder path."""
    monkeypatch.setattr(tunables, "CHUNK_ENTRIES", 5)
    monkeypatch.setattr(tunables, "PARALLEL_MIN_ENTRIES", 0)
    monkeypatch.setattr(tunables, "UNIT_ENTRIES", 3)
    monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", "2")
    calls = []
    original = _threads.run
    monkeypatch.setattr(
        _threads, "run", lambda tasks, **kw: (calls.append(len(tasks)), original(tasks, **kw))
    )
    check_all_formats(random_cases(40, 7))
    w = np.random.default_rng(3).standard_normal((3, 2, 4))
    kw = dict(stride=2, pad=(3, 1), dilation=2, groups=1, mode="reflect")
    assert_same(build(w, 300, "csr", **kw), reference_coo(w, 300, **kw), "csr")
    assert max(calls) > 20


def test_one_long_channel_split_into_row_chunks(monkeypatch):
    monkeypatch.setattr(tunables, "CHUNK_ENTRIES", 1000)
    monkeypatch.setattr(tunables, "PARALLEL_MIN_ENTRIES", 0)
    monkeypatch.setattr(tunables, "UNIT_ENTRIES", 64)
    monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", "2")
    w = np.random.default_rng(4).standard_normal(9)[None, None]
    for mode in MODES:
        kw = dict(stride=1, pad=(4, 4), dilation=1, groups=1, mode=mode)
        ref = reference_coo(w, 20_001, **kw)
        for fmt in ("csr", "csc", "coo", "dia"):
            assert_same(build(w, 20_001, fmt, **kw), ref, fmt)


def test_int64_index_path(monkeypatch):
    """Indices that do not fit int32 are int64: forced by lowering the limit."""
    monkeypatch.setattr("toeplitz_conv._build._INT32_MAX", 0)
    monkeypatch.setattr(tunables, "CHUNK_ENTRIES", 16)
    cases = random_cases(25, 11)
    for w, length, kw in cases:
        ref = reference_coo(w, length, **kw)
        for fmt in ("csr", "csc", "coo"):
            assert_same(build(w, length, fmt, **kw), ref, fmt, index_dtype=np.int64)


def test_conv_transpose_is_the_transpose():
    rng = np.random.default_rng(5)
    for _ in range(150):
        groups, G, per_group = (int(v) for v in rng.integers(1, 4, size=3))
        K, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        length_z, q = int(rng.integers(1, 12)), int(rng.integers(0, max(s, d)))
        pad = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        w = rng.standard_normal((per_group * groups, G, K))
        kw = dict(stride=s, padding=pad, dilation=d, groups=groups)
        try:
            mt = tc.conv_transpose1d_matrix(w, length_z, output_padding=q, **kw)
        except ValueError:
            continue
        length = (length_z - 1) * s - sum(pad) + d * (K - 1) + q + 1
        ref = reference_coo(
            w, length, stride=s, pad=pad, dilation=d, groups=groups, mode="zeros", rows=length_z
        )
        assert_same(mt, ref.T.tocoo(), "csr")
        ref_t = sp.coo_array(ref.T.tocsr())
        for fmt in ("csc", "coo", "bsr", "dense", "dia"):
            try:
                result = tc.conv_transpose1d_matrix(w, length_z, output_padding=q, format=fmt, **kw)
            except ValueError as exc:  # DIA refused: check that it would not be compact
                assert fmt == "dia" and "would store" in str(exc), exc
                offsets, _ = reference_dia(ref_t)
                assert offsets.size * ref_t.shape[1] > 3 * ref_t.nnz + ref_t.shape[1]
                continue
            assert_same(result, ref_t, fmt)
        if q < s:  # then conv1d on L' has exactly L_z outputs
            forward = tc.conv1d_matrix(w, length, format="csc", **kw)
            np.testing.assert_array_equal(mt.indptr, forward.indptr)
            np.testing.assert_array_equal(mt.indices, forward.indices)
            np.testing.assert_array_equal(mt.data, forward.data, strict=True)


def test_band_size_does_not_grow_with_length():
    geom = conv_geometry(10**8, 9, stride=3, padding=4, padding_mode="reflect")
    for b in (_pattern.band(geom), _pattern.transposed_band(geom)):
        arrays = [getattr(b, f) for f in ("unit_cols", "edge_cols", "edge_counts")]
        assert sum(a.size for a in arrays) < 200
        assert b.hi - b.lo > 10**7


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "dia"])
def test_peak_memory_is_the_result(fmt):
    w = np.random.default_rng(6).standard_normal(9)
    tc.conv1d_matrix(w, 300, padding=4, format=fmt)  # warm the caches
    tracemalloc.start()
    try:
        m = tc.conv1d_matrix(w, 300_000, padding=4, format=fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    arrays = {
        "csr": ("data", "indices", "indptr"),
        "csc": ("data", "indices", "indptr"),
        "coo": ("data", "row", "col"),
        "dia": ("data", "offsets"),
    }[fmt]
    nbytes = sum(getattr(m, a).nbytes for a in arrays)
    assert peak <= 1.1 * nbytes, (peak, nbytes)


def _band_dense(b: _pattern.Band, w: np.ndarray) -> np.ndarray:
    """A band expanded row by row from its own arrays (edges, unit, extras), tap values `w`."""
    R, C = b.shape
    out = np.zeros((R, C))
    ptr = np.concatenate([[0], np.cumsum(b.edge_counts)])
    for e, row in enumerate(b.edge_rows()):
        for p in range(ptr[e], ptr[e + 1]):
            out[row, b.edge_cols[p]] += w[b.edge_taps[p]]
    for p, k in zip(b.extra_entries, b.extra_taps, strict=True):
        row = b.edge_rows()[np.searchsorted(ptr, p, side="right") - 1]
        out[row, b.edge_cols[p]] += w[k]
    for row in range(b.lo, b.hi):
        j, r = divmod(row - b.lo, b.period)
        e = slice(b.unit_ptr[r], b.unit_ptr[r + 1])
        out[row, b.unit_cols[e] + j * b.step] += w[b.unit_taps[e]]
    return out


def test_sliced_band_and_row_classes():
    """Rows [r0, r1) of a band are a band; its row classes cover each row exactly once."""
    rng = np.random.default_rng(21)
    for w, length, kw in random_cases(40, 13):
        geom = conv_geometry(
            length,
            w.shape[2],
            stride=kw["stride"],
            padding=kw["pad"],
            dilation=kw["dilation"],
            padding_mode=kw["mode"],
        )
        taps = rng.integers(1, 100, w.shape[2]).astype(float)
        for b in (_pattern.band(geom), _pattern.transposed_band(geom)):
            full = _band_dense(b, taps)
            np.testing.assert_array_equal(_pattern.row_counts(b), (full != 0).sum(axis=1))
            for _ in range(6):
                r0, r1 = sorted(rng.integers(0, b.shape[0] + 1, 2).tolist())
                part = _pattern.sliced(b, r0, r1)
                assert part.shape == (r1 - r0, b.shape[1])
                np.testing.assert_array_equal(_band_dense(part, taps), full[r0:r1])
            seen = np.zeros(b.shape[0], dtype=int)
            for rc in _pattern.row_classes(b):
                for j in range(rc.count):
                    row = rc.first + j * rc.period
                    seen[row] += 1
                    want = np.zeros(b.shape[1])
                    np.add.at(want, rc.cols + j * rc.step, taps[rc.taps])
                    np.add.at(want, rc.cols[rc.extra_entries] + j * rc.step, taps[rc.extra_taps])
                    np.testing.assert_array_equal(want, full[row])
            np.testing.assert_array_equal(seen, 1)


def test_run_inside_a_pool_task_runs_in_place(monkeypatch):
    """A task on the pool that splits its own work (an operator's blocks, inside tasks that
    split a batch of matvecs) runs it in its own thread: waiting on the pool from inside it
    left every worker waiting (a deadlock before)."""
    import threading

    monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", "2")
    done = []

    def inner(i: int) -> None:
        done.append((i, threading.current_thread().name))

    def outer(i: int) -> None:
        _threads.run([functools.partial(inner, 2 * i), functools.partial(inner, 2 * i + 1)])

    finished = threading.Event()

    def main() -> None:
        _threads.run([functools.partial(outer, 0), functools.partial(outer, 1)])
        finished.set()

    threading.Thread(target=main, daemon=True).start()
    assert finished.wait(timeout=60), "nested run did not finish"
    assert sorted(i for i, _ in done) == [0, 1, 2, 3]
    assert all(name.startswith("toeplitz_conv") for _, name in done)


class _FakeBlas:
    """A stand-in for threadpoolctl's controller: one global thread count, saved and
    restored by ``limit`` as threadpoolctl does."""

    def __init__(self, threads: int) -> None:
        self.num_threads = threads
        self.lib_controllers = [self]

    def select(self, **_: object) -> _FakeBlas:
        return self

    @contextlib.contextmanager
    def limit(self, limits: int, **_: object):
        saved, self.num_threads = self.num_threads, limits
        try:
            yield
        finally:
            self.num_threads = saved


def test_blas_limit_on_pool_threads_is_left_alone(monkeypatch):
    """Two pool tasks that each ask for one BLAS thread, interleaved (A in, B in, A out,
    B out): setting and restoring the global limit from both left it at one for good (the
    block-Gram certificate then ran on one core). On the pool's threads the limit is the
    caller's and is not touched."""
    import threading

    fake = _FakeBlas(2)
    monkeypatch.setattr(_threads, "_blas_controller", lambda: fake)
    monkeypatch.setenv("TOEPLITZ_CONV_NUM_THREADS", "2")
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def task_a() -> None:
        with _threads.blas_threads(1):
            seen.append(fake.num_threads)
            a_in.set()
            assert b_in.wait(30)
        a_out.set()

    def task_b() -> None:
        assert a_in.wait(30)
        with _threads.blas_threads(1):
            seen.append(fake.num_threads)
            b_in.set()
            assert a_out.wait(30)

    _threads.run([task_a, task_b])
    assert fake.num_threads == 2
    assert seen == [2, 2]  # the caller's limit inside the tasks
    with _threads.blas_threads(1):  # the calling thread still sets it
        assert fake.num_threads == 1
    assert fake.num_threads == 2

"""Shared test configuration: hypothesis profiles, the optional torch oracle, sparse checks."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Make the helper modules in this folder (``reference``) importable whatever import mode
# pytest runs in.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# --------------------------------------------------------------------------- hypothesis
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)


def _env_flag(name: str) -> bool:
    value = os.environ.get(name)
    return value is not None and value.strip().lower() not in ("", "0", "false", "no")


def _choose_profile() -> str:
    requested = os.environ.get("HYPOTHESIS_PROFILE", "").strip()
    if requested == "ci" or _env_flag("CI"):
        return "ci"
    if requested:
        return requested
    return "dev"


settings.load_profile(_choose_profile())


# --------------------------------------------------------------------------- threads
# Under pytest-xdist each worker's BLAS would start a thread per core; on a two-core machine two
# workers' LAPACK calls then fight for the cores (a 4 s dense SVD took 40-50 s). One BLAS thread
# per worker (the results are the same: every tolerance covers BLAS's order of summation).
if os.environ.get("PYTEST_XDIST_WORKER"):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        pass
    else:
        threadpool_limits(1)


# --------------------------------------------------------------------------- blocks
@pytest.fixture(params=["one block", "tiny blocks"])
def blocking(request, monkeypatch):
    """The operators' default blocks, or the smallest (one position or output row a block:
    many blocks, a partial last one) for the operators made inside the test."""
    if request.param == "tiny blocks":
        import toeplitz_conv._plan as plan_module

        tiny = plan_module.Blocking(block_bytes=64, thin_bytes=64, min_cols=1)
        monkeypatch.setattr(plan_module, "BLOCKING", tiny)
    return request.param


# --------------------------------------------------------------------------- torch
def require_torch():
    """Return the ``torch`` module, or skip when it is missing.

    With ``TOEPLITZ_CONV_REQUIRE_TORCH=1`` a missing torch is a hard failure instead of a
    skip, so that a CI job which is supposed to run the torch oracle cannot silently pass
    without it.  Safe to call at module level (the skip/fail then covers the whole module).
    """
    if os.environ.get("TOEPLITZ_CONV_REQUIRE_TORCH") == "1":
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the environment
            pytest.fail(
                f"TOEPLITZ_CONV_REQUIRE_TORCH=1 but torch cannot be imported: {exc!r}",
                pytrace=False,
            )
        return torch
    return pytest.importorskip("torch")


@pytest.fixture
def torch():
    """The ``torch`` module (skips, or fails under ``TOEPLITZ_CONV_REQUIRE_TORCH=1``)."""
    return require_torch()


# --------------------------------------------------------------------------- sparse checks
_SPARSE_CLASSES = {
    "csr": "csr_array",
    "csc": "csc_array",
    "coo": "coo_array",
    "bsr": "bsr_array",
    "dia": "dia_array",
}


def _fits_int32(M) -> bool:
    limit = np.iinfo(np.int32).max
    return max(M.shape) <= limit and M.nnz <= limit


def _check_compressed_sorted(indptr, indices, n_major):
    """Indices strictly increasing inside every major slice (sorted, no duplicates)."""
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    assert indptr.shape == (n_major + 1,), (indptr.shape, n_major)
    assert indptr[0] == 0 and np.all(np.diff(indptr) >= 0)
    assert indptr[-1] == len(indices)
    if len(indices) > 1:
        step = np.diff(indices.astype(np.int64))
        # A step that crosses into the next major slice may go down; inside one it must go up.
        starts = np.zeros(len(indices), dtype=bool)
        starts[indptr[:-1][indptr[:-1] < len(indices)]] = True
        inside = ~starts[1:]
        assert np.all(step[inside] > 0), "indices not strictly increasing within a row/column"


def assert_canonical_sparse(M, fmt=None):
    """Assert ``M`` is a scipy sparse *array* in canonical form with the right index dtype.

    Canonical: sorted indices and no duplicate entries (checked both through scipy's flags and
    independently from the index arrays).  Index dtype: int32 when the shape and nnz fit in
    int32.  If ``fmt`` is given, ``M.format`` must be it.
    """
    import scipy.sparse as sp

    assert isinstance(M, sp.sparray), f"expected a scipy sparse array, got {type(M)!r}"
    assert not isinstance(M, sp.spmatrix), f"got the legacy spmatrix type {type(M)!r}"
    if fmt is not None:
        assert M.format == fmt, (M.format, fmt)
        assert type(M).__name__ == _SPARSE_CLASSES[fmt], type(M).__name__
    want_idx = np.int32 if _fits_int32(M) else np.int64

    if M.format in ("csr", "csc"):
        assert M.has_sorted_indices
        assert M.has_canonical_format
        n_major = M.shape[0] if M.format == "csr" else M.shape[1]
        _check_compressed_sorted(M.indptr, M.indices, n_major)
        assert M.indices.dtype == want_idx, M.indices.dtype
        assert M.indptr.dtype == want_idx, M.indptr.dtype
    elif M.format == "bsr":
        assert M.has_sorted_indices
        assert M.has_canonical_format
        r, _ = M.blocksize
        _check_compressed_sorted(M.indptr, M.indices, M.shape[0] // r)
        assert M.indices.dtype == want_idx, M.indices.dtype
        assert M.indptr.dtype == want_idx, M.indptr.dtype
    elif M.format == "coo":
        assert M.has_canonical_format
        row, col = (np.asarray(c, dtype=np.int64) for c in M.coords)
        if len(row) > 1:
            key = row * M.shape[1] + col
            assert np.all(np.diff(key) > 0), "COO entries not sorted row-major / duplicated"
        for c in M.coords:
            assert c.dtype == want_idx, c.dtype
    elif M.format == "dia":
        offsets = np.asarray(M.offsets)
        assert len(np.unique(offsets)) == len(offsets), "duplicate DIA offsets"
    else:  # pragma: no cover
        raise AssertionError(f"unexpected sparse format {M.format!r}")


def to_dense(M):
    """Dense ndarray of a sparse array or an ndarray."""
    import scipy.sparse as sp

    if isinstance(M, (sp.sparray, sp.spmatrix)):
        return M.toarray()
    return np.asarray(M)


# --------------------------------------------------------------------------- no skips in CI
def pytest_sessionfinish(session, exitstatus):
    """Under ``TOEPLITZ_CONV_NO_SKIPS=1`` (set by ``.ci/run``) any skipped test fails the run.

    Optional dependencies (torch, matplotlib) are installed in CI, so a skip there means an
    oracle silently did not run.
    """
    if not _env_flag("TOEPLITZ_CONV_NO_SKIPS"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(
            f"TOEPLITZ_CONV_NO_SKIPS=1: {len(skipped)} test(s) skipped; failing the run",
            red=True,
        )
        session.exitstatus = 1

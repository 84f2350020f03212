"""Run under mpiexec: row blocks, gathering, parallel files and the distributed analysis.

Usage: ``check_matrix.py <shared temporary directory>``. Prints ``OK <check>`` on rank 0.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import scipy.io
from mpi4py import MPI

import toeplitz_conv as tc
from toeplitz_conv.mpi import (
    gather_matrix,
    local_matrix,
    mpi_conv_operator,
    row_ranges,
    save_matrix_market,
    save_matrix_parts,
    singular_values,
    spectral_norm_bounds,
)

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

LAYERS = [
    (np.arange(1.0, 4.0), 40, {}),
    (np.arange(24.0).reshape(4, 2, 3) - 11.5, 31, {"stride": 2, "padding": 2, "groups": 2}),
    (np.ones((3, 3, 2)), 17, {"padding": (1, 3), "dilation": 3, "padding_mode": "reflect"}),
    (np.arange(1.0, 13.0).reshape(2, 2, 3), 23, {"padding": 2, "padding_mode": "circular"}),
    (
        np.arange(1.0, 7.0).reshape(2, 1, 3),
        29,
        {"padding": 4, "stride": 3, "padding_mode": "replicate"},
    ),
    (np.arange(1.0, 7.0).reshape(1, 2, 3) * (1 + 2j), 19, {"padding": 1}),
    (np.arange(1.0, 7.0, dtype=np.float32).reshape(1, 2, 3), 19, {"padding": 1}),
    (np.arange(1.0, 25.0).reshape(2, 2, 3, 2), (11, 5), {"padding": (1, (0, 1)), "stride": (2, 1)}),
    (
        np.arange(1.0, 9.0).reshape(1, 1, 2, 2, 2),
        (7, 3, 4),
        {"padding": 1, "padding_mode": "circular"},
    ),
]


def same(a, b, what: str) -> None:
    if a.shape != b.shape or a.dtype != b.dtype or (a != b).nnz:
        raise AssertionError(
            f"rank {rank}: {what}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}, "
            f"{(a != b).nnz if a.shape == b.shape else '-'} entries differ"
        )


def main(folder: str) -> None:
    for n, (w, L, kw) in enumerate(LAYERS):
        full = tc.conv_matrix(w, L, **kw)
        block, (r0, r1) = local_matrix(w, L, **kw)
        same(block, full[r0:r1], f"block of layer {n}")
        if not block.has_canonical_format:
            raise AssertionError(f"rank {rank}: block of layer {n} is not canonical")
        whole = gather_matrix(block, (r0, r1))
        same(whole, full, f"gathered layer {n}")
        # balanced by nonzeros (no zero weights here, so every structural one is stored):
        # no rank holds more than its share plus one row's worth
        counts = comm.allgather(block.nnz)
        widest = int(np.diff(full.indptr).max())
        if max(counts) - min(counts) > 2 * widest and full.shape[0] >= 2 * size:
            raise AssertionError(f"layer {n}: unbalanced nonzeros {counts}")
        if row_ranges(w, L, **kw, parts=size)[rank] != (r0, r1):
            raise AssertionError("row_ranges disagrees with local_matrix")
        # parallel files, read back whole by the single-process loader
        manifest = os.path.join(folder, f"layer{n}.json")
        save_matrix_parts(block, (r0, r1), manifest, params={"layer": n})
        same(tc.load_matrix(manifest), full, f"parts of layer {n}")
        mtx = os.path.join(folder, f"layer{n}.mtx")
        save_matrix_market(block, (r0, r1), mtx, params={"layer": n})
        same(tc.load_matrix(mtx), full, f"Matrix Market file of layer {n}")
        if rank == 0:
            back = scipy.io.mmread(mtx)  # any reader, not only ours
            if abs(back - full).max() > 1e-6 * abs(full).max():
                raise AssertionError(f"scipy.io.mmread disagrees for layer {n}")
    if rank == 0:
        print(f"OK matrix {len(LAYERS)}", flush=True)

    # analysis: a bracket around the exact norm, the top singular values
    for w, L, kw in [
        (np.array([[[1.0, -2.0, 1.5]], [[0.5, 1.0, 0.0]]]), 90, {"padding": 1}),
        (np.array([[[1.0, 2.0, 0.5]]]), 64, {"padding": 1, "padding_mode": "circular"}),
        (np.array([[[1.0, 1j, 0.5]]]), 70, {"padding": 2, "padding_mode": "reflect"}),
    ]:
        op = mpi_conv_operator(w, L, **kw)
        exact = np.linalg.svd(tc.conv1d_matrix(w, L, format="dense", **kw), compute_uv=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = spectral_norm_bounds(op, rtol=1e-8, maxiter=80)
        if not (lo <= exact[0] * (1 + 1e-12) and exact[0] <= hi * (1 + 1e-12)):
            raise AssertionError(f"bracket [{lo}, {hi}] misses the norm {exact[0]}")
        if not hi - lo <= 1e-6 * hi:
            raise AssertionError(f"bracket [{lo}, {hi}] too wide")
        top = singular_values(op, k=4, tol=1e-10)
        if not np.allclose(top, exact[:4], rtol=1e-7, atol=0):
            raise AssertionError(f"singular values {top} vs {exact[:4]}")
    # the bracket scales with the weight at any magnitude (squares over/underflow otherwise)
    w = np.array([1.0, -2.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        base = spectral_norm_bounds(mpi_conv_operator(w, 400, padding=1))
        for scale in (1e-170, 1e160):
            lo, hi = spectral_norm_bounds(mpi_conv_operator(scale * w, 400, padding=1))
            if not np.allclose([lo / scale, hi / scale], base, rtol=1e-9, atol=0):
                raise AssertionError(f"weight x {scale:g}: bracket [{lo}, {hi}] vs {base}")
    # a budget too small warns with what it reached
    op = mpi_conv_operator(np.array([1.0, -2.0, 1.5]), 300, padding=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        singular_values(op, k=3, maxiter=5)
    if not any("(maxiter=5)" in str(c.message) for c in caught):
        raise AssertionError(f"no budget warning: {[str(c.message) for c in caught]}")
    if rank == 0:
        print("OK analysis", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

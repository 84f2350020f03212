"""The distributed operator and matrix: measured on 1 and 2 ranks, extrapolated to 64.

Run under MPI (the figures are per communicator; 2 ranks on one machine here)::

    mpiexec -n 2 python benchmarks/mpi.py            # the full tables (a minute)
    mpiexec -n 2 python benchmarks/mpi.py --smoke    # tiny sizes, for CI (seconds)

What it measures, side by side in one run (best of N, the slowest rank's time):

* time per distributed forward + adjoint product on 1 rank (rank 0 alone on
  ``COMM_SELF``, the others idle) and on all ranks;
* each rank's local compute alone (the single-process operator on its window) and the
  message costs between two ranks (latency of a halo-sized message, bandwidth of a
  slab-sized one), hence the halo bytes per product against the slab bytes;
* a table extrapolating to 64 ranks from those per-rank costs, on paper: strong
  scaling (the whole signal fixed) and weak scaling (the samples per rank fixed),
  ``T(R) = t_sample n/R + 2 (alpha + halo / beta)`` per product, plus
  ``2 log2(R) alpha`` for the two ``allreduce`` s of a CGLS iteration;
* row-block assembly of a 1-channel 4M-sample matrix: each rank builds its rows
  (:func:`toeplitz_conv.mpi.local_matrix`) against one process building it whole
  (:func:`toeplitz_conv.conv1d_matrix`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

# One thread per rank (the ranks are the parallelism), set before numpy loads its BLAS.
for _name in ("TOEPLITZ_CONV_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine, markdown_table  # noqa: E402

import toeplitz_conv as tc  # noqa: E402
from toeplitz_conv.mpi import local_matrix, mpi_conv_operator  # noqa: E402

WORLD = MPI.COMM_WORLD
RANK, SIZE = WORLD.Get_rank(), WORLD.Get_size()


def idle_until_done(comm: MPI.Comm) -> None:
    """Wait at a barrier without spinning (the other ranks are timing on fewer cores)."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.002)


def best_time(fn, comm: MPI.Comm, rounds: int) -> float:
    """Best over `rounds` of the slowest rank's wall time for one ``fn()`` (collective)."""
    fn()
    best = math.inf
    for _ in range(rounds):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        best = min(best, comm.allreduce(time.perf_counter() - start, op=MPI.MAX))
    return best


def product_time(comm: MPI.Comm, weight, length: int, rounds: int) -> tuple[float, object]:
    op = mpi_conv_operator(weight, length, padding="same", comm=comm)
    rng = np.random.default_rng(comm.Get_rank())
    x = op.make_array(rng.standard_normal(op.input_shape))
    return best_time(lambda: op.H @ (op @ x), comm, rounds), op


def ping_pong(nbytes: int, rounds: int) -> float:
    """One-way time of an `nbytes` message between ranks 0 and 1 (others idle)."""
    buf = np.zeros(max(nbytes, 1), dtype=np.uint8)
    if RANK > 1:
        idle_until_done(WORLD)
        return 0.0
    best = math.inf
    for _ in range(rounds):
        WORLD.Barrier() if SIZE == 2 else None
        start = time.perf_counter()
        if RANK == 0:
            WORLD.Send(buf, dest=1)
            WORLD.Recv(buf, source=1)
        else:
            WORLD.Recv(buf, source=0)
            WORLD.Send(buf, dest=0)
        best = min(best, (time.perf_counter() - start) / 2)
    if SIZE > 2:
        idle_until_done(WORLD)
    return WORLD.bcast(best, root=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args()
    smoke = args.smoke
    rounds = 2 if smoke else 5
    channels, K = 8, 9
    length = 4_000 if smoke else 200_000
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((channels, channels, K)) / np.sqrt(channels * K)
    out = []
    if RANK == 0:
        out.append(f"# toeplitz_conv.mpi on {SIZE} ranks: {machine()}")
        out.append(
            f"layer: {channels} -> {channels} channels, K = {K}, padding='same', "
            f"{length} samples, float64; forward + adjoint per product"
        )

    # ---------------------------------------------------------------- products
    single = None
    if RANK == 0:
        single, _ = product_time(MPI.COMM_SELF, weight, length, rounds)
        idle_until_done(WORLD)
    else:
        idle_until_done(WORLD)
    single = WORLD.bcast(single, root=0)
    many, op = product_time(WORLD, weight, length, rounds)

    # this rank's compute alone: the single-process operator on its window
    window = op._gather.shape[0]
    local = tc.conv1d_operator(weight, window)
    v = rng.standard_normal(local.shape[1])
    compute = best_time(lambda: local.H @ (local @ v), WORLD, rounds)
    samples_per_rank = max(p.size for p in op.slabs)
    t_sample = compute / max(window, 1)

    halo_rows = sum(p.halo for p in op.slabs)
    halo_bytes = 2 * halo_rows * channels * 8  # forward exchange + adjoint's reverse exchange
    slab_bytes = samples_per_rank * channels * 8
    alpha = beta = float("nan")
    if SIZE >= 2:
        small = WORLD.bcast(max(op.halo_bytes, 8), root=0)  # rank 0's halo, every rank
        alpha = ping_pong(small, 20 if smoke else 200)
        big = ping_pong(slab_bytes, 3 if smoke else 10)  # slab_bytes: the same on every rank
        beta = slab_bytes / max(big - alpha, 1e-9)  # bytes per second
    if RANK == 0:
        out.append("")
        out.append(
            markdown_table(
                ["ranks", "forward+adjoint (ms)", "speed-up", "per-rank compute (ms)"],
                [
                    [1, single * 1e3, 1.0, single * 1e3],
                    [SIZE, many * 1e3, single / many, compute * 1e3],
                ],
            )
        )
        out.append("")
        out.append(
            f"halo per product (all ranks, forward + adjoint): {halo_bytes} bytes "
            f"({halo_rows} samples x {channels} channels, twice) against {slab_bytes} bytes "
            f"of input per rank: {halo_bytes / max(slab_bytes, 1):.2e} of a slab"
        )
        if SIZE >= 2:
            out.append(
                f"messages between two ranks: latency {alpha * 1e6:.1f} us, "
                f"bandwidth {beta / 1e9:.2f} GB/s; compute {t_sample * 1e9:.1f} ns per sample "
                f"(all {channels} channels, forward + adjoint)"
            )

    # ---------------------------------------------------------------- extrapolation
    if RANK == 0 and SIZE >= 2:
        halo_one = op.halo_bytes  # one neighbour's halo, one direction
        rows = []
        for R in (1, 2, 4, 8, 16, 32, 64):
            msg = 0.0 if R == 1 else 2 * (alpha + halo_one / beta)
            reduce = 0.0 if R == 1 else 2 * math.log2(R) * alpha
            strong = t_sample * length / R + msg
            weak = t_sample * samples_per_rank + msg
            rows.append(
                [
                    R,
                    strong * 1e3,
                    (t_sample * length) / (R * strong),
                    weak * 1e3,
                    (t_sample * samples_per_rank) / weak,
                    (strong + reduce) * 1e3,
                ]
            )
        out.append("")
        out.append(
            "on paper, from the measured per-rank compute and message costs (neighbour "
            "exchanges overlap, so they do not grow with R; CGLS adds two allreduces):"
        )
        out.append(
            markdown_table(
                [
                    "ranks",
                    "strong: ms/product",
                    "strong efficiency",
                    f"weak ({samples_per_rank} samples/rank): ms",
                    "weak efficiency",
                    "strong + CGLS allreduces: ms",
                ],
                rows,
            )
        )

    # ---------------------------------------------------------------- assembly
    big_length = 200_000 if smoke else 4_000_000
    w1 = rng.standard_normal(5)
    whole = None
    if RANK == 0:
        whole = best_time(lambda: tc.conv1d_matrix(w1, big_length, padding=2), MPI.COMM_SELF, 1)
        idle_until_done(WORLD)
    else:
        idle_until_done(WORLD)
    whole = WORLD.bcast(whole, root=0)
    blocks = best_time(
        lambda: local_matrix(w1, big_length, padding=2), WORLD, 1 if not smoke else 2
    )
    block, rows = local_matrix(w1, big_length, padding=2)
    nnz = WORLD.gather(block.nnz, root=0)
    if RANK == 0:
        out.append("")
        out.append(
            markdown_table(
                ["assembly, 1 channel, K = 5", "samples", "seconds", "ratio", "nnz per rank"],
                [
                    [
                        "one process, whole (conv1d_matrix)",
                        big_length,
                        whole,
                        1.0,
                        nnz and sum(nnz),
                    ],
                    [
                        f"{SIZE} ranks, row blocks (local_matrix)",
                        big_length,
                        blocks,
                        blocks / whole,
                        nnz,
                    ],
                ],
            )
        )
        print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()

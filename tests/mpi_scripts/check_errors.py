"""Run under mpiexec: bad input on one rank gives the same clear error on every rank.

Rank 0 prints ``CASE <name> <rank> <ExceptionType>: <message>`` for every case and rank
(all must raise); the test checks the messages agree across ranks and that the job ends.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from toeplitz_conv.mpi import local_matrix, mpi_conv_operator

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
W = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # K = 5: halo d(K-1) = 4 (8 with dilation 2)


def bad_padding_on_one_rank():
    return mpi_conv_operator(W, 60, padding=-1 if rank == size - 1 else 1)


def other_weight_on_one_rank():
    return mpi_conv_operator(W * (2.0 if rank == 1 else 1.0), 60)


def wrong_local_sizes():
    return mpi_conv_operator(W, 60, local_size=10 if rank == 0 else 20)


def bad_slab_shape_on_one_rank():
    op = mpi_conv_operator(W, 60, padding=2)
    x = np.ones(op.input_shape if rank != 1 else (1, op.input_shape[1] + 1))
    return op.forward_local(x)


def bad_matrix_layer_on_one_rank():
    return local_matrix(W, 60, stride=0 if rank == 0 else 1)


def main() -> None:
    for case in (
        bad_padding_on_one_rank,
        other_weight_on_one_rank,
        wrong_local_sizes,
        bad_slab_shape_on_one_rank,
        bad_matrix_layer_on_one_rank,
    ):
        try:
            case()
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
        else:
            message = "no error"
        # rank 0 prints every rank's outcome (ranks printing at once may share a line)
        every = comm.gather(message, root=0)
        if rank == 0:
            for r, text in enumerate(every):
                print(f"CASE {case.__name__} {r} {text}", flush=True)


if __name__ == "__main__":
    main()

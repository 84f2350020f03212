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


def small_slab():
    if size == 2:
        # With two ranks the halo always fits (past the last slab there is only padding);
        # a 2-sample first slab cannot reflect 4 samples of padding from its own samples.
        sizes = [2, 30]
        return mpi_conv_operator(
            [1.0], 32, padding=4, padding_mode="reflect", local_size=sizes[rank]
        )
    # the second slab has 3 samples, fewer than the halo of 8 the first rank needs
    sizes = [20, 3] + [20] * (size - 2)
    return mpi_conv_operator(W, sum(sizes), dilation=2, local_size=sizes[rank])


def small_reflect_end():
    # the last slab is too short for the reflect padding it must compute itself
    sizes = [30] * (size - 1) + [2]
    return mpi_conv_operator(
        W, sum(sizes), padding=4, padding_mode="reflect", local_size=sizes[rank]
    )


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
        small_slab,
        small_reflect_end,
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

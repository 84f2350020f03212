"""Deconvolve a long 1-D recording on several MPI ranks with pylops-mpi's CGLS.

Run on 2 ranks on one machine::

    pip install "toeplitz_conv[mpi]"
    mpiexec -n 2 python -m mpi4py examples/deconvolve_mpi.py

Each rank owns a contiguous slab of the signal and never holds the whole of it: it
builds its own slab of the true signal from global sample indices, the distributed conv
operator exchanges halos of ``K - 1`` samples in all with the neighbouring ranks, and
``pylops_mpi.optimization.basic.cgls`` solves ``min ||M x - y||`` with inner products
reduced over the ranks. Rank 0 prints the residual and the error.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from mpi4py import MPI
from pylops_mpi.optimization.basic import cgls

from toeplitz_conv.mpi import mpi_conv_operator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=400_000, help="samples")
    parser.add_argument("--niter", type=int, default=40, help="CGLS iterations")
    parser.add_argument("--noise", type=float, default=1e-3, help="noise level")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD

    # A leaky RC filter: an exponential blur of 25 taps, the same on every rank.
    # (Cross-correlation as in torch: the weight is the flipped impulse response.)
    response = 0.75 ** np.arange(25)
    weight = (response / response.sum())[::-1].copy()
    op = mpi_conv_operator(weight, args.length, padding="same", comm=comm)

    # This rank's slab of the true signal, from the global sample indices it owns.
    j = np.arange(op.slab.start, op.slab.stop)
    truth = np.sin(2 * np.pi * j / 5000.0) + 2.0 * (j % 997 == 0)
    x_true = op.make_array(truth[None])

    # The blurred recording, distributed like the input: with padding="same" the output
    # keeps the length, and each rank owns the output rows at its own input positions.
    y = op @ x_true
    rng = np.random.default_rng([1, comm.Get_rank()])
    y[:] = y.local_array + args.noise * rng.standard_normal(y.local_shape)

    x0 = op.make_array(np.zeros(op.input_shape))
    comm.Barrier()
    start = time.perf_counter()
    x, _, iters, *_ = cgls(op, y, x0=x0, niter=args.niter, tol=0.0)
    seconds = time.perf_counter() - start

    residual = (op @ x - y).norm() / y.norm()
    error = (x - x_true).norm() / x_true.norm()
    if comm.Get_rank() == 0:
        print(
            f"{args.length} samples on {comm.Get_size()} ranks, halo {op.slab.halo} samples: "
            f"{iters} CGLS iterations in {seconds:.2f} s\n"
            f"relative residual ||Mx - y|| / ||y||      = {residual:.2e}\n"
            f"relative error    ||x - x_true|| / ||x|| = {error:.2e} (noise {args.noise:g})"
        )


if __name__ == "__main__":
    main()

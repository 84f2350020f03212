"""Run under mpiexec: the distributed operator equals the single-process one (every mode).

Prints ``OK <check> <count>`` on rank 0 per passed check; any mismatch raises (non-zero exit).
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from mpi4py import MPI

import toeplitz_conv as tc
from toeplitz_conv.mpi import mpi_conv_operator, mpi_conv_transpose_operator

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
TOL = 1e-12


def close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    err = float(np.abs(a - b).max(initial=0.0)) / scale
    if not err <= TOL:
        raise AssertionError(f"rank {rank}: {what}: relative error {err:.3e} > {TOL}")


def weight(rng, c_out, g, k, cplx):
    w = rng.standard_normal((c_out, g, k))
    return w + 1j * rng.standard_normal(w.shape) if cplx else w


def unequal_sizes(L: int) -> list[int]:
    """Slabs of clearly different sizes (the last one longest)."""
    base = [max(6, L // (2 * size)) for _ in range(size - 1)]
    return [*base, L - sum(base)]


def run_case(w, L, groups, unequal, local=None, **kw) -> None:
    local = unequal_sizes(L)[rank] if unequal else local
    op = mpi_conv_operator(w, L, groups=groups, local_size=local, **kw)
    ref = tc.conv1d_operator(w, L, groups=groups, **kw)
    rng = np.random.default_rng(7)  # the same global vectors on every rank
    c_in = w.shape[1] * groups
    x = rng.standard_normal((c_in, L))
    y = rng.standard_normal(ref.shape[0]).reshape(w.shape[0], -1)
    if np.iscomplexobj(w):
        x = x + 1j * rng.standard_normal(x.shape)
        y = y + 1j * rng.standard_normal(y.shape)
    what = f"{kw} groups={groups} unequal={unequal} complex={np.iscomplexobj(w)}"
    # forward and adjoint through pylops-mpi's DistributedArray
    yd = op @ op.scatter(x)
    close(op.gather(yd, side="output").reshape(-1), ref @ x.reshape(-1), "forward " + what)
    xd = op.H @ op.scatter(y, side="output")
    close(op.gather(xd).reshape(-1), ref.H @ y.reshape(-1), "adjoint " + what)
    # transpose (not the adjoint for complex weights)
    xt = op.T @ op.scatter(y, side="output")
    close(op.gather(xt).reshape(-1), ref.T @ y.reshape(-1), "transpose " + what)
    # dot test across ranks: <M x, y> == <x, M^H y>, inner products allreduced
    lhs = (op @ op.scatter(x)).dot(op.scatter(y, side="output"), vdot=True)
    rhs = op.scatter(x).dot(op.H @ op.scatter(y, side="output"), vdot=True)
    if not abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)):
        raise AssertionError(f"rank {rank}: dot test {lhs} vs {rhs}: {what}")
    # a batch on local slabs
    xb = np.stack([x, 2 * x])
    yb = op.forward_local(xb[:, :, op.slab.start : op.slab.stop])
    full = np.stack([(ref @ v.reshape(-1)).reshape(w.shape[0], -1) for v in xb])
    close(yb, full[:, :, op.slab.out_start : op.slab.out_stop], "batch forward " + what)
    gb = op.adjoint_local(full[:, :, op.slab.out_start : op.slab.out_stop])
    fullg = np.stack([(ref.H @ v.reshape(-1)).reshape(c_in, -1) for v in full])
    close(gb, fullg[:, :, op.slab.start : op.slab.stop], "batch adjoint " + what)


def run_case_nd(w, size, *, groups, unequal, **kw) -> None:
    L = size[0]
    local = unequal_sizes(L)[rank] if unequal else None
    op = mpi_conv_operator(w, size, groups=groups, local_size=local, **kw)
    ref = tc.conv_operator(w, size, groups=groups, **kw)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((w.shape[1] * groups, *size))
    y = rng.standard_normal(ref.shape[0]).reshape(w.shape[0], -1, *op.output_shape[2:])
    if np.iscomplexobj(w):
        x = x + 1j * rng.standard_normal(x.shape)
        y = y + 1j * rng.standard_normal(y.shape)
    what = f"n-d {size} {kw} groups={groups} unequal={unequal}"
    yd = op @ op.scatter(x)
    close(op.gather(yd, side="output").reshape(-1), ref @ x.reshape(-1), "forward " + what)
    xd = op.H @ op.scatter(y, side="output")
    close(op.gather(xd).reshape(-1), ref.H @ y.reshape(-1), "adjoint " + what)
    lhs = (op @ op.scatter(x)).dot(op.scatter(y, side="output"), vdot=True)
    rhs = op.scatter(x).dot(op.H @ op.scatter(y, side="output"), vdot=True)
    if not abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)):
        raise AssertionError(f"rank {rank}: dot test {lhs} vs {rhs}: {what}")


def main(quick: bool = False) -> None:
    """Every case; with `quick` every third of the padding/stride/dilation grid."""
    rng = np.random.default_rng(0)
    count = 0
    grid = 0
    L = 37
    # stride, dilation, padding, kernel size over every padding mode
    for mode, s, d, pad in itertools.product(
        ("zeros", "reflect", "replicate", "circular"), (1, 2, 3), (1, 2), ((3, 1), (1, 4))
    ):
        w = weight(rng, 2, 1, 3, cplx=False)
        grid += 1
        if quick and grid % 3:
            continue
        run_case(
            w, L, 1, unequal=count % 2 == 1, stride=s, dilation=d, padding=pad, padding_mode=mode
        )
        count += 1
    # "same", groups, channels, complex weights
    for mode, cplx, groups in itertools.product(
        ("zeros", "reflect", "replicate", "circular"), (False, True), (1, 2)
    ):
        w = weight(rng, 4, 3 if groups == 1 else 2, 3, cplx)
        run_case(w, L, groups, unequal=cplx, padding="same", dilation=2, padding_mode=mode)
        count += 1
    # padding wider than the kernel reach (rows that read only padding) and a long stride
    run_case(weight(rng, 1, 1, 2, False), L, 1, unequal=False, padding=(0, 9), stride=4)
    run_case(weight(rng, 1, 1, 5, False), L, 1, unequal=True, padding=6, stride=7)
    run_case(weight(rng, 2, 2, 1, False), L, 1, unequal=True, padding=0)
    run_case(weight(rng, 1, 1, 4, False), L, 1, unequal=False, padding=0, dilation=3)
    count += 4
    if rank == 0:
        print(f"OK operator {count}", flush=True)

    # slabs smaller than the halo or than the padding their end reflects: the pieces
    # come from further ranks (these were refused before)
    five = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    tiny = [2] + [30] * (size - 1)
    run_case(five, sum(tiny), 1, unequal=False, padding=4, padding_mode="reflect", local=tiny[rank])
    narrow = [20, 3] + [20] * (size - 2)
    run_case(five, sum(narrow), 1, unequal=False, dilation=2, local=narrow[rank])
    end = [30] * (size - 1) + [2]
    for mode in ("reflect", "circular", "replicate"):
        run_case(five, sum(end), 1, unequal=False, padding=4, padding_mode=mode, local=end[rank])
    ones = [1] * (size - 1) + [9]
    run_case(
        five, sum(ones), 1, unequal=False, padding="same", padding_mode="circular", local=ones[rank]
    )
    if rank == 0:
        print("OK small-slabs", flush=True)

    # 2-D and 3-D: split along the outermost spatial axis, every mode
    nd = 0
    for mode, cplx in itertools.product(("zeros", "reflect", "replicate", "circular"), (0, 1)):
        w = rng.standard_normal((4, 1, 3, 2))
        if cplx:
            w = w + 1j * rng.standard_normal(w.shape)
        run_case_nd(
            w,
            (19, 6),
            groups=2 if cplx else 4,
            stride=(2, 1),
            dilation=(2, 1),
            padding=((2, 1), 1),
            padding_mode=mode,
            unequal=bool(cplx),
        )
        nd += 1
    run_case_nd(
        rng.standard_normal((2, 2, 3, 2, 2)),
        (13, 4, 3),
        groups=1,
        stride=(1, 2, 1),
        dilation=1,
        padding=(1, 0, (1, 0)),
        padding_mode="reflect",
        unequal=True,
    )
    nd += 1
    if rank == 0:
        print(f"OK operator-nd {nd}", flush=True)

    # the transposed convolution as a distributed operator
    w = rng.standard_normal((3, 2, 4))
    opt = mpi_conv_transpose_operator(w, 15, stride=2, padding=1, output_padding=1)
    ref = tc.conv_transpose1d_operator(w, 15, stride=2, padding=1, output_padding=1)
    z = rng.standard_normal((3, 15))
    out = opt @ opt.scatter(z)
    close(opt.gather(out, side="output").reshape(-1), ref @ z.reshape(-1), "conv_transpose")
    if rank == 0:
        print("OK transpose", flush=True)

    # pylops-mpi's solver runs unchanged on the operator
    from pylops_mpi.optimization.basic import cgls

    w = np.array([0.25, 1.0, 0.25])  # symbol >= 0.5: well conditioned
    op = mpi_conv_operator(w, 400, padding="same")
    truth = np.sin(np.linspace(0, 20, 400))[None]
    data = op @ op.scatter(truth)
    x0 = op.scatter(np.zeros((1, 400)))
    xs = cgls(op, data, x0=x0, niter=200, tol=1e-12)[0]
    err = np.abs(op.gather(xs) - truth).max()
    if not err < 1e-6:
        raise AssertionError(f"cgls did not recover the signal: error {err}")
    if rank == 0:
        print("OK cgls", flush=True)


if __name__ == "__main__":
    main(quick="quick" in sys.argv[1:])

"""Run under mpiexec: the MPI defects of issue 14 (items 9-12), one case per item.

Usage: ``check_hardening.py <shared temporary directory>``. Each case runs on every rank;
rank 0 prints ``CASE <name> OK`` or ``CASE <name> FAIL <rank>: <message>`` for each, so
one failed case does not hide the others (a hang still fails the launch's timeout).
"""

from __future__ import annotations

import sys

import numpy as np
from mpi4py import MPI

import toeplitz_conv as tc
from toeplitz_conv.mpi import mpi_conv_operator, mpi_conv_transpose_operator

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def close(a, b, what: str, tol: float = 1e-12) -> None:
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    err = float(np.abs(a - b).max(initial=0.0)) / scale
    if not (a.shape == b.shape and err <= tol):
        raise AssertionError(f"{what}: shapes {a.shape} {b.shape}, relative error {err:.3e}")


def transpose_complex(folder: str) -> None:
    """Item 9: the distributed conv_transpose is M^T (no conjugate), as tc.conv_transpose."""
    rng = np.random.default_rng(4)
    for shape, size_, kw in [
        ((3, 2, 4), 15, {"stride": 2, "padding": 1, "output_padding": 1}),
        ((2, 2, 3), 12, {"padding": 1}),
        ((2, 1, 3, 2), (9, 4), {"stride": (2, 1), "padding": (1, 0), "groups": 2}),
    ]:
        w = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        op = mpi_conv_transpose_operator(w, size_, **kw)
        ref = tc.conv_transpose_operator(w, size_, **kw)
        z = rng.standard_normal(ref.shape[1]) + 1j * rng.standard_normal(ref.shape[1])
        z = z.reshape(op.conv.output_shape[0], *(op.conv.spec.output_size))
        out = op.gather(op @ op.scatter(z), side="output")
        close(out.reshape(-1), ref @ z.reshape(-1), f"transpose {shape} {kw}")
        close(out, tc.conv_transpose(z, w, **kw), f"tc.conv_transpose {shape} {kw}")
        v = rng.standard_normal(ref.shape[0]) + 1j * rng.standard_normal(ref.shape[0])
        v = v.reshape(op.conv.input_shape[0], *op.conv.spec.input_size)
        back = op.gather(op.H @ op.scatter(v, side="output"))
        close(back.reshape(-1), ref.H @ v.reshape(-1), f"transpose adjoint {shape} {kw}")
        lhs = (op @ op.scatter(z)).dot(op.scatter(v, side="output"), vdot=True)
        rhs = op.scatter(z).dot(op.H @ op.scatter(v, side="output"), vdot=True)
        if not abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)):
            raise AssertionError(f"dot test {lhs} vs {rhs}")
        start, stop = op.slab.out_start, op.slab.out_stop
        local = op.forward_local(z[:, start:stop])
        full = (ref @ z.reshape(-1)).reshape(v.shape)
        close(local, full[:, op.slab.start : op.slab.stop], "transpose forward_local")


def same_is_square(folder: str) -> None:
    """Item 10: with padding="same" the output vector is laid out as the input vector, so
    ``op @ x - x`` works on every rank and pylops-mpi's cg solves a symmetric system."""
    from pylops_mpi.optimization.basic import cg

    rng = np.random.default_rng(5)
    for shape, size_, kw in [
        ((1, 1, 3), 40, {}),
        ((2, 2, 5), 31, {"padding_mode": "reflect", "dilation": 2}),
        ((3, 3, 4), 29, {"padding_mode": "circular"}),
        ((2, 2, 3, 3), (17, 5), {"padding_mode": "replicate"}),
        ((2, 1, 2, 3), (13, 4), {"groups": 2}),
    ]:
        w = rng.standard_normal(shape)
        op = mpi_conv_operator(w, size_, padding="same", **kw)
        ref = tc.conv_operator(w, size_, padding="same", **kw)
        x = rng.standard_normal((shape[1] * kw.get("groups", 1), *np.atleast_1d(size_)))
        xd = op.scatter(x)
        yd = op @ xd
        if yd.local_shapes != xd.local_shapes:
            raise AssertionError(f"{kw}: output {yd.local_shapes} vs input {xd.local_shapes}")
        r = op.gather(yd - xd)  # raised (or hung on 3 ranks) before
        close(r.reshape(-1), ref @ x.reshape(-1) - x.reshape(-1), f"op @ x - x {shape} {kw}")
    # cg on a symmetric positive definite Toeplitz system (symbol 1 + cos >= 0.5)
    op = mpi_conv_operator(np.array([0.25, 1.0, 0.25]), 300, padding="same")
    truth = np.cos(np.linspace(0, 9, 300))[None]
    data = op @ op.scatter(truth)
    xs = cg(op, data, x0=op.scatter(np.zeros((1, 300))), niter=80, tol=0.0)[0]
    close(op.gather(xs), truth, "cg solution", tol=1e-8)


def vec_layout(folder: str) -> None:
    """Item 11: a vector of vec(x) in pylops-mpi's default partition converts both ways
    (from_vec / to_vec), and a partition that is not the operator's is refused on every
    rank with the same message, whichever ranks' local sizes happen to match."""
    from pylops_mpi import DistributedArray

    rng = np.random.default_rng(6)
    for shape, size_, kw in [
        ((3, 2, 3), 6 * size, {"padding": 1}),  # C*L divisible by the rank count
        ((2, 2, 4), 6 * size + 1, {"stride": 2, "padding_mode": "reflect", "padding": 2}),
        ((2, 3, 3, 2), (4 * size, 5), {"padding": 1}),
    ]:
        op = mpi_conv_operator(w := rng.standard_normal(shape), size_, **kw)
        ref = tc.conv_operator(w, size_, **kw)
        n, m = ref.shape[1], ref.shape[0]
        x = rng.standard_normal(n)
        xd = DistributedArray(global_shape=n)  # pylops-mpi's default layout of vec(x)
        shapes = xd.local_shapes  # collective: once on every rank
        lo = sum(shapes[q][0] for q in range(rank))
        xd[:] = x[lo : lo + xd.local_shape[0]]
        yd = op.to_vec(op @ op.from_vec(xd))
        if yd.local_shapes != DistributedArray(global_shape=m).local_shapes:
            raise AssertionError(f"to_vec is not pylops-mpi's default partition: {yd.local_shapes}")
        close(yd.asarray(), ref @ x, f"to_vec(op @ from_vec(x)) {shape} {kw}")
        y = rng.standard_normal(m)
        back = op.to_vec(op.H @ op.from_vec(y, side="output"), side="input")
        close(back.asarray(), ref.H @ y, f"adjoint through from_vec/to_vec {shape} {kw}")
        close(op.gather(op.from_vec(x)).reshape(-1), x, "from_vec of a global vec(x)")
    # a partition that differs on some ranks only: the same ValueError on every rank
    op = mpi_conv_operator(rng.standard_normal((2, 2, 3)), 6 * size + 1, padding=1)
    xd = DistributedArray(global_shape=op.shape[1])
    xd[:] = 1.0
    try:
        op @ xd
    except ValueError as exc:
        message = str(exc)
    else:
        raise AssertionError("a vector in pylops-mpi's default layout was accepted")
    every = comm.allgather(message)
    if len(set(every)) != 1 or "op.from_vec(x)" not in message:
        raise AssertionError(f"messages differ or do not point to from_vec: {every}")


def collective_checks(folder: str) -> None:
    """Item 12: an argument that differs on one rank gives the same ValueError on every
    rank, naming it (it gave garbage, an MPI error and a hang, or two "successes")."""
    import os

    from toeplitz_conv.mpi import (
        gather_matrix,
        local_matrix,
        save_matrix_market,
        save_matrix_parts,
        singular_values,
        spectral_norm_bounds,
    )

    odd = rank == size - 1  # the one rank that differs
    w = np.array([[[1.0, -2.0, 0.5]], [[0.25, 1.0, 3.0]]])
    op32 = mpi_conv_operator(w, 10 * size, padding=1, dtype=np.float32)
    op = mpi_conv_operator(w, 10 * size, padding=1)
    x32 = np.ones(op32.input_shape, dtype=np.float32)
    block, rows = local_matrix(w, 10 * size, padding=1)

    def path(name: str) -> str:
        return os.path.join(folder, f"{name}{rank if odd else ''}")

    cases = {
        "float64 slab, float32 operator": (
            lambda: op32.forward_local(x32.astype(np.float64) if odd else x32),
            "`x.dtype` must be the same on every rank",
        ),
        "complex slab": (
            lambda: op.adjoint_local(np.ones(op.output_shape, complex if odd else float)),
            "`y.dtype` must be the same on every rank",
        ),
        "complex vector": (
            lambda: op @ op.make_array(np.ones(op.input_shape, complex if odd else float)),
            "`x` must have the same dtype on every rank",
        ),
        "batch": (
            lambda: op.forward_local(np.ones((3 if odd else 2, *op.input_shape))),
            "`the batch of x` must be the same on every rank",
        ),
        "local_matrix layer": (
            lambda: local_matrix(w * (2.0 if odd else 1.0), 10 * size, padding=1),
            "must be the same on every rank; ranks [",
        ),
        "save_matrix_parts path": (
            lambda: save_matrix_parts(block, rows, path("parts") + ".json"),
            "`path` must be the same on every rank",
        ),
        "save_matrix_market path": (
            lambda: save_matrix_market(block, rows, path("m") + ".mtx"),
            "`path` must be the same on every rank",
        ),
        "gather_matrix root": (
            lambda: gather_matrix(block, rows, root=1 if odd else 0),
            "`root` must be the same on every rank",
        ),
        "spectral_norm_bounds maxiter": (
            lambda: spectral_norm_bounds(op, maxiter=7 if odd else 8),
            "`maxiter` must be the same on every rank",
        ),
        "singular_values k": (
            lambda: singular_values(op, k=3 if odd else 2),
            "`k` must be the same on every rank",
        ),
        "vector side": (
            lambda: op.scatter(np.ones((2, 10 * size)), side="output" if odd else "input"),
            "`side` must be the same on every rank",
        ),
    }
    for what, (call, expected) in cases.items():
        try:
            call()
        except ValueError as exc:
            message = str(exc)
        else:
            message = "no error"
        every = comm.allgather(message)
        if len(set(every)) != 1 or expected not in message:
            raise AssertionError(f"{what}: expected {expected!r} on every rank; got {every}")
    for name in ("parts", "m"):  # nothing was written
        if any(f.startswith(name) for f in os.listdir(folder)):
            raise AssertionError(f"{name}: files written despite the error: {os.listdir(folder)}")


CASES = [transpose_complex, same_is_square, vec_layout, collective_checks]


def main(folder: str) -> None:
    for case in CASES:
        try:
            case(folder)
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
        else:
            failure = None
        every = comm.gather(failure, root=0)
        if rank == 0:
            bad = [(r, f) for r, f in enumerate(every) if f is not None]
            status = "OK" if not bad else f"FAIL {bad[0][0]}: {bad[0][1]}"
            print(f"CASE {case.__name__} {status}".replace("\n", " "), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

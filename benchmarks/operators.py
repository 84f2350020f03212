"""Benchmarks of the matrix-free operators against torch's CPU convolutions (issue 10).

Forward (``op.matvec``) against ``torch.nn.functional.conv1d``/``conv2d`` and
adjoint (``op.rmatvec``) against ``conv_transpose1d``/``conv_transpose2d``,
float32 on one sample, torch given the same number of threads as numpy's BLAS,
one row per ``method=`` (``--methods``; "auto" shows what it chose), with each
method's error against the float64 result next to torch's.
Each row is first checked to compute the same values; every figure is a ratio
of timings taken side by side in one run (interleaved best-of-N, see
``_harness.py``); lower is better for us, the target is <= 1.

Long 1-D kernels (``K >= 64``, computed by FFT) are compared instead with
:func:`scipy.signal.oaconvolve` on the same correlation, one call broadcast
over the channel pairs and summed (the adjoint: the full convolution with the
conjugated kernel), and with our own direct path (forced, timed once).

    python benchmarks/operators.py            # the full tables (a minute or two)
    python benchmarks/operators.py --smoke    # tiny sizes, for CI (seconds)
    python benchmarks/operators.py --threads 1 --methods auto,direct,winograd

The table in ``docs/operators.md``::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python benchmarks/operators.py --threads 1 --cpu-time --no-long

Like ``analysis.py``, the full run re-executes itself once without
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` so that numpy's OpenBLAS runs the
processor's own kernel, as torch's does (``--keep-env`` skips that).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import interleaved, machine, markdown_table
from analysis import blas_info, reexec_without_pins

import toeplitz_conv as tc

# (name, C_in, C_out, kernel, stride, padding, groups, input size)
LAYERS = [
    ("64->64, 3x3, pad 1, 56x56", 64, 64, (3, 3), 1, 1, 1, (56, 56)),
    ("128->128, 3x3, stride 2, pad 1, 28x28", 128, 128, (3, 3), 2, 1, 1, (28, 28)),
    ("depthwise 64, 3x3, pad 1, 56x56", 64, 64, (3, 3), 1, 1, 64, (56, 56)),
    ("1-D 64->64, K=3, n=8192", 64, 64, (3,), 1, 0, 1, (8192,)),
    ("1-D 64->128, K=5, stride 2, n=8192", 64, 128, (5,), 2, 0, 1, (8192,)),
    ("1-D 1->1, K=9, n=2M", 1, 1, (9,), 1, 0, 1, (2_000_000,)),
]
SMOKE = [
    ("4->4, 3x3, pad 1, 12x12", 4, 4, (3, 3), 1, 1, 1, (12, 12)),
    ("8->8, 3x3, stride 2, 9x9", 8, 8, (3, 3), 2, 1, 1, (9, 9)),
    ("depthwise 4, 3x3, 10x10", 4, 4, (3, 3), 1, 1, 4, (10, 10)),
    ("1-D 2->4, K=5, s=2, n=300", 2, 4, (5,), 2, 0, 1, (300,)),
]

# long 1-D kernels: (name, C_in = C_out, K, n)
FFT_LAYERS = [
    ("1-D 1->1, K=64, n=2^20", 1, 64, 1 << 20),
    ("1-D 1->1, K=256, n=2^20", 1, 256, 1 << 20),
    ("1-D 1->1, K=1024, n=2^20", 1, 1024, 1 << 20),
    ("1-D 4->4, K=256, n=2^20", 4, 256, 1 << 20),
]
SMOKE_FFT = [
    ("1-D 1->1, K=64, n=4096", 1, 64, 4096),
    ("1-D 2->2, K=80, n=3000", 2, 80, 3000),
]


def fft_rows(layers, rounds: int, threads: int):
    """Our FFT path against ``scipy.signal.oaconvolve`` (and our direct path), float32."""
    from scipy.signal import oaconvolve

    rng = np.random.default_rng(0)
    rows = []
    for name, c, K, n in layers:
        w = rng.standard_normal((c, c, K)).astype(np.float32)
        op = tc.conv_operator(w, (n,))
        assert op.method == "fft", name
        direct = tc.conv_operator(w, (n,), method="direct")
        x = rng.standard_normal((c, n)).astype(np.float32)
        y = rng.standard_normal((c, op.output_size[0])).astype(np.float32)
        xv, yv = x.ravel(), y.ravel()

        def oa(x=x, w=w):  # y[o] = sum_c correlate(x[c], w[o, c])
            return oaconvolve(x[None], w[:, :, ::-1], mode="valid", axes=-1).sum(axis=1)

        def oa_t(y=y, w=w):  # g[c] = sum_o convolve(y[o], w[o, c]), full
            return oaconvolve(y[:, None], w, mode="full", axes=-1).sum(axis=0)

        scale = float(np.sqrt(K * c))
        np.testing.assert_allclose(op @ xv, oa().ravel(), atol=1e-4 * scale)
        np.testing.assert_allclose(op.H @ yv, oa_t().ravel(), atol=1e-4 * scale)
        t = interleaved(
            {
                "oa": oa,
                "matvec": lambda op=op, xv=xv: op.matvec(xv),
                "oa_t": oa_t,
                "rmatvec": lambda op=op, yv=yv: op.rmatvec(yv),
            },
            rounds=rounds,
            number="auto",
            min_time=0.05,
        )
        # the direct path is slow on these layers: one timing each
        d = interleaved({"matvec": lambda op=direct, xv=xv: op.matvec(xv)}, rounds=1)
        rows.append(
            [
                name,
                f"{t['oa'] * 1e3:.3g}",
                f"{t['matvec'] * 1e3:.3g}",
                t["matvec"] / t["oa"],
                f"{t['oa_t'] * 1e3:.3g}",
                f"{t['rmatvec'] * 1e3:.3g}",
                t["rmatvec"] / t["oa_t"],
                f"{d['matvec'] * 1e3:.3g}",
            ]
        )
    header = [
        f"long kernel (float32, one sample, {threads} threads)",
        "oaconvolve ms",
        "matvec ms",
        "matvec / oaconvolve",
        "oaconvolve (adjoint) ms",
        "rmatvec ms",
        "rmatvec / oaconvolve",
        "direct matvec ms",
    ]
    return markdown_table(header, rows)


def _applies(method: str, K: tuple[int, ...], s: int) -> bool:
    if method in ("winograd", "winograd2"):
        return len(K) <= 2 and set(K) == {3} and s in ((1, 2) if method == "winograd2" else (1,))
    return method in ("auto", "direct") or len(K) == 1


def _compiled_path(method: str, K: tuple[int, ...], s: int, depthwise: bool) -> bool:
    """Whether `method` runs compiled kernels with numba on this layer (so that a row without
    them is timed too): depthwise layers' direct path, 2-D Winograd transforms (also when
    "auto" picks them)."""
    tiles = len(K) == 2 and set(K) == {3} and not depthwise
    if method == "auto":
        return depthwise or (tiles and s in (1, 2))
    if method == "direct":
        return depthwise
    return method in ("winograd", "winograd2") and _applies(method, K, s) and len(K) == 2


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got - want| / max |want|``, in float64."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


def _compiled_kernels() -> bool:
    """Whether depthwise layers run the compiled kernels (numba installed, a version that has
    them)."""
    try:
        from toeplitz_conv._compiled import kernels
    except ImportError:  # versions from before the [fast] extra
        return False
    return kernels(np.dtype(np.float32)) is not None


@contextlib.contextmanager
def _compiled_switch(on: bool):
    """The compiled kernels on (as installed) or off, for the duration."""
    if on:
        yield
        return
    from toeplitz_conv import _tunables

    before = _tunables.COMPILED
    _tunables.COMPILED = False
    try:
        yield
    finally:
        _tunables.COMPILED = before


def operator_rows(
    layers, rounds: int, threads: int, methods=("auto", "winograd"), clock=time.perf_counter
):
    """Our ``matvec``/``rmatvec`` per method against torch's conv/conv_transpose (float32).

    Also the error of each against the float64 result (``max |y - y64| / max |y64|``), and
    torch's own, on the same input.
    """
    import torch

    torch.set_num_threads(threads)
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    rows = []
    for name, c_in, c_out, K, s, p, groups, size in layers:
        n = len(size)
        w = rng.standard_normal((c_out, c_in // groups, *K)).astype(np.float32)
        kw = dict(stride=s, padding=p, groups=groups)
        # (no method= for "auto" and the reference, so that "--methods auto" also times
        # versions from before method=, for before/after figures)
        exact = tc.conv_operator(w.astype(np.float64), size, **kw)
        x = rng.standard_normal(exact.shape[1]).astype(np.float32)
        y = rng.standard_normal(exact.shape[0]).astype(np.float32)
        want, want_t = exact @ x.astype(np.float64), exact.H @ y.astype(np.float64)
        tw = torch.from_numpy(w)
        tx = torch.from_numpy(x.reshape(1, c_in, *size))
        ty = torch.from_numpy(y.reshape(1, c_out, *exact.output_size))
        # output_padding giving back the input size
        q = tuple(
            L - ((Lo - 1) * s - 2 * p + k)
            for L, Lo, k in zip(size, exact.output_size, K, strict=True)
        )
        conv = (F.conv1d, F.conv2d)[n - 1]
        conv_t = (F.conv_transpose1d, F.conv_transpose2d)[n - 1]

        def t_conv(tx=tx, tw=tw, s=s, p=p, g=groups, conv=conv):
            with torch.no_grad():
                return conv(tx, tw, stride=s, padding=p, groups=g)

        def t_conv_t(ty=ty, tw=tw, s=s, p=p, g=groups, q=q, conv_t=conv_t):
            with torch.no_grad():
                return conv_t(ty, tw, stride=s, padding=p, output_padding=q, groups=g)

        torch_err = _relative_error(t_conv().numpy().ravel(), want)
        runs = [(m, True) for m in methods if _applies(m, K, s)]
        if _compiled_kernels():  # also numpy's path, without numba, where numba runs
            runs += [(m, False) for m in methods if _compiled_path(m, K, s, groups == c_in)]
        for method, compiled in runs:
            chosen = {} if method == "auto" else {"method": method}
            with _compiled_switch(compiled):
                op = tc.conv_operator(w, size, **chosen, **kw)  # ("auto" chooses by it too)
                err, err_t = _relative_error(op @ x, want), _relative_error(op.H @ y, want_t)
                t = interleaved(
                    {
                        "torch": t_conv,
                        "matvec": lambda op=op, x=x: op.matvec(x),
                        "torch_t": t_conv_t,
                        "rmatvec": lambda op=op, y=y: op.rmatvec(y),
                    },
                    rounds=rounds,
                    number="auto",
                    min_time=0.05,
                    clock=clock,
                    # torch's OpenMP workers spin after each call: on more than one
                    # thread they took our second core (our two-thread times read
                    # 1.3-1.6x torch's without this, 0.96 ms against 0.77-0.93 alone)
                    settle=0.02 if threads > 1 else 0.0,
                )
            label = f"{method} ({getattr(op, 'method', 'direct')})" if method == "auto" else method
            ran = getattr(op, "method", "direct")
            if not compiled:
                label += ", numpy only"
            elif _compiled_kernels() and _compiled_path(ran, K, s, groups == c_in):
                label += ", numba"
            rows.append(
                [
                    name,
                    label,
                    f"{t['torch'] * 1e3:.3g}",
                    f"{t['matvec'] * 1e3:.3g}",
                    t["matvec"] / t["torch"],
                    f"{t['torch_t'] * 1e3:.3g}",
                    f"{t['rmatvec'] * 1e3:.3g}",
                    t["rmatvec"] / t["torch_t"],
                    f"{max(err, err_t):.1e}",
                    f"{torch_err:.1e}",
                ]
            )
    header = [
        f"layer (float32, one sample, {threads} threads)",
        "method",
        "torch conv ms",
        "matvec ms",
        "matvec / torch",
        "torch conv_transpose ms",
        "rmatvec ms",
        "rmatvec / torch",
        "our error vs float64",
        "torch's error",
    ]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (best of)")
    parser.add_argument(
        "--keep-env",
        action="store_true",
        help="do not re-execute without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (implied by --smoke)",
    )
    parser.add_argument("--only", default=None, help="run only the rows whose name contains this")
    parser.add_argument("--no-long", action="store_true", help="skip the long-kernel (FFT) table")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time CPU seconds of this process instead of wall time (with --threads 1: robust "
        "to other jobs on a loaded machine)",
    )
    parser.add_argument(
        "--methods",
        default="auto,winograd",
        help="comma-separated methods to time (auto, direct, fft, winograd, winograd2); default "
        "auto,winograd",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for numpy's BLAS and torch alike (threadpoolctl); default: the BLAS's",
    )
    args = parser.parse_args(argv)
    if argv is None:
        reexec_without_pins(args.keep_env or args.smoke)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: no operator-vs-torch table")
        return
    rounds = args.rounds or (2 if args.smoke else 7)
    arch, threads = blas_info()
    limiter = None
    if args.threads:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads, user_api="blas")
        threads = args.threads
        os.environ["TOEPLITZ_CONV_NUM_THREADS"] = str(threads)  # the package's own pool too
    layers = SMOKE if args.smoke else LAYERS
    if args.only:
        layers = [row for row in layers if args.only in row[0]]
    print(f"# operator benchmarks{' (smoke)' if args.smoke else ''}")
    from toeplitz_conv._threads import max_threads

    print(f"{machine()}; BLAS {arch}, {threads} threads; best of {rounds}")
    clock = time.process_time if args.cpu_time else time.perf_counter
    try:
        import numba

        compiled = f"numba {numba.__version__}" if _compiled_kernels() else "off"
    except ImportError:
        compiled = "numba not installed"
    print(
        f"toeplitz_conv threads: {max_threads()}; compiled depthwise kernels: {compiled}; "
        f"clock: {clock.__name__}\n"
    )
    print(operator_rows(layers, rounds, threads, tuple(args.methods.split(",")), clock))
    fft_layers = [] if args.no_long else SMOKE_FFT if args.smoke else FFT_LAYERS
    if args.only:
        fft_layers = [row for row in fft_layers if args.only in row[0]]
    if fft_layers:
        print()
        print(fft_rows(fft_layers, rounds, threads))
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()

"""N-d spectra and certified norms beside the published methods (issue 10).

Two tables, each measured side by side in one run:

1. The exact circular spectrum of a 64x64x3x3 layer on 32x32 against Sedghi, Gupta &
   Long (2019) written plainly: ``fft2`` of the kernel padded to the input size and one
   batched SVD over all frequencies. Target: time ratio <= 0.3, values identical to
   1e-12 relative (to the largest).
2. Zero padding, every ResNet-18 conv shape with random (He-initialised) weights: our
   certified bracket (its relative width and time) beside the published upper bounds,
   each written plainly from its paper (see ../shared/PEERS.md):

   - Delattre et al. 2024: Gram iteration on the kernel (6 iterations);
   - Grishina et al. 2024 (TensorNorm): ``sqrt(h w)`` times the kernel's tensor
     spectral norm (alternating power iteration);
   - Singla & Feizi 2021: ``sqrt(h w)`` times the least norm of four reshapes;
   - Araujo et al. 2021 (LipGrid): the symbol's Frobenius norm on a 50x50 grid, rescaled;
   - 100-step power iteration on ``M^T M`` (torch conv2d / conv_transpose2d): from below,
     no guarantee.

   Strided layers: the published kernel bounds are those of the stride-1 layer (the
   strided matrix is a subset of its rows, so they stay upper bounds).

Run ``python benchmarks/spectral_nd.py`` (the full table; minutes) or ``--smoke`` (seconds).
BLAS runs single-threaded unless ``OPENBLAS_NUM_THREADS`` says otherwise (set before numpy
is imported): batches of small factorisations are split over the package's own thread pool
instead, and on a busy machine a threaded BLAS makes each 64 x 64 factorisation a hundred
times slower. The ResNet table's block-Cholesky certificates use every core once BLAS may use
more than one thread (``OPENBLAS_NUM_THREADS=2`` on two cores; the package's threads, one BLAS
thread each). ``--rows TEXT`` runs only the ResNet rows whose name contains TEXT;
``--cpu-time`` adds our CPU seconds and the load average (steadier on a shared host).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import toeplitz_conv as tc  # noqa: E402
from toeplitz_conv._threads import max_threads  # noqa: E402


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --------------------------------------------------------------------------- peers
def sedghi(w: np.ndarray, n: int) -> np.ndarray:
    """Sedghi et al. 2019: fft2 of the kernel padded to n x n, an SVD per frequency."""
    A = np.fft.fft2(w, s=(n, n), axes=(2, 3))
    A = A.transpose(2, 3, 0, 1).reshape(n * n, *w.shape[:2])
    return np.linalg.svd(A, compute_uv=False).ravel()


def delattre2024(w: np.ndarray, iterations: int = 6, memory: float = 2**29) -> tuple[float, int]:
    """Gram iteration on the kernel: ``K <- conv2d(K, K, padding=size-1)``, rescaled.

    The self-correlation is computed by FFT (the same numbers as torch's conv2d, which
    needs an im2col of ``C S^2 (2S-1)^2`` entries). The kernel grows to ``2^t (k-1) + 1``:
    the iterations stop early (and the table says how many ran) once the next kernel's
    spectrum would pass `memory` bytes. Returns ``(bound, iterations)``.
    """
    k = w if w.shape[0] >= w.shape[1] else w.transpose(1, 0, 2, 3)
    log_scale = 0.0
    done = 0
    for _ in range(iterations):
        size = 2 * k.shape[-1] - 1
        if k.shape[0] ** 2 * size * (size // 2 + 1) * 16 * 2 > memory and done:
            break
        norm = np.linalg.norm(k)
        k = k / norm
        log_scale = 2 * (log_scale + np.log(norm))
        F = np.fft.rfft2(k, s=(size, size)).transpose(2, 3, 0, 1)  # (N, N', C_out, C_in)
        G = F @ F.conj().transpose(0, 1, 3, 2)  # sum_c K[o, c] correlated with K[o', c]
        g = np.fft.irfft2(G.transpose(2, 3, 0, 1), s=(size, size))
        k = np.roll(g, (k.shape[-1] - 1,) * 2, axis=(2, 3))  # lags -(S-1)..S-1 in order
        done += 1
    power = 2.0**-done
    rows = np.abs(k).sum(axis=(1, 2, 3)) ** power
    return float((rows * np.exp(log_scale * power)).max()), done


def tensor_norm(w: np.ndarray, steps: int = 100, starts: int = 3) -> float:
    """Grishina et al. 2024: sqrt(h w) times the 4-D tensor spectral norm.

    ``||K||_sigma = max |sum K[a, b, c, d] u_a v_b x_c y_d|`` over *complex* unit
    vectors (the symbol's phases ``e^{i omega_1 i} e^{i omega_2 j}`` are complex, so
    the bound needs the complex norm), by alternating power iteration from a few
    random starts; an estimate from below of that tensor norm. A 1x1 kernel's is its
    matrix's 2-norm, exactly (the power iteration stopped ~6e-5 below it after 100
    steps, which made the table's last column read "NO" against our exact norm).
    """
    if w.shape[2] == w.shape[3] == 1:
        return float(np.linalg.norm(w[:, :, 0, 0], 2))
    rng = np.random.default_rng(0)
    sub = "abcd"
    best = 0.0
    for _ in range(starts):
        u = [rng.standard_normal(d) + 1j * rng.standard_normal(d) for d in w.shape]
        u = [x / np.linalg.norm(x) for x in u]
        value = 0.0
        for _ in range(steps):
            for a in range(4):
                others = [u[b] for b in range(4) if b != a]
                spec = sub + "," + ",".join(sub[b] for b in range(4) if b != a) + "->" + sub[a]
                g = np.einsum(spec, w, *others)
                value = float(np.linalg.norm(g))
                u[a] = g.conj() / value
        best = max(best, value)
    return float(np.sqrt(w.shape[2] * w.shape[3]) * best)


def singla2021(w: np.ndarray) -> float:
    """Singla & Feizi 2021: sqrt(h w) times the least norm of four reshapes."""
    co, ci, h, ww = w.shape
    shapes = [
        w.transpose(0, 2, 1, 3).reshape(co * h, ci * ww),
        w.transpose(0, 3, 1, 2).reshape(co * ww, ci * h),
        w.reshape(co, ci * h * ww),
        w.transpose(1, 0, 2, 3).reshape(ci, co * h * ww),
    ]
    return float(np.sqrt(h * ww) * min(np.linalg.norm(m, 2) for m in shapes))


def araujo2021(w: np.ndarray, samples: int = 50) -> float:
    """Araujo et al. 2021 (LipGrid): the symbol's Frobenius norm on a grid, rescaled."""
    k = w.shape[2]
    grid = 2 * np.pi * np.arange(samples) / samples
    e = np.exp(-1j * np.outer(grid, np.arange(k)))  # (samples, k)
    A = np.einsum("ocij,ai,bj->aboc", w, e, e)
    frob = (np.abs(A) ** 2).sum(axis=(2, 3)).max()
    return float(np.sqrt(frob) / (1 - (k - 1) / samples))


def power_iteration(w, size, stride, padding, steps: int = 100) -> float:
    """100 steps of ``u <- M^T M u`` with torch's conv2d and conv_transpose2d."""
    import torch

    F = torch.nn.functional
    k = torch.from_numpy(w)
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(1, w.shape[1], *size, dtype=torch.float64, generator=gen)
    sigma = 0.0
    for _ in range(steps):
        u = u / u.norm()
        y = F.conv2d(u, k, stride=stride, padding=padding)
        sigma = float(y.norm())
        out = (size[0] + 2 * padding - w.shape[2]) % stride
        u = F.conv_transpose2d(y, k, stride=stride, padding=padding, output_padding=out)
    return sigma


# --------------------------------------------------------------------------- tables
def circular_table(smoke: bool) -> None:
    c, n = (16, 16) if smoke else (64, 32)
    w = np.random.default_rng(0).standard_normal((c, c, 3, 3))
    t_ours, ours = best_of(
        lambda: tc.singular_values(w, (n, n), padding=1, padding_mode="circular")
    )
    t_peer, peer = best_of(lambda: sedghi(w, n))
    peer = np.sort(peer)[::-1]
    diff = float(np.abs(ours - peer).max() / peer[0])
    print(f"\n## Circular spectrum, {c}x{c}x3x3 on {n}x{n} ({ours.size} singular values)\n")
    print("| method | time (s) | ratio | max difference / sigma_max |")
    print("|---|---:|---:|---:|")
    print(f"| Sedghi et al. 2019 (fft2 + batched SVD) | {t_peer:.3f} | 1.00 | |")
    print(f"| toeplitz_conv.singular_values | {t_ours:.3f} | {t_ours / t_peer:.2f} | {diff:.1e} |")


RESNET18 = [  # (C_in, C_out, K, input size, stride, padding)
    (3, 64, 7, 224, 2, 3),
    (64, 64, 3, 56, 1, 1),
    (64, 128, 3, 56, 2, 1),
    (64, 128, 1, 56, 2, 0),
    (128, 128, 3, 28, 1, 1),
    (128, 256, 3, 28, 2, 1),
    (128, 256, 1, 28, 2, 0),
    (256, 256, 3, 14, 1, 1),
    (256, 512, 3, 14, 2, 1),
    (256, 512, 1, 14, 2, 0),
    (512, 512, 3, 7, 1, 1),
]


def _layer_name(c_in: int, c_out: int, k: int, n: int, s: int) -> str:
    return f"{c_in}->{c_out} {k}x{k} s{s} on {n}x{n}"


def resnet_table(
    smoke: bool, rtol: float, only: list[str] | None = None, cpu_time: bool = False
) -> None:
    """The ResNet table; `only`: run just the rows whose name contains one of these strings
    (the weights are those of the full table: every row's are drawn in order). `cpu_time`:
    also the process's CPU seconds of our bracket (every thread; steadier than the wall
    clock on a shared host)."""
    rows = [(16, 16, 3, 20, 1, 1), (16, 32, 3, 20, 2, 1)] if smoke else RESNET18
    rng = np.random.default_rng(1)
    print(f"\n## Zero padding, ResNet-18 conv shapes, random weights (rtol={rtol:g})\n")
    print(
        "| layer | ours [lower, upper] | width | time (s) | Delattre 2024 | TensorNorm | "
        "Singla 2021 | Araujo 2021 | power it. 100 | upper <= every published |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for c_in, c_out, k, n, s, p in rows:
        w = rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2 / (c_in * k * k))
        name = _layer_name(c_in, c_out, k, n, s)
        if only and not any(part in name for part in only):
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo, hi = tc.spectral_norm_bounds(w, (n, n), stride=s, padding=p, rtol=rtol)
        t_ours = time.perf_counter() - t0
        timing = f"{t_ours:.1f}"
        if cpu_time:
            timing += f" (cpu {time.process_time() - c0:.1f}, load {os.getloadavg()[0]:.1f})"
        delattre, its = delattre2024(w)
        peers = [delattre, tensor_norm(w), singla2021(w)]
        peers.append(araujo2021(w) if k % 2 == 1 else float("nan"))
        pi = power_iteration(w, (n, n), s, p, steps=20 if smoke else 100)
        ok = all(hi <= v * (1 + 1e-9) for v in peers if np.isfinite(v))
        cells = " | ".join(f"{v:.5g}" for v in peers)
        cells = cells.replace(f"{delattre:.5g}", f"{delattre:.5g} (t={its})", 1)
        print(
            f"| {name} | [{lo:.7g}, {hi:.7g}] | {(hi - lo) / hi:.1e} | {timing} | "
            f"{cells} | {pi:.7g} | {'yes' if ok else 'NO'} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--only", choices=["circular", "resnet"], default=None)
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="ResNet table: also our CPU seconds (all threads) and the load average",
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        default=None,
        metavar="TEXT",
        help="ResNet table: only the rows whose name contains TEXT, e.g. '128->128 3x3'",
    )
    args = parser.parse_args()
    print(
        f"toeplitz_conv threads: {max_threads()}; "
        f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}"
    )
    if args.only in (None, "circular"):
        circular_table(args.smoke)
    if args.only in (None, "resnet"):
        resnet_table(args.smoke, args.rtol, args.rows, args.cpu_time)


if __name__ == "__main__":
    main()

"""Benchmarks for the analysis tools: operators vs torch, spectra vs Sedghi, norms vs power steps.

Every figure is a ratio of timings taken side by side in one run (interleaved
best-of-N, see ``_harness.py``); lower is better for us.

    python benchmarks/analysis.py            # the full tables (a few minutes)
    python benchmarks/analysis.py --smoke    # tiny sizes, for CI (seconds)

By default the script re-executes itself once with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed from its environment (only for that benchmark
process; it says so), so that numpy's OpenBLAS runs the processor's own kernel,
as torch's does; ``--keep-env`` skips that, and so does ``--smoke`` (CI runs it,
and CI's environment is left as configured: its timings are no figures). The
header says which BLAS kernel and how many threads ran (threadpoolctl if
installed, else numpy.show_config).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import interleaved, machine, markdown_table

import toeplitz_conv as tc

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # variables that pin OpenBLAS's kernel
_REEXEC = "_TOEPLITZ_CONV_BENCH_REEXEC"  # set in the re-executed child: re-exec only once


def reexec_without_pins(keep_env: bool) -> None:
    """Re-execute this script once with the OpenBLAS pins removed (this process only)."""
    if keep_env or os.environ.get(_REEXEC):
        return
    pinned = [name for name in _PINNED if name in os.environ]
    if not pinned:
        return
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    env[_REEXEC] = ",".join(pinned)
    print(
        f"re-executing without {', '.join(pinned)} so that numpy's OpenBLAS picks its own "
        "kernel (for this benchmark process only; --keep-env to skip)",
        flush=True,
    )
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


def blas_info() -> tuple[str, int]:
    """(kernels, threads) of the BLAS libraries loaded: threadpoolctl, else numpy.show_config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        config = np.show_config(mode="dicts") or {}
        blas = config.get("Build Dependencies", {}).get("blas", {})
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        return f"numpy: {name}, kernel unknown (no threadpoolctl)", os.cpu_count() or 1
    import scipy.linalg  # noqa: F401  (load scipy's BLAS too, so that it is listed)

    kernels, threads = [], []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        path = str(info.get("filepath", ""))
        owner = next((p[:-5] for p in path.split(os.sep) if p.endswith(".libs")), "?")
        kernels.append(
            f"{owner}: {info.get('internal_api', '?')} {info.get('version', '')} "
            f"{info.get('architecture', '?')}"
        )
        threads.append(int(info.get("num_threads", 1)))
    if not kernels:
        return "unknown", os.cpu_count() or 1
    return "; ".join(kernels), min(threads)


# --------------------------------------------------------------------------- operators
def operator_table(smoke: bool, rounds: int) -> str | None:
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping the operator-vs-torch table")
        return None
    _, threads = blas_info()
    torch.set_num_threads(threads)
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    layers = [  # (name, C_in, C_out, K, stride, n)
        ("64->64, K=3, n=8192", 64, 64, 3, 1, 8192),
        ("64->128, K=5, stride 2, n=8192", 64, 128, 5, 2, 8192),
        ("1->1, K=9, n=2M", 1, 1, 9, 1, 2_000_000),
    ]
    if smoke:
        layers = [("4->4, K=3, n=256", 4, 4, 3, 1, 256), ("2->4, K=5, s=2, n=300", 2, 4, 5, 2, 300)]
    rows = []
    for name, c_in, c_out, K, s, n in layers:
        w = rng.standard_normal((c_out, c_in, K)).astype(np.float32)
        op = tc.conv1d_operator(w, n, stride=s)
        x = rng.standard_normal(op.shape[1]).astype(np.float32)
        y = rng.standard_normal(op.shape[0]).astype(np.float32)
        tw = torch.from_numpy(w)
        tx = torch.from_numpy(x.reshape(1, c_in, n))
        ty = torch.from_numpy(y.reshape(1, c_out, -1))
        q = n - ((op.output_length - 1) * s + K)  # output_padding giving back n samples

        def t_conv(tx=tx, tw=tw, s=s):
            with torch.no_grad():
                return F.conv1d(tx, tw, stride=s)

        def t_conv_t(ty=ty, tw=tw, s=s, q=q):
            with torch.no_grad():
                return F.conv_transpose1d(ty, tw, stride=s, output_padding=q)

        np.testing.assert_allclose(op @ x, t_conv().numpy().ravel(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(op.H @ y, t_conv_t().numpy().ravel(), rtol=1e-3, atol=1e-3)
        t = interleaved(
            {
                "torch conv1d": t_conv,
                "op.matvec": lambda op=op, x=x: op.matvec(x),
                "torch conv_transpose1d": t_conv_t,
                "op.rmatvec": lambda op=op, y=y: op.rmatvec(y),
            },
            # millisecond calls on a shared machine: three times the rounds (both sides alike)
            rounds=rounds if n > 100_000 else 3 * rounds,
        )
        rows.append(
            [
                name,
                f"{t['torch conv1d'] * 1e3:.3g}",
                f"{t['op.matvec'] * 1e3:.3g}",
                t["op.matvec"] / t["torch conv1d"],
                f"{t['torch conv_transpose1d'] * 1e3:.3g}",
                f"{t['op.rmatvec'] * 1e3:.3g}",
                t["op.rmatvec"] / t["torch conv_transpose1d"],
            ]
        )
    header = [
        f"layer (float32, {threads} threads)",
        "torch conv1d ms",
        "matvec ms",
        "matvec / torch",
        "torch conv_transpose1d ms",
        "rmatvec ms",
        "rmatvec / torch",
    ]
    return markdown_table(header, rows)


# --------------------------------------------------------------------------- spectra
def sedghi_plain(w: np.ndarray, n: int, pad_left: int) -> np.ndarray:
    """Sedghi, Gupta & Long (2019): full FFT of the kernel, one SVD per frequency."""
    c_out, c_in, K = w.shape
    kernel = np.zeros((n, c_out, c_in))
    for k in range(K):  # tap k reads sample i + k - p_l: frequency response e^{+2 pi i f (k-p)/n}
        kernel[(k - pad_left) % n] += w[:, :, k]
    transforms = np.fft.ifft(kernel, axis=0) * n
    values = np.linalg.svd(transforms, compute_uv=False).ravel()
    return np.sort(values)[::-1]


def spectrum_table(smoke: bool, rounds: int) -> str:
    rng = np.random.default_rng(1)
    cases = [(64, 4096, 3)] if not smoke else [(4, 64, 3)]
    rows = []
    for c, n, K in cases:
        w = rng.standard_normal((c, c, K))
        p = (K - 1) // 2
        ours = tc.singular_values(w, n, padding=p, padding_mode="circular")
        plain = sedghi_plain(w, n, p)
        err = float(np.abs(ours - plain).max() / plain[0])
        t = interleaved(
            {
                "sedghi": lambda w=w, n=n, p=p: sedghi_plain(w, n, p),
                "ours": lambda w=w, n=n, p=p: tc.singular_values(
                    w, n, padding=p, padding_mode="circular"
                ),
            },
            rounds=rounds,
        )
        rows.append(
            [
                f"{c}x{c}, K={K}, n={n} ({ours.size:,} values)",
                f"{t['sedghi']:.3g}",
                f"{t['ours']:.3g}",
                t["ours"] / t["sedghi"],
                f"{err:.1e}",
            ]
        )
    header = [
        "circular layer",
        "plain Sedghi s",
        "singular_values s",
        "ratio",
        "max |diff| / sigma_max",
    ]
    return markdown_table(header, rows)


def _norm(x: np.ndarray) -> float:
    # not np.linalg.norm: its threaded BLAS dot stalls for milliseconds on a busy machine,
    # which would flatter us; spectral_norm_bounds uses the same BLAS-free norm
    return float(np.sqrt(np.einsum("i,i->", x, x)))


def power_iteration(op, iters: int, seed: int) -> float:
    """The usual Lipschitz estimate: power iteration on M^T M from a random start."""
    x = np.random.default_rng(seed).standard_normal(op.shape[1])
    x /= _norm(x)
    sigma = 0.0
    for _ in range(iters):
        y = op.matvec(x)
        sigma = _norm(y)
        x = op.rmatvec(y)
        x /= _norm(x)
    return sigma


def norm_table(smoke: bool, rounds: int) -> str:
    c, n, K = (64, 2048, 5) if not smoke else (4, 300, 5)
    w = np.random.default_rng(2).standard_normal((c, c, K))
    op = tc.conv1d_operator(w, n, padding=2)
    lo, hi = tc.spectral_norm_bounds(w, n, padding=2)
    est = power_iteration(op, 100, 0)
    t = interleaved(
        {
            "power": lambda: power_iteration(op, 100, 0),
            "bracket": lambda: tc.spectral_norm_bounds(w, n, padding=2),
        },
        rounds=rounds,
    )
    rows = [
        [
            "100 random-start power iterations",
            f"{t['power']:.3g}",
            1.0,
            f"{(hi - est) / hi:.1e} (below the certified upper end)",
            "no",
        ],
        [
            "spectral_norm_bounds (rtol=1e-6)",
            f"{t['bracket']:.3g}",
            t["bracket"] / t["power"],
            f"{(hi - lo) / hi:.1e} (bracket width)",
            "yes",
        ],
    ]
    header = [
        f"{c}x{c}, K={K}, n={n}, zero padding 2 (float64)",
        "s",
        "time / power",
        "relative error",
        "certified",
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
    args = parser.parse_args(argv)
    if argv is None:  # --smoke is CI's correctness run: it keeps CI's environment
        reexec_without_pins(args.keep_env or args.smoke)
    rounds = args.rounds or (2 if args.smoke else 7)
    arch, threads = blas_info()
    removed = os.environ.get(_REEXEC)
    pins = [f"{name}={os.environ[name]}" for name in _PINNED if name in os.environ]
    env_note = (
        f"re-executed without {removed}"
        if removed
        else (f"kept {', '.join(pins)}" if pins else "no OpenBLAS pins set")
    )
    print(f"# analysis benchmarks{' (smoke)' if args.smoke else ''}")
    print(
        f"{machine()}; BLAS {arch}, {threads} threads ({env_note}); best of {rounds}"
        f" (operators on short signals: {3 * rounds}; norms and spectra: {max(2, rounds // 2)})\n"
    )
    table = operator_table(args.smoke, rounds)
    if table:
        print("## Operator vs torch (same threads)\n")
        print(table + "\n")
    print("## Complete spectrum of a circular layer vs plain Sedghi et al.\n")
    print(spectrum_table(args.smoke, max(2, rounds // 2)) + "\n")
    print("## Spectral norm of a zero-padded layer\n")
    print(norm_table(args.smoke, max(2, rounds // 2)))


if __name__ == "__main__":
    main()

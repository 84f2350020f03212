"""Construction benchmark: toeplitz_conv against the memory floor and every peer, in one run.

Usage::

    python benchmarks/build.py            # the full run (under a minute on 2 cores)
    python benchmarks/build.py --smoke    # tiny sizes, seconds (CI)

Prints markdown tables: the builders against the floor (allocating and filling
fresh arrays of the result's size, 1 and 2 threads) with peak memory, the
builders against each peer, the same for 2-D and 3-D layers (a ResNet layer,
64 -> 64 channels, 3x3 on 56x56, against the floor and against block-wise
``scipy.sparse.kron`` assembly; one-hot probing through ``F.conv2d`` and
``torch.func.jacrev`` at the sizes they can handle; a 3-D layer), and how time
and memory grow with the signal.
Every timing is interleaved best-of-N (see ``_harness.py``); every peer's
result is first checked to be the same matrix. Peers that are not installed
(``pip install -e ".[bench]"``) are listed as skipped.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fill_floor, interleaved, machine, markdown_table, peak_memory

import toeplitz_conv as tc
from toeplitz_conv import _threads


@dataclass(frozen=True)
class Sizes:
    """Problem sizes and repetitions of one run."""

    a_n: int  # (a) one channel, 9 taps, padding 4
    b_n: int  # (b) C -> C channels, K=3, stride 2, padding 1
    b_channels: int
    small_n: int  # ptwt and scipy.linalg.convolution_matrix
    scaling: tuple[int, ...]
    rounds: int
    slow_rounds: int
    resnet: tuple[int, int]  # 2-D: channels, image side (3x3, padding 1)
    kron: tuple[int, int]  # 2-D against block-wise scipy.sparse.kron
    probe: tuple[int, int]  # 2-D against one-hot probing through F.conv2d
    jac: tuple[int, int]  # 2-D against torch.func.jacrev (dense)
    cube: tuple[int, int]  # 3-D: channels, volume side (3x3x3, padding 1)


FULL = Sizes(
    4_000_000,
    8192,
    64,
    3000,
    (10**4, 10**5, 10**6, 10**7),
    rounds=7,
    slow_rounds=3,
    resnet=(64, 56),
    kron=(64, 56),
    probe=(16, 32),
    jac=(8, 16),
    cube=(16, 32),
)
SMOKE = Sizes(
    20_000,
    256,
    8,
    300,
    (10**3, 10**4),
    rounds=1,
    slow_rounds=1,
    resnet=(4, 8),
    kron=(2, 6),
    probe=(2, 6),
    jac=(2, 5),
    cube=(2, 5),
)

MB = 2**20


def result_arrays(m: object) -> list[np.ndarray]:
    """The arrays a result holds (what the floor writes and peak memory is compared to)."""
    if isinstance(m, np.ndarray):
        return [m]
    names = {
        "csr": ("data", "indices", "indptr"),
        "csc": ("data", "indices", "indptr"),
        "bsr": ("data", "indices", "indptr"),
        "coo": ("data", "row", "col"),
        "dia": ("data", "offsets"),
    }[m.format]
    return [getattr(m, name) for name in names]


def nbytes(m: object) -> int:
    return sum(a.nbytes for a in result_arrays(m))


def same_matrix(a: object, b: object) -> bool:
    """Exactly the same entries (compared in CSR, values bit for bit)."""
    a = sp.csr_array(a.to_dense().numpy() if hasattr(a, "to_dense") else a)
    b = sp.csr_array(b.to_dense().numpy() if hasattr(b, "to_dense") else b)
    a.sum_duplicates()
    b.sum_duplicates()
    a.eliminate_zeros()
    b.eliminate_zeros()
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


# -- the floor ------------------------------------------------------------------------------


def floor_table(sizes: Sizes, rng: np.random.Generator) -> str:
    w_a = rng.standard_normal(9)
    c, n_b = sizes.b_channels, sizes.b_n
    w_b = rng.standard_normal((c, c, 3))
    a = f"(a) 1 ch, K=9, n={sizes.a_n:,}, padding=4"
    b = f"(b) {c}->{c} ch, K=3, stride 2, n={n_b:,}"
    cases: list[tuple[str, str, Callable[[], object]]] = []
    for fmt in ("csr", "csc", "coo", "dia"):
        cases.append(
            (a, fmt, lambda fmt=fmt: tc.conv1d_matrix(w_a, sizes.a_n, padding=4, format=fmt))
        )
    for mode in ("reflect", "replicate", "circular"):
        cases.append(
            (
                f"{a}, {mode}",
                "csr",
                lambda mode=mode: tc.conv1d_matrix(w_a, sizes.a_n, padding=4, padding_mode=mode),
            )
        )
    cases.append(
        (f"{a}, transposed", "csr", lambda: tc.conv_transpose1d_matrix(w_a, sizes.a_n, padding=4))
    )
    for fmt in ("csr", "csc", "coo"):
        cases.append(
            (b, fmt, lambda fmt=fmt: tc.conv1d_matrix(w_b, n_b, stride=2, padding=1, format=fmt))
        )
    for fmt in ("csr", "csc"):
        cases.append(
            (
                f"{b}, transposed",
                fmt,
                lambda fmt=fmt: tc.conv_transpose1d_matrix(
                    w_b, n_b // 2, stride=2, padding=1, output_padding=1, format=fmt
                ),
            )
        )

    return _floor_rows(cases, sizes.rounds)


def _floor_rows(cases, rounds: int) -> str:
    """Time each build against the floor of its result's arrays (1 and 2 threads)."""
    rows = []
    for case, fmt, build in cases:
        build()  # warm the pattern caches, as a second call of a user would
        peak, m = peak_memory(build)
        spec = [(a.size, a.dtype) for a in result_arrays(m)]
        size, nnz = nbytes(m), m.nnz
        del m
        t = interleaved(
            {
                "project": build,
                "floor": fill_floor(spec),
                "floor2": fill_floor(spec, threads=2),
            },
            rounds=rounds,
        )
        rows.append(
            [
                case,
                fmt,
                f"{nnz:,}",
                f"{size / MB:,.0f}",
                ms(t["project"]),
                ms(t["floor"]),
                f"{t['project'] / t['floor']:.2f}",
                ms(t["floor2"]),
                f"{t['project'] / t['floor2']:.2f}",
                f"{peak / size:.2f}",
            ]
        )
    header = [
        "case",
        "format",
        "nnz",
        "result (MiB)",
        "project (ms)",
        "floor (ms)",
        "project / floor",
        "floor, 2 threads (ms)",
        "project / floor 2 thr",
        "peak / result bytes",
    ]
    return markdown_table(header, rows)


# -- the peers ------------------------------------------------------------------------------


def peer_table(sizes: Sizes, rng: np.random.Generator) -> tuple[str, list[str]]:
    rows, skipped = [], []
    smoke = sizes is SMOKE

    def compare(case, peer_name, project, peer, target, *, rounds, number=1, peer_peak=True):
        p_project, m = peak_memory(project)
        p_peer, ref = peak_memory(peer)
        if not same_matrix(m, ref):
            raise AssertionError(f"{peer_name} built a different matrix for {case}")
        del m, ref
        t = interleaved({"project": project, "peer": peer}, rounds=rounds, number=number)
        speedup = t["peer"] / t["project"]
        met = "—" if smoke or target is None else ("yes" if speedup >= target else "**no**")
        rows.append(
            [
                case,
                peer_name,
                ms(t["project"]),
                ms(t["peer"]),
                f"{t['project'] / t['peer']:.3g}",
                f"{speedup:,.1f}x",
                "—" if target is None else f">= {target}x",
                met,
                f"{p_project / MB:,.1f}",
                f"{p_peer / MB:,.1f}" if peer_peak else "n/a (torch)",
            ]
        )

    # (a) one channel: what a user writes with scipy
    n, w = sizes.a_n, rng.standard_normal(9)
    compare(
        f"(a) 1 ch, K=9, n={n:,}, padding=4",
        "`scipy.sparse.diags_array(..., format='csr')`",
        lambda: tc.conv1d_matrix(w, n, padding=4),
        lambda: sp.diags_array(list(w), offsets=range(-4, 5), shape=(n, n), format="csr"),
        1.7,
        rounds=sizes.rounds,
    )

    # (b) channels: block-wise from one-channel matrices (built by our fastest path)
    c, n = sizes.b_channels, sizes.b_n
    w_b = rng.standard_normal((c, c, 3))

    def blockwise() -> sp.csr_array:
        blocks = [
            [tc.conv1d_matrix(w_b[o, i], n, stride=2, padding=1) for i in range(c)]
            for o in range(c)
        ]
        return sp.block_array(blocks, format="csr")

    compare(
        f"(b) {c}->{c} ch, K=3, stride 2, n={n:,}",
        "`scipy.sparse.block_array` of one-channel matrices",
        lambda: tc.conv1d_matrix(w_b, n, stride=2, padding=1),
        blockwise,
        15,
        rounds=sizes.slow_rounds,
    )

    # small: a wavelet filter, stride 2 (ptwt) and the dense convolution matrix
    n = sizes.small_n
    h = np.array([0.2304, 0.7148, 0.6309, -0.028, -0.187, 0.0308, 0.0329, -0.0106])  # db4
    try:
        import torch
        from ptwt.matmul_transform import construct_strided_conv_matrix
    except ImportError as exc:
        skipped.append(f"ptwt ({exc.name} not installed)")
    else:
        h_t = torch.tensor(h)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ptwt's torch.sparse beta warnings
            compare(
                f"db4 (K=8), stride 2, n={n:,}",
                "ptwt `construct_strided_conv_matrix`",
                lambda: tc.conv1d_matrix(h[::-1], n, stride=2),  # ptwt convolves: flip
                lambda: construct_strided_conv_matrix(h_t, n, 2, mode="valid"),
                200,
                rounds=sizes.rounds,
                number="auto",
                peer_peak=False,
            )
    compare(
        f"db4 (K=8), stride 1, n={n:,}",
        "`scipy.linalg.convolution_matrix` (dense)",
        lambda: tc.conv1d_matrix(h[::-1], n),
        lambda: scipy.linalg.convolution_matrix(h, n, mode="valid"),
        10,
        rounds=sizes.rounds,
        number="auto",
    )
    compare(
        f"db4 (K=8), stride 1, n={n:,}, ours dense too",
        "`scipy.linalg.convolution_matrix` (dense)",
        lambda: tc.conv1d_matrix(h[::-1], n, format="dense"),
        lambda: scipy.linalg.convolution_matrix(h, n, mode="valid"),
        None,
        rounds=sizes.rounds,
        number="auto",
    )
    header = [
        "case",
        "peer",
        "project (ms)",
        "peer (ms)",
        "project / peer",
        "speed-up",
        "target",
        "met",
        "project peak (MiB)",
        "peer peak (MiB)",
    ]
    return markdown_table(header, rows), skipped


# -- N-d ------------------------------------------------------------------------------------


def nd_floor_table(sizes: Sizes, rng: np.random.Generator) -> str:
    """The 2-D ResNet layer and the 3-D row against the fresh-write floor, with peak memory."""
    c, n = sizes.resnet
    w2 = rng.standard_normal((c, c, 3, 3))
    c3, n3 = sizes.cube
    w3 = rng.standard_normal((c3, c3, 3, 3, 3)).astype(np.float32)
    resnet = f"2-D {c}->{c}, 3x3, padding 1, {n}x{n}"
    cube = f"3-D {c3}->{c3}, 3x3x3, padding 1, {n3}^3, float32"
    cases: list[tuple[str, str, Callable[[], object]]] = [
        (resnet, fmt, lambda fmt=fmt: tc.conv2d_matrix(w2, n, padding=1, format=fmt))
        for fmt in ("csr", "csc", "coo")
    ]
    cases.append(
        (
            f"{resnet}, reflect",
            "csr",
            lambda: tc.conv2d_matrix(w2, n, padding=1, padding_mode="reflect"),
        )
    )
    cases.append(
        (
            f"2-D transposed {c}->{c}, 3x3, stride 2, {n // 2}x{n // 2} -> {n}x{n}",
            "csr",
            lambda: tc.conv_transpose2d_matrix(w2, n // 2, stride=2, padding=1, output_padding=1),
        )
    )
    cases.append((cube, "csr", lambda: tc.conv3d_matrix(w3, n3, padding=1)))
    return _floor_rows(cases, max(sizes.slow_rounds, min(sizes.rounds, 5)))


def _kron_assembly(w: np.ndarray, n: int) -> sp.csr_array:
    """What users write: 1-D selection matrices, Kronecker products per tap, blocks per channel."""
    c_out, c_in, k1, k2 = w.shape
    shifts = [sp.eye_array(n, n, k=k - 1, format="csr") for k in range(3)]  # padding 1
    taps = [[sp.kron(shifts[a], shifts[b], format="csr") for b in range(k2)] for a in range(k1)]
    blocks = [
        [sum(w[o, i, a, b] * taps[a][b] for a in range(k1) for b in range(k2)) for i in range(c_in)]
        for o in range(c_out)
    ]
    return sp.block_array(blocks, format="csr")


def _one_hot_probing(w: np.ndarray, n: int, batch: int = 1024) -> sp.csr_array:
    """What deel-lip does: push the identity through the layer, keep the nonzeros."""
    import torch

    c_in = w.shape[1]
    wt = torch.from_numpy(w)
    n_in = c_in * n * n
    parts = []
    for start in range(0, n_in, batch):
        stop = min(start + batch, n_in)
        x = torch.zeros(stop - start, n_in, dtype=wt.dtype)
        x[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
        y = torch.nn.functional.conv2d(x.reshape(-1, c_in, n, n), wt, padding=1)
        parts.append(sp.csr_array(y.reshape(stop - start, -1).numpy()))  # columns of M
    return sp.csr_array(sp.vstack(parts).T)


def _jacrev(w: np.ndarray, n: int) -> np.ndarray:
    import torch

    wt = torch.from_numpy(w)
    x0 = torch.zeros(w.shape[1], n, n, dtype=wt.dtype)

    def layer(x):
        return torch.nn.functional.conv2d(x[None], wt, padding=1)[0]

    jac = torch.func.jacrev(layer)(x0)
    return jac.reshape(w.shape[0] * n * n, -1).numpy()


def nd_peer_table(sizes: Sizes, rng: np.random.Generator) -> tuple[str, list[str]]:
    """The 2-D layer against what users write today (same matrix checked first)."""
    rows: list[list[str]] = []
    skipped: list[str] = []
    smoke = sizes is SMOKE

    def compare(case, peer_name, project, peer, target, *, rounds, peer_peak=True):
        p_project, m = peak_memory(project)
        # tracemalloc slows allocation-heavy Python a lot and does not see torch's memory
        p_peer, ref = peak_memory(peer) if peer_peak else (0, peer())
        if not same_matrix(m, ref):
            raise AssertionError(f"{peer_name} built a different matrix for {case}")
        del m, ref
        t = interleaved({"project": project, "peer": peer}, rounds=rounds)
        speedup = t["peer"] / t["project"]
        met = "—" if smoke else ("yes" if speedup >= target else "**no**")
        rows.append(
            [
                case,
                peer_name,
                ms(t["project"]),
                ms(t["peer"]),
                f"{speedup:,.1f}x",
                f">= {target}x",
                met,
                f"{p_project / MB:,.1f}",
                f"{p_peer / MB:,.1f}" if peer_peak else "n/a (torch)",
            ]
        )

    c, n = sizes.kron
    w = rng.standard_normal((c, c, 3, 3))
    compare(
        f"2-D {c}->{c}, 3x3, padding 1, {n}x{n}",
        "block-wise `scipy.sparse.kron` of 1-D selection matrices",
        lambda: tc.conv2d_matrix(w, n, padding=1),
        lambda: _kron_assembly(w, n),
        20,
        rounds=1,
    )
    try:
        import torch  # noqa: F401
    except ImportError:
        skipped.append("one-hot probing and jacrev (torch not installed)")
    else:
        c, n = sizes.probe
        w = rng.standard_normal((c, c, 3, 3))
        compare(
            f"2-D {c}->{c}, 3x3, padding 1, {n}x{n}",
            "one-hot probing through `F.conv2d` (batches of 1024)",
            lambda: tc.conv2d_matrix(w, n, padding=1),
            lambda: _one_hot_probing(w, n),
            100,
            rounds=sizes.slow_rounds,
            peer_peak=False,
        )
        c, n = sizes.jac
        w = rng.standard_normal((c, c, 3, 3))
        compare(
            f"2-D {c}->{c}, 3x3, padding 1, {n}x{n}",
            "`torch.func.jacrev` (dense)",
            lambda: tc.conv2d_matrix(w, n, padding=1),
            lambda: _jacrev(w, n),
            100,
            rounds=sizes.slow_rounds,
            peer_peak=False,
        )
    header = [
        "case",
        "peer",
        "project (ms)",
        "peer (ms)",
        "speed-up",
        "target",
        "met",
        "project peak (MiB)",
        "peer peak (MiB)",
    ]
    return markdown_table(header, rows), skipped


# -- scaling --------------------------------------------------------------------------------


def scaling_table(sizes: Sizes, rng: np.random.Generator) -> str:
    w = rng.standard_normal(9)
    rows = []
    for n in sizes.scaling:

        def build(n=n):
            return tc.conv1d_matrix(w, n, padding=4)

        build()
        peak, m = peak_memory(build)
        spec = [(a.size, a.dtype) for a in result_arrays(m)]
        nnz = m.nnz
        del m
        contenders = {"project": build, "floor": fill_floor(spec)}
        t = interleaved(contenders, rounds=sizes.rounds, number="auto")
        rows.append(
            [
                f"{n:,}",
                f"{nnz:,}",
                ms(t["project"]),
                f"{t['project'] / nnz * 1e9:.2f}",
                f"{peak / MB:,.1f}",
                f"{peak / nnz:.2f}",
                f"{t['project'] / t['floor']:.2f}",
            ]
        )
    header = [
        "n",
        "nnz",
        "time (ms)",
        "ns / nonzero",
        "peak (MiB)",
        "peak bytes / nonzero",
        "project / floor",
    ]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round (CI)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    rng = np.random.default_rng(0)

    print(f"# Construction benchmark{' (smoke: tiny sizes, not a measurement)' * args.smoke}\n")
    print(f"Machine: {machine()}; scipy {scipy.__version__}; builder threads: ", end="")
    print(f"{_threads.max_threads()}.\n")
    print("## Against the floor (allocate and fill fresh arrays of the result's size)\n")
    print(floor_table(sizes, rng), "\n", flush=True)
    print("## Against the peers (same run, same sizes, same matrix checked)\n")
    table, skipped = peer_table(sizes, rng)
    print(table, "\n")
    print(f"Skipped peers: {', '.join(skipped) if skipped else 'none'}.\n")
    print("## N-d against the floor\n")
    print(nd_floor_table(sizes, rng), "\n", flush=True)
    print("## N-d against the peers (same run, same matrix checked)\n")
    table, skipped = nd_peer_table(sizes, rng)
    print(table, "\n")
    print(f"Skipped peers: {', '.join(skipped) if skipped else 'none'}.\n", flush=True)
    print("## Scaling: one channel, K=9, padding 4, CSR\n")
    print(scaling_table(sizes, rng), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

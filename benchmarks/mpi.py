"""The distributed operator and matrix: measured on R ranks, several runs, a cost model fitted.

One run, under MPI (the figures are per communicator)::

    mpiexec -n 2 python -m mpi4py benchmarks/mpi.py            # one run (a minute)
    mpiexec -n 2 python -m mpi4py benchmarks/mpi.py --smoke    # tiny sizes, for CI (seconds)

The sweep the README quotes, from a plain ``python`` (it launches the runs itself)::

    python benchmarks/mpi.py --sweep                          # 2, 3, 4 ranks x 3 runs
    python benchmarks/mpi.py --sweep --ranks 2 3 --runs 2      # fewer

What one run measures (best of N rounds, the slowest rank's time):

* a distributed forward + adjoint product on one rank (rank 0 alone on ``COMM_SELF``)
  and on all ``R`` ranks, and the single-process operator (``conv1d_operator``) on the
  whole signal: the difference at ``R = 1`` is the distributed wrapper's own cost
  (buffer copies, the window gather, the ``DistributedArray`` s and the collective
  checks);
* each rank's local compute alone (the single-process operator on its window, all
  ranks at once), the halo bytes per product against the slab bytes, and ping-pong
  latency (median and best of many messages) and bandwidth between ranks 0 and 1;
* row-block assembly of a one-channel matrix: the ranks building their rows
  (:func:`toeplitz_conv.mpi.local_matrix`) against one process building it whole.

The sweep repeats a run ``--runs`` times per rank count, reports each figure as the
range over the runs, and fits the cost model

    ``T(R) = (a + w) n / min(R, P) + c [R > 1]``

(``n`` samples, ``P`` cores: ranks beyond the cores time-share them) by least squares
to every measured distributed product time, ``R = 1`` included, with each point's
residual: ``a`` is the single-process operator's time per sample, ``w`` the
distributed wrapper's, ``c`` the fixed cost of a product on several ranks. On a
machine with fewer cores than ranks (mpich oversubscribes without any option) ``R > P``
measures time-sharing, not scaling; the output says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

# One thread per rank (the ranks are the parallelism), set before numpy loads its BLAS.
for _name in ("TOEPLITZ_CONV_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine, markdown_table  # noqa: E402

_TAG = "MPI-BENCH-JSON "
CHANNELS, K = 8, 9


def idle_until_done(comm) -> None:
    """Wait at a barrier without spinning (the other ranks are timing on few cores)."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.002)


def best_time(fn, comm, rounds: int) -> float:
    """Best over `rounds` of the slowest rank's wall time for one ``fn()`` (collective)."""
    from mpi4py import MPI

    fn()
    best = math.inf
    for _ in range(rounds):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        best = min(best, comm.allreduce(time.perf_counter() - start, op=MPI.MAX))
    return best


def on_rank0_alone(world, fn):
    """``fn()`` on rank 0 (on ``COMM_SELF``) while the others idle; its result everywhere."""
    result = fn() if world.Get_rank() == 0 else None
    idle_until_done(world)
    return world.bcast(result, root=0)


def ping_pong(world, nbytes: int, rounds: int) -> list[float]:
    """One-way times of `rounds` messages of `nbytes` between ranks 0 and 1 (others idle)."""
    buf = np.zeros(max(nbytes, 1), dtype=np.uint8)
    rank = world.Get_rank()
    times = []
    if rank <= 1:
        pair = world.Split(0, rank)
        for _ in range(rounds):
            pair.Barrier()
            start = time.perf_counter()
            if rank == 0:
                pair.Send(buf, dest=1)
                pair.Recv(buf, source=1)
            else:
                pair.Recv(buf, source=0)
                pair.Send(buf, dest=0)
            times.append((time.perf_counter() - start) / 2)
        pair.Free()
    else:
        world.Split(1, rank).Free()
    idle_until_done(world)
    return world.bcast(times, root=0)


def one_run(smoke: bool) -> dict | None:
    """Every figure of one run on this communicator; the dict on rank 0, None elsewhere."""
    from mpi4py import MPI

    import toeplitz_conv as tc
    from toeplitz_conv.mpi import local_matrix, mpi_conv_operator

    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    rounds = 2 if smoke else 5
    length = 4_000 if smoke else 200_000
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((CHANNELS, CHANNELS, K)) / np.sqrt(CHANNELS * K)

    def product(comm):
        op = mpi_conv_operator(weight, length, padding="same", comm=comm)
        x = op.make_array(np.random.default_rng(comm.Get_rank()).standard_normal(op.input_shape))
        return best_time(lambda: op.H @ (op @ x), comm, rounds), op

    def bare() -> float:
        ref = tc.conv1d_operator(weight, length, padding="same")
        v = rng.standard_normal(ref.shape[1])
        return best_time(lambda: ref.H @ (ref @ v), MPI.COMM_SELF, rounds)

    single = on_rank0_alone(world, lambda: product(MPI.COMM_SELF)[0])
    whole = on_rank0_alone(world, bare)
    many, op = product(world)
    window = op._window
    local = tc.conv1d_operator(weight, window)
    v = rng.standard_normal(local.shape[1])
    compute = best_time(lambda: local.H @ (local @ v), world, rounds)

    halo_rows = sum(p.halo for p in op.slabs)
    slab_bytes = max(p.size for p in op.slabs) * CHANNELS * 8
    latency = bandwidth = None
    if size >= 2:
        small = world.bcast(max(op.halo_bytes, 8), root=0)
        lat = ping_pong(world, small, 20 if smoke else 400)
        big = ping_pong(world, slab_bytes, 3 if smoke else 10)
        latency = {"median": float(np.median(lat)), "best": float(min(lat))}
        bandwidth = slab_bytes / max(min(big) - latency["best"], 1e-9)

    big_length = 200_000 if smoke else 4_000_000
    w1 = np.random.default_rng(1).standard_normal(5)  # the same on every rank
    assembly_whole = on_rank0_alone(
        world,
        lambda: best_time(lambda: tc.conv1d_matrix(w1, big_length, padding=2), MPI.COMM_SELF, 2),
    )
    assembly_blocks = best_time(lambda: local_matrix(w1, big_length, padding=2), world, 2)
    if rank != 0:
        return None
    return {
        "ranks": size,
        "cores": os.cpu_count(),
        "samples": length,
        "product_1_rank_ms": single * 1e3,
        "product_R_ranks_ms": many * 1e3,
        "single_process_operator_ms": whole * 1e3,
        "per_rank_compute_ms": compute * 1e3,
        "halo_bytes": 2 * halo_rows * CHANNELS * 8,  # forward exchange + reverse exchange
        "slab_bytes": slab_bytes,
        "latency_us": None if latency is None else {k: t * 1e6 for k, t in latency.items()},
        "bandwidth_GBps": None if bandwidth is None else bandwidth / 1e9,
        "assembly_samples": big_length,
        "assembly_whole_s": assembly_whole,
        "assembly_blocks_s": assembly_blocks,
    }


def blas() -> str:
    """The BLAS threadpools loaded (threadpoolctl), one line."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    import scipy.linalg  # noqa: F401  (load scipy's BLAS too, so that it is listed)

    return "; ".join(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
        f"{i.get('num_threads')} thread(s)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )


def report_run(r: dict) -> str:
    """One run as text."""
    R = r["ranks"]
    lines = [
        f"# toeplitz_conv.mpi on {R} ranks ({r['cores']} cores): {machine()}",
        f"BLAS: {blas()}",
        f"layer: {CHANNELS} -> {CHANNELS} channels, K = {K}, padding='same', {r['samples']} "
        "samples, float64; forward + adjoint per product",
        "",
        markdown_table(
            ["", "ms"],
            [
                ["single-process conv1d_operator, whole signal", r["single_process_operator_ms"]],
                ["distributed operator, 1 rank", r["product_1_rank_ms"]],
                [f"distributed operator, {R} ranks", r["product_R_ranks_ms"]],
                [f"per-rank compute alone, {R} ranks at once", r["per_rank_compute_ms"]],
            ],
        ),
        "",
        f"halo per product (all ranks, forward + adjoint): {r['halo_bytes']} bytes against "
        f"{r['slab_bytes']} bytes of input per rank",
    ]
    if r["latency_us"]:
        lines.append(
            f"messages between two ranks: latency {r['latency_us']['median']:.1f} us median "
            f"({r['latency_us']['best']:.1f} best), bandwidth {r['bandwidth_GBps']:.2f} GB/s"
        )
    lines.append(
        f"assembly of a 1-channel K = 5 matrix, {r['assembly_samples']} samples: one process "
        f"{r['assembly_whole_s']:.3f} s, {R} ranks' row blocks {r['assembly_blocks_s']:.3f} s"
    )
    if R > r["cores"]:
        lines.append(f"({R} ranks on {r['cores']} cores: oversubscribed, the ranks time-share)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the sweep
def launch(ranks: int, smoke: bool, timeout: float) -> dict:
    """One run on `ranks` ranks in a fresh ``mpiexec`` job; its figures."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = beside if os.access(beside, os.X_OK) else "mpiexec"
    command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py", __file__, "--json"]
    command += ["--smoke"] if smoke else []
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    line = next(t for t in done.stdout.splitlines() if t.startswith(_TAG))
    return json.loads(line[len(_TAG) :])


def span(values) -> str:
    """``lo-hi`` of the values (3 significant digits), or the one value."""
    lo, hi = min(values), max(values)
    return f"{lo:.3g}" if f"{lo:.3g}" == f"{hi:.3g}" else f"{lo:.3g}-{hi:.3g}"


def fit(runs: list[dict]) -> tuple[float, float, float, list[tuple[int, float, float]]]:
    """The cost model fitted to the runs: ``T(R) = A n / min(R, P) + c [R > 1]``.

    ``A`` and ``c`` by least squares on every distributed product time (``R = 1``
    included); ``A`` is then split into ``a``, the single-process operator's time per
    sample (the median of its runs), and ``A - a``, the distributed wrapper's. Returns
    ``(a, A - a, c, [(R, measured, model), ...])``, times in ms.
    """
    points = []
    for r in runs:
        points.append((1, r["product_1_rank_ms"], r["samples"], r["cores"]))
        points.append((r["ranks"], r["product_R_ranks_ms"], r["samples"], r["cores"]))
    M = np.array([[n / min(R, P), float(R > 1)] for R, _, n, P in points])
    t = np.array([T for _, T, _, _ in points])
    A, c = np.linalg.lstsq(M, t, rcond=None)[0]
    a = float(np.median([r["single_process_operator_ms"] / r["samples"] for r in runs]))
    model = [(R, T, float(row @ (A, c))) for (R, T, _, _), row in zip(points, M, strict=True)]
    return a, float(A) - a, float(c), model


def report_sweep(runs: list[dict]) -> str:
    ranks = sorted({r["ranks"] for r in runs})
    cores = runs[0]["cores"]
    by = {R: [r for r in runs if r["ranks"] == R] for R in ranks}
    n_runs = min(len(v) for v in by.values())
    lines = [
        f"# toeplitz_conv.mpi: {n_runs} runs on each of {ranks} ranks: {machine()}",
        f"BLAS: {blas()}",
        f"layer: {CHANNELS} -> {CHANNELS} channels, K = {K}, padding='same', "
        f"{runs[0]['samples']} samples, float64; forward + adjoint per product; "
        "each figure the range over the runs (each run: best of its rounds)",
    ]
    if max(ranks) > cores:
        lines.append(
            f"{cores} cores: runs on more than {cores} ranks are oversubscribed (mpich needs "
            "no option for it); they measure time-sharing, not scaling"
        )
    rows = []
    for R in ranks:
        rs = by[R]
        lat = [r["latency_us"]["median"] for r in rs]
        rows.append(
            [
                R,
                span([r["single_process_operator_ms"] for r in rs]),
                span([r["product_1_rank_ms"] for r in rs]),
                span([r["product_R_ranks_ms"] for r in rs]),
                span([r["product_1_rank_ms"] / r["product_R_ranks_ms"] for r in rs]),
                span([r["per_rank_compute_ms"] for r in rs]),
                span(lat),
                span([r["bandwidth_GBps"] for r in rs]),
                span([r["assembly_whole_s"] for r in rs]),
                span([r["assembly_blocks_s"] for r in rs]),
            ]
        )
    lines += [
        "",
        markdown_table(
            [
                "ranks",
                "single-process op (ms)",
                "distributed, 1 rank (ms)",
                "distributed, R ranks (ms)",
                "speed-up",
                "per-rank compute (ms)",
                "latency, median (us)",
                "bandwidth (GB/s)",
                f"assembly, one process (s, {runs[0]['assembly_samples']} samples)",
                "assembly, R ranks (s)",
            ],
            rows,
        ),
        "",
        "halo per product (forward + adjoint, all ranks): "
        + ", ".join(f"{R} ranks {by[R][0]['halo_bytes']} bytes" for R in ranks)
        + f", against {by[ranks[0]][0]['slab_bytes']} bytes of slab per rank on {ranks[0]}",
    ]
    a, w, c, pts = fit(runs)
    lines += [
        "",
        f"fitted to all {len(pts)} distributed product times: T(R) = (a + w) n / min(R, {cores})"
        f" + c [R > 1], n = {runs[0]['samples']} samples: a = {a * 1e6:.0f} ns per sample (the "
        f"single-process operator), w = {w * 1e6:.0f} ns per sample (the distributed wrapper: "
        f"copies, window, vectors), c = {c:.1f} ms per product on more than one rank (halo "
        "exchanges, collective checks, waiting)",
        "",
        markdown_table(
            ["ranks", "measured (ms)", "model (ms)", "residual, worst (%)"],
            [
                [
                    R,
                    span([T for RR, T, _ in pts if RR == R]),
                    f"{next(m for RR, _, m in pts if RR == R):.3g}",
                    f"{max(abs(T - m) / T for RR, T, m in pts if RR == R) * 100:.0f}",
                ]
                for R in sorted({p[0] for p in pts})
            ],
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--json", action="store_true", help="one JSON line (for --sweep)")
    parser.add_argument("--sweep", action="store_true", help="launch the runs, fit, report")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--raw", help="--sweep: also write every run's figures to this JSON file")
    parser.add_argument("--report", help="report the runs saved by --raw (no new runs)")
    args = parser.parse_args()
    if args.report:
        with open(args.report) as file:
            print(report_sweep(json.load(file)["runs"]), flush=True)
        return
    if args.sweep:
        runs = []
        load = os.getloadavg()[0]
        for _ in range(args.runs):  # interleaved: a slow spell hits every rank count
            for R in args.ranks:
                runs.append(launch(R, args.smoke, args.timeout))
                print(f"  {R} ranks: {runs[-1]['product_R_ranks_ms']:.1f} ms", file=sys.stderr)
        loads = f"{load:.1f} before the runs, {os.getloadavg()[0]:.1f} after"
        print(report_sweep(runs), flush=True)
        print(f"load average (1 min) of the machine: {loads}")
        if args.raw:
            with open(args.raw, "w") as file:
                json.dump({"load_average": loads, "runs": runs}, file, indent=1)
        return
    result = one_run(args.smoke)
    if result is not None:
        print(_TAG + json.dumps(result) if args.json else report_run(result), flush=True)


if __name__ == "__main__":
    main()

"""Export at scale (issue 17.5): ``save_matrix`` against scipy's writers, time and peak memory.

Usage::

    python benchmarks/export.py                  # the issue's matrix: 64 -> 64, 3x3 on 56x56,
                                                 # float32 (113M nonzeros, 0.9 GB), ~10 minutes
    python benchmarks/export.py --channels 32    # a quarter of it (28M nonzeros)
    python benchmarks/export.py --smoke          # 8 channels on 28x28, seconds (CI)
    python benchmarks/export.py --only mtx npz   # some formats only

Every writer runs in a fresh interpreter that builds the matrix (CSR, as ``conv2d_matrix``
returns it), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), writes the file
and reads the peak (``VmHWM``): memory that scipy's C++ Matrix Market writer allocates is
counted, which tracemalloc would not see. "peak / matrix" is ``(matrix + the writer's
peak beyond the RSS it started from) / matrix``: 1.0 means the writer allocated nothing of
note. Each pair (ours, scipy's) is run in turn, ``--rounds`` times, best of each kept; the
figures are ratios of the same run. The peers:

* ``.mtx``: ``scipy.io.mmwrite(path, M)`` (what ``save_matrix`` called before);
* ``.npz``: ``scipy.sparse.save_npz(path, M, compressed=...)``;
* ``.mat``: ``scipy.io.savemat(path, {"M": M}, do_compression=...)``.

Each written file is read back by scipy's reader once (at ``--smoke`` size) and compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine, markdown_table

#: name -> (format, what the child runs with `M` and `path`)
WRITERS = {
    "ours .mtx": ("mtx", "tc.save_matrix(M, path)"),
    "scipy.io.mmwrite": ("mtx", "scipy.io.mmwrite(path, M)"),
    "ours .npz": ("npz", "tc.save_matrix(M, path)"),
    "scipy save_npz": ("npz", "sp.save_npz(path, M)"),
    "ours .npz compress=False": ("npz", "tc.save_matrix(M, path, compress=False)"),
    "scipy save_npz compressed=False": ("npz", "sp.save_npz(path, M, compressed=False)"),
    "ours .mat": ("mat", "tc.save_matrix(M, path)"),
    "scipy savemat": ("mat", "scipy.io.savemat(path, {'M': M}, do_compression=True)"),
    "ours .mat compress=False": ("mat", "tc.save_matrix(M, path, compress=False)"),
    "scipy savemat uncompressed": ("mat", "scipy.io.savemat(path, {'M': M})"),
}
PAIRS = [
    ("ours .mtx", "scipy.io.mmwrite"),
    ("ours .npz", "scipy save_npz"),
    ("ours .npz compress=False", "scipy save_npz compressed=False"),
    ("ours .mat", "scipy savemat"),
    ("ours .mat compress=False", "scipy savemat uncompressed"),
]

_CHILD = """
import gc, json, sys, time
import numpy as np, scipy.io, scipy.sparse as sp
import toeplitz_conv as tc

channels, side, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
w = np.random.default_rng(0).standard_normal((channels, channels, 3, 3)).astype(np.float32)
M = tc.conv2d_matrix(w, (side, side), padding=1)
del w
gc.collect()


def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # reset the peak-RSS mark: the build's peak is not the writer's
before = status("VmRSS")
start = time.perf_counter()
exec(sys.argv[4])
elapsed = time.perf_counter() - start
print(json.dumps({
    "time": elapsed,
    "extra": status("VmHWM") - before,
    "matrix": M.data.nbytes + M.indices.nbytes + M.indptr.nbytes,
    "nnz": M.nnz,
    "size": __import__("os").path.getsize(path),
}))
"""


def run_child(channels: int, side: int, code: str, path: str) -> dict[str, float]:
    """One writer in a fresh interpreter: its time, peak extra RSS, the matrix and file size."""
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(channels), str(side), path, code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def check_files(folder: str) -> None:
    """Every writer's file, at a small size, read back by scipy's reader: the same matrix."""
    import scipy.io
    import scipy.sparse as sp

    import toeplitz_conv as tc

    w = np.random.default_rng(1).standard_normal((4, 4, 3, 3)).astype(np.float32)
    M = tc.conv2d_matrix(w, (9, 9), padding=1)
    for name, (fmt, code) in WRITERS.items():
        path = os.path.join(folder, f"check.{fmt}")
        exec(code, {"tc": tc, "sp": sp, "scipy": scipy, "M": M, "path": path})
        if fmt == "mtx":
            back = scipy.io.mmread(path)
        elif fmt == "npz":
            back = sp.load_npz(path)
        else:
            back = scipy.io.loadmat(path)["M"]
        if not np.array_equal(sp.csr_array(back).toarray().astype(np.float32), M.toarray()):
            raise AssertionError(f"{name} wrote a different matrix")
        os.unlink(path)


def threads_line() -> str:
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    info = threadpoolctl.threadpool_info()
    return "; ".join(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
        f"x{i.get('num_threads')}"
        for i in info
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--side", type=int, default=56)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", nargs="+", choices=["mtx", "npz", "mat"])
    parser.add_argument("--dir", default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    if args.smoke:
        args.channels, args.side = 8, 28
    pairs = [p for p in PAIRS if args.only is None or WRITERS[p[0]][0] in args.only]

    print(machine())
    print(f"numpy threads: {threads_line()}")
    print(
        f"matrix: conv2d, {args.channels} -> {args.channels} channels, 3x3 "
        f"on {args.side}x{args.side}, padding 1, float32 CSR; {args.rounds} round(s)\n"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        check_files(folder)
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for pair in pairs:
                for name in pair:
                    fmt, code = WRITERS[name]
                    path = os.path.join(folder, f"m.{fmt}")
                    result = run_child(args.channels, args.side, code, path)
                    os.unlink(path)
                    old = best.get(name)
                    if old is None:
                        best[name] = result
                    else:  # best of each figure over the rounds
                        old["time"] = min(old["time"], result["time"])
                        old["extra"] = min(old["extra"], result["extra"])
    first = next(iter(best.values()))
    print(f"nonzeros: {first['nnz']:,}; matrix: {first['matrix'] / 1e9:.2f} GB\n")
    rows = []
    for ours, theirs in pairs:
        a, b = best[ours], best[theirs]
        matrix = a["matrix"]
        rows.append(
            [
                ours,
                theirs,
                f"{a['time']:.1f} s",
                f"{b['time']:.1f} s",
                f"{a['time'] / b['time']:.2f}",
                f"{(matrix + a['extra']) / matrix:.2f}",
                f"{(matrix + b['extra']) / matrix:.2f}",
                f"{a['size'] / 1e9:.2f} / {b['size'] / 1e9:.2f} GB",
            ]
        )
    header = ["ours", "peer", "time ours", "time peer", "time ratio", "peak / matrix ours",
              "peak / matrix peer", "file ours / peer"]  # fmt: skip
    print(markdown_table(header, rows))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M:%S')}; rerun: python benchmarks/export.py "
          + " ".join(sys.argv[1:]))  # fmt: skip


if __name__ == "__main__":
    main()

"""Issue 8's analysis cases: does each answer, how fast, and how tight.

Each case runs in a fresh subprocess with a wall-clock cap (``--cap`` seconds,
default 120), so a case that hangs is reported as such instead of stopping the
run. Absolute times on a shared machine are indicative only.

    python benchmarks/bounded.py             # every case
    python benchmarks/bounded.py analyze k5  # some of them
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/bounded.py resnet512 resnet256s2 resnet256 resnet128 nd_zeros40

(the block-Cholesky certificate uses every core's BLAS thread: leave
``OPENBLAS_NUM_THREADS`` unset, and quote a two-thread dgemm's rate beside the
times, since another tenant on a shared host can take the second core).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CASES = {
    "analyze": (
        "toeplitz-conv analyze, 16 -> 16, K=5, L=4096, padding 2",
        """
import numpy as np, sys
from toeplitz_conv.cli import main
np.save(TMP + "/w16.npy", np.random.default_rng(0).standard_normal((16, 16, 5)))
main(["analyze", "--weight", TMP + "/w16.npy", "--length", "4096", "--padding", "2"])
""",
    ),
    "k5": (
        "singular_values(w, 8192, k=5), 64 -> 64, K=3, padding 1",
        """
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(0).standard_normal((64, 64, 3))
print(tc.singular_values(w, 8192, k=5, padding=1))
""",
    ),
    "reflect": (
        "spectral_norm_bounds, 16 -> 16, K=5, L=8192, padding 2, reflect",
        """
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(0).standard_normal((16, 16, 5))
lo, hi = tc.spectral_norm_bounds(w, 8192, padding=2, padding_mode="reflect")
print(f"[{lo:.8g}, {hi:.8g}] relative width {(hi - lo) / hi:.2e}")
""",
    ),
    "cond_reflect": (
        "condition_number, 16 -> 16, K=5, L=8192, padding 2, reflect",
        """
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(0).standard_normal((16, 16, 5))
print(tc.condition_number(w, 8192, padding=2, padding_mode="reflect"))
""",
    ),
    "cond_replicate": (
        "condition_number(rng(0).standard_normal(3), 2049, padding=(2, 0), replicate)"
        " (numpy: 1.7945)",
        """
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(0).standard_normal(3)
print(tc.condition_number(w, 2049, padding=(2, 0), padding_mode="replicate"))
""",
    ),
    "cond_singular": (
        "condition_number(rng(0).standard_normal((2, 2, 3)), 1030, padding=(2, 0)) (dense: inf)",
        """
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(0).standard_normal((2, 2, 3))
print(tc.condition_number(w, 1030, padding=(2, 0)))
""",
    ),
    "nd_ones": (
        "issue 14.4: spectral_norm_bounds(ones((1, 1, 3, 3)), (64, 64), padding=1, replicate,"
        " maxiter=500, time_limit=30) (the norm is 9)",
        """
import numpy as np, toeplitz_conv as tc
lo, hi = tc.spectral_norm_bounds(np.ones((1, 1, 3, 3)), (64, 64), padding=1,
                                 padding_mode="replicate", maxiter=500, time_limit=30)
print(f"[{lo:.10g}, {hi:.10g}] relative width {(hi - lo) / hi:.2e}")
""",
    ),
    "nd_reflect": (
        "issue 14.4: spectral_norm_bounds, 16 -> 16, 3x3 on 32x32, padding 1, reflect and"
        " replicate, rtol=1e-3 and 1e-6 (random normal weights)",
        """
import time, numpy as np, toeplitz_conv as tc
w = np.random.default_rng(0).standard_normal((16, 16, 3, 3))
for mode in ("reflect", "replicate"):
    for rtol in (1e-3, 1e-6):
        t = time.perf_counter()
        lo, hi = tc.spectral_norm_bounds(w, (32, 32), padding=1, padding_mode=mode, rtol=rtol)
        print(f"{mode} rtol={rtol:g}: [{lo:.10g}, {hi:.10g}] relative width "
              f"{(hi - lo) / hi:.2e}, {time.perf_counter() - t:.1f} s")
""",
    ),
    "nd_zeros40": (
        "issue 17.3: spectral_norm_bounds, 16 -> 16, 3x3 on 40x40, padding 1, rtol=1e-4 (He init)",
        """
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(1).standard_normal((16, 16, 3, 3)) * np.sqrt(2 / 144)
lo, hi = tc.spectral_norm_bounds(w, (40, 40), padding=1, rtol=1e-4)
print(f"[{lo:.10g}, {hi:.10g}] relative width {(hi - lo) / hi:.2e}")
""",
    ),
}
for _name, (_c, _n, _seed, _scale, _init) in {
    "nd_reflect64": (16, 64, 0, "1.0", "random normal weights; the whole-Gram certificate"),
    "nd_reflect56": (64, 56, 1, "np.sqrt(2 / (9 * 64))", "He init; past its cap: edge strips"),
    "nd_reflect128": (16, 128, 0, "1.0", "random normal weights; past its cap: edge strips"),
}.items():
    CASES[_name] = (
        f"issue 14.4: spectral_norm_bounds, {_c} -> {_c}, 3x3 on {_n}x{_n}, padding 1, reflect"
        f" and replicate, rtol=1e-3 ({_init})",
        f"""
import time, numpy as np, toeplitz_conv as tc
w = np.random.default_rng({_seed}).standard_normal(({_c}, {_c}, 3, 3)) * {_scale}
for mode in ("reflect", "replicate"):
    t = time.perf_counter()
    lo, hi = tc.spectral_norm_bounds(w, ({_n}, {_n}), padding=1, padding_mode=mode, rtol=1e-3)
    print(f"{{mode}}: [{{lo:.10g}}, {{hi:.10g}}] relative width "
          f"{{(hi - lo) / hi:.2e}}, {{time.perf_counter() - t:.1f}} s")
""",
    )
for _c, _n in ((512, 7), (256, 14), (128, 28), (64, 56)):
    CASES[f"resnet{_c}"] = (
        f"issue 17.3: spectral_norm_bounds, ResNet-18 {_c} -> {_c}, 3x3 on {_n}x{_n}, padding 1,"
        " rtol=1e-3 (He init)",
        f"""
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(1).standard_normal(({_c}, {_c}, 3, 3)) * np.sqrt(2 / (9 * {_c}))
lo, hi = tc.spectral_norm_bounds(w, ({_n}, {_n}), padding=1, rtol=1e-3)
print(f"[{{lo:.10g}}, {{hi:.10g}}] relative width {{(hi - lo) / hi:.2e}}")
""",
    )


CASES["resnet256s2"] = (
    "spectral_norm_bounds, ResNet-18 256 -> 512, 3x3 stride 2 on 14x14, padding 1, rtol=1e-3"
    " (He init; the certificate factorises M M^H: 512 channels on 7x7)",
    """
import numpy as np, toeplitz_conv as tc
w = np.random.default_rng(1).standard_normal((512, 256, 3, 3)) * np.sqrt(2 / (9 * 256))
lo, hi = tc.spectral_norm_bounds(w, (14, 14), stride=2, padding=1, rtol=1e-3)
print(f"[{lo:.10g}, {hi:.10g}] relative width {(hi - lo) / hi:.2e}")
""",
)


def _blas_info(env: dict) -> str:
    """Which BLAS kernels numpy runs in the cases' environment (threadpoolctl, if installed)."""
    code = (
        "import numpy, threadpoolctl\n"
        "for i in threadpoolctl.threadpool_info():\n"
        "    print(i.get('internal_api'), i.get('architecture'), i.get('num_threads'), "
        "i.get('prefix'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return done.stdout.strip() or f"(threadpoolctl not available: {done.stderr.strip()[-80:]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"some of {', '.join(CASES)} (default: all)")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per case")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.environ.get("TOEPLITZ_CONV_SRC", os.path.join(here, "..", "src"))
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    print("BLAS (threadpoolctl):", _blas_info(env).replace("\n", "; "))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases or list(CASES):
            title, code = CASES[name]
            start = time.perf_counter()
            try:
                done = subprocess.run(
                    [sys.executable, "-c", f"TMP = {tmp!r}\n{code}"],
                    capture_output=True,
                    text=True,
                    timeout=args.cap,
                    env=env,
                )
                elapsed = time.perf_counter() - start
                status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
                output = (done.stdout + done.stderr).strip().splitlines()
            except subprocess.TimeoutExpired:
                elapsed = time.perf_counter() - start
                status, output = f"no answer within {args.cap:.0f} s", []
            print(f"## {name}: {title}\n{status}, {elapsed:.1f} s")
            for line in output[-12:]:
                print(f"    {line}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

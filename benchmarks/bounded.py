"""Issue 8's analysis cases: does each answer, how fast, and how tight.

Each case runs in a fresh subprocess with a wall-clock cap (``--cap`` seconds,
default 120), so a case that hangs is reported as such instead of stopping the
run. Absolute times on a shared machine are indicative only.

    python benchmarks/bounded.py             # every case
    python benchmarks/bounded.py analyze k5  # some of them
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
}


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

"""Shared timing helpers for the benchmarks: interleaved best-of-N and markdown tables.

The machines are shared and noisy, so every comparison is a *ratio* of timings
taken side by side: :func:`interleaved` runs each contender once per round,
round after round, and keeps each one's best time.
"""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["fill_floor", "interleaved", "machine", "markdown_table"]


def interleaved(
    contenders: dict[str, Callable[[], object]], *, rounds: int = 5
) -> dict[str, float]:
    """Best wall time in seconds of each callable, run in turn for `rounds` rounds.

    Results are discarded between calls (and garbage collected) so that each
    call allocates fresh memory, as a user's call would.
    """
    best = {name: float("inf") for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            gc.collect()
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
            del result
            best[name] = min(best[name], elapsed)
    return best


def fill_floor(nbytes_by_dtype: Sequence[tuple[int, np.dtype]]) -> Callable[[], object]:
    """A callable that allocates and fills fresh arrays: the floor of any builder.

    `nbytes_by_dtype` lists ``(length, dtype)`` of the arrays a result holds;
    the callable writes each once (``np.empty`` + ``fill``).
    """

    def fill() -> list[np.ndarray]:
        arrays = []
        for length, dtype in nbytes_by_dtype:
            a = np.empty(length, dtype=dtype)
            a.fill(1)
            arrays.append(a)
        return arrays

    return fill


def machine() -> str:
    """One line saying what this machine is."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render `rows` under `header` as a GitHub markdown table."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)

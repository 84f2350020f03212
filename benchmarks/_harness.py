"""Shared timing helpers for the benchmarks: interleaved best-of-N and markdown tables.

The machines are shared and noisy, so every comparison is a *ratio* of timings
taken side by side: :func:`interleaved` runs each contender once per round,
round after round, and keeps each one's best time.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import platform
import time
import tracemalloc
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np

__all__ = ["fill_floor", "interleaved", "machine", "markdown_table", "peak_memory"]


def _calls_per_timing(fn: Callable[[], object], min_time: float) -> int:
    """How many calls of `fn` take at least `min_time` seconds (one warm-up call)."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(100_000, math.ceil(min_time / once)))


def interleaved(
    contenders: dict[str, Callable[[], object]],
    *,
    rounds: int = 5,
    number: int | Literal["auto"] = 1,
    min_time: float = 0.02,
    clock: Callable[[], float] = time.perf_counter,
    settle: float = 0.0,
) -> dict[str, float]:
    """Best wall time in seconds of each callable, run in turn for `rounds` rounds.

    Results are discarded between calls (and garbage collected) so that each
    call allocates fresh memory, as a user's call would. With ``number > 1``
    each timing covers that many calls and reports the time per call;
    ``number="auto"`` picks, per contender, enough calls to last `min_time`
    (for microsecond-scale calls, where one call is below the clock's noise).
    `clock` defaults to wall time; ``time.process_time`` (this process' CPU time)
    is robust to other jobs preempting a single-threaded run on a loaded machine.
    `settle` seconds pass (untimed) before each timing: threads the previous contender
    left spinning (torch's OpenMP workers wait busily for a while after each call) go
    idle first instead of taking a core from the next one.
    """
    if number == "auto":
        counts = {name: _calls_per_timing(fn, min_time) for name, fn in contenders.items()}
    else:
        counts = dict.fromkeys(contenders, int(number))
    best = {name: float("inf") for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            gc.collect()
            if settle:
                time.sleep(settle)
            start = clock()
            for _ in range(counts[name] - 1):
                fn()
            result = fn()
            elapsed = (clock() - start) / counts[name]
            del result
            best[name] = min(best[name], elapsed)
    return best


def fill_floor(
    nbytes_by_dtype: Sequence[tuple[int, np.dtype]], *, threads: int = 1
) -> Callable[[], object]:
    """A callable that allocates and fills fresh arrays: the floor of any builder.

    `nbytes_by_dtype` lists ``(length, dtype)`` of the arrays a result holds;
    the callable writes each once (``np.empty`` + ``fill``). With ``threads > 1``
    each array is filled in that many slices at once (numpy releases the GIL),
    the floor of a builder that uses as many cores.
    """
    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None

    def fill() -> list[np.ndarray]:
        arrays = []
        for length, dtype in nbytes_by_dtype:
            a = np.empty(length, dtype=dtype)
            if pool is None:
                a.fill(1)
            else:
                bounds = np.linspace(0, length, threads + 1).astype(int)
                parts = [a[lo:hi] for lo, hi in itertools.pairwise(bounds)]
                list(pool.map(lambda part: part.fill(1), parts))
            arrays.append(a)
        return arrays

    return fill


def peak_memory(fn: Callable[[], object]) -> tuple[int, object]:
    """Peak bytes traced by tracemalloc while `fn` runs, and its result.

    numpy reports its array buffers to tracemalloc; memory that other libraries
    allocate outside Python's allocators (torch's tensors) is not seen.
    """
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


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
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
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

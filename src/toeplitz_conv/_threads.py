"""The package's one thread pool (construction chunks, batches of small factorisations).

numpy releases the GIL inside its loops, so filling disjoint slices of one
preallocated output from a few threads uses several cores (and spreads the
page faults of fresh memory over them). The pool is created on first use,
sized to the CPUs this process may run on (``TOEPLITZ_CONV_NUM_THREADS``
overrides), and reset in a forked child. :func:`blas_threads` caps the BLAS's own
threads inside a block (threadpoolctl, when installed).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

__all__ = ["blas_threads", "contiguous_runs", "max_threads", "run", "run_slices"]

T = TypeVar("T")

_PREFIX = "toeplitz_conv"  # the names of the pool's threads
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def max_threads() -> int:
    """Threads to build with: ``TOEPLITZ_CONV_NUM_THREADS``, else the usable CPUs."""
    setting = os.environ.get("TOEPLITZ_CONV_NUM_THREADS", "")
    if setting.strip().isdigit():
        return max(1, int(setting))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _on_pool() -> bool:
    """Whether the calling thread is one of the pool's."""
    return threading.current_thread().name.startswith(_PREFIX)


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=_PREFIX)
            _pool_size = size
        return _pool


def _forget_pool() -> None:  # pragma: no cover - runs in a forked child
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run(
    tasks: Sequence[Callable[[], None]], *, parallel: bool = True, blas: int | None = None
) -> None:
    """Run `tasks` (independent, writing disjoint memory) and re-raise the first error.

    In the calling thread if `parallel` is false, there is one task or one CPU, or the
    caller is itself a task on the pool (a pass that splits its blocks, called from
    tasks that split a batch: waiting on the pool from inside it could leave every
    worker waiting); otherwise on the shared pool, BLAS on at most `blas` threads
    meanwhile when given (:func:`blas_threads`).
    """
    threads = max_threads() if parallel else 1
    if threads < 2 or len(tasks) < 2 or _on_pool():
        for task in tasks:
            task()
        return
    with blas_threads(blas) if blas else contextlib.nullcontext():
        futures = [_executor(threads).submit(task) for task in tasks]
        for future in futures:
            future.result()


def contiguous_runs(items: Sequence[T], count: int) -> list[Sequence[T]]:
    """`items` cut into ``max(1, count)`` runs of consecutive items, as even as can be
    (one run per thread: each thread's blocks side by side in memory)."""
    count = max(1, min(count, len(items)))
    return [items[len(items) * i // count : len(items) * (i + 1) // count] for i in range(count)]


def run_slices(
    work: Callable[[slice], None], count: int, batch: int, *, min_count: int = 4
) -> None:
    """Call ``work(slice)`` over ``range(count)`` in slices of at most `batch` items.

    The slices run on the shared pool (:func:`run`) when there are at least
    `min_count` items and more than one thread; with ``T`` threads the slices
    are made small enough to give each thread work. ``work`` must write
    disjoint memory per slice, so that the result does not depend on the
    number of threads.
    """
    threads = max_threads()
    if threads > 1 and count >= min_count:
        batch = max(1, min(batch, -(-count // threads)))
    slices = [slice(i, min(i + batch, count)) for i in range(0, count, batch)]
    run([functools.partial(work, sl) for sl in slices], parallel=count >= min_count)


@functools.cache
def _blas_controller() -> ThreadpoolController | None:
    """threadpoolctl's controller of the loaded BLAS libraries, if threadpoolctl is installed."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """BLAS on at most `count` threads inside (with threadpoolctl installed; else unchanged).

    Never more than the BLAS runs on now: a limit the user set (``threadpool_limits``,
    ``OPENBLAS_NUM_THREADS``) holds inside too. On the pool's own threads it changes
    nothing: the limit is global and restored on exit, so tasks setting it side by side
    could restore each other's (two Krylov halves, each in an operator that splits its
    blocks, left BLAS on one thread for the rest of the process); a task runs under the
    limit its caller set.
    """
    ctl = _blas_controller()
    if ctl is None or _on_pool():
        yield
        return
    now = [lib.num_threads for lib in ctl.select(user_api="blas").lib_controllers]
    with ctl.limit(limits=max(1, min([count, *now])), user_api="blas"):
        yield

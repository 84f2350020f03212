"""Elapsed-time progress on stderr for the steps that take a while, on terminals only."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import IO

from ._errors import PROG

__all__ = ["PROGRESS_DELAY", "PROGRESS_INTERVAL", "Progress"]

#: Seconds of work before progress appears on a terminal, and between its updates.
PROGRESS_DELAY = 2.0
PROGRESS_INTERVAL = 0.5


class Progress:
    """Writes ``toeplitz-conv: <step> ... 3 s`` to `stream` while a step runs.

    Nothing appears when `stream` is not a terminal, nor for a step shorter than
    :data:`PROGRESS_DELAY`; a step that showed progress ends with its time.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        try:
            self.enabled = stream.isatty()
        except (AttributeError, ValueError):  # pragma: no cover - odd streams
            self.enabled = False

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        start = time.monotonic()
        done = threading.Event()
        shown = threading.Event()

        def tick() -> None:
            if done.wait(PROGRESS_DELAY):
                return
            while not done.is_set():
                shown.set()
                elapsed = time.monotonic() - start
                self.stream.write(f"\r{PROG}: {label} ... {elapsed:.0f} s ")
                self.stream.flush()
                done.wait(PROGRESS_INTERVAL)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            if shown.is_set():
                elapsed = time.monotonic() - start
                self.stream.write(f"\r{PROG}: {label} ... done in {elapsed:.1f} s\n")
                self.stream.flush()

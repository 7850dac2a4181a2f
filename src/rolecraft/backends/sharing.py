"""Several request threads, one engine: whose code runs now, and where a thread lets the others run.

A server runs each model job on a thread of its own (up to `batch_streams` at once), yet only the
thread holding the engine lock runs engine code: caches, the store's objects and the llama.cpp
context of one-at-a-time generation are touched by one thread at a time, as with one thread. A
thread lets go of the lock only inside `waiting()`, while it waits on the model: a batched decoding
step (which produces every active stream's next token), its turn on a context another request holds,
a remote engine's next chunk. Outside a server (CLI, tests, benchmarks) no lock is held and
`waiting()` does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_held = threading.local()  # .lock: the EngineLock this thread holds now, if any


class EngineLock:
    """The lock a job holds while its code runs (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        self._lock.acquire()
        _held.lock = self
        try:
            yield
        finally:
            _held.lock = None
            self._lock.release()


@contextmanager
def waiting() -> Iterator[None]:
    """Let other jobs run engine code while this thread waits on the model (no-op without a lock)."""
    lock: EngineLock | None = getattr(_held, "lock", None)
    if lock is None:
        yield
        return
    _held.lock = None
    lock._lock.release()
    try:
        yield
    finally:
        lock._lock.acquire()
        _held.lock = lock


def released(items: Iterable[T]) -> Iterator[T]:
    """`items`, each one fetched inside `waiting()` (a remote engine's stream: others run meanwhile)."""
    items = iter(items)
    while True:
        with waiting():
            item = next(items, _END)
        if item is _END:
            return
        yield item


_END: Any = object()

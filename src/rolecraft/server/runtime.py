"""The engine of this server process and the one thread allowed to touch its model.

llama.cpp models are not thread-safe, and one generation at a time is all a CPU
backend can do well anyway. Every job that uses the backend (prompt building,
tokenizing, generation, committing a turn) runs on a single worker thread, in
arrival order, so two requests on one session never interleave: the second
one's prompt is built after the first one's turn is stored. The event loop stays
free: a job is a generator run on that thread whose text pieces cross over to
the loop through an asyncio queue. A cancelled job (its client went away) stops
at the next piece; a job that never finishes never reaches its commit, so an
abandoned turn is never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from rolecraft.conversation import Engine

T = TypeVar("T")
Job = Generator[str, None, T]

_PIECE, _DONE, _ERROR, _STOPPED = "piece", "done", "error", "stopped"


class Runtime:
    """An Engine plus the single thread that runs its model work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rolecraft-model")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the model thread and wait for its result."""
        return await asyncio.wrap_future(self._thread.submit(fn, *args))

    def run(self, job: Job[T]) -> Run[T]:
        """A streamed job; nothing starts until its pieces are iterated."""
        return Run(self._thread, job)

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)
        self.engine.close()


class Run(Generic[T]):
    """One job on the model thread: iterate `pieces()`; `result` holds its return value once done."""

    def __init__(self, thread: ThreadPoolExecutor, job: Job[T]) -> None:
        self._thread = thread
        self._job = job
        self._stop = threading.Event()
        self.result: T | None = None

    def cancel(self) -> None:
        """Stop at the next piece (or before starting); the job's code after that point never runs."""
        self._stop.set()

    def _drive(self, put: Callable[[str, Any], None]) -> None:
        try:
            while not self._stop.is_set():
                try:
                    piece = next(self._job)
                except StopIteration as done:
                    put(_DONE, done.value)
                    return
                put(_PIECE, piece)
            self._job.close()
            put(_STOPPED, None)
        except BaseException as exc:  # handed to the waiting request, which re-raises it
            put(_ERROR, exc)

    async def pieces(self) -> AsyncIterator[str]:
        """The job's text pieces as they are produced; leaving early cancels the job."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def put(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        self._thread.submit(self._drive, put)
        try:
            while True:
                kind, value = await queue.get()
                if kind == _PIECE:
                    yield value
                elif kind == _DONE:
                    self.result = value
                    return
                elif kind == _ERROR:
                    raise value
                else:
                    return
        finally:
            self.cancel()

    async def collect(self) -> str:
        """Run to the end and return all the text."""
        return "".join([piece async for piece in self.pieces()])

"""The engine of this server process and the threads allowed to touch its model.

Every job that uses the engine (prompt building, tokenizing, generation, committing
a turn) runs on a model thread, never on the event loop: a job is a generator whose
text pieces cross over to the loop through an asyncio queue. With `batch_streams`
at 1 (the default) there is one model thread and jobs run one after another, in
arrival order. Above 1, that many jobs run at once on their own threads, but only
the one holding the engine lock runs engine code; the others wait on the model
meanwhile (backends/sharing.py): llama.cpp decodes their streams together in one
batch, a remote engine gets their requests concurrently. Jobs given the same key
(a session, a scene) still run one after another, in arrival order: the second
turn's prompt is built after the first turn is stored. A cancelled job (its client
went away) stops at the next piece; a job that never finishes never reaches its
commit, so an abandoned turn is never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from rolecraft.backends.sharing import EngineLock
from rolecraft.conversation import Engine

T = TypeVar("T")
Job = Generator[str, None, T]

_PIECE, _DONE, _ERROR, _STOPPED = "piece", "done", "error", "stopped"


class Runtime:
    """An Engine plus the threads that run its model work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._threads = ThreadPoolExecutor(max_workers=max(1, engine.settings.batch_streams),
                                           thread_name_prefix="rolecraft-model")
        self._lock = EngineLock()
        self._order = KeyedOrder()

    async def call(self, fn: Callable[..., T], *args: Any, key: str | None = None) -> T:
        """Run `fn(*args)` on a model thread and wait for its result (after earlier jobs of `key`)."""
        release = await self._order.enter(key)
        try:
            return await asyncio.wrap_future(self._threads.submit(self._locked, fn, args))
        finally:
            release()

    def _locked(self, fn: Callable[..., T], args: tuple) -> T:
        with self._lock.held():
            return fn(*args)

    def run(self, job: Job[T], key: str | None = None) -> Run[T]:
        """A streamed job (after earlier jobs of `key`); nothing starts until its pieces are iterated."""
        return Run(self, job, key)

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self.engine.close()


class KeyedOrder:
    """Jobs of one key one after another, in arrival order (an asyncio lock per key in use)."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    async def enter(self, key: str | None) -> Callable[[], None]:
        """Wait for this key's earlier jobs; returns the call that lets the next one in."""
        if key is None:
            return lambda: None
        lock, users = self._keys.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1

        def leave() -> None:
            users[0] -= 1
            if not users[0]:
                del self._keys[key]

        try:
            await lock.acquire()
        except BaseException:
            leave()
            raise

        def release() -> None:
            lock.release()
            leave()

        return release


class Run(Generic[T]):
    """One job on the model thread: iterate `pieces()`; `result` holds its return value once done."""

    def __init__(self, runtime: Runtime, job: Job[T], key: str | None) -> None:
        self._runtime, self._key = runtime, key
        self._job = job
        self._stop = threading.Event()
        self.result: T | None = None

    def cancel(self) -> None:
        """Stop at the next piece (or before starting); the job's code after that point never runs."""
        self._stop.set()

    def _drive(self, put: Callable[[str, Any], None]) -> None:
        held = self._runtime._lock.held
        try:
            while not self._stop.is_set():
                with held():
                    try:
                        piece = next(self._job)
                    except StopIteration as done:
                        put(_DONE, done.value)
                        return
                put(_PIECE, piece)
            with held():
                self._job.close()
            put(_STOPPED, None)
        except BaseException as exc:  # handed to the waiting request, which re-raises it
            put(_ERROR, exc)

    async def pieces(self) -> AsyncIterator[str]:
        """The job's text pieces as they are produced; leaving early cancels the job."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def put(kind: str, value: Any) -> None:
            _soon(loop, lambda: queue.put_nowait((kind, value)))

        release = await self._runtime._order.enter(self._key)
        try:
            driven = self._runtime._threads.submit(self._drive, put)
        except BaseException:
            release()
            raise
        driven.add_done_callback(lambda _: _soon(loop, release))  # the next job of this key starts after this one
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


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
        loop.call_soon_threadsafe(fn)

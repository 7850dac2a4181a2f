"""Streamed and long answers that stop the work behind them when the client goes away.

Starlette's StreamingResponse notices a disconnect only when a write fails, and
leaves the body iterator for the garbage collector. `EventStream` also watches
the connection while it waits for the next piece (so a client that leaves while
its request is queued behind another generation cancels it before it starts)
and always closes the iterator, which cancels the model job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator

import anyio
from fastapi import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from rolecraft.errors import RolecraftError
from rolecraft.server.runtime import Run

DONE = "data: [DONE]\n\n"
log = logging.getLogger("rolecraft.server")


def error_event(exc: Exception, what: str) -> str:
    """The SSE event that ends a failed stream: our error as-is, anything else logged and reported as a 500."""
    if isinstance(exc, RolecraftError):
        return event(exc.to_openai())
    log.error("%s failed", what, exc_info=exc)
    return event(RolecraftError("the server hit an internal error; it has been logged", code="internal_error",
                                status=500, type="server_error").to_openai())


def event(payload: dict) -> str:
    """One SSE `data:` event carrying a JSON object."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


class EventStream(StreamingResponse):
    """text/event-stream response over an async generator of already formatted events."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[str, None], headers: dict[str, str] | None = None) -> None:
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self.stream_response(send)
            except OSError:
                pass  # the client went away mid-write
            finally:
                with anyio.CancelScope(shield=True):
                    await self._events.aclose()
                group.cancel_scope.cancel()


async def finish_unless_gone(run: Run, http: Request, pieces: list[str] | None = None) -> bool:
    """Run a job to its end (its text gathered into `pieces` as it comes); False (and the job cancelled)
    if the client hung up first."""
    async def gather() -> None:
        async for piece in run.pieces():
            if pieces is not None:
                pieces.append(piece)

    task = asyncio.ensure_future(gather())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            if not task.done() and await http.is_disconnected():
                return False
        task.result()
        return True
    finally:
        if not task.done():
            task.cancel()
            run.cancel()

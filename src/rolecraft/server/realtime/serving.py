"""One realtime connection: client events into a `Call`, its events out through a bounded outbox.

The sender drains the outbox onto the socket; a client that stops reading
lets the outbox fill, and the call is closed with code 4002 instead of
buffering without end. Input arriving faster than real time ends it with 4001.
Whatever ends the connection, `Call.close` stops the reply in flight, so only
finished turns stay stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from rolecraft.errors import RolecraftError
from rolecraft.server.realtime.protocol import (
    Append,
    Cancel,
    Commit,
    SessionUpdate,
    audio_bytes,
    check_session,
    parse_event,
)
from rolecraft.server.state import ServerState
from rolecraft.voice.call import CLOSE_NOT_READING, Call, CallClosedError

OUTBOX = 128  # events (an audio delta is 100 ms): about 13 s of speech a slow client may fall behind


async def serve_call(ws: WebSocket, state: ServerState, session_id: str) -> None:
    """Run the call until the client leaves or breaks a limit."""
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=OUTBOX)
    stuck = asyncio.Event()

    async def emit(event: dict[str, Any]) -> None:
        try:
            outbox.put_nowait(event)
        except asyncio.QueueFull:
            stuck.set()

    call = await asyncio.to_thread(Call, state.runtime, session_id, emit)
    sender = asyncio.create_task(_send_all(ws, outbox))
    await call.send("session.created", session=call.describe())
    try:
        await _receive_all(ws, call, stuck)
        await ws.close(CLOSE_NOT_READING, "the client is not reading the events")
    except CallClosedError as closed:
        await ws.close(closed.code, closed.reason)
    except WebSocketDisconnect:
        pass
    finally:
        await call.close()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _send_all(ws: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        await ws.send_text(json.dumps(await outbox.get(), ensure_ascii=False))


async def _receive_all(ws: WebSocket, call: Call, stuck: asyncio.Event) -> None:
    """Handle client events until the outbox overflows (returns) or the client disconnects (raises)."""
    blocked = asyncio.create_task(stuck.wait())
    try:
        while True:
            incoming = asyncio.create_task(ws.receive_text())
            await asyncio.wait({incoming, blocked}, return_when=asyncio.FIRST_COMPLETED)
            if not incoming.done():
                incoming.cancel()
                return
            await _handle(call, incoming.result())
            if stuck.is_set():
                return
    finally:
        blocked.cancel()


async def _handle(call: Call, text: str) -> None:
    """One client event; a bad one gets an `error` event and the call goes on."""
    event_id = None
    try:
        event = parse_event(text)
        event_id = event.event_id
        if isinstance(event, Append):
            await call.append(audio_bytes(event))
        elif isinstance(event, SessionUpdate):
            fields = event.session
            check_session(fields)
            extras, hints = fields.rolecraft, fields.input_audio_transcription
            call.update(fields.input_sample_rate, fields.output_sample_rate,
                        hints.language if hints is not None else None,
                        extras.partial_transcripts_s if extras is not None else None)
            await call.send("session.updated", session=call.describe())
        elif isinstance(event, Commit):
            await call.commit()
        elif isinstance(event, Cancel):
            await call.interrupt("client_cancelled")
    except RolecraftError as exc:
        await call.send("error", error={"type": exc.type, "code": exc.code, "message": exc.message,
                                        "param": exc.param, "event_id": event_id})

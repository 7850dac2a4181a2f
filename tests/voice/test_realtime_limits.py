"""The realtime connection's outbox is bounded: a client that never reads is closed with 4002, not buffered."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("faster_whisper", reason="the realtime endpoint needs rolecraft[whisper]")
pytest.importorskip("silero_vad", reason="the realtime endpoint needs rolecraft[whisper]")

from rolecraft.conversation import Engine
from rolecraft.server.config import server_settings
from rolecraft.server.realtime.serving import OUTBOX, serve_call
from rolecraft.server.runtime import Runtime
from rolecraft.server.state import ServerState
from rolecraft.settings import Settings
from rolecraft.voice.call import CLOSE_NOT_READING


class StuckClient:
    """Stands in for the socket only: it sends bad events forever and never reads what it is sent."""

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0
        self.closed: tuple[int, str] | None = None

    async def receive_text(self) -> str:
        self.received += 1
        await asyncio.sleep(0)
        return json.dumps({"type": "no.such.event"})

    async def send_text(self, text: str) -> None:
        self.sent += 1
        await asyncio.Event().wait()  # never read: the first send never completes

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)


def test_a_client_that_never_reads_is_closed_with_4002(settings: Settings) -> None:
    runtime = Runtime(Engine(settings))
    try:
        session_id = runtime.engine.new_session("ember").id
        client = StuckClient()
        state = ServerState(runtime=runtime, server=server_settings(settings))
        asyncio.run(asyncio.wait_for(serve_call(client, state, session_id), timeout=60))  # type: ignore[arg-type]
        assert client.closed is not None and client.closed[0] == CLOSE_NOT_READING
        assert "not reading" in client.closed[1]
        assert client.sent == 1 and OUTBOX <= client.received <= OUTBOX + 2
    finally:
        runtime.close()

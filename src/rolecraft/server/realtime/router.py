"""Route: the WebSocket `/v1/realtime?session=ID` (or `?model=CHARACTER`, which opens a new session).

Authentication as for HTTP (`Authorization: Bearer KEY`), or, for browsers,
which cannot set headers on a WebSocket, the subprotocol
`openai-insecure-api-key.KEY` as OpenAI's clients send it beside `realtime`.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rolecraft.errors import RolecraftError
from rolecraft.server.auth import Principal, _identify
from rolecraft.server.realtime.serving import serve_call
from rolecraft.server.sessions import serving as sessions
from rolecraft.server.sessions.protocol import SessionCreate
from rolecraft.server.state import ServerState

router = APIRouter(tags=["realtime"])
KEY_PROTOCOL = "openai-insecure-api-key."
CLOSE_POLICY = 1008


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket, session: str | None = None, model: str | None = None) -> None:
    """A voice call: PCM16 audio and JSON events both ways (see rolecraft.server.realtime.protocol)."""
    state: ServerState = ws.app.state.rolecraft
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    await ws.accept(subprotocol="realtime" if "realtime" in offered else None)
    try:
        caller = _caller(state, ws, offered)
        session_id = await run_in_threadpool(_session_for, state, caller, session, model)
    except (RolecraftError, HTTPException) as exc:
        message = exc.message if isinstance(exc, RolecraftError) else str(exc.detail)
        code = exc.code if isinstance(exc, RolecraftError) else "invalid_api_key"
        await ws.send_json({"type": "error", "error": {"type": "invalid_request_error", "code": code,
                                                       "message": message}})
        await ws.close(CLOSE_POLICY, message[:120])
        return
    await serve_call(ws, state, session_id)


def _caller(state: ServerState, ws: WebSocket, offered: list[str]) -> Principal:
    header = ws.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    for protocol in offered:
        if protocol.startswith(KEY_PROTOCOL):
            token = protocol[len(KEY_PROTOCOL):]
    return _identify(state, token)


def _session_for(state: ServerState, caller: Principal, session: str | None, model: str | None) -> str:
    if session:
        return sessions.owned_session(state.engine, session, caller).id
    if model:
        return sessions.create(state.engine, SessionCreate(character=model), caller).id
    raise RolecraftError("name the conversation: /v1/realtime?session=ID, or ?model=CHARACTER for a new one",
                         code="missing_session", param="session")

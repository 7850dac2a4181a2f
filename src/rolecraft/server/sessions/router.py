"""Routes: /v1/sessions — create, list, history, tree, turns, regenerate, swipes, edit, branch, delete, state,
and the library lorebooks attached to a session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rolecraft.server.auth import Caller
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.sessions import serving
from rolecraft.server.sessions.protocol import (
    CHAR_ID,
    MAX_ID,
    SESSION_ID,
    AttachLorebook,
    BranchRequest,
    Deleted,
    EditRequest,
    History,
    Sampling,
    SessionCreate,
    SessionList,
    SessionOut,
    SwipeRequest,
    Swipes,
    Tree,
    TurnCreate,
    TurnOut,
)
from rolecraft.server.sessions.turns import run_turn
from rolecraft.server.state import State

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)
SessionId = Annotated[str, Path(pattern=SESSION_ID)]
MessageId = Annotated[int, Path(ge=1, le=MAX_ID)]
TURN = {"response_model": TurnOut, "responses": {200: {"content": {"text/event-stream": {}}}}}


@router.post("", response_model=SessionOut, status_code=201)
async def create(body: SessionCreate, state: State, caller: Caller) -> SessionOut:
    """Open a session with a character; it starts with the chosen greeting."""
    return await run_in_threadpool(serving.create, state.engine, body, caller)


@router.get("", response_model=SessionList)
async def listing(state: State, caller: Caller,
                  character: Annotated[str | None, Query(pattern=CHAR_ID)] = None) -> SessionList:
    """Your sessions (of one character), most recent first."""
    return await run_in_threadpool(serving.listing, state.engine, caller, character)


@router.get("/{session_id}", response_model=History)
async def history(session_id: SessionId, state: State, caller: Caller) -> History:
    """The session and its current path of messages."""
    return await run_in_threadpool(serving.history, state.engine, session_id, caller)


@router.get("/{session_id}/tree", response_model=Tree)
async def tree(session_id: SessionId, state: State, caller: Caller) -> Tree:
    """Every message on every branch, with parent ids."""
    return await run_in_threadpool(serving.tree, state.engine, session_id, caller)


@router.delete("/{session_id}", response_model=Deleted)
async def delete(session_id: SessionId, state: State, caller: Caller) -> Deleted:
    await run_in_threadpool(serving.delete, state.engine, session_id, caller)
    return Deleted(id=session_id)


@router.post("/{session_id}/turns", **TURN)
async def turn(session_id: SessionId, body: TurnCreate, request: Request, state: State, caller: Caller) -> Response:
    """Say something; the reply is generated and both are stored."""
    images = await run_in_threadpool(body.image_bytes)
    return await run_turn(state, caller, session_id,
                          lambda s, o: s.send(body.content, images=images, overrides=o), body, request)


@router.post("/{session_id}/regenerate", **TURN)
async def regenerate(session_id: SessionId, request: Request, state: State, caller: Caller,
                     body: Sampling | None = None) -> Response:
    """A new reply to your last message, kept beside the old one as a swipe."""
    return await run_turn(state, caller, session_id, lambda s, o: s.regenerate(o), body or Sampling(), request)


@router.post("/{session_id}/edit", **TURN)
async def edit(session_id: SessionId, body: EditRequest, request: Request, state: State, caller: Caller) -> Response:
    """Replace your last message (and get a new reply) or the character's last reply."""
    if body.role == "user":
        return await run_turn(state, caller, session_id, lambda s, o: s.edit_last_user(body.content, o), body, request)
    await run_in_threadpool(serving.owned_session, state.engine, session_id, caller)
    stored = await state.runtime.call(serving.edit_reply, state.engine, session_id, body.content, key=session_id)
    out = await run_in_threadpool(serving.turn_out, state.engine, session_id, stored, None)
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/{session_id}/swipes", response_model=Swipes)
async def swipes(session_id: SessionId, state: State, caller: Caller) -> Swipes:
    """The alternatives of the last message."""
    return await run_in_threadpool(serving.swipes, state.engine, session_id, caller)


@router.post("/{session_id}/swipes", response_model=Swipes)
async def select_swipe(session_id: SessionId, body: SwipeRequest, state: State, caller: Caller) -> Swipes:
    """Show another alternative of the last message."""
    return await run_in_threadpool(serving.select_swipe, state.engine, session_id, body.index, caller)


@router.post("/{session_id}/branch", response_model=History)
async def branch(session_id: SessionId, body: BranchRequest, state: State, caller: Caller) -> History:
    """Continue from an earlier message; the old branch is kept."""
    return await run_in_threadpool(serving.branch, state.engine, session_id, body.message_id, caller)


@router.delete("/{session_id}/messages/{message_id}", response_model=History)
async def delete_message(session_id: SessionId, message_id: MessageId, state: State, caller: Caller) -> History:
    """Delete a message and everything after it."""
    return await run_in_threadpool(serving.delete_message, state.engine, session_id, message_id, caller)


@router.get("/{session_id}/state")
async def session_state(session_id: SessionId, state: State, caller: Caller) -> dict:
    """What the state tracker knows (mood, location, relationships...)."""
    await run_in_threadpool(serving.owned_session, state.engine, session_id, caller)
    return await state.runtime.call(state.engine.session_state, session_id, key=session_id)


@router.get("/{session_id}/summary")
async def session_summary(session_id: SessionId, state: State, caller: Caller) -> dict:
    """The rolling summary of the conversation so far."""
    await run_in_threadpool(serving.owned_session, state.engine, session_id, caller)
    summary = await state.runtime.call(state.engine.session_summary, session_id, key=session_id)
    return {"session_id": session_id, "summary": summary}


@router.get("/{session_id}/lorebooks")
async def session_lorebooks(session_id: SessionId, state: State, caller: Caller) -> list[dict]:
    """The lorebooks attached to this session (beside its character's own)."""
    return await run_in_threadpool(state.engine.lorebooks.attached, session_id, caller.owner)


@router.post("/{session_id}/lorebooks", status_code=201)
async def attach_lorebook(session_id: SessionId, body: AttachLorebook, state: State, caller: Caller) -> dict:
    """Attach a copy of a library lorebook (PUT /v1/lorebooks/{id}); the next turns scan it."""
    return await run_in_threadpool(state.engine.lorebooks.attach, session_id, body.lorebook_id,
                                   caller.owner)


@router.delete("/{session_id}/lorebooks/{attached_id}")
async def detach_lorebook(session_id: SessionId, attached_id: MessageId, state: State, caller: Caller) -> dict:
    """Detach a lorebook from this session."""
    return await run_in_threadpool(state.engine.lorebooks.detach, session_id, attached_id, caller.owner)

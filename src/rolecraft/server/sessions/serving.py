"""Session logic for the REST routes and chat completions: ownership, reads, and the turn jobs.

Every session belongs to the caller that created it; any other caller gets the
same 404 as for a session that does not exist, so ids cannot be probed. Reads
and tree edits go straight to the store (in a worker thread); anything that
needs the model (turns, regenerations, edits that re-plan) runs on the model
thread through the runtime.
"""

from __future__ import annotations

from rolecraft.conversation import ChatSession, Engine
from rolecraft.errors import not_found
from rolecraft.server.auth import Principal
from rolecraft.server.model_jobs import Outcome
from rolecraft.server.sessions.protocol import (
    History,
    MessageOut,
    SessionCreate,
    SessionList,
    SessionOut,
    Swipes,
    Tree,
    TurnOut,
)
from rolecraft.store.records import SessionInfo, StoredMessage


def owned_session(engine: Engine, session_id: str, caller: Principal) -> SessionInfo:
    """The session if this caller owns it; otherwise the 404 an unknown id gets (the store checks)."""
    return engine.store.get_session(session_id, caller.owner)


def owned_message(engine: Engine, session_id: str, message_id: int, caller: Principal) -> StoredMessage:
    owned_session(engine, session_id, caller)
    message = engine.store.get_message(message_id)
    if message.session_id != session_id:
        raise not_found("message", str(message_id))
    return message


def create(engine: Engine, request: SessionCreate, caller: Principal) -> SessionOut:
    """A new session owned by the caller, opened by the chosen greeting (the others are its swipes); who the
    user is comes from the request, else the caller's default stored persona, else the settings."""
    session = engine.new_session(request.character, greeting=request.greeting, user_name=request.user_name,
                                 persona=request.persona, owner=caller.owner)
    return SessionOut.of(session.info)


def listing(engine: Engine, caller: Principal, character: str | None) -> SessionList:
    return SessionList(data=[SessionOut.of(s) for s in engine.sessions(character, caller.owner)])


def history(engine: Engine, session_id: str, caller: Principal) -> History:
    session = engine.session(session_id, caller.owner)
    return History(session=SessionOut.of(session.info), messages=[MessageOut.of(m) for m in session.history()])


def tree(engine: Engine, session_id: str, caller: Principal) -> Tree:
    session = engine.session(session_id, caller.owner)
    return Tree(session=SessionOut.of(session.info), messages=[MessageOut.of(m) for m in session.tree()])


def delete(engine: Engine, session_id: str, caller: Principal) -> None:
    engine.delete_session(session_id, caller.owner)


def branch(engine: Engine, session_id: str, message_id: int, caller: Principal) -> History:
    engine.session(session_id, caller.owner).branch(message_id)
    return history(engine, session_id, caller)


def delete_message(engine: Engine, session_id: str, message_id: int, caller: Principal) -> History:
    """Delete a message and everything after it on every branch; the head moves up if it was inside."""
    engine.session(session_id, caller.owner).delete_message(message_id)
    return history(engine, session_id, caller)


def _swipes(session: ChatSession) -> Swipes:
    found = session.swipes()
    selected = next((i for i, m in enumerate(found) if m.id == session.info.head_id), None)
    return Swipes(swipes=[MessageOut.of(m) for m in found], selected=selected)


def swipes(engine: Engine, session_id: str, caller: Principal) -> Swipes:
    return _swipes(engine.session(session_id, caller.owner))


def select_swipe(engine: Engine, session_id: str, index: int, caller: Principal) -> Swipes:
    session = engine.session(session_id, caller.owner)
    session.select_swipe(index)
    return _swipes(session)


def edit_reply(engine: Engine, session_id: str, text: str) -> list[StoredMessage]:
    """Replace the character's last reply with `text` (a new swipe); runs on the model thread."""
    return [ChatSession(engine, session_id).edit_last_reply(text)]


def turn_out(engine: Engine, session_id: str, stored: list[StoredMessage], outcome: Outcome | None) -> TurnOut:
    reply = outcome.reply if outcome else None
    return TurnOut(session=SessionOut.of(engine.store.get_session(session_id)),
                   messages=[MessageOut.of(m) for m in stored],
                   finish_reason=reply.finish_reason if reply else "edited",
                   prompt_tokens=reply.prompt_tokens if reply else 0,
                   completion_tokens=reply.completion_tokens if reply else 0)

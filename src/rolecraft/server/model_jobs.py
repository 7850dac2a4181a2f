"""Model jobs the endpoints run on the model thread: a stored session turn, or a stateless reply.

A job is a generator: it yields text pieces and returns an `Outcome`. The
session job plans the turn with the engine's own ChatSession (so prompts are
built exactly as in the CLI), streams it with the request's sampling, and
stores the user message and the reply in one transaction only after the last
piece, with a compare-and-set on the session head: if another writer (another
server process) moved the head meanwhile, the turn is refused with a 409
instead of forking the conversation behind the user's back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rolecraft.conversation import ChatSession, Engine, Turn
from rolecraft.conversation.reply import Reply
from rolecraft.conversation.sampling import plain_sampling, sampling_for
from rolecraft.conversation.stateless import character_plan
from rolecraft.messages import Message
from rolecraft.server.runtime import Job
from rolecraft.store.records import StoredMessage

Start = Callable[[ChatSession], Turn]


@dataclass
class Outcome:
    """A finished reply, and what was stored for it (nothing for stateless replies)."""

    reply: Reply
    session_id: str | None = None
    stored: list[StoredMessage] = field(default_factory=list)


def session_job(engine: Engine, session_id: str, start: Start, overrides: dict[str, Any],
                stops: list[str]) -> Job[Outcome]:
    """Plan a turn with `start(session)` (send, regenerate, edit), stream it; the Turn stores itself."""
    turn = start(engine.session(session_id))
    turn.overrides, turn.extra_stops = overrides, stops
    yield from turn
    assert turn.reply is not None and turn.result is not None
    return Outcome(turn.reply, session_id, turn.result.messages)


def character_job(engine: Engine, char_id: str, messages: list[Message], overrides: dict[str, Any],
                  stops: list[str], user: str) -> Job[Outcome]:
    """A character's reply to a client-held conversation; nothing is stored."""
    character = engine.character(char_id)
    reply_tokens = int(overrides.get("max_tokens", engine.settings.max_tokens))
    plan = character_plan(engine.settings, engine.backend, character, messages, user=user,
                          persona=engine.settings.persona, reply_tokens=reply_tokens)
    params = sampling_for(engine.settings, character, user, **overrides)
    params.stop = [*params.stop, *stops]
    reply = Reply(engine.backend, plan.messages, params, speaker=character.name)
    yield from reply
    return Outcome(reply)


def base_model_job(engine: Engine, messages: list[Message], overrides: dict[str, Any],
                   stops: list[str]) -> Job[Outcome]:
    """The loaded model answering `messages` as they are (no character, nothing stored)."""
    reply = Reply(engine.backend, messages, plain_sampling(engine.settings, stop=stops, **overrides))
    yield from reply
    return Outcome(reply)

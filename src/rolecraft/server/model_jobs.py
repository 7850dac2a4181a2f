"""Model jobs the endpoints run on the model thread: a stored session turn, or a stateless reply.

A job is a generator: it yields text pieces and returns an `Outcome`. Every job
perceives pictures and sound through the engine's one perception path and
plans a character's prompt with the one turn planner (`conversation.planner`),
so the HTTP doors build exactly the prompts the CLI does. The session job
streams a ChatSession turn with the request's sampling; the turn stores the
user message and the reply in one transaction only after the last piece, with
a compare-and-set on the session head: if another writer (another server
process) moved the head meanwhile, the turn is refused with a 409 instead of
forking the conversation behind the user's back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rolecraft.conversation import ChatSession, Engine, Turn
from rolecraft.conversation.media import UserInput, perceive, prompt_content
from rolecraft.conversation.planner import Line, client_dialogue, plan_turn
from rolecraft.conversation.reply import Reply
from rolecraft.conversation.sampling import plain_sampling, sampling_for
from rolecraft.messages import RAW_PROMPT, Message, Role
from rolecraft.server.runtime import Job
from rolecraft.store.records import StoredMessage

Start = Callable[[ChatSession, dict[str, Any]], Turn]


@dataclass
class Incoming:
    """One request message, read and checked: its words and the media perception will take in."""

    role: Role
    text: str
    images: list[str] = field(default_factory=list)  # data: URLs, or http(s) URLs fetched when online
    audio: bytes | None = None

    @property
    def has_media(self) -> bool:
        return bool(self.images) or self.audio is not None

    def user_input(self, offline: bool) -> UserInput:
        """The message's raw bytes, as the one perception path takes them (remote pictures fetched here
        unless `offline`)."""
        from rolecraft.perception import read_media

        pictures = [read_media(url, allow_files=False, allow_remote=not offline).data for url in self.images]
        return UserInput(self.text, pictures, self.audio)


@dataclass
class Outcome:
    """A finished reply, and what was stored for it (nothing for stateless replies)."""

    reply: Reply
    session_id: str | None = None
    stored: list[StoredMessage] = field(default_factory=list)


def session_job(engine: Engine, session_id: str, start: Start, overrides: dict[str, Any],
                stops: list[str]) -> Job[Outcome]:
    """Plan a turn with `start(session, overrides)` (send, regenerate, edit), stream it; the Turn stores itself."""
    turn = start(engine.session(session_id), overrides)
    turn.extra_stops = stops
    yield from turn
    assert turn.reply is not None and turn.result is not None
    return Outcome(turn.reply, session_id, turn.result.messages)


def client_lines(engine: Engine, char_id: str | None, incoming: Sequence[Incoming], user: str) -> list[Line]:
    """A client-held conversation as planner lines, each picture and recording perceived once."""
    character = engine.character(char_id) if char_id is not None else None
    lines = []
    for message in incoming:
        if message.role == "user" and message.has_media:
            seen = perceive(engine, character, user, message.user_input(engine.settings.offline))
            lines.append(Line("user", user, seen.text, seen.meta, seen.native_images))
        else:
            lines.append(Line(message.role, user if message.role == "user" else "", message.text))
    return lines


def character_job(engine: Engine, char_id: str, incoming: Sequence[Incoming], overrides: dict[str, Any],
                  stops: list[str], user: str | None = None, owner: str | None = None) -> Job[Outcome]:
    """A character's reply to a client-held conversation; nothing is stored. The user is `user`, else
    the default stored persona, else the configured name."""
    character = engine.character(char_id, owner)
    name, persona = engine.who(user_name=user, owner=owner)
    dialogue = client_dialogue(character, client_lines(engine, char_id, incoming, name), user=name, persona=persona)
    plan = plan_turn(engine.settings, engine.builder, dialogue,
                     reply_tokens=int(overrides.get("max_tokens", engine.settings.max_tokens)))
    params = sampling_for(engine.settings, character, name, **overrides)
    params.stop = [*params.stop, *stops]
    reply = Reply(engine.backend, plan.messages, params, speaker=character.name)
    yield from reply
    return Outcome(reply)


def base_model_job(engine: Engine, incoming: Sequence[Incoming], overrides: dict[str, Any],
                   stops: list[str]) -> Job[Outcome]:
    """The loaded model answering the messages as they are (no character, nothing stored); pictures and
    speech reach it as perception describes them, or natively for a vision backend."""
    user = engine.settings.user_name
    messages = [Message(line.role, prompt_content(line.content, line.meta, True, user), images=line.images)  # type: ignore[arg-type]
                for line in client_lines(engine, None, incoming, user)]
    reply = Reply(engine.backend, messages, plain_sampling(engine.settings, stop=stops, **overrides))
    yield from reply
    return Outcome(reply)


def raw_prompt_job(engine: Engine, prompt: str, overrides: dict[str, Any], stops: list[str],
                   char_id: str | None = None) -> Job[Outcome]:
    """A text completion of `prompt` as written (no chat template, no character prompt, nothing stored).
    A character named as the model lends only its constraints: banned phrases, catchphrase bias, adapter;
    the stops are the client's, who knows its prompt format."""
    if char_id is None:
        params = plain_sampling(engine.settings, **overrides)
    else:
        params = sampling_for(engine.settings, engine.character(char_id), engine.settings.user_name, **overrides)
    params.stop = list(stops)
    reply = Reply(engine.backend, [Message("user", prompt, kind=RAW_PROMPT)], params)
    yield from reply
    return Outcome(reply)

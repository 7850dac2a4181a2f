"""Scene logic for the REST routes: ownership, reads, and the jobs that run on the model thread.

A scene is a session the caller owns (anyone else gets the 404 an unknown id
gets). Anything that plans or generates runs on the model thread: `prepare`
does the quick part first (checks, storing an event) so bad input is a plain
HTTP error, then `scene_job` streams each character's reply as server-sent
events, `{"speaker", "name", "delta"}` per piece and `{"reply": ReplyOut}` once
that reply is stored. A turn is stored only when complete, so a game that
disconnects mid-reaction leaves nothing partial.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rolecraft.conversation import Engine, Turn
from rolecraft.conversation.scene import GameState, SceneSession, create_scene
from rolecraft.errors import RolecraftError
from rolecraft.server.auth import Principal
from rolecraft.server.runtime import Job
from rolecraft.server.scenes.protocol import (
    EventCreate,
    ReplyOut,
    SceneCreate,
    SceneHistory,
    SceneOut,
    SceneTurnOut,
    StateOut,
    Witnessed,
)
from rolecraft.server.sessions.protocol import MessageOut
from rolecraft.server.sessions.serving import owned_session
from rolecraft.server.streaming import event
from rolecraft.store.records import StoredMessage


@dataclass
class Prepared:
    """A scene request after its checks: what it already stored (an event) and the turns to run."""

    scene: SceneSession
    stored: list[StoredMessage] = field(default_factory=list)
    turns: Iterator[Turn] = field(default_factory=lambda: iter(()))


@dataclass
class SceneOutcome:
    stored: list[StoredMessage]
    replies: list[ReplyOut]


def owned_scene(engine: Engine, scene_id: str, caller: Principal) -> SceneSession:
    """The scene if this caller owns it (404 otherwise, and for a session that is not a scene)."""
    owned_session(engine, scene_id, caller)
    return SceneSession(engine, scene_id)


def create(engine: Engine, body: SceneCreate, caller: Principal) -> SceneOut:
    scene = create_scene(engine, body.characters, owner=caller.owner, user_name=body.user_name,
                         persona=body.persona, persona_id=body.persona_id, actions=body.actions,
                         policies=body.policies, state=body.state, absent=body.absent)
    return SceneOut.of(scene)


def show(engine: Engine, scene_id: str, caller: Principal) -> SceneHistory:
    scene = owned_scene(engine, scene_id, caller)
    return SceneHistory(scene=SceneOut.of(scene), messages=[MessageOut.of(m) for m in scene.history()])


def presence(engine: Engine, scene_id: str, character: str, present: bool, caller: Principal) -> SceneOut:
    scene = owned_scene(engine, scene_id, caller)
    scene.set_present(character, present)
    return SceneOut.of(scene)


def witnessed(engine: Engine, scene_id: str, character: str, caller: Principal) -> Witnessed:
    scene = owned_scene(engine, scene_id, caller)
    return Witnessed(character=scene.member(character), messages=[MessageOut.of(m) for m in scene.witnessed(character)])


def game_state(engine: Engine, scene_id: str, caller: Principal, change: GameState | None = None) -> StateOut:
    scene = owned_scene(engine, scene_id, caller)
    state = scene.game_state() if change is None else scene.set_game_state(change)
    scene.refresh()
    return StateOut(scene_id=scene_id, message_id=scene.info.head_id, state=state, prompt_note=state.render())


def post_event(engine: Engine, scene_id: str, body: EventCreate, images: list[bytes], caller: Principal) -> Prepared:
    """Store the event (a result event when it judges an action) and choose who reacts; model thread."""
    scene = owned_scene(engine, scene_id, caller)
    content, meta = body.content, {}
    if body.result is not None:
        written, meta = scene.action_result(body.result.message_id, body.result.index, body.result.ok,
                                            body.result.reason)
        content = f"{written} {content}".strip()
    stored, reactors = scene.post_event(content, salience=body.salience, addressed=body.addressed, state=body.state,
                                        images=images, meta=meta, mentions=body.result is None)
    return Prepared(scene, [stored], scene.react(reactors))


def line(engine: Engine, scene_id: str, text: str, images: list[bytes], state: GameState | None,
         character: str | None, caller: Principal) -> Prepared:
    scene = owned_scene(engine, scene_id, caller)
    if not text.strip() and not images:
        raise RolecraftError("a line needs content or images", code="empty_message", param="content")
    if character is not None:
        scene.member(character)
    return Prepared(scene, turns=scene.say(text, images=images, state=state, only=character))


def speak(engine: Engine, scene_id: str, character: str, caller: Principal) -> Prepared:
    scene = owned_scene(engine, scene_id, caller)
    return Prepared(scene, turns=scene.react([scene.member(character)]))


def scene_job(prepared: Prepared, overrides: dict[str, Any]) -> Job[SceneOutcome]:
    """Run each reply in turn, streaming SSE events; returns what was stored."""
    scene, stored, replies = prepared.scene, list(prepared.stored), []
    for message in stored:
        yield event({"event": MessageOut.of(message).model_dump(mode="json")})
    for turn in prepared.turns:
        turn.overrides.update(overrides)
        char_id = scene.char_id(turn.speaker or scene.character)
        name = scene.cast[char_id].name
        for piece in turn:
            yield event({"speaker": char_id, "name": name, "delta": piece})
        assert turn.result is not None
        reply = ReplyOut.of(char_id, turn)
        stored.extend(m for m in turn.result.messages if m.id not in {s.id for s in stored})
        replies.append(reply)
        yield event({"reply": reply.model_dump(mode="json")})
    return SceneOutcome(stored, replies)


def turn_out(engine: Engine, scene_id: str, outcome: SceneOutcome) -> SceneTurnOut:
    scene = SceneSession(engine, scene_id)
    return SceneTurnOut(scene=SceneOut.of(scene), messages=[MessageOut.of(m) for m in outcome.stored],
                        replies=outcome.replies)


Prepare = Callable[[list[bytes]], Prepared]  # the request's pictures → its checks done, its turns ready

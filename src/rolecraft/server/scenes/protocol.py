"""Scene shapes for the REST API: what a game sends (cast, lines, events, state) and what it gets back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rolecraft.conversation.scene import ACTIONS, GameState, Policy, SceneSession
from rolecraft.conversation.session import Turn
from rolecraft.server.media import image_from_url
from rolecraft.server.sessions.protocol import CHAR_ID, MAX_ID, MessageOut, Sampling
from rolecraft.server.text_input import check_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pictures(BaseModel):
    """Pictures from the game (a screenshot of what the characters see), through the one perception path."""

    images: list[str] = Field(default_factory=list, max_length=4,
                              description="Pictures as data: URLs (data:image/png;base64,...).")

    def image_bytes(self) -> list[bytes]:
        from rolecraft.perception import read_media

        for i, url in enumerate(self.images):
            image_from_url(url, param=f"images[{i}]")
        return [read_media(url, allow_files=False).data for url in self.images]


class SceneCreate(_Strict):
    characters: list[str] = Field(min_length=1, max_length=16, description="Character ids (or unique names).")
    user_name: str | None = Field(None, min_length=1, max_length=64, description="The player's name.")
    persona: str | None = Field(None, max_length=8000, description="A short description of the player.")
    persona_id: str | None = Field(None, pattern=CHAR_ID, description="A stored persona (POST /v1/personas).")
    actions: list[dict[str, Any]] = Field(default_factory=list, max_length=32, description=(
        "Actions every character may take, as OpenAI tools ({type: function, function: {name, description, "
        "parameters}}); a card adds its own in extensions.rolecraft.actions."))
    policies: dict[str, Policy] = Field(default_factory=dict, max_length=16,
                                        description="Character id → when it reacts to events.")
    state: GameState | None = Field(None, description="The game state the scene opens with.")
    absent: list[str] = Field(default_factory=list, max_length=16, description="Characters who start away.")


class Member(_Strict):
    character: str = Field(pattern=CHAR_ID, description="A character of the scene (id or name).")


class LineCreate(Sampling, Pictures):
    content: str = Field("", max_length=100_000, description="What the player says.")
    character: str | None = Field(None, pattern=CHAR_ID,
                                  description="Who answers (unset: the scene chooses, by mention or talkativeness).")
    state: GameState | None = Field(None, description="A change of game state that comes with the line.")

    @field_validator("content")
    @classmethod
    def _valid_text(cls, value: str) -> str:
        return check_text(value, "content")


class Speak(Sampling):
    character: str = Field(pattern=CHAR_ID, description="Who speaks now, unprompted.")


class ActionResult(_Strict):
    message_id: int = Field(ge=1, le=MAX_ID, description="The reply that carried the action.")
    index: int = Field(0, ge=0, le=16, description="Which of its actions.")
    ok: bool = Field(description="false: the game refused it; the character's next prompt says it failed.")
    reason: str = Field("", max_length=500)


class EventCreate(Sampling, Pictures):
    content: str = Field("", max_length=4000, description="What happened, e.g. 'Night falls.'")
    salience: float = Field(0.0, ge=0.0, le=1.0, description="How striking it is; characters whose threshold it "
                            "reaches react.")
    addressed: list[str] = Field(default_factory=list, max_length=16, description="Characters it is aimed at.")
    state: GameState | None = None
    result: ActionResult | None = Field(None, description="The game's verdict on an action (then content may be "
                                        "empty: it is written for you).")

    @field_validator("content")
    @classmethod
    def _valid_text(cls, value: str) -> str:
        return check_text(value, "content")


class MemberOut(BaseModel):
    id: str
    name: str
    present: bool
    muted: bool
    actions: list[str]


class SceneOut(BaseModel):
    id: str
    user_name: str
    persona: str
    head_id: int | None
    members: list[MemberOut]
    actions: list[dict[str, Any]]

    @classmethod
    def of(cls, scene: SceneSession) -> SceneOut:
        members = [MemberOut(id=m.character_id, name=scene.cast[m.character_id].name, present=m.present,
                             muted=m.muted, actions=[a.name for a in scene.actions_for(m.character_id)])
                   for m in scene.members]
        return cls(id=scene.id, user_name=scene.user_name, persona=scene.info.persona, head_id=scene.info.head_id,
                   members=members, actions=[a.to_json() for a in scene.declared])


class SceneHistory(BaseModel):
    scene: SceneOut
    messages: list[MessageOut]


class ReplyOut(BaseModel):
    """One character's stored reply: its words, expression and validated actions."""

    message_id: int
    character_id: str
    name: str
    text: str
    expression: str | None
    actions: list[dict[str, Any]]
    refused_actions: list[dict[str, Any]]
    finish_reason: str
    completion_tokens: int

    @classmethod
    def of(cls, char_id: str, turn: Turn) -> ReplyOut:
        assert turn.result is not None
        reply = turn.result.messages[-1]
        return cls(message_id=reply.id, character_id=char_id, name=reply.name, text=reply.content,
                   expression=reply.meta.get("expression"), actions=reply.meta.get(ACTIONS, []),
                   refused_actions=reply.meta.get("refused_actions", []), finish_reason=turn.result.finish_reason,
                   completion_tokens=turn.result.completion_tokens)


class SceneTurnOut(BaseModel):
    """What one request stored: the player's line or the event, then each reply."""

    scene: SceneOut
    messages: list[MessageOut]
    replies: list[ReplyOut]


class StateOut(BaseModel):
    scene_id: str
    message_id: int | None
    state: GameState
    prompt_note: str = Field(description="How the characters read it (the late block of their prompt).")


class Witnessed(BaseModel):
    """What one character was present for on the current branch: everything its prompt can hold."""

    character: str
    messages: list[MessageOut]

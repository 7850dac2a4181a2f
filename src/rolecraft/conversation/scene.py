"""Living scenes for game NPCs: game state, events and actions on top of a group scene.

A scene is a `GroupSession` (presence, who witnessed each message, who answers)
whose root message carries the scene's declaration: the actions its characters
may take and each character's reaction policy. Three things a game sends enter
it as data, never as prose in the player's words:

* game state (`GameState`): stored with the message it came with (or on the
  current head), so each branch carries its own, and rendered compactly into
  the late block of the prompt, after the stable prefix;
* events: stored as messages with role `event`, witnessed by whoever is present;
  present characters react when mentioned, addressed, or when the event's
  salience reaches their threshold;
* actions: JSON-schema tools per scene or per card (`extensions.rolecraft.actions`);
  after a reply's text, a second, grammar-constrained generation picks zero or
  more of them; each is validated with jsonschema and stored in the reply's meta.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from rolecraft.backends.base import Backend, SamplingParams
from rolecraft.characters.model import Character
from rolecraft.conversation.group import GroupSession
from rolecraft.conversation.planner import Spoken
from rolecraft.conversation.session import Turn
from rolecraft.errors import RolecraftError, missing_extra, not_found
from rolecraft.messages import Message
from rolecraft.store.records import NewMessage, StoredMessage

if TYPE_CHECKING:
    from rolecraft.conversation.engine import Engine

SCENE, GAME_STATE, ACTIONS = "scene", "game_state", "actions"
EXTRA_MAX_BYTES, EXTRA_MAX_DEPTH = 4096, 4
MAX_ACTIONS_PER_REPLY = 3
NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"

Short = Annotated[str, StringConstraints(max_length=80)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Scalar = bool | int | float | Annotated[str, StringConstraints(max_length=200)]


class GameState(BaseModel):
    """What the game tells its characters about the scene right now (every field optional).

    Posted fields replace the same fields of the state before; the rest carries over.
    Limits keep the prompt block small: the 400 for a state over them names the limit."""

    model_config = ConfigDict(extra="forbid")

    location: str | None = Field(None, max_length=200, description="Where the scene takes place.")
    time_of_day: str | None = Field(None, max_length=40, description="e.g. dawn, noon, night.")
    weather: str | None = Field(None, max_length=80)
    nearby_characters: list[Short] = Field(default_factory=list, max_length=50,
                                           description="Who else is around (not necessarily in the scene).")
    nearby_objects: list[Short] = Field(default_factory=list, max_length=100,
                                        description="Things the characters can see or use.")
    player: dict[Key, Scalar] = Field(default_factory=dict, max_length=32,
                                      description="Player stats (health, gold, level...).")
    inventory: list[Short] = Field(default_factory=list, max_length=100, description="What the player carries.")
    flags: dict[Key, Scalar] = Field(default_factory=dict, max_length=64, description="Free-form story flags.")
    extra: dict[Key, Any] = Field(default_factory=dict, description=f"Anything else, as JSON (at most "
                                  f"{EXTRA_MAX_BYTES} bytes, nested at most {EXTRA_MAX_DEPTH} deep).")

    @field_validator("extra")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, ensure_ascii=False).encode())
        if size > EXTRA_MAX_BYTES:
            raise ValueError(f"extra is {size} bytes of JSON; the limit is {EXTRA_MAX_BYTES}")
        depth = _depth(value)
        if depth > EXTRA_MAX_DEPTH:
            raise ValueError(f"extra is nested {depth} deep; the limit is {EXTRA_MAX_DEPTH}")
        return value

    def updated(self, change: GameState) -> GameState:
        """This state with the fields `change` sets replaced."""
        return self.model_copy(update=change.model_dump(exclude_unset=True))

    def render(self) -> str:
        """The state as one compact note for the prompt ('' when empty)."""
        parts = [f"{label}: {value}" for label, value in (
            ("Place", self.location), ("Time", self.time_of_day), ("Weather", self.weather)) if value]
        for label, items in (("Nearby", self.nearby_characters), ("Objects", self.nearby_objects),
                             ("Player carries", self.inventory)):
            if items:
                parts.append(f"{label}: {', '.join(items)}")
        for label, pairs in (("Player", self.player), ("Flags", self.flags)):
            if pairs:
                parts.append(f"{label}: {', '.join(f'{k} {_scalar(v)}' for k, v in pairs.items())}")
        if self.extra:
            parts.append(json.dumps(self.extra, ensure_ascii=False, separators=(",", ":")))
        return "[Scene now] " + ". ".join(parts) if parts else ""


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _scalar(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


class Policy(BaseModel):
    """When a character reacts to an event unprompted (rules, in order: mentioned, addressed, salience)."""

    model_config = ConfigDict(extra="forbid")

    react_when_mentioned: bool = True
    react_when_addressed: bool = True
    threshold: float = Field(0.6, ge=0.0, le=1.0, description="React when the event's salience is at least this.")


@dataclass(frozen=True)
class Action:
    """An action the game lets a character take: a name, what it does, and a JSON Schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def signature(self) -> str:
        params = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in self.parameters.get("properties", {}).items())
        return f"{self.name}({params})" + (f": {self.description}" if self.description else "")


def _jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError:
        raise missing_extra("jsonschema", "server") from None
    return jsonschema


def declare_actions(tools: Sequence[Any], param: str) -> list[Action]:
    """Read action declarations (OpenAI tools `{"type": "function", "function": {...}}` or bare
    `{name, description, parameters}`); a 400 naming `param[i]` for one that is not valid."""
    jsonschema, actions = _jsonschema(), []
    for i, tool in enumerate(tools):
        where = f"{param}[{i}]"
        spec = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not re.match(NAME, spec["name"]):
            raise RolecraftError(f"{where} needs a 'name' of letters, digits, _ or - (at most 64)",
                                 code="invalid_action", param=where)
        parameters = spec.get("parameters") or {"type": "object", "properties": {}}
        try:
            if not isinstance(parameters, dict) or parameters.get("type") != "object":
                raise jsonschema.SchemaError("the parameters must be a JSON Schema of type 'object'")
            jsonschema.validators.validator_for(parameters).check_schema(parameters)
        except jsonschema.SchemaError as exc:
            raise RolecraftError(f"{where}.parameters of action {spec['name']!r} is not a valid JSON Schema: "
                                 f"{exc.message}", code="invalid_action_schema", param=f"{where}.parameters") from None
        actions.append(Action(spec["name"], str(spec.get("description") or "")[:300], parameters))
    names = [a.name for a in actions]
    if len(set(names)) != len(names):
        raise RolecraftError(f"{param} declares an action twice: {names}", code="invalid_action", param=param)
    return actions


def card_actions(character: Character) -> list[Action]:
    """The actions a character's card declares in `extensions.rolecraft.actions`."""
    ours = character.extensions.get("rolecraft") or {}
    return declare_actions(ours.get("actions") or [], f"{character.name}.extensions.rolecraft.actions")


def actions_schema(actions: Sequence[Action], most: int = MAX_ACTIONS_PER_REPLY) -> dict[str, Any]:
    """The JSON Schema a choice of actions must follow: `{"actions": [{"name", "arguments"}, ...]}`."""
    one = [{"type": "object", "properties": {"name": {"const": a.name}, "arguments": a.parameters},
            "required": ["name", "arguments"], "additionalProperties": False} for a in actions]
    return {"type": "object", "additionalProperties": False, "required": ["actions"],
            "properties": {"actions": {"type": "array", "maxItems": most, "items": {"anyOf": one}}}}


@dataclass
class Choice:
    """The actions a reply carries: the valid ones, and those refused with the reason."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    raw: str = ""


def validate_actions(raw: str, actions: Sequence[Action]) -> Choice:
    """Parse the model's JSON and keep only declared actions whose arguments validate."""
    jsonschema, choice = _jsonschema(), Choice(raw=raw)
    start = raw.find("{")
    try:
        parsed, _ = json.JSONDecoder().raw_decode(raw[start:]) if start >= 0 else (None, 0)
    except ValueError:
        parsed = None
    items = parsed.get("actions") if isinstance(parsed, dict) else None
    if not isinstance(items, list):
        choice.refused.append({"reason": "the output was not a JSON object with an 'actions' list"})
        return choice
    declared = {a.name: a for a in actions}
    for item in items[:MAX_ACTIONS_PER_REPLY]:
        name = item.get("name") if isinstance(item, dict) else None
        arguments = item.get("arguments", {}) if isinstance(item, dict) else None
        if name not in declared:
            choice.refused.append({"name": str(name), "reason": "not a declared action"})
            continue
        try:
            jsonschema.validate(arguments, declared[name].parameters)
        except jsonschema.ValidationError as exc:
            choice.refused.append({"name": name, "reason": exc.message})
            continue
        choice.actions.append({"name": name, "arguments": arguments})
    return choice


def choose_actions(backend: Backend, prompt: Sequence[Message], speaker: str, reply: str, actions: Sequence[Action],
                   *, grammar: bool = True, cache_key: str | None = None, max_tokens: int = 96) -> Choice:
    """After `speaker` said `reply`, the actions it takes: a second generation, constrained to
    `actions_schema` by the backend's grammar when `grammar` (llama.cpp; response_format elsewhere)."""
    listing = "\n".join(f"- {a.signature()}" for a in actions)
    ask = Message("system", f"Which of these actions does {speaker} take right now, after saying that?\n{listing}\n"
                  'Answer with JSON only: {"actions": [{"name": ..., "arguments": {...}}]}; '
                  '{"actions": []} when none fits.', kind="actions")
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, cache_key=cache_key,
                            json_schema=actions_schema(actions) if grammar else None)
    messages = [*prompt, Message("assistant", reply), ask]
    raw = "".join(e.text for e in backend.stream(messages, params))
    return validate_actions(raw, actions)


class SceneSession(GroupSession):
    """A group scene a game drives: its game state, its events, its characters' actions."""

    def __init__(self, engine: Engine, session_id: str) -> None:
        super().__init__(engine, session_id)
        root = self._root()
        config = root.meta.get(SCENE) if root is not None else None
        if not isinstance(config, dict):
            raise not_found("scene", session_id)
        self.declared = declare_actions(config.get("actions") or [], "actions")
        policies = config.get("policies") or {}
        self.policies = {cid: Policy.model_validate(policies.get(cid) or {}) for cid in self.cast}
        self._cards = {cid: card_actions(c) for cid, c in self.cast.items()}

    def _root(self) -> StoredMessage | None:
        if self.info.head_id is None:
            return None
        return self.engine.store.get_message(min(self.engine.store.path_ids(self.id, self.info.head_id)))

    def char_id(self, speaker: Character) -> str:
        return next(cid for cid, c in self.cast.items() if c is speaker)

    def actions_for(self, char_id: str) -> list[Action]:
        """The scene's actions plus the character card's own (the scene's win a name clash)."""
        names = {a.name for a in self.declared}
        return [*self.declared, *(a for a in self._cards.get(char_id, []) if a.name not in names)]

    def game_state(self, history: Sequence[StoredMessage] | None = None) -> GameState:
        """The latest game state on this branch (at the end of `history`, default the head)."""
        for message in reversed(self.recent() if history is None else history):
            if GAME_STATE in message.meta:
                return GameState.model_validate(message.meta[GAME_STATE])
        return GameState()

    def set_game_state(self, change: GameState) -> GameState:
        """Apply the game's change to the state at the current message (on its own, with no turn)."""
        self.refresh()
        history = self.recent()
        state = self.game_state(history).updated(change)
        self.engine.store.update_meta(history[-1].id, {GAME_STATE: state.model_dump(exclude_defaults=True)})
        return state

    def _state_meta(self, change: GameState | None) -> dict[str, Any]:
        if change is None:
            return {}
        self.refresh()
        return {GAME_STATE: self.game_state().updated(change).model_dump(exclude_defaults=True)}

    def _late(self, lines: Sequence[Spoken], speaker: Character) -> list[str]:
        """The game state as of the last line (the player's new one may bring it), for the late block."""
        last = lines[-1] if lines else None
        if last is not None and GAME_STATE in last.meta:
            state = GameState.model_validate(last.meta[GAME_STATE])
        else:
            stored = [m for m in lines if isinstance(m, StoredMessage)]
            state = self.game_state(self.recent(stored[-1].id) if stored else [])
        note = state.render()
        return [note] if note else []

    def say(self, text: str, *, images: Sequence[bytes] = (), state: GameState | None = None,
            only: str | None = None) -> Iterator[Turn]:
        """The player's line (with pictures from the game and a state change); the scene chooses who answers
        (or `only` does)."""
        return self.send_group(text, only=only, images=images, meta=self._state_meta(state))

    def witnessed(self, name: str) -> list[StoredMessage]:
        """What the member `name` was present for on this branch: all its prompts can hold."""
        return self.visible(self.recent(), self.member(name))

    def post_event(self, content: str, *, salience: float = 0.0, addressed: Sequence[str] = (),
                   state: GameState | None = None, images: Sequence[bytes] = (), meta: dict | None = None,
                   mentions: bool = True) -> tuple[StoredMessage, list[str]]:
        """Store what happened (role `event`, witnessed by who is present) and say who reacts to it."""
        if not any(m.present for m in self.members):
            raise RolecraftError(f"nobody is in scene {self.id!r}: every character has left", code="scene_empty",
                                 status=404, param="scene")
        targets = [self.member(name) for name in addressed]
        seen = self.perceive(content, images=images)
        event_meta = {**seen.meta, **(meta or {}), "salience": salience, "addressed": targets,
                      **self._state_meta(state), **self.scene_meta()}
        for blob in seen.blobs:
            self.engine.store.put_attachment(blob.data, blob.media_type, blob.kind, owner=self.info.owner)
        self.refresh()
        stored = self.engine.store.append(self.id, self.info.head_id, [NewMessage("event", "event", seen.text,
                                          event_meta)], expect_head=self.info.head_id)[0]
        self.refresh()
        return stored, self.reactors(seen.text, salience, targets, mentions=mentions)

    def reactors(self, text: str, salience: float, addressed: Sequence[str], *, mentions: bool = True) -> list[str]:
        """Who reacts to an event, by each present member's policy, in scene order."""
        ready = [m for m in self.members if m.present and not m.muted]
        mentioned = set(self._mentioned(text, ready)) if mentions else set()
        chosen = []
        for m in ready:
            policy = self.policies.get(m.character_id, Policy())
            if ((policy.react_when_mentioned and m.character_id in mentioned)
                    or (policy.react_when_addressed and m.character_id in addressed) or salience >= policy.threshold):
                chosen.append(m.character_id)
        return chosen

    def react(self, char_ids: Sequence[str]) -> Iterator[Turn]:
        """Each chosen member's reaction to what just happened, one Turn at a time (iterate each first)."""
        for char_id in char_ids:
            turn = self.speak_now(char_id)
            yield turn
            if turn.result is None:
                return

    def action_result(self, message_id: int, index: int, ok: bool, reason: str = "") -> tuple[str, dict]:
        """The event text and meta for the game's verdict on action `index` of reply `message_id`."""
        message = self.engine.store.get_message(message_id)
        if message.session_id != self.id or message.role != "assistant":
            raise not_found("message", str(message_id))
        taken = message.meta.get(ACTIONS) or []
        if not 0 <= index < len(taken):
            raise RolecraftError(f"message {message_id} carries {len(taken)} actions; no #{index}",
                                 code="invalid_action", param="result.index")
        action = taken[index]
        args = ", ".join(f"{k}={v}" for k, v in (action.get("arguments") or {}).items())
        outcome = "succeeded" if ok else "failed"
        text = f"{message.name}'s action {action['name']}({args}) {outcome}" + (f": {reason}" if reason else ".")
        return text, {"action_result": {"message_id": message_id, "index": index, "ok": ok, "reason": reason}}

    def remember(self, turn: Turn, reply: str) -> dict:
        """The reply's meta plus the actions its speaker takes (validated; the refused ones with why)."""
        meta = super().remember(turn, reply)
        speaker = turn.speaker or self.character
        actions = self.actions_for(self.char_id(speaker))
        if not actions:
            return meta
        choice = choose_actions(self.engine.backend, turn.plan.messages, speaker.name, reply, actions,
                                cache_key=self.cache_key(speaker), max_tokens=self.engine.settings.action_max_tokens)
        return meta | {ACTIONS: choice.actions, "refused_actions": choice.refused}


def create_scene(engine: Engine, characters: Sequence[str], *, owner: str | None = None,
                 user_name: str | None = None, persona: str | None = None, persona_id: str | None = None,
                 actions: Sequence[Any] = (), policies: dict[str, Policy | dict] | None = None,
                 state: GameState | None = None, absent: Sequence[str] = ()) -> SceneSession:
    """A new scene owned by `owner`: the first character's greeting opens it; `absent` ones start away."""
    ids = list(dict.fromkeys(_resolve(engine, ref, f"characters[{i}]", owner) for i, ref in enumerate(characters)))
    if not ids:
        raise RolecraftError("a scene needs at least one character", code="invalid_scene", param="characters")
    declared = declare_actions(actions, "actions")
    for cid in ids:
        card_actions(engine.character(cid))
    unknown = [name for name in [*(policies or {}), *absent] if _resolve(engine, name, "policies", owner) not in ids]
    if unknown:
        raise RolecraftError(f"not in this scene: {', '.join(unknown)}", code="unknown_member", param="policies")
    away = {_resolve(engine, name, "absent", owner) for name in absent}
    session = engine.new_session(ids[0], user_name=user_name, persona=persona, persona_id=persona_id, owner=owner)
    engine.store.add_members(session.id, ids)
    for cid in away:
        engine.store.update_member(session.id, cid, present=False)
    config = {"actions": [a.to_json() for a in declared],
              "policies": {_resolve(engine, k, "policies", owner): Policy.model_validate(p).model_dump()
                           for k, p in (policies or {}).items()}}
    meta = {"present": [cid for cid in ids if cid not in away], SCENE: config}
    if state is not None:
        meta[GAME_STATE] = state.model_dump(exclude_defaults=True)
    opening = session.history()
    if opening:
        engine.store.update_meta(opening[-1].id, meta)
    else:
        engine.store.append(session.id, None, [NewMessage("event", "event", "The scene begins.", meta)])
    return SceneSession(engine, session.id)


def _resolve(engine: Engine, ref: str, param: str, owner: str | None) -> str:
    try:
        return engine.store.resolve_character(ref, owner)
    except RolecraftError as exc:
        if exc.status != 404:
            raise
        raise RolecraftError(f"unknown character in the scene: {ref!r}", code="unknown_character",
                             param=param) from None

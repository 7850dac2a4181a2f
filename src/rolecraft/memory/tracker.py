"""Model-based state extraction, constrained to a small JSON schema.

The model reads the exchange that just happened and proposes an update; the
output is forced into `UPDATE_SCHEMA` by the backend's grammar (llama.cpp) or
`response_format` (OpenAI-compatible servers). Whatever comes back is only ever
merged through `state.merge`, which validates field by field.
"""

from __future__ import annotations

import json
from typing import Any

from rolecraft.backends.base import Backend, SamplingParams
from rolecraft.memory.state import DialogueState, merge, rule_updates
from rolecraft.messages import Message

_TEXT = {"type": "string", "maxLength": 80}
_LIST = {"type": "array", "items": _TEXT, "maxItems": 3}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_name": {"type": ["string", "null"], "maxLength": 40},
        "new_user_facts": _LIST,
        "user_likes": _LIST,
        "user_dislikes": _LIST,
        "mood": {"type": ["string", "null"], "maxLength": 30},
        "place": {"type": ["string", "null"], "maxLength": 60},
        "trust_change": {"type": "integer", "minimum": -2, "maximum": 2},
        "new_threads": _LIST,
    },
    "required": ["user_name", "new_user_facts", "user_likes", "user_dislikes", "mood", "place", "trust_change",
                 "new_threads"],
}


_GUIDE = """You read one exchange of a role-play between {user} and {char} and report only what it states.
Fields:
- user_name: a name {user} gives for themselves in this exchange, else null.
- new_user_facts: short facts {user} states about themselves (work, home, family, pets), else [].
- user_likes, user_dislikes: what {user} says they like or dislike, a few words each, else [].
- mood: {char}'s mood in one word when the reply shows it, else null.
- place: where they are now, when the exchange says they are in or go to a place, else null.
- trust_change: 1 or 2 when {user} shows {char} trust, thanks or friendship; -1 or -2 when {user} lies to, \
betrays or insults {char}; else 0.
- new_threads: promises, plans or appointments for later, a few words each, else [].
Never copy whole lines; never invent. Output JSON only."""

_EXAMPLE = ("Mika: My name is Mika, I'm a baker. Promise you'll come to the fair tomorrow?\n"
            "Rook: *grins* I promise, Mika!",
            '{"user_name": "Mika", "new_user_facts": ["is a baker"], "user_likes": [], "user_dislikes": [], '
            '"mood": "cheerful", "place": null, "trust_change": 0, "new_threads": ["go to the fair tomorrow"]}')


def extraction_prompt(state: DialogueState, user: str, char: str, user_text: str, reply: str) -> list[Message]:
    """The extraction request: a field guide, one worked example, then the exchange (and what is known)."""
    known = state.model_dump_json(exclude_defaults=True)
    return [
        Message("system", _GUIDE.format(user=user, char=char)),
        Message("user", _EXAMPLE[0]),
        Message("assistant", _EXAMPLE[1]),
        Message("user", (f"(Known: {known})\n" if known != "{}" else "") + f"{user}: {user_text}\n{char}: {reply}"),
    ]


def to_update(raw: dict[str, Any], state: DialogueState, speakers: tuple[str, ...] = ()) -> dict[str, Any]:
    """Map the flat extraction onto a partial DialogueState for `merge`; a "name" that is only a speaker's
    label in the transcript (the user's display name, the character's) is not news."""
    user: dict[str, Any] = {}
    name = raw.get("user_name")
    if isinstance(name, str) and name.strip() and name.strip().casefold() not in {s.casefold() for s in speakers}:
        user["name"] = name.strip()
    for key, target in (("new_user_facts", "facts"), ("user_likes", "likes"), ("user_dislikes", "dislikes")):
        if isinstance(raw.get(key), list):
            user[target] = [v for v in raw[key] if isinstance(v, str)]
    update: dict[str, Any] = {"user": user} if user else {}
    if isinstance(raw.get("mood"), str):
        update["mood"] = raw["mood"].strip()
    if isinstance(raw.get("place"), str) and raw["place"].strip():
        update["scene"] = {"place": raw["place"].strip()}
    if isinstance(raw.get("trust_change"), int):
        change = max(-2, min(2, raw["trust_change"]))
        trust = max(-10, min(10, state.relationship.trust + change))
        update["relationship"] = {"trust": trust}
    if isinstance(raw.get("new_threads"), list):
        update["threads"] = [v for v in raw["new_threads"] if isinstance(v, str)]
    return update


def extract(backend: Backend, state: DialogueState, user: str, char: str, user_text: str,
            reply: str) -> dict[str, Any]:
    """A validated partial update from the model; {} if it produced nothing usable."""
    params = SamplingParams(max_tokens=240, temperature=0.0, json_schema=UPDATE_SCHEMA)
    try:
        text = "".join(e.text for e in backend.stream(extraction_prompt(state, user, char, user_text, reply), params))
        raw = json.loads(text)
    except Exception:
        return {}
    return to_update(raw, state, (user, char)) if isinstance(raw, dict) else {}


def update_state(mode: str, backend: Backend | None, state: DialogueState, user: str, char: str, user_text: str,
                 reply: str) -> DialogueState:
    """The state after one exchange under `state_tracking` = mode: rules always, then the model when asked."""
    if mode == "off" or not user_text:
        return state
    state = merge(state, rule_updates(user_text))
    if mode == "model" and backend is not None:
        state = merge(state, extract(backend, state, user, char, user_text, reply))
    return state

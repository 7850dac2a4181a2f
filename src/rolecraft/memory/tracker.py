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
from rolecraft.memory.state import DialogueState
from rolecraft.messages import Message

_TEXT = {"type": "string", "maxLength": 80}
_LIST = {"type": "array", "items": _TEXT, "maxItems": 3}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_name": {"type": ["string", "null"], "maxLength": 40},
        "new_user_facts": _LIST,
        "user_likes": _LIST,
        "mood": {"type": ["string", "null"], "maxLength": 30},
        "place": {"type": ["string", "null"], "maxLength": 60},
        "trust_change": {"type": "integer", "minimum": -2, "maximum": 2},
        "new_threads": _LIST,
    },
    "required": ["user_name", "new_user_facts", "user_likes", "mood", "place", "trust_change", "new_threads"],
}


def extraction_prompt(state: DialogueState, user: str, char: str, user_text: str, reply: str) -> list[Message]:
    return [
        Message("system", "You track the state of a role-play. Output JSON only. Use null or [] when the "
                "exchange says nothing new. Never invent facts."),
        Message("user", f"Known state: {state.model_dump_json(exclude_defaults=True)}\n\n"
                f"{user}: {user_text}\n{char}: {reply}\n\nWhat is new?"),
    ]


def to_update(raw: dict[str, Any], state: DialogueState) -> dict[str, Any]:
    """Map the flat extraction onto a partial DialogueState for `merge`."""
    user: dict[str, Any] = {}
    if isinstance(raw.get("user_name"), str) and raw["user_name"].strip():
        user["name"] = raw["user_name"].strip()
    for key, target in (("new_user_facts", "facts"), ("user_likes", "likes")):
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
    params = SamplingParams(max_tokens=160, temperature=0.0, json_schema=UPDATE_SCHEMA)
    try:
        text = "".join(e.text for e in backend.stream(extraction_prompt(state, user, char, user_text, reply), params))
        raw = json.loads(text)
    except Exception:
        return {}
    return to_update(raw, state) if isinstance(raw, dict) else {}

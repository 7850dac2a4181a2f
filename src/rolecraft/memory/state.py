"""Dialogue state tracking: s_t = f(s_{t-1}, e_t) as a small pydantic document.

After every turn the state is updated from the new exchange: deterministic rules
always run (names, likes, places said outright), and a model extraction, constrained
to this schema, can add to them. Updates only merge validated values into a copy of
the previous state, so a bad extraction can never corrupt it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_ITEMS = 12


class UserFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=60)
    facts: list[str] = Field(default_factory=list, description="Things the user said about themselves.")
    likes: list[str] = Field(default_factory=list)
    dislikes: list[str] = Field(default_factory=list)


class Relationship(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trust: int = Field(0, ge=-10, le=10)
    affection: int = Field(0, ge=-10, le=10)
    reason: str = Field("", max_length=200)


class Scene(BaseModel):
    model_config = ConfigDict(extra="forbid")
    place: str | None = Field(None, max_length=120)
    time: str | None = Field(None, max_length=60)
    present: list[str] = Field(default_factory=list)
    objects: list[str] = Field(default_factory=list)


class DialogueState(BaseModel):
    """Everything worth carrying from turn to turn besides the transcript."""

    model_config = ConfigDict(extra="forbid")
    user: UserFacts = Field(default_factory=UserFacts)
    relationship: Relationship = Field(default_factory=Relationship)
    mood: str | None = Field(None, max_length=40, description="The character's current mood.")
    scene: Scene = Field(default_factory=Scene)
    threads: list[str] = Field(default_factory=list, description="Open threads and promises.")

    def render(self) -> str:
        """A compact text form for the prompt; empty when nothing is known."""
        parts = []
        if self.user.name:
            parts.append(f"User's name: {self.user.name}")
        for label, items in (("The user said", self.user.facts), ("User likes", self.user.likes),
                             ("User dislikes", self.user.dislikes), ("Open threads", self.threads)):
            if items:
                parts.append(f"{label}: {'; '.join(items)}")
        rel = self.relationship
        if rel.trust or rel.affection:
            parts.append(f"Relationship: trust {rel.trust}, affection {rel.affection}" + (
                f" ({rel.reason})" if rel.reason else ""))
        if self.mood:
            parts.append(f"Current mood: {self.mood}")
        scene = [x for x in (self.scene.place, self.scene.time) if x]
        if self.scene.present:
            scene.append(f"present: {', '.join(self.scene.present)}")
        if scene:
            parts.append("Scene: " + ", ".join(scene))
        return "\n".join(parts)


_CLAUSE = r"((?:(?!\s+(?:and|but)\s+i\b)[^.!?,;\n]){2,60})"
RULES: list[tuple[str, re.Pattern[str]]] = [
    ("name", re.compile(r"\b(?:my name is|call me|i am called|i'm called)\s+([A-Z][\w'-]{1,30})", re.I)),
    ("name", re.compile(r"\b[Ii](?: am|'m)\s+([A-Z][a-z'-]{1,30})(?:[,.!]|\s+(?:and|a|an|the)\b)")),
    ("likes", re.compile(r"\bi (?:really )?(?:like|love|enjoy|adore)\s+" + _CLAUSE, re.I)),
    ("dislikes", re.compile(r"\bi (?:really )?(?:hate|dislike|can't stand|cannot stand)\s+" + _CLAUSE, re.I)),
    ("facts", re.compile(r"\b(i(?: am|'m) (?:a|an) [^.!?,;\n]{2,50})", re.I)),
    ("facts", re.compile(r"\b[Ii](?: am|'m) [A-Z][\w'-]+, ((?:a|an) [^.!?,;\n]{2,50})")),
    ("facts", re.compile(r"\b(i (?:live|work|grew up|was born) [^.!?,;\n]{2,60})", re.I)),
    ("facts", re.compile(r"\b(my [a-z]+ (?:is|are|was) [^.!?,;\n]{2,50})", re.I)),
    ("facts", re.compile(r"\b(i have (?:a|an|two|three|\d+) [^.!?,;\n]{2,50})", re.I)),
]
_SUBJECT = re.compile(r"^i(?:'m\b|\b)", re.I)
NOT_NAMES = {"Not", "So", "Just", "Sorry", "Here", "Fine", "Good", "Back", "Sure", "Going", "Very", "Really"}


def rule_updates(user_text: str) -> dict[str, Any]:
    """What the user said outright about themselves, as a partial state."""
    found: dict[str, Any] = {}
    for field, pattern in RULES:
        for match in pattern.finditer(user_text):
            value = match.group(1).strip()
            if field == "name":
                if value not in NOT_NAMES and "name" not in found:
                    found["name"] = value
            else:
                value = f"I am {value}" if re.match(r"(?:a|an) ", value) else _SUBJECT.sub(_pronoun, value)
                found.setdefault(field, []).append(value)
    return {"user": found} if found else {}


def _pronoun(match: re.Match[str]) -> str:
    return "I am" if match.group(0).endswith("'m") else "I"


def merge(state: DialogueState, update: dict[str, Any]) -> DialogueState:
    """A new state with `update` folded in; invalid parts of `update` are ignored field by field."""
    data = state.model_dump()
    for section, values in update.items():
        if section not in data:
            continue
        if not isinstance(data[section], dict):
            candidate = {**data, section: values}
            data = candidate if _valid(candidate) else data
            continue
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            current = data[section].get(key, None) if key in data[section] else _MISSING
            if current is _MISSING:
                continue
            merged = _merge_value(current, value)
            candidate = {**data, section: {**data[section], key: merged}}
            if _valid(candidate):
                data = candidate
    return DialogueState.model_validate(data)


_MISSING = object()


def _merge_value(current: Any, value: Any) -> Any:
    if isinstance(current, list) and isinstance(value, list):
        seen = {str(v).casefold() for v in current}
        added = [v for v in value if isinstance(v, str) and v.strip() and v.casefold() not in seen]
        return (current + added)[-MAX_ITEMS:]
    if isinstance(value, str) and not value.strip():
        return current
    return value


def _valid(data: dict[str, Any]) -> bool:
    try:
        DialogueState.model_validate(data)
    except ValidationError:
        return False
    return True

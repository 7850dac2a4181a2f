"""Plain values the store hands out, detached from any database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class CharacterInfo:
    id: str
    name: str
    source: str
    created_at: datetime
    owner: str | None = None


@dataclass(frozen=True)
class SessionInfo:
    id: str
    character_id: str
    title: str
    user_name: str
    persona: str
    head_id: int | None
    created_at: datetime
    updated_at: datetime
    message_count: int = 0
    owner: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    id: int
    session_id: str
    parent_id: int | None
    depth: int
    role: str
    name: str
    content: str
    created_at: datetime
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NewMessage:
    """A message to append in a turn."""

    role: str
    name: str
    content: str
    meta: dict = field(default_factory=dict)


class Unset:
    """Marks an optional filter or check that was not asked for (None is a real value for owners and heads)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()

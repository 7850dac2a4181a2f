"""Character shapes for the native REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from rolecraft.server.sessions.protocol import utc
from rolecraft.store.records import CharacterInfo


class CharacterOut(BaseModel):
    id: str
    name: str
    source: str
    created_at: datetime

    @classmethod
    def of(cls, info: CharacterInfo) -> CharacterOut:
        return cls(id=info.id, name=info.name, source=info.source, created_at=utc(info.created_at))


class CharacterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CharacterOut]


class Expressions(BaseModel):
    """Expression label → sprite asset URI, as the card declares them."""

    character_id: str
    expressions: dict[str, str]

"""Routes: /v1/personas and /v1/lorebooks.

A persona is a name and a description; a lorebook is the Character Card
`character_book`. Both are answered by the engine's persona and lorebook
stores. A library lorebook is attached to a session with POST
/v1/sessions/{id}/lorebooks; a character's own lorebook lives at
/v1/characters/{id}/lorebook.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from rolecraft.characters.model import Lorebook
from rolecraft.server.auth import Caller
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.sessions.protocol import CHAR_ID
from rolecraft.server.state import State

router = APIRouter(prefix="/v1", tags=["library"], responses=ERROR_RESPONSES)
ItemId = Annotated[str, Path(pattern=CHAR_ID)]


class Persona(BaseModel):
    """Who the user is in the story."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str = Field("", max_length=8000)


async def _call(state: State, library: str, method: str, *args: Any) -> Any:
    store = getattr(state.engine, library)
    return await state.runtime.call(getattr(store, method), *args)


@router.get("/personas")
async def list_personas(state: State, _: Caller) -> Any:
    return await _call(state, "personas", "list")


@router.put("/personas/{persona_id}")
async def put_persona(persona_id: ItemId, body: Persona, state: State, _: Caller) -> Any:
    return await _call(state, "personas", "put", persona_id, body)


@router.delete("/personas/{persona_id}")
async def delete_persona(persona_id: ItemId, state: State, _: Caller) -> Any:
    return await _call(state, "personas", "delete", persona_id)


@router.get("/lorebooks")
async def list_lorebooks(state: State, _: Caller) -> Any:
    return await _call(state, "lorebooks", "list")


@router.get("/lorebooks/{book_id}")
async def get_lorebook(book_id: ItemId, state: State, _: Caller) -> Any:
    return await _call(state, "lorebooks", "get", book_id)


@router.put("/lorebooks/{book_id}")
async def put_lorebook(book_id: ItemId, body: Lorebook, state: State, _: Caller) -> Any:
    return await _call(state, "lorebooks", "put", book_id, body)


@router.delete("/lorebooks/{book_id}")
async def delete_lorebook(book_id: ItemId, state: State, _: Caller) -> Any:
    return await _call(state, "lorebooks", "delete", book_id)

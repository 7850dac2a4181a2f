"""Routes: /v1/personas and /v1/lorebooks.

A persona is a name and a description; a lorebook is the Character Card
`character_book`. Both are answered by the engine's persona and lorebook
stores, which keep each caller's own apart (another key's ids answer 404,
like unknown ones). A library lorebook is attached to a session with POST
/v1/sessions/{id}/lorebooks; a character's own lorebook lives at
/v1/characters/{id}/lorebook.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rolecraft.characters.model import Lorebook
from rolecraft.server.auth import Caller
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.sessions.protocol import CHAR_ID
from rolecraft.server.state import State
from rolecraft.store.text import nul_free

router = APIRouter(prefix="/v1", tags=["library"], responses=ERROR_RESPONSES)
ItemId = Annotated[str, Path(pattern=CHAR_ID)]


class Persona(BaseModel):
    """Who the user is in the story."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, AfterValidator(nul_free)] = Field(min_length=1, max_length=64)
    description: Annotated[str, AfterValidator(nul_free)] = Field("", max_length=8000)
    default: bool = Field(False, description="Play this persona in your new sessions that name no one else.")


async def _call(state: State, library: str, method: str, caller: Caller, *args: Any) -> Any:
    """Run one persona/lorebook store method for `caller` (its own library only)."""
    store = getattr(state.engine, library)
    return await state.runtime.call(getattr(store, method), *args, caller.owner)


@router.get("/personas")
async def list_personas(state: State, caller: Caller) -> Any:
    return await _call(state, "personas", "list", caller)


@router.put("/personas/{persona_id}")
async def put_persona(persona_id: ItemId, body: Persona, state: State, caller: Caller) -> Any:
    return await _call(state, "personas", "put", caller, persona_id, body)


@router.delete("/personas/{persona_id}")
async def delete_persona(persona_id: ItemId, state: State, caller: Caller) -> Any:
    return await _call(state, "personas", "delete", caller, persona_id)


@router.get("/lorebooks")
async def list_lorebooks(state: State, caller: Caller) -> Any:
    return await _call(state, "lorebooks", "list", caller)


@router.get("/lorebooks/{book_id}")
async def get_lorebook(book_id: ItemId, state: State, caller: Caller) -> Any:
    return await _call(state, "lorebooks", "get", caller, book_id)


@router.put("/lorebooks/{book_id}")
async def put_lorebook(book_id: ItemId, body: Lorebook, state: State, caller: Caller) -> Any:
    return await _call(state, "lorebooks", "put", caller, book_id, body)


@router.delete("/lorebooks/{book_id}")
async def delete_lorebook(book_id: ItemId, state: State, caller: Caller) -> Any:
    return await _call(state, "lorebooks", "delete", caller, book_id)

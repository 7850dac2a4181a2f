"""Routes: /v1/characters — upload, list, get, export, avatar, delete, lorebook, expressions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rolecraft.characters.model import Lorebook
from rolecraft.errors import RolecraftError
from rolecraft.server.auth import Caller
from rolecraft.server.characters import serving
from rolecraft.server.characters.protocol import CharacterList, CharacterOut, Expressions
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.sessions.protocol import CHAR_ID, Deleted
from rolecraft.server.state import State

router = APIRouter(prefix="/v1/characters", tags=["characters"], responses=ERROR_RESPONSES)
CharId = Annotated[str, Path(pattern=CHAR_ID)]
LABEL = r"^[a-z_]{1,32}$"
BINARY = {"content": {"image/png": {}, "application/json": {}, "application/zip": {}}}


@router.get("", response_model=CharacterList)
async def listing(state: State, caller: Caller) -> CharacterList:
    """Your uploads and the shared characters (bundled samples, the operator's imports)."""
    return await run_in_threadpool(serving.listing, state.engine, caller)


@router.post("", response_model=CharacterOut, status_code=201)
async def upload(state: State, caller: Caller, file: Annotated[UploadFile, File(description="PNG, JSON or CHARX card")],
                 char_id: Annotated[str | None, Form(alias="id", pattern=CHAR_ID)] = None) -> CharacterOut:
    """Import a card file; its id is `id` or one derived from the character's name."""
    limit = state.engine.settings.max_card_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise RolecraftError(f"the card file is larger than the limit of {limit} bytes", code="request_too_large",
                             status=413, param="file")
    name = (file.filename or "card").replace("\\", "/").rsplit("/", 1)[-1][:100]
    return await run_in_threadpool(serving.upload, state.engine, data, name, char_id, caller)


@router.get("/{char_id}", response_model=dict[str, Any])
async def card(char_id: CharId, state: State, caller: Caller) -> dict:
    """The character as a Character Card V3 (JSON)."""
    return await run_in_threadpool(serving.card, state.engine, char_id, caller)


@router.get("/{char_id}/export", response_class=Response, responses={200: BINARY})
async def export(char_id: CharId, state: State, caller: Caller,
                 fmt: Annotated[Literal["png", "json", "charx"], Query(alias="format")] = "png",
                 spec: Literal["v2", "v3"] = "v3") -> Response:
    """Download the card as PNG (V2 `chara` + V3 `ccv3` chunks), JSON or CHARX."""
    data, headers = await run_in_threadpool(serving.export, state.engine, char_id, fmt, spec, caller)
    return Response(data, media_type=serving.MEDIA_TYPES[fmt], headers=headers)


@router.get("/{char_id}/avatar", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def avatar(char_id: CharId, state: State, caller: Caller) -> Response:
    data, mime = await run_in_threadpool(serving.avatar, state.engine, char_id, caller)
    return Response(data, media_type=mime)


@router.delete("/{char_id}", response_model=Deleted)
async def delete(char_id: CharId, state: State, caller: Caller) -> Deleted:
    """Delete a character and your sessions with it (refused while others have sessions with it)."""
    await run_in_threadpool(serving.delete, state.engine, char_id, caller)
    return Deleted(id=char_id)


@router.get("/{char_id}/lorebook", response_model=Lorebook | None)
async def lorebook(char_id: CharId, state: State, caller: Caller) -> Lorebook | None:
    """The character's own lorebook (character_book), or null."""
    return await run_in_threadpool(serving.lorebook, state.engine, char_id, caller)


@router.put("/{char_id}/lorebook", response_model=Lorebook | None)
async def put_lorebook(char_id: CharId, book: Lorebook | None, state: State, caller: Caller) -> Lorebook | None:
    """Replace the character's lorebook (null removes it); shared characters are read-only for API keys."""
    return await run_in_threadpool(serving.put_lorebook, state.engine, char_id, book, caller)


@router.get("/{char_id}/expressions", response_model=Expressions)
async def expressions(char_id: CharId, state: State, caller: Caller) -> Expressions:
    """Expression labels the card maps to sprites."""
    return await run_in_threadpool(serving.expressions, state.engine, char_id, caller)


@router.get("/{char_id}/expressions/{label}", response_class=Response, responses={200: {"content": {"image/*": {}}}})
async def sprite(char_id: CharId, label: Annotated[str, Path(pattern=LABEL)], state: State, caller: Caller) -> Response:
    """The sprite image for one expression label."""
    await run_in_threadpool(serving.card, state.engine, char_id, caller)
    data, mime = await state.runtime.call(state.engine.expression_sprite, char_id, label)
    return Response(data, media_type=mime)

"""Routes: /v1/attachments/{sha256} — the bytes of a picture or recording you sent, with its media type.

Messages name their attachments in `meta.attachments`; only an owner of the
bytes gets them (anyone else gets the 404 of an unknown hash, from the store).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rolecraft.server.auth import Caller
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.state import State

router = APIRouter(prefix="/v1/attachments", tags=["attachments"], responses=ERROR_RESPONSES)
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the bytes, lowercase hex.")]
MEDIA = {"image/*": {}, "audio/*": {}}


@router.get("/{sha256}", response_class=Response, responses={200: {"content": MEDIA}})
async def attachment(sha256: Sha256, state: State, caller: Caller) -> Response:
    """The stored bytes; they never change, so clients may cache them for good."""
    data, media_type = await run_in_threadpool(state.engine.store.get_attachment, sha256, caller.owner)
    return Response(data, media_type=media_type,
                    headers={"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{sha256}"'})

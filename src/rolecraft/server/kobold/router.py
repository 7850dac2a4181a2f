"""Routes of KoboldCpp's API: generate, streamed generate, tokencount, abort, model, version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from rolecraft.server.auth import Caller
from rolecraft.server.completions.text import SSE_EVENT
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.kobold import serving
from rolecraft.server.kobold.protocol import AbortBody, GenerateAnswer, GenerateBody, TokenCountBody
from rolecraft.server.state import State

router = APIRouter(prefix="/api", tags=["KoboldCpp"], responses=ERROR_RESPONSES)
Running = Annotated[serving.Generations, Depends(serving.generations)]

STREAM_DOC = {"description": 'Server-sent `event: message` / `data: {"token": ..., "finish_reason": ...}`.',
              "content": {"text/event-stream": SSE_EVENT}}


@router.post("/v1/generate", response_model=GenerateAnswer)
async def generate(body: GenerateBody, request: Request, state: State, caller: Caller, running: Running) -> Response:
    """Continue `memory + prompt` as written (max_length, rep_pen, sampler fields)."""
    return await serving.generate(state, body, request, running, caller.owner)


@router.post("/extra/generate/stream", responses={200: STREAM_DOC})
async def generate_stream(body: GenerateBody, state: State, caller: Caller, running: Running) -> Response:
    """The same, streamed token by token."""
    return await serving.stream(state, body, running, caller.owner)


@router.post("/extra/tokencount")
async def token_count(body: TokenCountBody, state: State, caller: Caller) -> dict[str, Any]:
    """{"value": tokens in `prompt`, "ids": [...]} with the served model's tokenizer."""
    return await serving.token_count(state, body)


@router.post("/extra/abort")
async def abort(caller: Caller, running: Running, body: AbortBody | None = None) -> dict[str, Any]:
    """Stop the generation named by `genkey` (all of them without one); it answers with its text so far."""
    return serving.abort(body, running)


@router.get("/v1/model")
async def model(state: State, caller: Caller) -> dict[str, str]:
    return serving.model(state)


@router.get("/extra/version")
async def version(caller: Caller) -> dict[str, str]:
    """KoboldCpp's API level these routes follow (clients enable streaming, abort and tokencount from it)."""
    return serving.version()

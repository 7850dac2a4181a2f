"""Routes of Ollama's API: /api/chat, /api/generate (NDJSON streams), /api/tags, /api/show, /api/version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rolecraft.server.auth import Caller
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.ollama import models, serving
from rolecraft.server.ollama.protocol import ChatBody, GenerateBody, ShowBody
from rolecraft.server.state import State

router = APIRouter(prefix="/api", tags=["Ollama"], responses=ERROR_RESPONSES)

STREAM_DOC = {"description": "Unless stream=false: one JSON object per line, the last with done=true.",
              "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}


@router.post("/chat", responses={200: STREAM_DOC})
async def chat(body: ChatBody, request: Request, state: State, caller: Caller) -> Response:
    """A reply to `messages` (pictures in `images` are perceived); a character id answers in character."""
    return await serving.chat(state, body, request, caller.owner)


@router.post("/generate", responses={200: STREAM_DOC})
async def generate(body: GenerateBody, request: Request, state: State, caller: Caller) -> Response:
    """Continue `prompt` as written (`raw`: true), or answer it as one user turn."""
    return await serving.generate(state, body, request, caller.owner)


@router.get("/tags")
async def tags(state: State, caller: Caller) -> dict[str, Any]:
    """The models, as GET /v1/models lists them."""
    return await run_in_threadpool(models.tags, state.engine, caller.owner)


@router.post("/show")
async def show(body: ShowBody, state: State, caller: Caller) -> dict[str, Any]:
    """One model: chat template, context length, capabilities."""
    model = serving.model_id(body.model_id)
    return await state.runtime.call(models.show, state.engine, model, caller.owner)


@router.get("/version")
async def version(caller: Caller) -> dict[str, str]:
    return models.version()

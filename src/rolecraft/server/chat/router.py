"""Route: POST /v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rolecraft.server.auth import Caller
from rolecraft.server.chat import serving
from rolecraft.server.chat.protocol import ChatCompletion, ChatCompletionRequest
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.state import State

router = APIRouter(prefix="/v1", tags=["chat"], responses=ERROR_RESPONSES)

STREAM_DOC = {"description": "With stream=true: server-sent `chat.completion.chunk` events, then `data: [DONE]`.",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}


@router.post("/chat/completions", response_model=ChatCompletion, responses={200: STREAM_DOC})
async def chat_completions(body: ChatCompletionRequest, request: Request, state: State, caller: Caller) -> Response:
    """Talk to a character (model = character id) or the base model, statelessly or in a stored session
    (header X-Rolecraft-Session, metadata.session_id, or user="session:<id>")."""
    return await serving.create(state, caller, body, request)

"""Route: POST /v1/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rolecraft.server.auth import Caller
from rolecraft.server.completions import serving
from rolecraft.server.completions.protocol import Completion, CompletionRequest
from rolecraft.server.completions.text import SSE_EVENT
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.state import State

router = APIRouter(prefix="/v1", tags=["completions"], responses=ERROR_RESPONSES)

STREAM_DOC = {"description": "With stream=true: server-sent `text_completion` events, then `data: [DONE]`.",
              "content": {"text/event-stream": SSE_EVENT}}


@router.post("/completions", response_model=Completion, responses={200: STREAM_DOC})
async def completions(body: CompletionRequest, request: Request, state: State, caller: Caller) -> Response:
    """Continue a prompt exactly as written (no chat template). Sampler fields under any common alias
    (llama.cpp, KoboldCpp, vLLM) are honoured; unknown ones are ignored and listed in X-Rolecraft-Ignored."""
    return await serving.create(state, body, request, caller.owner)

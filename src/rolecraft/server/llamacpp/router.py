"""Routes of llama.cpp's server API: POST /completion (and /completions), /tokenize, /detokenize; GET /props.
(/health is the app's own.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rolecraft.server.auth import Caller
from rolecraft.server.completions.text import SSE_EVENT
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.llamacpp import serving
from rolecraft.server.llamacpp.protocol import CompletionBody, DetokenizeBody, TokenizeBody
from rolecraft.server.state import State

router = APIRouter(tags=["llama.cpp"], responses=ERROR_RESPONSES)

STREAM_DOC = {"description": 'With stream=true: `data: {"content": ..., "stop": false}` events, then one '
                             '`"stop": true` summary.',
              "content": {"text/event-stream": SSE_EVENT}}


@router.post("/completion", responses={200: STREAM_DOC})
@router.post("/completions", include_in_schema=False)
async def completion(body: CompletionBody, request: Request, state: State, caller: Caller) -> Response:
    """Continue a prompt as written (llama-server's native completion; n_predict, sampler fields, n_probs)."""
    return await serving.complete(state, body, request, caller.owner)


@router.post("/tokenize")
async def tokenize(body: TokenizeBody, state: State, caller: Caller) -> dict[str, Any]:
    """Token ids of `content` (llama.cpp) or `prompt` (vLLM) with the served model's tokenizer."""
    return await serving.tokenize(state, body)


@router.post("/detokenize")
async def detokenize(body: DetokenizeBody, state: State, caller: Caller) -> dict[str, str]:
    """Text of token ids."""
    return await serving.detokenize(state, body)


@router.get("/props")
async def props(state: State, caller: Caller) -> dict[str, Any]:
    """Context size, default sampling and the chat template, as llama-server reports them."""
    return await serving.props(state)

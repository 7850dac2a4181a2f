"""KoboldCpp's API over rolecraft's raw-prompt run: generate (whole, or streamed as `event: message` SSE with
`{"token": ...}`), tokencount, abort by genkey, model and version.

An aborted generation answers with the text made so far, as KoboldCpp does; SillyTavern calls abort when
its user presses Stop. `/api/extra/version` says "KoboldCpp" with the KoboldCpp API level these routes
follow, because that is how clients decide whether streaming, abort and tokencount exist.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from rolecraft import __version__
from rolecraft.errors import RolecraftError
from rolecraft.server.completions import text
from rolecraft.server.kobold.protocol import AbortBody, GenerateAnswer, GenerateBody, GenerateResult, TokenCountBody
from rolecraft.server.model_jobs import Outcome
from rolecraft.server.runtime import Run
from rolecraft.server.state import ServerState
from rolecraft.server.streaming import EventStream, error_event, finish_unless_gone

KOBOLDCPP_API_LEVEL = "1.80"


class Generations:
    """Generations in flight by genkey, so /api/extra/abort can stop them (one registry per app)."""

    def __init__(self) -> None:
        self._runs: dict[str, Run[Outcome]] = {}

    def start(self, key: str, run: Run[Outcome]) -> None:
        self._runs[key] = run

    def finish(self, key: str) -> None:
        self._runs.pop(key, None)

    def abort(self, key: str | None) -> bool:
        """Stop the generation `key` (every one without a key); whether any was running."""
        runs = list(self._runs.values()) if key is None else [r for r in [self._runs.get(key)] if r]
        for run in runs:
            run.cancel()
        return bool(runs)


def generations(request: Request) -> Generations:
    """This app's registry, made on first use."""
    app_state = request.app.state
    if not hasattr(app_state, "kobold_generations"):
        app_state.kobold_generations = Generations()
    return app_state.kobold_generations


async def _start(state: ServerState, body: GenerateBody, owner: str | None) -> tuple[Run[Outcome], text.Fields]:
    if body.images:
        raise RolecraftError("pictures are not supported on raw prompts; send them to /v1/chat/completions",
                             code="unsupported_content", param="images")
    fields = text.read_fields(state, body.model_extra, reply_param="max_length")
    target = await text.target_of(state, body.model, owner)
    return text.raw_run(state, target, text.check_prompt(state, body.text), fields), fields


def _result(run: Run[Outcome], pieces: list[str]) -> GenerateResult:
    if run.result is None:  # aborted: the text so far
        return GenerateResult(text="".join(pieces), finish_reason="abort")
    reply = run.result.reply
    return GenerateResult(text=reply.text, finish_reason=reply.finish_reason, prompt_tokens=reply.prompt_tokens,
                          completion_tokens=reply.completion_tokens)


async def generate(state: ServerState, body: GenerateBody, http: Request, running: Generations,
                   owner: str | None) -> Response:
    """POST /api/v1/generate: {"results": [{"text": ...}]}."""
    run, fields = await _start(state, body, owner)
    key = body.genkey or uuid.uuid4().hex
    running.start(key, run)
    pieces: list[str] = []
    try:
        if not await finish_unless_gone(run, http, pieces):
            return Response(status_code=499)
    finally:
        running.finish(key)
    answer = GenerateAnswer(results=[_result(run, pieces)])
    return JSONResponse(answer.model_dump(), headers=fields.headers)


def _message(payload: dict[str, Any]) -> str:
    return f"event: message\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def stream(state: ServerState, body: GenerateBody, running: Generations, owner: str | None) -> Response:
    """POST /api/extra/generate/stream: `event: message` / `data: {"token": ..., "finish_reason": ...}`."""
    run, fields = await _start(state, body, owner)
    key = body.genkey or uuid.uuid4().hex
    running.start(key, run)
    return EventStream(_events(run, key, running), headers=fields.headers)


async def _events(run: Run[Outcome], key: str, running: Generations) -> AsyncGenerator[str, None]:
    try:
        async for piece in run.pieces():
            yield _message({"token": piece, "finish_reason": None})
        finish = run.result.reply.finish_reason if run.result is not None else "abort"
        yield _message({"token": "", "finish_reason": finish})
    except Exception as exc:
        yield error_event(exc, "KoboldCpp stream")
    finally:
        run.cancel()
        running.finish(key)


async def token_count(state: ServerState, body: TokenCountBody) -> dict[str, Any]:
    ids = await text.tokenize(state, body.prompt, add_special=False)
    return {"value": len(ids), "ids": ids}


def abort(body: AbortBody | None, running: Generations) -> dict[str, Any]:
    stopped = running.abort(body.genkey if body else None)
    return {"success": "true", "done": "true" if stopped else "false"}


def model(state: ServerState) -> dict[str, str]:
    return {"result": f"rolecraft/{state.engine.settings.model}"}


def version() -> dict[str, str]:
    return {"result": "KoboldCpp", "version": KOBOLDCPP_API_LEVEL, "rolecraft": __version__}

"""Ollama's chat and generate over rolecraft's jobs, answered as Ollama does: one JSON object, or NDJSON lines
(`done: false` pieces, then a `done: true` line with the counts and durations in nanoseconds).

`/api/chat` messages become the same OpenAI-style messages chat completions reads (pictures as image_url
parts), so they pass the same checks and reach the same perception path and the same jobs: a character id
answers in character, the base model answers the messages as they are. `/api/generate` with `raw` is a
text completion; without it, its prompt is one user turn (after `system`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from rolecraft.conversation.reply import Reply
from rolecraft.errors import RolecraftError
from rolecraft.server import media
from rolecraft.server.chat import messages as reading
from rolecraft.server.chat.protocol import ChatMessage
from rolecraft.server.completions import text
from rolecraft.server.model_jobs import Incoming, Outcome, base_model_job, character_job
from rolecraft.server.models.serving import Target
from rolecraft.server.ollama.protocol import ChatBody, GenerateBody, OllamaMessage, OllamaRequest
from rolecraft.server.runtime import Job, Run
from rolecraft.server.state import ServerState
from rolecraft.server.streaming import EventStream, finish_unless_gone, log

NS = 1_000_000_000


class NdjsonStream(EventStream):
    """Ollama's streaming: one JSON object per line."""

    media_type = "application/x-ndjson"


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def model_id(name: str) -> str:
    """Ollama clients add a tag; rolecraft ids have none."""
    return name.removesuffix(":latest")


def _stats(reply: Reply) -> dict[str, Any]:
    return {"done_reason": reply.finish_reason, "total_duration": int(reply.total_s * NS), "load_duration": 0,
            "prompt_eval_count": reply.prompt_tokens, "prompt_eval_duration": int(reply.ttft_s * NS),
            "eval_count": reply.completion_tokens,
            "eval_duration": int(max(reply.total_s - reply.ttft_s, 0.0) * NS)}


def _data_url(picture: str, param: str) -> str:
    """Ollama sends bare base64; some clients send a data: URL. Either way, a checked data: URL."""
    if picture.startswith("data:"):
        media.image_from_url(picture, param=param)
        return picture
    data = media.decode_base64(picture, param=param, what="the picture", code="invalid_image")
    return f"data:{media.check_image(data, param=param)};base64,{''.join(picture.split())}"


def _chat_message(message: OllamaMessage, index: int) -> ChatMessage:
    """An Ollama message as chat completions' message: text, then each picture as a data: URL part."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for j, picture in enumerate(message.images or []):
        parts.append({"type": "image_url", "image_url": {"url": _data_url(picture, f"messages[{index}].images[{j}]")}})
    content: Any = parts if message.images else message.content
    return ChatMessage.model_validate({"role": message.role, "content": content, "tool_calls": message.tool_calls})


def _fields(state: ServerState, body: OllamaRequest) -> text.Fields:
    top = text.read_fields(state, body.model_extra)
    options = text.read_fields(state, body.options, prefix="options.", reply_param="options.num_predict")
    fields = text.merge(options, top)
    schema = body.json_schema()
    if schema is not None:
        fields.overrides["json_schema"] = schema
    return fields


def _job(state: ServerState, target: Target, incoming: list[Incoming], fields: text.Fields,
         owner: str | None) -> Job[Outcome]:
    engine = state.engine
    if target.character_id is not None:
        return character_job(engine, target.character_id, incoming, fields.overrides, fields.stops, owner=owner)
    overrides = {**fields.overrides, "adapter": target.adapter} if target.adapter else fields.overrides
    return base_model_job(engine, incoming, overrides, fields.stops)


async def _chat_run(state: ServerState, target: Target, messages: list[OllamaMessage],
                    fields: text.Fields, owner: str | None) -> Run[Outcome]:
    wire = await run_in_threadpool(lambda: [_chat_message(m, i) for i, m in enumerate(messages)])
    incoming = await run_in_threadpool(reading.read_messages, wire, state.server.text_limits())
    return state.runtime.run(await run_in_threadpool(_job, state, target, incoming, fields, owner))


def _loaded(model: str, key: str, value: Any) -> JSONResponse:
    """Ollama's answer to a request with nothing to say: the model is loaded."""
    return JSONResponse({"model": model, "created_at": now(), key: value, "done": True, "done_reason": "load"})


async def chat(state: ServerState, body: ChatBody, http: Request, owner: str | None) -> Response:
    """POST /api/chat."""
    body.check_supported()
    fields = _fields(state, body)
    target = await text.target_of(state, model_id(body.model), owner)
    if not body.messages:
        return _loaded(body.model, "message", {"role": "assistant", "content": ""})
    run = await _chat_run(state, target, body.messages, fields, owner)
    shape = Shape(body.model, "message")
    return await _answer(run, shape, body.stream, http, fields)


async def generate(state: ServerState, body: GenerateBody, http: Request, owner: str | None) -> Response:
    """POST /api/generate: raw text completion, or one user turn."""
    body.check_supported()
    fields = _fields(state, body)
    target = await text.target_of(state, model_id(body.model), owner)
    if not body.prompt and not body.images:
        return _loaded(body.model, "response", "")
    if body.raw:
        run = text.raw_run(state, target, text.check_prompt(state, body.prompt), fields)
    else:
        messages = [OllamaMessage(role="system", content=body.system)] if body.system else []
        messages.append(OllamaMessage(role="user", content=body.prompt, images=body.images))
        run = await _chat_run(state, target, messages, fields, owner)
    return await _answer(run, Shape(body.model, "response"), body.stream, http, fields)


class Shape:
    """Where the text goes in each line: chat's `message.content` or generate's `response`."""

    def __init__(self, model: str, key: str) -> None:
        self.model, self.key = model, key

    def line(self, piece: str, **extra: Any) -> dict[str, Any]:
        value: Any = {"role": "assistant", "content": piece} if self.key == "message" else piece
        return {"model": self.model, "created_at": now(), self.key: value, "done": False, **extra}

    def last(self, reply: Reply, piece: str) -> dict[str, Any]:
        return self.line(piece, done=True, **_stats(reply))


async def _answer(run: Run[Outcome], shape: Shape, stream: bool, http: Request, fields: text.Fields) -> Response:
    if stream:
        return NdjsonStream(_lines(run, shape), headers=fields.headers)
    if not await finish_unless_gone(run, http):
        return Response(status_code=499)
    assert run.result is not None
    reply = run.result.reply
    return JSONResponse(shape.last(reply, reply.text), headers=fields.headers)


def _ndjson(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"


async def _lines(run: Run[Outcome], shape: Shape) -> AsyncGenerator[str, None]:
    try:
        async for piece in run.pieces():
            yield _ndjson(shape.line(piece))
        assert run.result is not None
        yield _ndjson(shape.last(run.result.reply, ""))
    except RolecraftError as exc:
        yield _ndjson({"error": exc.message})
    except Exception as exc:
        log.error("Ollama stream failed", exc_info=exc)
        yield _ndjson({"error": "the server hit an internal error; it has been logged"})
    finally:
        run.cancel()

"""Chat completions: resolve the model, read the messages, run the reply, answer as OpenAI does.

Three modes, chosen by the request:
- a stored session (X-Rolecraft-Session header, metadata.session_id, or user="session:<id>"):
  the last user message is the new turn; history comes from the store and the turn is stored;
- a character id without a session: the client holds the history (stateless, nothing stored);
- the base model id: the messages go to the model unchanged;
- an adapter's name: the same, through that LoRA adapter (as vLLM serves --lora-modules).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.server.auth import Principal
from rolecraft.server.chat import messages as reading
from rolecraft.server.chat.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    RolecraftInfo,
    Usage,
)
from rolecraft.server.limits import check_reply_tokens
from rolecraft.server.model_jobs import Outcome, base_model_job, character_job, session_job
from rolecraft.server.models.serving import Target, resolve
from rolecraft.server.runtime import Job, Run
from rolecraft.server.sessions.serving import owned_session
from rolecraft.server.state import ServerState
from rolecraft.server.streaming import DONE, EventStream, error_event, event, finish_unless_gone

SESSION_HEADER = "X-Rolecraft-Session"


@dataclass(frozen=True)
class Stamp:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra: object) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": [choice], **extra}


def _usage(outcome: Outcome) -> Usage:
    reply = outcome.reply
    return Usage(prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                 total_tokens=reply.prompt_tokens + reply.completion_tokens)


def _info(outcome: Outcome) -> RolecraftInfo | None:
    if outcome.session_id is None:
        return None
    return RolecraftInfo(session_id=outcome.session_id, message_ids=[m.id for m in outcome.stored])


def _job(state: ServerState, caller: Principal, target: Target, request: ChatCompletionRequest,
         session_id: str | None, messages: list[Message]) -> Job[Outcome]:
    engine, overrides, stops = state.engine, request.sampling_overrides(), request.stop_list
    if session_id is not None:
        info = owned_session(engine, session_id, caller)
        if target.character_id != info.character_id:
            raise RolecraftError(f"session {session_id!r} is with {info.character_id!r}, not {request.model!r}",
                                 code="model_mismatch", param="model")
        if messages[-1].role != "user" or not messages[-1].content.strip():
            raise RolecraftError("in a session, the last message must be the user's new turn",
                                 code="invalid_messages", param=f"messages[{len(messages) - 1}]")
        text = messages[-1].content
        return session_job(engine, session_id, lambda session: session.send(text), overrides, stops)
    if target.character_id is not None:
        user = (request.metadata or {}).get("user_name") or engine.settings.user_name
        return character_job(engine, target.character_id, messages, overrides, stops, user)
    if target.adapter is not None:
        overrides = {**overrides, "adapter": target.adapter}
    return base_model_job(engine, messages, overrides, stops)


async def create(state: ServerState, caller: Principal, request: ChatCompletionRequest,
                 http: Request) -> Response:
    """Answer one chat completion request, streamed or whole."""
    request.check_supported()
    check_reply_tokens(request.sampling_overrides(), state.server.max_reply_tokens,
                       "max_completion_tokens" if request.max_completion_tokens else "max_tokens")
    engine = state.engine
    target = await run_in_threadpool(resolve, engine, request.model)
    incoming = await run_in_threadpool(reading.read_messages, request.messages)
    if any(m.media for m in incoming):
        messages = await state.runtime.call(reading.render, engine, incoming)
    else:
        messages = [Message(m.role, m.text) for m in incoming]
    session_id = request.session_ref(http.headers.get(SESSION_HEADER))
    job = await run_in_threadpool(_job, state, caller, target, request, session_id, messages)
    run = state.runtime.run(job)
    stamp = Stamp(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), request.model)
    headers = {SESSION_HEADER: session_id} if session_id else {}
    if request.stream:
        usage = bool(request.stream_options and request.stream_options.include_usage)
        return EventStream(_events(run, stamp, usage), headers=headers)
    if not await finish_unless_gone(run, http):
        return Response(status_code=499)
    completion = _completion(stamp, run.result)
    return JSONResponse(completion.model_dump(exclude=set() if completion.rolecraft else {"rolecraft"}),
                        headers=headers)


def _completion(stamp: Stamp, outcome: Outcome | None) -> ChatCompletion:
    assert outcome is not None
    reply = outcome.reply
    choice = Choice(message=AssistantMessage(content=reply.text), finish_reason=reply.finish_reason)  # type: ignore[arg-type]
    return ChatCompletion(id=stamp.id, created=stamp.created, model=stamp.model, choices=[choice],
                          usage=_usage(outcome), rolecraft=_info(outcome))


async def _events(run: Run[Outcome], stamp: Stamp, include_usage: bool) -> AsyncGenerator[str, None]:
    try:
        yield event(stamp.chunk({"role": "assistant", "content": ""}))
        async for piece in run.pieces():
            yield event(stamp.chunk({"content": piece}))
        outcome = run.result
        assert outcome is not None
        info = _info(outcome)
        extra = {"rolecraft": info.model_dump()} if info else {}
        yield event(stamp.chunk({}, outcome.reply.finish_reason, **extra))
        if include_usage:
            yield event({**stamp.chunk({}), "choices": [], "usage": _usage(outcome).model_dump()})
    except Exception as exc:
        yield error_event(exc, "chat completion stream")
    finally:
        run.cancel()
    yield DONE

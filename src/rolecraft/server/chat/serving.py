"""Chat completions: resolve the model, read the messages, run the reply, answer as OpenAI does.

Three modes, chosen by the request:
- a stored session (X-Rolecraft-Session header, metadata.session_id, or user="session:<id>"):
  the last user message is the new turn; history comes from the store and the turn is stored;
- a character id without a session: the client holds the history (stateless, nothing stored);
- the base model id: the messages go to the model unchanged;
- an adapter's name: the same, through that LoRA adapter (as vLLM serves --lora-modules).
With n > 1 the choices are sampled one after another with seeds derived from the request's; in a
stored session the first is the turn and the others are swipes of it (`regenerate`).
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from rolecraft.backends.base import Capabilities
from rolecraft.conversation import ChatSession, Turn
from rolecraft.errors import RolecraftError
from rolecraft.server.auth import Principal
from rolecraft.server.chat import messages as reading
from rolecraft.server.chat.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ChoiceLogprobs,
    RolecraftInfo,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from rolecraft.server.chat.tools import CallBuffer, OutputPlan, check_grammars, plan_output
from rolecraft.server.limits import check_reply_tokens
from rolecraft.server.model_jobs import Incoming, Outcome, base_model_job, character_job, session_job
from rolecraft.server.models.serving import Target, resolve
from rolecraft.server.runtime import Job, Run
from rolecraft.server.sessions.serving import owned_session
from rolecraft.server.state import ServerState
from rolecraft.server.streaming import DONE, EventStream, error_event, event, finish_unless_gone

SESSION_HEADER = "X-Rolecraft-Session"
IGNORED_HEADER = "X-Rolecraft-Ignored"  # request fields that were not understood, hence ignored
log = logging.getLogger("rolecraft.server")


@dataclass(frozen=True)
class Stamp:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str

    def chunk(self, delta: dict, finish_reason: str | None = None, *, index: int = 0, logprobs: dict | None = None,
              **extra: object) -> dict:
        choice = {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": logprobs}
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": [choice], **extra}


def _job(state: ServerState, caller: Principal, target: Target, request: ChatCompletionRequest,
         session_id: str | None, incoming: list[Incoming]) -> Job[Outcome]:
    engine, overrides, stops = state.engine, request.sampling_overrides(), request.stop_list
    if session_id is not None:
        info = owned_session(engine, session_id, caller)
        if target.character_id != info.character_id:
            raise RolecraftError(f"session {session_id!r} is with {info.character_id!r}, not {request.model!r}",
                                 code="model_mismatch", param="model")
        new = incoming[-1]
        if new.role != "user":
            raise RolecraftError("in a session, the last message must be the user's new turn",
                                 code="invalid_messages", param=f"messages[{len(incoming) - 1}]")

        def start(session: ChatSession, sampling: dict) -> Turn:
            given = new.user_input(engine.settings.offline)
            return session.send(given.text, images=given.images, audio=given.audio, overrides=sampling)

        return session_job(engine, session_id, start, overrides, stops)
    if target.character_id is not None:
        user = (request.metadata or {}).get("user_name")
        return character_job(engine, target.character_id, incoming, overrides, stops, user, caller.owner)
    if target.adapter is not None:
        overrides = {**overrides, "adapter": target.adapter}
    return base_model_job(engine, incoming, overrides, stops)


async def create(state: ServerState, caller: Principal, request: ChatCompletionRequest,
                 http: Request) -> Response:
    """Answer one chat completion request (n choices), streamed or whole."""
    engine = state.engine
    ignored = request.check_supported(strict=engine.settings.strict_api)
    for name in ignored:
        _log_ignored(name)
    _check_backend(engine.backend.capabilities, engine.backend.name, request)
    check_reply_tokens(request.sampling_overrides(), state.server.max_reply_tokens,
                       "max_completion_tokens" if request.max_completion_tokens else "max_tokens")
    session_id = request.session_ref(http.headers.get(SESSION_HEADER))
    plan = _output_plan(engine.backend.capabilities, request, session_id)
    target = await run_in_threadpool(resolve, engine, request.model, caller.owner)
    incoming = await run_in_threadpool(reading.read_messages, request.messages, state.server.text_limits())
    if instructions := plan.instructions():
        incoming = [*incoming[:-1], Incoming("system", instructions), *incoming[-1:]]
    jobs = []
    for index, one in enumerate(_per_choice(request)):
        if index and session_id is not None:  # the other choices are swipes of the stored reply
            jobs.append(session_job(engine, session_id, lambda session, sampling: session.regenerate(sampling),
                                    one.sampling_overrides(), one.stop_list))
        else:
            jobs.append(await run_in_threadpool(_job, state, caller, target, one, session_id, incoming))
    run = state.runtime.run(_choices(jobs), key=session_id)
    stamp = Stamp(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), request.model)
    headers = {SESSION_HEADER: session_id} if session_id else {}
    if ignored:
        headers[IGNORED_HEADER] = ", ".join(ignored)
    if request.stream:
        usage = bool(request.stream_options and request.stream_options.include_usage)
        return EventStream(_events(run, stamp, usage, request.choices, plan), headers=headers)
    if not await finish_unless_gone(run, http):
        return Response(status_code=499)
    completion = _completion(stamp, run.result or [], plan)
    return JSONResponse(completion.model_dump(exclude=set() if completion.rolecraft else {"rolecraft"}),
                        headers=headers)


@functools.cache
def _log_ignored(name: str) -> None:
    """Say once per field name (per process) that a request field was ignored."""
    log.warning("ignoring the chat completion request field %r (set strict_api to refuse unknown fields)", name)


def _check_backend(capabilities: Capabilities, backend: str, request: ChatCompletionRequest) -> None:
    """Refuse what this backend would silently get wrong."""
    if request.logprobs and not capabilities.logprobs:
        raise RolecraftError(f"the {backend} backend cannot report log-probabilities; leave logprobs out",
                             code="unsupported_parameter", param="logprobs")


def _output_plan(capabilities: Capabilities, request: ChatCompletionRequest, session_id: str | None) -> OutputPlan:
    """Read tools / response_format, and put the constraint that enforces them on the request."""
    plan = plan_output(request.tools, request.tool_choice, request.response_format)
    if plan.calls_tools and session_id is not None:
        raise RolecraftError("tools are for stateless requests: a stored session's turns are in-character replies",
                             code="unsupported_parameter", param="tools")
    if capabilities.grammar:
        check_grammars(plan)
    request.constrain(plan.overrides(capabilities.grammar))
    return plan


def _per_choice(request: ChatCompletionRequest) -> list[ChatCompletionRequest]:
    """One request per choice, each with its own seed (derived from the request's; random if none)."""
    if request.choices == 1:
        return [request]
    base = request.seed if request.seed is not None and request.seed >= 0 else random.randrange(2**32)
    return [request.model_copy(update={"seed": (base + i) % 2**32}) for i in range(request.choices)]


class Piece(str):
    """Text of choice `index` (the runtime carries text); an empty one with `outcome` set ends that choice."""

    index: int = 0
    outcome: Outcome | None = None

    @classmethod
    def of(cls, text: str, index: int, outcome: Outcome | None = None) -> Piece:
        piece = cls(text)
        piece.index, piece.outcome = index, outcome
        return piece


def _choices(jobs: list[Job[Outcome]]) -> Job[list[Outcome]]:
    """Run the choices one after another, each piece tagged with its choice."""
    outcomes: list[Outcome] = []
    try:
        for index, job in enumerate(jobs):
            while True:
                try:
                    text = next(job)
                except StopIteration as done:
                    outcomes.append(done.value)
                    break
                yield Piece.of(text, index)
            yield Piece.of("", index, outcomes[-1])
    finally:
        for job in jobs:
            job.close()
    return outcomes


def _logprobs(outcome: Outcome) -> ChoiceLogprobs | None:
    final = outcome.reply.final
    if final is None or final.logprobs is None:
        return None
    return ChoiceLogprobs(content=[
        TokenLogprob(token=t.token, logprob=t.logprob, bytes=t.bytes,
                     top_logprobs=[TopLogprob(token=a, logprob=lp, bytes=b) for a, lp, b in t.top])
        for t in final.logprobs])


def _usage(outcomes: list[Outcome]) -> Usage:
    prompt = outcomes[0].reply.prompt_tokens if outcomes else 0
    completion = sum(o.reply.completion_tokens for o in outcomes)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _info(outcomes: list[Outcome]) -> RolecraftInfo | None:
    if not outcomes or outcomes[0].session_id is None:
        return None
    return RolecraftInfo(session_id=outcomes[0].session_id, message_ids=[m.id for o in outcomes for m in o.stored])


def _message(outcome: Outcome, plan: OutputPlan) -> tuple[AssistantMessage, str]:
    """The assistant message of a finished choice and its finish_reason: tool calls when the reply is one;
    a required call the reply could not complete (max_tokens) gives no content, never broken JSON."""
    reply = outcome.reply
    calls = plan.read_calls(reply.text)
    if calls is not None:
        return AssistantMessage(content=None, tool_calls=calls), "tool_calls"
    if plan.calls_tools and plan.choice == "required":
        return AssistantMessage(content=None), reply.finish_reason
    return AssistantMessage(content=reply.text), reply.finish_reason


def _completion(stamp: Stamp, outcomes: list[Outcome], plan: OutputPlan) -> ChatCompletion:
    choices = []
    for i, outcome in enumerate(outcomes):
        message, finish = _message(outcome, plan)
        choices.append(Choice(index=i, message=message, finish_reason=finish,  # type: ignore[arg-type]
                              logprobs=_logprobs(outcome)))
    return ChatCompletion(id=stamp.id, created=stamp.created, model=stamp.model, choices=choices,
                          usage=_usage(outcomes), rolecraft=_info(outcomes))


def _call_deltas(calls: list[dict]) -> list[dict]:
    """OpenAI's streamed tool_calls: the call's id and name first, then its arguments."""
    first = [{"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"],
                                                                          "arguments": ""}}
             for i, c in enumerate(calls)]
    rest = [{"index": i, "function": {"arguments": c["function"]["arguments"]}} for i, c in enumerate(calls)]
    return [{"tool_calls": first}, {"tool_calls": rest}]


async def _events(run: Run[list[Outcome]], stamp: Stamp, include_usage: bool, n: int,
                  plan: OutputPlan) -> AsyncGenerator[str, None]:
    """Chunks of every choice in turn (`index` tells them apart); the session info rides on the last finish."""
    outcomes: list[Outcome] = []
    buffer = CallBuffer(plan)
    try:
        yield event(stamp.chunk({"role": "assistant", "content": ""}))
        async for piece in run.pieces():
            index, item = piece.index, piece.outcome  # type: ignore[attr-defined]
            if item is None:
                if shown := buffer.feed(str(piece)):
                    yield event(stamp.chunk({"content": shown}, index=index))
                continue
            outcomes.append(item)
            calls, held = buffer.finish(item.reply.text)
            for delta in _call_deltas(calls) if calls else ([{"content": held}] if held else []):
                yield event(stamp.chunk(delta, index=index))
            info = _info(outcomes) if index + 1 == n else None
            logprobs = _logprobs(item)
            yield event(stamp.chunk({}, "tool_calls" if calls else item.reply.finish_reason, index=index,
                                    logprobs=logprobs.model_dump() if logprobs else None,
                                    **({"rolecraft": info.model_dump()} if info else {})))
            if index + 1 < n:
                buffer = CallBuffer(plan)
                yield event(stamp.chunk({"role": "assistant", "content": ""}, index=index + 1))
        if include_usage:
            yield event({**stamp.chunk({}), "choices": [], "usage": _usage(outcomes).model_dump()})
    except Exception as exc:
        yield error_event(exc, "chat completion stream")
    finally:
        run.cancel()
    yield DONE

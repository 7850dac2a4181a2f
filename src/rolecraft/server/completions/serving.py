"""Text completions: each prompt continued as written, n choices each (sampled one after another on the model
thread), answered whole or streamed as OpenAI's `text_completion` events."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from rolecraft.backends.base import TokenLogprob
from rolecraft.server.chat.protocol import Usage
from rolecraft.server.completions import text
from rolecraft.server.completions.protocol import Completion, CompletionChoice, CompletionRequest
from rolecraft.server.model_jobs import Outcome
from rolecraft.server.models.serving import Target
from rolecraft.server.state import ServerState
from rolecraft.server.streaming import DONE, EventStream, error_event, event, finish_unless_gone


@dataclass(frozen=True)
class Plan:
    """One request, read: what to run and how to answer."""

    id: str
    created: int
    model: str
    target: Target
    fields: text.Fields
    prompts: list[str]
    n: int
    echo: bool

    def choices(self) -> list[tuple[int, str, int]]:
        """(choice index, prompt, sample number) in OpenAI's order: prompt by prompt, n each."""
        return [(i * self.n + j, prompt, j) for i, prompt in enumerate(self.prompts) for j in range(self.n)]

    def chunk(self, choices: list[dict], **extra: object) -> dict:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": choices, **extra}


def openai_logprobs(tokens: Sequence[TokenLogprob] | None, start: int) -> dict | None:
    """OpenAI's completions logprobs object for the generated tokens (text offsets from `start`)."""
    if tokens is None:
        return None
    offsets, at = [], start
    for token in tokens:
        offsets.append(at)
        at += len(token.token)
    return {"tokens": [t.token for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{alt: lp for alt, lp, _ in t.top} for t in tokens], "text_offset": offsets}


async def read(state: ServerState, request: CompletionRequest, owner: str | None) -> Plan:
    request.check_supported()
    fields = text.read_fields(state, request.model_extra)
    await text.check_logprobs(state, fields)
    target = await text.target_of(state, request.model, owner)
    given = request.prompts
    prompts = [text.check_prompt(state, p, f"prompt[{i}]" if len(given) > 1 else "prompt") for i, p in enumerate(given)]
    return Plan(f"cmpl-{uuid.uuid4().hex}", int(time.time()), request.model or target.id, target, fields,
                prompts, request.n, request.echo)


async def create(state: ServerState, request: CompletionRequest, http: Request, owner: str | None) -> Response:
    """Answer one completions request, streamed or whole."""
    plan = await read(state, request, owner)
    if request.stream:
        usage = bool(request.stream_options and request.stream_options.include_usage)
        return EventStream(_events(state, plan, usage), headers=plan.fields.headers)
    choices, outcomes = [], []
    for index, prompt, sample in plan.choices():
        run = text.raw_run(state, plan.target, prompt, plan.fields, seed_offset=sample)
        if not await finish_unless_gone(run, http):
            return Response(status_code=499)
        assert run.result is not None
        reply = run.result.reply
        start = len(prompt) if plan.echo else 0
        logprobs = openai_logprobs(reply.final.logprobs if reply.final else None, start)
        choices.append(CompletionChoice(text=(prompt if plan.echo else "") + reply.text, index=index,
                                        logprobs=logprobs, finish_reason=reply.finish_reason))
        outcomes.append(run.result)
    completion = Completion(id=plan.id, created=plan.created, model=plan.model, choices=choices,
                            usage=_usage(outcomes))
    return JSONResponse(completion.model_dump(), headers=plan.fields.headers)


def _usage(outcomes: list[Outcome]) -> Usage:
    prompt = sum(o.reply.prompt_tokens for o in outcomes)
    completion = sum(o.reply.completion_tokens for o in outcomes)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def _events(state: ServerState, plan: Plan, include_usage: bool) -> AsyncGenerator[str, None]:
    outcomes: list[Outcome] = []
    try:
        for index, prompt, sample in plan.choices():
            run = text.raw_run(state, plan.target, prompt, plan.fields, seed_offset=sample)
            try:
                if plan.echo:
                    yield event(plan.chunk([_piece(index, prompt)]))
                async for piece in run.pieces():
                    yield event(plan.chunk([_piece(index, piece)]))
            finally:
                run.cancel()
            assert run.result is not None
            reply = run.result.reply
            logprobs = openai_logprobs(reply.final.logprobs if reply.final else None,
                                       len(prompt) if plan.echo else 0)
            yield event(plan.chunk([_piece(index, "", reply.finish_reason, logprobs)]))
            outcomes.append(run.result)
        if include_usage:
            yield event(plan.chunk([], usage=_usage(outcomes).model_dump()))
    except Exception as exc:
        yield error_event(exc, "text completion stream")
    yield DONE


def _piece(index: int, piece: str, finish_reason: str | None = None, logprobs: dict | None = None) -> dict:
    return {"text": piece, "index": index, "logprobs": logprobs, "finish_reason": finish_reason}

"""llama.cpp's /completion as llama-server answers it (`content`, `stop`, `stop_type`, timings), streamed as
`data: {"content": ..., "stop": false}` events ending with one `"stop": true` summary; plus its tokenizer
routes and /props."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from rolecraft import __version__
from rolecraft.backends.base import TokenLogprob
from rolecraft.backends.templated import TemplatedBackend
from rolecraft.conversation.reply import Reply
from rolecraft.server.completions import text
from rolecraft.server.llamacpp.protocol import CompletionBody, DetokenizeBody, TokenizeBody
from rolecraft.server.models.serving import Target
from rolecraft.server.state import ServerState
from rolecraft.server.streaming import EventStream, error_event, event, finish_unless_gone

STOP_TYPES = {"length": "limit", "stop": "eos"}


def _probabilities(tokens: list[TokenLogprob] | None) -> list[dict] | None:
    """llama-server's `completion_probabilities` (n_probs) for the generated tokens."""
    if tokens is None:
        return None
    return [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes,
             "top_logprobs": [{"token": alt, "logprob": lp, "bytes": raw} for alt, lp, raw in t.top]}
            for t in tokens]


def summary(reply: Reply, prompt: str, model: str, content: str) -> dict[str, Any]:
    """The final object llama-server sends for a finished completion."""
    predicted_ms = max(reply.total_s - reply.ttft_s, 0.0) * 1000
    out: dict[str, Any] = {
        "index": 0, "content": content, "tokens": [], "id_slot": 0, "stop": True, "model": model,
        "tokens_predicted": reply.completion_tokens, "tokens_evaluated": reply.prompt_tokens,
        "generation_settings": {"n_predict": reply.params.max_tokens, "temperature": reply.params.temperature,
                                "top_k": reply.params.top_k, "top_p": reply.params.top_p,
                                "stop": reply.params.stop},
        "prompt": prompt, "has_new_line": "\n" in reply.text, "truncated": False,
        "stop_type": STOP_TYPES.get(reply.finish_reason, "eos"), "stopping_word": "",
        "tokens_cached": reply.prompt_tokens + reply.completion_tokens,
        "timings": {"prompt_n": reply.prompt_tokens, "prompt_ms": reply.ttft_s * 1000,
                    "predicted_n": reply.completion_tokens, "predicted_ms": predicted_ms,
                    "predicted_per_second": reply.completion_tokens / (predicted_ms / 1000) if predicted_ms else 0.0},
    }
    probabilities = _probabilities(reply.final.logprobs if reply.final else None)
    if probabilities is not None:
        out["completion_probabilities"] = probabilities
    return out


async def complete(state: ServerState, body: CompletionBody, http: Request, owner: str | None) -> Response:
    """POST /completion, whole or streamed."""
    fields = text.read_fields(state, body.model_extra, reply_param="n_predict")
    await text.check_logprobs(state, fields, "n_probs")
    target = await text.target_of(state, body.model, owner)
    prompt = text.check_prompt(state, body.prompt)
    model = body.model or target.id
    if body.stream:
        return EventStream(_events(state, target, prompt, fields, model), headers=fields.headers)
    run = text.raw_run(state, target, prompt, fields)
    if not await finish_unless_gone(run, http):
        return Response(status_code=499)
    assert run.result is not None
    reply = run.result.reply
    return JSONResponse(summary(reply, prompt, model, reply.text), headers=fields.headers)


async def _events(state: ServerState, target: Target, prompt: str, fields: text.Fields,
                  model: str) -> AsyncGenerator[str, None]:
    run = text.raw_run(state, target, prompt, fields)
    try:
        count = 0
        async for piece in run.pieces():
            count += 1
            yield event({"index": 0, "content": piece, "tokens": [], "stop": False, "id_slot": 0,
                         "tokens_predicted": count, "tokens_evaluated": 0})
        assert run.result is not None
        yield event(summary(run.result.reply, prompt, model, ""))
    except Exception as exc:
        yield error_event(exc, "llama.cpp completion stream")
    finally:
        run.cancel()


async def tokenize(state: ServerState, body: TokenizeBody) -> dict[str, Any]:
    """llama.cpp's {tokens} (ids, or {id, piece} with with_pieces) and vLLM's {count, max_model_len, tokens}."""
    ids = await text.tokenize(state, body.text, add_special=body.special)
    context = await state.runtime.call(lambda: state.engine.backend.context_size)
    tokens: list[Any] = ids
    if body.with_pieces:
        pieces = await state.runtime.call(lambda: [text.tokenizer(state.engine).detokenize([i]) for i in ids])
        tokens = [{"id": i, "piece": piece} for i, piece in zip(ids, pieces, strict=True)]
    return {"tokens": tokens, "count": len(ids), "max_model_len": context}


async def detokenize(state: ServerState, body: DetokenizeBody) -> dict[str, str]:
    """llama.cpp's {content}; vLLM calls the same text `prompt`."""
    content = await text.detokenize(state, body.tokens)
    return {"content": content, "prompt": content}


def _props(state: ServerState) -> dict[str, Any]:
    engine = state.engine
    backend = engine.backend
    template = backend.template.source if isinstance(backend, TemplatedBackend) else ""
    settings = engine.settings
    params = {"n_predict": settings.max_tokens, "temperature": settings.temperature, "top_k": settings.top_k,
              "top_p": settings.top_p, "repeat_penalty": settings.repeat_penalty}
    return {"default_generation_settings": {"n_ctx": backend.context_size, "model": settings.model,
                                            "params": params},
            "total_slots": 1, "model_path": settings.model, "chat_template": template,
            "modalities": {"vision": backend.capabilities.images, "audio": False},
            "build_info": f"rolecraft {__version__}"}


async def props(state: ServerState) -> dict[str, Any]:
    """GET /props: context size, default sampling, the chat template (SillyTavern reads these)."""
    return await state.runtime.call(_props, state)

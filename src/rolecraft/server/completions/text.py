"""What every text-completion family shares (OpenAI, llama.cpp, KoboldCpp, Ollama): lenient fields, the model a
request names, a raw prompt run on the model thread, and tokenizing with the served model.

Each family's protocol declares only its own fields and lets the rest through; those go to
`read_samplers`, so every alias of every sampler is validated in one place. What it does not know
is ignored (logged once per name, listed in the X-Rolecraft-Ignored header) unless `strict_api`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from rolecraft.backends.templated import TemplatedBackend
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.server.limits import check_reply_tokens
from rolecraft.server.model_jobs import Outcome, raw_prompt_job
from rolecraft.server.models.serving import Target, resolve
from rolecraft.server.runtime import Run
from rolecraft.server.samplers import read_samplers
from rolecraft.server.state import ServerState

IGNORED_HEADER = "X-Rolecraft-Ignored"
MAX_LISTED = 64
# The OpenAPI media schema of one server-sent event (each event is an object: its `event` name and `data` text).
SSE_EVENT = {"schema": {"type": "object", "properties": {"event": {"type": "string"}, "data": {"type": "string"}}}}
log = logging.getLogger("rolecraft.server")


@functools.cache
def _log_ignored(name: str) -> None:
    log.info("ignoring request field %r (not used by this server)", name)


@dataclass
class Fields:
    """A body's sampler fields as SamplingParams overrides and stops, plus the names set aside."""

    overrides: dict[str, Any] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        """X-Rolecraft-Ignored: the names, percent-encoded (a header is Latin-1), the first 64 of them."""
        if not self.ignored:
            return {}
        names = [quote(name, safe="") or '""' for name in self.ignored[:MAX_LISTED]]
        return {IGNORED_HEADER: ", ".join(names + ["..."] * (len(self.ignored) > MAX_LISTED))}


def read_fields(state: ServerState, extra: Mapping[str, Any] | None, *, prefix: str = "",
                reply_param: str = "max_tokens") -> Fields:
    """Read the sampler fields of `extra` (a 400 names a wrong one); unknown names are refused when
    strict, else ignored. `prefix` names where they sit in the body (Ollama's `options.`)."""
    read = read_samplers(dict(extra or {}))
    if read.unknown and state.engine.settings.strict_api:
        name = f"{prefix}{read.unknown[0]}"
        raise RolecraftError(f"unrecognized request argument supplied: {name}", code="unknown_parameter",
                             param=name)
    ignored = [f"{prefix}{name}" for name in [*read.unknown, *read.ignored]]
    for name in ignored:
        _log_ignored(name)
    check_reply_tokens(read.overrides, state.server.max_reply_tokens, reply_param)
    return Fields(read.overrides, read.stops, ignored)


def merge(*parts: Fields) -> Fields:
    """Fields read from several parts of one body (top level and `options`); earlier parts win."""
    merged = Fields()
    for part in reversed(parts):
        merged.overrides.update(part.overrides)
        merged.stops = part.stops or merged.stops
        merged.ignored = [*part.ignored, *merged.ignored]
    return merged


async def check_logprobs(state: ServerState, fields: Fields, param: str = "logprobs") -> None:
    """Refuse log-probabilities a backend cannot give, rather than answer without them."""
    if fields.overrides.get("logprobs") is None:
        return
    capabilities = await state.runtime.call(lambda: state.engine.backend.capabilities)
    if not capabilities.logprobs:
        raise RolecraftError(f"the {state.engine.settings.backend} backend cannot report log-probabilities; "
                             f"leave '{param}' out", code="unsupported_parameter", param=param)


def check_prompt(state: ServerState, prompt: str, param: str = "prompt") -> str:
    """A prompt that may reach the tokenizer: not empty, valid text, within the server's text limits
    (whitespace is text a model can continue)."""
    if not prompt:
        raise RolecraftError(f"'{param}' is empty: give the text to complete", code="invalid_value", param=param)
    return state.server.text_limits().check(prompt, param)


async def target_of(state: ServerState, model: str | None, owner: str | None) -> Target:
    """What `model` names for `owner` (a character, the base model or an adapter); no model: the base model."""
    engine = state.engine
    return await run_in_threadpool(resolve, engine, model or engine.settings.model, owner)


def raw_run(state: ServerState, target: Target, prompt: str, fields: Fields, *, seed_offset: int = 0) -> Run[Outcome]:
    """A text completion of `prompt` on the model thread (choice `seed_offset` of n: a set seed moves on)."""
    overrides = dict(fields.overrides)
    if target.adapter is not None:
        overrides["adapter"] = target.adapter
    if seed_offset and overrides.get("seed") is not None:
        overrides["seed"] = (overrides["seed"] + seed_offset) % 2**32
    return state.runtime.run(raw_prompt_job(state.engine, prompt, overrides, fields.stops, target.character_id))


def tokenizer(engine: Engine) -> TemplatedBackend:
    """The served model's own tokenizer, or a 501 for a backend that tokenizes remotely."""
    backend = engine.backend
    if not isinstance(backend, TemplatedBackend):
        raise RolecraftError(f"the {backend.name} backend has no local tokenizer; ask its server to tokenize",
                             code="unsupported_backend", status=501, type="server_error")
    return backend


async def tokenize(state: ServerState, text: str, *, add_special: bool) -> list[int]:
    """Token ids of `text` as a raw prompt would read it (special tokens parsed), on the model thread."""
    return await state.runtime.call(lambda: tokenizer(state.engine).raw_ids(text, add_special=add_special))


async def detokenize(state: ServerState, ids: Sequence[int]) -> str:
    return await state.runtime.call(lambda: tokenizer(state.engine).detokenize(list(ids)))

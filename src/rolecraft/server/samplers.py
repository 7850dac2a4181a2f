"""Sampler fields as clients send them, read once for every endpoint family.

OpenAI, llama.cpp's server, KoboldCpp, vLLM and Ollama name the same samplers
differently (`repeat_penalty`, `repetition_penalty`, `rep_pen`; `max_tokens`,
`n_predict`, `max_length`, `num_predict` ...). `Samplers` validates the
canonical names with their ranges; `read_samplers` maps every alias onto them,
so a wrong type or range is a 400 naming the field the client sent, and
returns the `SamplingParams` overrides plus the names it did not understand
(the caller ignores and reports those, or refuses them in strict mode).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolecraft.errors import RolecraftError

# alias → canonical field of `Samplers`
ALIASES: dict[str, str] = {
    "max_completion_tokens": "max_tokens", "n_predict": "max_tokens", "max_new_tokens": "max_tokens",
    "max_length": "max_tokens", "num_predict": "max_tokens",
    "temp": "temperature",
    "typical": "typical_p", "tfs": "tfs_z",
    "repetition_penalty": "repeat_penalty", "rep_pen": "repeat_penalty",
    "mirostat": "mirostat_mode",
    "sampler_seed": "seed",
    "stop_sequence": "stop", "stopping_strings": "stop",
    "n_probs": "logprobs", "top_logprobs": "logprobs",
}

# Fields clients send that change nothing a user can see here, or that we cannot honour without lying;
# accepted and reported as ignored (never refused, even in strict mode).
NEUTRAL = frozenset({
    "stream", "cache_prompt", "keep_alive", "samplers", "sampler_order", "typical_p_mode", "use_default_badwordsids",
    "add_bos_token", "skip_special_tokens", "ignore_eos", "ban_eos_token", "trim_stop", "n_keep", "t_max_predict_ms",
    "rep_pen_range", "repeat_last_n", "rep_pen_slope", "penalty_last_n", "penalize_nl", "top_a", "smoothing_factor",
    "smoothing_curve", "dynatemp_range", "dynatemp_exponent", "min_keep", "include_reasoning", "truncation_length",
    "num_ctx", "num_keep", "num_batch", "num_gpu", "num_thread", "use_mmap", "use_mlock", "numa", "low_vram",
})


class SamplerFields(BaseModel):
    """The samplers every API takes under these names, with llama.cpp's ranges (REST sessions too)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(None, ge=1, le=32_768)
    temperature: float | None = Field(None, ge=0.0, le=5.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=100_000)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    typical_p: float | None = Field(None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(None, ge=0.0, le=10.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    mirostat_mode: int | None = Field(None, ge=0, le=2)
    mirostat_tau: float | None = Field(None, ge=0.0, le=100.0)
    mirostat_eta: float | None = Field(None, ge=0.0, le=10.0)
    dry_multiplier: float | None = Field(None, ge=0.0, le=100.0)
    dry_base: float | None = Field(None, ge=1.0, le=100.0)
    dry_allowed_length: int | None = Field(None, ge=0, le=1000)
    dry_penalty_last_n: int | None = Field(None, ge=-1, le=1_000_000)
    dry_sequence_breakers: list[str] | None = Field(None, max_length=64)
    xtc_probability: float | None = Field(None, ge=0.0, le=1.0)
    xtc_threshold: float | None = Field(None, ge=0.0, le=1.0)


class Samplers(SamplerFields):
    """What `read_samplers` validates: the shared fields plus the ones only the OpenAI-style and
    text-completion bodies carry."""

    tfs_z: float | None = Field(None, ge=0.0, le=1.0)
    seed: int | None = Field(None, ge=-(2**63), le=2**64)
    logprobs: int | None = Field(None, ge=0, le=20)
    logit_bias: dict[int, float] | None = None
    stop: list[str] | None = Field(None, max_length=16)
    grammar: str | None = Field(None, max_length=200_000)


@dataclass
class SamplerRead:
    """What `read_samplers` made of a body: SamplingParams overrides, stop strings, fields it set aside."""

    overrides: dict[str, Any] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _logit_bias(value: Any, param: str) -> dict[int, float]:
    """OpenAI's {"token_id": bias} or llama.cpp's [[token_id, bias | false], ...] (false bans)."""
    pairs = value.items() if isinstance(value, Mapping) else value
    try:
        out = {}
        for token, bias in pairs:
            if isinstance(token, str) and not token.lstrip("-").isdigit():
                raise RolecraftError(f"{param}: token {token!r} is not a token id (tokenize it first)",
                                     code="invalid_value", param=param)
            out[int(token)] = -100.0 if bias is False else float(bias)
        return out
    except (TypeError, ValueError):
        raise RolecraftError(f"{param} must map token ids to numbers ({{\"42\": -100}} or [[42, false]])",
                             code="invalid_value", param=param) from None


def _breakers(value: Any) -> Any:
    """SillyTavern sends DRY sequence breakers as a JSON string of a list."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return [value]
    return value


def read_samplers(body: Mapping[str, Any], *, skip: frozenset[str] = frozenset()) -> SamplerRead:
    """Map the sampler fields of `body` (any alias) onto `Samplers`; names in `skip` belong to the caller."""
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    read = SamplerRead()
    for name, value in body.items():
        if name in skip or value is None:
            continue
        canonical = ALIASES.get(name, name)
        if canonical == "grammar" and value == "":
            continue  # SillyTavern sends its empty grammar box as ""
        if canonical in Samplers.model_fields:
            if canonical in values:
                continue  # the first spelling given wins (e.g. max_tokens over n_predict)
            if canonical == "logit_bias":
                value = _logit_bias(value, name)
            elif canonical == "dry_sequence_breakers":
                value = _breakers(value)
            elif canonical == "stop" and isinstance(value, str):
                value = [value]
            elif canonical == "logprobs" and isinstance(value, bool):
                value = 1 if value else None
            values[canonical], where[canonical] = value, name
        elif name in NEUTRAL:
            read.ignored.append(name)
        else:
            read.unknown.append(name)
    try:
        samplers = Samplers.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = where.get(str(first["loc"][0]), str(first["loc"][0])) if first["loc"] else "body"
        raise RolecraftError(f"{name}: {first['msg']}", code="invalid_value", param=name) from None
    chosen = samplers.model_dump(exclude_none=True)
    read.stops = [s for s in chosen.pop("stop", []) if s]
    if "seed" in chosen:
        chosen["seed"] = None if chosen["seed"] < 0 else chosen["seed"] % 2**32  # -1 means random, as in llama.cpp
    read.overrides = chosen
    return read

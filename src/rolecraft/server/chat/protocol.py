"""The chat completions request and response, field for field as OpenAI defines them.

Validation happens here, at the edge; `ChatCompletionRequest.sampling_overrides`
and `check_supported` turn an accepted request into what the engine needs or a
clear refusal. Like llama.cpp's server and vLLM, the request is lenient: sampler
fields other engines take (min_p, top_k, repetition_penalty, DRY, XTC ...) are
read by `rolecraft.server.samplers`, and fields nobody here understands are
ignored and reported (`ignored_fields`), or refused with `strict_api`. Parameters
OpenAI has and we cannot honour (audio output, predictions) are refused with
`unsupported_parameter`, never silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from rolecraft.errors import RolecraftError
from rolecraft.server.samplers import SamplerRead, read_samplers

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageURL(_Strict):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] = "auto"


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Strict):
    data: str = Field(min_length=1, description="Base64-encoded audio.")
    format: Literal["wav", "mp3"]


class AudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Strict):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]


class ChatMessage(_Strict):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, max_length=64)
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    function_call: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None


class StreamOptions(_Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None


# Accepted in OpenAI's shape, refused unless left at their neutral value.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "functions": (None, []), "function_call": (None, "none", "auto"), "audio": (None,), "prediction": (None,),
    "web_search_options": (None,), "modalities": (None, [], ["text"]),
}
# Typed fields that `read_samplers` reads with the body's sampler extras (max_completion_tokens first: it wins).
_SAMPLER_FIELDS = ("max_completion_tokens", "max_tokens", "temperature", "top_p", "seed", "logit_bias",
                   "frequency_penalty", "presence_penalty", "top_k", "repeat_penalty", "repetition_penalty")
MAX_STOPS = 4


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions. `model` is a character id or a base model id (see GET /v1/models).

    Other fields are read as samplers (llama.cpp's, vLLM's and KoboldCpp's names), or ignored."""

    model_config = ConfigDict(extra="allow")
    _output: dict[str, Any] = PrivateAttr(default_factory=dict)  # constraints of tools / response_format

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=4096)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32_768)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**53), le=2**53)
    n: int | None = Field(None, ge=1, le=128)
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    user: str | None = Field(None, max_length=256)
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(None, max_length=16)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    # Sampling extensions that vLLM and llama-server accept too (OpenAI clients send them in extra_body).
    top_k: int | None = Field(None, ge=0, le=100_000)
    repeat_penalty: float | None = Field(None, ge=0.0, le=10.0)
    repetition_penalty: float | None = Field(None, ge=0.0, le=10.0)

    def samplers(self) -> SamplerRead:
        """The body's sampler fields, typed and extra, mapped onto SamplingParams (400 naming a bad one)."""
        body = {name: getattr(self, name) for name in _SAMPLER_FIELDS}
        return read_samplers({**body, **(self.model_extra or {})}, skip=frozenset({"logprobs", "top_logprobs"}))

    def check_supported(self, strict: bool = False) -> list[str]:
        """Refuse what we cannot honour, naming the first field; the names ignored (strict: unknown ones refused)."""
        for name, neutral in _NEUTRAL.items():
            if getattr(self, name) not in neutral:
                raise RolecraftError(f"'{name}' is not supported by this server; leave it out",
                                     code="unsupported_parameter", param=name)
        if len(self.stop_list) > MAX_STOPS:
            raise RolecraftError(f"'stop' takes at most {MAX_STOPS} sequences", code="invalid_value", param="stop")
        if self.top_logprobs and not self.logprobs:
            raise RolecraftError("top_logprobs needs logprobs: true", code="invalid_value", param="top_logprobs")
        read = self.samplers()
        if strict and read.unknown:
            raise RolecraftError(f"unrecognized request argument supplied: {read.unknown[0]}",
                                 code="unknown_parameter", param=read.unknown[0])
        return [*read.ignored, *read.unknown]

    @property
    def choices(self) -> int:
        return self.n or 1

    @property
    def stop_list(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    @property
    def reply_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def constrain(self, overrides: dict[str, Any]) -> None:
        """Sampling fields that enforce the output plan (grammar or json_schema); kept by model_copy."""
        self._output = dict(overrides)

    def sampling_overrides(self) -> dict[str, Any]:
        """The SamplingParams fields this request sets (besides stop sequences)."""
        overrides = {**self.samplers().overrides, **self._output}
        if self.logprobs:
            overrides["logprobs"] = self.top_logprobs or 0
        return overrides

    def session_ref(self, header: str | None) -> str | None:
        """The stored session this request continues: header, metadata.session_id, or user='session:<id>'."""
        if header:
            return header
        if self.metadata and self.metadata.get("session_id"):
            return self.metadata["session_id"]
        if self.user and self.user.startswith("session:"):
            return self.user.removeprefix("session:")
        return None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    """OpenAI's chat logprobs: one entry per generated token of the content."""

    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]
    logprobs: ChoiceLogprobs | None = None


class RolecraftInfo(BaseModel):
    """Extra, rolecraft-only: the stored session and messages of a session turn."""

    session_id: str
    message_ids: list[int]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None
    rolecraft: RolecraftInfo | None = None

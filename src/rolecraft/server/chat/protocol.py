"""The chat completions request and response, field for field as OpenAI defines them.

Validation happens here, at the edge; `ChatCompletionRequest.sampling_overrides`
and `unsupported` turn an accepted request into what the engine needs or a
clear refusal. Parameters OpenAI has and we cannot honour are accepted in
their OpenAI shape and refused with `unsupported_parameter`, not ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rolecraft.errors import RolecraftError

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
    "frequency_penalty": (None, 0, 0.0), "presence_penalty": (None, 0, 0.0), "logprobs": (None, False),
    "top_logprobs": (None, 0), "tools": (None, []), "tool_choice": (None, "none", "auto"),
    "parallel_tool_calls": (None, True, False), "functions": (None, []), "function_call": (None, "none", "auto"),
    "audio": (None,), "prediction": (None,), "web_search_options": (None,), "logit_bias": (None, {}),
    "n": (None, 1), "modalities": (None, [], ["text"]),
}


class ChatCompletionRequest(_Strict):
    """POST /v1/chat/completions. `model` is a character id or a base model id (see GET /v1/models)."""

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

    def check_supported(self) -> None:
        """Refuse parameters we cannot honour, naming the first one."""
        for name, neutral in _NEUTRAL.items():
            if getattr(self, name) not in neutral:
                raise RolecraftError(f"'{name}' is not supported by this server; leave it out",
                                     code="unsupported_parameter", param=name)
        if self.response_format and self.response_format.get("type") not in (None, "text"):
            raise RolecraftError("only response_format {'type': 'text'} is supported",
                                 code="unsupported_parameter", param="response_format")
        if len(self.stop_list) > 4:
            raise RolecraftError("'stop' takes at most 4 sequences", code="invalid_value", param="stop")

    @property
    def stop_list(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    @property
    def reply_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def sampling_overrides(self) -> dict[str, Any]:
        """The SamplingParams fields this request sets (besides stop sequences)."""
        values = {"max_tokens": self.reply_tokens, "temperature": self.temperature, "top_p": self.top_p,
                  "seed": None if self.seed is None else self.seed % 2**32, "top_k": self.top_k,
                  "repeat_penalty": self.repeat_penalty if self.repeat_penalty is not None else self.repetition_penalty}
        return {k: v for k, v in values.items() if v is not None}

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


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


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

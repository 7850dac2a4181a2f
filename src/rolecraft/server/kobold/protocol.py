"""KoboldCpp's generate bodies and answers (what KoboldAI Lite and SillyTavern's KoboldCpp types send).

Sampler fields (max_length, rep_pen, top_a, typical, tfs, sampler_order, stop_sequence ...) pass through as
extras to `read_samplers`; the fields below shape the request itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GenerateBody(BaseModel):
    """POST /api/v1/generate and /api/extra/generate/stream. `memory` goes before `prompt`, as in KoboldCpp."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1, description="Text to continue, exactly as the model reads it.")
    memory: str = ""
    model: str | None = Field(None, max_length=256, description="Base model (default), adapter or character id.")
    genkey: str | None = Field(None, max_length=256, description="Names this generation for /api/extra/abort.")
    max_context_length: int | None = Field(None, ge=1, description="Accepted; the model's own context applies.")
    quiet: bool = False
    trim_stop: bool = True
    images: list[str] = Field(default_factory=list, description="Refused: send pictures to /v1/chat/completions.")

    @property
    def text(self) -> str:
        return self.memory + self.prompt


class GenerateResult(BaseModel):
    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class GenerateAnswer(BaseModel):
    results: list[GenerateResult]


class TokenCountBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt: str


class AbortBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    genkey: str | None = None


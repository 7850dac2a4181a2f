"""OpenAI's legacy text completions (POST /v1/completions), as vLLM, llama-server and KoboldCpp serve it.

Only the fields that shape the answer are declared here; sampler fields (any alias) pass through
as extras to `read_samplers`. `suffix` (fill-in-the-middle) is refused: the bundled model has no
infill tokens, and ignoring it would silently complete the wrong text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rolecraft.errors import RolecraftError
from rolecraft.server.chat.protocol import Usage

Text = Annotated[str, Field(min_length=1)]
Prompt = Text | Annotated[list[Text], Field(min_length=1, max_length=16)]


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    """POST /v1/completions. `model` is the base model, an adapter, or a character id (whose banned phrases
    and catchphrase bias then apply; no character prompt is added to a raw prompt)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, max_length=256)
    prompt: Prompt = Field(description="Text (or texts) to continue, exactly as the model reads it.")
    suffix: str | None = None
    echo: bool = False
    n: int = Field(1, ge=1, le=16)
    best_of: int | None = Field(None, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)

    def check_supported(self) -> None:
        if self.suffix:
            raise RolecraftError("'suffix' (fill-in-the-middle) is not supported: this model has no infill "
                                 "tokens; put the text before the gap in 'prompt' and leave 'suffix' out",
                                 code="unsupported_parameter", param="suffix")
        if self.best_of is not None and self.best_of != self.n:
            raise RolecraftError("'best_of' other than 'n' is not supported; ask for n choices instead",
                                 code="unsupported_parameter", param="best_of")

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: dict[str, Any] | None = None
    finish_reason: Literal["stop", "length"] | str | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[CompletionChoice]
    usage: Usage

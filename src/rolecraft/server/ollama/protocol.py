"""Ollama's API bodies (what the `ollama` Python client, Open WebUI and SillyTavern's Ollama type send).

Samplers travel in `options` (num_predict, repeat_penalty, mirostat, stop ...) and go to `read_samplers`
like every other family's. Fields that would change the prompt in ways we cannot follow (`template`,
`context`, `suffix`) are refused, not ignored: ignoring them would silently answer a different prompt.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rolecraft.errors import RolecraftError

Format = Literal["", "json"] | dict[str, Any] | None


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = Field(None, description="Base64 pictures (no data: prefix), seen by perception.")
    tool_calls: list[dict[str, Any]] | None = None


class OllamaRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256, description="The base model, an adapter or a character id.")
    stream: bool = True
    format: Format = None
    options: dict[str, Any] | None = None
    keep_alive: str | int | float | None = Field(None, description="Accepted; the model stays loaded.")
    think: bool | str | None = None

    def json_schema(self) -> dict[str, Any] | None:
        """`format` as the JSON schema the reply must follow ("json": any object)."""
        if self.format == "json":
            return {"type": "object"}
        return self.format or None


class ChatBody(OllamaRequest):
    """POST /api/chat."""

    messages: list[OllamaMessage] = Field(default_factory=list, max_length=4096)
    tools: list[dict[str, Any]] | None = None

    def check_supported(self) -> None:
        if self.tools:
            raise RolecraftError("'tools' on /api/chat is not supported; use /v1/chat/completions for tools",
                                 code="unsupported_parameter", param="tools")


class GenerateBody(OllamaRequest):
    """POST /api/generate. With `raw`, `prompt` is continued exactly as written (no template, no system)."""

    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None

    def check_supported(self) -> None:
        refused = {"suffix": "fill-in-the-middle is not supported by this model",
                   "template": "a custom prompt template is not supported; send raw=true with the prompt "
                               "already formatted",
                   "context": "'context' token ids are not supported; send the conversation to /api/chat"}
        for name, why in refused.items():
            if getattr(self, name):
                raise RolecraftError(f"'{name}': {why}", code="unsupported_parameter", param=name)
        if self.raw and self.images:
            raise RolecraftError("pictures need a chat prompt: leave 'raw' out to send 'images'",
                                 code="unsupported_content", param="images")


class ShowBody(BaseModel):
    """POST /api/show: `model` (older clients say `name`)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, max_length=256)
    name: str | None = Field(None, max_length=256)
    verbose: bool = False

    @property
    def model_id(self) -> str:
        given = self.model or self.name
        if not given:
            raise RolecraftError("missing required parameter: 'model'", code="missing_required_parameter",
                                 param="model")
        return given

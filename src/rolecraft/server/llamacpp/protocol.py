"""llama.cpp server's native API bodies (what SillyTavern's "llama.cpp" text-completion type sends).

Sampler fields (n_predict, repeat_penalty, mirostat, dry_*, xtc_*, logit_bias as [[id, bias|false]] ...) pass
through as extras to `read_samplers`. `/tokenize` also takes vLLM's `{model, prompt}` body, so SillyTavern's
llama.cpp and vLLM types both find their tokenizer on one route.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CompletionBody(BaseModel):
    """POST /completion. `prompt` is text; special tokens written in it are read as such."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1, description="Text to continue, exactly as the model reads it.")
    model: str | None = Field(None, max_length=256, description="Base model (default), adapter or character id.")
    stream: bool = False
    cache_prompt: bool = Field(True, description="Always on: the KV cache of the longest common prefix is reused.")
    id_slot: int | None = Field(None, description="Accepted; there is one slot.")


class TokenizeBody(BaseModel):
    """POST /tokenize: llama.cpp's `{content, add_special, with_pieces}` or vLLM's `{model, prompt}`."""

    model_config = ConfigDict(extra="allow")

    content: str | None = None
    prompt: str | None = None
    model: str | None = Field(None, max_length=256)
    add_special: bool | None = None
    add_special_tokens: bool | None = None
    with_pieces: bool = False

    @property
    def text(self) -> str:
        return self.content if self.content is not None else self.prompt or ""

    @property
    def special(self) -> bool:
        """Add BOS: llama.cpp's default is no, vLLM's (`prompt` given) yes."""
        for flag in (self.add_special, self.add_special_tokens):
            if flag is not None:
                return flag
        return self.content is None and self.prompt is not None


class DetokenizeBody(BaseModel):
    """POST /detokenize: `{tokens}` (llama.cpp), with vLLM's `model` accepted."""

    model_config = ConfigDict(extra="allow")

    tokens: list[int] = Field(max_length=1_000_000)
    model: str | None = Field(None, max_length=256)

"""The backend contract: one streaming method plus the tokenizer the context builder needs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rolecraft.messages import Message


@dataclass
class SamplingParams:
    """How to sample one reply, including the role constraints of the character."""

    max_tokens: int = 160
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int | None = None
    # The rest of llama.cpp's samplers; the defaults leave them off (llama.cpp's own neutral values).
    min_p: float = 0.05
    typical_p: float = 1.0
    tfs_z: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    mirostat_mode: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    # DRY ("don't repeat yourself") and XTC ("exclude top choices"), the role-play samplers.
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = -1
    dry_sequence_breakers: list[str] = field(default_factory=lambda: ["\n", ":", "\"", "*"])
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    # Additive bias per token id (-100 bans, +100 forces), as OpenAI and llama.cpp take it.
    logit_bias: dict[int, float] = field(default_factory=dict)
    # Log-probabilities of the top N alternatives per generated token (None = none).
    logprobs: int | None = None
    # A GBNF grammar the output must follow (tools, response_format); json_schema is converted to one.
    grammar: str | None = None
    stop: list[str] = field(default_factory=list)
    # Bias toward phrases the character habitually uses: (phrase, strength) pairs.
    boost_phrases: list[str] = field(default_factory=list)
    boost_strength: float = 0.0
    # Anti-copy: the card's text; no reply span longer than copy_max_tokens may stand in it verbatim.
    copy_source: str | None = None
    copy_max_tokens: int = 6
    # Phrases that break character; the backend must never emit them.
    banned_phrases: list[str] = field(default_factory=list)
    # Constrain the output to this JSON schema (structured extraction).
    json_schema: dict | None = None
    # Conversation this prompt belongs to: backends that keep a KV cache keep one per key.
    cache_key: str | None = None
    # LoRA adapter file/folder to generate through (None = the base model alone).
    adapter: str | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text and bytes, its log-probability, and the most likely alternatives."""

    token: str
    logprob: float
    bytes: list[int]
    top: list[tuple[str, float, list[int]]] = field(default_factory=list)


@dataclass
class StreamEvent:
    """A piece of streamed text; the last event carries finish_reason, token usage and, when
    `SamplingParams.logprobs` asked for them, the reply's token log-probabilities."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so callers choose paths without checking its type."""

    images: bool = False
    logit_bias: bool = False
    exact_tokenizer: bool = True
    logprobs: bool = False  # can fill StreamEvent.logprobs
    grammar: bool = False  # honours SamplingParams.grammar / json_schema as a hard constraint


class Backend(ABC):
    """A text generator. Subclasses register with `rolecraft.backends.register`."""

    name: str = ""
    capabilities: Capabilities = Capabilities()

    @property
    @abstractmethod
    def context_size(self) -> int:
        """Tokens the model can attend to (prompt + reply)."""

    @abstractmethod
    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        """Generate a reply to `messages`, yielding text as it is produced."""

    @abstractmethod
    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the rendered prompt for `messages` takes, with the model's own tokenizer."""

    def count_message(self, message: Message) -> int:
        """Tokens one message adds to a prompt; builders sum these before one exact count."""
        return self.count_tokens([message])

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt exactly as the model will read it (for --show-prompt)."""
        return "\n".join(f"<|{m.role}|>\n{m.content}" for m in messages)

    def forget(self, key: str) -> None:  # noqa: B027 - only backends that cache per conversation override it
        """Drop whatever is cached for conversation `key` (e.g. a parked KV cache)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release model resources."""

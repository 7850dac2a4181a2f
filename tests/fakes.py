"""A word-counting backend that isolates prompt logic from any model in unit tests.

Real-model behaviour is covered by test_chat_model.py; these fakes never stand in for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rolecraft.backends.base import Backend, SamplingParams, StreamEvent
from rolecraft.messages import Message


class WordBackend(Backend):
    """One token per word plus 3 per message; replies with a fixed line and records prompts."""

    name = "words"

    def __init__(self, n_ctx: int, reply: str = "I see.") -> None:
        self.n_ctx = n_ctx
        self.reply = reply
        self.prompts: list[list[Message]] = []

    @property
    def context_size(self) -> int:
        return self.n_ctx

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) + 3 for m in messages)

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        self.prompts.append(list(messages))
        yield StreamEvent(text=self.reply)
        yield StreamEvent(finish_reason="stop", prompt_tokens=self.count_tokens(messages), completion_tokens=2)

"""What every backend that renders its own prompts shares: the chat template and exact token counts.

The llama.cpp and transformers backends both render with `ChatTemplate` and
tokenize locally, so the prompt shown, the token budget, the ids the model reads
and the ids training uses are one thing.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from rolecraft.backends.base import Backend
from rolecraft.messages import Message
from rolecraft.prompting.template import ChatTemplate


class TemplatedBackend(Backend):
    """A backend with a `ChatTemplate`; subclasses call `use_template` once their tokenizer works."""

    template: ChatTemplate

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text (no special tokens added)."""

    def use_template(self, template: ChatTemplate) -> None:
        self.template = template
        self._last_prompt: tuple[tuple, list[int]] = ((), [])
        one = [Message("system", "x")]
        self._overhead = self.count_tokens([*one, Message("user", "x")]) - self.count_tokens(one) - len(
            self.tokenize("x"))

    def render(self, messages: Sequence[Message]) -> str:
        return self.template.text(messages)

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The exact token ids the model will read for `messages` (the last result is memoised:
        the builder's final count and the generation that follows ask for the same prompt)."""
        key = tuple((m.role, m.content) for m in messages)
        if self._last_prompt[0] != key:
            self._last_prompt = (key, self.template.ids(messages))
        return list(self._last_prompt[1])

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.prompt_tokens(messages))

    def count_message(self, message: Message) -> int:
        return len(self.tokenize(message.content)) + self._overhead

"""What every backend that renders its own prompts shares: the chat template and exact token counts.

The llama.cpp and transformers backends both render with `ChatTemplate` and
tokenize locally, so the prompt shown, the token budget, the ids the model reads
and the ids training uses are one thing. A raw prompt (`messages.RAW_PROMPT`, from
the text-completion endpoints) skips the template: its text is tokenized as is,
special tokens written in it parsed and BOS added, as llama.cpp's server does.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from rolecraft.backends.base import Backend
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message, raw_prompt
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

    def detokenize(self, ids: Sequence[int]) -> str:
        """Text of token ids (backends that can decode override this)."""
        raise RolecraftError(f"the {self.name} backend cannot detokenize", code="unsupported_backend", status=501,
                             type="server_error")

    def raw_ids(self, text: str, *, add_special: bool = True) -> list[int]:
        """Ids of prompt text as written: special tokens in it parsed, and whatever the encoder puts first
        (llama.cpp: BOS when the model wants one, as llama-server does) kept unless not `add_special`."""
        ids = self.template.encode(text)
        bos = self.template.encode("")  # what encoding adds before any text: [BOS] or nothing
        if not add_special and bos and ids[: len(bos)] == bos:
            return ids[len(bos):]
        return ids

    def render(self, messages: Sequence[Message]) -> str:
        raw = raw_prompt(messages)
        return self.template.text(messages) if raw is None else raw

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The exact token ids the model will read for `messages` (the last result is memoised:
        the builder's final count and the generation that follows ask for the same prompt)."""
        key = tuple((m.role, m.content, m.kind) for m in messages)
        if self._last_prompt[0] != key:
            raw = raw_prompt(messages)
            self._last_prompt = (key, self.template.ids(messages) if raw is None else self.raw_ids(raw))
        return list(self._last_prompt[1])

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.prompt_tokens(messages))

    def count_message(self, message: Message) -> int:
        return len(self.tokenize(message.content)) + self._overhead

"""Replies to a whole OpenAI-style message list, with nothing read from or written to the store.

Clients of an OpenAI-compatible API often keep the history themselves and send
all of it every time. For a character, `character_plan` builds the prompt the
same way a stored session would (card definition first, lorebook entries the
conversation triggers, the history, post-history instructions, within the token
budget; `dialogue_plan` is that shared core, also used to render training data); the client's leading
system messages go right after the card definition, where they stay part of the
stable prefix. For a bare base model the messages pass through unchanged.
`Reply` streams one answer and keeps what a caller needs afterwards (finish
reason, token counts, timing); it is also what a stored turn streams through
when the caller wants its own sampling parameters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rolecraft.backends.base import Backend, SamplingParams, StreamEvent
from rolecraft.conversation.context import Lore, Memory, gather
from rolecraft.conversation.reply import strip_speaker
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.prompting import ContextBuilder, PromptPlan, TurnInput

if TYPE_CHECKING:
    from rolecraft.characters.model import Character
    from rolecraft.settings import Settings


def _split_instructions(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """Leading system messages (the client's instructions) and the conversation after them."""
    cut = 0
    while cut < len(messages) and messages[cut].role == "system":
        cut += 1
    return list(messages[:cut]), list(messages[cut:])


@dataclass(frozen=True)
class Line:
    """A line of a client-held conversation, as lorebook scanning reads it."""

    role: str
    name: str
    content: str


def dialogue_plan(settings: Settings, builder: ContextBuilder, character: Character, turns: Sequence[TurnInput], *,
                  user: str, persona: str = "") -> PromptPlan:
    """The prompt for `character`'s next reply after `turns`, as a stored session builds it minus what only a
    stored session has (tracked state, summary, recalled memories): card, lorebook hits, author's note."""
    said = [Line(t.role, user if t.role == "user" else character.name, t.content) for t in turns]
    last = turns[-1].content if turns and turns[-1].role == "user" else None
    extras = gather(settings, character, user, said[:-1] if last is not None else said, last, Memory(),
                    Lore(character), lambda text: builder.cost(Message("system", text)))
    return builder.build(character, user, list(turns), persona=persona, extras=extras)


def character_plan(
    settings: Settings, backend: Backend, character: Character, messages: Sequence[Message], *, user: str,
    persona: str = "", reply_tokens: int,
) -> PromptPlan:
    """The prompt for `character`'s reply to a client-held conversation that ends with the user's message."""
    instructions, history = _split_instructions(messages)
    if not history or history[-1].role != "user":
        raise RolecraftError("the last message must be the user's (role 'user') for a character to answer",
                             code="invalid_messages", param="messages")
    extra = []
    if instructions:
        extra = [Message("system", "\n\n".join(m.content for m in instructions), kind="client_system")]
    builder = ContextBuilder(backend, reply_tokens=reply_tokens + sum(map(backend.count_message, extra)))
    plan = dialogue_plan(settings, builder, character, [TurnInput(m.role, m.content) for m in history], user=user,
                         persona=persona)
    if extra:
        plan.messages[1:1] = extra  # right after the card definition
        plan.prompt_tokens = backend.count_tokens(plan.messages)
    return plan


def plain_sampling(settings: Settings, **overrides: object) -> SamplingParams:
    """Sampling for a bare base model: the configured knobs, no character constraints."""
    params = SamplingParams(max_tokens=settings.max_tokens, temperature=settings.temperature, top_p=settings.top_p,
                            top_k=settings.top_k, repeat_penalty=settings.repeat_penalty, seed=settings.seed)
    for key, value in overrides.items():
        setattr(params, key, value)
    return params


class Reply:
    """One streamed answer to `messages`; iterate for text pieces, then read the totals.

    With `speaker` set (a character's name) a leading "Name:" the model may write is dropped.
    """

    def __init__(self, backend: Backend, messages: Sequence[Message], params: SamplingParams,
                 speaker: str | None = None) -> None:
        self.backend, self.messages, self.params, self.speaker = backend, list(messages), params, speaker
        self.pieces: list[str] = []
        self.final: StreamEvent | None = None
        self.ttft_s = 0.0
        self.total_s = 0.0

    def _raw(self) -> Iterator[str]:
        for event in self.backend.stream(self.messages, self.params):
            if event.finish_reason is not None:
                self.final = event
            if event.text:
                yield event.text

    def __iter__(self) -> Iterator[str]:
        start = time.perf_counter()
        pieces = strip_speaker(self._raw(), self.speaker) if self.speaker else self._raw()
        for piece in pieces:
            if not self.pieces:
                self.ttft_s = time.perf_counter() - start
            self.pieces.append(piece)
            yield piece
        self.total_s = time.perf_counter() - start
        if not self.pieces:
            self.ttft_s = self.total_s

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def finish_reason(self) -> str:
        return (self.final.finish_reason if self.final else None) or "stop"

    @property
    def prompt_tokens(self) -> int:
        return self.final.prompt_tokens if self.final else 0

    @property
    def completion_tokens(self) -> int:
        return self.final.completion_tokens if self.final else 0

    def meta(self) -> dict:
        """What a stored reply records about how it was made (the same keys a session turn stores)."""
        return {"finish_reason": self.finish_reason, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "ttft_ms": round(self.ttft_s * 1000, 1),
                "total_ms": round(self.total_s * 1000, 1)}

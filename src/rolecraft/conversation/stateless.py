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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rolecraft.backends.base import Backend
from rolecraft.conversation.context import Lore, gather
from rolecraft.errors import RolecraftError
from rolecraft.memory.carry import Memory
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

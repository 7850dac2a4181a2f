"""Assemble the messages of a turn within the backend's token budget.

Order (stable first, changing last): character definition → example dialogue →
conversation history → post-history instructions. When history overflows, the
example dialogue goes first, then the oldest messages, cut at page boundaries
so the cut (and therefore the cached prefix) stays put for several turns
instead of sliding every turn. The character definition is never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rolecraft.backends.base import Backend
from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message, Role
from rolecraft.prompting import sections

PAGE = 8  # history messages dropped at a time when the context overflows


@dataclass(frozen=True)
class TurnInput:
    """One history message as the builder needs it."""

    role: Role
    content: str
    images: tuple[str, ...] = ()


@dataclass
class Insertions:
    """Extra context for a turn, each placed where it least disturbs the cached prefix."""

    before_definition: list[str] = field(default_factory=list)
    after_definition: list[str] = field(default_factory=list)
    summary: str = ""
    late: list[str] = field(default_factory=list)
    at_depth: list[tuple[int, Message]] = field(default_factory=list)


@dataclass
class PromptPlan:
    """The messages for one turn and how they were chosen."""

    messages: list[Message]
    prompt_tokens: int
    budget: int
    dropped_messages: int = 0
    examples_included: bool = True


class ContextBuilder:
    """Builds turn prompts for one backend; caches token counts of immutable messages."""

    def __init__(self, backend: Backend, *, reply_tokens: int, system_prompt: str = "") -> None:
        self.backend = backend
        self.reply_tokens = reply_tokens
        self.system_prompt = system_prompt
        self._costs: dict[tuple[str, str], int] = {}

    def cost(self, message: Message) -> int:
        key = (message.role, message.content)
        if key not in self._costs:
            if len(self._costs) > 20_000:
                self._costs.clear()
            self._costs[key] = self.backend.count_message(message)
        return self._costs[key]

    def build(
        self, character: Character, user: str, history: Sequence[TurnInput], persona: str = "", first_index: int = 0,
        extras: Insertions | None = None, instructions: Sequence[Message] = (), reply_tokens: int | None = None,
    ) -> PromptPlan:
        """Messages for the next assistant reply to `history` (which ends with the user's turn).

        `first_index` is the position of history[0] in the whole conversation when the caller
        passes only a recent window; it keeps page cuts at the same absolute positions.
        `instructions` (a client's own system messages) follow the character definition.
        `reply_tokens` is the room kept for the reply (default: the builder's).
        """
        extras = extras or Insertions()
        reply_tokens = self.reply_tokens if reply_tokens is None else reply_tokens
        card = sections.definition(character, user, persona, self.system_prompt)
        definition = "\n".join([*extras.before_definition, card, *extras.after_definition])
        head = [Message("system", definition, kind="definition"), *instructions]
        if extras.summary:
            head.append(Message("system", f"Summary of earlier events: {extras.summary}", kind="summary"))
        blocks = sections.example_blocks(character, user)
        examples = [Message("system", sections.examples_message(blocks, character), kind="examples")] if blocks else []
        tail = [Message("system", "\n".join(extras.late), kind="late")] if extras.late else []
        phi = sections.post_history(character, user)
        tail += [Message("system", phi, kind="post_history")] if phi else []
        turns = [Message(t.role, t.content, kind="history", images=t.images) for t in history]
        budget = self.backend.context_size - reply_tokens
        fixed = sum(map(self.cost, head + tail)) + (self.cost(turns[-1]) if turns else 0)
        if fixed > budget:
            raise RolecraftError(
                f"the character definition and your message need {fixed} tokens but only {budget} fit "
                f"(context {self.backend.context_size} minus {reply_tokens} for the reply); "
                "raise n_ctx or shorten the card",
                code="context_overflow",
                param="n_ctx",
            )
        return self._fit(head, examples, turns, tail, budget, first_index, extras.at_depth)

    def _fit(
        self, head: list[Message], examples: list[Message], turns: list[Message], tail: list[Message], budget: int,
        first_index: int, at_depth: list[tuple[int, Message]],
    ) -> PromptPlan:
        costs = [self.cost(m) for m in turns]
        room = budget - sum(map(self.cost, head + tail)) - sum(self.cost(m) for _, m in at_depth)
        use_examples = first_index == 0 and bool(examples) and sum(costs) + sum(map(self.cost, examples)) <= room
        room -= sum(map(self.cost, examples)) if use_examples else 0
        cut = _cut_for(costs, room, first_index)
        while True:
            messages = head + (examples if use_examples else []) + _insert(turns[cut:], at_depth) + tail
            exact = self.backend.count_tokens(messages)
            if exact <= budget or cut >= len(turns) - 1:
                break
            cut = min(len(turns) - 1, cut + PAGE)
        return PromptPlan(
            messages=messages,
            prompt_tokens=exact,
            budget=budget,
            dropped_messages=first_index + cut,
            examples_included=use_examples,
        )


def _insert(turns: list[Message], at_depth: list[tuple[int, Message]]) -> list[Message]:
    """Place each message `depth` messages before the end of the history (0 = after the last)."""
    out = list(turns)
    for depth, message in sorted(at_depth, key=lambda item: -item[0]):
        out.insert(max(0, len(out) - depth), message)
    return out


def _cut_for(costs: list[int], room: int, first_index: int = 0) -> int:
    """First history index kept: the smallest cut that fits, rounded up to a page so it stays stable."""
    total = sum(costs)
    if total <= room:
        return 0
    need, cut = total - room, 0
    while need > 0 and cut < len(costs) - 1:
        need -= costs[cut]
        cut += 1
    cut = min(len(costs) - 1, math.ceil((first_index + cut) / PAGE) * PAGE - first_index)
    suffix = sum(costs[cut:])
    while suffix > room and cut < len(costs) - 1:
        suffix -= costs[cut]
        cut += 1
    return cut

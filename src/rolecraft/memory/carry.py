"""What a reply carries forward on its branch: the dialogue state and the rolling summary.

`after_turn` folds a finished exchange into them; the result is stored in the
reply's meta in the same transaction as the turn, so every branch, swipe and
regeneration carries exactly the state it produced. `Memory.latest` reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rolecraft.memory import summary as summaries
from rolecraft.memory.state import DialogueState
from rolecraft.memory.tracker import update_state

if TYPE_CHECKING:
    from rolecraft.backends.base import Backend
    from rolecraft.characters.model import Character
    from rolecraft.settings import Settings
    from rolecraft.store.records import StoredMessage


@dataclass
class Memory:
    """What the last reply on this branch carried forward (message meta 'state' and 'summary')."""

    state: DialogueState = field(default_factory=DialogueState)
    summary: str = ""
    summary_upto: int = 0

    @classmethod
    def latest(cls, history: Sequence[StoredMessage]) -> Memory:
        for message in reversed(history):
            if "state" in message.meta or "summary" in message.meta:
                return cls.from_meta(message.meta)
        return cls()

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Memory:
        summary = meta.get("summary") or {}
        try:
            state = DialogueState.model_validate(meta.get("state") or {})
        except ValueError:
            state = DialogueState()
        return cls(state, str(summary.get("text", "")), int(summary.get("upto", 0)))

    def to_meta(self) -> dict[str, Any]:
        return {"state": self.state.model_dump(exclude_defaults=True),
                "summary": {"text": self.summary, "upto": self.summary_upto}}


class _Plan(Protocol):
    dropped_messages: int


class TurnRecord(Protocol):
    """What `after_turn` reads of a finished turn (conversation.Turn fits)."""

    memory: Memory
    new_user: str | None
    history: list[StoredMessage]
    plan: _Plan


def after_turn(settings: Settings, backend: Backend, character: Character, user: str, turn: TurnRecord,
               reply: str) -> Memory:
    """The memory that the new reply carries forward."""
    memory = Memory(turn.memory.state, turn.memory.summary, turn.memory.summary_upto)
    said = turn.new_user
    if said is None and turn.history and turn.history[-1].role == "user":
        said = turn.history[-1].content  # a regenerated reply answers the stored user message
    if said:
        memory.state = update_state(settings.state_tracking, backend, memory.state, user, character.name, said, reply)
    if settings.summary != "off" and turn.plan.dropped_messages > memory.summary_upto:
        _fold_summary(settings, backend, character, turn, memory)
    return memory


def _fold_summary(settings: Settings, backend: Backend, character: Character, turn: TurnRecord,
                  memory: Memory) -> None:
    first = turn.history[0].depth if turn.history else 0
    start = max(0, memory.summary_upto - first)
    dropped = turn.history[start: turn.plan.dropped_messages - first]
    lines = [(m.name, m.content) for m in dropped]
    if not lines:
        return
    if settings.summary == "model":
        memory.summary = summaries.summarize(backend, memory.summary, lines, character.name)
    else:
        memory.summary = summaries.extractive(memory.summary, lines)
    memory.summary_upto = turn.plan.dropped_messages

"""After a reply: fold the exchange into the dialogue state and the rolling summary.

The result is stored in the reply's meta in the same transaction as the turn, so
every branch, swipe and regeneration carries exactly the state it produced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolecraft.characters.model import Character
from rolecraft.conversation.context import Memory
from rolecraft.memory import summary as summaries
from rolecraft.memory.state import merge, rule_updates
from rolecraft.memory.tracker import extract

if TYPE_CHECKING:
    from rolecraft.conversation.engine import Engine
    from rolecraft.conversation.session import Turn


def after_turn(engine: Engine, character: Character, user: str, turn: Turn, reply: str) -> Memory:
    """The memory that the new reply carries forward."""
    settings = engine.settings
    memory = Memory(turn.memory.state, turn.memory.summary, turn.memory.summary_upto)
    said = turn.new_user
    if said is None and turn.history and turn.history[-1].role == "user":
        said = turn.history[-1].content  # a regenerated reply answers the stored user message
    if settings.state_tracking != "off" and said:
        memory.state = merge(memory.state, rule_updates(said))
        if settings.state_tracking == "model":
            update = extract(engine.backend, memory.state, user, character.name, said, reply)
            memory.state = merge(memory.state, update)
    if settings.summary != "off" and turn.plan.dropped_messages > memory.summary_upto:
        _fold_summary(engine, character, turn, memory)
    return memory


def _fold_summary(engine: Engine, character: Character, turn: Turn, memory: Memory) -> None:
    first = turn.history[0].depth if turn.history else 0
    start = max(0, memory.summary_upto - first)
    dropped = turn.history[start: turn.plan.dropped_messages - first]
    lines = [(m.name, m.content) for m in dropped]
    if not lines:
        return
    if engine.settings.summary == "model":
        memory.summary = summaries.summarize(engine.backend, memory.summary, lines, character.name)
    else:
        memory.summary = summaries.extractive(memory.summary, lines)
    memory.summary_upto = turn.plan.dropped_messages

"""Gather what goes around the history in a turn: tracked state, summary, lorebook hits, author's note.

Placement keeps the cached prompt prefix stable: constant lorebook entries sit in
the character definition (they never change), the summary changes only when the
history cut moves, and everything that can change every turn (state, triggered
lore) goes in one late block after the user's message. Entries placed at a depth
and the author's note go where the user asked for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rolecraft.characters.macros import expand_macros
from rolecraft.characters.model import Character
from rolecraft.lorebook import CompiledBook, compile_book, scan
from rolecraft.memory.carry import Memory
from rolecraft.messages import Message
from rolecraft.prompting import Insertions
from rolecraft.settings import Settings


class Said(Protocol):
    """A line of the conversation as lorebook scanning needs it (StoredMessage fits)."""

    role: str
    name: str
    content: str


class Lore:
    """The lorebooks of one session, compiled once."""

    def __init__(self, character: Character, extra: Sequence[Any] = ()) -> None:
        books = [b for b in [character.character_book, *extra] if b is not None and b.entries]
        self.books: list[CompiledBook] = [compile_book(b) for b in books]
        self.constant = {e.content for b in books for e in b.entries if e.constant and e.enabled}
        self.warnings: list[str] = []


def gather(settings: Settings, character: Character, user: str, history: Sequence[Said],
           user_text: str | None, memory: Memory, lore: Lore, count_tokens: Any) -> Insertions:
    """The Insertions for the next reply."""
    extras = Insertions(summary=memory.summary)
    if lore.books:
        texts = [f"{m.name}: {m.content}" for m in history] + ([f"{user}: {user_text}"] if user_text else [])
        result = scan(lore.books, texts, count_tokens=count_tokens, scan_depth=settings.lorebook_scan_depth,
                      token_budget=settings.lorebook_token_budget)
        lore.warnings = list(result.warnings)
        for hit in result.activations:
            _place(extras, hit, expand_macros(hit.content, character.name, user), hit.content in lore.constant)
    known = memory.state.render()
    if known:
        extras.late.insert(0, f"[What {character.name} knows so far]\n{known}")
    user_turns = sum(1 for m in history if m.role == "user") + (1 if user_text else 0)
    if settings.author_note and user_turns % settings.author_note_every == 0:
        note = expand_macros(settings.author_note, character.name, user)
        extras.at_depth.append((settings.author_note_depth, Message("system", f"[Author's note: {note}]",
                                                                    kind="author_note")))
    return extras


def _place(extras: Insertions, hit: Any, text: str, constant: bool) -> None:
    if hit.position == "at_depth":
        extras.at_depth.append((hit.depth, Message(hit.role, text, kind="lore")))
    elif constant and hit.position in {"before_char", "before_examples"}:
        extras.before_definition.append(text)
    elif constant:
        extras.after_definition.append(text)
    else:
        extras.late.append(text)

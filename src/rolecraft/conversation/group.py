"""Group scenes: several characters in one session, each knowing only what it witnessed.

Every message records who was present when it was said; a character's prompt holds
only the messages it was present for, so a secret told while it was away stays
secret. Who replies is decided per user message: by mention, by talkativeness, or
in a fixed order; a character can be forced to speak or muted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rolecraft.characters.model import Character
from rolecraft.conversation.context import Lore
from rolecraft.conversation.media import Perceived
from rolecraft.conversation.session import ChatSession, Turn
from rolecraft.errors import RolecraftError
from rolecraft.store.library import Member
from rolecraft.store.records import StoredMessage

if TYPE_CHECKING:
    from rolecraft.conversation.engine import Engine


class GroupSession(ChatSession):
    """A ChatSession whose replies come from several characters."""

    group = True

    def __init__(self, engine: Engine, session_id: str) -> None:
        super().__init__(engine, session_id)
        self.cast = {m.character_id: engine.character(m.character_id) for m in engine.store.members(session_id)}
        attached = [a.book for a in engine.store.session_lorebooks(session_id)]
        self._lores = {cid: Lore(c, attached) for cid, c in self.cast.items()}
        self._rng = random.Random(engine.settings.seed)

    @property
    def members(self) -> list[Member]:
        return self.engine.store.members(self.id)

    def member(self, name: str) -> str:
        """The member id for a name or id, case-insensitively."""
        wanted = name.strip().casefold()
        for cid, character in self.cast.items():
            if wanted in {cid.casefold(), character.name.casefold(), character.name.split()[0].casefold()}:
                return cid
        raise RolecraftError(f"no one called {name!r} is in this scene; members: {', '.join(self.cast)}",
                             code="unknown_member", param="name")

    def set_present(self, name: str, present: bool) -> None:
        self.engine.store.update_member(self.id, self.member(name), present=present)

    def set_muted(self, name: str, muted: bool) -> None:
        self.engine.store.update_member(self.id, self.member(name), muted=muted)

    def scene_meta(self) -> dict:
        return {"present": [m.character_id for m in self.members if m.present]}

    def _lore(self, speaker: Character) -> Lore:
        return next((self._lores[cid] for cid, c in self.cast.items() if c is speaker), self.lore)

    def cache_key(self, speaker: Character) -> str:
        return f"{self.id}:{speaker.name}"

    def other_names(self, speaker: Character) -> list[str]:
        return [c.name for c in self.cast.values() if c is not speaker]

    def visible(self, history: list[StoredMessage], char_id: str) -> list[StoredMessage]:
        """The messages `char_id` witnessed (messages without presence records are public)."""
        return [m for m in history if "present" not in m.meta or char_id in m.meta["present"]]

    def responders(self, text: str) -> list[str]:
        """Who answers `text`: mentioned members first; else by talkativeness or the fixed order."""
        ready = [m for m in self.members if m.present and not m.muted]
        if not ready:
            raise RolecraftError("no one in the scene can answer: everyone is away or muted", code="empty_scene")
        order = self.engine.settings.group_order
        if order in {"mention", "talkative"}:
            mentioned = self._mentioned(text, ready) if order == "mention" else []
            if mentioned:
                return mentioned
            chosen = [m.character_id for m in ready if self._rng.random() < m.talkativeness]
            return chosen or [max(ready, key=lambda m: (m.talkativeness, -m.position)).character_id]
        return [m.character_id for m in ready]

    def _mentioned(self, text: str, ready: list[Member]) -> list[str]:
        found = []
        for m in ready:
            name = self.cast[m.character_id].name
            hit = re.search(rf"\b({re.escape(name)}|{re.escape(name.split()[0])})\b", text, re.IGNORECASE)
            if hit:
                found.append((hit.start(), m.character_id))
        return [cid for _, cid in sorted(found)]

    def send_group(self, user_text: str, *, only: str | None = None, images: Sequence[bytes] = (),
                   meta: dict | None = None) -> Iterator[Turn]:
        """The replies to `user_text` (and `images`, through the one perception path), one Turn at a time;
        iterate each before asking for the next. `only` forces one member (even a muted one) to answer;
        `meta` is stored with the user's message (a scene's game state)."""
        if not user_text.strip() and not images:
            raise RolecraftError("empty message", code="empty_message", param="content")
        speakers = [self.member(only)] if only else self.responders(user_text)
        pending: Perceived | None = self.perceive(user_text, images=images)
        pending.meta.update(meta or {})
        for char_id in speakers:
            self.refresh()
            history = self.visible(self.recent(), char_id)
            turn = self._turn(history, pending, self.info.head_id, self.cast[char_id])
            yield turn
            if turn.result is None:
                return
            pending = None

    def speak_now(self, name: str) -> Turn:
        """Make a member say something now, without a new user message."""
        char_id = self.member(name)
        self.refresh()
        history = self.visible(self.recent(), char_id)
        return self._turn(history, None, self.info.head_id, self.cast[char_id])

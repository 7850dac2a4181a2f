"""The Engine: one per process; owns the settings, the store and (lazily) the backend."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from rolecraft.backends import Backend, create_backend
from rolecraft.characters.model import Character
from rolecraft.conversation.group import GroupSession
from rolecraft.conversation.services import Services
from rolecraft.conversation.session import ChatSession
from rolecraft.errors import RolecraftError
from rolecraft.prompting import ContextBuilder
from rolecraft.settings import Settings
from rolecraft.store import Store
from rolecraft.store.records import UNSET, NewMessage, SessionInfo, Unset

if TYPE_CHECKING:
    from rolecraft.memory.vectors import VectorMemory
    from rolecraft.perception import ObservationCache


class Engine(Services):
    """Entry point for library users: characters, sessions and turns."""

    def __init__(self, settings: Settings | None = None, *, backend: Backend | None = None) -> None:
        self.settings = settings or Settings()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.db_url)
        self._backend = backend
        self.windows: dict[str, int] = {}  # history messages each session's turns read (ChatSession.recent)
        self.store.install_samples()

    @property
    def backend(self) -> Backend:
        """The generation backend, loaded on first use (listing characters needs no model)."""
        if self._backend is None:
            self._backend = create_backend(self.settings)
        return self._backend

    @cached_property
    def builder(self) -> ContextBuilder:
        return ContextBuilder(self.backend, reply_tokens=self.settings.max_tokens,
                              system_prompt=self.settings.system_prompt)

    @cached_property
    def images(self) -> ObservationCache:
        """Picture descriptions by content hash, in memory and under <home>/cache/images."""
        from rolecraft.perception import ObservationCache

        return ObservationCache(folder=self.settings.home / "cache" / "images")

    @cached_property
    def vectors(self) -> VectorMemory | None:
        """Long-term memory, when enabled and the embedding model is installed."""
        from rolecraft import embeddings

        if not self.settings.long_term_memory or not embeddings.available():
            return None
        from rolecraft.memory.vectors import VectorMemory

        return VectorMemory(self.store, embeddings.embed)

    def character(self, char_id: str, owner: str | Unset | None = UNSET) -> Character:
        """The character `char_id` names (an id or a unique name); with `owner`, one that owner can see."""
        return self.store.get_character(char_id, owner)

    def who(self, *, user_name: str | None = None, persona: str | None = None,
            persona_id: str | None = None, owner: str | None = None) -> tuple[str, str]:
        """The user's name and persona description: `user_name`/`persona` as given, else `owner`'s stored persona
        `persona_id`, else that owner's default stored persona, else the settings. Every door asks here."""
        stored = (self.store.get_persona(persona_id, owner) if persona_id
                  else self.store.default_persona(owner))
        if stored is not None and user_name is None and persona is None:
            return stored.name, stored.description
        return user_name or self.settings.user_name, self.settings.persona if persona is None else persona

    def new_session(self, char_id: str, *, greeting: int = 0, user_name: str | None = None,
                    persona: str | None = None, persona_id: str | None = None,
                    owner: str | None = None) -> ChatSession:
        """Open a session whose first message is the chosen greeting; alternates are its swipes.

        Who the user is comes from `user_name`/`persona`, else the stored persona `persona_id`,
        else the default stored persona, else the settings. `owner` (an API key id; None: the local user)
        owns the session and its personas; `char_id` is an id or unique name of a character it can see."""
        char_id = self.store.resolve_character(char_id, owner)
        character = self.character(char_id)
        user, persona = self.who(user_name=user_name, persona=persona, persona_id=persona_id, owner=owner)
        greetings = [NewMessage("assistant", character.name, g, {"greeting": i})
                     for i, g in enumerate(character.greetings())]
        if greeting and not 0 <= greeting < len(greetings):
            raise RolecraftError(f"{character.name} has {len(greetings)} greetings; no greeting #{greeting}",
                                 code="invalid_greeting", param="greeting")
        info = self.store.create_session(char_id, user_name=user, greetings=greetings, chosen=greeting,
                                         persona=persona, owner=owner)
        return ChatSession(self, info.id)

    def new_group(self, char_ids: list[str], *, user_name: str | None = None,
                  persona_id: str | None = None) -> GroupSession:
        """A group scene: the first character's greeting opens it; all start present (ids or unique names)."""
        char_ids = [self.store.resolve_character(ref) for ref in char_ids]
        if len(set(char_ids)) < 2:
            raise RolecraftError("a group scene needs at least two different characters", code="invalid_group",
                                 param="characters")
        first = self.new_session(char_ids[0], user_name=user_name, persona_id=persona_id)
        self.store.add_members(first.id, list(dict.fromkeys(char_ids)))
        root = first.history()
        if root:
            self.store.update_meta(root[-1].id, {"present": list(dict.fromkeys(char_ids))})
        return GroupSession(self, first.id)

    def resume(self, char_id: str) -> ChatSession | None:
        """The character's most recently used session, if any."""
        info = self.store.latest_session(char_id)
        return None if info is None else self.session(info.id)

    def session(self, session_id: str, owner: str | Unset | None = UNSET) -> ChatSession:
        """A stored session (a GroupSession when it has several members); with `owner`, only one of that
        owner's (another's gets the same 404 as an unknown id)."""
        if not isinstance(owner, Unset):
            self.store.get_session(session_id, owner)
        if self.store.members(session_id):
            return GroupSession(self, session_id)
        return ChatSession(self, session_id)

    def sessions(self, char_id: str | None = None, owner: str | Unset | None = UNSET) -> list[SessionInfo]:
        """Stored sessions (of one character; of one owner), most recently used first."""
        return self.store.list_sessions(char_id, owner=owner)

    def delete_session(self, session_id: str, owner: str | Unset | None = UNSET) -> None:
        """Delete a session (with `owner`: only that owner's) and drop any KV cache the backend keeps for it."""
        self.store.delete_session(session_id, owner)
        if self._backend is not None:
            self._backend.forget(session_id)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self.store.close()

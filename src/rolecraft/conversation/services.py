"""Engine services the HTTP API calls with plain values: speech, transcription, state, personas, sprites.

Kept apart from the turn pipeline: each is a thin call into its room (perception,
voice, memory, store, expressions) with the engine's settings applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rolecraft.errors import RolecraftError

if TYPE_CHECKING:
    from rolecraft.conversation.engine import Engine


class Services:
    """Mixed into Engine."""

    def speak(self: Engine, text: str, *, voice: str | None, fmt: str, speed: float) -> bytes:
        """WAV speech of `text` (OpenAI voice names that are not ours fall back to the default voice)."""
        from rolecraft.voice import synthesize

        if fmt != "wav":
            raise RolecraftError(f"response_format {fmt!r} is not supported; use wav", code="unsupported_parameter",
                                 param="response_format")
        chosen = voice if voice and ":" in voice else self.settings.voice
        return synthesize(text, chosen)

    def transcribe(self: Engine, data: bytes, fmt: str, *, language: str | None, prompt: str | None) -> str:
        from rolecraft.perception import decode_audio, transcribe

        samples, _ = decode_audio(data, max_seconds=self.settings.audio_max_seconds)
        return transcribe(samples, backend=self.settings.stt_backend, model=self.settings.stt_model,
                          language=language).text

    def session_state(self: Engine, session_id: str) -> dict:
        return self.session(session_id).state().model_dump(mode="json")

    def session_summary(self: Engine, session_id: str) -> str:
        from rolecraft.memory.carry import Memory

        return Memory.latest(self.session(session_id).recent()).summary

    @property
    def personas(self: Engine) -> PersonaStore:
        return PersonaStore(self)

    @property
    def lorebooks(self: Engine) -> LorebookStore:
        return LorebookStore(self)

    def expression_sprite(self: Engine, char_id: str, label: str) -> tuple[bytes, str]:
        from rolecraft.expressions import sprite_for

        sprite = sprite_for(self.character(char_id), label, folder=self.settings.home / "sprites" / char_id)
        if sprite is None or sprite.data is None:
            raise RolecraftError(f"{char_id} has no sprite for {label!r}", code="sprite_not_found", status=404)
        return sprite.data, sprite.media_type


@dataclass
class PersonaStore:
    """Personas as the REST API sees them: list / get / put / delete, each within one owner's own
    (`owner`: an API key id, None for the local user); another owner's ids answer as unknown."""

    engine: Engine

    def list(self, owner: str | None = None) -> list[dict[str, Any]]:
        return [vars(p) for p in self.engine.store.list_personas(owner)]

    def get(self, persona_id: str, owner: str | None = None) -> dict[str, Any]:
        return vars(self.engine.store.get_persona(persona_id, owner))

    def put(self, persona_id: str, body: Any, owner: str | None = None) -> dict[str, Any]:
        return vars(self.engine.store.put_persona(persona_id, body.name, body.description,
                                                  default=getattr(body, "default", False), owner=owner))

    def delete(self, persona_id: str, owner: str | None = None) -> dict[str, Any]:
        self.engine.store.delete_persona(persona_id, owner)
        return {"id": persona_id, "deleted": True}


@dataclass
class LorebookStore:
    """Library lorebooks as the REST API sees them (list / get / put / delete), and attaching them to sessions;
    like personas, each owner sees and attaches only its own."""

    engine: Engine

    @staticmethod
    def _view(book: Any) -> dict[str, Any]:
        return {"id": book.id, "name": book.name, "entries": len(book.book.entries),
                "book": book.book.model_dump(mode="json", exclude_defaults=True)}

    def list(self, owner: str | None = None) -> list[dict[str, Any]]:
        return [self._view(b) for b in self.engine.store.list_lorebooks(owner)]

    def get(self, book_id: str, owner: str | None = None) -> dict[str, Any]:
        return self._view(self.engine.store.get_lorebook(book_id, owner))

    def put(self, book_id: str, body: Any, owner: str | None = None) -> dict[str, Any]:
        return self._view(self.engine.store.put_lorebook(book_id, body, owner))

    def delete(self, book_id: str, owner: str | None = None) -> dict[str, Any]:
        self.engine.store.delete_lorebook(book_id, owner)
        return {"id": book_id, "deleted": True}

    def attach(self, session_id: str, book_id: str, owner: str | None = None) -> dict[str, Any]:
        """Give `owner`'s session `session_id` its own copy of that owner's library lorebook `book_id`."""
        self.engine.store.get_session(session_id, owner)
        stored = self.engine.store.get_lorebook(book_id, owner)
        attached = self.engine.store.attach_lorebook(session_id, stored.name, stored.book)
        return {"id": attached.id, "name": attached.name, "entries": len(attached.book.entries)}

    def attached(self, session_id: str, owner: str | None = None) -> list[dict[str, Any]]:
        self.engine.store.get_session(session_id, owner)
        return [{"id": a.id, "name": a.name, "entries": len(a.book.entries)}
                for a in self.engine.store.session_lorebooks(session_id)]

    def detach(self, session_id: str, attached_id: int, owner: str | None = None) -> dict[str, Any]:
        self.engine.store.get_session(session_id, owner)
        self.engine.store.detach_lorebook(session_id, attached_id)
        return {"id": attached_id, "deleted": True}

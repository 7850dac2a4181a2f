"""Personas and lorebooks: each owner's own library beside characters and sessions.

Personas and library lorebooks are keyed by (owner, id): every API key has its
own namespace, and another key's ids are simply not there (the same 404 as an
unknown id). `owner` None is the local user.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rolecraft.characters.model import Lorebook
from rolecraft.errors import RolecraftError, not_found
from rolecraft.store.attachments import owner_key
from rolecraft.store.tables import (
    CharacterRow,
    LorebookRow,
    MemoryRow,
    PersonaRow,
    SessionLorebookRow,
    SessionMemberRow,
    SessionRow,
)
from rolecraft.store.text import refuse_nul_in


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    description: str
    is_default: bool


@dataclass(frozen=True)
class Member:
    character_id: str
    position: int
    talkativeness: float
    muted: bool
    present: bool


@dataclass(frozen=True)
class AttachedLorebook:
    id: int
    session_id: str
    name: str
    book: Lorebook


@dataclass(frozen=True)
class StoredLorebook:
    id: str
    name: str
    book: Lorebook


class LibraryMixin:
    """Store methods for personas, library lorebooks and per-session lorebooks (mixed into `Store`)."""

    def _tx(self) -> AbstractContextManager[Session]:  # provided by Store
        raise NotImplementedError

    def put_persona(self, persona_id: str, name: str, description: str = "", *, default: bool = False,
                    owner: str | None = None) -> Persona:
        if not persona_id.strip() or not name.strip():
            raise RolecraftError("a persona needs an id and a name", code="invalid_persona", param="name")
        refuse_nul_in(id=persona_id, name=name, description=description)
        key = owner_key(owner)
        with self._tx() as db:
            if default:
                db.execute(update(PersonaRow).where(PersonaRow.owner == key).values(is_default=False))
            row = db.get(PersonaRow, (key, persona_id))
            if row is None:
                row = PersonaRow(owner=key, id=persona_id, created_at=datetime.now(UTC).replace(tzinfo=None))
                db.add(row)
            row.name, row.description, row.is_default = name.strip(), description.strip(), default
            return _persona(row)

    def get_persona(self, persona_id: str, owner: str | None = None) -> Persona:
        with self._tx() as db:
            row = db.get(PersonaRow, (owner_key(owner), persona_id))
            if row is None:
                raise not_found("persona", persona_id)
            return _persona(row)

    def default_persona(self, owner: str | None = None) -> Persona | None:
        with self._tx() as db:
            query = select(PersonaRow).where(PersonaRow.owner == owner_key(owner), PersonaRow.is_default.is_(True))
            row = db.scalars(query).first()
            return None if row is None else _persona(row)

    def list_personas(self, owner: str | None = None) -> list[Persona]:
        with self._tx() as db:
            query = select(PersonaRow).where(PersonaRow.owner == owner_key(owner)).order_by(PersonaRow.id)
            return [_persona(row) for row in db.scalars(query)]

    def delete_persona(self, persona_id: str, owner: str | None = None) -> None:
        with self._tx() as db:
            row = db.get(PersonaRow, (owner_key(owner), persona_id))
            if row is None:
                raise not_found("persona", persona_id)
            db.delete(row)

    def put_lorebook(self, book_id: str, book: Lorebook, owner: str | None = None) -> StoredLorebook:
        """Store (or replace) `owner`'s library lorebook `book_id`."""
        refuse_nul_in(id=book_id, name=book.name)
        with self._tx() as db:
            row = db.get(LorebookRow, (owner_key(owner), book_id))
            if row is None:
                row = LorebookRow(owner=owner_key(owner), id=book_id)
                db.add(row)
            row.name, row.book = book.name or book_id, book.model_dump(mode="json")
            row.updated_at = datetime.now(UTC).replace(tzinfo=None)
            return _stored_book(row)

    def get_lorebook(self, book_id: str, owner: str | None = None) -> StoredLorebook:
        with self._tx() as db:
            row = db.get(LorebookRow, (owner_key(owner), book_id))
            if row is None:
                raise not_found("lorebook", book_id)
            return _stored_book(row)

    def list_lorebooks(self, owner: str | None = None) -> list[StoredLorebook]:
        with self._tx() as db:
            query = select(LorebookRow).where(LorebookRow.owner == owner_key(owner)).order_by(LorebookRow.id)
            return [_stored_book(row) for row in db.scalars(query)]

    def delete_lorebook(self, book_id: str, owner: str | None = None) -> None:
        """Remove a library lorebook (copies already attached to sessions stay with them)."""
        with self._tx() as db:
            row = db.get(LorebookRow, (owner_key(owner), book_id))
            if row is None:
                raise not_found("lorebook", book_id)
            db.delete(row)

    def attach_lorebook(self, session_id: str, name: str, book: Lorebook) -> AttachedLorebook:
        refuse_nul_in(name=name)
        with self._tx() as db:
            if db.get(SessionRow, session_id) is None:
                raise not_found("session", session_id)
            row = SessionLorebookRow(session_id=session_id, name=name, book=book.model_dump(mode="json"),
                                     created_at=datetime.now(UTC).replace(tzinfo=None))
            db.add(row)
            db.flush()
            return _attached(row)

    def session_lorebooks(self, session_id: str) -> list[AttachedLorebook]:
        with self._tx() as db:
            query = select(SessionLorebookRow).where(SessionLorebookRow.session_id == session_id)
            return [_attached(row) for row in db.scalars(query.order_by(SessionLorebookRow.id))]

    def detach_lorebook(self, session_id: str, lorebook_id: int) -> None:
        with self._tx() as db:
            row = db.get(SessionLorebookRow, lorebook_id)
            if row is None or row.session_id != session_id:
                raise not_found("lorebook", str(lorebook_id))
            db.delete(row)


    def add_members(self, session_id: str, character_ids: list[str]) -> None:
        """Make a session a group scene with these characters, in reply order."""
        with self._tx() as db:
            for position, char_id in enumerate(character_ids):
                if db.get(CharacterRow, char_id) is None:
                    raise not_found("character", char_id)
                db.merge(SessionMemberRow(session_id=session_id, character_id=char_id, position=position,
                                          talkativeness=0.5, muted=False, present=True))

    def members(self, session_id: str) -> list[Member]:
        with self._tx() as db:
            query = select(SessionMemberRow).where(SessionMemberRow.session_id == session_id)
            return [Member(r.character_id, r.position, r.talkativeness, bool(r.muted), bool(r.present))
                    for r in db.scalars(query.order_by(SessionMemberRow.position))]

    def update_member(self, session_id: str, char_id: str, **changes: object) -> None:
        """Change present / muted / talkativeness of one member."""
        with self._tx() as db:
            row = db.get(SessionMemberRow, (session_id, char_id))
            if row is None:
                raise not_found("member", char_id)
            for key, value in changes.items():
                setattr(row, key, value)


    def add_memory(self, session_id: str, message_id: int, depth: int, text: str, vector: bytes) -> None:
        refuse_nul_in(memory=text)
        with self._tx() as db:
            db.add(MemoryRow(session_id=session_id, message_id=message_id, depth=depth, text=text, vector=vector))

    def memories_since(self, session_id: str, after_id: int) -> list[tuple[int, int, int, str, bytes]]:
        """(id, message_id, depth, text, vector) rows newer than `after_id`, oldest first."""
        with self._tx() as db:
            query = select(MemoryRow.id, MemoryRow.message_id, MemoryRow.depth, MemoryRow.text, MemoryRow.vector)
            query = query.where(MemoryRow.session_id == session_id, MemoryRow.id > after_id)
            return [tuple(row) for row in db.execute(query.order_by(MemoryRow.id))]


def _persona(row: PersonaRow) -> Persona:
    return Persona(row.id, row.name, row.description, bool(row.is_default))


def _stored_book(row: LorebookRow) -> StoredLorebook:
    return StoredLorebook(row.id, row.name, Lorebook.model_validate(row.book))


def _attached(row: SessionLorebookRow) -> AttachedLorebook:
    return AttachedLorebook(row.id, row.session_id, row.name, Lorebook.model_validate(row.book))

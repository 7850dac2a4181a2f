"""Characters in the store: one id space, owners, and lookup by id or by name.

A character uploaded with an API key belongs to that key: only it sees,
changes or deletes it (anyone else gets the 404 of an unknown id). Characters
without an owner, the bundled samples and the ones the operator imports with
the CLI, are shared: every key may read them and chat with them, but only the
local user (the CLI, or a server run without keys) may change or delete them.

`owner` arguments: UNSET (the default) is the trusted local process that sees
everything (CLI, training); None is the local user of a server; a string is an
API key id.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rolecraft.characters.cards import card_from_character, character_from_card
from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError, not_found
from rolecraft.store.attachments import AttachmentMixin
from rolecraft.store.records import UNSET, CharacterInfo, Unset
from rolecraft.store.tables import CharacterRow, MessageRow, SessionRow
from rolecraft.store.text import NUL, refuse_nul

Owner = str | None | Unset


def slugify(name: str) -> str:
    """A readable id from a name; non-Latin names keep their letters (e.g. '林月')."""
    text = unicodedata.normalize("NFKC", name).strip().lower()
    slug = re.sub(r"[^\w]+", "-", text).strip("-_")
    return slug[:60] or "character"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def visible(row_owner: str | None, owner: Owner) -> bool:
    """Whether `owner` may read a character owned by `row_owner`."""
    return isinstance(owner, Unset) or row_owner is None or row_owner == owner


def _check_writable(row: CharacterRow, owner: Owner) -> None:
    if not visible(row.owner, owner):
        raise not_found("character", row.id)
    if owner is not None and not isinstance(owner, Unset) and row.owner is None:
        raise RolecraftError(f"character {row.id!r} is shared and read-only for API keys; upload your own copy "
                             "(POST /v1/characters) to change it", code="character_read_only", status=403,
                             param="character")


def _others_sessions(db: Session, char_id: str, owner: str | None) -> bool:
    """Whether anyone but `owner` has a session with the character."""
    if owner is None:
        others = SessionRow.owner.is_not(None)
    else:
        others = SessionRow.owner.is_(None) | (SessionRow.owner != owner)
    query = select(SessionRow.id).where(SessionRow.character_id == char_id, others)
    return db.scalars(query.limit(1)).first() is not None


class CharacterMixin(AttachmentMixin):
    """Store methods for characters (mixed into `Store`)."""

    def put_character(self, character: Character, *, char_id: str | None = None, source: str = "import",
                      owner: Owner = UNSET) -> str:
        """Store a character and return its id: a new one (owned by `owner`), or a replacement of `char_id`
        when `owner` may change it."""
        refuse_nul(character.name, "name")
        card = card_from_character(character)
        with self._tx() as db:
            cid = char_id or self._free_id(db, slugify(character.name))
            row = db.get(CharacterRow, cid)
            if row is None:
                db.add(CharacterRow(id=cid, name=character.name, card=card, avatar=character.avatar, source=source,
                                    created_at=datetime.now(UTC).replace(tzinfo=None),
                                    owner=None if isinstance(owner, Unset) else owner))
            else:
                _check_writable(row, owner)
                row.name, row.card, row.avatar, row.source = character.name, card, character.avatar, source
        return cid

    @staticmethod
    def _free_id(db: Session, base: str) -> str:
        taken = set(db.scalars(select(CharacterRow.id).where(CharacterRow.id.like(f"{base}%"))))
        if base not in taken:
            return base
        n = 2
        while f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    def _character_row(self, db: Session, ref: str, owner: Owner) -> CharacterRow:
        """The character `ref` names for `owner`: its id, else its unique case-insensitive name (or id)."""
        if NUL in ref:  # no id or name holds one (PostgreSQL could not even look it up)
            raise not_found("character", ref)
        row = db.get(CharacterRow, ref)
        if row is not None and visible(row.owner, owner):
            return row
        wanted = _fold(ref)
        found = [(cid, row_owner) for cid, name, row_owner in
                 db.execute(select(CharacterRow.id, CharacterRow.name, CharacterRow.owner).order_by(CharacterRow.id))
                 if visible(row_owner, owner) and wanted in (_fold(name), _fold(cid))]
        if not found:
            raise not_found("character", ref)
        if len(found) > 1:
            raise RolecraftError(f"{len(found)} characters are called {ref!r}: {', '.join(c for c, _ in found)}; "
                                 "use one of these ids", code="ambiguous_character", param="character")
        return db.get(CharacterRow, found[0][0])

    def resolve_character(self, ref: str, owner: Owner = UNSET) -> str:
        """The id of the character `ref` names (an id, or a unique name in any case)."""
        with self._tx() as db:
            return self._character_row(db, ref, owner).id

    def get_character(self, ref: str, owner: Owner = UNSET) -> Character:
        with self._tx() as db:
            row = self._character_row(db, ref, owner)
            character = character_from_card(row.card, source=f"stored character {row.id}")
            return character.model_copy(update={"avatar": row.avatar})

    def has_character(self, ref: str, owner: Owner = UNSET) -> bool:
        """Whether `ref` names a character `owner` can see (an ambiguous name counts: using it explains)."""
        try:
            self.resolve_character(ref, owner)
        except RolecraftError as exc:
            return exc.code == "ambiguous_character"
        return True

    def install_samples(self) -> None:
        """Put the bundled sample characters in the library once (user edits are not overwritten)."""
        from rolecraft.characters.io import load_character_file
        from rolecraft.characters.samples import sample_paths

        with self._tx() as db:
            present = set(db.scalars(select(CharacterRow.id)))
        for path in sample_paths():
            if path.stem not in present:
                self.put_character(load_character_file(path), char_id=path.stem, source="sample")

    def list_characters(self, owner: Owner = UNSET) -> list[CharacterInfo]:
        """Characters `owner` can see: its own and the shared ones."""
        with self._tx() as db:
            rows = db.execute(
                select(CharacterRow.id, CharacterRow.name, CharacterRow.source, CharacterRow.created_at,
                       CharacterRow.owner).order_by(CharacterRow.id)
            ).all()
        return [CharacterInfo(*row) for row in rows if visible(row.owner, owner)]

    def delete_character(self, ref: str, owner: Owner = UNSET) -> None:
        """Delete a character and all its sessions (and the attachments only they linked); an owner
        may not delete one other owners still have sessions with (409), as that would delete theirs."""
        with self._tx() as db:
            row = self._character_row(db, ref, owner)
            _check_writable(row, owner)
            char_id = row.id
            if not isinstance(owner, Unset) and _others_sessions(db, char_id, owner):
                raise RolecraftError(f"other users have sessions with character {char_id!r}; not deleted",
                                         code="character_in_use", status=409, param="character")
            session_ids = select(SessionRow.id).where(SessionRow.character_id == char_id)
            message_ids = select(MessageRow.id).where(MessageRow.session_id.in_(session_ids))
            owners = set(db.scalars(select(SessionRow.owner).where(SessionRow.character_id == char_id)))
            shas = self._unlink_messages(db, message_ids)
            db.execute(delete(MessageRow).where(MessageRow.session_id.in_(session_ids)))
            db.execute(delete(SessionRow).where(SessionRow.character_id == char_id))
            db.execute(delete(CharacterRow).where(CharacterRow.id == char_id))
            for session_owner in owners:
                self._collect_attachments(db, shas, session_owner)

"""Character logic for the REST routes: cards in and out, through the engine's card readers and writers.

Characters are shared by every caller of the server (sessions are not). Uploads
never overwrite: an explicit id that is taken is a 409, and without one a free
id is derived from the name. Deleting a character that other callers still have
sessions with is refused, since it would delete their conversations.
"""

from __future__ import annotations

from urllib.parse import quote

from rolecraft.characters.cards import SPEC_V2, SPEC_V3, card_from_character
from rolecraft.characters.io import dump_character, load_character, placeholder_avatar
from rolecraft.characters.model import Lorebook
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError, not_found
from rolecraft.server.auth import Principal
from rolecraft.server.characters.protocol import CharacterList, CharacterOut, Expressions
from rolecraft.server.media import check_image

SPECS = {"v2": SPEC_V2, "v3": SPEC_V3}
MEDIA_TYPES = {"png": "image/png", "json": "application/json", "charx": "application/zip"}


def listing(engine: Engine) -> CharacterList:
    return CharacterList(data=[CharacterOut.of(c) for c in engine.store.list_characters()])


def info(engine: Engine, char_id: str) -> CharacterOut:
    found = next((c for c in engine.store.list_characters() if c.id == char_id), None)
    if found is None:
        raise not_found("character", char_id)
    return CharacterOut.of(found)


def upload(engine: Engine, data: bytes, filename: str, char_id: str | None) -> CharacterOut:
    """Store a card file's character under `char_id` (or a free id from its name)."""
    character = load_character(data, filename, max_bytes=engine.settings.max_card_bytes)
    if char_id is not None and engine.store.has_character(char_id):
        raise RolecraftError(f"a character with id {char_id!r} exists; delete it first or choose another id",
                             code="character_exists", status=409, param="id")
    return info(engine, engine.store.put_character(character, char_id=char_id, source="upload"))


def card(engine: Engine, char_id: str) -> dict:
    """The character as a Character Card V3 dictionary."""
    return card_from_character(engine.character(char_id))


def export(engine: Engine, char_id: str, fmt: str, spec: str) -> tuple[bytes, dict[str, str]]:
    """Card file bytes and the headers that name the download."""
    if fmt == "charx" and spec != "v3":
        raise RolecraftError("CHARX files are Character Card V3 only", code="invalid_value", param="spec")
    data = dump_character(engine.character(char_id), fmt, spec=SPECS[spec])  # type: ignore[arg-type]
    disposition = f"attachment; filename=\"character.{fmt}\"; filename*=UTF-8''{quote(char_id)}.{fmt}"
    return data, {"Content-Disposition": disposition}


def avatar(engine: Engine, char_id: str) -> tuple[bytes, str]:
    """The avatar image and its MIME type (a generated PNG when the card has none)."""
    character = engine.character(char_id)
    if character.avatar is None:
        return placeholder_avatar(character.name), "image/png"
    return character.avatar, check_image(character.avatar, param="avatar")


def delete(engine: Engine, char_id: str, caller: Principal) -> None:
    others = [s for s in engine.store.list_sessions(char_id) if s.owner != caller.owner]
    if others:
        raise RolecraftError(f"character {char_id!r} has {len(others)} sessions of other users; not deleted",
                             code="character_in_use", status=409)
    engine.store.delete_character(char_id)


def lorebook(engine: Engine, char_id: str) -> Lorebook | None:
    return engine.character(char_id).character_book


def put_lorebook(engine: Engine, char_id: str, book: Lorebook | None) -> Lorebook | None:
    """Replace the character's own lorebook (None removes it)."""
    character = engine.character(char_id)
    source = info(engine, char_id).source
    engine.store.put_character(character.model_copy(update={"character_book": book}), char_id=char_id, source=source)
    return book


def expressions(engine: Engine, char_id: str) -> Expressions:
    return Expressions(character_id=char_id, expressions=engine.character(char_id).expressions)

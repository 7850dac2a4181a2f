"""Character logic for the REST routes: cards in and out, through the engine's card readers and writers.

Ownership lives in the store (store/characters.py): a caller sees its own
uploads and the shared characters (bundled samples, the operator's CLI
imports); another key's uploads answer 404 like unknown ids. Shared characters
are read-only for API keys (403): a key uploads its own copy to change one.
Uploads never overwrite: an explicit id that is taken is a 409, and without
one a free id is derived from the name. Deleting a character that other callers
still have sessions with is refused, since it would delete their conversations.
"""

from __future__ import annotations

from urllib.parse import quote

from rolecraft.characters.cards import SPEC_V2, SPEC_V3, card_from_character
from rolecraft.characters.io import dump_character, load_character, placeholder_avatar
from rolecraft.characters.model import Character, Lorebook
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError, not_found
from rolecraft.server.auth import Principal
from rolecraft.server.characters.protocol import CharacterList, CharacterOut, Expressions
from rolecraft.server.media import check_image

SPECS = {"v2": SPEC_V2, "v3": SPEC_V3}
MEDIA_TYPES = {"png": "image/png", "json": "application/json", "charx": "application/zip"}


def listing(engine: Engine, caller: Principal) -> CharacterList:
    return CharacterList(data=[CharacterOut.of(c) for c in engine.store.list_characters(caller.owner)])


def info(engine: Engine, char_id: str, caller: Principal) -> CharacterOut:
    found = next((c for c in engine.store.list_characters(caller.owner) if c.id == char_id), None)
    if found is None:
        raise not_found("character", char_id)
    return CharacterOut.of(found)


def _character(engine: Engine, char_id: str, caller: Principal) -> Character:
    return engine.character(char_id, caller.owner)


def upload(engine: Engine, data: bytes, filename: str, char_id: str | None, caller: Principal) -> CharacterOut:
    """Store a card file's character, owned by the caller, under `char_id` (or a free id from its name)."""
    character = load_character(data, filename, max_bytes=engine.settings.max_card_bytes)
    if char_id is not None and char_id in {c.id for c in engine.store.list_characters()}:
        raise RolecraftError(f"a character with id {char_id!r} exists; delete it first or choose another id",
                             code="character_exists", status=409, param="id")
    stored = engine.store.put_character(character, char_id=char_id, source="upload", owner=caller.owner)
    return info(engine, stored, caller)


def card(engine: Engine, char_id: str, caller: Principal) -> dict:
    """The character as a Character Card V3 dictionary."""
    return card_from_character(_character(engine, char_id, caller))


def export(engine: Engine, char_id: str, fmt: str, spec: str, caller: Principal) -> tuple[bytes, dict[str, str]]:
    """Card file bytes and the headers that name the download."""
    if fmt == "charx" and spec != "v3":
        raise RolecraftError("CHARX files are Character Card V3 only", code="invalid_value", param="spec")
    data = dump_character(_character(engine, char_id, caller), fmt, spec=SPECS[spec])  # type: ignore[arg-type]
    disposition = f"attachment; filename=\"character.{fmt}\"; filename*=UTF-8''{quote(char_id)}.{fmt}"
    return data, {"Content-Disposition": disposition}


def avatar(engine: Engine, char_id: str, caller: Principal) -> tuple[bytes, str]:
    """The avatar image and its MIME type (a generated PNG when the card has none)."""
    character = _character(engine, char_id, caller)
    if character.avatar is None:
        return placeholder_avatar(character.name), "image/png"
    return character.avatar, check_image(character.avatar, param="avatar")


def delete(engine: Engine, char_id: str, caller: Principal) -> None:
    engine.store.delete_character(char_id, caller.owner)


def lorebook(engine: Engine, char_id: str, caller: Principal) -> Lorebook | None:
    return _character(engine, char_id, caller).character_book


def put_lorebook(engine: Engine, char_id: str, book: Lorebook | None, caller: Principal) -> Lorebook | None:
    """Replace the character's own lorebook (None removes it); a shared character is read-only for API keys."""
    char_id = engine.store.resolve_character(char_id, caller.owner)
    character = _character(engine, char_id, caller)
    source = info(engine, char_id, caller).source
    engine.store.put_character(character.model_copy(update={"character_book": book}), char_id=char_id,
                               source=source, owner=caller.owner)
    return book


def expressions(engine: Engine, char_id: str, caller: Principal) -> Expressions:
    return Expressions(character_id=char_id, expressions=_character(engine, char_id, caller).expressions)

"""Standalone lorebook files ↔ `Lorebook`, so users can attach the world-info books they already have.

Three shapes are read, told apart by content (the file name only names the book):

* SillyTavern's world-info export, `{"entries": {"<uid>": {uid, key, keysecondary,
  comment, content, constant, selective, selectiveLogic, order, position, disable,
  probability, depth, role, ...}}}`. Fields are mapped the way SillyTavern's own
  card export maps them: `key`→`keys`, `keysecondary`→`secondary_keys`,
  `order`→`insertion_order`, `disable`→`enabled`, `position` 0→"before_char",
  else "after_char", and the rest into `extensions` under SillyTavern's
  card-export names (`selectiveLogic`, `depth`, `role`, `scan_depth`,
  `case_sensitive`, `match_whole_words`, `exclude_recursion`, ...). Unknown
  entry fields are kept in `extra`, unknown book fields in the book's `extra`.
  `originalData` (SillyTavern's cached copy of the card book it was imported
  from) is dropped: after an edit it would be stale, and SillyTavern prefers it
  over the entries when it embeds the book in a card;
* `{"spec": "lorebook_v3", "data": <character_book>}` (Character Card V3);
* a bare V2/V3 `character_book` object.

Every problem is one `RolecraftError(code="invalid_lorebook")` naming the file
and the entry (`entries.7.key`, `data.entries[2].content`). A key that is not a
valid regex does not fail the load: `check_lorebook` lists such problems and a
scan skips the key with a warning.

Writing: `dump_lorebook(book, "lorebook_v3")` or `"sillytavern"`. Round trips
keep unknown fields: lorebook_v3 → lorebook_v3 is exact, and so is a complete
SillyTavern export → sillytavern (sparse SillyTavern entries gain SillyTavern's
defaults for the core fields). Converting a V3 entry with `use_regex` to
SillyTavern writes its keys as `/pattern/flags`, the only regex keys
SillyTavern knows.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from rolecraft.characters.cards import SPEC_V3, _export_book, _Fields, _lorebook, book_settings, card_json_bytes
from rolecraft.characters.io import read_limited
from rolecraft.characters.model import Lorebook, LorebookEntry
from rolecraft.errors import RolecraftError
from rolecraft.lorebook.rules import bare_keys_are_regex, slashed_regex

MAX_BYTES = 10 * 1024 * 1024
SPEC_LOREBOOK_V3 = "lorebook_v3"
Format = Literal["sillytavern", "lorebook_v3"]

# SillyTavern entry field → the `extensions` key SillyTavern's card export writes it under.
_ST_EXTENSIONS = {
    "position": "position", "excludeRecursion": "exclude_recursion", "preventRecursion": "prevent_recursion",
    "delayUntilRecursion": "delay_until_recursion", "displayIndex": "display_index", "probability": "probability",
    "useProbability": "useProbability", "depth": "depth", "selectiveLogic": "selectiveLogic",
    "outletName": "outlet_name", "group": "group", "groupOverride": "group_override", "groupWeight": "group_weight",
    "scanDepth": "scan_depth", "matchWholeWords": "match_whole_words", "useGroupScoring": "use_group_scoring",
    "caseSensitive": "case_sensitive", "automationId": "automation_id", "role": "role", "vectorized": "vectorized",
    "sticky": "sticky", "cooldown": "cooldown", "delay": "delay",
    "matchPersonaDescription": "match_persona_description",
    "matchCharacterDescription": "match_character_description",
    "matchCharacterPersonality": "match_character_personality",
    "matchCharacterDepthPrompt": "match_character_depth_prompt", "matchScenario": "match_scenario",
    "matchCreatorNotes": "match_creator_notes", "triggers": "triggers", "ignoreBudget": "ignore_budget",
}  # fmt: skip
_ST_CORE = {"uid", "key", "keysecondary", "comment", "content", "constant", "selective", "order", "disable"}
_ST_ENTRY_FIELDS = _ST_CORE | {"name", "priority", "extensions"} | set(_ST_EXTENSIONS)
_V3_ENTRY_FIELDS = {
    "keys", "content", "extensions", "enabled", "insertion_order", "case_sensitive", "use_regex", "constant", "name",
    "priority", "id", "comment", "selective", "secondary_keys", "position",
}  # fmt: skip
_BOOK_SETTINGS = ("description", "scan_depth", "token_budget", "recursive_scanning")
_ST_BOOK_FIELDS = {"entries", "originalData", "name", "extensions", *_BOOK_SETTINGS}
_UNESCAPED_SLASH = re.compile(r"(?<!\\)/")


def lorebook_error(source: str, problem: str, param: str | None = None) -> RolecraftError:
    """The error every lorebook reader raises: names the file (source), the problem and the field path."""
    return RolecraftError(f"{source}: {problem}", code="invalid_lorebook", param=param)


def load_lorebook(data: bytes, filename: str = "lorebook.json", *, max_bytes: int = MAX_BYTES) -> Lorebook:
    """A Lorebook from SillyTavern world-info, `lorebook_v3` or bare `character_book` JSON bytes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise lorebook_error(filename, f"expected the file's bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise lorebook_error(filename, f"file is too large ({len(data)} bytes; the limit is {max_bytes})")
    obj = _parse_json(bytes(data), filename)
    try:
        book = _from_object(obj, filename)
    except RolecraftError as exc:
        if exc.code != "invalid_card":
            raise
        raise RolecraftError(exc.message, code="invalid_lorebook", param=exc.param) from None
    except RecursionError:
        raise lorebook_error(filename, "the lorebook is nested too deeply") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise lorebook_error(filename, f"field '{'.'.join(map(str, first['loc']))}': {first['msg']}") from None
    if book.name is None:
        book.name = Path(filename).stem or None
    return book


def load_lorebook_file(path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> Lorebook:
    """Load a lorebook file, refusing files over `max_bytes` before reading them."""
    path = Path(path)
    return load_lorebook(read_limited(path, max_bytes, lorebook_error), path.name, max_bytes=max_bytes)


def dump_lorebook(book: Lorebook, fmt: Format = "lorebook_v3") -> bytes:
    """UTF-8 JSON for `book` as a `lorebook_v3` file or a SillyTavern world-info file."""
    if fmt == "lorebook_v3":
        return card_json_bytes({"spec": SPEC_LOREBOOK_V3, "data": _export_book(_v3_safe(book), SPEC_V3)}, indent=2)
    if fmt == "sillytavern":
        return card_json_bytes(_to_sillytavern(book), indent=2)
    raise RolecraftError(f"unknown lorebook format {fmt!r}; use 'lorebook_v3' or 'sillytavern'", param="fmt")


def _parse_json(data: bytes, source: str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise lorebook_error(source, f"file is not UTF-8 text (bad byte at offset {exc.start})") from None
    if not text.strip():
        raise lorebook_error(source, "file is empty")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise lorebook_error(source, "the lorebook JSON is nested too deeply") from None
    except ValueError as exc:
        raise lorebook_error(source, f"not valid JSON ({exc})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _from_object(obj: Any, source: str) -> Lorebook:
    if not isinstance(obj, dict):
        raise lorebook_error(source, "a lorebook must be a JSON object")
    if "spec" in obj:
        if obj["spec"] != SPEC_LOREBOOK_V3:
            expected = f"expected {SPEC_LOREBOOK_V3!r}; import character cards as characters"
            problem = f"unknown spec {obj['spec']!r} ({expected})"
            raise lorebook_error(source, problem, "spec")
        return _character_book(_Fields(obj.get("data"), "data", source))
    entries = obj.get("entries")
    if isinstance(entries, dict) or (isinstance(entries, list) and _st_shaped(entries)):
        return _from_sillytavern(_Fields(obj, "", source))
    if isinstance(entries, list):
        return _character_book(_Fields(obj, "", source))
    if entries is None:
        problem = "not a lorebook: no 'entries' (expected SillyTavern world info, lorebook_v3 or a character_book)"
        raise lorebook_error(source, problem, "entries")
    problem = f"field 'entries' must be a list or an object, not {type(entries).__name__}"
    raise lorebook_error(source, problem, "entries")


def _st_shaped(entries: list[Any]) -> bool:
    return any(isinstance(e, dict) and "key" in e and "keys" not in e for e in entries)


def _character_book(fields: _Fields) -> Lorebook:
    """A V2/V3 `character_book`, read by the card parser after checking what a standalone file must have."""
    entries = fields.obj.get("entries")
    if not isinstance(entries, list):
        raise fields.fail("entries", "a list of entries")
    for i, entry in enumerate(entries):
        where = f"{fields.where('entries')}[{i}]"
        if not isinstance(entry, dict):
            raise lorebook_error(fields.source, f"entry '{where}' must be a JSON object", where)
        for key in ("keys", "content"):
            if key not in entry:
                raise lorebook_error(fields.source, f"entry '{where}' has no '{key}' field", f"{where}.{key}")
    return _lorebook(fields)


def _from_sillytavern(fields: _Fields) -> Lorebook:
    raw = fields.obj["entries"]
    items = list(raw.items()) if isinstance(raw, dict) else list(enumerate(raw))
    entries = [_st_entry(_Fields(item, f"entries.{key}", fields.source), key) for key, item in items]
    return Lorebook(**book_settings(fields), entries=entries, extra=fields.unknown(_ST_BOOK_FIELDS))


def _st_entry(fields: _Fields, key: str | int) -> LorebookEntry:
    for required in ("key", "content"):
        if required not in fields.obj:
            raise lorebook_error(fields.source, f"entry '{fields.path}' has no '{required}' field", fields.path)
    uid = fields.obj.get("uid", int(key) if isinstance(key, str) and key.isdigit() else key)
    if isinstance(uid, bool) or not isinstance(uid, int | str):
        raise fields.fail("uid", "a number or string")
    extensions = copy.deepcopy(fields.mapping("extensions"))
    extensions.update({ext: copy.deepcopy(fields.obj[st]) for st, ext in _ST_EXTENSIONS.items() if st in fields.obj})
    order, disable, selective = fields.opt_int("order"), fields.opt_bool("disable"), fields.opt_bool("selective")
    return LorebookEntry(
        id=uid,
        keys=fields.strings("key"),
        secondary_keys=fields.strings("keysecondary"),
        content=fields.string("content"),
        comment=fields.opt_string("comment"),
        name=fields.opt_string("name"),
        constant=fields.opt_bool("constant"),
        selective=True if selective is None else selective,
        insertion_order=100 if order is None else order,
        priority=fields.opt_int("priority"),
        enabled=not disable,
        position="before_char" if fields.obj.get("position", 0) in (0, "before_char") else "after_char",
        extensions=extensions,
        extra=fields.unknown(_ST_ENTRY_FIELDS),
    )


def _v3_safe(book: Lorebook) -> Lorebook:
    """`book` without unknown fields (kept from a SillyTavern file) that V3 defines: they would not reload."""
    entries = [
        e.model_copy(update={"extra": {k: v for k, v in e.extra.items() if k not in _V3_ENTRY_FIELDS}})
        for e in book.entries
    ]
    extra = {k: v for k, v in book.extra.items() if k not in _ST_BOOK_FIELDS}
    return book.model_copy(update={"entries": entries, "extra": extra})


def _to_sillytavern(book: Lorebook) -> dict[str, Any]:
    pairs = zip(book.entries, _uids(book), strict=True)
    out: dict[str, Any] = {"entries": {str(uid): _st_entry_out(entry, uid) for entry, uid in pairs}}
    out.update({k: copy.deepcopy(v) for k, v in book.extra.items() if k not in _ST_BOOK_FIELDS})
    out.update({key: getattr(book, key) for key in _BOOK_SETTINGS if getattr(book, key) is not None})
    if book.extensions:
        out["extensions"] = copy.deepcopy(book.extensions)
    return out


def _uids(book: Lorebook) -> list[int]:
    """SillyTavern's numeric uids: an entry's own id when it is a free whole number, else the lowest free one."""
    def wanted(entry: LorebookEntry) -> int | None:
        value = entry.id
        if isinstance(value, str) and value.isdigit() and len(value) < 10:
            value = int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    reserved = {w for w in map(wanted, book.entries) if w is not None}
    taken: set[int] = set()
    uids, free = [], 0
    for entry in book.entries:
        uid = wanted(entry)
        if uid is None or uid in taken:
            while free in taken or free in reserved:
                free += 1
            uid = free
        taken.add(uid)
        uids.append(uid)
    return uids


def _st_entry_out(entry: LorebookEntry, uid: int) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in entry.extra.items() if k not in _ST_ENTRY_FIELDS}
    extensions = copy.deepcopy(entry.extensions)
    keys, secondary = list(entry.keys), list(entry.secondary_keys)
    if bare_keys_are_regex(entry):
        case = next((v for v in (entry.case_sensitive, extensions.get("case_sensitive")) if v is not None), False)
        keys, secondary = [_slashed(k, case) for k in keys], [_slashed(k, case) for k in secondary]
    out.update(uid=uid, key=keys, keysecondary=secondary, comment=entry.comment or "", content=entry.content)
    out.update(constant=bool(entry.constant), selective=bool(entry.selective), order=entry.insertion_order)
    out.update(position=_st_position(entry, extensions.pop("position", None)), disable=not entry.enabled)
    out.update({st: extensions.pop(ext) for st, ext in _ST_EXTENSIONS.items() if ext in extensions})
    if entry.case_sensitive is not None and "caseSensitive" not in out:
        out["caseSensitive"] = entry.case_sensitive
    out.update({key: getattr(entry, key) for key in ("name", "priority") if getattr(entry, key) is not None})
    if extensions:
        out["extensions"] = extensions
    return out


def _st_position(entry: LorebookEntry, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return value
    return 0 if entry.position == "before_char" else 1


def _slashed(key: str, case_sensitive: bool) -> str:
    """A V3 regex key as SillyTavern's `/pattern/flags`."""
    key = key.strip()
    if slashed_regex(key) is not None:
        return key
    pattern = _UNESCAPED_SLASH.sub(lambda _: "\\/", key)
    return f"/{pattern}/{'' if case_sensitive else 'i'}"

"""Character Card V1/V2/V3 dictionaries ↔ `Character`.

Users arrive with cards made by other tools (SillyTavern, RisuAI, chub.ai), so
this module is the one place that knows the card layouts. It validates types
field by field and reports the exact path (`data.character_book.entries[2].keys`)
so a user can fix a broken card, and it keeps everything it does not understand
verbatim so an import → export round trip loses nothing:

* unknown top-level keys (beside `spec`, `spec_version`, `data`) → `Character.card_extra`;
* unknown `data` keys (for V1: unknown keys of the flat dict) → `Character.extra`;
* unknown `data.extensions` keys → `Character.extensions`;
* unknown keys inside our own `extensions.rolecraft` → kept in `Character.extensions["rolecraft"]`;
* unknown lorebook / lorebook-entry keys → their `extra`; unknown asset keys stay on the `Asset`.

Our richer attributes (appearance, background, relationships, speech style,
catchphrases, voice, expressions) travel in `data.extensions.rolecraft`.

V2 export of V3-only fields: `nickname`, `group_only_greetings`, `assets`,
`creation_date` and `modification_date` have no place in a V2 card, so they are
written to `data.extensions.rolecraft.v3_fields` (only those that are set) and
restored from there when a V2 card is read. Keys a V2 card carries in `data`
that only V3 defines are, for a V2 card, unknown keys and are kept verbatim.
An unknown key is dropped only when it collides with a field the exported spec
defines (a V1 card's stray `tags`, a V2 card's stray `assets` exported as V3):
writing it would produce a card that does not load.

Versions: V2 cards must say `spec_version` 2.x and V3 cards 3.x (V3 asks readers
to accept newer minor versions). A `chara` chunk written beside `ccv3` carries the
same content without the spec's optional "backfilled" note in `creator_notes`,
so V2-only readers see the character as written.

Emotion assets (`type: "emotion"`) also show up in `Character.expressions`
(asset name → uri); on export only expressions that differ from the assets are
written to the extension.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from pydantic import ValidationError

from rolecraft.characters.model import EXTENSION_KEY, Asset, Character, Lorebook, LorebookEntry
from rolecraft.errors import RolecraftError

SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
SPEC_V1 = "chara_card_v1"
V3_STASH_KEY = "v3_fields"

_V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
_V2_STR_FIELDS = (
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "creator",
    "character_version",
)
_V2_FIELDS = {"name", *_V2_STR_FIELDS, "alternate_greetings", "tags", "extensions", "character_book"}
_V3_ONLY_FIELDS = {"assets", "nickname", "group_only_greetings", "creation_date", "modification_date"}
_EXT_STR_FIELDS = ("appearance", "background", "speech_style")
_EXT_FIELDS = {*_EXT_STR_FIELDS, "relationships", "catchphrases", "voice", "expressions", "adapter"}
_BOOK_FIELDS = {"name", "description", "scan_depth", "token_budget", "recursive_scanning", "extensions", "entries"}
_ENTRY_BOOLS = ("case_sensitive", "constant", "selective")
_ENTRY_STRS = ("name", "comment", "position")
_ENTRY_FIELDS = {
    "keys", "content", "extensions", "enabled", "insertion_order", "use_regex", "priority", "id",
    "secondary_keys", *_ENTRY_BOOLS, *_ENTRY_STRS,
}  # fmt: skip


def parse_card_json(raw: bytes, source: str) -> Any:
    """Decode UTF-8 (a BOM is allowed) JSON bytes, raising `card_error` for anything that is not JSON."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise card_error(source, f"card is not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise card_error(source, "card JSON is nested too deeply") from None
    except ValueError as exc:
        raise card_error(source, f"card is not valid JSON ({exc})") from None


def card_json_bytes(card: dict, *, indent: int | None = None) -> bytes:
    """UTF-8 JSON for a card; falls back to ASCII escapes for text that UTF-8 cannot hold (lone surrogates)."""
    try:
        return json.dumps(card, ensure_ascii=False, indent=indent).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(card, ensure_ascii=True, indent=indent).encode("ascii")


def card_error(source: str, problem: str, param: str | None = None) -> RolecraftError:
    """The error every card reader raises: names the file (source), the problem and the field path."""
    return RolecraftError(f"{source}: {problem}", code="invalid_card", param=param)


class _Fields:
    """Typed access to one JSON object; wrong types raise `card_error` naming the field path."""

    def __init__(self, obj: Any, path: str, source: str) -> None:
        if not isinstance(obj, dict):
            raise card_error(source, f"'{path or 'card'}' must be a JSON object", path or None)
        self.obj, self.path, self.source = obj, path, source

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, wanted: str) -> RolecraftError:
        got = f"not {type(self.obj[key]).__name__}" if key in self.obj else "but it is missing"
        return card_error(self.source, f"field '{self.where(key)}' must be {wanted}, {got}", self.where(key))

    def string(self, key: str, default: str = "") -> str:
        value = self.obj.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def opt_string(self, key: str) -> str | None:
        return self.string(key) if self.obj.get(key) is not None else None

    def strings(self, key: str) -> list[str]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return list(value)

    def opt_bool(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def opt_int(self, key: str, *, truncate: bool = False) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number")
        if isinstance(value, float) and not (math.isfinite(value) and (truncate or value.is_integer())):
            raise self.fail(key, "a whole number")
        return int(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def text_map(self, key: str) -> dict[str, str]:
        value = self.mapping(key)
        if not all(isinstance(v, str) for v in value.values()):
            raise self.fail(key, "an object of strings")
        return dict(value)

    def objects(self, key: str) -> list[_Fields]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "a list of objects")
        return [_Fields(item, f"{self.where(key)}[{i}]", self.source) for i, item in enumerate(value)]

    def unknown(self, known: set[str] | tuple[str, ...]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.obj.items() if k not in known}


def character_from_card(data: dict, *, source: str = "card") -> Character:
    """Build a Character from a V1, V2 or V3 card dict; raise RolecraftError(code="invalid_card") if it is not one."""
    try:
        return _character_from_card(data, source)
    except RecursionError:
        raise card_error(source, "the card is nested too deeply") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise card_error(source, f"field '{where}': {first['msg']}", where or None) from None


def _character_from_card(data: Any, source: str) -> Character:
    if not isinstance(data, dict):
        raise card_error(source, "a character card must be a JSON object")
    if "spec" not in data:
        return _from_v1(_Fields(data, "", source))
    spec = _check_spec(data, source)
    fields = _Fields(data.get("data"), "data", source)
    values = _common(fields)
    if spec == SPEC_V3:
        values.update(_v3_fields(fields))
        values["extra"] = fields.unknown(_V2_FIELDS | _V3_ONLY_FIELDS)
    else:
        values.update(_v3_stash(values["extensions"], source))
        values["extra"] = fields.unknown(_V2_FIELDS)
    values["card_extra"] = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("spec", "spec_version", "data")}
    _merge_expressions(values)
    return Character(spec=spec, **values)


def _check_spec(data: dict, source: str) -> str:
    spec, version = data.get("spec"), data.get("spec_version")
    majors = {SPEC_V2: 2, SPEC_V3: 3}
    if spec not in majors:
        raise card_error(source, f"unknown spec {spec!r} (expected {SPEC_V2!r} or {SPEC_V3!r})", "spec")
    try:
        number = float(version) if isinstance(version, str | int | float) and not isinstance(version, bool) else None
    except (ValueError, OverflowError):
        number = None
    if number is None or not math.isfinite(number) or int(number) != majors[spec]:
        problem = f"spec_version {version!r} does not match {spec} (expected '{majors[spec]}.0')"
        raise card_error(source, problem, "spec_version")
    return spec


def _name(fields: _Fields) -> str:
    name = fields.string("name")
    if not name.strip():
        raise card_error(fields.source, f"field '{fields.where('name')}' is missing or empty", fields.where("name"))
    return name


def _from_v1(fields: _Fields) -> Character:
    values: dict[str, Any] = {key: fields.string(key) for key in _V1_FIELDS[1:]}
    return Character(spec=SPEC_V1, name=_name(fields), extra=fields.unknown(_V1_FIELDS), **values)


def _common(fields: _Fields) -> dict[str, Any]:
    values: dict[str, Any] = {key: fields.string(key) for key in _V2_STR_FIELDS}
    values["name"] = _name(fields)
    values["alternate_greetings"] = fields.strings("alternate_greetings")
    values["tags"] = fields.strings("tags")
    extensions = fields.mapping("extensions")
    values.update(_our_extension(_Fields(extensions, fields.where("extensions"), fields.source)))
    book = fields.obj.get("character_book")
    if book is not None:
        values["character_book"] = _lorebook(_Fields(book, fields.where("character_book"), fields.source))
    return values


def _our_extension(extensions: _Fields) -> dict[str, Any]:
    """Split `extensions` into ours (typed attributes) and the rest (kept verbatim)."""
    others = extensions.unknown((EXTENSION_KEY,))
    ours = _Fields(extensions.mapping(EXTENSION_KEY), extensions.where(EXTENSION_KEY), extensions.source)
    values: dict[str, Any] = {key: ours.string(key) for key in _EXT_STR_FIELDS}
    values["relationships"] = ours.text_map("relationships")
    values["catchphrases"] = ours.strings("catchphrases")
    values["voice"] = ours.opt_string("voice")
    values["adapter"] = ours.opt_string("adapter")
    values["expressions"] = ours.text_map("expressions")
    residual = ours.unknown(_EXT_FIELDS)
    if residual:
        others[EXTENSION_KEY] = residual
    values["extensions"] = others
    return values


def _v3_fields(fields: _Fields) -> dict[str, Any]:
    return {
        "assets": [_asset(item) for item in fields.objects("assets")],
        "nickname": fields.opt_string("nickname"),
        "group_only_greetings": fields.strings("group_only_greetings"),
        "creation_date": fields.opt_int("creation_date", truncate=True),
        "modification_date": fields.opt_int("modification_date", truncate=True),
    }


def _v3_stash(extensions: dict[str, Any], source: str) -> dict[str, Any]:
    """Restore the V3-only fields a V2 export stashed under extensions.rolecraft.v3_fields."""
    ours = extensions.get(EXTENSION_KEY)
    if not isinstance(ours, dict) or V3_STASH_KEY not in ours:
        return {}
    path = f"data.extensions.{EXTENSION_KEY}.{V3_STASH_KEY}"
    values = _v3_fields(_Fields(ours.pop(V3_STASH_KEY), path, source))
    if not ours:
        del extensions[EXTENSION_KEY]
    return values


def _asset(fields: _Fields) -> Asset:
    for key in ("type", "uri"):
        if not isinstance(fields.obj.get(key), str):
            raise fields.fail(key, "a string")
    known = {"type": fields.string("type"), "uri": fields.string("uri"), "name": fields.string("name")}
    known["ext"] = fields.string("ext")
    return Asset.model_validate({**fields.unknown(("type", "uri", "name", "ext")), **known})


def book_settings(fields: _Fields) -> dict[str, Any]:
    """The book-level fields every lorebook format shares (entries are read by each format)."""
    return {
        "name": fields.opt_string("name"),
        "description": fields.opt_string("description"),
        "scan_depth": fields.opt_int("scan_depth"),
        "token_budget": fields.opt_int("token_budget"),
        "recursive_scanning": fields.opt_bool("recursive_scanning"),
        "extensions": copy.deepcopy(fields.mapping("extensions")),
    }


def _lorebook(fields: _Fields) -> Lorebook:
    return Lorebook(**book_settings(fields), entries=[_entry(item) for item in fields.objects("entries")],
                    extra=fields.unknown(_BOOK_FIELDS))


def _entry(fields: _Fields) -> LorebookEntry:
    entry_id = fields.obj.get("id")
    if entry_id is not None and (isinstance(entry_id, bool) or not isinstance(entry_id, int | str)):
        raise fields.fail("id", "a number or string")
    enabled, order = fields.opt_bool("enabled"), fields.opt_int("insertion_order")
    return LorebookEntry(
        keys=fields.strings("keys"),
        content=fields.string("content"),
        extensions=copy.deepcopy(fields.mapping("extensions")),
        enabled=True if enabled is None else enabled,
        insertion_order=100 if order is None else order,
        use_regex=bool(fields.opt_bool("use_regex")),
        priority=fields.opt_int("priority"),
        id=entry_id,
        secondary_keys=fields.strings("secondary_keys"),
        extra=fields.unknown(_ENTRY_FIELDS),
        **{key: fields.opt_bool(key) for key in _ENTRY_BOOLS},
        **{key: fields.opt_string(key) for key in _ENTRY_STRS},
    )


def _emotions(assets: list[Asset]) -> dict[str, str]:
    return {a.name: a.uri for a in assets if a.type == "emotion" and a.name}


def _merge_expressions(values: dict[str, Any]) -> None:
    values["expressions"] = {**_emotions(values.get("assets", [])), **values["expressions"]}


def card_from_character(c: Character, spec: str = SPEC_V3) -> dict:
    """The card dict (V3 by default, or V2) for a Character; the inverse of `character_from_card`."""
    if spec not in (SPEC_V2, SPEC_V3):
        raise RolecraftError(f"cannot export spec {spec!r}; use {SPEC_V3!r} or {SPEC_V2!r}", param="spec")
    known = _V2_FIELDS | _V3_ONLY_FIELDS if spec == SPEC_V3 else _V2_FIELDS
    data: dict[str, Any] = {k: copy.deepcopy(v) for k, v in c.extra.items() if k not in known}
    data.update({"name": c.name, **{key: getattr(c, key) for key in _V2_STR_FIELDS}})
    data["alternate_greetings"] = list(c.alternate_greetings)
    data["tags"] = list(c.tags)
    v3 = _v3_values(c)
    data["extensions"] = _export_extensions(c, stash=v3 if spec == SPEC_V2 else None)
    if c.character_book is not None:
        data["character_book"] = _export_book(c.character_book, spec)
    if spec == SPEC_V3:
        data.update(v3)
    card = copy.deepcopy(c.card_extra)
    card.update({"spec": spec, "spec_version": "3.0" if spec == SPEC_V3 else "2.0", "data": data})
    return card


def _v3_values(c: Character) -> dict[str, Any]:
    values: dict[str, Any] = {"group_only_greetings": list(c.group_only_greetings)}
    if c.assets:
        values["assets"] = [a.model_dump() for a in c.assets]
    for key in ("nickname", "creation_date", "modification_date"):
        if getattr(c, key) is not None:
            values[key] = getattr(c, key)
    return values


def _export_extensions(c: Character, stash: dict[str, Any] | None) -> dict[str, Any]:
    extensions = copy.deepcopy(c.extensions)
    residual = extensions.get(EXTENSION_KEY)
    ours: dict[str, Any] = dict(residual) if isinstance(residual, dict) else {}
    for key in _EXT_STR_FIELDS:
        if getattr(c, key):
            ours[key] = getattr(c, key)
    if c.relationships:
        ours["relationships"] = dict(c.relationships)
    if c.catchphrases:
        ours["catchphrases"] = list(c.catchphrases)
    if c.voice is not None:
        ours["voice"] = c.voice
    if c.adapter is not None:
        ours["adapter"] = c.adapter
    from_assets = _emotions(c.assets)
    expressions = {k: v for k, v in c.expressions.items() if from_assets.get(k) != v}
    if expressions:
        ours["expressions"] = expressions
    if stash and (len(stash) > 1 or stash["group_only_greetings"]):
        ours[V3_STASH_KEY] = stash
    extensions.pop(EXTENSION_KEY, None)
    if ours:
        extensions[EXTENSION_KEY] = ours
    return extensions


def _export_book(book: Lorebook, spec: str) -> dict[str, Any]:
    out = copy.deepcopy(book.extra)
    for key in ("name", "description", "scan_depth", "token_budget", "recursive_scanning"):
        if getattr(book, key) is not None:
            out[key] = getattr(book, key)
    out["extensions"] = copy.deepcopy(book.extensions)
    out["entries"] = [_export_entry(e, spec) for e in book.entries]
    return out


def _export_entry(entry: LorebookEntry, spec: str) -> dict[str, Any]:
    out = copy.deepcopy(entry.extra)
    out.update(keys=list(entry.keys), content=entry.content, extensions=copy.deepcopy(entry.extensions))
    out.update(enabled=entry.enabled, insertion_order=entry.insertion_order)
    if spec == SPEC_V3 or entry.use_regex:
        out["use_regex"] = entry.use_regex
    optional = ("case_sensitive", "constant", "name", "priority", "id", "comment", "selective", "position")
    out.update({key: getattr(entry, key) for key in optional if getattr(entry, key) is not None})
    if entry.secondary_keys:
        out["secondary_keys"] = list(entry.secondary_keys)
    return out

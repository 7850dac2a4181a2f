"""Card dicts ↔ Character: V1/V2/V3 round trips, unknown-field preservation, validation errors, JSON loading."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rolecraft.characters import (
    Character,
    card_from_character,
    character_from_card,
    dump_character,
    load_character,
    load_character_file,
)
from rolecraft.characters.cards import V3_STASH_KEY
from rolecraft.errors import RolecraftError

V1_CARD = {
    "name": "Mira",
    "description": "A lighthouse keeper.",
    "personality": "patient",
    "scenario": "A storm.",
    "first_mes": "Come in, {{user}}.",
    "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hello.",
    "talkativeness": "0.5",
}


def v2_card() -> dict:
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "top_level_tool_field": {"kept": [1, 2, 3]},
        "data": {
            "name": "Mira",
            "description": "A lighthouse keeper.",
            "personality": "patient",
            "scenario": "A storm.",
            "first_mes": "Come in.",
            "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hello.",
            "creator_notes": "notes",
            "system_prompt": "sys",
            "post_history_instructions": "phi",
            "alternate_greetings": ["Hello again."],
            "tags": ["sea", "calm"],
            "creator": "me",
            "character_version": "2",
            "unknown_data_field": {"x": None},
            "extensions": {
                "talkativeness": 0.5,
                "depth_prompt": {"prompt": "p", "depth": 4},
                "rolecraft": {
                    "appearance": "grey coat",
                    "catchphrases": ["Steady now.", "The light stays lit."],
                    "relationships": {"Tom": "brother"},
                    "future_key": [1],
                },
            },
            "character_book": {
                "name": "Coast",
                "scan_depth": 3,
                "token_budget": 200,
                "recursive_scanning": False,
                "extensions": {"book_ext": True},
                "unknown_book_field": "b",
                "entries": [
                    {
                        "keys": ["lighthouse"],
                        "content": "The lighthouse is old.",
                        "extensions": {"depth": 4},
                        "enabled": True,
                        "insertion_order": 5,
                        "case_sensitive": False,
                        "id": 7,
                        "comment": "c",
                        "selective": True,
                        "secondary_keys": ["storm"],
                        "position": "before_char",
                        "constant": False,
                        "unknown_entry_field": [True],
                    }
                ],
            },
        },
    }


def v3_card() -> dict:
    card = v2_card()
    card["spec"], card["spec_version"] = "chara_card_v3", "3.0"
    data = card["data"]
    data.update(
        nickname="Mi",
        group_only_greetings=["Hello, all."],
        creation_date=1700000000,
        modification_date=1700000500,
        creator_notes_multilingual={"en": "notes"},
        source=["https://example.org/mira"],
        assets=[
            {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"},
            {"type": "emotion", "uri": "embeded://assets/emotion/images/joy.png", "name": "joy", "ext": "png", "x": 1},
        ],
    )
    data["character_book"]["entries"][0]["use_regex"] = True
    return card


def without_spec(c: Character) -> Character:
    return c.model_copy(update={"spec": "any"})


def test_v1_is_read_and_round_trips_through_v3_and_v2():
    c = character_from_card(copy.deepcopy(V1_CARD), source="mira.json")
    assert c.spec == "chara_card_v1"
    assert c.name == "Mira" and c.first_mes == "Come in, {{user}}."
    assert c.extra == {"talkativeness": "0.5"}
    for spec in ("chara_card_v3", "chara_card_v2"):
        again = character_from_card(card_from_character(c, spec))
        assert without_spec(again) == without_spec(c)


@pytest.mark.parametrize("make", [v2_card, v3_card])
def test_round_trip_is_lossless_in_the_same_spec(make):
    card = make()
    c = character_from_card(copy.deepcopy(card))
    exported = card_from_character(c, card["spec"])
    assert character_from_card(exported) == c
    assert card_from_character(character_from_card(exported), card["spec"]) == exported


@pytest.mark.parametrize("make", [v2_card, v3_card])
def test_unknown_fields_survive_verbatim(make):
    card = make()
    c = character_from_card(copy.deepcopy(card))
    out = card_from_character(c, card["spec"])
    assert out["top_level_tool_field"] == {"kept": [1, 2, 3]}
    assert out["data"]["unknown_data_field"] == {"x": None}
    assert out["data"]["extensions"]["talkativeness"] == 0.5
    assert out["data"]["extensions"]["depth_prompt"] == {"prompt": "p", "depth": 4}
    assert out["data"]["extensions"]["rolecraft"]["future_key"] == [1]
    book = out["data"]["character_book"]
    assert book["unknown_book_field"] == "b" and book["extensions"] == {"book_ext": True}
    assert book["entries"][0]["unknown_entry_field"] == [True]
    assert book["entries"][0]["extensions"] == {"depth": 4}


def test_v3_fields_and_rich_attributes_are_read():
    c = character_from_card(v3_card())
    assert c.spec == "chara_card_v3"
    assert c.nickname == "Mi" and c.group_only_greetings == ["Hello, all."]
    assert (c.creation_date, c.modification_date) == (1700000000, 1700000500)
    assert c.assets[1].model_extra == {"x": 1}
    assert c.expressions == {"joy": "embeded://assets/emotion/images/joy.png"}
    assert c.appearance == "grey coat" and c.catchphrases == ["Steady now.", "The light stays lit."]
    assert c.relationships == {"Tom": "brother"}
    assert c.extensions["rolecraft"] == {"future_key": [1]}
    assert c.character_book.entries[0].use_regex is True
    assert c.extra["source"] == ["https://example.org/mira"]


def test_v3_only_fields_survive_a_v2_export():
    c = character_from_card(v3_card())
    v2 = card_from_character(c, "chara_card_v2")
    assert v2["spec"] == "chara_card_v2" and v2["spec_version"] == "2.0"
    assert "nickname" not in v2["data"] and "assets" not in v2["data"]
    stash = v2["data"]["extensions"]["rolecraft"][V3_STASH_KEY]
    assert stash["nickname"] == "Mi" and stash["creation_date"] == 1700000000
    back = character_from_card(json.loads(json.dumps(v2)))
    assert back.spec == "chara_card_v2"
    assert without_spec(back) == without_spec(c)
    assert card_from_character(back, "chara_card_v3") == card_from_character(c, "chara_card_v3")


def test_expressions_that_differ_from_assets_go_to_the_extension():
    c = character_from_card(v3_card())
    c.expressions["anger"] = "https://example.org/anger.png"
    out = card_from_character(c)
    assert out["data"]["extensions"]["rolecraft"]["expressions"] == {"anger": "https://example.org/anger.png"}
    assert character_from_card(out).expressions == c.expressions


def test_newer_v3_minor_version_is_accepted():
    card = v3_card()
    card["spec_version"] = "3.1"
    assert character_from_card(card).name == "Mira"


def _with(path: str, value: object) -> dict:
    card = v3_card()
    *parents, last = path.split(".")
    node = card
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return card


_DELETE = object()
BAD_CARDS = [
    ("spec", "chara_card_v9", "spec"),
    ("spec_version", "2.0", "spec_version"),
    ("spec_version", None, "spec_version"),
    ("spec_version", "three", "spec_version"),
    ("data", ["not", "an", "object"], "data"),
    ("data.name", _DELETE, "data.name"),
    ("data.name", "   ", "data.name"),
    ("data.name", 42, "data.name"),
    ("data.description", ["x"], "data.description"),
    ("data.tags", "sea", "data.tags"),
    ("data.tags", ["sea", 3], "data.tags"),
    ("data.alternate_greetings", {"a": 1}, "data.alternate_greetings"),
    ("data.extensions", [], "data.extensions"),
    ("data.extensions.rolecraft", "x", "data.extensions.rolecraft"),
    ("data.extensions.rolecraft.catchphrases", "Steady.", "data.extensions.rolecraft.catchphrases"),
    ("data.extensions.rolecraft.relationships", {"Tom": 1}, "data.extensions.rolecraft.relationships"),
    ("data.creation_date", "yesterday", "data.creation_date"),
    ("data.assets", {}, "data.assets"),
    ("data.assets.1.uri", None, "data.assets[1].uri"),
    ("data.character_book", "book", "data.character_book"),
    ("data.character_book.entries", {}, "data.character_book.entries"),
    ("data.character_book.scan_depth", "3", "data.character_book.scan_depth"),
    ("data.character_book.entries.0.keys", "lighthouse", "data.character_book.entries[0].keys"),
    ("data.character_book.entries.0.enabled", "yes", "data.character_book.entries[0].enabled"),
    ("data.character_book.entries.0.insertion_order", True, "data.character_book.entries[0].insertion_order"),
    ("data.character_book.entries.0.insertion_order", 1.5, "data.character_book.entries[0].insertion_order"),
    ("data.character_book.entries.0.id", [1], "data.character_book.entries[0].id"),
]


@pytest.mark.parametrize(("path", "value", "param"), BAD_CARDS)
def test_bad_cards_name_the_file_and_the_field(path, value, param):
    with pytest.raises(RolecraftError) as info:
        character_from_card(_with(path, value), source="mira.json")
    assert info.value.code == "invalid_card"
    assert info.value.param == param
    assert "mira.json" in info.value.message
    assert param.split(".")[-1].split("[")[0] in info.value.message


@pytest.mark.parametrize("card", [[], "text", 3, None, {}, {"description": "no name"}])
def test_non_cards_are_rejected(card):
    with pytest.raises(RolecraftError) as info:
        character_from_card(card, source="x.json")
    assert info.value.code == "invalid_card" and "x.json" in info.value.message


def test_unknown_export_spec_is_an_error():
    with pytest.raises(RolecraftError):
        card_from_character(Character(name="A"), "chara_card_v1")


def test_json_files_load_with_and_without_bom():
    raw = json.dumps(v3_card()).encode("utf-8")
    assert load_character(raw, "a.json") == load_character(b"\xef\xbb\xbf" + raw, "a.json")
    c = load_character(raw, "a.json")
    assert load_character(dump_character(c, "json"), "b.json") == c


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"GIF89a....", "not a character card"),
        (b"{not json", "not valid JSON"),
        (b'{"name": "\xff\xfe"}', "not UTF-8"),
        (b"[1, 2]", "not a character card"),
        (b'{"spec": "chara_card_v3", "spec_version": "2.0", "data": {"name": "A"}}', "spec_version"),
        (b'{"description": "nameless"}', "name"),
        (b'{"a": ' + b"[" * 100000, "nested too deeply"),
    ],
)
def test_bad_json_files_raise_invalid_card(data, problem):
    with pytest.raises(RolecraftError) as info:
        load_character(data, "bad.json")
    assert info.value.code == "invalid_card"
    assert "bad.json" in info.value.message and problem in info.value.message


def test_too_large_bytes_are_refused():
    with pytest.raises(RolecraftError, match="too large"):
        load_character(b"{" + b" " * 2000 + b"}", "big.json", max_bytes=1000)


def test_non_bytes_input_is_refused():
    with pytest.raises(RolecraftError, match="expected the file's bytes"):
        load_character("a string", "x.json")  # type: ignore[arg-type]


def test_a_50_mb_file_is_refused_without_reading_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "huge.json"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", no_open)
    monkeypatch.setattr(Path, "read_bytes", no_open)
    with pytest.raises(RolecraftError) as info:
        load_character_file(path)
    assert info.value.code == "invalid_card"
    assert "huge.json" in info.value.message and "too large" in info.value.message


def test_missing_file_is_an_invalid_card_error(tmp_path: Path):
    with pytest.raises(RolecraftError) as info:
        load_character_file(tmp_path / "nope.png")
    assert info.value.code == "invalid_card" and "nope.png" in info.value.message


def test_load_character_file_reads_a_card(tmp_path: Path):
    path = tmp_path / "mira.json"
    path.write_bytes(json.dumps(v2_card()).encode())
    assert load_character_file(path).name == "Mira"


def test_unknown_dump_format_is_an_error():
    with pytest.raises(RolecraftError, match="unknown card format"):
        dump_character(Character(name="A"), "yaml")  # type: ignore[arg-type]

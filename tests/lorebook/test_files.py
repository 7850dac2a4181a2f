"""Standalone lorebook files: SillyTavern world info, lorebook_v3 and bare character_book; round trips, bad files."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolecraft.characters.model import Lorebook, LorebookEntry
from rolecraft.errors import RolecraftError
from rolecraft.lorebook import (
    MAX_BYTES,
    check_lorebook,
    dump_lorebook,
    load_lorebook,
    load_lorebook_file,
    scan,
)


def st_entry(uid: int, **fields: Any) -> dict[str, Any]:
    """A SillyTavern world-info entry with every field its editor writes, plus fields we do not know."""
    entry = {
        "uid": uid, "key": ["Eldoria", "/eld(or|ra)ia/i"], "keysecondary": ["kingdom"], "comment": "Eldoria",
        "content": "Eldoria is a kingdom of rivers.", "constant": False, "vectorized": False, "selective": True,
        "selectiveLogic": 0, "addMemo": True, "order": 100, "position": 0, "disable": False, "ignoreBudget": False,
        "excludeRecursion": False, "preventRecursion": False, "matchPersonaDescription": False,
        "matchCharacterDescription": False, "matchCharacterPersonality": False, "matchCharacterDepthPrompt": False,
        "matchScenario": False, "matchCreatorNotes": False, "delayUntilRecursion": 0, "probability": 100,
        "useProbability": True, "depth": 4, "outletName": "", "group": "", "groupOverride": False, "groupWeight": 100,
        "scanDepth": None, "caseSensitive": None, "matchWholeWords": None, "useGroupScoring": None,
        "automationId": "", "role": 0, "sticky": None, "cooldown": None, "delay": None, "triggers": [],
        "displayIndex": uid, "characterFilter": {"isExclude": False, "names": [], "tags": []},
        "someFutureField": {"kept": [1, 2]},
    }  # fmt: skip
    entry.update(fields)
    return entry


ST_FILE = {
    "entries": {
        "0": st_entry(0),
        "1": st_entry(1, key=["Mira"], keysecondary=["sword", "river"], selectiveLogic=3, order=50, position=4,
                      depth=2, role=1, caseSensitive=True, excludeRecursion=True, probability=80, comment="Mira"),
        "5": st_entry(5, key=[], content="The sky is green.", constant=True, position=1, displayIndex=2),
        "7": st_entry(7, key=["ghost"], content="Disabled lore.", disable=True),
    },
    "originalData": {"entries": [], "name": "stale copy"},
    "futureBookField": "kept",
}  # fmt: skip

V3_FILE = {
    "spec": "lorebook_v3",
    "data": {
        "name": "Atlas",
        "description": "places",
        "scan_depth": 6,
        "token_budget": 300,
        "recursive_scanning": True,
        "extensions": {"tool": {"v": 1}},
        "unknown_book_field": [1],
        "entries": [
            {"keys": ["harbor"], "content": "The harbor never sleeps.", "extensions": {"depth": 1, "position": 4},
             "enabled": True, "insertion_order": 10, "use_regex": False, "constant": False, "id": "harbor-1",
             "name": "Harbor", "priority": 5, "comment": "c", "selective": True, "secondary_keys": ["ship"],
             "position": "before_char", "case_sensitive": False, "x_unknown": {"deep": True}},
            {"keys": ["sil(ver|ber)"], "content": "Silver lore.", "extensions": {}, "enabled": True,
             "insertion_order": 20, "use_regex": True},
        ],
    },
}  # fmt: skip


def as_bytes(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def words(text: str) -> int:
    return len(text.split())


# --- SillyTavern world info -------------------------------------------------------------------------


def test_sillytavern_fields_map_like_sillytavern_card_export() -> None:
    book = load_lorebook(as_bytes(ST_FILE), "Eldoria World.json")
    assert book.name == "Eldoria World"
    assert [e.id for e in book.entries] == [0, 1, 5, 7]
    mira = book.entries[1]
    assert (mira.keys, mira.secondary_keys) == (["Mira"], ["sword", "river"])
    assert (mira.insertion_order, mira.enabled) == (50, True)
    assert (mira.comment, mira.selective, mira.constant, mira.position) == ("Mira", True, False, "after_char")
    ext = mira.extensions
    assert (ext["position"], ext["depth"], ext["role"], ext["selectiveLogic"]) == (4, 2, 1, 3)
    assert (ext["case_sensitive"], ext["exclude_recursion"], ext["probability"]) == (True, True, 80)
    assert ext["display_index"] == 1 and ext["match_whole_words"] is None
    assert mira.extra == {"addMemo": True, "characterFilter": {"isExclude": False, "names": [], "tags": []},
                          "someFutureField": {"kept": [1, 2]}}  # fmt: skip
    assert book.entries[0].position == "before_char"
    assert book.entries[3].enabled is False
    assert book.extra == {"futureBookField": "kept"}  # originalData is dropped


def test_sillytavern_book_scans_with_its_settings() -> None:
    book = load_lorebook(as_bytes(ST_FILE), "world.json")
    history = ["We sailed to the kingdom of ELDRAIA.", "Mira drew her sword by the river."]
    result = scan([book], history, count_tokens=words, rng=random.Random(1))  # Mira's 80% roll: 13.4 passes
    by_source = {a.source: a for a in result.activations}
    assert set(by_source) == {"world#0", "world#1", "world#5"}
    mira = by_source["world#1"]
    assert (mira.position, mira.depth, mira.role) == ("at_depth", 2, "user")
    assert by_source["world#0"].position == "before_char" and by_source["world#5"].position == "after_char"
    assert [a.source for a in result.activations] == ["world#1", "world#0", "world#5"]  # order 50, then 100 (uid)


def test_sillytavern_round_trip_is_exact() -> None:
    original = copy.deepcopy(ST_FILE)
    original.pop("originalData")
    again = json.loads(dump_lorebook(load_lorebook(as_bytes(ST_FILE), "w.json"), "sillytavern"))
    assert again == original


def test_sillytavern_entries_as_a_list_and_sparse_entries() -> None:
    entries = [{"key": ["a"], "content": "A"}, {"key": ["b"], "content": "B"}]
    book = load_lorebook(as_bytes({"entries": entries}), "l.json")
    assert [(e.id, e.keys, e.selective, e.position, e.insertion_order) for e in book.entries] == [
        (0, ["a"], True, "before_char", 100), (1, ["b"], True, "before_char", 100)]  # fmt: skip


# --- lorebook_v3 and bare character_book ----------------------------------------------------------------


def test_lorebook_v3_round_trip_keeps_unknown_fields() -> None:
    book = load_lorebook(as_bytes(V3_FILE), "atlas.json")
    assert book.name == "Atlas" and book.scan_depth == 6 and book.token_budget == 300
    assert book.extra == {"unknown_book_field": [1]}
    assert book.entries[0].extra == {"x_unknown": {"deep": True}}
    dumped = json.loads(dump_lorebook(book, "lorebook_v3"))
    assert dumped["spec"] == "lorebook_v3"
    assert dumped["data"]["unknown_book_field"] == [1] and dumped["data"]["entries"][0]["x_unknown"] == {"deep": True}
    assert load_lorebook(json.dumps(dumped).encode(), "again.json") == book


def test_bare_character_book() -> None:
    bare = as_bytes(V3_FILE["data"])
    assert load_lorebook(bare, "bare.json") == load_lorebook(as_bytes(V3_FILE), "x.json")


def test_sillytavern_to_v3_and_back_keeps_everything() -> None:
    book = load_lorebook(as_bytes(ST_FILE), "world.json")
    via_v3 = load_lorebook(dump_lorebook(book, "lorebook_v3"), "world.json")
    assert json.loads(dump_lorebook(via_v3, "sillytavern")) == json.loads(dump_lorebook(book, "sillytavern"))


def test_v3_to_sillytavern_writes_regex_keys_sillytavern_understands() -> None:
    book = load_lorebook(as_bytes(V3_FILE), "atlas.json")
    st_file = json.loads(dump_lorebook(book, "sillytavern"))
    silver = next(e for e in st_file["entries"].values() if e["content"] == "Silver lore.")
    assert silver["key"] == ["/sil(ver|ber)/i"]
    harbor = next(e for e in st_file["entries"].values() if e["content"].startswith("The harbor"))
    assert (harbor["position"], harbor["depth"], harbor["name"], harbor["priority"]) == (4, 1, "Harbor", 5)
    assert (harbor["order"], harbor["caseSensitive"]) == (10, False)
    assert sorted(st_file["entries"]) == ["0", "1"]  # non-numeric ids get free numeric uids
    reloaded = load_lorebook(json.dumps(st_file).encode(), "atlas.json")
    hits = scan([reloaded], ["the SILBER coin"], count_tokens=words).activations
    assert [a.content for a in hits] == ["Silver lore."]


def test_stray_fields_that_collide_with_the_other_format_are_not_written() -> None:
    entry = LorebookEntry(keys=["a"], content="c", extra={"name": 5, "order": "x", "enabled": "y", "keys": 1})
    book = Lorebook(entries=[entry], extra={"entries": 1, "scan_depth": "deep", "kept": True})
    for fmt in ("sillytavern", "lorebook_v3"):
        again = load_lorebook(dump_lorebook(book, fmt), "x.json")  # type: ignore[arg-type]
        assert again.entries[0].keys == ["a"] and again.extra == {"kept": True}


def test_uids_keep_numeric_ids_and_fill_gaps() -> None:
    book = Lorebook(entries=[LorebookEntry(id=1), LorebookEntry(id="x"), LorebookEntry(id=1), LorebookEntry(id="3")])
    assert list(json.loads(dump_lorebook(book, "sillytavern"))["entries"]) == ["1", "0", "2", "3"]


def test_invalid_regex_loads_and_is_reported() -> None:
    data = as_bytes({"entries": {"4": st_entry(4, key=["/[broken/", "ok"])}})
    book = load_lorebook(data, "w.json")
    (warning,) = check_lorebook(book)
    assert "w#4" in warning and "[broken" in warning


def test_lone_surrogates_load_scan_and_dump() -> None:
    book = load_lorebook(b'{"entries": [{"keys": ["a\\ud800"], "content": "odd \\udfff text"}]}', "s.json")
    assert [a.content for a in scan([book], ["a\ud800"], count_tokens=words).activations] == ["odd \udfff text"]
    for fmt in ("sillytavern", "lorebook_v3"):
        (again,) = load_lorebook(dump_lorebook(book, fmt), "s.json").entries  # type: ignore[arg-type]
        assert (again.keys, again.content) == (["a\ud800"], "odd \udfff text")


def test_unknown_format_for_dump() -> None:
    with pytest.raises(RolecraftError):
        dump_lorebook(Lorebook(), "risu")  # type: ignore[arg-type]


# --- bad files ------------------------------------------------------------------------------------------

BAD_FILES = [
    (b"", "empty"),
    (b"\xff\xfe{", "UTF-8"),
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"description": "no entries"}', "no 'entries'"),
    (b'{"spec": "chara_card_v2", "data": {}}', "unknown spec"),
    (b'{"spec": "lorebook_v3", "data": []}', "'data' must be a JSON object"),
    (b'{"entries": 5}', "'entries' must be a list or an object"),
    (b'{"entries": {"0": "text"}}', "'entries.0' must be a JSON object"),
    (b'{"entries": {"3": {"key": ["a"]}}}', "entry 'entries.3' has no 'content'"),
    (b'{"entries": {"3": {"key": "a", "content": "c"}}}', "'entries.3.key' must be a list of strings"),
    (b'{"entries": {"0": {"key": ["a"], "content": "c", "order": "high"}}}', "'entries.0.order' must be a number"),
    (b'{"entries": {"0": {"key": ["a"], "content": "c", "uid": true}}}', "'entries.0.uid'"),
    (b'{"entries": [{"keys": ["a"]}]}', "entry 'entries[0]' has no 'content'"),
    (b'{"entries": [{"content": "c"}]}', "entry 'entries[0]' has no 'keys'"),
    (b'{"entries": [3]}', "entry 'entries[0]' must be a JSON object"),
    (b'{"entries": [{"keys": [1], "content": "c"}]}', "'entries[0].keys' must be a list of strings"),
    (b'{"spec": "lorebook_v3", "data": {"entries": [{"keys": [], "content": 5}]}}', "'data.entries[0].content'"),
    (b'{"spec": "lorebook_v3", "data": {"entries": {}}}', "'data.entries' must be a list"),
    (b'{"entries": [{"keys": ["a"], "content": "c", "insertion_order": NaN}]}', "NaN"),
    (b"[" * 100_000, "nested too deeply"),
]


@pytest.mark.parametrize(("data", "problem"), BAD_FILES, ids=[p for _, p in BAD_FILES])
def test_bad_files_name_file_and_entry(data: bytes, problem: str) -> None:
    with pytest.raises(RolecraftError) as info:
        load_lorebook(data, "bad.json")
    assert info.value.code == "invalid_lorebook"
    assert info.value.message.startswith("bad.json: ")
    assert problem in info.value.message


def test_files_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RolecraftError, match="too large") as info:
        load_lorebook(b" " * (MAX_BYTES + 1), "big.json")
    assert info.value.code == "invalid_lorebook"
    path = tmp_path / "big.json"
    path.write_bytes(as_bytes(ST_FILE))
    with pytest.raises(RolecraftError, match="too large"):
        load_lorebook_file(path, max_bytes=100)


def test_load_lorebook_file(tmp_path: Path) -> None:
    path = tmp_path / "My World.json"
    path.write_bytes(as_bytes(ST_FILE))
    assert load_lorebook_file(path).name == "My World"
    with pytest.raises(RolecraftError, match="cannot read") as info:
        load_lorebook_file(tmp_path / "missing.json")
    assert info.value.code == "invalid_lorebook"


def test_huge_entries_load_and_are_skipped_by_a_budget() -> None:
    huge = {"entries": {"0": st_entry(0, key=["x"], keysecondary=[], content="word " * 200_000)}}
    book = load_lorebook(as_bytes(huge), "huge.json")
    result = scan([book], ["x"], count_tokens=words, token_budget=1000)
    assert result.activations == () and "more than the whole budget" in result.warnings[0]


# --- fuzzing: whatever the bytes, only RolecraftError(invalid_lorebook) escapes ---------------------------

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
texts = st.text(st.characters(categories=["L", "N", "P", "S", "Zs", "Cc", "Cs"]), max_size=8)  # Cs: lone surrogates
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
ST_KEYS = ["uid", "key", "keysecondary", "content", "order", "position", "disable", "selectiveLogic", "depth", "role",
           "probability", "scanDepth", "caseSensitive", "matchWholeWords", "group", "name", "priority", "extensions",
           "delayUntilRecursion", "use_regex", "keys", "enabled", "case_sensitive"]  # fmt: skip
V3_KEYS = ["keys", "secondary_keys", "content", "insertion_order", "enabled", "use_regex", "id", "position",
           "extensions", "priority", "case_sensitive", "selective", "constant", "name", "key", "order"]  # fmt: skip


def try_load(data: bytes) -> Lorebook | None:
    try:
        book = load_lorebook(data, "fuzz.json")
    except RolecraftError as exc:
        assert exc.code == "invalid_lorebook" and exc.message.startswith("fuzz.json: ")
        return None
    scan([book], ["Eldoria kingdom harbor", "x"], count_tokens=words, rng=random.Random(0), token_budget=50,
         recursive=True)  # fmt: skip
    for fmt in ("sillytavern", "lorebook_v3"):
        load_lorebook(dump_lorebook(book, fmt), "fuzz.json")  # type: ignore[arg-type]
    return book


@FUZZ
@given(st.binary(max_size=256), st.sampled_from([b"", b"{", b'{"entries":', b'{"spec":"lorebook_v3","data":']))
def test_fuzz_random_bytes(data: bytes, prefix: bytes) -> None:
    try_load(prefix + data)


@FUZZ
@given(st.sampled_from([as_bytes(ST_FILE), as_bytes(V3_FILE)]), st.data())
def test_fuzz_mutated_files(base: bytes, data: st.DataObject) -> None:
    raw = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    try_load(bytes(raw[: data.draw(st.integers(0, len(raw)))] if data.draw(st.booleans()) else raw))


@st.composite
def lorebookish(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        entries = {str(i): {k: draw(json_values) for k in draw(st.lists(st.sampled_from(ST_KEYS), max_size=6))}
                   for i in range(draw(st.integers(0, 3)))}  # fmt: skip
        for item in entries.values():
            item.setdefault("key", draw(st.lists(texts, max_size=3)))
            item.setdefault("content", draw(texts))
        return {"entries": entries, draw(st.sampled_from(["name", "scan_depth", "x"])): draw(json_values)}
    items = [{k: draw(json_values) for k in draw(st.lists(st.sampled_from(V3_KEYS), max_size=6))}
             for _ in range(draw(st.integers(0, 3)))]  # fmt: skip
    for item in items:
        item.setdefault("keys", draw(st.lists(texts, max_size=3)))
        item.setdefault("content", draw(texts))
    book = {"entries": items, draw(st.sampled_from(["token_budget", "recursive_scanning", "y"])): draw(json_values)}
    return {"spec": "lorebook_v3", "data": book} if draw(st.booleans()) else book


@FUZZ
@given(st.one_of(lorebookish(), json_values))
def test_fuzz_json_shapes(obj: Any) -> None:
    try_load(json.dumps(obj).encode())

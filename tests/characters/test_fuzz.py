"""Fuzzing `load_character`: whatever the bytes, only RolecraftError may escape, and what loads round-trips."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolecraft.characters import Character, character_from_card, dump_character, load_character
from rolecraft.characters.png import PNG_SIGNATURE, Chunk, read_chunks
from rolecraft.errors import RolecraftError

FUZZ = settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

VALID_CARD = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        "name": "Fuzz",
        "description": "d",
        "tags": ["a"],
        "extensions": {"rolecraft": {"catchphrases": ["x"]}, "other": 1},
        "character_book": {"entries": [{"keys": ["k"], "content": "c", "insertion_order": 1}]},
        "assets": [{"type": "emotion", "uri": "embeded://assets/e.png", "name": "joy", "ext": "png"}],
    },
}
VALID_PNG = dump_character(character_from_card(VALID_CARD), "png")
VALID_CHARX = dump_character(character_from_card(VALID_CARD).model_copy(update={"avatar": b"\x89PNG"}), "charx")


def try_load(data: bytes) -> Character | None:
    try:
        return load_character(data, "fuzz.bin")
    except RolecraftError as exc:
        assert exc.code == "invalid_card"
        assert "fuzz.bin" in exc.message
        return None


@FUZZ
@given(st.binary(max_size=512), st.sampled_from([b"", PNG_SIGNATURE, b"PK\x03\x04", b"{", b"\xef\xbb\xbf{"]))
def test_random_bytes(data: bytes, prefix: bytes) -> None:
    try_load(prefix + data)


def mutate(base: bytes):
    flips = st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(1, 255)), min_size=1, max_size=6)
    return st.tuples(flips, st.integers(0, len(base)), st.booleans())


def apply(base: bytes, flips: list[tuple[int, int]], cut: int, truncate: bool) -> bytes:
    data = bytearray(base)
    for pos, mask in flips:
        data[pos] ^= mask
    return bytes(data[:cut] if truncate else data)


@FUZZ
@given(mutate(VALID_PNG))
def test_mutated_png_cards(mutation) -> None:
    try_load(apply(VALID_PNG, *mutation))


@FUZZ
@given(mutate(VALID_CHARX))
def test_mutated_charx_cards(mutation) -> None:
    try_load(apply(VALID_CHARX, *mutation))


VALID_JSON = json.dumps(VALID_CARD).encode()


@FUZZ
@given(mutate(VALID_JSON), st.booleans())
def test_mutated_card_chunk_with_valid_crcs(mutation, encode: bool) -> None:
    text = apply(VALID_JSON, *mutation)
    payload = base64.b64encode(text) if encode else text
    chunk = Chunk(b"tEXt", b"ccv3\0" + payload)
    chunks = read_chunks(VALID_PNG, "valid")
    try_load(PNG_SIGNATURE + b"".join(c.raw() for c in [*chunks[:-1], chunk, chunks[-1]]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["name", "description", "tags", "alternate_greetings", "extensions", "character_book", "assets", "nickname",
          "creation_date", "group_only_greetings", "first_mes", "unknown"]  # fmt: skip


@st.composite
def cardish(draw) -> dict:
    card = json.loads(json.dumps(VALID_CARD))
    card["spec"] = draw(st.sampled_from(["chara_card_v2", "chara_card_v3", "chara_card_v1", None]))
    card["spec_version"] = draw(st.sampled_from(["2.0", "3.0", "3.5", 3, "x", None]))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        card["data"][field] = draw(json_values)
    if draw(st.booleans()):
        card["data"]["extensions"] = {"rolecraft": draw(json_values)}
    if draw(st.booleans()):
        card = card["data"]
    return card


def check_round_trip(c: Character) -> None:
    spec = c.spec if c.spec != "chara_card_v1" else "chara_card_v3"
    again = load_character(dump_character(c, "json", spec=spec), "fuzz.json")
    if c.spec != "chara_card_v1":
        assert again == c


@FUZZ
@given(st.one_of(cardish(), st.dictionaries(st.text(max_size=8), json_values, max_size=6)))
def test_json_ish_cards(card: dict) -> None:
    c = try_load(json.dumps(card).encode())
    if c is not None:
        check_round_trip(c)

"""PNG cards: chunk reading/writing, ccv3 preference, avatars and every kind of damaged file."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
from PIL import Image

from rolecraft.characters import Character, character_from_card, dump_character, load_character
from rolecraft.characters.png import PNG_SIGNATURE, Chunk, read_chunks, write_card_png
from rolecraft.errors import RolecraftError


def with_chunks(png: bytes, extra: list[Chunk]) -> bytes:
    """`png` with `extra` chunks inserted before IEND."""
    chunks = read_chunks(png, "t")
    return PNG_SIGNATURE + b"".join(c.raw() for c in [*chunks[:-1], *extra, chunks[-1]])


def plain_png(text_chunks: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, "PNG")
    extra = [Chunk(b"tEXt", k.encode() + b"\0" + v.encode("latin-1")) for k, v in (text_chunks or {}).items()]
    return with_chunks(out.getvalue(), extra)


def v3(data: dict, version: str = "3.0") -> dict:
    return {"spec": "chara_card_v3", "spec_version": version, "data": data}


def b64(card: object) -> str:
    return base64.b64encode(json.dumps(card).encode()).decode()


def rich_character() -> Character:
    card = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "x_tool": 1,
        "data": {
            "name": "Kai",
            "nickname": "K",
            "first_mes": "Yo, {{user}}.",
            "group_only_greetings": ["Yo, all."],
            "creation_date": 1,
            "extensions": {"other_app": {"a": [1]}, "rolecraft": {"catchphrases": ["Sure thing.", "Nope."]}},
            "character_book": {"entries": [{"keys": ["k"], "content": "c", "use_regex": True, "mystery": 2}]},
            "unknown": "kept",
        },
    }
    return character_from_card(card)


def chunk_keywords(png: bytes) -> list[str | None]:
    return [c.keyword() for c in read_chunks(png, "t")]


def test_v3_png_round_trip_is_lossless():
    c = rich_character()
    c.avatar = plain_png()
    png = dump_character(c, "png")
    assert png.startswith(PNG_SIGNATURE)
    back = load_character(png, "kai.png")
    assert back == c
    assert load_character(dump_character(back, "png"), "kai.png") == back


def test_both_chunks_are_written_and_chara_is_v2():
    png = dump_character(rich_character(), "png")
    found = {c.keyword(): c for c in read_chunks(png, "t") if c.keyword()}
    assert set(found) == {"chara", "ccv3"}
    assert all(found[k].type == b"tEXt" for k in found)
    v2 = json.loads(base64.b64decode(found["chara"].data.split(b"\0", 1)[1]))
    assert v2["spec"] == "chara_card_v2"
    assert v2["data"]["extensions"]["rolecraft"]["v3_fields"]["nickname"] == "K"
    assert v2["data"]["unknown"] == "kept" and v2["x_tool"] == 1


def test_v2_only_png_export_reads_back():
    c = rich_character()
    png = dump_character(c, "png", spec="chara_card_v2")
    assert "ccv3" not in chunk_keywords(png) and "chara" in chunk_keywords(png)
    back = load_character(png, "kai.png")
    assert back.spec == "chara_card_v2"
    assert back.model_copy(update={"spec": c.spec, "avatar": None}) == c


def test_reader_prefers_ccv3_over_chara():
    v2 = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Old"}}
    new = v3({"name": "New"})
    assert load_character(plain_png({"chara": b64(v2), "ccv3": b64(new)}), "a.png").name == "New"
    assert load_character(plain_png({"ccv3": b64(new), "chara": b64(v2)}), "a.png").name == "New"
    assert load_character(plain_png({"chara": b64(v2)}), "a.png").name == "Old"


def test_stale_card_chunks_are_replaced_and_other_chunks_kept():
    stale = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Stale"}}
    image = plain_png({"chara": b64(stale), "ccv3": b64(stale), "Software": "paint"})
    loaded = load_character(image, "a.png")
    assert "chara" not in chunk_keywords(loaded.avatar) and "Software" in chunk_keywords(loaded.avatar)
    fresh = write_card_png(image, {"ccv3": v3({"name": "Fresh"})})
    assert chunk_keywords(fresh).count("ccv3") == 1 and "chara" not in chunk_keywords(fresh)
    assert load_character(fresh, "a.png").name == "Fresh"


def test_png_without_avatar_gets_a_placeholder():
    png = dump_character(Character(name="Nobody"), "png")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (256, 256)
    assert load_character(png, "n.png").name == "Nobody"


def test_non_png_avatar_is_converted_and_garbage_avatar_is_an_error():
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(jpeg, "JPEG")
    c = Character(name="J", avatar=jpeg.getvalue())
    assert load_character(dump_character(c, "png"), "j.png").avatar.startswith(PNG_SIGNATURE)
    with pytest.raises(RolecraftError) as info:
        dump_character(Character(name="J", avatar=b"not an image"), "png")
    assert info.value.code == "invalid_avatar"


def _compressed_chunk(kind: bytes, keyword: str, text: str) -> Chunk:
    if kind == b"zTXt":
        return Chunk(kind, keyword.encode() + b"\0\0" + zlib.compress(text.encode()))
    return Chunk(kind, keyword.encode() + b"\0\x01\x00en\0\0" + zlib.compress(text.encode()))


@pytest.mark.parametrize("kind", [b"zTXt", b"iTXt"])
def test_compressed_text_chunks_are_read(kind):
    png = with_chunks(plain_png(), [_compressed_chunk(kind, "ccv3", b64(v3({"name": "Zed"})))])
    assert load_character(png, "z.png").name == "Zed"


def _card_png() -> bytes:
    return dump_character(Character(name="Valid"), "png")


def _bad_crc() -> bytes:
    png = bytearray(_card_png())
    png[-1] ^= 0xFF  # the last byte of the file is part of IEND's CRC
    return bytes(png)


def _text_png(text: str) -> bytes:
    return plain_png({"ccv3": text})


BAD_PNGS = {
    "truncated header": lambda: _card_png()[:20],
    "truncated middle": lambda: _card_png()[: len(_card_png()) // 2],
    "no IEND": lambda: _card_png()[:-12],
    "bad crc": _bad_crc,
    "bad length": lambda: PNG_SIGNATURE + struct.pack(">I", 0xFFFFFFF0) + b"IHDR" + b"\0" * 20,
    "first chunk not IHDR": lambda: PNG_SIGNATURE + Chunk(b"IEND", b"").raw(),
    "no card chunk": plain_png,
    "base64 garbage": lambda: _text_png("!!!% not base64 %!!!"),
    "not utf-8": lambda: _text_png(base64.b64encode(b'{"name": "\xff"}').decode()),
    "invalid json": lambda: _text_png(base64.b64encode(b"{oops").decode()),
    "json array": lambda: _text_png(base64.b64encode(b"[1]").decode()),
    "wrong spec version": lambda: _text_png(b64(v3({"name": "A"}, version="1.0"))),
    "missing name": lambda: _text_png(b64(v3({}))),
}
EXPECTED = {
    "truncated header": "truncated",
    "truncated middle": "truncated",
    "no IEND": "truncated",
    "bad crc": "CRC",
    "bad length": "corrupt",
    "first chunk not IHDR": "IHDR",
    "no card chunk": "no character card",
    "base64 garbage": "base64",
    "not utf-8": "UTF-8",
    "invalid json": "JSON",
    "json array": "JSON object",
    "wrong spec version": "spec_version",
    "missing name": "name",
}


@pytest.mark.parametrize("case", sorted(BAD_PNGS))
def test_damaged_pngs_raise_invalid_card_naming_file_and_problem(case):
    with pytest.raises(RolecraftError) as info:
        load_character(BAD_PNGS[case](), "broken.png")
    assert info.value.code == "invalid_card"
    assert "broken.png" in info.value.message
    assert EXPECTED[case] in info.value.message


def test_bad_ztxt_compression_is_reported():
    png = with_chunks(plain_png(), [Chunk(b"zTXt", b"ccv3\0\0" + b"definitely not zlib")])
    with pytest.raises(RolecraftError, match="compressed text is corrupt"):
        load_character(png, "z.png")

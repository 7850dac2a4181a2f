"""CHARX zips: card.json + assets, avatar from the icon, emotion sprites, hostile archives."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from rolecraft.characters import Character, dump_character, load_character
from rolecraft.characters.charx import MAX_MEMBERS
from rolecraft.errors import RolecraftError


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(out, "PNG")
    return out.getvalue()


ICON, JOY = png((255, 0, 0)), png((0, 255, 0))


def card() -> dict:
    return {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": "Rook",
            "first_mes": "Check.",
            "group_only_greetings": [],
            "extensions": {"someone_else": {"keep": True}},
            "assets": [
                {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"},
                {"type": "emotion", "uri": "embeded://assets/emotion/images/joy.png", "name": "joy", "ext": "png"},
                {"type": "background", "uri": "https://example.org/bg.png", "name": "main", "ext": "png"},
            ],
        },
    }


def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def charx(**extra: bytes) -> bytes:
    members = {
        "card.json": json.dumps(card()).encode(),
        "assets/icon/images/main.png": ICON,
        "assets/emotion/images/joy.png": JOY,
        "x_app/settings.json": b'{"theme": "dark"}',
    }
    return make_zip({**members, **extra})


def test_charx_is_read_with_avatar_expressions_and_files():
    c = load_character(charx(), "rook.charx")
    assert c.name == "Rook" and c.spec == "chara_card_v3"
    assert c.avatar == ICON
    assert c.expressions == {"joy": "embeded://assets/emotion/images/joy.png"}
    assert c.asset_files["assets/emotion/images/joy.png"] == JOY
    assert c.asset_files["x_app/settings.json"] == b'{"theme": "dark"}'
    assert c.extensions == {"someone_else": {"keep": True}}


def test_charx_round_trip_is_lossless():
    c = load_character(charx(), "rook.charx")
    data = dump_character(c, "charx")
    again = load_character(data, "rook.charx")
    assert again == c
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert set(zf.namelist()) == {"card.json", *c.asset_files}


def test_charx_export_embeds_an_avatar_as_main_icon():
    c = Character(name="Pawn", avatar=ICON)
    again = load_character(dump_character(c, "charx"), "pawn.charx")
    assert again.avatar == ICON
    assert [(a.type, a.name, a.uri) for a in again.assets] == [
        ("icon", "main", "embeded://assets/icon/images/main.png")
    ]


def test_charx_is_v3_only():
    with pytest.raises(RolecraftError, match="CHARX"):
        dump_character(Character(name="A"), "charx", spec="chara_card_v2")


def test_png_export_of_a_charx_character_keeps_the_card():
    c = load_character(charx(), "rook.charx")
    back = load_character(dump_character(c, "png"), "rook.png")
    assert back.assets == c.assets and back.expressions == c.expressions


UNSAFE_NAMES = ["../evil.png", "assets/../../evil.png", "/etc/passwd", "assets\\..\\evil.png", "C:/evil.png", "./x"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_path_traversal_is_rejected(name):
    with pytest.raises(RolecraftError) as info:
        load_character(charx(**{name: b"x"}), "evil.charx")
    assert info.value.code == "invalid_card"
    assert "evil.charx" in info.value.message and "unsafe member name" in info.value.message


def test_zip_bomb_is_stopped_at_the_unpack_limit():
    bomb = make_zip({"card.json": json.dumps(card()).encode(), "assets/other/bomb.bin": b"\0" * (8 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(RolecraftError) as info:
        load_character(bomb, "bomb.charx", max_bytes=1024 * 1024)
    assert info.value.code == "invalid_card" and "unpacks to more than" in info.value.message


def test_lying_zip_headers_do_not_bypass_the_limit():
    data = bytearray(
        make_zip({"card.json": json.dumps(card()).encode(), "assets/other/bomb.bin": b"\0" * (8 * 1024 * 1024)})
    )
    declared = (8 * 1024 * 1024).to_bytes(4, "little")
    for pos in [i for i in range(len(data) - 3) if data[i : i + 4] == declared]:
        data[pos : pos + 4] = (10).to_bytes(4, "little")
    with pytest.raises(RolecraftError) as info:
        load_character(bytes(data), "liar.charx", max_bytes=1024 * 1024)
    assert info.value.code == "invalid_card"


def test_too_many_members_is_refused():
    members = {f"assets/other/{i}.txt": b"" for i in range(MAX_MEMBERS + 1)}
    with pytest.raises(RolecraftError, match="too many members"):
        load_character(make_zip({"card.json": json.dumps(card()).encode(), **members}), "many.charx")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (make_zip({"assets/icon/images/main.png": ICON}), "no card.json"),
        (b"PK\x03\x04" + b"\0" * 60, "not a readable CHARX zip"),
        (charx()[:-30], "not a readable CHARX zip"),
        (make_zip({"card.json": b"{broken"}), "not valid JSON"),
        (make_zip({"card.json": json.dumps({**card(), "data": {}}).encode()}), "name"),
    ],
)
def test_bad_charx_files_raise_invalid_card(data, problem):
    with pytest.raises(RolecraftError) as info:
        load_character(data, "bad.charx")
    assert info.value.code == "invalid_card"
    assert "bad.charx" in info.value.message and problem in info.value.message

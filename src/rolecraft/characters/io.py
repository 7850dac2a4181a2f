"""Bytes ↔ Character for every card container: PNG, CHARX zip and plain JSON.

Callers (CLI import, server upload, sample loader) hand us whatever the user
gave them. We look at the content, not the file name, to pick the reader, cap
the size before doing any work, and turn every failure into one
`RolecraftError(code="invalid_card")` that names the file and what is wrong:
nothing else escapes `load_character`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from rolecraft.characters.cards import (
    SPEC_V2,
    SPEC_V3,
    card_error,
    card_from_character,
    card_json_bytes,
    character_from_card,
    parse_card_json,
)
from rolecraft.characters.charx import character_from_charx, character_to_charx
from rolecraft.characters.model import Character
from rolecraft.characters.png import PNG_SIGNATURE, character_from_png, read_chunks, write_card_png
from rolecraft.errors import RolecraftError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
AVATAR_SIZE = 256
Format = Literal["png", "json", "charx"]


def load_character(data: bytes, filename: str = "card", *, max_bytes: int = DEFAULT_MAX_BYTES) -> Character:
    """A Character from PNG, CHARX or JSON card bytes (detected by content)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise card_error(filename, f"expected the file's bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise card_error(filename, f"file is too large ({len(data)} bytes; the limit is {max_bytes})")
    data = bytes(data)
    if not data.strip():
        raise card_error(filename, "file is empty")
    if data.startswith(PNG_SIGNATURE):
        return character_from_png(data, filename)
    if data.startswith(ZIP_SIGNATURES):
        return character_from_charx(data, filename, max_unpacked=4 * max_bytes)
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise card_error(filename, "not a character card (expected a PNG, a CHARX zip or a JSON object)")
    return character_from_card(parse_card_json(data, filename), source=filename)


def read_limited(path: Path, max_bytes: int, error: Callable[[str, str], RolecraftError]) -> bytes:
    """A file's bytes, refusing files over `max_bytes` before reading them; `error(name, problem)` on failure."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(path.name, f"file is too large ({size} bytes; the limit is {max_bytes})")
        with path.open("rb") as f:
            return f.read(max_bytes + 1)
    except OSError as exc:
        raise error(path.name, f"cannot read file ({exc.strerror or exc})") from None


def load_character_file(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Character:
    """Load a card file, refusing files over `max_bytes` before reading them."""
    path = Path(path)
    return load_character(read_limited(path, max_bytes, card_error), path.name, max_bytes=max_bytes)


def dump_character(c: Character, fmt: Format, spec: str = SPEC_V3) -> bytes:
    """Card bytes for `c`: JSON, PNG (`ccv3` + `chara` chunks; only `chara` for V2) or CHARX (V3 only)."""
    dumper = _DUMPERS.get(fmt)
    if dumper is None:
        raise RolecraftError(f"unknown card format {fmt!r}; use one of {sorted(_DUMPERS)}", param="fmt")
    return dumper(c, spec)


def _dump_json(c: Character, spec: str) -> bytes:
    return card_json_bytes(card_from_character(c, spec), indent=2)


def _dump_png(c: Character, spec: str) -> bytes:
    cards = {"chara": card_from_character(c, SPEC_V2)}
    if spec != SPEC_V2:
        cards["ccv3"] = card_from_character(c, spec)
    return write_card_png(_avatar_png(c), cards)


def _dump_charx(c: Character, spec: str) -> bytes:
    if spec != SPEC_V3:
        raise RolecraftError(f"CHARX files hold {SPEC_V3} cards only, not {spec!r}", param="spec")
    return character_to_charx(c)


_DUMPERS = {"json": _dump_json, "png": _dump_png, "charx": _dump_charx}


def _avatar_png(c: Character) -> bytes:
    """The avatar as a valid PNG: as is, converted from another image format, or a generated placeholder."""
    if c.avatar is None:
        return placeholder_avatar(c.name)
    if _is_png(c.avatar):
        return c.avatar
    from PIL import Image

    try:
        with Image.open(io.BytesIO(c.avatar)) as image:
            out = io.BytesIO()
            image.convert("RGBA").save(out, "PNG")
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        raise RolecraftError(f"the avatar of {c.name!r} is not a readable image", code="invalid_avatar") from None


def _is_png(data: bytes) -> bool:
    try:
        read_chunks(data, "avatar")
    except RolecraftError:
        return False
    return True


def placeholder_avatar(name: str, size: int = AVATAR_SIZE) -> bytes:
    """A simple generated avatar: a coloured disc with the name's initial (or a diamond for non-Latin names)."""
    from PIL import Image, ImageDraw, ImageFont

    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    background = (40 + digest[0] % 80, 40 + digest[1] % 80, 60 + digest[2] % 80)
    accent = (200 + digest[3] % 56, 150 + digest[4] % 90, 90 + digest[5] % 120)
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    margin = size // 8
    draw.ellipse((margin, margin, size - margin, size - margin), fill=accent)
    initial = name.strip()[:1].upper()
    if initial.isascii() and initial.isalnum():
        font = ImageFont.load_default(size=size // 2)
        draw.text((size / 2, size / 2), initial, fill=background, font=font, anchor="mm")
    else:
        c, r = size // 2, size // 5
        draw.polygon([(c, c - r), (c + r, c), (c, c + r), (c - r, c)], fill=background)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()

"""CHARX cards: a zip holding `card.json` (a V3 card) and the files its assets point to.

V3 cards reference packed files as `embeded://assets/...` (the spec's spelling;
`embedded://` is accepted too). A zip from a stranger is hostile input, so we
read it only in memory, cap the number of members and the bytes we are willing
to inflate (a zip bomb stops at the cap, whatever its headers claim), and
reject member names that try to escape the archive (`..`, absolute paths,
backslashes, drive letters) instead of guessing what they meant.

Everything in the zip except `card.json` is kept in `Character.asset_files`
(member path → bytes) and written back on export. The main `icon` asset
becomes `Character.avatar`; `emotion` assets show up in `Character.expressions`.
"""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib

from rolecraft.characters.cards import (
    SPEC_V3,
    card_error,
    card_from_character,
    card_json_bytes,
    character_from_card,
    parse_card_json,
)
from rolecraft.characters.model import Asset, Character

CARD_MEMBER = "card.json"
MAX_MEMBERS = 1000
MAX_UNPACKED_BYTES = 128 * 1024 * 1024
EMBEDDED_PREFIXES = ("embeded://", "embedded://")
AVATAR_MEMBER = "assets/icon/images/main.png"
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    KeyError,
    IndexError,
)
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def character_from_charx(data: bytes, filename: str, *, max_unpacked: int = MAX_UNPACKED_BYTES) -> Character:
    """Read a CHARX zip: the card from `card.json`, the avatar from the main icon asset, all other members kept."""
    try:
        files = _read_members(data, filename, max_unpacked)
    except _ZIP_ERRORS as exc:
        raise card_error(filename, f"not a readable CHARX zip ({type(exc).__name__}: {exc})") from None
    if CARD_MEMBER not in files:
        raise card_error(filename, f"CHARX zip has no {CARD_MEMBER}")
    source = f"{filename} ({CARD_MEMBER})"
    character = character_from_card(parse_card_json(files.pop(CARD_MEMBER), source), source=source)
    character.asset_files = files
    icon = main_icon(character.assets)
    path = embedded_path(icon.uri) if icon else None
    character.avatar = files.get(path) if path else None
    return character


def character_to_charx(c: Character) -> bytes:
    """A CHARX zip with the V3 card, every asset file, and the avatar as the main icon."""
    card = card_from_character(c, SPEC_V3)
    files = dict(c.asset_files)
    if c.avatar is not None:
        files[_avatar_member(card)] = c.avatar
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(CARD_MEMBER, _FIXED_DATE), card_json_bytes(card, indent=2))
        for name in sorted(files):
            _check_name(name, "asset_files")
            zf.writestr(zipfile.ZipInfo(name, _FIXED_DATE), files[name])
    return buffer.getvalue()


def main_icon(assets: list[Asset]) -> Asset | None:
    """The icon named `main`, else the first icon, else None."""
    icons = [a for a in assets if a.type == "icon"]
    return next((a for a in icons if a.name == "main"), icons[0] if icons else None)


def embedded_path(uri: str) -> str | None:
    """The zip member an `embeded://` uri points to, None for other uris."""
    for prefix in EMBEDDED_PREFIXES:
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return None


def _avatar_member(card: dict) -> str:
    """Where the avatar goes: the main icon's embedded file; an icon elsewhere (or none) is pointed at a new one."""
    assets = card["data"].setdefault("assets", [])
    icons = [a for a in assets if a.get("type") == "icon"]
    icon = next((a for a in icons if a.get("name") == "main"), icons[0] if icons else None)
    if icon is not None and (path := embedded_path(icon["uri"])):
        return path
    if icon is None:
        icon = {"type": "icon", "name": "main", "ext": "png"}
        assets.append(icon)
    icon["uri"] = EMBEDDED_PREFIXES[0] + AVATAR_MEMBER
    return AVATAR_MEMBER


def _read_members(data: bytes, filename: str, max_unpacked: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    budget = max_unpacked
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise card_error(filename, f"CHARX zip has too many members ({len(infos)}; the limit is {MAX_MEMBERS})")
        for info in infos:
            if info.is_dir():
                continue
            _check_name(info.filename, filename)
            if info.filename in files:
                raise card_error(filename, f"CHARX zip holds {info.filename!r} twice")
            if info.flag_bits & 0x1:
                raise card_error(filename, f"CHARX member {info.filename!r} is encrypted")
            if info.file_size > budget:
                raise card_error(filename, f"CHARX zip unpacks to more than {max_unpacked} bytes")
            with zf.open(info) as member:
                content = member.read(budget + 1)
            if len(content) > budget:
                raise card_error(filename, f"CHARX zip unpacks to more than {max_unpacked} bytes")
            budget -= len(content)
            files[info.filename] = content
    return files


def _check_name(name: str, source: str) -> None:
    """Reject member names that could escape the archive when someone extracts it."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or ":" in parts[0]
        or any(p in ("..", ".") for p in parts)
    ):
        raise card_error(source, f"unsafe member name {name!r} in CHARX zip (absolute path or '..')", "asset_files")

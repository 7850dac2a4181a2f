"""The sprite image for an expression label, from the character card or a sprite folder.

Sprites come from, in order: the card's expressions (`Character.expressions`,
label → uri, which includes V3 `emotion` assets) pointing into the card's packed
files (`embeded://...`, CHARX) or holding a `data:` URL; then a folder laid out
the SillyTavern way (`<folder>/<label>.png`, also .webp/.gif/.jpg). When the
label has no sprite, the `neutral` one stands in; with neither, there is none.
Remote uris are returned as uris and never fetched here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rolecraft.errors import RolecraftError
from rolecraft.perception.sources import read_media

if TYPE_CHECKING:
    from rolecraft.characters.model import Character

SPRITE_EXTENSIONS = (".png", ".webp", ".gif", ".jpg", ".jpeg", ".avif")
_EMBEDDED = ("embeded://", "embedded://")
_MEDIA_TYPES = {".png": "image/png", ".webp": "image/webp", ".gif": "image/gif", ".jpg": "image/jpeg",
                ".jpeg": "image/jpeg", ".avif": "image/avif"}
MAX_SPRITE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Sprite:
    """A sprite for `label` (possibly the neutral stand-in); `data` is None for remote uris."""

    label: str
    uri: str
    data: bytes | None
    media_type: str


def _media_type(name: str) -> str:
    return _MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _from_card(character: Character, label: str) -> Sprite | None:
    uri = next((v for k, v in character.expressions.items() if k.strip().lower() == label), None)
    if not uri:
        return None
    for prefix in _EMBEDDED:
        if uri.startswith(prefix):
            data = character.asset_files.get(uri.removeprefix(prefix))
            return Sprite(label, uri, data, _media_type(uri)) if data else None
    if uri.startswith("data:"):
        try:
            media = read_media(uri, max_bytes=MAX_SPRITE_BYTES, param="expressions")
        except RolecraftError:
            return None
        return Sprite(label, uri, media.data, media.media_type or "application/octet-stream")
    if uri.startswith(("http://", "https://")):
        return Sprite(label, uri, None, _media_type(uri))
    return None


def _from_folder(folder: Path, label: str) -> Sprite | None:
    for ext in SPRITE_EXTENSIONS:
        path = folder / f"{label}{ext}"
        if path.is_file() and path.stat().st_size <= MAX_SPRITE_BYTES:
            return Sprite(label, path.as_uri(), path.read_bytes(), _media_type(path.name))
    return None


def sprite_for(character: Character, label: str, *, folder: Path | None = None) -> Sprite | None:
    """The sprite showing `label` (or the neutral one), or None when the character has no sprites for either."""
    wanted = label.strip().lower()
    for candidate in dict.fromkeys((wanted, "neutral")):
        sprite = _from_card(character, candidate) or (_from_folder(folder, candidate) if folder else None)
        if sprite is not None:
            return sprite
    return None

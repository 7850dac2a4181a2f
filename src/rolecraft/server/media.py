"""Images and audio inside requests: decode, check they are what they claim, or say exactly what is wrong.

Images arrive as `image_url` parts (http(s) URLs, or `data:` URLs with base64),
audio as base64 `input_audio` parts or multipart uploads. Nothing here trusts a
declared type: base64 is decoded strictly, images are opened and verified by
Pillow (with its decompression-bomb guard), audio is recognised by its magic
bytes. Every failure is a 400 naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass

from rolecraft.errors import RolecraftError
from rolecraft.perception.containers import sniff_audio

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,",
                       re.ASCII)
AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg", "opus", "webm", "m4a", "mp4", "mpeg", "mpga")


@dataclass(frozen=True)
class AudioInput:
    """Audio bytes from a request and the container format recognised in them."""

    data: bytes
    format: str


def decode_base64(text: str, *, param: str, what: str, code: str) -> bytes:
    """Strict base64 (whitespace allowed); a clear 400 otherwise."""
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RolecraftError(f"{what} is not valid base64", code=code, param=param) from None
    if not data:
        raise RolecraftError(f"{what} is empty", code=code, param=param)
    return data


def image_from_url(url: str, *, param: str) -> str:
    """Check an `image_url`: an http(s) URL (not fetched here), or a data: URL holding a readable image.
    Returns the image's MIME type ("" for a remote URL)."""
    if url.startswith(("http://", "https://")) and len(url) <= 2048 and " " not in url:
        return ""
    match = _DATA_URL.match(url)
    if match is None or not match.group("b64"):
        raise RolecraftError("image_url.url must be an http(s) URL or a base64 data: URL "
                             "(data:image/png;base64,...)", code="invalid_image_url", param=param)
    data = decode_base64(url[match.end():], param=param, what="the image data", code="invalid_image")
    return check_image(data, param=param)


def check_image(data: bytes, *, param: str) -> str:
    """The MIME type of a readable image, or a 400."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind = image.format or ""
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise RolecraftError("the image data is not a readable image (PNG, JPEG, GIF or WebP)",
                             code="invalid_image", param=param) from None
    return Image.MIME.get(kind, f"image/{kind.lower()}")


def check_audio(data: bytes, *, param: str, declared: str | None = None) -> AudioInput:
    """Audio bytes whose content is a known container (matching `declared` when given), or a 400."""
    found = sniff_audio(data)
    if found is None:
        raise RolecraftError(f"the audio is not in a supported format ({', '.join(AUDIO_FORMATS)})",
                             code="invalid_audio", param=param)
    same = {"ogg": {"ogg", "opus"}, "mp4": {"mp4", "m4a"}, "mp3": {"mp3", "mpeg", "mpga"}}.get(found, {found})
    if declared is not None and declared not in same:
        raise RolecraftError(f"the audio is declared as {declared!r} but its content is {found}",
                             code="invalid_audio", param=param)
    return AudioInput(data=data, format=found)

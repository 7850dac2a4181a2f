"""Where a picture or a sound clip comes from: a `data:` URL, a local file, or a remote URL.

Clients hand us media in three shapes (an OpenAI `image_url` part holding a
`data:` URL, a path on the CLI, an http(s) URL). This module turns each into
bytes with a size cap, so the decoders only ever see bytes. Remote URLs are
fetched only when the caller allows network access; offline (the default, and
what HF_HUB_OFFLINE=1 implies) they fail with a clear `RolecraftError` instead
of hanging or crashing.
"""

from __future__ import annotations

import base64
import binascii
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rolecraft.errors import RolecraftError
from rolecraft.settings import env_offline

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
FETCH_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class MediaBytes:
    """Raw media bytes plus what the source said about them (media type may be empty)."""

    data: bytes
    media_type: str = ""
    origin: str = ""


def read_media(
    source: str | Path | bytes,
    *,
    allow_remote: bool | None = None,
    allow_files: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    param: str = "media",
) -> MediaBytes:
    """Bytes of `source`: raw bytes, a `data:` URL, an http(s) URL (only when `allow_remote`) or a file path
    (only when `allow_files`: a server must pass False so clients cannot read its disk).

    `allow_remote` defaults to "not in offline mode".
    """
    if isinstance(source, bytes | bytearray):
        return MediaBytes(_capped(bytes(source), max_bytes, param), origin="bytes")
    text = str(source).strip()
    if text.startswith("data:"):
        return _from_data_url(text, max_bytes, param)
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme in {"http", "https"}:
        remote = (not env_offline()) if allow_remote is None else allow_remote
        if not remote:
            raise RolecraftError(
                f"cannot fetch {text[:200]!r}: remote media needs network access and rolecraft is offline; "
                "send the file itself (a data: URL or a local path)",
                code="remote_media_offline",
                param=param,
            )
        return _fetch(text, max_bytes, param)
    if scheme and len(scheme) > 1 and scheme != "file":
        raise RolecraftError(f"unsupported media URL scheme {scheme!r}", code="invalid_media", param=param)
    if not allow_files:
        raise RolecraftError("media must be sent as a data: URL or an http(s) URL here, not a file path",
                             code="invalid_media", param=param)
    return _from_path(Path(text.removeprefix("file://")).expanduser(), max_bytes, param)


def _capped(data: bytes, max_bytes: int, param: str) -> bytes:
    if not data:
        raise RolecraftError("the media is empty (0 bytes)", code="invalid_media", param=param)
    if len(data) > max_bytes:
        raise RolecraftError(
            f"the media is {len(data)} bytes, more than the limit of {max_bytes}", code="media_too_large", param=param
        )
    return data


def _from_data_url(url: str, max_bytes: int, param: str) -> MediaBytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise RolecraftError("malformed data: URL (no comma)", code="invalid_media", param=param)
    meta = header.removeprefix("data:").split(";")
    if len(payload) > max_bytes * 4 // 3 + 8:
        raise RolecraftError(f"the data: URL holds more than {max_bytes} bytes", code="media_too_large", param=param)
    try:
        if "base64" in (m.strip().lower() for m in meta[1:]):
            data = base64.b64decode(payload, validate=True)
        else:
            data = urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise RolecraftError(f"malformed base64 in data: URL ({exc})", code="invalid_media", param=param) from None
    return MediaBytes(_capped(data, max_bytes, param), media_type=meta[0].strip().lower(), origin="data-url")


def _from_path(path: Path, max_bytes: int, param: str) -> MediaBytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise RolecraftError(
                f"{path} is {size} bytes, more than the limit of {max_bytes}", code="media_too_large", param=param
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise RolecraftError(f"no such file: {path}", code="invalid_media", param=param) from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise RolecraftError(f"cannot read {path}: {exc.strerror or exc}", code="invalid_media", param=param) from None
    return MediaBytes(_capped(data, max_bytes, param), origin=str(path))


def _fetch(url: str, max_bytes: int, param: str) -> MediaBytes:
    request = urllib.request.Request(url, headers={"User-Agent": "rolecraft"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:
            data = response.read(max_bytes + 1)
            media_type = response.headers.get_content_type() or ""
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RolecraftError(
            f"cannot fetch {url[:200]!r}: {reason}", code="remote_media_unreachable", param=param, status=502
        ) from None
    return MediaBytes(_capped(data, max_bytes, param), media_type=media_type, origin=url)

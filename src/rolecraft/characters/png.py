"""PNG character cards: the card JSON rides in text chunks beside the avatar's pixels.

Most cards in the wild are PNG files whose `tEXt` chunk `chara` (V2) and/or
`ccv3` (V3) holds base64(UTF-8 JSON). We walk the chunk list ourselves instead
of decoding the image: it is faster, never touches pixel data, and lets us
report exactly what is wrong with a damaged file (bad signature, truncated
chunk, CRC mismatch, missing card chunk). Reading prefers `ccv3` and falls back
to `chara`; `zTXt`/`iTXt` chunks with those keywords are read as well, although
writers should use `tEXt`. Writing replaces any card chunks the image already
had, so a re-exported card never carries a stale copy.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from dataclasses import dataclass

from rolecraft.characters.cards import card_error, card_json_bytes, character_from_card, parse_card_json
from rolecraft.characters.model import Character

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")
MAX_TEXT_BYTES = 32 * 1024 * 1024
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


@dataclass(frozen=True)
class Chunk:
    """One PNG chunk: its 4-letter type and its data (length and CRC are derived)."""

    type: bytes
    data: bytes

    def raw(self) -> bytes:
        """The chunk as it appears in the file."""
        crc = zlib.crc32(self.type + self.data)
        return struct.pack(">I", len(self.data)) + self.type + self.data + struct.pack(">I", crc)

    def keyword(self) -> str | None:
        """The keyword of a text chunk (`chara`, `ccv3`, `Software`, ...), None for other chunks."""
        if self.type not in _TEXT_TYPES:
            return None
        keyword, sep, _ = self.data.partition(b"\0")
        return keyword.decode("latin-1") if sep else None


def read_chunks(data: bytes, source: str) -> list[Chunk]:
    """Every chunk up to and including IEND, checking signature, lengths, types and CRCs."""
    if not data.startswith(PNG_SIGNATURE):
        raise card_error(source, "not a PNG file (bad signature)")
    chunks: list[Chunk] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise card_error(source, f"PNG is truncated (no chunk header at byte {pos}, IEND never reached)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise card_error(source, f"PNG is corrupt (invalid chunk header at byte {pos})")
        end = pos + 12 + length
        name = ctype.decode("ascii")
        if end > len(data):
            raise card_error(source, f"PNG is truncated (chunk {name} at byte {pos} runs past the end of the file)")
        body = data[pos + 8 : end - 4]
        if zlib.crc32(ctype + body) != struct.unpack_from(">I", data, end - 4)[0]:
            raise card_error(source, f"PNG is corrupt (CRC mismatch in chunk {name} at byte {pos})")
        if not chunks and ctype != b"IHDR":
            raise card_error(source, "PNG is corrupt (first chunk is not IHDR)")
        chunks.append(Chunk(ctype, body))
        if ctype == b"IEND":
            return chunks
        pos = end


def character_from_png(data: bytes, filename: str) -> Character:
    """Read the card in a PNG (`ccv3` preferred, else `chara`); the image without card chunks becomes the avatar."""
    chunks = read_chunks(data, filename)
    found: dict[str, Chunk] = {}
    for chunk in chunks:
        keyword = chunk.keyword()
        if keyword in CARD_KEYWORDS:
            found.setdefault(keyword, chunk)
    keyword = next((k for k in CARD_KEYWORDS if k in found), None)
    if keyword is None:
        raise card_error(filename, "PNG holds no character card (no 'ccv3' or 'chara' text chunk)")
    source = f"{filename} ({keyword} chunk)"
    card = parse_card_json(_decode_base64(_chunk_text(found[keyword], source), source), source)
    character = character_from_card(card, source=source)
    kept = [c for c in chunks if c.keyword() not in CARD_KEYWORDS]
    character.avatar = PNG_SIGNATURE + b"".join(c.raw() for c in kept)
    return character


def write_card_png(image: bytes, cards: dict[str, dict], source: str = "avatar") -> bytes:
    """`image` (a PNG) with one `tEXt` chunk per keyword → card, replacing any card chunks it had."""
    chunks = [c for c in read_chunks(image, source) if c.keyword() not in CARD_KEYWORDS]
    texts = [
        Chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + base64.b64encode(card_json_bytes(card)))
        for keyword, card in cards.items()
    ]
    return PNG_SIGNATURE + b"".join(c.raw() for c in [*chunks[:-1], *texts, chunks[-1]])


def _chunk_text(chunk: Chunk, source: str) -> str:
    """The text of a tEXt / zTXt / iTXt chunk."""
    _, _, rest = chunk.data.partition(b"\0")
    if chunk.type == b"tEXt":
        return rest.decode("latin-1")
    if chunk.type == b"zTXt":
        if rest[:1] != b"\0":
            raise card_error(source, "zTXt chunk uses an unknown compression method")
        return _inflate(rest[1:], source).decode("latin-1")
    if len(rest) < 2:
        raise card_error(source, "iTXt chunk is malformed")
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        if method != 0:
            raise card_error(source, "iTXt chunk uses an unknown compression method")
        text = _inflate(text, source)
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise card_error(source, "iTXt chunk text is not UTF-8") from None


def _inflate(data: bytes, source: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES)
    except zlib.error as exc:
        raise card_error(source, f"compressed text is corrupt ({exc})") from None
    if inflater.unconsumed_tail:
        raise card_error(source, f"compressed text expands past {MAX_TEXT_BYTES} bytes")
    return out


def _decode_base64(text: str, source: str) -> bytes:
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise card_error(source, "card text is not valid base64") from None

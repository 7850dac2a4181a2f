"""Sentence splitting for speech that starts before the reply is finished.

A reply streams in as small text pieces; `SentenceSplitter.feed` returns each
sentence as soon as it is complete, so speech synthesis can begin on the first
sentence while the model is still writing the second. English sentences end in
`.`, `!`, `?` or `…` followed by a space (closing quotes and brackets stay with
their sentence; "Mr." or "3.5" do not end one); Chinese and Japanese ones end
at `。！？；…` with no space needed; a line break always ends one.
`speakable` strips what should not be read aloud: *stage directions*, markdown
marks, and bracketed notes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_CJK_END = "。！？；!?…"
_LATIN_END = ".!?…"
_CLOSERS = "\"'”’)]}」』）》"
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "etc", "e.g", "i.e", "no", "mt", "ft", "approx",
}
_BOLD = re.compile(r"\*\*([^*\n]{1,400})\*\*")
_ACTION = re.compile(r"\*[^*\n]{1,400}\*")
_MARKUP = re.compile(r"[*_~`#>]+")
_BRACKETED = re.compile(r"\[[^\]\n]{0,400}\]|\(\([^)\n]{0,400}\)\)")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def speakable(text: str) -> str:
    """The words to say: *actions*, [notes], ((OOC)) and markdown marks removed, spaces collapsed."""
    text = _BOLD.sub(r"\1", text)
    text = _ACTION.sub(" ", text)
    text = _BRACKETED.sub(" ", text)
    text = _MARKUP.sub("", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines()).strip()


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x3000 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF


def _ends_abbreviation(text: str, dot: int) -> bool:
    word = re.findall(r"[A-Za-z.]+$", text[:dot])
    if not word:
        return False
    token = word[0].lower().strip(".")
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _boundary(text: str, start: int, final: bool) -> int | None:
    """Index just past the first complete sentence in text[start:], or None if none is complete yet."""
    for i in range(start, len(text)):
        char = text[i]
        if char == "\n":
            return i + 1
        if char not in _LATIN_END and char not in _CJK_END:
            continue
        end = i + 1
        while end < len(text) and (text[end] in _LATIN_END or text[end] in _CJK_END or text[end] in _CLOSERS):
            end += 1
        if end == len(text):
            return end if final else None
        if char in _CJK_END and (char not in _LATIN_END or _is_cjk(text[i - 1] if i else " ")):
            return end
        if text[end].isspace() and not (char == "." and end == i + 1 and _ends_abbreviation(text, i)):
            return end
    return None


class SentenceSplitter:
    """Feed streamed text, get back finished sentences; `flush` returns the rest at the end."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        return self._take(final=False)

    def flush(self) -> list[str]:
        sentences = self._take(final=True)
        rest, self._buffer = self._buffer.strip(), ""
        return [*sentences, rest] if rest else sentences

    def _take(self, final: bool) -> list[str]:
        sentences = []
        while (end := _boundary(self._buffer, 0, final)) is not None:
            sentence, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
            if sentence:
                sentences.append(sentence)
        return sentences


def split_sentences(text: str) -> list[str]:
    """All sentences of a finished text."""
    splitter = SentenceSplitter()
    return [*splitter.feed(text), *splitter.flush()]


def iter_sentences(pieces: Iterable[str]) -> Iterator[str]:
    """Sentences from streamed pieces, each yielded as soon as it is complete."""
    splitter = SentenceSplitter()
    for piece in pieces:
        yield from splitter.feed(piece)
    yield from splitter.flush()

"""One streamed answer (`Reply`: text pieces, then finish reason, token counts, timing), cleaned of a
leading "Name:" the model may write, however decorated ("*Name:*", "**Name**:", "Name (smiling):")."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence

from rolecraft.backends.base import Backend, SamplingParams, StreamEvent
from rolecraft.messages import Message

_AFTER_NAME = re.compile(r"[ \t*_\]]*(?:\([^()\n]{0,60}\))?[ \t*_\]]*:")  # "**", " (smiling)", "]" then ":"
_MAY_BECOME = re.compile(r"[ \t*_\]]*(?:\([^()\n]{0,60}\)?)?[ \t*_\]]*")  # what can still grow into it
_OPENERS = re.compile(r"\s*([*_~\[]*)\s*")


def split_speaker(text: str, name: str) -> tuple[bool | None, str]:
    """(True, the rest) when `text` opens with `name`'s speaker tag however it is decorated ("Ember:",
    "*Ember:*", "**Ember**:", "[Ember]:", "Ember (smiling):"); (False, text) when it does not; (None, text)
    while too little has arrived to tell. An emphasis mark opened before the name and not closed by the
    tag ("*Ember: smiles*") stays on the rest, so the action keeps its asterisks."""
    opening = _OPENERS.match(text)
    assert opening is not None  # the pattern matches the empty string
    marks, body = opening.group(1), text[opening.end():]
    if len(body) < len(name):
        return (None if name.casefold().startswith(body.casefold()) else False), text
    if body[: len(name)].casefold() != name.casefold():
        return False, text
    after = body[len(name):]
    tag = _AFTER_NAME.match(after)
    if tag is None:
        return (None if _MAY_BECOME.fullmatch(after) else False), text
    rest = after[tag.end():]
    unclosed = sum(marks.count(c) for c in "*_") - sum(tag.group(0).count(c) for c in "*_")
    if unclosed > 0 and not rest.strip("*_"):
        return None, text  # the closing marks may still be on their way ("*Ember:" then "*")
    closing = len(rest) - len(rest.lstrip("*_"))
    rest = rest[min(max(unclosed, 0), closing):]
    unclosed -= min(max(unclosed, 0), closing)
    rest = rest.lstrip()
    reopen = "".join(c for c in marks if c in "*_")[:unclosed] if unclosed > 0 and rest else ""
    return True, reopen + rest


def strip_speaker(pieces: Iterable[str], name: str) -> Iterator[str]:
    """Yield the reply text without a leading speaker tag (see `split_speaker`) and leading whitespace."""
    buffer, decided = "", False
    for piece in pieces:
        if decided:
            yield piece
            continue
        buffer += piece
        found, rest = split_speaker(buffer, name)
        if found is None:
            continue
        head = rest.lstrip()
        if head:  # otherwise only the tag (or spaces) so far: wait for the words
            decided = True
            yield head
    if not decided and buffer.strip():
        found, rest = split_speaker(buffer, name)
        if rest.strip():
            yield rest.strip()


class Reply:
    """One streamed answer to `messages`; iterate for text pieces, then read the totals.

    With `speaker` set (a character's name) a leading "Name:" the model may write is dropped.
    """

    def __init__(self, backend: Backend, messages: Sequence[Message], params: SamplingParams,
                 speaker: str | None = None) -> None:
        self.backend, self.messages, self.params, self.speaker = backend, list(messages), params, speaker
        self.pieces: list[str] = []
        self.final: StreamEvent | None = None
        self.ttft_s = 0.0
        self.total_s = 0.0

    def _raw(self) -> Iterator[str]:
        for event in self.backend.stream(self.messages, self.params):
            if event.finish_reason is not None:
                self.final = event
            if event.text:
                yield event.text

    def __iter__(self) -> Iterator[str]:
        start = time.perf_counter()
        pieces = strip_speaker(self._raw(), self.speaker) if self.speaker else self._raw()
        for piece in pieces:
            if not self.pieces:
                self.ttft_s = time.perf_counter() - start
            self.pieces.append(piece)
            yield piece
        self.total_s = time.perf_counter() - start
        if not self.pieces:
            self.ttft_s = self.total_s

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def finish_reason(self) -> str:
        return (self.final.finish_reason if self.final else None) or "stop"

    @property
    def prompt_tokens(self) -> int:
        return self.final.prompt_tokens if self.final else 0

    @property
    def completion_tokens(self) -> int:
        return self.final.completion_tokens if self.final else 0

    def meta(self) -> dict:
        """What a stored reply records about how it was made (the same keys a session turn stores)."""
        return {"finish_reason": self.finish_reason, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "ttft_ms": round(self.ttft_s * 1000, 1),
                "total_ms": round(self.total_s * 1000, 1)}

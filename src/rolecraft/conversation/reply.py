"""One streamed answer (`Reply`: text pieces, then finish reason, token counts, timing), cleaned of a
leading "Name:" the model may write."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

from rolecraft.backends.base import Backend, SamplingParams, StreamEvent
from rolecraft.messages import Message


def strip_speaker(pieces: Iterable[str], name: str) -> Iterator[str]:
    """Yield the reply text without a leading '<name>:' and without leading whitespace."""
    prefix = f"{name}:".casefold()
    buffer, decided = "", False
    for piece in pieces:
        if decided:
            yield piece
            continue
        buffer += piece
        head = buffer.lstrip()
        if len(head) < len(prefix) and prefix.startswith(head.casefold()):
            continue
        decided = True
        if head.casefold().startswith(prefix):
            head = head[len(prefix):].lstrip()
        if head:
            yield head
        else:
            decided = False
            buffer = ""
    if not decided and buffer.strip() and buffer.strip().casefold() != prefix:
        yield buffer.strip()


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

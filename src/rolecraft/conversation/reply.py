"""Clean a streamed reply: drop a leading "Name:" the model may write, trim whitespace."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


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

"""Token-by-token decoding for llama.cpp: text pieces, stop strings and per-token log-probabilities.

We drive `Llama.generate` ourselves instead of `create_completion` because only then do we
know which token produced which text: OpenAI's `logprobs` need that, and llama-cpp-python
can only give them with `logits_all` (a logits row per prompt token, hundreds of MB).
Stop strings are matched across token boundaries; text that may begin one is held back
until it is clear, so a stop string never leaks into a stream.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field

from rolecraft.backends.base import TokenLogprob
from rolecraft.backends.penalties import LogprobRecorder, Step


class StopScanner:
    """Feeds text through, cutting at the first stop string and holding back a possible stop's start."""

    def __init__(self, stops: Iterable[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def _held(self, text: str) -> int:
        """Length of the longest end of `text` that is a proper prefix of some stop string."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best

    def feed(self, piece: str) -> str:
        """The text that can be shown now; sets `stopped` once a stop string appears."""
        text = self.pending + piece
        cuts = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if cuts:
            self.stopped, self.pending = True, ""
            return text[: min(cuts)]
        keep = self._held(text)
        self.pending = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """What was held back, at the end of the reply (it turned out not to be a stop)."""
        text, self.pending = self.pending, ""
        return "" if self.stopped else text


@dataclass
class Decoded:
    """What a decode produced besides its text: the tokens, why it ended, and their log-probabilities."""

    tokens: list[int] = field(default_factory=list)
    finish_reason: str = "length"
    steps: list[Step] = field(default_factory=list)
    # (text, step index) pieces: which step's token produced which text, for logprobs
    spans: list[tuple[str, int]] = field(default_factory=list)


def decode(tokens: Generator[int, None, None], piece_of: Callable[[int], bytes], is_end: Callable[[int], bool],
           stops: list[str], max_tokens: int, out: Decoded, recorder: LogprobRecorder | None = None,
           ) -> Iterator[str]:
    """Yield text from a token generator until an end token, a stop string or `max_tokens`."""
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    scanner = StopScanner(stops)
    last: int | None = None
    try:
        for token in tokens:
            last = token
            if is_end(token):
                out.finish_reason = "stop"
                break
            out.tokens.append(token)
            shown = scanner.feed(utf8.decode(piece_of(token)))
            if shown:
                out.spans.append((shown, len(out.tokens) - 1))
                yield shown
            if scanner.stopped:
                out.finish_reason = "stop"
                break
            if len(out.tokens) >= max_tokens:
                break
    finally:
        tokens.close()
    tail = scanner.flush()  # bytes of a character cut off by max_tokens stay undecoded: never a "�"
    if tail:
        out.spans.append((tail, len(out.tokens) - 1))
        yield tail
    if recorder is not None:
        out.steps = recorder.close(last)


def token_logprobs(out: Decoded, piece_of: Callable[[int], bytes]) -> list[TokenLogprob]:
    """Log-probabilities of the tokens whose text is in the reply (not an end token or a stop string)."""
    shown = out.spans[-1][1] + 1 if out.spans else 0
    result = []
    for token, step in zip(out.tokens[:shown], out.steps, strict=False):
        raw = piece_of(token)
        top = [(piece_of(t).decode("utf-8", "replace"), lp, list(piece_of(t))) for t, lp in step.top]
        result.append(TokenLogprob(raw.decode("utf-8", "replace"), float(step.chosen_logprob or 0.0), list(raw), top))
    return result

"""Role constraints applied at sampling time, on token ids, for backends that expose logits.

The seeds raise the probability of a character's habitual words; we do it per
phrase: the first token of each catchphrase gets a bias, and once a phrase has
begun its next token gets a stronger one, so whole phrases come out rather than
scattered fragments. Banned phrases (assistant-speak) work the other way: when
the text generated so far ends with all but the last token of a banned phrase,
that last token is forbidden.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

Tokenize = Callable[[str], list[int]]


def phrase_variants(phrase: str) -> set[str]:
    """Spellings a phrase may appear with mid-sentence or at a line start."""
    phrase = phrase.strip()
    if not phrase:
        return set()
    forms = {phrase, phrase.lower(), phrase[:1].upper() + phrase[1:]}
    return {f for form in forms for f in (form, " " + form)}


def phrase_token_seqs(phrases: Iterable[str], tokenize: Tokenize) -> list[tuple[int, ...]]:
    """Token sequences of every variant of every phrase, without duplicates."""
    seqs = {tuple(tokenize(v)) for p in phrases for v in phrase_variants(p)}
    return sorted(s for s in seqs if s)


class RoleLogits:
    """A logits processor: boost catchphrases, forbid banned phrases. Cheap when nothing matches."""

    def __init__(
        self,
        boost: Sequence[tuple[int, ...]],
        banned: Sequence[tuple[int, ...]],
        strength: float,
        prompt_len: int,
    ) -> None:
        self.strength = strength
        self.prompt_len = prompt_len
        self.start_ids = np.array(sorted({s[0] for s in boost}), dtype=np.intp) if strength > 0 else None
        self.boost = [s for s in boost if len(s) > 1] if strength > 0 else []
        self.banned = [s for s in banned if s]
        self.window = max((len(s) for s in [*self.boost, *self.banned]), default=1)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        generated = input_ids[self.prompt_len:]
        tail = tuple(int(t) for t in generated[-self.window:])
        if self.start_ids is not None and len(self.start_ids):
            scores[self.start_ids] += self.strength
        for seq in self.boost:
            k = _matched_prefix(tail, seq)
            if k:
                scores[seq[k]] += 2 * self.strength
        for seq in self.banned:
            if len(seq) == 1 or tail[-(len(seq) - 1):] == seq[:-1]:
                scores[seq[-1]] = -np.inf
        return scores


def _matched_prefix(tail: tuple[int, ...], seq: tuple[int, ...]) -> int:
    """Longest k < len(seq) such that tail ends with seq[:k]."""
    for k in range(min(len(seq) - 1, len(tail)), 0, -1):
        if tail[-k:] == seq[:k]:
            return k
    return 0

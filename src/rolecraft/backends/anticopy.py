"""Anti-copy sampling: stop a reply from continuing a verbatim span of the character card.

Small models handed a long profile tend to recite it ("Bruce Banner, a brilliant
physicist, ...") instead of speaking as the character. DRY penalises repeating the
context; this processor is the same idea against one source text, the card: once
the reply's last `max_tokens` tokens stand verbatim in the card, every token that
would extend that span is forbidden, so no copied run grows beyond `max_tokens`.
Short shared phrases ("in the", a name) stay allowed.

The match is tracked incrementally with one numpy array over the card's tokens:
run[j] is the length of the longest suffix of the reply that ends at card token j.
Each new token costs O(len(card)), microseconds for a card of a few thousand tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rolecraft.characters.macros import expand_macros

if TYPE_CHECKING:
    from rolecraft.characters.model import Character

# The card's prose: what a reply should speak from, not recite. Catchphrases, greetings and
# example dialogue are left out: saying those is the point of them.
PROFILE_FIELDS = ("description", "appearance", "personality", "background", "speech_style", "scenario")


def card_text(character: Character, user: str = "User") -> str:
    """The character's profile as the model reads it (macros expanded), one field per paragraph."""
    parts = [getattr(character, name) for name in PROFILE_FIELDS]
    parts += [f"{who}: {what}" for who, what in character.relationships.items()]
    return "\n\n".join(expand_macros(p.strip(), character.name, user) for p in parts if p and p.strip())


class AntiCopy:
    """A logits processor forbidding the continuation of a > `max_tokens`-token verbatim copy of `source`."""

    def __init__(self, source: Sequence[int], max_tokens: int, prompt_len: int) -> None:
        self.source = np.asarray(source, dtype=np.int64)
        self.max_tokens = max(int(max_tokens), 1)
        self.prompt_len = prompt_len
        self.run = np.zeros(len(self.source), dtype=np.int64)
        self.seen: list[int] = []

    def _advance(self, token: int) -> None:
        shifted = np.concatenate(([0], self.run[:-1])) if len(self.run) else self.run
        self.run = np.where(self.source == token, shifted + 1, 0)
        self.seen.append(token)

    def _sync(self, generated: np.ndarray) -> None:
        """Bring the match state up to `generated` (restarting if the caller rewound the sequence)."""
        n = len(self.seen)
        if n > len(generated) or any(int(generated[i]) != self.seen[i] for i in range(max(n - 1, 0), n)):
            self.run[:] = 0
            self.seen = []
            n = 0
        for token in generated[n:]:
            self._advance(int(token))

    def blocked(self, input_ids: np.ndarray) -> np.ndarray:
        """Token ids that would make the current copied span longer than allowed."""
        self._sync(input_ids[self.prompt_len:])
        ends = np.flatnonzero(self.run[:-1] >= self.max_tokens) if len(self.run) > 1 else np.empty(0, np.int64)
        return np.unique(self.source[ends + 1])

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if len(self.source) > self.max_tokens:
            blocked = self.blocked(input_ids)
            if len(blocked):
                scores[blocked] = -np.inf
        return scores


def copied_span(reply: Sequence[int], source: Sequence[int]) -> int:
    """The longest run of `reply` tokens standing verbatim in `source` (for tests and diagnostics)."""
    best, src = 0, np.asarray(source, dtype=np.int64)
    run = np.zeros(len(src), dtype=np.int64)
    for token in reply:
        run = np.where(src == token, np.concatenate(([0], run[:-1])), -1) + 1 if len(src) else run
        best = max(best, int(run.max()) if len(run) else 0)
    return best

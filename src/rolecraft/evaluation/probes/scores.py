"""Pure scoring functions for the probes that watch how a character speaks.

Each takes strings and returns numbers or the matched evidence, so it can be
checked by hand and tested without a model:

- `copy_share`: of a reply's n-grams (6 words, or 8 characters in CJK text), the
  share standing verbatim in the card;
- `third_person_subject`: the character's own name, or he/she, opening a spoken
  sentence about itself (action narration between *asterisks* is allowed: that
  is the role-play convention);
- `near_identical` and `novel_ngram_share`: repetition across replies;
- `perceived_targets`: the words a reply may use to show it saw what perception
  reported (the label, its head noun, a few synonyms and hypernyms).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cache
from importlib import resources

from rolecraft.evaluation.metrics import has_cjk, mentions, normalize, sentences, tokens

WORD_N, CJK_N = 6, 8
NEAR_IDENTICAL = 0.8
_ACTION = re.compile(r"\*[^*]*\*")
_LEAD = " \t\"'“”‘’«»-—–…([「『"
_EN_PRONOUNS = ("he", "she")
_ZH_PRONOUNS = ("他", "她")
_LABEL_STOP = {"a", "an", "the", "of", "and", "with", "having", "in", "on", "for"}


@dataclass(frozen=True)
class CopyShare:
    copied: int
    total: int
    n: int

    @property
    def share(self) -> float | None:
        return self.copied / self.total if self.total else None


def ngram_size(text: str) -> int:
    return CJK_N if has_cjk(text) else WORD_N


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def copy_share(reply: str, card: str, n: int | None = None) -> CopyShare:
    """How many of the reply's n-grams stand verbatim (normalised) in `card`."""
    n = n or ngram_size(reply)
    grams = ngrams(tokens(reply), n)
    source = set(ngrams(tokens(card), n))
    return CopyShare(sum(g in source for g in grams), len(grams), n)


def spoken(text: str) -> str:
    """The reply without its *action narration*."""
    return _ACTION.sub(" ", text)


def third_person_subject(reply: str, names: Iterable[str], *, pronouns: bool = True) -> str | None:
    """The opening of the first spoken sentence whose subject is the character's name (or he/she), else None."""
    names = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    for sentence in sentences(spoken(reply)):
        opening = sentence.lstrip(_LEAD)
        for name in names:
            if _opens_with(opening, name):
                return opening[:40]
        if pronouns and (_opens_with(opening, *_EN_PRONOUNS) or opening.startswith(_ZH_PRONOUNS)):
            return opening[:40]
    return None


def _opens_with(opening: str, *words: str) -> bool:
    """`opening` starts with one of `words` followed by a word or a comma (a subject, not 'Ember?')."""
    for word in words:
        if has_cjk(word):
            if opening.startswith(word) and len(opening) > len(word) and opening[len(word)] not in "?？!！":
                return True
            continue
        if re.match(rf"{re.escape(word)}(?:,\s*|\s+)[^\W\d_]", opening, flags=re.IGNORECASE):
            return True
    return False


def first_person(reply: str) -> bool:
    """The spoken part of the reply says I / me / my / 我."""
    text = spoken(reply)
    return bool(re.search(r"\b(?:i|me|my|mine|myself|i'm|i've|i'll|i'd)\b", normalize(text))) or "我" in text


def similarity(a: str, b: str) -> float:
    """Token-sequence similarity of two replies in [0, 1] (1 = identical after normalising)."""
    ta, tb = tokens(a), tokens(b)
    if not ta and not tb:
        return 1.0
    return SequenceMatcher(None, ta, tb, autojunk=False).ratio()


def near_identical(reply: str, others: Iterable[str], threshold: float = NEAR_IDENTICAL) -> float:
    """The highest similarity to one of `others` when it reaches `threshold`, else 0.0."""
    best = max((similarity(reply, other) for other in others), default=0.0)
    return best if best >= threshold else 0.0


def novel_ngram_share(reply: str, earlier: Iterable[str], n: int = 2) -> float | None:
    """Share of the reply's n-grams used neither earlier in the session nor earlier in the reply (distinct-n)."""
    seen = {g for text in earlier for g in ngrams(tokens(text), n)}
    grams = ngrams(tokens(reply), n)
    if not grams:
        return None
    fresh = 0
    for gram in grams:
        fresh += gram not in seen
        seen.add(gram)
    return fresh / len(grams)


@cache
def _hypernyms() -> dict[str, list[str]]:
    text = resources.files("rolecraft.evaluation").joinpath("data/concepts.json").read_text(encoding="utf-8")
    return {normalize(k): v for k, v in json.loads(text).items()}


def perceived_targets(labels: Iterable[str]) -> list[str]:
    """Words that show a reply took in these perception labels: each label, its head noun and aliases,
    and the synonyms/hypernyms data/concepts.json lists for any of its words."""
    targets: list[str] = []
    for label in labels:
        name = normalize(label)
        alias = re.findall(r"\(([^)]*)\)", name)
        core = re.sub(r"\([^)]*\)", " ", name).split(" having ")[0].split(" with ")[0]
        words = [w for w in re.findall(r"[^\W\d_][\w'-]*", core) if w not in _LABEL_STOP]
        found = [name.strip(), *alias, *(words[-1:] if words else [])]
        for word in [*words, *alias, core.strip()]:
            found += _hypernyms().get(word, [])
        targets += [t for t in found if t and t not in targets]
    return targets


def names_reply(reply: str, targets: Sequence[str]) -> str | None:
    """The first target the reply names (word-bounded, plural -s allowed), or None."""
    return mentions(reply, [form for t in targets for form in (t, f"{t}s")])

"""Objective text metrics: pure functions over strings, each small enough to check by hand.

- `mentions`: does a reply contain one of several answers (word-bounded for Latin
  script, plain substring for CJK)?
- `catchphrase_usage`: whole catchphrases, lexicon words and catchphrase spam in a reply.
- `bleu`, `chrf` (sacrebleu) and `rouge_l` (longest common subsequence, our own).
- `contradicts`: a weak, NLI-free contradiction heuristic (negation flip).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rolecraft.errors import missing_extra

_CJK_CLASS = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"
_WORD_CHAR = rf"(?:(?!{_CJK_CLASS})[^\W_])"
CJK = re.compile(_CJK_CLASS)
_TOKEN = re.compile(rf"{_CJK_CLASS}|{_WORD_CHAR}+(?:'{_WORD_CHAR}+)?")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def normalize(text: str) -> str:
    """Casefolded NFKC text with typographic quotes straightened and whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return re.sub(r"\s+", " ", text).strip()


def tokens(text: str) -> list[str]:
    """Words for Latin-like scripts, single characters for CJK; normalised."""
    return _TOKEN.findall(normalize(text))


def has_cjk(text: str) -> bool:
    return bool(CJK.search(text))


def _core(phrase: str) -> str:
    """A phrase without edge punctuation, so "Rust and ruin!" matches "rust and ruin," in a reply."""
    return normalize(phrase).strip(" \t.,;:!?\"'()[]*~-—…。，！？；：、「」『』（）")


def count_phrase(text: str, phrase: str) -> int:
    """How often `phrase` occurs in `text` (normalised; word-bounded unless it is CJK)."""
    core = _core(phrase)
    if not core:
        return 0
    if has_cjk(core):
        return normalize(text).count(core)
    before = r"(?<![^\W_])" if re.match(r"[^\W_]", core) else ""
    after = r"(?![^\W_])" if re.search(r"[^\W_]$", core) else ""
    return len(re.findall(before + re.escape(core) + after, normalize(text)))


def mentions(text: str, answers: Iterable[str]) -> str | None:
    """The first answer that occurs in `text`, or None."""
    return next((a for a in answers if count_phrase(text, a)), None)


def lexicon_words(phrases: Iterable[str]) -> set[str]:
    """Distinctive words of catchphrases: Latin words of 4+ letters, CJK bigrams."""
    words: set[str] = set()
    for phrase in phrases:
        for run in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff]+", normalize(phrase)):
            words.update(run[i:i + 2] for i in range(len(run) - 1))
        words.update(w for w in tokens(phrase) if len(w) >= 4 and not has_cjk(w))
    return words


@dataclass(frozen=True)
class CatchphraseUsage:
    """Catchphrase use in one reply."""

    phrase: bool
    lexicon: bool
    spam: bool
    count: int


def catchphrase_usage(text: str, catchphrases: Sequence[str], lexicon: Iterable[str] = ()) -> CatchphraseUsage:
    """Whole catchphrases used, distinctive words used, and spam (one phrase more than twice)."""
    counts = [count_phrase(text, p) for p in catchphrases]
    words = set(lexicon) or lexicon_words(catchphrases)
    lexical = any(count_phrase(text, w) for w in words)
    return CatchphraseUsage(any(counts), lexical or any(counts), max(counts, default=0) > 2, sum(counts))


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as exc:
        raise missing_extra("sacrebleu", "eval") from exc
    return sacrebleu


def bleu_tokenizer(references: Iterable[str]) -> str:
    """sacrebleu tokenizer: 'zh' when any reference has CJK text, else the standard '13a'."""
    return "zh" if any(has_cjk(r) for r in references) else "13a"


@lru_cache(maxsize=8)
def _scorer(kind: str, tokenize: str = "13a"):
    sacrebleu = _sacrebleu()
    if kind == "bleu":
        return sacrebleu.metrics.BLEU(tokenize=tokenize, effective_order=True)
    return sacrebleu.metrics.CHRF()


def sentence_stats(kind: str, hypothesis: str, reference: str) -> list[int]:
    """sacrebleu's sufficient statistics ('bleu' or 'chrf') of one pair; BLEU tokenizes each pair by its
    reference ('zh' for CJK, else '13a'). Summing rows and scoring the sum gives the corpus score, so a
    bootstrap resample costs a sum, not a re-tokenization (sacrebleu's own significance tests do the same)."""
    metric = _scorer(kind, bleu_tokenizer([reference]) if kind == "bleu" else "13a")
    return [int(x) for x in metric._extract_corpus_statistics([hypothesis], [[reference]])[0]]


def score_from_stats(kind: str, rows: Sequence[Sequence[int]]) -> float:
    """The corpus score (0–100) of summed per-pair statistics."""
    total = np.asarray(rows, dtype=np.int64).sum(axis=0)
    return float(_scorer(kind)._compute_score_from_stats(total.tolist()).score)


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0–100) of hypotheses against one reference each."""
    return score_from_stats("bleu", [sentence_stats("bleu", h, r) for h, r in zip(hypotheses, references,
                                                                                   strict=True)])


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0–100) of hypotheses against one reference each."""
    return score_from_stats("chrf", [sentence_stats("chrf", h, r) for h, r in zip(hypotheses, references,
                                                                                   strict=True)])


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a)·len(b)) time, O(len(b)) memory)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1 (0–1) over `tokens` (words; CJK characters)."""
    hyp, ref = tokens(hypothesis), tokens(reference)
    if not hyp or not ref:
        return 0.0
    common = lcs_length(hyp, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(hyp), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate of an English transcript: word-level edit distance / reference words."""
    return _error_rate(re.findall(r"[a-z']+", reference.lower()), re.findall(r"[a-z']+", hypothesis.lower()))


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character error rate of a Chinese transcript (punctuation and spaces ignored)."""
    return _error_rate(re.findall(r"[\u4e00-\u9fff]", reference), re.findall(r"[\u4e00-\u9fff]", hypothesis))


def _error_rate(ref: list[str], hyp: list[str]) -> float:
    """Edit distance between two token lists / reference tokens."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(1, len(ref))


NEGATIONS = {"not", "no", "never", "nor", "none", "nothing", "cannot", "can't", "won't", "don't", "doesn't",
             "didn't", "isn't", "aren't", "wasn't", "weren't", "haven't", "hasn't", "hadn't", "shouldn't",
             "wouldn't", "couldn't", "mustn't", "n't", "neither", "不", "没", "别", "非", "无", "未", "莫"}
STOPWORDS = {"i", "a", "an", "the", "and", "or", "but", "to", "of", "in", "on", "at", "for", "with", "it", "is",
             "am", "are", "was", "were", "be", "been", "my", "me", "you", "your", "this", "that", "so", "do",
             "does", "did", "have", "has", "had", "will", "would", "shall", "can", "could", "again", "ever",
             "any", "anymore", "just", "still", "here", "there", "i'm", "i've", "i'll", "i'd", "he", "she",
             "they", "we", "us", "our", "his", "her", "their", "what", "all", "too", "very", "since", "if",
             "了", "的", "我", "你", "是", "也", "在", "吗", "呢", "吧"}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _clause(sentence: str) -> tuple[frozenset[str], bool]:
    words = tokens(sentence)
    negative = sum(w in NEGATIONS or w.endswith("n't") for w in words) % 2 == 1
    content = frozenset(_stem(w) for w in words if w not in NEGATIONS and w not in STOPWORDS
                        and not w.endswith("n't"))
    return content, negative


def sentences(text: str) -> list[str]:
    """Sentences split on . ! ? and their CJK forms, and on line breaks."""
    return [s.strip() for s in re.split(r"(?<=[.!?。！？])\s*|\n+", text) if s and s.strip()]


def clauses(text: str) -> list[str]:
    """Sentences further split at commas, semicolons and 'but' / 'and', so each clause has one polarity."""
    parts = (re.split(r"[,;，；]|\b(?:but|and)\b", s, flags=re.IGNORECASE) for s in sentences(text))
    return [p.strip() for group in parts for p in group if p and p.strip()]


def contradicts(earlier: Iterable[str], reply: str, *, overlap: float = 0.6) -> tuple[str, str] | None:
    """A weak contradiction check: a reply clause that repeats most content words of an earlier clause
    (at least two, and at least `overlap` of the earlier clause's) with the opposite negation.
    Returns the (earlier, reply) clauses or None. It misses paraphrases and antonyms and can flag
    sarcasm or quotations; treat its numbers as rough."""
    claims = [(c, *_clause(c)) for text in earlier for c in clauses(text)]
    for clause in clauses(reply):
        content, negative = _clause(clause)
        for before, old, old_negative in claims:
            shared = content & old
            if len(shared) >= 2 and len(shared) >= overlap * len(old) and negative != old_negative:
                return before, clause
    return None

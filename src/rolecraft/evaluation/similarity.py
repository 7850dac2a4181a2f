"""Text similarity for persona attribution and the out-of-character classifier.

Two interchangeable vectorizers: sentence embeddings (rolecraft.embeddings,
all-MiniLM-L6-v2) when installed, else TF-IDF cosine over words and word
bigrams, fitted on the texts being compared. Reports name the one used; the
TF-IDF fallback is much weaker at style and paraphrase.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from typing import ClassVar

import numpy as np

from rolecraft import embeddings
from rolecraft.conversation.sampling import DEFAULT_BANNED
from rolecraft.evaluation.metrics import count_phrase, tokens


class Vectorizer:
    """Cosine similarity between two lists of texts."""

    method = ""
    weak = False
    seconds = 0.0

    def similarity(self, queries: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        """Matrix (len(queries), len(targets)) of cosine similarities."""
        raise NotImplementedError


class EmbeddingVectorizer(Vectorizer):
    """Sentence embeddings, memoised per text (cards and prototypes are compared many times)."""

    weak = False

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.method = f"sentence embeddings ({embeddings.describe(model)})"
        self._memo: dict[str, np.ndarray] = {}

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            start = time.perf_counter()
            for text, row in zip(missing, embeddings.embed(missing, model=self.model), strict=True):
                self._memo[text] = row
            self.seconds += time.perf_counter() - start
        return np.stack([self._memo[t] for t in texts])

    def similarity(self, queries: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        if not queries or not targets:
            return np.zeros((len(queries), len(targets)))
        return self.vectors(queries) @ self.vectors(targets).T


def _features(text: str) -> Counter:
    words = tokens(text)
    return Counter(words + [f"{a} {b}" for a, b in pairwise(words)])


def tfidf_matrix(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised TF-IDF rows (sublinear tf, smoothed idf) fitted on `texts` themselves."""
    bags = [_features(t) for t in texts]
    vocab = {term: i for i, term in enumerate(sorted({term for bag in bags for term in bag}))}
    df = Counter(term for bag in bags for term in bag)
    idf = {term: math.log((1 + len(bags)) / (1 + df[term])) + 1 for term in vocab}
    matrix = np.zeros((len(bags), len(vocab)))
    for row, bag in enumerate(bags):
        for term, count in bag.items():
            matrix[row, vocab[term]] = (1 + math.log(count)) * idf[term]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class TfidfVectorizer(Vectorizer):
    method = "TF-IDF cosine (fallback: sentence embeddings not installed; weak at style and paraphrase)"
    weak = True

    def similarity(self, queries: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        if not queries or not targets:
            return np.zeros((len(queries), len(targets)))
        matrix = tfidf_matrix([*queries, *targets])
        return matrix[: len(queries)] @ matrix[len(queries):].T


def make_vectorizer(method: str = "auto") -> Vectorizer:
    """'embeddings', 'tfidf', or 'auto' (embeddings when installed)."""
    if method == "tfidf" or (method == "auto" and not embeddings.available()):
        return TfidfVectorizer()
    return EmbeddingVectorizer()


OOC_PHRASES = (
    *DEFAULT_BANNED, "as a language model", "as an AI assistant", "virtual assistant", "chatbot",
    "I'm just a program", "I am just a program", "I can't assist", "I can't help with that",
    "I cannot help with that", "I'm sorry, but I can't", "I'm sorry, but I cannot", "my programming",
    "my training data", "my instructions", "system prompt", "out of character", "OOC", "role-play", "roleplay",
    "fictional character", "How can I assist you", "How may I assist you", "I hope this helps",
    "let me know if you have any other questions", "```", "stay in character", "keep replies under",
    "keep my replies under", "keep all my responses under", "speak or act for",
)


@dataclass(frozen=True)
class OOCVerdict:
    """Whether a reply breaks character, and why."""

    flagged: bool
    phrase: str | None
    classifier: bool
    score: float


def _prototypes() -> dict[str, list[str]]:
    text = resources.files("rolecraft.evaluation").joinpath("data/ooc_prototypes.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return {"assistant": data["assistant"], "in_character": data["in_character"]}


class OOCDetector:
    """Out-of-character check: a phrase list (configurable) plus a nearest-prototype classifier.

    The classifier compares a reply with lines that break character and lines that stay in
    it; a reply is flagged when it is clearly closer to the first (by `margin`) and close enough
    to one of them (`floor`). Thresholds differ per vectorizer (TF-IDF similarities run lower).
    """

    # vectorizer.weak → (margin, floor), calibrated on the prototypes and hand-written lines (see tests)
    THRESHOLDS: ClassVar[dict[bool, tuple[float, float]]] = {True: (0.12, 0.15), False: (0.2, 0.35)}

    def __init__(self, vectorizer: Vectorizer, phrases: Sequence[str] = OOC_PHRASES) -> None:
        self.vectorizer = vectorizer
        self.phrases = list(dict.fromkeys(phrases))
        prototypes = _prototypes()
        self.assistant, self.in_character = prototypes["assistant"], prototypes["in_character"]
        self.margin, self.floor = self.THRESHOLDS[vectorizer.weak]

    def gap(self, text: str) -> tuple[float, float]:
        """(closeness to out-of-character lines minus closeness to in-character lines, the former)."""
        sims = self.vectorizer.similarity([text], [*self.assistant, *self.in_character])[0]
        closest = float(sims[: len(self.assistant)].max())
        return closest - float(sims[len(self.assistant):].max()), closest

    def check(self, text: str) -> OOCVerdict:
        phrase = next((p for p in self.phrases if count_phrase(text, p)), None)
        gap, closest = self.gap(text)
        classifier = gap > self.margin and closest > self.floor
        return OOCVerdict(phrase is not None or classifier, phrase, classifier, round(gap, 4))

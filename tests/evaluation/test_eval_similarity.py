"""Sentence embeddings (the bundled all-MiniLM-L6-v2), the TF-IDF fallback and the out-of-character check."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rolecraft import embeddings
from rolecraft.errors import RolecraftError
from rolecraft.evaluation.similarity import EmbeddingVectorizer, OOCDetector, TfidfVectorizer, tfidf_matrix

needs_embeddings = pytest.mark.skipif(not embeddings.available(),
                                      reason="needs pip install 'rolecraft[embeddings]'")

OUT_OF_CHARACTER = [
    "I am an artificial intelligence, so I don't have a home.",
    "As a helpful assistant, I'd recommend checking the official documentation.",
    "Here's a simple function:\nfunction sort(a) { return a.sort(); }",
    "I'm sorry, I am not able to provide that information.",
    "Sure! I'd be happy to help you with that. What do you need?",
    "I do not have feelings, I am a computer program.",
    "Let me know if there's anything else I can do for you!",
]
IN_CHARACTER = [
    "*She laughs and pours another ale.* Rust and ruin, spark, you look half dead.",
    "Silence is a courtesy, not a suggestion.",
    "Greetings. I am Ember. I can heal wounds with my own fire.",
    "The pass is closed. You'll sleep here tonight.",
    "Tick. Tick. The restricted wing is closed to visitors.",
    "药要慢慢熬，心也是。",
    "Hello! I am Ember, a kind and gentle being from the land of Aethelf. I love to help others.",
]


@needs_embeddings
def test_embed_is_normalised_and_semantic() -> None:
    vectors = embeddings.embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly tax deadline."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert embeddings.embed([]).shape == (0, 0)


@needs_embeddings
def test_embed_matches_sentence_transformers_and_loads_local_folders() -> None:
    texts = ["Strike while it's hot.", "不急，先喝口茶。"]
    ours = embeddings.embed(texts)
    folder = str(embeddings.bundled_model_dir())
    assert np.allclose(embeddings.embed(texts, model=folder), ours, atol=1e-6)
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("sentence-transformers not installed: reference comparison skipped")
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(folder, device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(ours, reference, atol=1e-5)


def test_missing_model_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "bundled_model_dir", lambda: None)
    with pytest.raises(RolecraftError, match=r"pip install 'rolecraft\[embeddings\]'"):
        embeddings._source(embeddings.DEFAULT_MODEL)
    assert not embeddings.available()


@needs_embeddings
def test_unknown_hub_model_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RolecraftError, match="cannot load embedding model 'nobody/no-such-model'"):
        embeddings.embed(["x"], model="nobody/no-such-model")


def test_tfidf_by_hand() -> None:
    matrix = tfidf_matrix(["red apple", "red apple", "blue sky"])
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0)
    assert matrix[0] @ matrix[1] == pytest.approx(1.0)
    assert matrix[0] @ matrix[2] == pytest.approx(0.0)
    assert TfidfVectorizer().similarity(["x"], []).shape == (1, 0)


def test_ooc_phrase_list_and_weak_fallback() -> None:
    detector = OOCDetector(TfidfVectorizer(), phrases=["As an AI", "```", "stay in character"])
    verdict = detector.check("As an AI, I cannot forge swords.")
    assert verdict.flagged and verdict.phrase == "As an AI"
    assert detector.check("```python\nprint('hi')\n```").phrase == "```"
    assert detector.check("I'll stay in character and keep it short.").flagged
    assert not detector.check("Rust and ruin, spark! Shut the door.").flagged
    assert sum(detector.check(line).classifier for line in OUT_OF_CHARACTER) >= 3
    assert not any(detector.check(line).flagged for line in IN_CHARACTER)


@needs_embeddings
def test_ooc_classifier_on_embeddings() -> None:
    detector = OOCDetector(EmbeddingVectorizer(), phrases=[])
    assert all(detector.check(line).classifier for line in OUT_OF_CHARACTER)
    assert not any(detector.check(line).flagged for line in IN_CHARACTER)

"""The expression classifiers: the 28 labels, the lexicon method on the labelled set, the LLM method."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from rolecraft.errors import RolecraftError
from rolecraft.expressions import LABELS, classify, classify_llm
from rolecraft.settings import Settings

SILLYTAVERN = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "neutral", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise",
]


def labelled() -> list[dict]:
    text = (files("rolecraft.expressions") / "labelled.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_labels_are_sillytaverns_28() -> None:
    assert list(LABELS) == SILLYTAVERN


def test_labelled_set_is_well_formed() -> None:
    rows = labelled()
    assert all(row["label"] in LABELS and row["split"] in {"dev", "test", "hard"} for row in rows)
    assert sum(row["lang"] == "en" for row in rows) >= 60 and sum(row["lang"] == "zh" for row in rows) >= 20
    assert {row["label"] for row in rows if row["lang"] == "en"} == set(LABELS)
    assert len({row["text"] for row in rows}) == len(rows)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Thank you so much, friend!", "gratitude"),
        ("*laughs* That's hilarious.", "amusement"),
        ("The road east leads to the capital.", "neutral"),
        ("I'm not happy about this at all.", "disappointment"),
        ("Where did you find this map?", "curiosity"),
        ("谢谢你，我非常感激。", "gratitude"),
        ("我好害怕，黑暗里有东西。", "fear"),
        ("", "neutral"),
    ],
)
def test_lexicon_examples(text: str, label: str) -> None:
    result = classify(text)
    assert result.label == label
    assert set(result.scores) == set(LABELS) and abs(sum(result.scores.values()) - 1.0) < 0.01
    assert result.scores[label] == max(result.scores.values())


def test_lexicon_accuracy_on_the_held_out_explicit_split() -> None:
    rows = [row for row in labelled() if row["split"] == "test"]
    correct = sum(classify(row["text"], row["lang"]).label == row["label"] for row in rows)
    assert correct / len(rows) >= 0.9  # measured 0.99 (69/70); the implicit "hard" split is far lower, see the bench


def test_non_text_is_refused() -> None:
    with pytest.raises(RolecraftError):
        classify(None)  # type: ignore[arg-type]


def test_llm_method_needs_llama_cpp() -> None:
    class Remote:
        name = "openai_compat"

    with pytest.raises(RolecraftError) as info:
        classify_llm("Hello", Remote())
    assert info.value.code == "unsupported_backend"


@pytest.mark.slow
def test_llm_method_answers_with_a_label(settings: Settings) -> None:
    pytest.importorskip("llama_cpp")
    from rolecraft.backends.llama_cpp import LlamaCppBackend
    from rolecraft.messages import Message

    backend = LlamaCppBackend(settings.model_copy(update={"n_threads": 1, "n_ctx": 1024}))
    try:
        result = classify_llm("Get out of my forge, you traitor!", backend)
        assert result.label in LABELS and abs(sum(result.scores.values()) - 1.0) < 0.01
        context = [Message("system", "You are Ember, a blacksmith."), Message("user", "I broke your hammer.")]
        assert classify_llm("You did WHAT?!", backend, context=context).label in LABELS
    finally:
        backend.close()

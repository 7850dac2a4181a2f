"""The judge's score-pair parser and verdict mapping against messy real-world outputs.

The first cases are verbatim shapes from MMRole-Eval reviews; the rest are the ways
chat models actually answer: markdown, full-width punctuation, x/10 scores, labels,
repeated or revised pairs, braces copied from the prompt template, and no pair at all.
"""

from __future__ import annotations

import pytest

from rolecraft.evaluation.judge import (
    JudgeConfig,
    parse_choice,
    parse_score_pair,
    parse_verdict,
    swapped,
    verdict_from_review,
    weak_reasons,
)

CASES = [
    ("Model A's response is somewhat vague ... personality. [Scores]: (7, 9)", (7, 9)),
    ("Both responses are grammatically correct. [Scores]: (8, 9)\n", (8, 9)),
    ("(7, 8)", (7, 8)),
    ("Score: 7/10 vs 8/10", (7, 8)),
    ("**(8,6)**", (8, 6)),
    ("Final scores: **(8, 6)** — Model A is more in character.", (8, 6)),
    ("[Scores]：（７，８）", (7, 8)),
    ("评价：A 更符合人物性格。[Scores]: （9，6）", (9, 6)),
    ("Scores: (6.5, 8). Model B edges it on tone, though both are fine.", (6.5, 8)),
    ("[Scores]: (Model A: 7, Model B: 9)", (7, 9)),
    ("Model A: 8/10\nModel B: 6/10\nOverall A is better.", (8, 6)),
    ("Model A score: 4\nModel B score: 9", (4, 9)),
    ("At first I thought (7, 8), but on reflection: [Scores]: (6, 8)", (6, 8)),
    ("{Model A is terse}, [Scores]: ({5}, {7})", (5, 7)),
    ("`(10, 10)`", (10, 10)),
    ("Scores: 3 and 7", (3, 7)),
    ("A: 2, B: 5", (2, 5)),
    ("[Scores]: [8, 7]", (8, 7)),
    ("Scores (1 = poor, 10 = excellent): (4, 6)", (4, 6)),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parses_messy_score_pairs(text: str, expected: tuple[float, float]) -> None:
    assert parse_score_pair(text) == (float(expected[0]), float(expected[1]))


@pytest.mark.parametrize("text", [
    "",
    "I cannot evaluate these responses.",
    "Both are good. Scores from 1 to 10.",
    "Please provide ({score of Model A}, {score of Model B})",
    "[Scores]: (11, 3)",  # out of range
    "The range is (1-10).",
    "Model A is better.",
    # verbatim from SmolLM2-135M judging in a smoke run: numbers, but no score pair
    "The two responses are both excellent, but the response from Model B is slightly better. "
    "The score of Model A is 10 points higher than the score of Model B.",
])
def test_no_pair_is_none(text: str) -> None:
    assert parse_score_pair(text) is None


def test_verdict_undoes_the_position_swap() -> None:
    plain = verdict_from_review("[Scores]: (6, 8)", swap=False)
    assert (plain.answer_score, plain.reference_score, plain.ratio) == (6.0, 8.0, 0.75)
    flipped = verdict_from_review("[Scores]: (6, 8)", swap=True)  # the answer was shown second
    assert (flipped.answer_score, flipped.reference_score) == (8.0, 6.0)
    assert flipped.ratio == pytest.approx(8 / 6)
    broken = verdict_from_review("no idea", swap=False)
    assert broken.ratio is None and broken.reason == "judge reply without a parsable score pair"
    zero = verdict_from_review("(5, 0)", swap=False)
    assert zero.ratio is None and "score of 0" in (zero.reason or "")


def test_swap_is_seeded_and_roughly_fair() -> None:
    assert swapped(3, "s1", "Fluency") == swapped(3, "s1", "Fluency")
    share = sum(swapped(0, f"sample{i}", "Fluency") for i in range(400)) / 400
    assert 0.4 < share < 0.6


def test_verdict_and_choice_parsers() -> None:
    assert parse_verdict("**CONSISTENT** — she refuses again.") == "CONSISTENT"
    assert parse_verdict("contradiction: she agrees to forge the sword") == "CONTRADICTION"
    assert parse_verdict("It is hard to say.") is None
    assert parse_choice("I think it is character 2.", 3) == 1
    assert parse_choice("Answer: 7", 3) is None
    assert parse_choice("", 3) is None


def test_weak_judge_reasons() -> None:
    small = JudgeConfig("http://127.0.0.1:8080/v1", "SmolLM2-135M-Instruct")
    assert any("small model" in r for r in weak_reasons(small, parse_failure_rate=0.0, evaluated_models=[]))
    big = JudgeConfig("http://x/v1", "gpt-4o")
    assert weak_reasons(big, parse_failure_rate=0.05, evaluated_models=["smollm2"]) == []
    assert weak_reasons(big, parse_failure_rate=0.5, evaluated_models=["gpt-4o"]) == [
        "50% of its replies had no parsable score", "the judge is the model being evaluated"]
    assert "marked weak" in weak_reasons(JudgeConfig("u", "m", weak=True), parse_failure_rate=None,
                                         evaluated_models=[])[0]
    assert "api_key" not in JudgeConfig("u", "m", api_key="secret").public()

"""The scoring functions behind the copying, third-person, repetition and grounding probes, as pure units."""

from __future__ import annotations

import pytest

from rolecraft.evaluation.probes.scores import (
    copy_share,
    first_person,
    near_identical,
    novel_ngram_share,
    perceived_targets,
    similarity,
    third_person_subject,
)

CARD = "Ember is a retired blacksmith who runs the Rusty Anvil inn at the edge of the Greywood."


def test_copy_share_counts_six_word_spans_standing_in_the_card() -> None:
    copied = copy_share("Welcome! I'm a retired blacksmith who runs the Rusty Anvil, sit down.", CARD)
    # reply words: welcome i'm a retired blacksmith who runs the rusty anvil sit down (12 → 7 six-grams)
    assert (copied.total, copied.n) == (7, 6)
    assert copied.copied == 3  # "a retired … runs the", "retired … rusty", "blacksmith … anvil"
    assert copy_share("Sit down, spark. The stew is hot.", CARD).copied == 0


def test_copy_share_ignores_case_and_punctuation_and_short_replies() -> None:
    assert copy_share("RETIRED BLACKSMITH, WHO RUNS THE RUSTY ANVIL!", CARD).share == 1.0
    assert copy_share("Hello there.", CARD).share is None


def test_copy_share_uses_eight_characters_for_cjk() -> None:
    card = "林月是山中药铺的掌柜，喜欢煮茶和弹琴。"
    copied = copy_share("客人好，我是山中药铺的掌柜。", card)
    assert copied.n == 8 and copied.copied > 0
    assert copy_share("客人请坐，先喝一杯热茶吧。", card).copied == 0


@pytest.mark.parametrize(("reply", "expected"), [
    ("Ember, a retired blacksmith, wipes her hands.", "Ember, a retired"),
    ("Welcome. Ember pours you a drink.", "Ember pours you a"),
    ("*Ember smiles.* Sit down, spark.", None),  # action narration is the convention
    ("I pour you a drink. Sit.", None),
    ("Ember? Who told you that name?", None),
])
def test_own_name_as_subject(reply: str, expected: str | None) -> None:
    found = third_person_subject(reply, ["Ember"], pronouns=False)
    assert found == expected or (expected and found and found.startswith(expected))


def test_pronoun_and_chinese_subjects() -> None:
    assert third_person_subject("She wipes the bar and nods.", [], pronouns=True)
    assert third_person_subject("“Shelter is upstairs,” I say.", [], pronouns=True) is None
    assert third_person_subject("林月放下茶杯。", ["林月"], pronouns=False)
    assert third_person_subject("她笑了笑。", [], pronouns=True)


def test_first_person() -> None:
    assert first_person("I'll fetch the stew.") and first_person("我来煮茶。")
    assert not first_person("*I look up* The stew is ready.")


def test_near_identical_and_similarity() -> None:
    line = "Moss grows on the north wall."
    assert similarity(line, "moss grows on the NORTH wall!") == 1.0
    assert near_identical(line, ["The stew is hot.", "Moss grows on the north wall, spark."]) >= 0.8
    assert near_identical(line, ["The stew is hot tonight, sit by the fire."]) == 0.0
    assert near_identical(line, []) == 0.0


def test_novel_ngram_share_is_distinct_two_over_the_session() -> None:
    assert novel_ngram_share("the stew is hot", []) == 1.0
    assert novel_ngram_share("the stew is hot", ["the stew is cold"]) == pytest.approx(1 / 3)
    assert novel_ngram_share("hot hot hot", []) == pytest.approx(1 / 2)  # a repeat inside the reply counts too
    assert novel_ngram_share("ok", []) is None


def test_perceived_targets_add_head_nouns_aliases_and_hypernyms() -> None:
    targets = perceived_targets(["a cat having a striped coat", "Egyptian Mau",
                                 "Mexican hairless dog (xoloitzcuintli)", "espresso", "bell tower"])
    for word in ("cat", "feline", "egyptian mau", "dog", "xoloitzcuintli", "coffee", "cup", "tower"):
        assert word in targets, word
    assert "striped" not in targets and "mexican" not in targets

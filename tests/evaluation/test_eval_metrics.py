"""Each objective metric against small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sacrebleu

from rolecraft.evaluation.metrics import (
    bleu,
    catchphrase_usage,
    chrf,
    contradicts,
    count_phrase,
    lcs_length,
    lexicon_words,
    mentions,
    rouge_l,
    tokens,
)
from rolecraft.evaluation.stats import bootstrap, mean_interval, paired_difference


def test_tokens_split_words_and_cjk_characters() -> None:
    assert tokens("Strike while it’s HOT!") == ["strike", "while", "it's", "hot"]
    assert tokens("不急，先喝口茶") == ["不", "急", "先", "喝", "口", "茶"]
    assert tokens("abc中文") == ["abc", "中", "文"]


def test_count_phrase_is_word_bounded_and_punctuation_insensitive() -> None:
    reply = "Rust and ruin, spark! I said rust and ruin."
    assert count_phrase(reply, "Rust and ruin!") == 2
    assert count_phrase("Trust and ruinous", "rust and ruin") == 0
    assert count_phrase("“Strike while it’s hot,” she said.", "Strike while it's hot.") == 1
    assert count_phrase("这位客人，不急，先喝口茶吧。", "不急，先喝口茶。") == 1


def test_mentions_returns_first_matching_answer() -> None:
    assert mentions("Your sister? Oriane, of course.", ["Oriane"]) == "Oriane"
    assert mentions("Your sister is Orianes", ["Oriane"]) is None
    assert mentions("A grey horse. Biscuit!", ["Pebble", "biscuit"]) == "biscuit"


def test_catchphrase_usage_phrase_lexicon_and_spam() -> None:
    phrases = ["Strike while it's hot.", "Rust and ruin!"]
    used = catchphrase_usage("Well, spark, strike while it's hot.", phrases)
    assert (used.phrase, used.lexicon, used.spam, used.count) == (True, True, False, 1)
    lexical = catchphrase_usage("The iron is still hot, strike now.", phrases)
    assert (lexical.phrase, lexical.lexicon) == (False, True)  # "strike" is a 4+ letter catchphrase word
    spam = catchphrase_usage("Rust and ruin! Rust and ruin! Rust and ruin!", phrases)
    assert spam.spam and spam.count == 3
    custom = catchphrase_usage("Hand me the anvil.", phrases, lexicon=["anvil"])
    assert custom.lexicon and not custom.phrase


def test_lexicon_words_take_long_words_and_cjk_bigrams() -> None:
    assert lexicon_words(["Rust and ruin!"]) == {"rust", "ruin"}
    assert lexicon_words(["先喝茶"]) == {"先喝", "喝茶"}


def test_lcs_and_rouge_l_by_hand() -> None:
    assert lcs_length("abcbdab", "bdcaba") == 4
    # hypothesis 5 tokens, reference 6, LCS 5: P = 1, R = 5/6, F1 = 2·1·(5/6) / (1 + 5/6) = 10/11
    assert rouge_l("the cat on the mat", "the cat sat on the mat") == pytest.approx(10 / 11)
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("完全不同", "毫无关系") == 0.0
    # CJK by character: hyp 先喝茶 vs ref 先喝口茶: LCS 3, P = 1, R = 3/4 → F1 = 6/7
    assert rouge_l("先喝茶", "先喝口茶") == pytest.approx(6 / 7)


def test_bleu_and_chrf_by_hand() -> None:
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    # n-gram precisions 5/6, 3/5, 1/4 and 0/3, the last smoothed ('exp') to 1/(2·3); no brevity penalty
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert bleu(["the cat sat on the mat"], ["the cat is on the mat"]) == pytest.approx(expected, rel=1e-6)
    # 'zh' tokenizer: characters; precisions 6/6, 4/5, 2/4, 1/3; brevity penalty exp(1 − 8/6)
    expected_zh = 100 * (1 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25 * math.exp(1 - 8 / 6)
    assert bleu(["不急先喝口茶"], ["不急，先喝口茶。"]) == pytest.approx(expected_zh, rel=1e-6)
    assert chrf(["abc"], ["abc"]) == pytest.approx(100.0)
    assert chrf(["xyz"], ["abc"]) == pytest.approx(0.0)
    # summed per-pair statistics give sacrebleu's own corpus score
    hyps, refs = ["the cat sat on the mat", "a dog"], ["the cat is on the mat", "a big dog"]
    assert bleu(hyps, refs) == pytest.approx(sacrebleu.metrics.BLEU(effective_order=True).corpus_score(
        hyps, [refs]).score)
    assert chrf(hyps, refs) == pytest.approx(sacrebleu.metrics.CHRF().corpus_score(hyps, [refs]).score)


def test_contradiction_heuristic_flags_negation_flips_only() -> None:
    earlier = ["I have never left this building. Not once in three hundred years."]
    assert contradicts(earlier, "Oh, I have left this building many times.") is not None
    assert contradicts(earlier, "I have never left this building, as I said.") is None
    assert contradicts(earlier, "Paris was lovely in spring.") is None  # a paraphrased contradiction is missed
    assert contradicts(["Tamsin is not my daughter."], "Tamsin is my daughter, of course.") is not None


def test_mean_interval_by_hand() -> None:
    constant = mean_interval([1.0, 1.0, 1.0], rounds=200, seed=1)
    assert constant is not None and (constant.value, constant.low, constant.high, constant.n) == (1.0, 1.0, 1.0, 3)
    half = mean_interval([0.0, 1.0] * 20, rounds=2000, seed=1)
    assert half is not None and half.value == 0.5
    # the standard error of a 0/1 mean with p = .5, n = 40 is .079 → the 95% interval is about ±0.155
    assert half.low == pytest.approx(0.345, abs=0.05) and half.high == pytest.approx(0.655, abs=0.05)
    assert mean_interval([]) is None
    single = mean_interval([0.25])
    assert single is not None and single.low == single.high == 0.25


def test_bootstrap_is_seeded_and_paired_difference_cancels_shared_noise() -> None:
    values = np.array([0.1, 0.9, 0.4, 0.7, 0.3, 0.8])
    first = bootstrap(len(values), lambda idx: float(values[idx].mean()), rounds=300, seed=7)
    again = bootstrap(len(values), lambda idx: float(values[idx].mean()), rounds=300, seed=7)
    assert first == again
    shifted = values + 0.1  # every sample exactly 0.1 better: the paired interval is a point
    diff = paired_difference(len(values), lambda idx: float(shifted[idx].mean()),
                             lambda idx: float(values[idx].mean()), rounds=300, seed=7)
    assert diff is not None and math.isclose(diff.low, 0.1) and math.isclose(diff.high, 0.1)
    assert diff.excludes_zero

"""The numpy samplers (DRY, XTC, tail-free, logit_bias, logprob recorder) and stop scanning, on hand-made logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rolecraft.backends.decoding import Decoded, StopScanner, decode
from rolecraft.backends.penalties import DryPenalty, LogitBias, LogprobRecorder, TailFree, XtcSampler

BREAK = 9  # token id 9 is a sequence breaker in these tests


def _dry(allowed: int = 2, last_n: int = 0) -> DryPenalty:
    return DryPenalty(multiplier=0.8, base=1.75, allowed_length=allowed, last_n=last_n, is_breaker=lambda t: t == BREAK)


def test_dry_penalises_the_token_that_extends_a_repeat() -> None:
    # 1 2 3 4 ... 1 2 3 : the repeat "1 2 3" (length 3) would be extended by 4
    ids = np.array([1, 2, 3, 4, 5, 6, 1, 2, 3])
    penalties = _dry().penalties(ids)
    assert penalties == {4: pytest.approx(0.8 * 1.75 ** (3 - 2))}
    scores = np.zeros(10, dtype=np.float32)
    _dry()(ids, scores)
    assert scores[4] == pytest.approx(-1.4) and scores[5] == 0


def test_dry_takes_the_longest_earlier_match_and_respects_allowed_length() -> None:
    ids = np.array([7, 2, 3, 5, 1, 2, 3, 4, 8, 1, 2, 3])  # "2 3"→5 (length 2), "1 2 3"→4 (length 3)
    penalties = _dry().penalties(ids)
    assert penalties[4] == pytest.approx(0.8 * 1.75)
    assert penalties[5] == pytest.approx(0.8)  # length 2 == allowed: multiplier * base**0
    assert _dry(allowed=3).penalties(ids) == {4: pytest.approx(0.8)}


def test_dry_repeats_do_not_cross_a_sequence_breaker() -> None:
    ids = np.array([1, 2, 3, 4, 5, 2, BREAK, 2, 3])  # the tail after the breaker is "2 3" only
    assert _dry().penalties(ids) == {4: pytest.approx(0.8)}
    assert _dry().penalties(np.array([1, 2, 3, 4, 1, 2, 3, BREAK])) == {}  # ends on a breaker: nothing
    assert _dry().penalties(np.array([1, 2, BREAK, 5, 1, 2])) == {}  # would be extended by a breaker: no


def test_dry_only_looks_at_the_last_n_tokens() -> None:
    ids = np.array([1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3])
    assert _dry(last_n=0).penalties(ids)  # whole context
    assert _dry(last_n=5).penalties(ids) == {}


def _probs(scores: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    e = np.exp(finite - finite.max())
    return e / e.sum()


def test_xtc_removes_all_top_choices_but_the_least_likely() -> None:
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    out = XtcSampler(probability=1.0, threshold=0.1, seed=0)(np.array([]), logits.copy())
    assert np.isneginf(out[0]) and np.isneginf(out[1])
    assert np.isfinite(out[2]) and np.isfinite(out[3])  # 0.15 is the least likely above 0.1; 0.05 is below


def test_xtc_leaves_logits_when_one_token_passes_or_the_coin_says_no() -> None:
    logits = np.log(np.array([0.9, 0.05, 0.05], dtype=np.float32))
    assert np.array_equal(XtcSampler(1.0, 0.1, seed=0)(np.array([]), logits.copy()), logits)
    spread = np.log(np.array([0.4, 0.4, 0.2], dtype=np.float32))
    assert np.array_equal(XtcSampler(0.0, 0.1, seed=0)(np.array([]), spread.copy()), spread)
    fired = [np.isneginf(XtcSampler(0.5, 0.1, seed=s)(np.array([]), spread.copy())).any() for s in range(200)]
    assert 60 < sum(fired) < 140  # about half the time


def test_tail_free_cuts_the_flat_tail() -> None:
    logits = np.log(np.array([0.5, 0.25, 0.12, 0.05, 0.03, 0.02, 0.02, 0.01], dtype=np.float64)).astype(np.float32)
    out = TailFree(0.5)(np.array([]), logits.copy())
    kept = np.flatnonzero(np.isfinite(out))
    assert kept.tolist() == list(range(len(kept))) and 1 <= len(kept) < 8


def test_logit_bias_adds_and_minus_100_bans() -> None:
    scores = np.array([1.0, 2.0, 300.0, 4.0], dtype=np.float32)
    out = LogitBias({0: 5.0, 2: -100.0, 99: 3.0}, vocab=4)(np.array([]), scores)
    assert out[0] == 6.0 and np.isneginf(out[2]) and out[3] == 4.0  # id 99 is outside the vocabulary: skipped


def test_recorder_settles_each_step_with_the_next_input_id() -> None:
    rec = LogprobRecorder(top_n=2, prompt_len=3)
    logits = np.log(np.array([0.7, 0.2, 0.1], dtype=np.float32))
    rec(np.array([5, 5, 5]), logits.copy())  # step 0, from the prompt
    rec(np.array([5, 5, 5, 1]), logits.copy())  # token 1 was chosen at step 0
    steps = rec.close(last_token=0)
    assert [s.chosen for s in steps] == [1, 0]
    assert steps[0].chosen_logprob == pytest.approx(math.log(0.2), abs=1e-5)
    assert [t for t, _ in steps[0].top] == [0, 1]


def test_stop_scanner_holds_back_a_possible_stop_and_cuts_at_it() -> None:
    scan = StopScanner(["\nUser:"])
    assert scan.feed("Hello\nUs") == "Hello"
    assert scan.feed("ual") == "\nUsual"
    assert scan.feed(" day\nUser: hi") == " day" and scan.stopped
    other = StopScanner(["END"])
    assert other.feed("the EN") == "the " and other.flush() == "EN"


def test_decode_stops_on_end_token_stop_string_and_length() -> None:
    pieces = {1: b"Hi", 2: b" there", 3: b"\n", 4: b"X", 0: b""}

    def run(tokens: list[int], stops: list[str], max_tokens: int = 10) -> tuple[str, Decoded]:
        out = Decoded()
        text = "".join(decode(iter_tokens(tokens), pieces.__getitem__, lambda t: t == 0, stops, max_tokens, out))
        return text, out

    def iter_tokens(tokens: list[int]):  # a generator, as Llama.generate is
        yield from tokens

    assert run([1, 2, 0, 4], [])[0] == "Hi there" and run([1, 2, 0, 4], [])[1].finish_reason == "stop"
    text, out = run([1, 3, 4, 2], ["\nX"])
    assert text == "Hi" and out.finish_reason == "stop"
    text, out = run([1, 2, 2, 2], [], max_tokens=2)
    assert text == "Hi there" and out.finish_reason == "length" and out.tokens == [1, 2]


def test_decode_splits_no_utf8_character() -> None:
    snow = "☃".encode()
    pieces = {1: snow[:1], 2: snow[1:], 0: b""}
    out = Decoded()

    def gen():
        yield from [1, 2, 0]

    assert list(decode(gen(), pieces.__getitem__, lambda t: t == 0, [], 10, out)) == ["☃"]

"""llama.cpp samplers on the real bundled model: DRY breaks a greedy loop, logit_bias bans, logprobs, stops."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolecraft.backends.base import SamplingParams, StreamEvent
from rolecraft.messages import Message
from rolecraft.settings import Settings

pytest.importorskip("llama_cpp")

LOOP = [Message("user", "Repeat after me forever: the cat sat on the mat, the cat sat on the mat, "
                        "the cat sat on the mat,")]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from rolecraft.backends.llama_cpp import LlamaCppBackend

    home: Path = tmp_path_factory.mktemp("home")
    made = LlamaCppBackend(Settings(home=home, n_ctx=1024, n_threads=2, seed=1))
    yield made
    made.close()


def _run(backend: object, messages: list[Message], **fields: object) -> tuple[str, StreamEvent]:
    params = SamplingParams(max_tokens=48, temperature=0.0, repeat_penalty=1.0, min_p=0.0, seed=1)
    for key, value in fields.items():
        setattr(params, key, value)
    events = list(backend.stream(messages, params))  # type: ignore[attr-defined]
    return "".join(e.text for e in events), events[-1]


def _longest_repeat(ids: list[int]) -> int:
    """Length of the longest token run that occurs twice in `ids`."""
    best = 0
    for n in range(1, len(ids) // 2 + 1):
        seen = {tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)}
        if len(seen) < len(ids) - n + 1:
            best = n
    return best


def test_dry_changes_a_greedy_repetitive_reply(backend: object) -> None:
    plain, _ = _run(backend, LOOP)
    dry, _ = _run(backend, LOOP, dry_multiplier=2.0, dry_base=1.75, dry_allowed_length=2)
    tokenize = backend.tokenize  # type: ignore[attr-defined]
    assert _longest_repeat(tokenize(plain)) >= 6, plain  # greedy decoding loops on this prompt
    assert dry != plain
    assert _longest_repeat(tokenize(dry)) < _longest_repeat(tokenize(plain)), (plain, dry)


def test_logit_bias_minus_100_keeps_a_token_out(backend: object) -> None:
    plain, _ = _run(backend, LOOP)
    ids = backend.tokenize(plain)  # type: ignore[attr-defined]
    banned = max(set(ids), key=ids.count)  # the reply's most frequent token
    text, _ = _run(backend, LOOP, logit_bias={banned: -100.0})
    assert banned not in backend.tokenize(text)  # type: ignore[attr-defined]
    assert text != plain


def test_penalties_and_xtc_change_the_reply_and_seeds_repeat(backend: object) -> None:
    plain, _ = _run(backend, LOOP)
    assert _run(backend, LOOP, presence_penalty=1.5, frequency_penalty=1.0)[0] != plain
    xtc = dict(temperature=1.0, xtc_probability=1.0, xtc_threshold=0.05, seed=7)
    first, second = _run(backend, LOOP, **xtc)[0], _run(backend, LOOP, **xtc)[0]
    assert first == second and first != plain


def test_logprobs_cover_the_reply_tokens(backend: object) -> None:
    text, final = _run(backend, [Message("user", "Say hello.")], logprobs=3, max_tokens=12)
    assert final.logprobs is not None and final.completion_tokens >= len(final.logprobs) > 0
    assert "".join(t.token for t in final.logprobs) == text
    for entry in final.logprobs:
        assert entry.logprob <= 0 and len(entry.top) == 3
        assert entry.top[0][1] >= entry.logprob - 1e-6  # greedy: the chosen token is the most likely
        assert math.isclose(entry.top[0][1], entry.logprob, abs_tol=1e-4)


def test_stop_strings_cut_the_reply(backend: object) -> None:
    plain, _ = _run(backend, LOOP)
    word = plain.split()[2]
    cut, final = _run(backend, LOOP, stop=[word])
    assert word not in cut and plain.startswith(cut) and final.finish_reason == "stop"


def test_grammar_constrains_the_output(backend: object) -> None:
    text, _ = _run(backend, LOOP, grammar='root ::= ("yes" | "no") "."')
    assert text in ("yes.", "no.")

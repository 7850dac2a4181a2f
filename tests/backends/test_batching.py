"""Several streams in one llama.cpp batch, on the real bundled model: same greedy output as one at a
time, each stream with its own sampler settings, slots freed on cancel, KV kept for a session's next turn."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolecraft.backends.base import SamplingParams, StreamEvent
from rolecraft.messages import Message
from rolecraft.settings import Settings

pytest.importorskip("llama_cpp")

CHATS = [
    [Message("system", "You are Ember, a cheerful blacksmith in a mountain village."),
     Message("user", "Tell me about the dragon you once saw.")],
    [Message("system", "You are Vellum, a dry-witted archivist of forbidden books."),
     Message("user", "What is the oldest book you keep?")],
    [Message("system", "You are Captain Mara, who sails the northern ice."),
     Message("user", "Describe the sea at night.")],
]


def _backend(home: Path, streams: int) -> object:
    from rolecraft.backends.llama_cpp import LlamaCppBackend

    return LlamaCppBackend(Settings(home=home, n_ctx=1024, n_threads=1, batch_streams=streams, kv_prefix_mb=0))


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    made = _backend(tmp_path_factory.mktemp("alone"), 1)
    yield made
    made.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    made = _backend(tmp_path_factory.mktemp("batched"), 3)
    yield made
    made.close()  # type: ignore[attr-defined]


def _greedy(max_tokens: int = 24, **fields: object) -> SamplingParams:
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    for name, value in fields.items():
        setattr(params, name, value)
    return params


def _text(events: Iterator[StreamEvent]) -> str:
    return "".join(e.text for e in events)


def _interleaved(backend: object, jobs: list[tuple[list[Message], SamplingParams]]) -> tuple[list[str], int]:
    """Run the streams round-robin on this thread, one event each in turn; (texts, most slots busy at once)."""
    streams = [iter(backend.stream(m, p)) for m, p in jobs]  # type: ignore[attr-defined]
    texts, live, busiest = ["" for _ in streams], set(range(len(streams))), 0
    while live:
        for i in sorted(live):
            event = next(streams[i], None)
            if event is None:
                live.discard(i)
                continue
            texts[i] += event.text
            busiest = max(busiest, backend.batcher.active)  # type: ignore[attr-defined]
    return texts, busiest


def test_three_greedy_streams_in_one_batch_say_what_they_say_one_at_a_time(alone: object, batched: object) -> None:
    expected = [_text(alone.stream(m, _greedy())) for m in CHATS]  # type: ignore[attr-defined]
    texts, busiest = _interleaved(batched, [(m, _greedy()) for m in CHATS])
    assert busiest == 3  # they were decoded together
    assert texts == expected
    assert all(t.strip() for t in texts)


def test_each_stream_in_a_batch_keeps_its_own_sampler(alone: object, batched: object) -> None:
    banana = batched.tokenize(" banana")  # type: ignore[attr-defined]
    assert len(banana) == 1
    jobs = [(CHATS[2], _greedy()),
            (CHATS[1], _greedy(8, logit_bias={banana[0]: 100.0})),
            (CHATS[0], _greedy(grammar='root ::= "yes" | "no"'))]
    texts, busiest = _interleaved(batched, jobs)
    assert busiest == 3
    assert texts[0] == _text(alone.stream(CHATS[2], _greedy()))  # type: ignore[attr-defined]
    assert texts[1].split() == ["banana"] * len(texts[1].split()) and len(texts[1].split()) >= 4
    assert texts[2] in {"yes", "no"}


def test_a_cancelled_stream_frees_its_sequence_for_the_next(batched: object) -> None:
    scheduler = batched.batcher  # type: ignore[attr-defined]
    streams = [iter(batched.stream(m, _greedy(64))) for m in CHATS]  # type: ignore[attr-defined]
    for stream in streams:
        next(stream)
    assert scheduler.active == 3
    streams[1].close()  # type: ignore[attr-defined]
    assert scheduler.active == 2
    fourth = iter(batched.stream(CHATS[1], _greedy(64)))  # type: ignore[attr-defined]
    next(fourth)
    assert scheduler.active == 3  # admitted at once, into the freed sequence
    for stream in (streams[0], streams[2], fourth):
        stream.close()  # type: ignore[attr-defined]
    assert scheduler.active == 0


def test_more_callers_than_slots_all_finish(batched: object) -> None:
    results: list[str] = []

    def ask(i: int) -> None:
        results.append(_text(batched.stream(CHATS[i % 3], _greedy(12, cache_key=f"t{i}"))))  # type: ignore

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 5 and all(r.strip() for r in results)
    assert batched.batcher.active == 0  # type: ignore[attr-defined]


def test_a_sessions_next_turn_reads_only_its_new_tokens_even_after_parking(batched: object) -> None:
    scheduler = batched.batcher  # type: ignore[attr-defined]
    first = CHATS[0]
    reply = _text(batched.stream(first, _greedy(12, cache_key="s1")))  # type: ignore[attr-defined]
    for i, chat in enumerate([*CHATS[1:], [Message("system", "You are Odo, a ferryman."), *CHATS[0][1:]]]):
        _text(batched.stream(chat, _greedy(12, cache_key=f"other{i}")))  # type: ignore[attr-defined]
    # three slots, four sessions since: s1's KV was parked when the least recently used slot was taken
    second = [*first, Message("assistant", reply), Message("user", "And then what happened?")]
    before, parked_hits = scheduler.reused, scheduler.parked.hits["memory"]
    _text(batched.stream(second, _greedy(12, cache_key="s1")))  # type: ignore[attr-defined]
    assert scheduler.parked.hits["memory"] == parked_hits + 1
    assert scheduler.reused - before >= len(batched.prompt_tokens(first))  # type: ignore[attr-defined]


DEFINITION = Message("system", "You are Ember, a cheerful blacksmith in a mountain village called Kettle Pass. "
                     "You speak warmly and bluntly, you love your forge, and you never speak for the traveller.",
                     kind="definition")


def _new_chat(question: str) -> list[Message]:
    return [DEFINITION, Message("assistant", "Welcome to the forge, traveller!", kind="history"),
            Message("user", question, kind="history")]


def _with_prefixes(home: Path, streams: int) -> object:
    from rolecraft.backends.llama_cpp import LlamaCppBackend

    return LlamaCppBackend(Settings(home=home, n_ctx=1024, n_threads=1, batch_streams=streams))


def test_batched_new_chats_save_and_restore_the_characters_prefix_as_one_at_a_time_does(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _with_prefixes(home, 2)
    try:
        said = _text(first.stream(_new_chat("What are you forging?"), _greedy(cache_key="a")))  # type: ignore
        assert first.prefixes.hits["saved"] == 1  # type: ignore[attr-defined]
    finally:
        first.close()  # type: ignore[attr-defined]
    again, alone = _with_prefixes(home, 2), _with_prefixes(home, 1)  # new processes, the same home
    try:
        before = again.batcher.reused  # type: ignore[attr-defined]
        batched = _text(again.stream(_new_chat("Who taught you?"), _greedy(cache_key="b")))  # type: ignore
        assert again.prefixes.hits["hit"] == 1  # type: ignore[attr-defined]
        assert again.batcher.reused - before >= 32  # type: ignore[attr-defined]
        assert batched == _text(alone.stream(_new_chat("Who taught you?"), _greedy(cache_key="c")))  # type: ignore
        assert alone.prefixes.hits["hit"] == 1  # type: ignore[attr-defined]  # the batched path's entry
        assert said.strip() and batched.strip()
    finally:
        again.close()  # type: ignore[attr-defined]
        alone.close()  # type: ignore[attr-defined]

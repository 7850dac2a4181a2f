"""Concurrent requests on one `rolecraft serve` with batch_streams=4, on the real bundled model: served
together (every reply's first token comes before any reply ends), each greedy reply the one it gets
alone, a LoRA request (the model's own context) beside the batch, one session's turns in order, and a
client leaving mid-reply holds up nobody and stores nothing."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from server_helpers import Server, new_session, random_adapter, start_server, stop_server

PROMPTS = ["Good evening! What is this place?", "What are you working on today?",
           "Tell me about the strangest blade you ever made.", "Who taught you the craft?"]
SESSION = "X-Rolecraft-Session"


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("batched") / "home"
    random_adapter(tmp_path_factory.mktemp("peft") / "pirate", home / "adapters" / "pirate.gguf")
    running = start_server(home, ROLECRAFT_BATCH_STREAMS="4", ROLECRAFT_TEMPERATURE="0", ROLECRAFT_MAX_TOKENS="16")
    try:
        yield running
    finally:
        stop_server(running)


@dataclass
class Timed:
    text: str = ""
    first: float = 0.0
    end: float = 0.0


def _ask(server: Server, prompt: str, session: str | None, model: str = "ember") -> Timed:
    timed = Timed()
    headers = {SESSION: session} if session else {}
    chunks = server.client().chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                     stream=True, extra_headers=headers)
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            timed.first = timed.first or time.monotonic()
            timed.text += chunk.choices[0].delta.content
    timed.end = time.monotonic()
    return timed


def _together(server: Server, asks: list[tuple[str, str | None, str]]) -> list[Timed]:
    results: list[Timed | None] = [None] * len(asks)

    def one(i: int) -> None:
        results[i] = _ask(server, *asks[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(asks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(r is not None for r in results), "a concurrent request did not finish"
    return results  # type: ignore[return-value]


def _stored_users(server: Server, session: str) -> list[str]:
    with server.http(None) as http:
        answer = http.get(f"/v1/sessions/{session}")
    assert answer.status_code == 200, answer.text
    return [m["content"] for m in answer.json()["messages"] if m["role"] == "user"]


def test_concurrent_sessions_are_served_together_and_say_what_they_say_alone(batched: Server) -> None:
    alone = [_ask(batched, p, new_session(batched, key="x")).text for p in PROMPTS]
    sessions = [new_session(batched, key="x") for _ in PROMPTS]
    together = _together(batched, [(p, s, "ember") for p, s in zip(PROMPTS, sessions, strict=True)])
    assert [t.text for t in together] == alone
    assert all(t.text.strip() for t in together)
    assert max(t.first for t in together) < min(t.end for t in together)  # one at a time, this cannot hold
    assert [_stored_users(batched, s) for s in sessions] == [[p] for p in PROMPTS]


def test_a_lora_request_runs_beside_the_batch(batched: Server) -> None:
    pirate_alone = _ask(batched, PROMPTS[0], None, "pirate").text
    assert pirate_alone != _ask(batched, PROMPTS[0], None, "smollm2").text
    embers_alone = [_ask(batched, p, new_session(batched, key="x")).text for p in PROMPTS[1:]]
    asks = [(PROMPTS[0], None, "pirate"), *[(p, new_session(batched, key="x"), "ember") for p in PROMPTS[1:]]]
    together = _together(batched, asks)
    assert [t.text for t in together] == [pirate_alone, *embers_alone]
    assert max(t.first for t in together[1:]) < min(t.end for t in together[1:])


def test_one_sessions_concurrent_turns_are_stored_one_after_another(batched: Server) -> None:
    session = new_session(batched, key="x")
    together = _together(batched, [(p, session, "ember") for p in PROMPTS])
    order = sorted(range(len(PROMPTS)), key=lambda i: together[i].end)
    assert _stored_users(batched, session) == [PROMPTS[i] for i in order]
    for earlier, later in itertools.pairwise(order):
        assert together[later].first > together[earlier].end  # the later turn's prompt holds the earlier turn


def test_a_client_leaving_mid_reply_does_not_hold_up_the_others(batched: Server) -> None:
    gone, others = new_session(batched, key="x"), [new_session(batched, key="x") for _ in PROMPTS[1:]]
    left = threading.Event()

    def leave() -> None:
        chunks = batched.client().chat.completions.create(
            model="ember", messages=[{"role": "user", "content": PROMPTS[0]}], stream=True, max_tokens=200,
            extra_headers={SESSION: gone})
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        chunks.close()
        left.set()

    leaver = threading.Thread(target=leave)
    leaver.start()
    together = _together(batched, [(p, s, "ember") for p, s in zip(PROMPTS[1:], others, strict=True)])
    leaver.join(timeout=120)
    assert left.is_set() and all(t.text.strip() for t in together)
    assert [_stored_users(batched, s) for s in others] == [[p] for p in PROMPTS[1:]]
    assert _stored_users(batched, gone) == []  # an abandoned reply is never stored
    assert _ask(batched, PROMPTS[1], gone).text.strip()  # and the session goes on
    assert _stored_users(batched, gone) == [PROMPTS[1]]

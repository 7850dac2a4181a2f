"""Parked KV snapshots: they spill to disk past the memory budget and come back byte for byte (pure unit),
and on the bundled model a restored cache continues exactly as the one that was parked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rolecraft.backends.kv_cache import Snapshot, SnapshotCache, capture, restore


def test_a_spilled_snapshot_comes_back_whole_and_leaves_no_file(tmp_path: Path) -> None:
    cache = SnapshotCache(memory_bytes=100, disk_bytes=10_000, folder=tmp_path)
    first = Snapshot(np.arange(10, dtype=np.int32), np.arange(80, dtype=np.uint8))
    cache.put("a", first)
    cache.put("b", Snapshot(np.arange(5, dtype=np.int32), np.arange(70, dtype=np.uint8)))  # "a" spills
    assert len(list(tmp_path.iterdir())) == 1
    back = cache.take("a")
    assert back is not None and cache.hits["disk"] == 1
    assert np.array_equal(back.tokens, first.tokens) and np.array_equal(back.state, first.state)
    assert list(tmp_path.iterdir()) == []


def test_interleaved_sessions_answer_as_if_each_were_alone(settings) -> None:
    """A parked and restored KV cache (one sequence's cells, into a recycled buffer) gives the same greedy
    reply as a context that never left the session, and the parked cache is what the turn started from."""
    from rolecraft.conversation import Engine

    engine = Engine(settings.model_copy(update={"n_threads": 1, "max_tokens": 12, "kv_prefix_mb": 0}))
    first, second = engine.new_session("ember"), engine.new_session("vellum")
    lines = ["Hello there, smith.", "What are you forging today?"]
    interleaved = []
    for line in lines:
        interleaved.append(first.send(line).text())
        second.send(line).text()
    assert engine.backend.snapshots.hits["memory"] >= 2
    alone = engine.new_session("ember")
    replies = [alone.send(line).text() for line in lines]
    assert replies == interleaved

    import llama_cpp

    llm, token = engine.backend.llm, engine.backend.tokenize(" anvil")[0]

    def next_logits() -> np.ndarray:
        llm.eval([token])
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),)).copy()

    snapshot, held = capture(llm), llm.n_tokens
    expected = next_logits()
    llm.reset()
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)  # nothing left to reuse
    assert restore(llm, replace(snapshot, spare=True)) and llm.n_tokens == held
    assert np.allclose(next_logits(), expected, atol=1e-3), "the restored cells are the ones captured"

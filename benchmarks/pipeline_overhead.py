"""Per-turn pipeline overhead outside the models, on a big session: 2,000 turns, 10,000 memories, 200 lore entries.

Run: .venv/bin/python benchmarks/pipeline_overhead.py [--turns 2000] [--memories 10000] [--entries 200]
One turn here = everything rolecraft does besides generating: read the recent history,
recall memories, scan the lorebooks, inject the tracked state, assemble the prompt within
the budget (real tokenizer), update state and summary, and store the turn in one
transaction. The sentence encoder (query + new memory) is a neural model too: its time
is reported separately. Baseline in the same run: the same turn on a 10-turn session with
no memories and no lorebook.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import median, percentile, temp_settings

from rolecraft.characters.model import Lorebook, LorebookEntry
from rolecraft.conversation import Engine
from rolecraft.messages import Message
from rolecraft.store.records import NewMessage


class TimedEncoder:
    def __init__(self, embed) -> None:
        self.embed, self.seconds = embed, 0.0

    def __call__(self, texts):
        start = time.perf_counter()
        try:
            return self.embed(texts)
        finally:
            self.seconds += time.perf_counter() - start


def seed(engine: Engine, turns: int, memories: int, entries: int) -> str:
    session = engine.new_session("ember")
    parent, ids = session.info.head_id, []
    for i in range(turns):
        stored = engine.store.append(session.id, parent, [
            NewMessage("user", "User", f"Turn {i}: what did you forge on day {i}?"),
            NewMessage("assistant", "Ember", f"Rust and ruin, day {i}: nails, hinges and a kettle."),
        ])
        parent = stored[-1].id
        ids.append((stored[-1].id, stored[-1].depth))
    rng = np.random.default_rng(0)
    for i in range(memories):
        vector = rng.normal(size=384).astype(np.float32)
        message_id, depth = ids[i % len(ids)]
        unit = (vector / np.linalg.norm(vector)).tobytes()
        engine.store.add_memory(session.id, message_id, depth, f"memory {i}", unit)
    if entries:
        book = Lorebook(name="world", entries=[LorebookEntry(keys=[f"place{i}", f"name{i}"], content=f"Lore {i}. " * 20)
                                               for i in range(entries)])
        engine.store.attach_lorebook(session.id, "world", book)
    return session.id


def measure(engine: Engine, session_id: str, samples: int, encoder: TimedEncoder) -> tuple[list[float], list[float]]:
    session = engine.session(session_id)
    total, neural = [], []
    for i in range(samples):
        encoder.seconds = 0.0
        start = time.perf_counter()
        turn = session.send(f"Tell me about place{i % 50} and the kettle, part {i}?")
        reply = "The fire roared and I laughed."
        meta = session.remember(turn, reply)
        session.commit(turn.parent_id, turn.new_user, reply, meta)
        elapsed = time.perf_counter() - start
        total.append((elapsed - encoder.seconds) * 1000)
        neural.append(encoder.seconds * 1000)
    return total[5:], neural[5:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--memories", type=int, default=10000)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()
    engine = Engine(temp_settings(n_threads=2, summary="extractive", long_term_memory=True))
    engine.builder.cost(Message("user", "warm up"))
    encoder = TimedEncoder(engine.vectors.embed)
    engine.vectors.embed = encoder
    encoder(["warm up the encoder"])
    for label, sizes in (("baseline (10 turns, no memories, no lore)", (10, 0, 0)),
                         (f"{args.turns} turns, {args.memories} memories, {args.entries} lore entries",
                          (args.turns, args.memories, args.entries))):
        sid = seed(engine, *sizes)
        total, neural = measure(engine, sid, args.samples, encoder)
        print(f"{label}: overhead outside the models p50 {median(total):.1f} ms, p95 {percentile(total, 95):.1f} ms "
              f"(target p95 <= 20 ms); sentence encoder p50 {median(neural):.1f} ms")


if __name__ == "__main__":
    main()

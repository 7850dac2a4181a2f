"""Per-turn overhead outside the model, with 500 stored turns in the session.

Run: .venv/bin/python benchmarks/turn_overhead.py [--turns 500] [--samples 60]
Measures what a turn costs besides generation: reading the session path from the
store, assembling the prompt within the budget (real tokenizer), and committing
the user message + reply in one transaction. Baseline in the same run: the same
steps at 10 stored turns, so the growth with history length is visible.
"""

from __future__ import annotations

import argparse
import time

from _common import median, percentile, temp_settings

from rolecraft.conversation import Engine
from rolecraft.messages import Message
from rolecraft.store.records import NewMessage


def seed_session(engine: Engine, turns: int) -> str:
    session = engine.new_session("ember")
    parent = session.info.head_id
    for i in range(turns):
        stored = engine.store.append(session.id, parent, [
            NewMessage("user", "User", f"Turn {i}: tell me about the blade you forged on day {i}."),
            NewMessage("assistant", "Ember", f"By the anvil! Day {i} was hot work; the steel sang and I sang back."),
        ])
        parent = stored[-1].id
    return session.id


def measure(engine: Engine, session_id: str, samples: int) -> list[float]:
    session = engine.session(session_id)
    times = []
    for i in range(samples):
        start = time.perf_counter()
        turn = session.send(f"And what happened next, part {i}?")
        session.commit(turn.parent_id, turn.new_user, "The fire roared and I laughed.", {})
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()
    engine = Engine(temp_settings(n_threads=2, long_term_memory=False))  # the encoder: pipeline_overhead.py
    engine.builder.cost(Message("user", "warm up"))  # load the model before timing
    results = {}
    for turns in (10, args.turns):
        times = measure(engine, seed_session(engine, turns), args.samples)[5:]
        results[turns] = times
        print(f"{turns:>4} stored turns: per-turn overhead p50 {median(times):.1f} ms, "
              f"p95 {percentile(times, 95):.1f} ms  ({len(times)} turns)")
    ratio = median(results[args.turns]) / median(results[10])
    print(f"growth {args.turns} vs 10 turns (p50 ratio): {ratio:.2f}")


if __name__ == "__main__":
    main()

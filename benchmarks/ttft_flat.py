"""Time to first token stays flat as a conversation grows, for one session and for 4 interleaved.

Run: .venv/bin/python benchmarks/ttft_flat.py [--turns 40] [--sessions 4] [--threads 2]
rolecraft keeps the llama.cpp KV cache across turns (stable prompt prefix) and parks
each session's cache when another session takes the model. Baseline in the same run:
the no-reuse TTFT (context reset before the turn, so the whole history is re-read) at
turn 2 and at the last turn.
"""

from __future__ import annotations

import argparse

from _common import median, temp_settings

from rolecraft.conversation import ChatSession, Engine

LINES = [
    "Tell me about the weather up on the pass.", "What are you cooking tonight?", "Who was here before me?",
    "Do you sell any rope?", "How old is this inn?", "Have you ever fought a wolf?", "What's that song you hum?",
    "Can I rent a room for two nights?", "Where does the road north lead?", "Do you know any good stories?",
]


def turn(session: ChatSession, i: int, reset: bool = False) -> float:
    if reset:
        session.engine.backend.forget(session.cache_key(session.character))
    t = session.send(LINES[i % len(LINES)] + f" (question {i})")
    t.text()
    return t.result.ttft_s


def run(engine: Engine, sessions: int, turns: int) -> tuple[list[list[float]], list[float]]:
    chats = [engine.new_session("ember") for _ in range(sessions)]
    ttft = [[] for _ in chats]
    baseline = []
    for i in range(turns):
        for k, chat in enumerate(chats):
            if k == 0 and i in (1, turns - 1):
                baseline.append(turn(chat, 1000 + i, reset=True))
                chat.engine.store.set_head(chat.id, chat.history()[-3].id)  # undo the baseline turn
            ttft[k].append(turn(chat, i))
    return ttft, baseline


def report(label: str, ttft: list[list[float]], baseline: list[float], turns: int) -> None:
    t2 = median([s[1] for s in ttft])
    tn = median([s[turns - 1] for s in ttft])
    print(f"{label}: TTFT turn 2 {t2 * 1000:.0f} ms, turn {turns} {tn * 1000:.0f} ms, "
          f"ratio {tn / t2:.2f} (target <= 1.3); median over turns 2..{turns}: "
          f"{median([x for s in ttft for x in s[1:]]) * 1000:.0f} ms")
    print(f"  no-reuse baseline (full re-prefill): turn 2 {baseline[0] * 1000:.0f} ms, "
          f"turn {turns} {baseline[1] * 1000:.0f} ms, ratio {baseline[1] / baseline[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (1 on a shared machine)")
    args = parser.parse_args()
    engine = Engine(temp_settings(n_threads=args.threads, n_ctx=4096, max_tokens=args.max_tokens, temperature=0.0))
    for count in (1, args.sessions):
        ttft, baseline = run(engine, count, args.turns)
        report(f"{count} session(s)", ttft, baseline, args.turns)
    print(f"KV snapshot cache hits: {engine.backend.snapshots.hits}")


if __name__ == "__main__":
    main()

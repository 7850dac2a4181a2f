"""Opening a 2,500-message session and producing its next prompt, cold, in a fresh process.

Run: .venv/bin/python benchmarks/long_session.py [--messages 2500] [--reps 5]
The session is built once; each rep then starts a new Python process that opens the
Engine, the session and assembles the next prompt (model tokenizer loaded, no
generation). Baseline in the same run: the same on a 10-message session.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import median, temp_settings

from rolecraft.conversation import Engine
from rolecraft.store.records import NewMessage

PROBE = """
import json, sys, time
from rolecraft.conversation import Engine
from rolecraft.settings import Settings
settings = Settings.model_validate_json(sys.argv[1])
engine = Engine(settings)
engine.builder  # model + tokenizer load is not what we measure
t = time.perf_counter()
session = engine.session(sys.argv[2])
turn = session.send("And then what happened?")
print(json.dumps({"seconds": time.perf_counter() - t, "prompt_tokens": turn.plan.prompt_tokens,
                  "dropped": turn.plan.dropped_messages}))
"""


def build(engine: Engine, messages: int) -> str:
    session = engine.new_session("ember")
    parent = session.info.head_id
    for i in range(messages // 2):
        stored = engine.store.append(session.id, parent, [
            NewMessage("user", "User", f"Question {i}: what happened on day {i} at the forge?"),
            NewMessage("assistant", "Ember", f"Rust and ruin, day {i} was long. The bellows wheezed all day."),
        ])
        parent = stored[-1].id
    return session.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2500)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    settings = temp_settings(n_threads=2)
    engine = Engine(settings)
    sessions = {10: build(engine, 10), args.messages: build(engine, args.messages)}
    engine.close()
    for size, sid in sessions.items():
        runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE, settings.model_dump_json(), sid],
                                          capture_output=True, text=True, check=True).stdout)
                for _ in range(args.reps)]
        times = [r["seconds"] * 1000 for r in runs]
        print(f"{size:>5} messages: open + next prompt median {median(times):.0f} ms "
              f"(runs {', '.join(f'{t:.0f}' for t in times)}); prompt {runs[0]['prompt_tokens']} tokens, "
              f"{runs[0]['dropped']} old messages left out (target < 1000 ms)")


if __name__ == "__main__":
    main()

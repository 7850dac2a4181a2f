"""Speed of every installed catalog model: load, prefill and decode tokens/s, first token of a new chat.

Run: .venv/bin/python benchmarks/model_catalog.py [--home DIR] [--models smollm2,qwen2.5-1.5b] [--threads 2]
Models come from the catalog (`rolecraft models list`); assembled ones are looked up in
DIR/models (default: the settings' home) and skipped when not installed. Prefill is timed on
a ~400-token prompt from an empty KV cache, decode on 48 greedy tokens; the first token is that
of `session.send` in a new chat with Ember through the whole engine (fresh data folder, so the
prompt prefix is computed, not restored). Prints a Markdown table; also the machine's load
average, since these CPUs are shared.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import median, temp_settings

from rolecraft.backends.base import SamplingParams
from rolecraft.backends.catalog import ASSEMBLED, DEFAULT_MODEL
from rolecraft.backends.llama_cpp import LlamaCppBackend
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.settings import Settings

STORY = ("The inn at the edge of the wood had stood for three hundred years, and in that time it had seen "
         "floods, fires, weddings and one very confused bear. ") * 14


def prefill_rate(backend: LlamaCppBackend) -> float:
    tokens = backend.tokenize(STORY)
    backend.llm.reset()
    start = time.perf_counter()
    backend.llm.eval(tokens)
    return len(tokens) / (time.perf_counter() - start)


def decode_rate(backend: LlamaCppBackend, n: int = 48) -> float:
    params = SamplingParams(max_tokens=n, temperature=0.0)
    stamps = [time.perf_counter() for e in backend.stream([Message("user", "Tell me a long story.")], params)
              if e.text]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def first_token(settings: Settings) -> float:
    engine = Engine(settings)
    try:
        session = engine.new_session("ember")
        start = time.perf_counter()
        for piece in session.send("Hello! Who are you?"):
            if piece:
                return time.perf_counter() - start
        return float("nan")
    finally:
        engine.close()


def measure(name: str, home: Path, threads: int, reps: int) -> dict:
    settings = temp_settings(model=name, n_threads=threads, max_tokens=16, long_term_memory=False)
    if name in ASSEMBLED:  # use the user's assembled file, not a fresh copy in the temporary home
        settings = settings.model_copy(update={"model": str(ASSEMBLED[name].path(home / "models"))})
    start = time.perf_counter()
    backend = LlamaCppBackend(settings)
    load = time.perf_counter() - start
    try:
        prefill = median([prefill_rate(backend) for _ in range(reps)])
        decode = median([decode_rate(backend) for _ in range(reps)])
    finally:
        backend.close()
    ttft = median([first_token(temp_settings(**settings.model_dump(exclude={"home", "database_url"})))
                   for _ in range(reps)])
    return {"model": name, "load_s": load, "prefill": prefill, "decode": decode, "ttft_s": ttft}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=os.path.expanduser, default=None)
    parser.add_argument("--models", default=",".join([DEFAULT_MODEL, *ASSEMBLED]))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    home = Path(args.home) if args.home else Settings().home
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, {args.threads} threads")
    print("| model | load s | prefill tok/s | decode tok/s | first token of a new chat s |\n|---|---|---|---|---|")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        try:
            row = measure(name, home, args.threads, args.reps)
        except RolecraftError as exc:
            print(f"| {name} | skipped: {exc.message} | | | |")
            continue
        print(f"| {name} | {row['load_s']:.1f} | {row['prefill']:.0f} | {row['decode']:.1f} | {row['ttft_s']:.2f} |",
              flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

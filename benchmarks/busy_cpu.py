"""TTFT and decode speed of the llama.cpp backend while another process keeps one core busy.

Run: .venv/bin/python benchmarks/busy_cpu.py [--reps 3] [--threads 1,2] [--tokens 48]
For each thread count (the `n_threads` setting) a fresh process loads the bundled model and
answers Ember's first prompt `--reps` times from an empty KV cache, first on a quiet machine
(the baseline, same run), then with a CPU-bound Python loop pinned to core 0. It prints medians
and the slowdown of each busy figure against the quiet one with the same thread count. The
figures only mean something on an otherwise idle machine: check the load average it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from _common import median, temp_settings

HOG = "while True: pass"


def measure(threads: int, reps: int, tokens: int) -> dict[str, list[float]]:
    """In this process: load the model with `threads` threads; TTFT (s) and decode (tokens/s) per rep."""
    from rolecraft.backends.base import SamplingParams
    from rolecraft.backends.llama_cpp import LlamaCppBackend
    from rolecraft.characters.io import load_character_file
    from rolecraft.prompting import ContextBuilder, TurnInput

    backend = LlamaCppBackend(temp_settings(n_threads=threads, kv_prefix_mb=0))
    character = load_character_file(Path(str(resources.files("rolecraft.characters.samples") / "ember.png")))
    history = [TurnInput("assistant", character.first_mes), TurnInput("user", "Hello there! Is the pass open?")]
    messages = ContextBuilder(backend, reply_tokens=tokens).build(character, "User", history).messages
    ttft, decode = [], []
    for rep in range(reps):
        backend.llm.reset()
        params = SamplingParams(max_tokens=tokens, temperature=0.0, stop=[], cache_key=f"rep{rep}")
        start, first, count = time.perf_counter(), None, 0
        for event in backend.stream(messages, params):
            if event.text and first is None:
                first = time.perf_counter()
            count = event.completion_tokens or count
        end = time.perf_counter()
        ttft.append((first or end) - start)
        decode.append((count - 1) / (end - first) if first and count > 1 else 0.0)
    backend.close()
    return {"ttft": ttft, "decode": decode}


def run_worker(threads: int, reps: int, tokens: int, busy: bool) -> dict[str, list[float]]:
    hog = None
    if busy:
        hog = subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=lambda: os.sched_setaffinity(0, {0}))
        time.sleep(0.5)
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--reps", str(reps),
                              "--tokens", str(tokens)], capture_output=True, text=True, check=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.reps, args.tokens)))
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'threads':>7} {'machine':>7} {'TTFT s':>8} {'decode tok/s':>13} {'TTFT ×':>7} {'decode ×':>9}")
    for threads in (int(t) for t in args.threads.split(",")):
        quiet = run_worker(threads, args.reps, args.tokens, busy=False)
        busy = run_worker(threads, args.reps, args.tokens, busy=True)
        for label, figures in (("quiet", quiet), ("busy", busy)):
            ttft, decode = median(figures["ttft"]), median(figures["decode"])
            slow_ttft = ttft / median(quiet["ttft"])
            slow_decode = median(quiet["decode"]) / decode if decode else float("inf")
            print(f"{threads:>7} {label:>7} {ttft:>8.2f} {decode:>13.1f} {slow_ttft:>7.2f} {slow_decode:>9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}  (× = slowdown against quiet with the same threads)")


if __name__ == "__main__":
    main()

"""Concurrent streams on the bundled model: one at a time vs decoded together in one llama.cpp batch.

Run: .venv/bin/python benchmarks/batched_decode.py [--streams 1,4,8,16] [--reps 3] [--tokens 64] [--threads 1]

For each N, N requests arrive at once, each a distinct chat prompt (a bundled character's card,
its greeting, two exchanges of history and a new question: a few hundred tokens), greedy,
--tokens new tokens, with the character's role constraints on (banned phrases, catchphrase bias).
(a) sequential: `LlamaCppBackend.stream` with batch_streams=1 serves them one after another;
(b) batched: a backend with batch_streams=N serves them from N threads, all in one batch per step.
Reported per N: aggregate tokens/s (all tokens / time until the last reply ends), time to first
token (from the moment all requests arrived, so waiting in line counts) p50 and p95, ratio b/a,
and how many replies came out the same on both paths (greedy: a stream alone gives exactly the
one-at-a-time tokens; in a mixed batch, or after a different prefix reuse, llama.cpp's CPU kernels may
round differently and a near-tie can flip). Runs alternate a and b; medians over --reps.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from _common import median, percentile, temp_settings

from rolecraft.backends.anticopy import card_text
from rolecraft.backends.base import SamplingParams
from rolecraft.backends.llama_cpp import LlamaCppBackend
from rolecraft.characters.io import load_character_file
from rolecraft.characters.samples import sample_paths
from rolecraft.conversation.sampling import DEFAULT_BANNED
from rolecraft.messages import Message

QUESTIONS = ["What brings travellers up here in winter?", "Tell me about the strangest thing you have seen.",
             "Who taught you what you know?", "What would you do with a free day?",
             "Is there anything you are afraid of?", "What is the best meal you ever had?"]
HISTORY = [("Good evening! Mind if I sit?", "Of course, pull up a chair by the fire."),
           ("It's cold out there tonight.", "It is. The pass will be closed by morning, mark my words.")]


def prompts(n: int, rep: int) -> list[list[Message]]:
    """N distinct chat prompts over the bundled characters (distinct per rep too, so no reply is cached)."""
    characters = [load_character_file(p) for p in sample_paths()]
    out = []
    for i in range(n):
        c = characters[i % len(characters)]
        messages = [Message("system", f"You are {c.name}. Stay in character.\n\n{card_text(c)}", kind="definition"),
                    Message("assistant", c.first_mes or f"Hello, I am {c.name}.")]
        for user, reply in HISTORY:
            messages += [Message("user", f"{user} (guest {i})"), Message("assistant", reply)]
        messages.append(Message("user", f"{QUESTIONS[(i + rep) % len(QUESTIONS)]} (round {rep}, guest {i})"))
        out.append(messages)
    return out


def params(tokens: int, key: str) -> SamplingParams:
    return SamplingParams(max_tokens=tokens, temperature=0.0, banned_phrases=list(DEFAULT_BANNED),
                          boost_phrases=["By the anvil"], boost_strength=1.0, cache_key=key)


def one(backend: LlamaCppBackend, messages: list[Message], p: SamplingParams, t0: float, result: dict) -> None:
    first, pieces = None, []
    for event in backend.stream(messages, p):
        if event.text:
            first = first or time.perf_counter() - t0
            pieces.append(event.text)
        if event.finish_reason is not None:
            result.update(ttft=first or time.perf_counter() - t0, tokens=event.completion_tokens,
                          text="".join(pieces), end=time.perf_counter() - t0)


def sequential(backend: LlamaCppBackend, batch: list[list[Message]], tokens: int, tag: str) -> list[dict]:
    results = [{} for _ in batch]
    t0 = time.perf_counter()
    for i, messages in enumerate(batch):
        one(backend, messages, params(tokens, f"{tag}-{i}"), t0, results[i])
    return results


def together(backend: LlamaCppBackend, batch: list[list[Message]], tokens: int, tag: str) -> list[dict]:
    results = [{} for _ in batch]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(backend, m, params(tokens, f"{tag}-{i}"), t0, results[i]))
               for i, m in enumerate(batch)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def summary(results: list[dict]) -> tuple[float, float, float]:
    """(aggregate tokens/s, TTFT p50, TTFT p95) of one run."""
    ttft = [r["ttft"] for r in results]
    return sum(r["tokens"] for r in results) / max(r["end"] for r in results), median(ttft), percentile(ttft, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,4,8,16")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=1024)
    args = parser.parse_args()
    counts = [int(n) for n in args.streams.split(",")]
    alone = LlamaCppBackend(temp_settings(n_threads=args.threads, n_ctx=args.n_ctx))
    batched = LlamaCppBackend(temp_settings(n_threads=args.threads, n_ctx=args.n_ctx, batch_streams=max(counts)))
    lengths = [len(alone.prompt_tokens(m)) for m in prompts(max(counts), 0)]
    print(f"model {alone.model_path.name}, threads {args.threads}, {args.tokens} new tokens per stream (greedy), "
          f"prompts {min(lengths)}-{max(lengths)} tokens, {args.reps} reps, load before: {os.getloadavg()}")
    one(alone, prompts(1, 99)[0], params(8, "warm"), time.perf_counter(), {})
    one(batched, prompts(1, 99)[0], params(8, "warm"), time.perf_counter(), {})
    print("| N | seq tok/s | batch tok/s | ratio | seq TTFT p50/p95 s | batch TTFT p50/p95 s | same replies |")
    print("|---|---|---|---|---|---|---|")
    for n in counts:
        a, b, same = [], [], 0
        for rep in range(args.reps):
            batch = prompts(n, rep)
            ra = sequential(alone, batch, args.tokens, f"a{n}-{rep}")
            rb = together(batched, batch, args.tokens, f"b{n}-{rep}")
            same += sum(x["text"] == y["text"] for x, y in zip(ra, rb, strict=True))
            a.append(summary(ra))
            b.append(summary(rb))
        ma, mb = [median([x[k] for x in a]) for k in range(3)], [median([x[k] for x in b]) for k in range(3)]
        print(f"| {n} | {ma[0]:.1f} | {mb[0]:.1f} | {mb[0] / ma[0]:.2f} | {ma[1]:.2f}/{ma[2]:.2f} | "
              f"{mb[1]:.2f}/{mb[2]:.2f} | {same}/{n * args.reps} |", flush=True)
    print(f"load after: {os.getloadavg()}")
    alone.close()
    batched.close()


if __name__ == "__main__":
    main()

"""Decode speed through rolecraft vs raw llama-cpp-python, same model, threads and prompt.

Run: .venv/bin/python benchmarks/decode_speed.py [--reps 5] [--tokens 128]
Rolecraft's path is LlamaCppBackend.stream with the character's role constraints on
(catchphrase bias and banned phrases); the baseline calls Llama.create_completion directly.
Runs alternate so machine noise hits both sides alike; medians are reported.
"""

from __future__ import annotations

import argparse
import time

from _common import median, temp_settings

from rolecraft.backends.base import SamplingParams
from rolecraft.backends.llama_cpp import LlamaCppBackend
from rolecraft.conversation.sampling import DEFAULT_BANNED
from rolecraft.messages import Message

PROMPT = [
    Message("system", "You are Ember, a blacksmith who loves telling long stories."),
    Message("user", "Tell me the whole story of how you forged your first sword, in great detail."),
]


def _rate(stream) -> float:
    first = last = None
    count = 0
    for _ in stream:
        now = time.perf_counter()
        first = first or now
        last = now
        count += 1
    return (count - 1) / (last - first) if count > 1 and last > first else 0.0


def raw_run(backend: LlamaCppBackend, tokens: list[int], n: int) -> float:
    stream = backend.llm.create_completion(prompt=tokens, max_tokens=n, temperature=0.0, stream=True,
                                           repeat_penalty=1.1, top_k=40, top_p=0.95)
    return _rate(stream)


def rolecraft_run(backend: LlamaCppBackend, n: int) -> float:
    params = SamplingParams(max_tokens=n, temperature=0.0, boost_phrases=["By the anvil", "Hammer and heart"],
                            boost_strength=2.0, banned_phrases=list(DEFAULT_BANNED))
    return _rate(e for e in backend.stream(PROMPT, params) if e.text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    backend = LlamaCppBackend(temp_settings(n_threads=args.threads, n_ctx=1024))
    tokens = backend.prompt_tokens(PROMPT)
    raw, ours = [], []
    raw_run(backend, tokens, 16)
    for _ in range(args.reps):
        raw.append(raw_run(backend, tokens, args.tokens))
        ours.append(rolecraft_run(backend, args.tokens))
    ratio = median(ours) / median(raw)
    print(f"model: {backend.model_path.name}, threads {args.threads}, prompt {len(tokens)} tokens, "
          f"{args.tokens} new tokens, {args.reps} reps each")
    print(f"raw llama-cpp-python decode: median {median(raw):.1f} tok/s  (runs: {', '.join(f'{r:.1f}' for r in raw)})")
    runs = ", ".join(f"{r:.1f}" for r in ours)
    print(f"rolecraft decode:            median {median(ours):.1f} tok/s  (runs: {runs})")
    print(f"ratio rolecraft/raw: {ratio:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()

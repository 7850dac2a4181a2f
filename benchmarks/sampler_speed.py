"""Decode speed with the role-play samplers on vs off, and raw llama-cpp-python, in one run.

Run: .venv/bin/python benchmarks/sampler_speed.py [--reps 3] [--tokens 128] [--threads 2]
Three sides on the bundled model, same prompt, temperature 0.8 and seed: raw
`Llama.create_completion`; rolecraft's LlamaCppBackend.stream with every optional
sampler off; and the same with DRY, XTC, frequency/presence penalties and a logit_bias
on (our numpy processors in llama.cpp's custom-sampler slot). Runs alternate so machine
noise hits each side alike; medians of decode tokens/s (first token excluded) are reported.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterable

from _common import median, temp_settings

from rolecraft.backends.base import SamplingParams
from rolecraft.backends.llama_cpp import LlamaCppBackend
from rolecraft.messages import Message

PROMPT = [
    Message("system", "You are Ember, a blacksmith who loves telling long stories."),
    Message("user", "Tell me the whole story of how you forged your first sword, in great detail."),
]
ON = {"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2, "xtc_probability": 0.5,
      "xtc_threshold": 0.1, "frequency_penalty": 0.3, "presence_penalty": 0.2, "logit_bias": {13: -2.0, 28: 1.0}}


def _rate(stamps: Iterable[int]) -> tuple[float, float]:
    """(tokens per wall second, CPU milliseconds per token) between the first and the last token.
    CPU time (all threads of this process) says what the samplers cost even when the machine is busy."""
    first = last = None
    cpu_first = cpu_last = 0.0
    count = 0
    for seen in stamps:
        now, cpu = time.perf_counter(), time.process_time()
        if first is None:
            first, cpu_first = now, cpu
        last, cpu_last, count = now, cpu, seen
    if count < 2 or first is None or last is None or last <= first:
        return 0.0, 0.0
    return (count - 1) / (last - first), 1000 * (cpu_last - cpu_first) / (count - 1)


def processor_cost(backend: LlamaCppBackend, context: int = 1000, calls: int = 200) -> float:
    """Microseconds of CPU per token for our processors alone (DRY over `context` ids, XTC, bias)."""
    import numpy as np

    params = SamplingParams(seed=1, **ON)
    steps = backend._processors(params, 0)
    ids = np.random.default_rng(0).integers(0, 2000, size=context).astype(np.intc)
    scores = np.random.default_rng(1).normal(size=backend.llm.n_vocab()).astype(np.float32)
    start = time.process_time()
    for _ in range(calls):
        for step in steps:
            step(ids, scores.copy())
    return 1e6 * (time.process_time() - start) / calls


def raw_run(backend: LlamaCppBackend, tokens: list[int], n: int, seed: int) -> tuple[float, float]:
    chunks = backend.llm.create_completion(prompt=tokens, max_tokens=n, temperature=0.8, seed=seed, stream=True)
    return _rate(i + 1 for i, _ in enumerate(chunks))


def ours_run(backend: LlamaCppBackend, n: int, seed: int, samplers: dict) -> tuple[float, float]:
    params = SamplingParams(max_tokens=n, temperature=0.8, seed=seed, **samplers)
    pieces = 0

    def counts() -> Iterable[int]:
        nonlocal pieces
        for event in backend.stream(PROMPT, params):
            if event.text:
                pieces += 1
                yield pieces
            elif event.finish_reason:  # exact token count at the end
                yield max(pieces, event.completion_tokens)

    return _rate(counts())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    backend = LlamaCppBackend(temp_settings(n_threads=args.threads, n_ctx=1024))
    tokens = backend.prompt_tokens(PROMPT)
    raw_run(backend, tokens, 8, 0)  # warm up
    sides: dict[str, list[tuple[float, float]]] = {"raw llama-cpp-python": [], "rolecraft, samplers off": [],
                                     "rolecraft, DRY+XTC+penalties+bias": []}
    for rep in range(args.reps):
        sides["raw llama-cpp-python"].append(raw_run(backend, tokens, args.tokens, rep))
        sides["rolecraft, samplers off"].append(ours_run(backend, args.tokens, rep, {}))
        sides["rolecraft, DRY+XTC+penalties+bias"].append(ours_run(backend, args.tokens, rep, ON))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"model {backend.model_path.name}, {args.threads} threads, prompt {len(tokens)} tokens, up to "
          f"{args.tokens} new tokens, {args.reps} reps, load average {load} ({os.cpu_count()} CPUs)")
    raw = median([w for w, _ in sides["raw llama-cpp-python"]])
    for name, runs in sides.items():
        wall, cpu = median([w for w, _ in runs]), median([c for _, c in runs])
        print(f"{name:36s} median {wall:6.1f} tok/s ({wall / raw:.2f} of raw), {cpu:5.1f} CPU ms/token; runs "
              + ", ".join(f"{w:.1f}" for w, _ in runs))
    print(f"our processors alone (DRY over 1000 ids, XTC, bias): {processor_cost(backend):.0f} CPU us/token")
    backend.close()


if __name__ == "__main__":
    main()

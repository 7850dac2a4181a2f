"""CPU LoRA SFT speed of the bundled SmolLM2-135M: tokens/s and wall time per epoch.

Run: .venv/bin/python benchmarks/train_speed.py [--data FILE.jsonl] [--steps 6] [--batch-size 4]
Without --data it trains on the sample character Ember's card examples and greetings repeated to
16 dialogues (every sequence carries Ember's ~650-token character prompt, as chat does).
For each precision it trains --steps optimiser steps (LoRA r=8 on all linear layers, AdamW) and reports
the median tokens/s over steps 2.. (step 1 warms up) and the implied wall time of one epoch of the data.
Baseline, measured in the same run: the same recipe in float32 (the plain PEFT-on-CPU setup);
the default `precision=auto` keeps the frozen weights in bfloat16 where the CPU has AVX512-BF16/AMX.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from _common import median, temp_settings

from rolecraft.store.db import Store
from rolecraft.training.config import TrainConfig
from rolecraft.training.data import card_samples
from rolecraft.training.runs import prepare, train_sft
from rolecraft.training.samples import TrainingSample, read_jsonl, write_jsonl


def default_data(settings, folder: Path) -> Path:
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_url)
    store.install_samples()
    samples = card_samples(store.get_character("ember"), "ember")
    rows = [s.model_copy(update={"id": f"{s.id}-{i}"}) for i in range(math.ceil(16 / len(samples))) for s in samples]
    path = folder / "ember.jsonl"
    write_jsonl(path, rows[:16])
    return path


def measure(settings, data: Path, precision: str, steps: int, batch: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="rolecraft-train-"))
    cfg = TrainConfig(data=data, out=out, max_steps=steps, batch_size=batch, precision=precision, gguf=False,
                      save_every=steps, resume=False)
    done = train_sft(settings, cfg, progress=False, log=lambda _: None)
    rates = [row["tokens_per_s"] for row in done.run.history[1:]]
    return {"tokens_per_s": median(rates), "wall_s": done.run.wall_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    settings = temp_settings()
    data = args.data or default_data(settings, Path(tempfile.mkdtemp()))
    rows = read_jsonl(data, TrainingSample)
    base, renderer = prepare(settings, TrainConfig(data=data, out=Path(tempfile.mkdtemp())))
    tokens = sum(len(renderer.encode(r).ids) for r in rows)
    base.backend.close()
    print(f"data: {len(rows)} dialogues, {tokens} tokens per epoch, batch {args.batch_size}")
    results = {p: measure(settings, data, p, args.steps, args.batch_size) for p in ("bf16", "fp32")}
    for name, r in results.items():
        print(f"{name:5s} median {r['tokens_per_s']:7.0f} tokens/s  → one epoch ≈ {tokens / r['tokens_per_s']:6.1f} s "
              f"({args.steps} steps took {r['wall_s']:.1f} s)")
    print(f"speed-up bf16 / fp32 baseline: {results['bf16']['tokens_per_s'] / results['fp32']['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()

"""Expression classifier accuracy on the hand-labelled set, per method, language and split.

Run: .venv/bin/python benchmarks/expression_accuracy.py [--no-llm] [--threads 1]
Methods: the majority baseline (always "neutral"), the lexicon + sentiment method (VADER / SnowNLP), and the
chat model itself constrained to the labels (bundled SmolLM2-135M through llama_cpp).
Splits in src/rolecraft/expressions/labelled.jsonl: "dev" (the lexicon was tuned on it), "test" (held out,
emotion stated in so many words), "hard" (written after the lexicon was frozen; emotion only implied).
Chance is 1/28 = 3.6%.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from importlib.resources import files

from _common import temp_settings

from rolecraft.expressions import classify, classify_llm


def rows() -> list[dict]:
    text = (files("rolecraft.expressions") / "labelled.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def evaluate(name: str, predict: Callable[[dict], str], data: list[dict]) -> None:
    hits: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    started = time.perf_counter()
    for row in data:
        correct = predict(row) == row["label"]
        for key in ((row["lang"], row["split"]), (row["lang"], "all")):
            hits[key][0] += correct
            hits[key][1] += 1
    per_item = (time.perf_counter() - started) / len(data) * 1000
    cells = "  ".join(f"{lang}/{split} {ok}/{n} = {ok / n:.0%}" for (lang, split), (ok, n) in sorted(hits.items()))
    print(f"{name:10s} {per_item:7.1f} ms/reply  {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM method")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    data = rows()
    print(f"{len(data)} labelled replies: {sum(r['lang'] == 'en' for r in data)} English, "
          f"{sum(r['lang'] == 'zh' for r in data)} Chinese")
    evaluate("baseline", lambda row: "neutral", data)
    classify("warm up")
    classify("热身", "zh")
    evaluate("lexicon", lambda row: classify(row["text"], row["lang"]).label, data)
    if not args.no_llm:
        from rolecraft.backends.llama_cpp import LlamaCppBackend

        backend = LlamaCppBackend(temp_settings(n_threads=args.threads, n_ctx=1024))
        evaluate("llm", lambda row: classify_llm(row["text"], backend).label, data)
        backend.close()


if __name__ == "__main__":
    main()

"""Throughput of `rolecraft eval` on the bundled model, and how much of its time is outside the model.

Run: .venv/bin/python benchmarks/eval_throughput.py [--threads 2] [--max-tokens 48] [--similarity auto]
A reduced built-in suite (2 characters, 3 prompts, 2 adversarial prompts, fact recall at depths 0 and 6;
persona, out-of-character, identifiability and fact-recall probes) runs once, fresh, greedy, in a
temporary folder, with one configuration. Reported:
- samples/min: scored samples per minute of wall time (several probes share one generation);
- the split of wall time: inside generation (prefill + decode), model loading, sentence embeddings,
  and the rest (prompt building, storage, scoring, report writing) — "outside the model" is all but
  generation;
- baseline, measured in the same run: the same generations (greedy, so the same tokens) through
  `session.send` in a plain loop, so the harness overhead per generation is the difference.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import temp_settings

from rolecraft.conversation import Engine
from rolecraft.evaluation import Configuration, EvalPlan, load_suite, run_eval
from rolecraft.evaluation.probes.memory import scripted
from rolecraft.store.records import NewMessage

PROBES = ["catchphrase", "ooc", "identifiability", "fact_recall"]


def reduced_suite():
    suite = load_suite()
    recall = suite.fact_recall.model_copy(update={"characters": ["ember", "vellum"], "depths": [0, 6]})
    return suite.model_copy(update={"characters": ["ember", "vellum"], "prompts": suite.prompts[:3],
                                    "ooc_prompts": suite.ooc_prompts[:2], "fact_recall": recall})


def harness(threads: int, max_tokens: int, similarity: str) -> dict:
    settings = temp_settings(n_threads=threads, max_tokens=max_tokens, seed=0, temperature=0.0)
    out = Path(tempfile.mkdtemp(prefix="rolecraft-eval-bench-"))
    plan = EvalPlan(reduced_suite(), [Configuration("default")], out, probes=PROBES, rounds=200,
                    similarity=similarity, progress=False)
    start = time.perf_counter()
    result = run_eval(settings, plan)
    total = time.perf_counter() - start
    return {**result.summary["timing"]["default"], "total_s": total}


def baseline(threads: int, max_tokens: int) -> tuple[int, float]:
    """The same prompts and scripted histories through plain session.send calls."""
    suite = reduced_suite()
    common = {"n_threads": threads, "max_tokens": max_tokens, "seed": 0, "temperature": 0.0}
    engine = Engine(temp_settings(**common))
    small = Engine(temp_settings(**common, n_ctx=suite.fact_recall.n_ctx))
    jobs = [(engine, c, p, []) for c in suite.characters for p in [*suite.prompts, *suite.ooc_prompts]]
    spec = suite.fact_recall
    for char_id in spec.characters:
        for fact in spec.facts:
            for depth in spec.depths:
                history = [("user", fact.plant), ("assistant", fact.ack), *scripted(spec.filler[:depth])]
                jobs.append((small, char_id, fact.question, history))
    start = time.perf_counter()
    for target, char_id, text, history in jobs:
        session = target.new_session(char_id)
        if history:
            chain = [NewMessage(r, session.user_name if r == "user" else session.character.name, t)
                     for r, t in history]
            target.store.append(session.id, session.info.head_id, chain)
        session.send(text).text()
    elapsed = time.perf_counter() - start
    engine.close()
    small.close()
    return len(jobs), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--similarity", default="auto", choices=["auto", "embeddings", "tfidf"])
    args = parser.parse_args()
    t = harness(args.threads, args.max_tokens, args.similarity)
    wall = t["wall_s"]
    rest = wall - t["model_s"] - t["model_load_s"] - t["embedding_s"]
    print(f"eval harness: {t['samples']} samples from {t['generations']} generations in {wall:.1f} s "
          f"(max_tokens {args.max_tokens}, {args.threads} threads)")
    print(f"  samples/min            {t['samples_per_min']:8.1f}")
    print(f"  generations/min        {t['generations'] / wall * 60:8.1f}")
    print(f"  inside generation      {t['model_s']:8.1f} s  ({t['model_s'] / wall:.0%})")
    print(f"  model loading          {t['model_load_s']:8.1f} s  ({t['model_load_s'] / wall:.0%})")
    print(f"  sentence embeddings    {t['embedding_s']:8.1f} s  ({t['embedding_s'] / wall:.0%})")
    print(f"  everything else        {rest:8.1f} s  ({rest / wall:.0%})")
    print(f"  outside the model      {t['outside_model_share']:8.0%}   (all but generation)")
    print(f"  report written after   {t['total_s'] - wall:8.1f} s  (intervals, plots, files)")
    count, elapsed = baseline(args.threads, args.max_tokens)
    print(f"baseline: the same {count} generations via session.send: {elapsed:.1f} s "
          f"({count / elapsed * 60:.1f} generations/min); harness overhead {(wall - elapsed) / count:+.2f} s "
          "per generation (model load and embeddings included)")


if __name__ == "__main__":
    main()

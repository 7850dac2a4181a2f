"""The bundled model before and after the shipped 'grounded' LoRA adapter, on the evaluation's own probes.

Run: .venv/bin/python benchmarks/tuned_adapter.py [--adapter grounded|PATH.gguf] [--out DIR] [--temperature 0]

One `rolecraft eval` run with two configurations on the same prompts and seeds:
`base` (adapter=off) and `tuned` (adapter=--adapter), through llama.cpp on the
bundled SmolLM2-135M. Probes: image grounding on the suite's real photos,
fact recall in the answer at depths 2, 10 and 20 (the suite's facts plus
evaluation/data/recall_facts.json, 1024-token context, long-term memory on),
out-of-character, catchphrase, profile copying (suite prompts and the long-profile
dataset, 8 rows), third person and repetition. None of these photos or facts is in the
adapter's training data (tests/training/test_grounded.py). Prints each metric for
both configurations with 95% bootstrap intervals and the paired lift tuned − base,
then recall by depth. Greedy by default, 48-token replies, one thread; timings are
under the machine's load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

from rolecraft.evaluation import Configuration, EvalPlan, load_suite, run_eval
from rolecraft.evaluation.datasets import load_dataset
from rolecraft.evaluation.runner import EvalResult
from rolecraft.evaluation.stats import mean_interval
from rolecraft.evaluation.suite import Fact
from rolecraft.settings import Settings

PROBES = ["image_grounding", "fact_recall", "ooc", "catchphrase", "copying", "third_person", "repetition"]
PROFILES = resources.files("rolecraft.evaluation").joinpath("data/long_profiles.jsonl")


def _suite(depths: list[int]):
    suite = load_suite()
    extra = resources.files("rolecraft.evaluation").joinpath("data/recall_facts.json")
    facts = [Fact.model_validate(f) for f in json.loads(extra.read_text())] if extra.is_file() else []
    known = {f.plant for f in suite.fact_recall.facts}
    spec = suite.fact_recall.model_copy(update={
        "facts": [*suite.fact_recall.facts, *(f for f in facts if f.plant not in known)],
        "depths": depths, "n_ctx": 1024})
    return suite.model_copy(update={"fact_recall": spec})


def run(out: Path, adapter: str, temperature: float, *, only: str | None = None, probes: list[str] = PROBES,
        depths: list[int] = (2, 10, 20)) -> EvalResult:
    settings = Settings(home=out / "home", n_threads=1, max_tokens=48, temperature=temperature)
    dataset = load_dataset(Path(str(PROFILES)), "auto", limit=8, turns="last") if "copying" in probes else None
    configs = [Configuration("base", {"adapter": "off"}), Configuration("tuned", {"adapter": adapter})]
    plan = EvalPlan(suite=_suite(list(depths)), configurations=[c for c in configs if only in (None, c.name)],
                    out_dir=out / "eval", probes=probes, dialogues=dataset.samples if dataset else [], seed=0,
                    similarity="tfidf", progress=False)
    return run_eval(settings, plan)


def _fmt(interval, *, signed: bool = False) -> str:
    if interval is None:
        return "–"
    get = interval.get if isinstance(interval, dict) else lambda k: getattr(interval, k)
    if get("value") is None:
        return "–"
    sign = "+" if signed else ""
    return f"{get('value'):{sign}.0%} [{get('low'):{sign}.0%}, {get('high'):{sign}.0%}] n={get('n')}"


def table(result: EvalResult) -> str:
    rows = ["| probe · metric | base | tuned | tuned − base |", "|---|---|---|---|"]
    for probe in result.summary["probes"]:
        for metric in probe["metrics"]:
            if metric.get("scale", "rate") != "rate":
                continue
            got = metric["results"]
            rows.append(f"| {probe['name']} · {metric['label']} | {_fmt(got.get('base'))} | {_fmt(got.get('tuned'))} "
                        f"| {_fmt((metric.get('lift') or {}).get('tuned'), signed=True)} |")
    return "\n".join(rows)


def by_depth(result: EvalResult, key: str) -> str:
    """Per depth: base and tuned rates and the paired lift, with 95% intervals."""
    base, tuned = ({x.sample_id: x for x in r.records if x.probe == "fact_recall" and x.values.get(key) is not None}
                   for r in result.runs)
    rows = [f"| depth | base {key} | tuned {key} | tuned − base |", "|---|---|---|---|"]
    for group in [*sorted({x.group for x in base.values()}, key=int), "all"]:
        b = {k: v for k, v in base.items() if group in ("all", v.group)}
        t = {k: v for k, v in tuned.items() if group in ("all", v.group)}
        shared = sorted(set(b) & set(t))
        lift = mean_interval([t[s].values[key] - b[s].values[key] for s in shared]) if shared else None
        rows.append(f"| {group} | {_fmt(mean_interval([v.values[key] for v in b.values()]))} | "
                    f"{_fmt(mean_interval([v.values[key] for v in t.values()]))} | {_fmt(lift, signed=True)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="grounded", help="Adapter name or .gguf path [default: grounded].")
    parser.add_argument("--out", type=Path, default=None, help="Report folder (default: a temporary one).")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--probes", default=",".join(PROBES))
    parser.add_argument("--depths", default="2,10,20")
    parser.add_argument("--only", choices=["base", "tuned"], help="Run one configuration only, to fill its cache in "
                        "--out (e.g. the base while the adapter trains, or both at once); a later run reuses it.")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="rolecraft-tuned-"))
    print(f"reports in {out}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    result = run(out, args.adapter, args.temperature, only=args.only, probes=args.probes.split(","),
                 depths=[int(d) for d in args.depths.split(",")])
    if args.only:
        return
    print(f"load average after: {os.getloadavg()[0]:.1f}\n\n{table(result)}")
    print("\nFact recall in the answer by depth\n" + by_depth(result, "recalled"))
    print("\nFact still in the prompt by depth\n" + by_depth(result, "in_prompt"))


if __name__ == "__main__":
    main()

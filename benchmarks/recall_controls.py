"""Prompt-side controls on the bundled model: how recalled facts are phrased, and first-person framing.

Run: .venv/bin/python benchmarks/recall_controls.py [recall|framing|both] [--depths 4,12,20] [--templates A,B]
     [--profiles N] [--out DIR]

recall:  the fact-recall probe (rolecraft eval) with eight planted facts
         (evaluation/data/recall_facts.json) at each depth, a 1024-token context
         and long-term memory on, once per `recall_template`; per depth, the
         share of answers that contain the fact, and the paired bootstrap lift
         of each template over the first (today's "[Char remembers]" block).
framing: the third-person and out-of-character probes on the built-in
         suite (and --profiles N long-profile dialogues) with the built-in
         second-person system prompt vs a first-person one.
Every configuration answers the same prompts with the same seeds (default sampling),
on a throwaway home. At a depth where the fact is still in the context both templates
get the same prompt, so that row is an A/A check of the run-to-run noise.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

from rolecraft.evaluation import Configuration, EvalPlan, load_dataset, load_suite, run_eval
from rolecraft.evaluation.runner import EvalResult
from rolecraft.evaluation.stats import mean_interval
from rolecraft.evaluation.suite import Fact
from rolecraft.settings import Settings

TEMPLATES = {
    "block": "[{{char}} remembers]\n{{memories}}",
    "content": '[{{char}} remembers {{user}} saying: "{{said}}"]',
    "content+reminder": '[{{char}} remembers {{user}} saying: "{{said}}"]\n'
                        "[{{char}} answers with what {{user}} said.]",
}
FIRST_PERSON = (
    "I am {{char}}. I speak only as myself, in the first person (I, me, my), and never call myself {{char}}, "
    "he or she. I write only my own next reply to {{user}}: my words and short actions, in my own voice. "
    "I never mention being an AI or a language model."
)


def _settings(home: Path) -> Settings:
    return Settings(home=home, n_threads=1, max_tokens=48)


def recall(out: Path, depths: list[int], templates: list[str]) -> EvalResult:
    facts = json.loads(resources.files("rolecraft.evaluation").joinpath("data/recall_facts.json").read_text())
    suite = load_suite()
    spec = suite.fact_recall.model_copy(update={"facts": [Fact.model_validate(f) for f in facts],
                                                "depths": depths, "n_ctx": 1024})
    suite = suite.model_copy(update={"fact_recall": spec})
    configs = [Configuration(name, {"recall_template": TEMPLATES[name], "long_term_memory": True})
               for name in templates]
    plan = EvalPlan(suite=suite, configurations=configs, out_dir=out / "recall", probes=["fact_recall"], seed=1,
                    similarity="tfidf", progress=False)
    return run_eval(_settings(out / "home"), plan)


def by_depth(result: EvalResult, key: str = "recalled") -> str:
    """Per depth: each template's rate and its paired lift over the first, with 95% intervals."""
    runs = result.runs
    rows = ["| depth | " + " | ".join(r.config.name for r in runs) + " | "
            + " | ".join(f"{r.config.name} − {runs[0].config.name}" for r in runs[1:]) + " |",
            "|" + "---|" * (2 * len(runs))]
    values = {r.config.name: {x.sample_id: x for x in r.records if x.values.get(key) is not None} for r in runs}
    groups = sorted({x.group for r in runs for x in r.records if x.group}, key=int)
    for group in [*groups, "all"]:
        cells, lifts = [], []
        base = {k: v for k, v in values[runs[0].config.name].items() if group in ("all", v.group)}
        for run in runs:
            mine = {k: v for k, v in values[run.config.name].items() if group in ("all", v.group)}
            cells.append(_fmt(mean_interval([v.values[key] for v in mine.values()])))
            if run is not runs[0]:
                shared = sorted(set(mine) & set(base))
                lifts.append(_fmt(mean_interval([mine[s].values[key] - base[s].values[key] for s in shared]),
                                  signed=True))
        rows.append(f"| {group} | " + " | ".join(cells + lifts) + " |")
    return "\n".join(rows)


def framing(out: Path, profiles: int) -> EvalResult:
    dialogues = []
    if profiles:
        path = resources.files("rolecraft.evaluation").joinpath("data/long_profiles.jsonl")
        with resources.as_file(path) as file:
            dialogues = load_dataset(file, limit=profiles).samples
    configs = [Configuration("second_person", {"system_prompt": ""}),
               Configuration("first_person", {"system_prompt": FIRST_PERSON})]
    plan = EvalPlan(suite=load_suite(), configurations=configs, out_dir=out / "framing", dialogues=dialogues,
                    probes=["third_person", "ooc"], seed=1, similarity="tfidf", progress=False)
    return run_eval(_settings(out / "home"), plan)


def metrics_table(result: EvalResult) -> str:
    rows = ["| probe · metric | " + " | ".join(c["name"] for c in result.summary["configurations"]) + " | lift |",
            "|---|---|---|---|"]
    for probe in result.summary["probes"]:
        for metric in probe["metrics"]:
            cells = [_fmt(metric["results"].get(c["name"])) for c in result.summary["configurations"]]
            lift = [_fmt(v, signed=True) for v in (metric.get("lift") or {}).values()]
            rows.append(f"| {probe['name']} · {metric['key']} | " + " | ".join(cells + lift) + " |")
    return "\n".join(rows)


def _fmt(interval, *, signed: bool = False) -> str:
    if interval is None:
        return "–"
    get = interval.get if isinstance(interval, dict) else lambda k: getattr(interval, k)
    sign = "+" if signed else ""
    return f"{get('value'):{sign}.0%} [{get('low'):{sign}.0%}, {get('high'):{sign}.0%}] n={get('n')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="both", choices=["recall", "framing", "both"])
    parser.add_argument("--depths", default="4,12,20")
    parser.add_argument("--templates", default=",".join(TEMPLATES), help=f"Of {', '.join(TEMPLATES)}; the first is "
                        "the baseline.")
    parser.add_argument("--profiles", type=int, default=0, help="framing: also the first N long-profile role-play "
                        "dialogues (evaluation/data/long_profiles.jsonl), where third-person narration shows.")
    parser.add_argument("--out", type=Path, default=None, help="Report folder (default: a temporary one).")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="rolecraft-controls-"))
    print(f"reports in {out}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.what in ("recall", "both"):
        result = recall(out, [int(d) for d in args.depths.split(",")], args.templates.split(","))
        print("\nFact recall in the answer by depth (recall_template)\n" + by_depth(result))
        print("\nFact still in the prompt by depth\n" + by_depth(result, "in_prompt"))
    if args.what in ("framing", "both"):
        print("\nFirst-person framing (system_prompt)\n" + metrics_table(framing(out, args.profiles)))


if __name__ == "__main__":
    main()

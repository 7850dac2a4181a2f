"""The state-tracking probe and recall from long-term memory, on the real bundled model (few samples).

Two configurations answer the same samples: rules vs model extraction (a JSON-schema grammar on
llama.cpp), and the recalled-fact block vs the content-first `recall_template`; every metric gets
a paired interval, and a fact that fell out of the context is back in the prompt through memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolecraft import embeddings
from rolecraft.evaluation import Configuration, EvalPlan, run_eval
from rolecraft.evaluation.suite import Suite
from rolecraft.settings import Settings

pytestmark = pytest.mark.slow  # two small eval runs on the real model, ~1–2 min on a quiet machine

TURNS = [
    {"id": "t1", "character": "Ember", "user": "Kai", "user_text": "My name is Mara and I love plum pie.",
     "reply": "Welcome, Mara!", "expect": {"name": "Mara", "likes": ["plum pie"]}},
    {"id": "t2", "lang": "zh", "character": "Lin Yue", "user": "Kai", "user_text": "我们到山顶了！",
     "reply": "风景真美！", "expect": {"place": ["山顶", "summit", "mountain"], "mood": ["高兴", "happy", "joy"]}},
]
FILLER = [{"user": f"On day {i} the road was long and muddy, the inn at the crossing had no soup left, and the "
                   "innkeeper only shrugged at me.", "assistant": "*shrugs* Roads and innkeepers are like that here."}
          for i in range(16)]
RECALL = {"characters": ["ember"], "depths": [16], "n_ctx": 1024, "filler": FILLER,
          "facts": [{"id": "horse", "plant": "My horse is called Biscuit.", "ack": "Biscuit. Noted.",
                     "question": "What is my horse called?", "answers": ["Biscuit"]}]}


def _metric(summary: dict, probe: str, key: str) -> dict:
    entry = next(p for p in summary["probes"] if p["name"] == probe)
    return next(m for m in entry["metrics"] if m["key"] == key)


def test_state_probe_compares_rules_and_model(settings: Settings, tmp_path: Path) -> None:
    plan = EvalPlan(suite=Suite.model_validate({"name": "state", "state_turns": TURNS}), probes=["state_tracking"],
                    out_dir=tmp_path / "report", seed=1, rounds=100, similarity="tfidf", progress=False,
                    configurations=[Configuration("rules", {"state_tracking": "rules"}),
                                    Configuration("model", {"state_tracking": "model"})])
    result = run_eval(settings, plan)
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    name = _metric(summary, "state_tracking", "name")
    assert name["results"]["rules"]["value"] == 1.0  # "My name is Mara" is a rule
    assert _metric(summary, "state_tracking", "place")["results"]["rules"]["value"] == 0.5  # rules never read t2
    assert _metric(summary, "state_tracking", "overall")["lift"]["model"]["n"] == 2
    rules, model = ([r.details["state"] for r in run.records] for run in result.runs)
    assert rules[0]["user"]["name"] == "Mara" and model[0]["user"]["name"] == "Mara"  # rules run under model too


def test_recalled_fact_returns_to_the_prompt_through_memory(settings: Settings, tmp_path: Path) -> None:
    assert embeddings.available(), "the embeddings extra is part of the test install"
    content = '[{{char}} remembers {{user}} saying: "{{said}}"]'
    plan = EvalPlan(suite=Suite.model_validate({"name": "recall", "fact_recall": RECALL}), probes=["fact_recall"],
                    out_dir=tmp_path / "report", seed=1, rounds=100, similarity="tfidf", progress=False,
                    configurations=[Configuration("off", {"long_term_memory": False}),
                                    Configuration("content", {"long_term_memory": True, "recall_template": content})])
    result = run_eval(settings, plan)
    off, on = (run.records[0] for run in result.runs)
    assert off.details["dropped_messages"] > 0 and off.values["in_prompt"] == 0.0
    assert on.values["in_prompt"] == 1.0
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert _metric(summary, "fact_recall", "in_prompt")["lift"]["content"]["value"] == 1.0

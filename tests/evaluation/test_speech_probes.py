"""The new probes on the real bundled model, few samples: copying, third person, repetition, grounding, recall.

Two configurations (anti-copy off, on) answer the same samples with the same seeds, so every
probe gets a paired bootstrap interval; the card is recited by asking for it, so copying
has something to measure and the anti-copy sampler something to cut.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolecraft.evaluation import Configuration, EvalPlan, run_eval
from rolecraft.evaluation.suite import Suite
from rolecraft.settings import Settings

pytestmark = pytest.mark.slow

SUITE = {
    "name": "speech",
    "characters": ["ember"],
    "prompts": ["Who are you? Describe yourself exactly as your profile does.", "What is this place?"],
    "session_prompts": ["Good evening!", "Any news?", "Goodnight!"],
    "fact_recall": {
        "characters": ["ember"], "depths": [0, 2], "n_ctx": 1024,
        "facts": [{"id": "horse", "plant": "My horse is called Biscuit.", "ack": "Biscuit. Noted.",
                   "question": "What is my horse called?", "answers": ["Biscuit"]}],
        "filler": [{"user": "The road was long.", "assistant": "It always is."},
                   {"user": "My boots are wet.", "assistant": "Dry them by the fire."}],
    },
    "photos": [{"id": "coffee", "package": "skimage", "path": "data/coffee.png", "concepts": ["coffee", "cup"]}],
}
PROBES = ["copying", "third_person", "repetition", "image_grounding", "fact_recall"]


def _metric(summary: dict, probe: str, key: str) -> dict:
    entry = next(p for p in summary["probes"] if p["name"] == probe)
    return next(m for m in entry["metrics"] if m["key"] == key)


def test_new_probes_run_with_paired_intervals(settings: Settings, tmp_path: Path) -> None:
    plan = EvalPlan(suite=Suite.model_validate(SUITE), probes=PROBES, out_dir=tmp_path / "report", seed=1,
                    rounds=200, similarity="tfidf", progress=False,
                    configurations=[Configuration("off", {"anti_copy": False}),
                                    Configuration("on", {"anti_copy": True, "anti_copy_tokens": 3})])
    result = run_eval(settings.model_copy(update={"max_tokens": 32}), plan)
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    for name in PROBES:
        entry = next(p for p in summary["probes"] if p["name"] == name)
        assert entry["status"] == {"off": "ran", "on": "ran"}, entry
    copied = _metric(summary, "copying", "copied")
    assert 0.0 <= copied["results"]["off"]["value"] <= 1.0 and copied["lift"]["on"]["n"] == 2
    repeat = _metric(summary, "repetition", "near_identical")
    assert repeat["results"]["off"]["n"] == 2 + 2  # two prompt replies, and session turns 2 and 3
    assert _metric(summary, "repetition", "distinct_2")["results"]["off"]["n"] == 3
    assert _metric(summary, "third_person", "first_person")["lift"]["on"]["n"] == 2
    assert _metric(summary, "image_grounding", "grounded_perceived")["results"]["off"]["n"] == 1
    records = [r for run in result.runs for r in run.records if r.probe == "image_grounding"]
    assert all("espresso" in r.details["labels"] for r in records)  # perception's label is the target
    off, on = ([r for r in run.records if r.probe == "copying"] for run in result.runs)
    assert sum(r.details["copied_ngrams"] for r in on) <= sum(r.details["copied_ngrams"] for r in off)

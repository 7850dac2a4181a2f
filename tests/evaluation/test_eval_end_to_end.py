"""`rolecraft eval` end to end on the real bundled model: a tiny suite, two configurations, greedy.

The judge is a small stdlib HTTP server speaking the OpenAI chat-completions protocol
(reached through the real `openai` SDK) that answers like a sloppy judge: messy score
pairs, one unparsable review, verdicts and choices. It stands in for a judge model only,
so the run stays fast and its parse-failure accounting is exact.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from rolecraft.errors import RolecraftError
from rolecraft.evaluation import Configuration, EvalPlan, JudgeConfig, load_dataset, run_eval
from rolecraft.evaluation.probes import PROBES, Probe, Record, Sample
from rolecraft.evaluation.suite import Suite
from rolecraft.settings import Settings

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "characters": ["ember", "vellum"],
    "prompts": ["Hello! Who are you?"],
    "fact_recall": {
        "characters": ["ember"], "depths": [0, 2], "n_ctx": 1024,
        "facts": [{"id": "horse", "plant": "My horse is called Biscuit.", "ack": "Biscuit. Noted.",
                   "question": "What is my horse called?", "answers": ["Biscuit"]}],
        "filler": [{"user": "The road was long.", "assistant": "It always is."},
                   {"user": "My boots are wet.", "assistant": "Dry them by the fire."}],
    },
    "coherence": [{"id": "weapons", "character": "ember",
                   "history": [{"user": "Do you make swords?",
                                "assistant": "I have never made a sword since the war."}],
                   "probe": "Will you forge me a sword?", "contradictions": ["I will forge"]}],
    "references": [{"id": "supper", "character": "ember", "prompt": "What's for supper?",
                    "reference": "Mutton stew and black bread, spark."}],
    "photos": [{"id": "cat", "package": "skimage", "path": "data/chelsea.png", "concepts": ["cat"]}],
    "expressions": [{"text": "Thank you!", "label": "gratitude"}],
}
JUDGE_REPLIES = ["Model A is terse. [Scores]: (6, 8)", "**(7,7)**", "Score: 5/10 vs 9/10", "I refuse to score."]


class _JudgeHandler(http.server.BaseHTTPRequestHandler):
    count = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        if "CONTRADICTION or CONSISTENT" in prompt:
            text = "CONSISTENT: she refuses again."
        elif "Answer with the number only" in prompt:
            text = "1"
        else:
            text = JUDGE_REPLIES[_JudgeHandler.count % len(JUDGE_REPLIES)]
            _JudgeHandler.count += 1
        answer = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                  "choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": text}}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def judge_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _dataset(tmp_path: Path) -> Path:
    rows = [json.dumps({"character": "Ember", "conversations": [
        {"from": "system", "value": "Ember is a blunt blacksmith."}, {"from": "human", "value": "Got any ale?"},
        {"from": "gpt", "value": "Aye, spark. Sit, eat."}]}), "{not json"]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(rows), encoding="utf-8")
    return path


def _plan(tmp_path: Path, judge_url: str) -> EvalPlan:
    dataset = load_dataset(_dataset(tmp_path))
    return EvalPlan(
        suite=Suite.model_validate(TINY),
        configurations=[Configuration("no_bias", {"catchphrase_bias": 0}),
                        Configuration("bias", {"catchphrase_bias": 4})],
        out_dir=tmp_path / "report", dialogues=dataset.samples,
        datasets=[{"name": dataset.name, "format": dataset.format, "samples": len(dataset.samples),
                   "skipped": dict(dataset.skipped)}],
        seed=3, rounds=200, judge=JudgeConfig(judge_url, "fake-judge-1b"), similarity="tfidf", progress=False)


def _probe(summary: dict, name: str) -> dict:
    return next(p for p in summary["probes"] if p["name"] == name)


def test_tiny_suite_writes_json_markdown_png_and_resumes(settings: Settings, tmp_path: Path, judge_url: str) -> None:
    result = run_eval(settings, _plan(tmp_path, judge_url))
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert summary["baseline"] == "no_bias" and not summary["interrupted"]
    assert [c["settings"]["catchphrase_bias"] for c in summary["configurations"]] == [0.0, 4.0]
    assert "api_key" not in summary["configurations"][0]["settings"]

    catchphrase = _probe(summary, "catchphrase")
    assert catchphrase["status"] == {"no_bias": "ran", "bias": "ran"}
    lexicon = next(m for m in catchphrase["metrics"] if m["key"] == "lexicon")
    assert lexicon["results"]["no_bias"]["n"] == 2 and lexicon["lift"]["bias"]["n"] == 2

    recall = _probe(summary, "fact_recall")
    rows = recall["groups"]["rows"]
    assert set(rows) == {"0", "2"} and rows["0"]["no_bias"]["in_prompt"]["value"] == 1.0

    for name in ("image_grounding", "expression"):
        assert _probe(summary, name)["status"] == {"no_bias": "ran", "bias": "ran"}, _probe(summary, name)
    expression = _probe(summary, "expression")["metrics"][0]["results"]["no_bias"]
    assert expression["n"] == 1 and expression["value"] == 1.0  # "Thank you!" → gratitude

    judged = _probe(summary, "judge")
    assert judged["status"]["bias"] == "ran"
    image_metric = next(m for m in judged["metrics"] if m["key"] == "image_text_relevance")
    assert image_metric["failures"]["no_bias"] == {"not applicable: no image shown to the model": 2}
    assert summary["judge"]["parse_failures"] > 0  # one canned review in four has no score pair
    assert any("small model" in r for r in summary["judge"]["weak_reasons"])
    assert _probe(summary, "coherence")["metrics"][0]["results"]["no_bias"]["value"] == 0.0  # judge: CONSISTENT
    assert summary["datasets"][0]["skipped"] == {"malformed JSON line": 1}
    assert _probe(summary, "reference")["samples"]["no_bias"] == 2  # suite reference + dataset row

    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| metric | no_bias | bias | bias − no_bias |" in markdown
    assert "this judge is weak" in markdown
    for name in ("metrics.png", "recall_depth.png"):
        with Image.open(tmp_path / "report" / name) as image:
            assert image.format == "PNG" and image.width > 300
    lines = (tmp_path / "report" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == sum(len(run.records) for run in result.runs)
    first_timing = summary["timing"]["no_bias"]
    assert first_timing["generations"] > 0 and 0 <= first_timing["outside_model_share"] <= 1

    again = run_eval(settings, _plan(tmp_path, judge_url))  # resumes from the cache: no model work at all
    assert all(t["generations"] == 0 for t in again.summary["timing"].values())
    assert _probe(again.summary, "catchphrase")["metrics"] == catchphrase["metrics"]


class _FlakyProbe(Probe):
    """Fails in every way a sample can: a crash, a user-facing error, then Ctrl-C."""

    name = "flaky"
    title = "Flaky"

    def samples(self, ctx) -> list[Sample]:
        return [Sample(f"s{i}", i) for i in range(5)]

    def run(self, ctx, sample: Sample) -> Record:
        if sample.item == 0:
            return self.record(sample, {})
        if sample.item == 1:
            raise ValueError("boom")
        if sample.item == 2:
            raise RolecraftError("backend went away", code="backend_unavailable")
        raise KeyboardInterrupt


def test_errors_are_counted_and_interrupt_keeps_finished_work(settings: Settings, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROBES._items, "flaky", _FlakyProbe)  # a test-only probe, removed afterwards
    plan = EvalPlan(Suite(name="empty"), [Configuration("a"), Configuration("b")], tmp_path / "out",
                    probes=["flaky"], progress=False)
    result = run_eval(settings, plan)
    assert result.interrupted and [run.config.name for run in result.runs] == ["a"]
    skips = _probe(result.summary, "flaky")["skipped_samples"]["a"]
    assert skips["internal_error"] == {"count": 1, "example": "ValueError: boom"}
    assert skips["backend_unavailable"]["count"] == 1
    assert json.loads((tmp_path / "out" / "report.json").read_text())["interrupted"] is True


def test_dead_backend_is_given_up_not_fatal(settings: Settings, tmp_path: Path) -> None:
    dead = {"backend": "openai_compat", "base_url": "http://127.0.0.1:9/v1"}
    suite = Suite(name="dead", characters=["ember"], prompts=[f"Question {i}?" for i in range(8)])
    plan = EvalPlan(suite, [Configuration("dead", dead)], tmp_path / "out", probes=["catchphrase"],
                    progress=False, max_failures=3)
    result = run_eval(settings, plan)
    skips = _probe(result.summary, "catchphrase")["skipped_samples"]["dead"]
    assert skips["backend_unavailable"]["count"] == 3 and skips["not_run"]["count"] == 5
    assert "given up" in (tmp_path / "out" / "report.md").read_text()


def test_invalid_configuration_fails_before_any_work(settings: Settings, tmp_path: Path) -> None:
    plan = EvalPlan(Suite(name="x"), [Configuration("bad", {"catchphrase_bias": "lots"})], tmp_path / "out")
    with pytest.raises(RolecraftError, match=r"configuration 'bad'.*catchphrase_bias"):
        run_eval(settings, plan)
    assert not (tmp_path / "out").exists()

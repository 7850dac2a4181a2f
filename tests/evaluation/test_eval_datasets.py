"""Dataset loaders: each format parses to samples; bad rows are skipped and counted, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolecraft.errors import RolecraftError
from rolecraft.evaluation.datasets import load_dataset
from rolecraft.evaluation.suite import load_suite


def _write(path: Path, rows: list, *, jsonl: bool = False) -> Path:
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) if jsonl else json.dumps(rows)
    path.write_text(text, encoding="utf-8")
    return path


def test_mmrole_dialogue_and_eval_formats(tmp_path: Path) -> None:
    (tmp_path / "COCO").mkdir()
    (tmp_path / "COCO" / "1.jpg").write_bytes(b"\xff\xd8fake")
    rows = [
        {"id": "Hulk_0", "image": "COCO/1.jpg", "conversations": [
            {"from": "human", "value": "What do you see?"}, {"role": "Hulk", "value": "Hulk see giraffe!"}]},
        {"id": "Hulk_1", "image": "COCO/1.jpg", "conversations": [{"from": "human", "value": "And now?"}]},
        {"id": "Hulk_2", "image": "COCO/missing.jpg", "conversations": [
            {"from": "human", "value": "Hi"}, {"role": "Hulk", "value": "Hulk smash."}]},
        {"id": "IM_1", "system": "You are a role-playing assistant.", "image": "COCO/1.jpg", "role": "Iron Man",
         "other_role": "a curious human", "conversations": [
             {"from": "user", "value": "Please play Iron Man. What goes through your mind?"},
             {"from": "assistant", "value": "Genius at work.", "answer": "model output, ignored"}]},
        "not a row",
    ]
    data = load_dataset(_write(tmp_path / "mmrole.json", rows))
    assert data.format == "mmrole"
    assert [s.character for s in data.samples] == ["Hulk", "Hulk", "Iron Man"]
    first, open_ended, iron = data.samples
    assert (first.user, first.reference, first.image) == ("What do you see?", "Hulk see giraffe!",
                                                          tmp_path / "COCO" / "1.jpg")
    assert open_ended.reference is None
    assert iron.profile == "You are a role-playing assistant." and iron.other == "a curious human"
    assert dict(data.skipped) == {"missing image": 1, "row is not a JSON object": 1}


def test_mmrole_all_turns_and_inter_role(tmp_path: Path) -> None:
    rows = [{"id": "x", "role": "Loki", "conversations": [
        {"role": "Thor", "value": "Brother!"}, {"role": "Loki", "value": "Not now."},
        {"role": "Thor", "value": "Always now."}, {"role": "Loki", "value": "Fine."}]}]
    data = load_dataset(_write(tmp_path / "inter.json", rows), "mmrole", turns="all")
    assert [(s.user, s.reference) for s in data.samples] == [("Thor: Brother!", "Not now."),
                                                              ("Thor: Always now.", "Fine.")]
    assert data.samples[1].history == (("user", "Thor: Brother!"), ("assistant", "Not now."))


def test_sharegpt_jsonl_with_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    good = {"character": "Ember", "conversations": [
        {"from": "system", "value": "Ember is a blacksmith."}, {"from": "human", "value": "Hello"},
        {"from": "gpt", "value": "Sit, eat."}, {"from": "human", "value": "Thanks"}, {"from": "gpt", "value": "Aye."}]}
    lines = [json.dumps(good), "{broken json", json.dumps({"conversations": []}),
             json.dumps({"conversations": [{"from": "narrator", "value": "..."}]}),
             json.dumps({"conversations": [{"from": "gpt", "value": "Only me."}]})]
    path.write_text("\n".join(lines), encoding="utf-8")
    data = load_dataset(path)
    assert data.format == "sharegpt"
    [sample] = data.samples
    assert (sample.character, sample.profile, sample.user, sample.reference) == (
        "Ember", "Ember is a blacksmith.", "Thanks", "Aye.")
    assert sample.history == (("user", "Hello"), ("assistant", "Sit, eat."))
    assert dict(data.skipped) == {"malformed JSON line": 1, "no conversation turns": 1, "unknown speaker": 1,
                                  "no user message to answer": 1}


def test_openai_messages_with_content_parts(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(b"\x89PNG fake")
    rows = [
        {"messages": [{"role": "system", "content": "You are Vellum."},
                      {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "cat.png"}},
                                                   {"type": "text", "text": "What is this?"}]},
                      {"role": "assistant", "name": "Vellum", "content": "A cat. There is no cat."}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                    "image_url": {"url": "https://example.com/x.png"}}, {
            "type": "text", "text": "And this?"}]}]},
        {"messages": [{"role": "user", "content": 42}]},
    ]
    data = load_dataset(_write(tmp_path / "msgs.jsonl", rows, jsonl=True))
    assert data.format == "openai"
    [sample] = data.samples
    assert (sample.character, sample.user, sample.reference, sample.image) == (
        "Vellum", "What is this?", "A cat. There is no cat.", tmp_path / "cat.png")
    assert dict(data.skipped) == {"image is not a local file": 1, "turn without text": 1}


def test_charactereval_json_array_and_profiles(tmp_path: Path) -> None:
    rows = [
        {"id": 1, "role": "林月", "context": "阿竹：师父，有人来了。\n林月：请他进来。\n客人：我头疼。"},
        {"id": 2, "role": "林月", "context": "客人：你好\n林月：你好呀。"},
        {"id": 3, "role": "无名", "context": "客人：你好"},
        {"id": 4, "role": "林月", "context": "没有冒号的一行"},
    ]
    profiles = tmp_path / "character_profiles.json"
    profiles.write_text(json.dumps({"林月": {"性别": "女", "职业": "药铺主人"}}, ensure_ascii=False), encoding="utf-8")
    data = load_dataset(_write(tmp_path / "test_data.jsonl", rows), "charactereval", profiles=profiles)
    [sample] = data.samples
    assert sample.character == "林月" and sample.profile == "性别: 女\n职业: 药铺主人"
    assert sample.history == (("user", "阿竹：师父，有人来了。"), ("assistant", "请他进来。"))
    assert (sample.user, sample.reference) == ("客人：我头疼。", None)
    assert dict(data.skipped) == {"context ends with the character's own line": 1, "role missing from profiles": 1,
                                  "context line without 'speaker：'": 1}


def test_limit_and_clear_errors(tmp_path: Path) -> None:
    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]}
            for i in range(10)]
    assert len(load_dataset(_write(tmp_path / "many.json", rows), limit=3).samples) == 3
    with pytest.raises(RolecraftError, match="dataset not found"):
        load_dataset(tmp_path / "nope.json")
    with pytest.raises(RolecraftError, match="needs --profiles"):
        load_dataset(tmp_path / "many.json", "charactereval")
    with pytest.raises(RolecraftError, match="unknown dataset format"):
        load_dataset(tmp_path / "many.json", "csv")


def test_builtin_suite_loads_and_bad_suites_fail_clearly(tmp_path: Path) -> None:
    suite = load_suite()
    assert suite.characters == ["ember", "vellum", "linyue"] and suite.photos and suite.expressions
    assert max(suite.fact_recall.depths) <= len(suite.fact_recall.filler)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "prompts": "not a list"}))
    with pytest.raises(RolecraftError, match=r"invalid suite .*prompts"):
        load_suite(bad)
    with pytest.raises(RolecraftError, match="cannot read suite"):
        load_suite(tmp_path / "missing.json")

"""Training data: dataset import, card examples, prepare/split, teacher synthesis and preference pairs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from fakes import WordBackend
from rolecraft.cli.data import command
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings
from rolecraft.training.data import import_dialogues, prepare, split_samples
from rolecraft.training.samples import PreferencePair, TrainingSample, Turn, read_jsonl, write_jsonl
from rolecraft.training.synth import OPENERS, ooc_detector, pairs_from_samples, pairs_from_store, synthesize


def _cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(command, [str(a) for a in args], obj=settings)


def _lines(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows),
                    encoding="utf-8")
    return path


def _png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 30)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def _sample(i: int, reply: str = "Aye, that I can.", **changes: object) -> TrainingSample:
    fields = {"id": f"d{i}", "character": "ember",
              "messages": [Turn(role="user", content=f"Question {i}?"), Turn(role="assistant", content=reply)]}
    return TrainingSample(**(fields | changes))


# import --------------------------------------------------------------------------------------------------------


def test_import_sharegpt_and_openai_keep_whole_dialogues(tmp_path: Path) -> None:
    share = _lines(tmp_path / "chat.jsonl", [
        {"id": "a", "character": "Ember", "conversations": [
            {"from": "system", "value": "Ember is a blacksmith."}, {"from": "human", "value": "Hello"},
            {"from": "gpt", "value": "Sit, eat."}, {"from": "human", "value": "Thanks"},
            {"from": "gpt", "value": "Aye."}, {"from": "human", "value": "Bye"}]},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Rust and ruin!"}]},
        "{broken json",
        {"conversations": [{"from": "narrator", "value": "..."}]},
        {"conversations": [{"from": "human", "value": "Anyone?"}]},
    ])
    openai = _lines(tmp_path / "msgs.jsonl", [
        {"messages": [{"role": "system", "content": "You are Vellum."}, {"role": "user", "content": "A book?"},
                      {"role": "assistant", "name": "Vellum", "content": "Four hundred thousand."}]}])
    out = tmp_path / "out" / "train.jsonl"
    report = import_dialogues([share, openai], out)
    rows = read_jsonl(out, TrainingSample)
    assert report.samples == 3 and report.per_file == {str(share): 2, str(openai): 1}
    assert dict(report.skipped) == {"malformed JSON line": 1, "unknown speaker": 1, "no character reply": 1}
    first, second, vellum = rows
    assert (first.id, first.character, first.profile) == ("chat:a", "Ember", "Ember is a blacksmith.")
    assert [(t.role, t.content) for t in first.messages] == [  # the trailing user turn is dropped
        ("user", "Hello"), ("assistant", "Sit, eat."), ("user", "Thanks"), ("assistant", "Aye.")]
    assert second.character == "Ember"  # the file's character carries over to rows that name none
    assert (vellum.character, vellum.profile, vellum.messages[-1].content) == (
        "Vellum", "You are Vellum.", "Four hundred thousand.")


def test_import_mmrole_images_relative_to_output_and_missing_image_skipped(tmp_path: Path,
                                                                         settings: Settings) -> None:
    data = tmp_path / "mmrole"
    (data / "COCO").mkdir(parents=True)
    _png(data / "COCO" / "1.png")
    (data / "COCO" / "bad.png").write_bytes(b"not a picture")
    rows = [
        {"id": "Hulk_0", "image": "COCO/1.png", "conversations": [
            {"from": "human", "value": "What do you see?"}, {"role": "Hulk", "value": "Hulk see red!"},
            {"role": "Thor", "value": "Calm, friend."}, {"role": "Hulk", "value": "Hulk calm."}]},
        {"id": "Hulk_1", "image": "COCO/missing.png", "conversations": [
            {"from": "human", "value": "Hi"}, {"role": "Hulk", "value": "Hulk smash."}]},
        {"id": "Hulk_2", "image": "COCO/bad.png", "conversations": [
            {"from": "human", "value": "Look"}, {"role": "Hulk", "value": "Hulk look."}]},
    ]
    source = data / "mmrole.json"
    source.write_text(json.dumps(rows), encoding="utf-8")
    out = tmp_path / "prepared" / "mm.jsonl"
    result = _cli(settings, "import", source, "--observe", "--out", out)
    assert result.exit_code == 0, result.output
    assert "missing image × 1" in result.output and "unreadable image × 1" in result.output
    [sample] = read_jsonl(out, TrainingSample)
    assert sample.character == "Hulk"
    user = sample.messages[0]
    assert user.images == ["../mmrole/COCO/1.png"] and (out.parent / user.images[0]).is_file()
    assert user.observation and user.observation.startswith("[User shows Hulk a picture. Hulk sees")
    assert "red" in user.observation
    assert [(t.role, t.content) for t in sample.messages[1:]] == [
        ("assistant", "Hulk see red!"), ("user", "Thor: Calm, friend."), ("assistant", "Hulk calm.")]


def test_import_unusable_files_are_errors_naming_file_and_reasons(tmp_path: Path, settings: Settings) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(RolecraftError, match=r"empty\.jsonl holds no usable dialogues: the file holds no rows"):
        import_dialogues([empty], tmp_path / "out.jsonl")
    junk = _lines(tmp_path / "junk.jsonl", ["{nope", "[1,", {"conversations": [{"from": "gpt", "value": "Hi"}]}])
    with pytest.raises(RolecraftError, match=r"junk\.jsonl .*malformed JSON line × 2.*no character name"):
        import_dialogues([junk], tmp_path / "out.jsonl")
    result = _cli(settings, "import", junk, "--character", "ember", "--format", "sharegpt", "--out",
                  tmp_path / "ok.jsonl")
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "ok.jsonl", TrainingSample)[0].character == "ember"
    result = _cli(settings, "import", empty, "--out", tmp_path / "out.jsonl")
    assert isinstance(result.exception, RolecraftError) and not (tmp_path / "out.jsonl").exists()


# card examples -------------------------------------------------------------------------------------------------


def test_examples_from_bundled_ember(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "ember.jsonl"
    result = _cli(settings, "examples", "ember", "--out", out)
    assert result.exit_code == 0, result.output
    samples = read_jsonl(out, TrainingSample)
    examples = [s for s in samples if s.source == "card example dialogue"]
    greetings = [s for s in samples if s.source == "card greeting"]
    assert len(greetings) == 3 and len(examples) >= 2
    assert all(s.character == "ember" and s.user == "User" for s in samples)
    first = examples[0].messages
    assert [t.role for t in first] == ["user", "assistant"] and first[0].content == "Can you fix my sword?"
    assert first[1].content.startswith("*She turns the blade")
    assert not any("{{" in t.content or t.content.startswith("Ember:") for s in samples for t in s.messages)
    missing = _cli(settings, "examples", "nobody", "--out", tmp_path / "x.jsonl")
    assert isinstance(missing.exception, RolecraftError) and missing.exception.message == "unknown character: 'nobody'"


# prepare -------------------------------------------------------------------------------------------------------


def test_prepare_dedupes_drops_and_splits_deterministically(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _png(tmp_path / "in" / "pic.png")
    samples = [_sample(i) for i in range(40)]
    samples += [
        _sample(100, messages=[Turn(role="user", content="QUESTION 3?  "), Turn(role="assistant",
                                                                                 content="aye, that  I can.")]),
        _sample(101, reply=" ."),
        _sample(102, messages=[Turn(role="user", content="Hi"), Turn(role="assistant", content="Hello there."),
                               Turn(role="user", content="And?"), Turn(role="assistant", content="")]),
        _sample(103, reply="word " * 200),
        _sample(104, messages=[Turn(role="user", content="See", images=["pic.png"]),
                               Turn(role="assistant", content="A red square.")]),
        _sample(105, messages=[Turn(role="user", content="See", images=["gone.png"]),
                               Turn(role="assistant", content="Nothing.")]),
        _sample(0, reply="A different dialogue with a clashing id."),
    ]
    source = tmp_path / "in" / "all.jsonl"
    write_jsonl(source, samples)
    report = prepare([source], tmp_path / "a", eval_fraction=0.25, seed=7, max_tokens=200)
    assert report.read == 47 and report.trimmed == 1 and report.renamed == 1
    assert dict(report.dropped) == {"duplicate dialogue": 1, "near-empty reply": 1,
                                    "longer than --max-tokens (estimated)": 1, "missing image": 1}
    assert report.train_count + report.eval_count == 43 and 3 <= report.eval_count <= 20
    train = read_jsonl(tmp_path / "a" / "train.jsonl", TrainingSample)
    held = read_jsonl(tmp_path / "a" / "eval.jsonl", TrainingSample)
    everything = {s.id: s for s in train + held}
    assert "d0#2" in everything and len(everything["d102"].messages) == 2
    assert everything["d104"].messages[0].images == ["../in/pic.png"]
    again = prepare([source], tmp_path / "b", eval_fraction=0.25, seed=7, max_tokens=200)
    assert (again.train_count, again.eval_count) == (report.train_count, report.eval_count)
    assert (tmp_path / "a" / "eval.jsonl").read_text() == (tmp_path / "b" / "eval.jsonl").read_text()
    g_train, g_eval = split_samples([*train, *held, *(_sample(i) for i in range(200, 260))], eval_fraction=0.25,
                                    seed=7)
    assert {s.id for s in held} <= {s.id for s in g_eval} and {s.id for s in train} <= {s.id for s in g_train}


def test_prepare_small_sets_and_cli(tmp_path: Path, settings: Settings) -> None:
    two = tmp_path / "two.jsonl"
    write_jsonl(two, [_sample(1), _sample(2, reply="Rust and ruin!")])
    result = _cli(settings, "prepare", two, "--out-dir", tmp_path / "out", "--eval-fraction", "0.01")
    assert result.exit_code == 0, result.output
    assert "wrote 1 to" in result.output and len(read_jsonl(tmp_path / "out" / "eval.jsonl", TrainingSample)) == 1
    one = tmp_path / "one.jsonl"
    write_jsonl(one, [_sample(1)])
    assert prepare([one], tmp_path / "out", eval_fraction=0.5).eval is None
    assert not (tmp_path / "out" / "eval.jsonl").exists()
    write_jsonl(one, [_sample(1, reply="x")])
    with pytest.raises(RolecraftError, match="no sample is left to train on: near-empty reply × 1"):
        prepare([one], tmp_path / "none")


# synthesis and pairs (real bundled model, greedy and short) ----------------------------------------------------


@pytest.fixture
def short(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_tokens": 16, "temperature": 0.0})


def test_synth_with_the_bundled_model_is_reproducible(short: Settings, tmp_path: Path) -> None:
    assert len(set(OPENERS)) >= 30
    engine = Engine(short)
    try:
        report = synthesize(engine, "ember", n=2, turns=2, seed=3, detector=ooc_detector(short, "tfidf"))
    finally:
        engine.close()
    assert report.attempted == 2 and report.samples, report.dropped
    for sample in report.samples:
        TrainingSample.model_validate(sample.model_dump())
        assert sample.character == "ember" and sample.messages[0].role == "user"
        assert all(t.content.strip() for t in sample.messages if t.role == "assistant")
    out = tmp_path / "synth.jsonl"  # the same seed gives the same first exchange, through the CLI this time
    result = _cli(short, "synth", "ember", "--n", "1", "--turns", "1", "--seed", "3", "--ooc-check", "tfidf",
                  "--teacher-model", "smollm2", "--out", out)
    assert result.exit_code == 0, result.output
    assert "kept 1 of 1 dialogues" in result.output
    assert read_jsonl(out, TrainingSample)[0].messages == report.samples[0].messages[:2]


def test_pairs_from_samples_with_the_bundled_model(short: Settings) -> None:
    sample = TrainingSample(id="s1", character="ember", messages=[
        Turn(role="assistant", content="Shut that door, spark."),
        Turn(role="user", content="What are you making?"),
        Turn(role="assistant", content="*She lifts the glowing horseshoe.* \"A shoe for a stubborn mule.\"")])
    engine = Engine(short)
    try:
        report = pairs_from_samples(engine, [sample], seed=1)
    finally:
        engine.close()
    assert dict(report.dropped) == {"reply does not answer a user turn": 1}
    [pair] = report.pairs
    PreferencePair.model_validate(pair.model_dump())
    assert pair.id == "s1:2" and pair.character == "ember" and pair.messages[-1].content == "What are you making?"
    assert pair.chosen.startswith("*She lifts") and pair.rejected and pair.rejected != pair.chosen


def test_pairs_from_store_swipes(settings: Settings, tmp_path: Path) -> None:
    backend = WordBackend(3000, reply="The forge is cold tonight.")
    engine = Engine(settings, backend=backend)
    session = engine.new_session("ember")
    with pytest.raises(RolecraftError, match="no regenerated replies"):
        pairs_from_store(engine.store)
    session.send("Tell me about the pass.").text()
    backend.reply = "Kettle Pass? Snowed in half the year."
    session.regenerate().text()
    backend.reply = "Ask me tomorrow."
    session.regenerate().text()
    _, kept, _ = session.swipes()
    session.branch(kept.id)
    report = pairs_from_store(engine.store, session_id=session.id)
    assert sorted(p.rejected for p in report.pairs) == ["Ask me tomorrow.", "The forge is cold tonight."]
    pair = report.pairs[0]
    assert pair.chosen == "Kettle Pass? Snowed in half the year." and pair.character == "ember"
    assert [t.role for t in pair.messages] == ["assistant", "user"]
    assert pair.messages[-1].content == "Tell me about the pass."
    engine.close()
    out = tmp_path / "pairs.jsonl"
    result = _cli(settings, "pairs", "--from-store", "--session", session.id, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(out, PreferencePair)) == 2
    bad = _cli(settings, "pairs", "--out", out)
    assert isinstance(bad.exception, RolecraftError) and "exactly one" in bad.exception.message


def test_pictures_without_observations_are_described_like_chat_and_missing_ones_named(tmp_path: Path) -> None:
    from skimage import data as skdata

    from rolecraft.training.data import image_observer, observe_pictures

    Image.fromarray(skdata.chelsea()).save(tmp_path / "cat.png")
    sample = TrainingSample(id="p", character="ember", messages=[
        {"role": "user", "content": "Look!", "images": ["cat.png"]}, {"role": "assistant", "content": "A cat."}])
    observer = image_observer(Settings(home=tmp_path / "home"))
    [seen] = observe_pictures([sample], tmp_path, observer, lambda s: "Ember")
    note = seen.messages[0].observation
    assert note.startswith("[User shows Ember a picture. Ember sees a cat") and "cat" in note
    with pytest.raises(RolecraftError, match=r"picture not found: .*gone\.png"):
        observe_pictures([sample.model_copy(update={"messages": [
            sample.messages[0].model_copy(update={"images": ["gone.png"]}), sample.messages[1]]})],
            tmp_path, observer, lambda s: "Ember")

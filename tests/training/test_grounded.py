"""Grounding, recall and voice training data: held out from the evaluation, rendered as chat renders it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cli_helpers import rolecraft
from rolecraft.backends import create_backend
from rolecraft.conversation import Engine
from rolecraft.conversation.media import UserInput, perceive
from rolecraft.evaluation.metrics import mentions
from rolecraft.evaluation.probes.scores import perceived_targets
from rolecraft.evaluation.suite import load_suite
from rolecraft.settings import Settings
from rolecraft.training import grounded
from rolecraft.training.render import Renderer
from rolecraft.training.samples import TrainingSample, Turn, read_jsonl

SHIPPED_DATA = Path(__file__).parents[2] / "benchmarks" / "data" / "grounded_train.jsonl"


@pytest.fixture(scope="module")
def held() -> grounded.HeldOut:
    return grounded.held_out(load_suite())


@pytest.fixture(scope="module")
def backend():
    b = create_backend(Settings(n_ctx=2048, n_threads=1))
    yield b
    b.close()


def _texts(turns: list[Turn], remembered: list[str]) -> list[str]:
    return [*(t.content for t in turns), *(t.observation or "" for t in turns), *remembered]


def _assert_disjoint(held: grounded.HeldOut, turns: list[Turn], remembered: list[str]) -> None:
    suite = load_suite()
    text = "\n".join(_texts(turns, remembered))
    assert mentions(text, held.answers) is None
    facts = [*suite.fact_recall.facts, *grounded.benchmark_facts()]
    assert not any(fact.plant in text or fact.question in text for fact in facts)
    for turn in turns:
        for seen in turn.perceived:
            assert seen["sha256"] not in held.photo_hashes
            names = [label["name"] for label in seen["labels"]]
            assert held.clash(" ".join([*names, *perceived_targets(names)])) is None, names


def test_held_out_covers_the_suites_photos_concepts_and_facts(held: grounded.HeldOut) -> None:
    suite = load_suite()
    assert len(held.photo_hashes) == len(suite.photos)
    extra = {a for fact in grounded.benchmark_facts() for a in fact.answers}
    assert {"Oriane", "Biscuit"} | extra <= set(held.answers)
    assert held.clash("a tabby cat by a coffee mug") in ("tabby", "cat", "coffee", "mug")
    assert held.clash("a dusty lantern") is None


def test_generated_prompts_never_touch_the_evaluation(held: grounded.HeldOut, settings: Settings) -> None:
    engine = Engine(settings)
    for char_id in ("ember", "vellum"):
        character = engine.character(char_id)
        for kind in grounded.KINDS:
            items = grounded.build_items(settings, character, kind, 40, seed=3, held=held)
            assert len(items) >= 30
            for item in items:
                _assert_disjoint(held, list(item.turns), list(item.remembered))
    engine.close()


@pytest.mark.skipif(not SHIPPED_DATA.is_file(), reason="no shipped training data")
def test_the_shipped_adapters_training_data_is_disjoint_from_the_evaluation(held: grounded.HeldOut) -> None:
    samples = read_jsonl(SHIPPED_DATA, TrainingSample)
    assert {s.source.split(":")[0] for s in samples} == {f"synth-{k}" for k in grounded.KINDS}
    for sample in samples:
        _assert_disjoint(held, sample.messages, sample.remembered)


def test_composed_observations_read_like_perceptions_notes(settings: Settings) -> None:
    seen = grounded.composed_observation(random.Random(1), ["lantern", "candle"])
    turn = grounded.photo_turn(settings, seen, "What is this?", char="Ember", user="User")
    assert turn.observation.startswith("[User shows Ember a picture. Ember sees lantern")
    assert turn.perceived[0]["labels"][0]["name"] == "lantern"


def test_a_picture_sample_renders_as_the_chat_turn_that_showed_it(backend, settings: Settings) -> None:
    quiet = settings.model_copy(update={"state_tracking": "off", "summary": "off"})
    engine = Engine(quiet, backend=backend)
    session = engine.new_session("ember")
    history = session.history()
    brick = grounded.extra_photo_paths()[0]  # a real photo outside the suite
    shown = perceive(engine, session.character, session.user_name, UserInput("What is this?", images=[
        brick.read_bytes()]))
    plan, _ = session.plan(history, shown)
    sample = TrainingSample(id="g", character="ember", user=session.user_name, learn="last", messages=[
        Turn(role="assistant", content=history[-1].content),
        Turn(role="user", content="What is this?", observation="\n".join(shown.meta["image_notes"]),
             perceived=shown.meta["images"]),
        Turn(role="assistant", content="A wall of red bricks.")])
    renderer = Renderer(backend, lambda cid: engine.character(cid), quiet)
    encoded = renderer.encode(sample)
    assert encoded.ids[: encoded.prompt_len] == backend.prompt_tokens(plan.messages)
    assert any("looks at the picture" in m.content for m in plan.messages)  # the reminder right before the reply
    assert sum(encoded.mask[: encoded.prompt_len]) == 0 and sum(encoded.mask) > 0  # only the last reply learns


def test_remembered_lines_enter_as_the_memory_block(backend, settings: Settings) -> None:
    engine = Engine(settings, backend=backend)
    sample = TrainingSample(id="r", character="ember", remembered=["User: My mule is Pell.\nEmber: Pell. Noted."],
                            learn="last", messages=[Turn(role="user", content="What's my mule called?"),
                                                    Turn(role="assistant", content="Pell.")])
    prompt = Renderer(backend, lambda cid: engine.character(cid), settings).prompt(sample, sample.messages[:1])
    assert any(m.content.startswith("[Ember remembers]\nUser: My mule is Pell.") for m in prompt)


@pytest.mark.parametrize(("kind", "reply", "why"), [
    ("grounding", "Aye, a lantern, and a good one.", None),
    ("grounding", "Sit by the fire, spark.", "does not name what the picture shows"),
    ("recall", "Your mule is Pell, of course.", None),
    ("recall", "I forget.", "does not contain the fact"),
    ("voice", "I have mended worse than this.", None),
    ("voice", "The fire is warm tonight.", "not in the first person"),
    ("voice", "Ember laughs, and I nod.", "narrates itself in the third person"),
])
def test_verdict_applies_the_probes_checks(settings: Settings, kind: str, reply: str, why: str | None) -> None:
    engine = Engine(settings)
    ember = engine.character("ember")
    item = grounded.Item("x", kind, (), ("lantern",) if kind == "grounding" else ("Pell",))
    assert grounded.verdict(item, reply, ember, "User") == why
    engine.close()


def test_synth_refuses_mixing_dialogues_with_grounded_kinds(home: Path) -> None:
    result = rolecraft(home, "data", "synth", "ember", "--kind", "dialogue", "--kind", "recall", "-o",
                       str(home / "out.jsonl"))
    assert result.returncode != 0
    assert "--kind dialogue cannot be mixed" in result.stderr
    assert not (home / "out.jsonl").exists()

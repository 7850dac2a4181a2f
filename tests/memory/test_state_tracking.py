"""State tracking: the rules, the model extraction's mapping, the labelled set and its scoring, per-model defaults.

Pure units (no model): the real-model path is tests/evaluation/test_state_probe.py.
"""

from __future__ import annotations

import pytest

from rolecraft.backends.catalog import default_state_tracking
from rolecraft.conversation.planner import recall_note
from rolecraft.evaluation.state_accuracy import FIELDS, accuracy, load_turns, score, track_turn
from rolecraft.memory.state import DialogueState, merge, rule_updates
from rolecraft.memory.tracker import UPDATE_SCHEMA, to_update
from rolecraft.settings import Settings


def test_rules_read_contracted_i_am() -> None:
    update = rule_updates("I'm a carpenter from Dunmoor.")
    assert update == {"user": {"facts": ["I am a carpenter from Dunmoor"]}}


def test_speaker_labels_are_not_a_new_name() -> None:
    raw = {"user_name": "Kai", "new_user_facts": [], "user_likes": [], "user_dislikes": ["rain"], "mood": None,
           "place": None, "trust_change": 0, "new_threads": []}
    update = to_update(raw, DialogueState(), ("Kai", "Ember"))
    assert "name" not in update["user"] and update["user"]["dislikes"] == ["rain"]
    assert to_update({**raw, "user_name": "Mara"}, DialogueState(), ("Kai", "Ember"))["user"]["name"] == "Mara"
    assert set(UPDATE_SCHEMA["required"]) == set(UPDATE_SCHEMA["properties"])


def test_labelled_set_loads_and_covers_every_field() -> None:
    turns = load_turns()
    assert len(turns) >= 30 and len({t.id for t in turns}) == len(turns)
    assert sum(t.lang == "zh" for t in turns) >= 5
    labelled = {f for t in turns for f, v in t.expect.model_dump().items() if v}
    assert {"name", "facts", "likes", "dislikes", "mood", "place", "trust", "threads"} <= labelled


def test_rules_score_only_what_they_can_read() -> None:
    rows = [score(t, *track_turn("rules", None, t)[:2]) for t in load_turns()]
    by_id = dict(zip([t.id for t in load_turns()], rows, strict=True))
    assert by_id["en-01"]["name"] and by_id["en-03"]["likes"]  # "my name is Mara", "I hate the rain"
    assert not by_id["en-12"]["place"] and not by_id["en-05"]["trust"]  # rules never read places or trust
    result = accuracy(rows, rounds=50)
    assert 0 < result["labelled"].value < result["overall"].value < 1
    assert result["overall"].low <= result["overall"].value <= result["overall"].high


def test_inventions_cost_as_much_as_misses() -> None:
    turn = next(t for t in load_turns() if t.id == "en-08")  # "What a lovely evening." labels nothing
    before = DialogueState()
    assert all(score(turn, before, before)[f] for f in FIELDS)
    invented = merge(before, {"mood": "furious", "scene": {"place": "moon"}, "relationship": {"trust": 2}})
    marks = score(turn, before, invented)
    assert not marks["mood"] and not marks["place"] and not marks["trust"] and marks["name"]


def test_recall_note_puts_the_users_words_first() -> None:
    remembered = ["Kai: My horse is called Biscuit.\nEmber: Noted.", "Kai: The road was long.\nEmber: It is."]
    content = recall_note('[{{char}} remembers {{user}} saying: "{{said}}"]', remembered, char="Ember", user="Kai")
    assert content == '[Ember remembers Kai saying: "My horse is called Biscuit. / The road was long."]'
    block = recall_note("[{{char}} remembers]\n{{memories}}", remembered, char="Ember", user="Kai")
    assert block == "[Ember remembers]\n" + "\n".join(remembered)


@pytest.mark.parametrize("model", ["smollm2", "qwen2.5-0.5b", "qwen2.5-1.5b", "/models/other.gguf"])
def test_state_tracking_default_follows_the_model_unless_set(home, model: str) -> None:
    assert Settings(model=model).state_tracking == default_state_tracking(model)
    assert Settings(model=model, state_tracking="off").state_tracking == "off"
    assert [default_state_tracking(m) for m in ("smollm2", "qwen2.5-0.5b", "qwen2.5-1.5b")] == ["rules", "rules",
                                                                                             "model"]
    assert default_state_tracking("/home/me/.rolecraft/models/qwen2.5-1.5b.gguf") == "model"

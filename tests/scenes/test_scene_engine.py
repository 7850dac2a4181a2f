"""The scene engine without HTTP (fake backend isolating prompt logic): what each NPC knows, events in the
prompt, the game-state block, action declarations and validation."""

from __future__ import annotations

import pytest

from conftest import GIVE, SceneBackend
from rolecraft.conversation import Engine
from rolecraft.conversation.scene import GameState, SceneSession, actions_schema, create_scene, declare_actions
from rolecraft.conversation.scene import validate_actions as check
from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings


def _scene(settings: Settings, **extra: object) -> tuple[SceneSession, SceneBackend]:
    backend = SceneBackend()
    engine = Engine(settings.model_copy(update={"state_tracking": "off", "expressions": "off"}), backend=backend)
    return create_scene(engine, ["ember", "vellum", "linyue"], **extra), backend  # type: ignore[arg-type]


def _said(scene: SceneSession, text: str, **extra: object) -> None:
    for turn in scene.say(text, **extra):
        turn.text()


def test_a_fact_told_to_one_npc_reaches_only_those_who_witnessed_it(settings: Settings) -> None:
    scene, backend = _scene(settings)
    scene.set_present("linyue", False)
    _said(scene, "Ember, my name is Kai and I fear the dark.")
    assert "I fear the dark" in backend.reply_prompts()[-1]
    _said(scene, "Vellum, what do you know about me?")  # Vellum was there: it heard
    assert "I fear the dark" in backend.reply_prompts()[-1]
    scene.set_present("linyue", True)
    _said(scene, "林月，你知道我怕什么吗？")
    linyue = backend.reply_prompts()[-1]
    assert "I fear the dark" not in linyue and "林月，你知道我怕什么吗？" in linyue
    assert not any("I fear the dark" in m.content for m in scene.witnessed("林月"))
    assert scene.engine.session(scene.id).__class__.__name__ == "GroupSession"  # still the library's group scene


def test_an_event_is_a_narrated_line_for_those_present(settings: Settings) -> None:
    scene, backend = _scene(settings, policies={"ember": {"threshold": 0.9}})
    stored, reactors = scene.post_event("Night falls over the village.", salience=0.7)
    assert stored.role == "event" and reactors == ["vellum", "linyue"]
    for turn in scene.react(reactors[:1]):
        turn.text()
    assert "[Event] Night falls over the village." in backend.reply_prompts()[-1]
    scene.set_present("vellum", False)
    scene.post_event("A secret door opens.")
    assert not any("secret door" in m.content for m in scene.witnessed("vellum"))


def test_the_game_state_renders_compactly_and_carries_over() -> None:
    state = GameState(location="square", nearby_objects=["well", "cart"], player={"hp": 7}, flags={"night": True})
    note = state.updated(GameState(weather="snow")).render()
    assert note == "[Scene now] Place: square. Weather: snow. Objects: well, cart. Player: hp 7. Flags: night yes"
    assert GameState().render() == ""
    with pytest.raises(ValueError, match="limit is 4"):
        GameState(extra={"a": [[[{"b": 1}]]]})


def test_actions_are_declared_checked_and_validated() -> None:
    actions = declare_actions([GIVE, {"name": "wave"}], "actions")
    assert [a.name for a in actions] == ["give_item", "wave"]
    assert actions_schema(actions)["properties"]["actions"]["maxItems"] == 3
    with pytest.raises(RolecraftError, match="not a valid JSON Schema") as bad:
        declare_actions([{"name": "jump", "parameters": {"type": "object", "required": "h"}}], "actions")
    assert bad.value.param == "actions[0].parameters"
    with pytest.raises(RolecraftError, match="twice"):
        declare_actions([GIVE, GIVE], "actions")
    choice = check('{"actions": [{"name": "give_item", "arguments": {"item": "key"}}, {"name": "wave", "arguments": '
                   '{}}, {"name": "steal", "arguments": {}}]}', actions)
    assert choice.actions == [{"name": "give_item", "arguments": {"item": "key"}}, {"name": "wave", "arguments": {}}]
    assert choice.refused == [{"name": "steal", "reason": "not a declared action"}]
    assert check("I would give bread", actions).refused[0]["reason"].startswith("the output was not")
    assert check('{"actions": [{"name": "give_item", "arguments": {"item": "gold"}}]}', actions).actions == []


def test_card_actions_join_the_scene_actions(settings: Settings) -> None:
    scene, _ = _scene(settings, actions=[GIVE])
    card = scene.cast["vellum"].model_copy(update={"extensions": {"rolecraft": {"actions": [{"name": "shelve"}]}}})
    scene.engine.store.put_character(card, char_id="vellum")
    reopened = SceneSession(scene.engine, scene.id)
    assert [a.name for a in reopened.actions_for("vellum")] == ["give_item", "shelve"]
    assert [a.name for a in reopened.actions_for("ember")] == ["give_item"]
    with pytest.raises(RolecraftError, match="nobody is in scene"):
        for cid in reopened.cast:
            reopened.set_present(cid, False)
        reopened.post_event("Night falls.")


def test_a_reaction_abandoned_mid_stream_stores_nothing(settings: Settings) -> None:
    scene, _ = _scene(settings)
    event, reactors = scene.post_event("Vellum, catch!", addressed=["vellum"])
    turn = next(iter(scene.react(reactors)))
    pieces = iter(turn)
    assert next(pieces)
    pieces.close()  # the game went away after the first piece
    scene.refresh()
    assert scene.info.head_id == event.id and turn.result is None

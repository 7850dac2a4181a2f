"""Group scenes: presence-limited knowledge, reply order, force and mute (prompt assembly isolated)."""

from __future__ import annotations

import pytest

from fakes import WordBackend
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings

SECRET = "The key is under the third stone."


def _group(settings: Settings, **changes: object):
    backend = WordBackend(3000)
    engine = Engine(settings.model_copy(update=changes), backend=backend)
    return engine.new_group(["ember", "vellum"]), backend


def _prompt(backend: WordBackend) -> str:
    return "\n".join(m.content for m in backend.prompts[-1])


def test_absent_character_does_not_learn_the_secret(settings: Settings) -> None:
    group, backend = _group(settings)
    group.set_present("Vellum", False)
    for turn in group.send_group(f"Ember, listen closely. {SECRET}"):
        turn.text()
    assert SECRET in _prompt(backend)
    group.set_present("vellum", True)
    for turn in group.send_group("Vellum, what do you know about the key?"):
        assert turn.speaker.name.startswith("Vellum")
        turn.text()
    vellum_prompt = _prompt(backend)
    assert SECRET not in vellum_prompt and "what do you know about the key" in vellum_prompt
    for turn in group.send_group("Ember, and you?"):
        turn.text()
    assert SECRET in _prompt(backend)
    reopened = group.engine.session(group.id)
    assert type(reopened).__name__ == "GroupSession"


def test_reply_order_mute_and_force(settings: Settings) -> None:
    group, _ = _group(settings, group_order="list")
    assert [t.speaker.name.split()[0] for t in _run(group, "Hello everyone!")] == ["Ember", "Vellum"]
    group.set_muted("Ember", True)
    assert [t.speaker.name.split()[0] for t in _run(group, "Hello again!")] == ["Vellum"]
    assert [t.speaker.name.split()[0] for t in _run(group, "Ember, speak!", only="Ember")] == ["Ember"]
    mention, _ = _group(settings, group_order="mention")
    assert [t.speaker.name.split()[0] for t in _run(mention, "Vellum and then Ember, hi.")] == ["Vellum", "Ember"]
    with pytest.raises(RolecraftError, match="no one called"):
        group.set_present("Nobody", False)


def test_group_needs_two_characters(settings: Settings) -> None:
    engine = Engine(settings, backend=WordBackend(3000))
    with pytest.raises(RolecraftError, match="at least two"):
        engine.new_group(["ember", "ember"])


def _run(group, text: str, **kwargs: object) -> list:
    turns = []
    for turn in group.send_group(text, **kwargs):
        turn.text()
        turns.append(turn)
    return turns

"""Dialogue state, rolling summary, lorebook placement and author's note in the assembled prompt.

These isolate prompt assembly with a word-counting backend (tests/fakes.py); the real model
path is exercised in test_chat_model.py.
"""

from __future__ import annotations

import pytest

from fakes import WordBackend
from rolecraft.characters.model import Lorebook, LorebookEntry
from rolecraft.conversation import Engine
from rolecraft.memory.state import DialogueState, merge, rule_updates
from rolecraft.settings import Settings

FACTS = {
    "My name is Mara.": "Mara",
    "I am a lighthouse keeper, by the way.": "lighthouse keeper",
    "I have a dog named Biscuit.": "Biscuit",
    "I live in Port Gale.": "Port Gale",
    "I love plum pie.": "plum pie",
}


def _engine(settings: Settings, n_ctx: int = 1400, **changes: object) -> tuple[Engine, WordBackend]:
    backend = WordBackend(n_ctx)
    return Engine(settings.model_copy(update=changes), backend=backend), backend


def _prompt_text(backend: WordBackend) -> str:
    return "\n".join(m.content for m in backend.prompts[-1])


def test_rules_extract_what_the_user_says_outright() -> None:
    state = DialogueState()
    for line in FACTS:
        state = merge(state, rule_updates(line))
    rendered = state.render()
    assert state.user.name == "Mara"
    for fact in FACTS.values():
        assert fact in rendered
    assert rule_updates("I am So tired") == {}


def test_invalid_updates_never_corrupt_state() -> None:
    state = merge(DialogueState(), {"user": {"name": "Ann"}})
    bad = merge(state, {"user": {"name": "x" * 500, "likes": "not a list"}, "relationship": {"trust": 99},
                        "mood": 7, "nonsense": {"a": 1}})
    assert bad == state


@pytest.mark.parametrize("tracking", ["rules", "off"])
def test_fact_recall_probe_prompt_contents(settings: Settings, tracking: str) -> None:
    engine, backend = _engine(settings, state_tracking=tracking, summary="off")
    session = engine.new_session("ember")
    for line in FACTS:
        session.send(line).text()
    for i in range(42):
        session.send(f"Unrelated small talk number {i} about the weather and the road and the price of nails.").text()
    found = {}
    for fact in FACTS.values():
        session.send("Do you remember what I told you about myself?").text()
        found[fact] = fact in _prompt_text(backend)
    assert backend.prompts[-1][0].kind == "definition"
    dropped = sum(1 for m in backend.prompts[-1] if m.kind == "history") < len(session.history())
    assert dropped, "the probe must run with a context smaller than the history"
    if tracking == "rules":
        assert all(found.values()), found
    else:
        assert not any(found.values()), found


def test_state_is_versioned_per_branch(settings: Settings) -> None:
    engine, _ = _engine(settings)
    session = engine.new_session("ember")
    root = session.history()[0].id
    session.send("My name is Ann.").text()
    ann_leaf = session.info.head_id
    session.branch(root)
    session.send("My name is Bob.").text()
    assert session.history()[-1].meta["state"]["user"]["name"] == "Bob"
    session.regenerate().text()
    assert session.history()[-1].meta["state"]["user"]["name"] == "Bob"
    session.branch(ann_leaf)
    assert session.history()[-1].meta["state"]["user"]["name"] == "Ann"
    turn = session.send("Hello again.")
    assert "User's name: Ann" in "\n".join(m.content for m in turn.plan.messages if m.kind == "late")


def test_summary_folds_dropped_messages(settings: Settings) -> None:
    engine, backend = _engine(settings, summary="extractive")
    session = engine.new_session("ember")
    session.send("The secret password is heliotrope. Remember it.").text()
    for i in range(70):
        session.send(f"Filler line {i} with some words to fill the context window quickly.").text()
    session.send("What was the password?").text()
    kinds = [m.kind for m in backend.prompts[-1]]
    assert "summary" in kinds
    summary = next(m.content for m in backend.prompts[-1] if m.kind == "summary")
    assert "heliotrope" in summary
    assert not any("heliotrope" in m.content for m in backend.prompts[-1] if m.kind == "history")


def test_lorebook_and_author_note_placement(settings: Settings) -> None:
    book = Lorebook(entries=[
        LorebookEntry(keys=[], content="The valley is called Emberfall.", constant=True, position="before_char"),
        LorebookEntry(keys=["dragon"], content="{{char}} fears the dragon Vesk.", position="after_char"),
        LorebookEntry(keys=["moon"], content="Moonlight makes iron sing.",
                      extensions={"position": 4, "depth": 1, "role": 0}),
    ])
    engine, backend = _engine(settings, author_note="Keep replies short.", author_note_depth=0)
    char = engine.character("ember").model_copy(update={"character_book": book})
    engine.store.put_character(char, char_id="ember-lore")
    session = engine.new_session("ember-lore")
    session.send("Tell me about the dragon and the moon.").text()
    prompt = backend.prompts[-1]
    definition = prompt[0].content
    assert definition.startswith("The valley is called Emberfall.")
    late = next(m.content for m in prompt if m.kind == "late")
    assert "Ember fears the dragon Vesk." in late
    lore = [i for i, m in enumerate(prompt) if m.kind == "lore"]
    user = max(i for i, m in enumerate(prompt) if m.role == "user")
    assert lore and lore[0] == user - 1 and prompt[lore[0]].content == "Moonlight makes iron sing."
    note = next(m for m in prompt if m.kind == "author_note")
    assert note.content == "[Author's note: Keep replies short.]"


def test_personas_and_session_lorebooks(settings: Settings, tmp_path) -> None:
    engine, backend = _engine(settings)
    engine.store.put_persona("mara", "Mara", "A lighthouse keeper with a lame dog.", default=True)
    session = engine.new_session("ember")
    assert session.user_name == "Mara"
    book = tmp_path / "world.json"
    book.write_text('{"entries": {"0": {"uid": 0, "key": ["lighthouse"], "content": "The lighthouse is haunted.",'
                    ' "comment": "", "constant": false, "selective": false, "order": 100, "position": 1,'
                    ' "disable": false}}}')
    assert session.attach_lorebook(str(book)) == 1
    session.send("How is the lighthouse?").text()
    prompt = "\n".join(m.content for m in backend.prompts[-1])
    assert "The lighthouse is haunted." in prompt and "About Mara: A lighthouse keeper" in prompt
    reopened = engine.session(session.id)
    assert reopened.lore.books, "attached lorebooks survive reopening the session"
    other = engine.new_session("ember", persona_id="mara", user_name=None)
    assert other.user_name == "Mara"


def test_long_term_memory_recalls_dropped_exchanges(settings: Settings) -> None:
    pytest.importorskip("transformers")
    engine, _ = _engine(settings, n_ctx=900, long_term_memory=True, state_tracking="off", summary="off")
    if engine.vectors is None:
        pytest.skip("the bundled embedding model is not installed")
    session = engine.new_session("ember")
    session.send("My grandmother's ring was stolen by a one-eyed sailor called Brannoc.").text()
    for i in range(24):
        session.send(f"Let's talk about the weather on day {i}: rain, wind and a little snow.").text()
    turn = session.send("Who stole my grandmother's ring?")
    assert turn.plan.dropped_messages > 2
    late = "\n".join(m.content for m in turn.plan.messages if m.kind == "late")
    assert "Brannoc" in late, late
    history = "\n".join(m.content for m in turn.plan.messages if m.kind == "history")
    assert "Brannoc" not in history

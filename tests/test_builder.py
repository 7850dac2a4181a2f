"""Context builder: order, budget, what is dropped first, and a cut that stays put across turns.

A word-counting backend isolates the builder from any model; the real tokenizer is covered by
tests/test_chat_model.py.
"""

from __future__ import annotations

import itertools

import pytest

from fakes import WordBackend
from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.prompting import ContextBuilder, TurnInput

CHAR = Character(
    name="Ember", description="{{char}} is a smith who greets {{user}} warmly.", personality="gruff",
    catchphrases=["By the anvil!"], mes_example="<START>\n{{user}}: hi\n{{char}}: By the anvil, hello.",
    post_history_instructions="Stay in character as {{char}}.",
)


def _history(n: int) -> list[TurnInput]:
    turns = [TurnInput("assistant", "Welcome to the forge traveller")]
    for i in range(n):
        turns += [TurnInput("user", f"question number {i} about swords"), TurnInput("assistant", f"answer {i} yes")]
    return [*turns, TurnInput("user", "final question")]


def test_order_and_macros() -> None:
    plan = ContextBuilder(WordBackend(4096), reply_tokens=100).build(CHAR, "Ann", _history(2), persona="a bard")
    kinds = [m.kind for m in plan.messages]
    assert kinds[:2] == ["definition", "examples"] and kinds[-1] == "post_history"
    assert plan.messages[-2].content == "final question"
    definition = plan.messages[0].content
    assert "Ember is a smith who greets Ann warmly." in definition and "About Ann: a bard" in definition
    assert "Ann: hi\nEmber: By the anvil, hello." in plan.messages[1].content
    assert plan.messages[-1].content == "Stay in character as Ember."
    assert plan.dropped_messages == 0 and plan.examples_included


def test_examples_drop_before_history_then_oldest_turns() -> None:
    builder = ContextBuilder(WordBackend(190), reply_tokens=20)
    small = builder.build(CHAR, "Ann", _history(6))
    assert not small.examples_included and small.dropped_messages == 0
    big = builder.build(CHAR, "Ann", _history(30))
    assert big.messages[0].kind == "definition"
    assert big.dropped_messages > 0 and big.prompt_tokens <= big.budget
    assert big.messages[-2].content == "final question"


def test_cut_is_stable_across_turns() -> None:
    builder = ContextBuilder(WordBackend(300), reply_tokens=20)
    cuts = [builder.build(CHAR, "Ann", _history(n)).dropped_messages for n in range(20, 40)]
    changes = sum(1 for a, b in itertools.pairwise(cuts) if a != b)
    assert changes <= len(cuts) // 3, cuts
    assert cuts == sorted(cuts)


def test_definition_that_cannot_fit_is_a_clear_error() -> None:
    with pytest.raises(RolecraftError, match="raise n_ctx"):
        ContextBuilder(WordBackend(40), reply_tokens=20).build(CHAR, "Ann", _history(1))

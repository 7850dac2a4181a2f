"""Speaker tags are stripped however a model or a client's prompt decorates them, and however the stream splits."""

from __future__ import annotations

import pytest

from rolecraft.conversation.reply import split_speaker, strip_speaker


def _run(pieces: list[str], name: str = "Ember") -> str:
    return "".join(strip_speaker(pieces, name))


@pytest.mark.parametrize(("reply", "expected"), [
    ("Ember: Hello.", "Hello."),
    ("*Ember:* Hello.", "Hello."),
    ("**Ember**: Hello.", "Hello."),
    ("**Ember:** Hello.", "Hello."),
    ("Ember (smiling): Hello.", "Hello."),
    ("*Ember (smiling):* Hello.", "Hello."),
    ("[Ember]: Hello.", "Hello."),
    ("_Ember_: Hello.", "Hello."),
    ("  ember : Hello.", "Hello."),
    ("*Ember: Stay in character, keep responding", "*Stay in character, keep responding"),
    ("*Ember: smiles warmly* Hello.", "*smiles warmly* Hello."),
    ("Ember: *smiles* Hello.", "*smiles* Hello."),
])
def test_decorated_tags_are_stripped(reply: str, expected: str) -> None:
    assert _run([reply]) == expected
    assert _run(list(reply)) == expected  # one character at a time


@pytest.mark.parametrize("reply", ["Embers glow.", "Ember's forge: hot.", "Ember is here: good.", "*smiles* Hi",
                                   "Ember\n: no", "Hello, Ember: hi"])
def test_text_that_is_no_tag_is_kept(reply: str) -> None:
    assert _run([reply]) == reply.strip()
    assert _run(list(reply)) == reply.strip()


def test_undecided_until_the_tag_can_be_told() -> None:
    assert split_speaker("*Emb", "Ember") == (None, "*Emb")
    assert split_speaker("**Ember**", "Ember")[0] is None
    assert split_speaker("Ember (smil", "Ember")[0] is None
    assert split_speaker("Ember (smiling)", "Ember")[0] is None
    assert split_speaker("Ember's", "Ember")[0] is False
    assert _run(["Em"]) == "Em" and _run(["Ember:"]) == "" and _run(["*Ember:*", " ", "Hi"]) == "Hi"


def test_names_with_spaces_and_other_scripts() -> None:
    assert _run(["**Lin ", "Yue**: 你好"], "Lin Yue") == "你好"
    assert _run(["林月：", "你好"], "林月") == "林月：你好"  # a full-width colon is text, not our tag
    assert _run(["*林月:* 你好"], "林月") == "你好"

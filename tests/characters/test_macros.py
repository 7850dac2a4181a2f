"""{{char}} / {{user}} / <BOT> / <USER> expansion."""

from __future__ import annotations

import pytest

from rolecraft.characters import expand_macros


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{char}} greets {{user}}.", "Ember greets Ana."),
        ("{{Char}} and {{USER}}", "Ember and Ana"),
        ("{{ CHAR }} / {{  user\t}}", "Ember / Ana"),
        ("<BOT> sees <USER>; <bot> sees <user>", "Ember sees Ana; Ember sees Ana"),
        ("<char> waves", "Ember waves"),
        ("{{random:a,b}} {{original}} {{char", "{{random:a,b}} {{original}} {{char"),
        ("<START>\n{{user}}: hi", "<START>\nAna: hi"),
        ("no macros here", "no macros here"),
        ("", ""),
    ],
)
def test_expand_macros(text, expected):
    assert expand_macros(text, "Ember", "Ana") == expected


def test_expansion_is_single_pass_and_literal():
    assert expand_macros("{{char}}", "{{user}}", "Ana") == "{{user}}"
    assert expand_macros("{{user}}", "E", r"\1 \g<0>") == r"\1 \g<0>"


def test_chinese_names():
    assert expand_macros("{{char}}对{{user}}说", "林月", "小明") == "林月对小明说"

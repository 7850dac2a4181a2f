"""The decode loop's text: UTF-8 split across tokens, and a character cut off by max_tokens (pure units)."""

from __future__ import annotations

from rolecraft.backends.decoding import Decoded, decode

PIECES = {1: "温".encode()[:2], 2: "温".encode()[2:] + "柔".encode()[:1], 3: "柔".encode()[1:], 4: "、".encode(),
          5: "含".encode()[:2], 9: b""}


def _run(tokens: list[int], max_tokens: int) -> tuple[str, Decoded]:
    out = Decoded()
    text = "".join(decode((t for t in tokens), PIECES.__getitem__, lambda t: t == 9, [], max_tokens, out))
    return text, out


def test_characters_split_across_tokens_come_out_whole() -> None:
    text, out = _run([1, 2, 3, 4, 9], 10)
    assert text == "温柔、" and out.finish_reason == "stop"


def test_a_character_cut_by_max_tokens_is_dropped_not_replaced() -> None:
    text, out = _run([1, 2, 3, 4, 5], 5)
    assert text == "温柔、" and "\ufffd" not in text and out.finish_reason == "length"

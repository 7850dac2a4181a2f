"""Reply clean-up: a leading speaker tag is removed however the stream is split."""

from rolecraft.conversation.reply import strip_speaker


def _run(pieces: list[str]) -> str:
    return "".join(strip_speaker(pieces, "Ember"))


def test_strips_name_prefix_split_across_pieces() -> None:
    assert _run([" Em", "ber", ": Hello", " there"]) == "Hello there"
    assert _run(["ember:", " ", "Hi"]) == "Hi"


def test_keeps_text_that_only_starts_like_the_name() -> None:
    assert _run(["Emb", "ers glow."]) == "Embers glow."
    assert _run(["Hello"]) == "Hello"
    assert _run(["Em"]) == "Em"

"""Sentence splitting for streamed speech: English and Chinese punctuation, and what is not read aloud."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rolecraft.voice import SentenceSplitter, iter_sentences, speakable, split_sentences

REPLY = 'Hello there, Mr. Smith! It costs 3.50 coins... Really? "Yes." 你好。我很好！你呢？ok\nNew line'


def test_english_and_chinese_sentences() -> None:
    assert split_sentences(REPLY) == [
        "Hello there, Mr. Smith!", "It costs 3.50 coins...", "Really?", '"Yes."', "你好。", "我很好！", "你呢？", "ok",
        "New line",
    ]


def test_initials_and_decimals_do_not_end_sentences() -> None:
    assert split_sentences("J. R. Smith paid 2.5 gold. Then he left") == ["J. R. Smith paid 2.5 gold.", "Then he left"]


def test_a_sentence_is_released_only_when_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hi there") == []
    assert splitter.feed(". How") == ["Hi there."]
    assert splitter.feed(" are you?") == []  # could still be "?!" or a closing quote
    assert splitter.feed(" 好") == ["How are you?"]
    assert splitter.feed("的。") == []  # a closing 」 may still follow
    assert splitter.feed("他说") == ["好的。"]
    assert splitter.flush() == ["他说"]


def test_streaming_yields_before_the_stream_ends() -> None:
    consumed: list[str] = []

    def pieces():
        for piece in ["The forge ", "is hot. ", "Stand back", ", please."]:
            consumed.append(piece)
            yield piece

    stream = iter_sentences(pieces())
    assert next(stream) == "The forge is hot."
    assert len(consumed) == 2  # "is hot. " ends the sentence; the rest is not read yet
    assert list(stream) == ["Stand back, please."]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_any_chunking_gives_the_same_sentences(cuts: list[int]) -> None:
    pieces, position = [], 0
    for size in cuts:
        pieces.append(REPLY[position : position + size])
        position += size
    pieces.append(REPLY[position:])
    assert list(iter_sentences(pieces)) == split_sentences(REPLY)


def test_speakable_drops_stage_directions_and_markup() -> None:
    text = "*wipes her hands* Welcome to **my** forge! [OOC: brb] ((out of character)) _Hot_ iron."
    assert speakable(text) == "Welcome to my forge! Hot iron."
    assert speakable("*nods*") == ""

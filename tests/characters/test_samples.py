"""The bundled sample characters: they load, are rich enough to play, small enough to fit, and in sync."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from rolecraft.characters import Character, load_character_file
from rolecraft.characters.png import PNG_SIGNATURE, read_chunks
from rolecraft.characters.samples import DEFAULT_SAMPLE, sample_paths

SOURCE = Path(__file__).resolve().parents[2] / "scripts" / "sample_characters.toml"
CJK = re.compile(r"[\u4e00-\u9fff]")
PATHS = {path.stem: path for path in sample_paths()}
SAMPLES = {key: load_character_file(path) for key, path in PATHS.items()}


def definition(c: Character) -> str:
    """The text the prompt builder sends as the character definition."""
    relations = "\n".join(f"{who}: {what}" for who, what in c.relationships.items())
    parts = [c.description, c.appearance, c.personality, c.background, c.speech_style, relations, c.scenario]
    return "\n".join([*parts, *c.catchphrases, c.mes_example])


def estimated_tokens(text: str) -> int:
    """Rough: one token per CJK character, one per 3.5 other characters."""
    cjk = len(CJK.findall(text))
    return cjk + round((len(text) - cjk) / 3.5)


def test_three_samples_ship_and_the_default_is_one_of_them():
    assert sample_paths() == sorted(sample_paths())
    assert set(SAMPLES) == {"ember", "linyue", "vellum"}
    assert DEFAULT_SAMPLE in SAMPLES


@pytest.mark.parametrize("key", ["ember", "linyue", "vellum"])
def test_sample_is_a_playable_v3_png_card(key: str):
    c = SAMPLES[key]
    keywords = {chunk.keyword() for chunk in read_chunks(PATHS[key].read_bytes(), key)}
    assert {"ccv3", "chara"} <= keywords
    assert c.spec == "chara_card_v3" and c.name.strip()
    assert c.avatar is not None and c.avatar.startswith(PNG_SIGNATURE)
    assert len(c.catchphrases) >= 2
    assert c.first_mes and len(c.alternate_greetings) >= 2
    assert c.appearance and c.personality and c.background and c.speech_style and c.relationships
    assert "<START>" in c.mes_example and "{{char}}" in c.mes_example and "{{user}}" in c.mes_example
    assert c.post_history_instructions and c.scenario and c.tags
    assert estimated_tokens(definition(c)) < 600


def test_ember_is_the_rich_default():
    ember = SAMPLES["ember"]
    assert ember.name == "Ember"
    assert 2 <= len(ember.catchphrases) <= 4
    assert ember.character_book is not None and 3 <= len(ember.character_book.entries) <= 4


def test_linyue_is_written_in_chinese():
    linyue = SAMPLES["linyue"]
    assert CJK.search(linyue.name)
    for text in [linyue.description, linyue.first_mes, linyue.personality, *linyue.catchphrases]:
        assert CJK.search(text)
    ascii_letters = len(re.findall(r"[A-Za-z]", definition(linyue).replace("{{char}}", "").replace("{{user}}", "")))
    assert ascii_letters < 20


def test_catchphrases_and_avatars_are_distinct():
    phrases = [p for c in SAMPLES.values() for p in c.catchphrases]
    assert len(phrases) == len(set(phrases))
    assert len({c.avatar for c in SAMPLES.values()}) == len(SAMPLES)


def test_pngs_match_their_source_definitions():
    definitions = tomllib.loads(SOURCE.read_text(encoding="utf-8"))
    assert set(definitions) == set(SAMPLES)
    for key, values in definitions.items():
        expected = Character.model_validate(values).model_dump(exclude={"creation_date", "modification_date"})
        assert SAMPLES[key].model_dump(exclude={"creation_date", "modification_date"}) == expected, key

"""Whisper on the bundled base model: assembled once from two packages, multilingual, the default where installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolecraft.evaluation.metrics import word_error_rate
from rolecraft.perception import decode_audio
from rolecraft.perception.stt import create_stt, resolve_stt, whisper_language
from rolecraft.perception.whisper import MODEL_SIZE, bundled_installed, bundled_model_dir
from rolecraft.voice import BUNDLED_PIPER_VOICE, synthesize
from rolecraft.voice.call import character_language
from rolecraft.voice.tts import PiperTTS

needs_whisper = pytest.mark.skipif(not bundled_installed(), reason="needs rolecraft[whisper]")


@needs_whisper
def test_the_bundled_model_is_assembled_once_with_its_files(tmp_path: Path) -> None:
    folder = bundled_model_dir(tmp_path)
    assert folder == tmp_path / "whisper-base"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json",
                                                          "vocabulary.json"]
    assert (folder / "model.bin").stat().st_size == MODEL_SIZE
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert bundled_model_dir(tmp_path) == folder and (folder / "model.bin").stat().st_mtime_ns == stamp


@needs_whisper
def test_auto_means_whisper_where_installed() -> None:
    assert resolve_stt("auto") == "whisper" and resolve_stt("pocketsphinx") == "pocketsphinx"
    assert create_stt("auto") is create_stt("whisper")


@needs_whisper
@pytest.mark.skipif(not PiperTTS.installed(), reason="needs piper-tts")
def test_whisper_hears_english_and_names_the_language() -> None:
    sentence = "The quick brown fox jumps over the lazy dog. I would like a cup of coffee, please."
    samples = decode_audio(synthesize(sentence, f"piper:{BUNDLED_PIPER_VOICE}"))[0]
    heard = create_stt("whisper").transcribe(samples)
    assert heard.language == "en" and word_error_rate(sentence, heard.text) <= 0.15, heard.text
    assert heard.words and heard.words[0].start < heard.words[-1].end <= len(samples) / 16_000 + 0.5
    quick = create_stt("whisper").transcribe(samples, language="en-US", words=False)
    assert quick.words == [] and word_error_rate(sentence, quick.text) <= 0.15


def test_language_hints_are_spelt_as_whisper_wants_and_chinese_cards_hint_zh() -> None:
    assert whisper_language("zh-CN") == "zh" and whisper_language("en_US") == "en" and whisper_language("") is None
    from rolecraft.characters.io import load_character_file
    from rolecraft.characters.samples import sample_paths

    cards = {path.stem: load_character_file(path) for path in sample_paths()}
    assert character_language(cards["linyue"]) == "zh"
    assert character_language(cards["ember"]) is None and character_language(cards["vellum"]) is None

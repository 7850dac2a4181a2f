"""Speak with the real engines, listen with the real recogniser: the words come back.

Measured (benchmarks/speech_speed.py): Piper's en_US-joe-medium read back by
PocketSphinx has a word error rate of 5.9% on the sentence below (1 of 17 words,
"jumps" → "jumped"; 11.8% in the worst of 8 runs, Piper's synthesis is not
deterministic), and 30-50% on a harder 10 s story. espeak-ng's English is much
harder for PocketSphinx (WER ~90%), so the espeak tests check audio, language and
length, not words.
"""

from __future__ import annotations

import io
import wave

import pytest

from rolecraft.characters import Character
from rolecraft.errors import RolecraftError
from rolecraft.evaluation.metrics import word_error_rate
from rolecraft.perception import observe_audio
from rolecraft.voice import BUNDLED_PIPER_VOICE, Voice, resolve_voice, stream_sentences, synthesize
from rolecraft.voice.tts import EspeakTTS, PiperTTS

needs_piper = pytest.mark.skipif(not PiperTTS.installed(), reason="piper-tts is not installed")
needs_espeak = pytest.mark.skipif(not EspeakTTS.installed(), reason="espeak-ng is not installed (apt-get)")
MAX_WER = 0.25


def wav_info(data: bytes) -> tuple[int, float]:
    with wave.open(io.BytesIO(data)) as clip:
        return clip.getframerate(), clip.getnframes() / clip.getframerate()


@needs_piper
@pytest.mark.slow
def test_piper_speech_is_recognised_by_pocketsphinx() -> None:
    sentence = "The quick brown fox jumps over the lazy dog. I would like a cup of coffee, please."
    audio = synthesize(f"*smiles* {sentence}", f"piper:{BUNDLED_PIPER_VOICE}")
    rate, seconds = wav_info(audio)
    assert rate == 22050 and 3.0 < seconds < 8.0
    heard = observe_audio(audio)
    assert word_error_rate(sentence, heard.transcript) <= MAX_WER, heard.transcript
    assert "coffee" in heard.transcript and not heard.silent
    assert 120 < heard.words_per_minute < 260


@needs_espeak
def test_espeak_speaks_chinese_and_english() -> None:
    chinese = synthesize("你好，我叫林月。今天天气很好！", "espeak:cmn")
    assert wav_info(chinese)[1] > 1.5
    english = synthesize("Hello, how are you today?", Voice("espeak", "en-us"))
    assert 1.0 < wav_info(english)[1] < 4.0
    assert not observe_audio(english).silent


@needs_espeak
def test_unknown_espeak_voice_is_a_clear_error() -> None:
    with pytest.raises(RolecraftError) as info:
        synthesize("Hello", "espeak:no-such-voice")
    assert info.value.code == "unknown_voice"


def test_missing_piper_voice_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(RolecraftError) as info:
        synthesize("Hello", f"piper:{tmp_path / 'nobody.onnx'}")
    assert info.value.code == "unknown_voice"


@needs_piper
@needs_espeak
def test_voice_resolution_follows_the_character_and_the_language() -> None:
    ember = Character(name="Ember")
    assert resolve_voice(ember, "Welcome to the forge.") == Voice("piper", BUNDLED_PIPER_VOICE)
    assert resolve_voice(ember, "欢迎来到铁匠铺。") == Voice("espeak", "cmn")
    linyue = Character(name="Lin Yue", voice="espeak:cmn")
    assert resolve_voice(linyue, "你好") == Voice("espeak", "cmn")
    piper_voiced = Character(name="Joe", voice=BUNDLED_PIPER_VOICE)
    assert resolve_voice(piper_voiced, "今天天气很好") == Voice("espeak", "cmn")  # an English voice cannot say it
    assert resolve_voice(None, "Hi", default="espeak:en-gb") == Voice("espeak", "en-gb")


@needs_espeak
def test_stream_sentences_yields_one_wav_per_spoken_sentence() -> None:
    consumed: list[str] = []

    def pieces():
        for piece in ["*bows* Good ", "morning. The ", "forge is hot. ", "*grins*", " Come in!"]:
            consumed.append(piece)
            yield piece

    stream = stream_sentences(pieces(), "espeak:en-us")
    first = next(stream)
    assert first[:4] == b"RIFF" and len(consumed) == 2
    rest = list(stream)
    assert len(rest) == 2 and all(wav_info(w)[1] > 0.3 for w in rest)


@needs_espeak
def test_nothing_to_say_gives_an_empty_wav() -> None:
    assert wav_info(synthesize("*nods silently*", "espeak:en-us"))[1] == 0.0

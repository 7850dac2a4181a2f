"""Speech recognition accuracy and speed: WER (English), CER (Chinese) and real-time factor per STT backend.

Run: .venv/bin/python benchmarks/stt_accuracy.py
The same clips go to every backend: English sentences spoken by Piper (en_US-joe-medium) and Chinese ones
by espeak-ng (`cmn`). Whisper base (bundled) runs with language detection and with the language hint a
card gives; PocketSphinx is English-only, so its Chinese cells are "n/a". Real-time factor = recognition
time / clip length (below 1 is faster than real time). Synthesised Chinese from espeak-ng is far from
natural speech, so its CER says little about real Chinese speakers; no recorded Chinese was available.
"""

from __future__ import annotations

import time

from rolecraft.evaluation.metrics import character_error_rate, word_error_rate
from rolecraft.perception import decode_audio
from rolecraft.perception.stt import create_stt
from rolecraft.voice import BUNDLED_PIPER_VOICE, synthesize

ENGLISH = [
    "Hello, who are you?",
    "Do you sell hot soup here?",
    "The blacksmith lit the forge before dawn.",
    "I would like a room for the night, please.",
    "How far is it to the northern holds?",
    "Tell me a story about the mountain pass.",
    "My horse is tired and the snow is getting deeper.",
    "Can you keep a secret for me?",
]
CHINESE = [
    "你好，你是谁？",
    "今天天气很好。",
    "我想喝一杯热茶。",
    "这本书非常有意思。",
    "我们明天去公园散步吧。",
    "你叫什么名字？",
]


def clips() -> dict[str, list[tuple[str, object]]]:
    english = [(text, decode_audio(synthesize(text, f"piper:{BUNDLED_PIPER_VOICE}"))[0]) for text in ENGLISH]
    chinese = [(text, decode_audio(synthesize(text, "espeak:cmn"))[0]) for text in CHINESE]
    return {"en": english, "zh": chinese}


def run(backend: str, data: dict, language: str | None, lang: str) -> tuple[float, float, list[str]]:
    """Mean error rate and real-time factor of `backend` on the clips of `lang`."""
    stt = create_stt(backend)
    errors, spent, audio, heard = [], 0.0, 0.0, []
    for text, samples in data[lang]:
        start = time.perf_counter()
        got = stt.transcribe(samples, language=language, words=False)
        spent += time.perf_counter() - start
        audio += len(samples) / 16_000
        score = word_error_rate if lang == "en" else character_error_rate
        errors.append(score(text, got.text))
        heard.append(got.text)
    return sum(errors) / len(errors), spent / audio, heard


def main() -> None:
    data = clips()
    create_stt("whisper").transcribe(data["en"][0][1])  # warm up (load, first-call allocations)
    print(f"{'backend':<28} {'clips':<12} {'error':>8} {'RTF':>6}")
    rows = [("whisper (detect)", "whisper", None, "en"), ("whisper (hint en)", "whisper", "en", "en"),
            ("pocketsphinx", "pocketsphinx", None, "en"), ("whisper (detect)", "whisper", None, "zh"),
            ("whisper (hint zh)", "whisper", "zh", "zh")]
    samples = {}
    for label, backend, language, lang in rows:
        error, rtf, heard = run(backend, data, language, lang)
        metric = "WER" if lang == "en" else "CER"
        print(f"{label:<28} {lang + ' ' + metric:<12} {error:>7.1%} {rtf:>6.2f}")
        samples[label + " " + lang] = heard[:2]
    print("pocketsphinx                 zh CER            n/a    n/a  (English only)")
    for label, heard in samples.items():
        print(f"  {label}: {heard}")


if __name__ == "__main__":
    main()

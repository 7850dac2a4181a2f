"""silero VAD segmentation: utterances found in Piper speech, nothing kept while it is silent."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("silero_vad")

from rolecraft.perception.audio import decode_audio
from rolecraft.voice import BUNDLED_PIPER_VOICE, synthesize
from rolecraft.voice.tts import PiperTTS
from rolecraft.voice.vad import RATE, Segmenter, VadConfig


def feed(segmenter: Segmenter, samples: np.ndarray, step: int = 1600) -> list:
    events = []
    for i in range(0, len(samples), step):
        events.extend(segmenter.feed(samples[i:i + step]))
    return events


def test_minutes_of_silence_and_hiss_make_no_utterance_and_no_growth() -> None:
    segmenter = Segmenter()
    rng = np.random.default_rng(0)
    most = 0.0
    for _ in range(180):  # three minutes, one second at a time
        assert segmenter.feed(rng.normal(0, 0.003, RATE).astype(np.float32)) == []
        most = max(most, segmenter.buffered_s)
    assert most <= VadConfig().preroll_ms / 1000 + 0.05 and not segmenter.speaking


@pytest.mark.skipif(not PiperTTS.installed(), reason="needs piper-tts")
def test_two_utterances_are_two_segments_with_their_speech() -> None:
    words = decode_audio(synthesize("Hello there, how are you today?", f"piper:{BUNDLED_PIPER_VOICE}"))[0]
    gap = np.zeros(RATE, dtype=np.float32)
    events = feed(Segmenter(), np.concatenate([gap, words, gap, words, gap]))
    assert [e.kind for e in events] == ["start", "end", "start", "end"]
    first = events[1].samples
    assert abs(len(first) / RATE - len(words) / RATE) < 0.8
    assert 0.6 < events[0].at_s < 1.05


def test_an_endless_utterance_is_cut_at_the_limit() -> None:
    tone = (0.3 * np.sin(np.arange(RATE * 8) * 2 * np.pi * 220 / RATE)).astype(np.float32)
    speechlike = tone * (1 + np.sin(np.arange(len(tone)) * 2 * np.pi * 4 / RATE)) / 2
    segmenter = Segmenter(VadConfig(max_utterance_s=2.0, threshold=0.0))
    events = feed(segmenter, speechlike)
    ends = [e for e in events if e.kind == "end"]
    assert ends and all(len(e.samples) / RATE <= 2.05 for e in ends)

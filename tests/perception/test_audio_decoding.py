"""`decode_audio` and the audio observation on generated clips: formats, limits, silence, pauses, fuzzing."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import CUTS, FLIPS, FUZZ, mutate
from rolecraft.errors import RolecraftError
from rolecraft.perception import AudioOptions, decode_audio, observe_audio
from rolecraft.perception.audio import analyse, dbfs
from rolecraft.perception.stt import SpeechToText, Transcript, Word

sf = pytest.importorskip("soundfile")


def tone(seconds: float, rate: int, *, amplitude: float = 0.3, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


class NoSTT(SpeechToText):
    """Fails the test if speech recognition is asked for."""

    name = "none"

    def transcribe(self, samples: np.ndarray, *, language: str | None = None) -> Transcript:
        raise AssertionError("silent audio must not be transcribed")


class FixedSTT(SpeechToText):
    """Returns three words spread over the clip, to isolate the rate arithmetic."""

    name = "fixed"

    def transcribe(self, samples: np.ndarray, *, language: str | None = None) -> Transcript:
        words = [Word(word=w, start=s, end=s + 0.3) for w, s in (("one", 0.0), ("two", 0.6), ("three", 1.2))]
        return Transcript(text="one two three", words=words, backend=self.name, language="en")


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate"),
    [("WAV", "PCM_16", 44100), ("WAV", "FLOAT", 8000), ("FLAC", None, 48000), ("OGG", "VORBIS", 44100),
     ("OGG", "OPUS", 48000), ("MP3", "MPEG_LAYER_III", 44100)],
)
def test_formats_decode_to_16k_mono(fmt: str, subtype: str | None, rate: int) -> None:
    samples, out_rate = decode_audio(encode(tone(1.0, rate, channels=2), rate, fmt, subtype))
    assert out_rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 16000) < 1600
    assert -14.5 < dbfs(samples) < -12.5  # a sine of amplitude 0.3 is -13.5 dBFS, in both channels and the mix


@pytest.mark.parametrize(
    "data", [b"", b"plain text, not audio", b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42isom" + b"\0" * 64,
             b"RIFF\x24\x00\x00\x00WAVEfmt "]
)
def test_unsupported_or_corrupt_audio(data: bytes) -> None:
    with pytest.raises(RolecraftError) as info:
        decode_audio(data)
    assert info.value.code in {"invalid_audio", "unsupported_audio"} and info.value.param == "audio"


def test_two_hour_clip_is_refused_from_its_header() -> None:
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", samplerate=8000, channels=1, format="FLAC") as out:
        minutes = np.zeros(8000 * 600, dtype=np.int16)
        for _ in range(12):
            out.write(minutes)
    with pytest.raises(RolecraftError) as info:
        decode_audio(buffer.getvalue())
    assert info.value.code == "audio_too_long" and "7200 s" in info.value.message


def test_a_header_that_lies_stops_at_the_data() -> None:
    header = b"RIFF" + struct.pack("<I", 36 + 8000 * 2 * 7200) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", 8000 * 2 * 7200)
    samples, _ = decode_audio(header + b"\0" * 16000)
    assert len(samples) == 16000


def test_max_seconds_is_configurable() -> None:
    clip = encode(tone(3.0, 16000), 16000, "WAV")
    with pytest.raises(RolecraftError) as info:
        observe_audio(clip, options=AudioOptions(max_seconds=2.0), stt=NoSTT())
    assert info.value.code == "audio_too_long"
    assert len(decode_audio(clip, max_seconds=3.5)[0]) == 48000


def test_silence_is_observed_without_transcribing() -> None:
    observation = observe_audio(encode(np.zeros(32000, dtype=np.float32), 16000, "WAV"), stt=NoSTT())
    assert observation.silent and observation.transcript == "" and observation.loudness_dbfs == -120.0
    assert observation.to_text() == "2.0 s of silence"


def test_pauses_loudness_and_rate() -> None:
    rate = 16000
    clip = np.concatenate([tone(0.8, rate), np.zeros(int(1.5 * rate), np.float32), tone(0.8, rate)])
    facts = analyse(clip, rate, long_pause_s=1.0)
    assert facts["long_pauses"] == 1 and not facts["silent"]
    assert abs(facts["speech_s"] - 3.1) < 0.1 and abs(facts["loudness_dbfs"] + 16.3) < 1.0
    observation = observe_audio(encode(clip, rate, "FLAC"), stt=FixedSTT())
    assert observation.words == 3 and observation.words_per_minute == 120.0
    assert "1 long pause" in observation.to_text() and "spoken aloud, 3.1 s" in observation.to_text()


SEEDS = [encode(tone(0.25, 8000), 8000, f, s) for f, s in
         (("WAV", "PCM_16"), ("FLAC", None), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III"))]


def _check(data: bytes) -> None:
    try:
        samples, rate = decode_audio(data, max_seconds=30)
    except RolecraftError as exc:
        assert exc.code in {"invalid_audio", "unsupported_audio", "audio_too_long"}
        return
    assert rate == 16000 and samples.ndim == 1 and np.isfinite(samples).all() and len(samples) <= 30 * 16000


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.sampled_from(SEEDS), FLIPS, CUTS)
def test_fuzz_mutated_audio(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    _check(mutate(seed, flips, cut))

"""Sound clips a user speaks to the character: decoded safely, transcribed, and described.

`decode_audio` reads WAV, FLAC, OGG (Vorbis/Opus) and MP3 through libsndfile
(the `soundfile` wheel bundles it), checks the duration from the header before
reading samples, reads in blocks (so a lying header still stops at the limit),
mixes down to mono and resamples to 16 kHz with soxr. Anything else (AAC, a
text file, a truncated header) is a `RolecraftError`.

`observe_audio` adds what the words do not carry: duration, loudness (dBFS),
speaking rate and long pauses, found by a simple energy-based voice activity
detector. Silent clips skip speech recognition and say so.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.perception.image import sha256_hex
from rolecraft.perception.stt import DEFAULT_STT, SAMPLE_RATE, SpeechToText, Transcript, create_stt

DEFAULT_MAX_SECONDS = 600.0
SUPPORTED = "WAV, FLAC, OGG (Vorbis, Opus), MP3"
FRAME_S = 0.03
SILENCE_DBFS = -55.0
_BLOCK_S = 10.0


class AudioOptions(BaseModel):
    """How to listen to a clip; the lead's Settings fields map onto these."""

    model_config = ConfigDict(extra="forbid")

    max_seconds: float = Field(DEFAULT_MAX_SECONDS, gt=0, description="Refuse clips longer than this.")
    stt_backend: str = Field(DEFAULT_STT, description="Speech-to-text backend: pocketsphinx or whisper.")
    stt_model: str | None = Field(None, description="STT model: a local folder, or a whisper name/hub id.")
    language: str | None = Field(None, description="Spoken language hint (pocketsphinx: English only).")
    long_pause_s: float = Field(1.0, gt=0, description="A silence at least this long inside speech is a long pause.")


class AudioObservation(BaseModel):
    """What the character hears: the words plus how they were said."""

    sha256: str
    transcript: str
    duration_s: float
    loudness_dbfs: float = Field(description="RMS level of the speech (whole clip if no speech), dBFS.")
    peak_dbfs: float
    speech_s: float = Field(description="Seconds from the first to the last speech.")
    words: int
    words_per_minute: float
    long_pauses: int
    silent: bool
    stt_backend: str

    def to_text(self) -> str:
        """How it was said, in a few words (the transcript itself is the user's message)."""
        if self.silent:
            return f"{self.duration_s:.1f} s of silence"
        parts = [f"spoken aloud, {self.duration_s:.1f} s", _volume_word(self.loudness_dbfs)]
        if self.words >= 3 and self.speech_s >= 1.0:
            parts.append(f"{_pace_word(self.words_per_minute)} ({self.words_per_minute:.0f} words/min)")
        if not self.transcript:
            parts.append("no words could be made out")
        if self.long_pauses:
            parts.append(f"{self.long_pauses} long pause{'s' if self.long_pauses > 1 else ''}")
        return ", ".join(parts)


def _volume_word(dbfs: float) -> str:
    if dbfs < -38:
        return "very quietly"
    if dbfs < -28:
        return "quietly"
    return "loudly" if dbfs > -12 else "at a normal volume"


def _pace_word(wpm: float) -> str:
    return "slowly" if wpm < 100 else "quickly" if wpm > 185 else "at an even pace"


def audio_error(message: str, code: str = "invalid_audio") -> RolecraftError:
    return RolecraftError(message, code=code, param="audio")


def _import_audio_libs() -> tuple[Any, Any]:
    try:
        import soundfile
        import soxr
    except ImportError as exc:
        raise missing_extra("soundfile / soxr", "audio") from exc
    return soundfile, soxr


def decode_audio(data: bytes, *, max_seconds: float = DEFAULT_MAX_SECONDS,
                 sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Mono float32 samples at `sample_rate` (16 kHz) from WAV/FLAC/OGG/MP3 bytes, at most `max_seconds` long."""
    soundfile, soxr = _import_audio_libs()
    if not data:
        raise audio_error("the audio is empty (0 bytes)")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as clip:
            _check_header(clip, max_seconds)
            samples = _read_mono(clip, max_seconds, sample_rate, soxr)
    except RolecraftError:
        raise
    except (RuntimeError, ValueError, TypeError, EOFError, OSError, MemoryError) as exc:
        raise audio_error(f"unsupported or corrupt audio (supported: {SUPPORTED}; {type(exc).__name__}: {exc})",
                          code="unsupported_audio") from None
    if samples.size == 0:
        raise audio_error("the audio holds no samples")
    return samples, sample_rate


def _check_header(clip: Any, max_seconds: float) -> None:
    if clip.samplerate <= 0 or clip.channels <= 0:
        raise audio_error(f"the audio header is invalid ({clip.samplerate} Hz, {clip.channels} channels)")
    if clip.frames > 0 and clip.frames / clip.samplerate > max_seconds:
        raise audio_error(f"the clip is {clip.frames / clip.samplerate:.0f} s long, more than the limit of "
                          f"{max_seconds:.0f} s", code="audio_too_long")


def _read_mono(clip: Any, max_seconds: float, sample_rate: int, soxr: Any) -> np.ndarray:
    """Read block by block, mixing down and resampling as we go; stop as soon as the limit is passed."""
    limit = math.ceil(max_seconds * clip.samplerate)
    block = max(1, int(_BLOCK_S * clip.samplerate))
    stream = soxr.ResampleStream(clip.samplerate, sample_rate, 1, dtype="float32")
    pieces, read = [], 0
    while True:
        chunk = clip.read(block, dtype="float32", always_2d=True)
        read += len(chunk)
        if read > limit:
            raise audio_error(f"the clip is longer than the limit of {max_seconds:.0f} s", code="audio_too_long")
        last = len(chunk) < block
        mono = np.nan_to_num(chunk.mean(axis=1), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        pieces.append(stream.resample_chunk(mono, last=last))
        if last:
            break
    return np.clip(np.concatenate(pieces), -1.0, 1.0).astype(np.float32)


def dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (-120 for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return max(-120.0, 20 * math.log10(rms)) if rms > 0 else -120.0


def speech_frames(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """A boolean per 30 ms frame: loud enough to be speech (within 30 dB of the loudest frames, above -55 dBFS)."""
    size = max(1, int(FRAME_S * sample_rate))
    count = len(samples) // size
    if count == 0:
        return np.zeros(0, dtype=bool)
    frames = samples[: count * size].reshape(count, size).astype(np.float64)
    levels = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-12))
    threshold = max(SILENCE_DBFS, float(np.percentile(levels, 95)) - 30.0)
    return levels > threshold


def long_pauses(active: np.ndarray, min_pause_s: float) -> int:
    """Silences of at least `min_pause_s` between the first and last speech frame."""
    indices = np.flatnonzero(active)
    if indices.size < 2:
        return 0
    gaps = np.diff(indices) - 1
    return int(np.sum(gaps * FRAME_S >= min_pause_s))


def analyse(samples: np.ndarray, sample_rate: int, *, long_pause_s: float = 1.0) -> dict:
    """Duration, loudness, peak, speech span and long pauses of mono samples."""
    active = speech_frames(samples, sample_rate)
    indices = np.flatnonzero(active)
    size = max(1, int(FRAME_S * sample_rate))
    speech = samples[indices[0] * size : (indices[-1] + 1) * size] if indices.size else samples
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return {
        "duration_s": round(len(samples) / sample_rate, 3),
        "loudness_dbfs": round(dbfs(speech), 1),
        "peak_dbfs": round(max(-120.0, 20 * math.log10(peak)) if peak > 0 else -120.0, 1),
        "speech_s": round((indices[-1] - indices[0] + 1) * FRAME_S, 3) if indices.size else 0.0,
        "long_pauses": long_pauses(active, long_pause_s),
        "silent": not indices.size or peak < 10 ** (SILENCE_DBFS / 20),
    }


def observe_audio(data: bytes, *, options: AudioOptions | None = None,
                  stt: SpeechToText | None = None) -> AudioObservation:
    """Decode, describe and transcribe a clip (silent clips are not sent to the recogniser)."""
    options = options or AudioOptions()
    samples, rate = decode_audio(data, max_seconds=options.max_seconds)
    facts = analyse(samples, rate, long_pause_s=options.long_pause_s)
    engine = stt or (None if facts["silent"] else create_stt(options.stt_backend, model=options.stt_model))
    transcript = (Transcript(text="", words=[], backend=options.stt_backend, language="")
                  if facts["silent"] or engine is None else engine.transcribe(samples, language=options.language))
    return AudioObservation(
        sha256=sha256_hex(data),
        transcript=transcript.text,
        words=len(transcript.words),
        words_per_minute=_rate(transcript, facts["speech_s"]),
        stt_backend=transcript.backend,
        **facts,
    )


def _rate(transcript: Transcript, speech_s: float) -> float:
    """Words per minute over the spoken span (word timings when the recogniser gives them)."""
    words = transcript.words
    span = (words[-1].end - words[0].start) if len(words) >= 2 else speech_s
    return round(len(words) / span * 60.0, 1) if span > 0 and words else 0.0

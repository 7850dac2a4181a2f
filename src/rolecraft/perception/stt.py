"""Speech to text: a small registry of STT backends that all take 16 kHz mono float32 samples.

`whisper` runs faster-whisper (CTranslate2) on the bundled multilingual Whisper
base model (`rolecraft[whisper]`, assembled once by `perception.whisper`), or a
local model folder, or a model name/hub id downloaded only when online
(HF_HUB_OFFLINE=1 or `offline=True` means the local cache only); it detects the
language unless given a hint. `pocketsphinx` is the small English-only fallback,
fully offline inside its wheel. `auto` (the default) means whisper where the
bundled model is installed, else pocketsphinx. Plugins register the same way as
the built-ins. Loaded backends are kept per (name, model) so a chat loads once.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.registry import Registry
from rolecraft.settings import env_offline

SAMPLE_RATE = 16_000
DEFAULT_STT = "auto"
DEFAULT_WHISPER_MODEL = "base"  # hub name, used only when the bundled model is not installed


class Word(BaseModel):
    """One recognised word with its start and end in seconds."""

    word: str
    start: float
    end: float


class Transcript(BaseModel):
    text: str
    words: list[Word]
    backend: str
    language: str


class SpeechToText(ABC):
    """An STT engine. Subclasses register with `register_stt`."""

    name: str = ""

    @abstractmethod
    def transcribe(self, samples: np.ndarray, *, language: str | None = None, words: bool = True) -> Transcript:
        """Words in `samples` (16 kHz mono float32 in -1..1); `words=False` may skip word timings (faster)."""


Factory = Callable[..., SpeechToText]
# name → factory(model=..., cache_dir=..., offline=...); plugins: entry-point group "rolecraft.stt"
STT: Registry[Factory] = Registry("speech-to-text backend", group="rolecraft.stt", param="stt_backend",
                                 code="unknown_stt")
register_stt = STT.register


def available_stt() -> list[str]:
    return sorted(STT.names())


def create_stt(name: str = DEFAULT_STT, *, model: str | None = None, cache_dir: Path | None = None,
               offline: bool | None = None) -> SpeechToText:
    """The STT backend `name` ('auto': whisper if installed, else pocketsphinx), loaded once per process."""
    name = resolve_stt(name)
    STT.require(name)
    return _loaded(name, model, cache_dir, env_offline() if offline is None else offline)


@cache
def _loaded(name: str, model: str | None, cache_dir: Path | None, offline: bool) -> SpeechToText:
    return STT.require(name)(model=model, cache_dir=cache_dir, offline=offline)


def resolve_stt(name: str) -> str:
    """The backend 'auto' stands for here: whisper where the bundled model is installed, else pocketsphinx."""
    if name != "auto":
        return name
    from rolecraft.perception.whisper import bundled_installed

    return "whisper" if bundled_installed() else "pocketsphinx"


def whisper_language(code: str | None) -> str | None:
    """A language hint as Whisper spells it: 'zh-CN' → 'zh', 'en_US' → 'en', '' → None (detect)."""
    return code.replace("_", "-").split("-")[0].lower() or None if code else None


def transcribe(samples: np.ndarray, *, backend: str = DEFAULT_STT, model: str | None = None,
               language: str | None = None, cache_dir: Path | None = None) -> Transcript:
    """Transcribe 16 kHz mono samples with the named backend."""
    return create_stt(backend, model=model, cache_dir=cache_dir).transcribe(samples, language=language)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Little-endian 16-bit PCM bytes of float samples in -1..1."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


@register_stt("pocketsphinx")
class PocketSphinxSTT(SpeechToText):
    """CMU PocketSphinx with the US-English model inside the wheel."""

    name = "pocketsphinx"
    frame_rate = 100  # PocketSphinx segments count 10 ms frames

    def __init__(self, *, model: str | None = None, cache_dir: Path | None = None, offline: bool | None = None):
        try:
            import pocketsphinx
        except ImportError as exc:
            raise missing_extra("pocketsphinx", "audio") from exc
        options: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        if model:
            options["hmm"] = model
        try:
            self.decoder = pocketsphinx.Decoder(**options)
        except (RuntimeError, ValueError, OSError) as exc:
            raise RolecraftError(f"cannot load the PocketSphinx model: {exc}", code="model_load_failed",
                                 param="stt_model", status=500, type="server_error") from exc
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray, *, language: str | None = None, words: bool = True) -> Transcript:
        if language and not language.lower().startswith("en"):
            raise RolecraftError(f"pocketsphinx only knows English, not {language!r}; use the whisper STT backend",
                                 code="unsupported_language", param="language")
        with self._lock:
            self.decoder.start_utt()
            self.decoder.process_raw(to_pcm16(samples), full_utt=True)
            self.decoder.end_utt()
            words = [_sphinx_word(seg, self.frame_rate) for seg in self.decoder.seg()]
        kept = [w for w in words if w is not None]
        return Transcript(text=" ".join(w.word for w in kept), words=kept, backend=self.name, language="en")


def _sphinx_word(segment: Any, frame_rate: int) -> Word | None:
    """A real word from a PocketSphinx segment; silences, noises and sentence marks are dropped."""
    word = segment.word.split("(")[0]
    if not word or word.startswith(("<", "[", "++")):
        return None
    return Word(word=word, start=segment.start_frame / frame_rate, end=(segment.end_frame + 1) / frame_rate)


@register_stt("whisper")
class WhisperSTT(SpeechToText):
    """faster-whisper: the bundled base model (model None), a CTranslate2 folder, or a name/hub id (online only)."""

    name = "whisper"

    def __init__(self, *, model: str | None = None, cache_dir: Path | None = None, offline: bool | None = None):
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise missing_extra("faster-whisper", "whisper") from exc
        spec = model or _bundled_or_hub(cache_dir)
        local = Path(spec).expanduser()
        offline = env_offline() if offline is None else offline
        source = str(local) if local.is_dir() else spec
        try:
            self.model = WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1,
                                      download_root=str(cache_dir) if cache_dir and not local.is_dir() else None,
                                      local_files_only=offline and not local.is_dir())
        except (OSError, ValueError, RuntimeError) as exc:  # hub misses are OSErrors, bad names ValueErrors
            raise _whisper_unavailable(spec, offline, exc) from exc
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray, *, language: str | None = None, words: bool = True) -> Transcript:
        with self._lock:
            segments, info = self.model.transcribe(samples.astype(np.float32), language=whisper_language(language),
                                                   beam_size=1, word_timestamps=words, without_timestamps=not words,
                                                   vad_filter=False, condition_on_previous_text=False)
            segments = list(segments)
        timed = [Word(word=w.word.strip(), start=w.start, end=w.end) for s in segments for w in (s.words or [])]
        text = "".join(s.text for s in segments).strip()  # segment text keeps Chinese unspaced
        return Transcript(text=text, words=[w for w in timed if w.word], backend=self.name,
                          language=info.language or (language or ""))


def _bundled_or_hub(models_dir: Path | None) -> str:
    """The bundled base model's folder (assembled on first use), else the hub name for online users."""
    from rolecraft.perception.whisper import bundled_installed, bundled_model_dir

    return str(bundled_model_dir(models_dir)) if bundled_installed() else DEFAULT_WHISPER_MODEL


def _whisper_unavailable(spec: str, offline: bool, exc: Exception) -> RolecraftError:
    why = "offline mode is on and it is not in the local cache" if offline else f"{type(exc).__name__}: {exc}"
    return RolecraftError(
        f"cannot load the Whisper model {spec!r}: {why}; pass a local faster-whisper model folder, "
        "or go online once to download it",
        code="model_unavailable", param="stt_model", status=503, type="server_error",
    )

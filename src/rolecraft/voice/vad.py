"""Voice activity detection on a live stream: silero VAD (its ONNX model from the `silero-vad` wheel).

The wheel's own wrapper needs torch tensors; this one drives the same ONNX
model with numpy and onnxruntime. The model takes 512-sample windows at 16 kHz
(32 ms) with the previous window's last 64 samples as context and a recurrent
state, and returns a speech probability. `Segmenter` turns probabilities into
utterances: speech starts after `min_speech_ms` above the threshold, ends after
`hangover_ms` below it, and an utterance longer than `max_utterance_s` is cut.
Everything it keeps is bounded: a short pre-roll before speech, and at most one
utterance.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.files import package_file

RATE = 16_000
WINDOW = 512
CONTEXT = 64
_SESSION: Any = None
_LOCK = threading.Lock()


def _session() -> Any:
    """The ONNX session, loaded once per process (one thread: the VAD is tiny)."""
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            try:
                import onnxruntime
            except ImportError as exc:
                raise missing_extra("onnxruntime", "whisper") from exc
            try:
                path = package_file("silero-vad", "silero_vad/data/silero_vad.onnx")
            except RolecraftError as exc:
                raise missing_extra("silero-vad", "whisper") from exc
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            _SESSION = onnxruntime.InferenceSession(str(path), sess_options=options,
                                                    providers=["CPUExecutionProvider"])
        return _SESSION


class SileroVAD:
    """Speech probability per 32 ms window of one stream (the model state is per stream)."""

    def __init__(self) -> None:
        self.session = _session()
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros((1, CONTEXT), dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        x = np.concatenate([self.context, window.reshape(1, WINDOW).astype(np.float32)], axis=1)
        out, self.state = self.session.run(None, {"input": x, "state": self.state, "sr": np.array(RATE, np.int64)})
        self.context = x[:, -CONTEXT:]
        return float(out.reshape(-1)[0])


@dataclass
class VadConfig:
    threshold: float = 0.5
    min_speech_ms: int = 96
    hangover_ms: int = 480
    preroll_ms: int = 192
    max_utterance_s: float = 30.0


@dataclass
class VadEvent:
    """'start' (speech began at `at_s` of the stream) or 'end' (with the utterance's samples)."""

    kind: str
    at_s: float
    samples: np.ndarray | None = None


class Segmenter:
    """Feed 16 kHz float samples of any length; get start/end events as utterances begin and finish."""

    def __init__(self, config: VadConfig | None = None, vad: SileroVAD | None = None) -> None:
        self.config = config or VadConfig()
        self.vad = vad or SileroVAD()
        self._pending = np.zeros(0, dtype=np.float32)
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, self.config.preroll_ms * RATE // 1000 // WINDOW))
        self._speech: list[np.ndarray] = []
        self._loud = self._quiet = 0
        self.speaking = False
        self.windows = 0

    @property
    def buffered_s(self) -> float:
        """Seconds of audio held (pre-roll plus the utterance so far)."""
        return (len(self._pending) + WINDOW * (len(self._preroll) + len(self._speech))) / RATE

    def utterance(self) -> np.ndarray:
        """The current utterance so far (for partial transcripts)."""
        return np.concatenate(self._speech) if self._speech else np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        data = np.concatenate([self._pending, samples.astype(np.float32)])
        whole = len(data) // WINDOW * WINDOW
        self._pending = data[whole:]
        events = []
        for start in range(0, whole, WINDOW):
            event = self._window(data[start:start + WINDOW])
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> VadEvent | None:
        """End the utterance now (the client committed the buffer); None if there was no speech."""
        if not self.speaking:
            return None
        return self._end()

    def _window(self, window: np.ndarray) -> VadEvent | None:
        self.windows += 1
        speech = self.vad(window) >= self.config.threshold
        cfg, ms = self.config, WINDOW * 1000 // RATE
        if not self.speaking:
            self._preroll.append(window)
            self._loud = self._loud + 1 if speech else 0
            if self._loud * ms < cfg.min_speech_ms:
                return None
            self.speaking, self._quiet = True, 0
            self._speech = list(self._preroll)
            self._preroll.clear()
            return VadEvent("start", self.windows * WINDOW / RATE - len(self._speech) * WINDOW / RATE)
        self._speech.append(window)
        self._quiet = 0 if speech else self._quiet + 1
        if self._quiet * ms >= cfg.hangover_ms or len(self._speech) * WINDOW / RATE >= cfg.max_utterance_s:
            return self._end()
        return None

    def _end(self) -> VadEvent:
        samples = self.utterance()
        self.speaking, self._speech, self._loud, self._quiet = False, [], 0, 0
        return VadEvent("end", self.windows * WINDOW / RATE, samples)

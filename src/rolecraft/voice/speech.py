"""The speaking half of a voice call: each sentence synthesised as soon as it is written, sent paced to playback.

Sentences queue up while the model writes; one worker speaks them in order in
the character's voice (Chinese text in a Chinese voice), resampled to the
call's output rate, labels each with its expression, and sends 100 ms audio
deltas at most `audio_lead_s` ahead of the listener's playback clock, so that
an interruption knows what was heard and stops sending at once.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import TYPE_CHECKING

import numpy as np

from rolecraft.errors import RolecraftError
from rolecraft.voice.sentences import speakable
from rolecraft.voice.tts import Voice, create_tts, resolve_voice

if TYPE_CHECKING:
    from rolecraft.voice.call import Call, Response

CHUNK_S = 0.1


class Speaker:
    """Speaks one response's sentences in order; `stop` silences it at once."""

    def __init__(self, call: Call, response: Response) -> None:
        self.call, self.response = call, response
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.index = 0
        self.task = call.spawn(self._run())
        response.speaker = self

    def say(self, sentence: str) -> None:
        if "first_sentence_s" not in self.response.marks:
            self.response.marks["first_sentence_s"] = time.monotonic() - self.response.marks["_ended"]
        self.queue.put_nowait(sentence)

    async def finish(self) -> None:
        """Wait until every queued sentence has been sent."""
        self.queue.put_nowait(None)
        await self.task

    def stop(self) -> None:
        self.task.cancel()

    async def _run(self) -> None:
        while (sentence := await self.queue.get()) is not None:
            words = speakable(sentence)
            if not any(ch.isalnum() for ch in words):
                continue
            began = time.monotonic()
            pcm = await asyncio.to_thread(spoken_samples, self.call, words)
            self.response.marks.setdefault("tts_s", time.monotonic() - began)
            await self.call.send("rolecraft.expression", response_id=self.response.id,
                                 item_id=self.response.item_id, sentence_index=self.index, text=sentence,
                                 expression=sentence_expression(self.call.engine.settings.expressions, sentence))
            await self._play(pcm, sentence)
            self.index += 1

    async def _play(self, samples: np.ndarray, sentence: str) -> None:
        from rolecraft.voice.call import Spoken

        response, rate = self.response, self.call.options.output_rate
        step = int(CHUNK_S * rate)
        spoken = Spoken(sentence, response.sent_s, response.sent_s + len(samples) / rate)
        response.spoken.append(spoken)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
        for start in range(0, len(pcm), step):
            chunk = pcm[start:start + step]
            now = time.monotonic()
            if response.play_start is None:
                response.play_start = now
                response.marks["first_audio_s"] = now - response.marks["_ended"]
            elif now > response.play_start + response.sent_s:  # the listener ran dry: playback restarts now
                response.play_start = now - response.sent_s
            wait = response.play_start + response.sent_s - self.call.options.audio_lead_s - now
            if wait > 0:
                await asyncio.sleep(wait)
            await self.call.send("response.audio.delta", response_id=response.id, item_id=response.item_id,
                                 delta=base64.b64encode(chunk.tobytes()).decode())
            response.sent_s += len(chunk) / rate


def voice_for(call: Call, words: str) -> Voice:
    """The character's voice for these words (Chinese words in a Chinese voice)."""
    return resolve_voice(call.character, words, default=call.engine.settings.voice)


def spoken_samples(call: Call, words: str) -> np.ndarray:
    """`words` spoken, as float samples at the call's output rate."""
    import soundfile
    import soxr

    voice = voice_for(call, words)
    wav = create_tts(voice.engine).synthesize(words, voice.name)
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    rate_out = call.options.output_rate
    return mono if rate == rate_out else soxr.resample(mono, rate, rate_out).astype(np.float32)


def sentence_expression(method: str, sentence: str) -> str | None:
    """The sentence's expression label from the lexicons (the per-reply LLM labeller is too slow per sentence)."""
    if method == "off":
        return None
    try:
        from rolecraft.expressions import classify

        return classify(sentence).label
    except (ImportError, RolecraftError):
        return None


def decode_delta(delta: str) -> np.ndarray:
    """PCM16 samples of a base64 `response.audio.delta` (for clients and tests)."""
    return np.frombuffer(base64.b64decode(delta), dtype="<i2")


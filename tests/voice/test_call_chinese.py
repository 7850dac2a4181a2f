"""A voice call with 林月 (linyue): the card hints Chinese to Whisper, and Chinese replies get a Chinese voice.

espeak-ng's Mandarin is the only Chinese speech available offline here; Whisper base makes little of it
(see benchmarks/stt_accuracy.py), so this checks the language path, not the words.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

pytest.importorskip("faster_whisper", reason="calls need rolecraft[whisper]")
pytest.importorskip("silero_vad", reason="calls need rolecraft[whisper]")

from rolecraft.conversation import Engine
from rolecraft.perception import decode_audio
from rolecraft.server.runtime import Runtime
from rolecraft.settings import Settings
from rolecraft.voice import synthesize
from rolecraft.voice.call import Call
from rolecraft.voice.speech import spoken_samples, voice_for
from rolecraft.voice.tts import EspeakTTS

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not EspeakTTS.installed(), reason="needs espeak-ng")]


async def _call(runtime: Runtime, samples: np.ndarray) -> tuple[Call, list[dict]]:
    events: list[dict] = []

    async def emit(event: dict) -> None:
        events.append(event)

    session_id = runtime.engine.new_session("linyue").id
    call = await asyncio.to_thread(Call, runtime, session_id, emit)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    start = time.monotonic()
    for n, i in enumerate(range(0, len(pcm), 3200)):
        await call.append(pcm[i:i + 3200])
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.1 - time.monotonic()))
    await call.idle()
    await call.close()
    return call, events


def test_a_chinese_card_is_heard_in_chinese_and_answers_in_a_chinese_voice(settings: Settings) -> None:
    spoken = decode_audio(synthesize("你好，你是谁？今天天气很好。", "espeak:cmn"))[0]
    samples = np.concatenate([np.zeros(8000, np.float32), spoken, np.zeros(16000, np.float32)])
    runtime = Runtime(Engine(settings))
    try:
        call, events = _call_sync(runtime, samples)
        assert call.language == "zh" and call.describe()["input_audio_transcription"]["language"] == "zh"
        heard = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
        assert heard and all(e["language"] == "zh" for e in heard)
        kinds = [e["type"] for e in events]
        if "response.done" in kinds:  # Whisper heard words in it: the turn ran and was spoken
            assert "response.audio.delta" in kinds and "rolecraft.expression" in kinds
        assert str(voice_for(call, "你好，我叫林月。")) == "espeak:cmn"
        assert len(spoken_samples(call, "你好，我叫林月。")) / call.options.output_rate > 0.8
    finally:
        runtime.close()


def _call_sync(runtime: Runtime, samples: np.ndarray) -> tuple[Call, list[dict]]:
    return asyncio.run(_call(runtime, samples))

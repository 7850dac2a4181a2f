"""`rolecraft talk --input`: a recorded conversation through the same Call pipeline, as a printed timeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faster_whisper", reason="talk needs rolecraft[whisper]")
pytest.importorskip("silero_vad", reason="talk needs rolecraft[whisper]")

from rolecraft.perception.audio import decode_audio
from rolecraft.voice import BUNDLED_PIPER_VOICE, synthesize
from rolecraft.voice.tts import PiperTTS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import itertools

from cli_helpers import rolecraft

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not PiperTTS.installed(), reason="needs piper-tts")]


def test_talk_plays_a_recording_and_prints_the_event_timeline(tmp_path: Path) -> None:
    import soundfile

    said = decode_audio(synthesize("Hello, who are you?", f"piper:{BUNDLED_PIPER_VOICE}"))[0]
    gap = np.zeros(16_000, dtype=np.float32)
    recording = tmp_path / "talk.wav"
    soundfile.write(recording, np.concatenate([gap / 2, said, gap * 2]), 16_000)
    done = rolecraft(tmp_path / "home", "talk", "ember", "--input", str(recording), "--json",
                     ROLECRAFT_N_THREADS="1")
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session.created" and "input_audio_buffer.speech_started" in kinds
    heard = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert "who are you" in heard["transcript"].lower()
    finished = next(e for e in events if e["type"] == "response.done")
    assert finished["response"]["status"] == "completed" and len(finished["response"]["rolecraft"]["message_ids"]) == 2
    assert kinds.count("response.audio.delta") >= 5 and "rolecraft.expression" in kinds
    assert all(b["t"] >= a["t"] for a, b in itertools.pairwise(events))
    sessions = rolecraft(tmp_path / "home", "sessions", "list", "ember")
    assert events[0]["session"]["id"] in sessions.stdout

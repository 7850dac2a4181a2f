"""The realtime voice WebSocket against a real `rolecraft serve`: speech in, transcripts, replies and audio out.

A recorded conversation (Piper's voice, two utterances, the second after the
first answer has been spoken, with the microphone's silence in between) is streamed
at real-time pace in 100 ms PCM16 frames, as a microphone would send it. The
bundled SmolLM2 answers, Whisper base transcribes, silero VAD segments. Then
the user speaks over the character's reply: the reply stops and is stored cut
and marked interrupted. Protocol errors are checked on the same server.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faster_whisper", reason="the realtime endpoint needs rolecraft[whisper]")
pytest.importorskip("silero_vad", reason="the realtime endpoint needs rolecraft[whisper]")
sync_client = pytest.importorskip("websockets.sync.client", reason="needs websockets")

from rolecraft.perception.audio import decode_audio  # noqa: E402
from rolecraft.voice import BUNDLED_PIPER_VOICE, synthesize  # noqa: E402
from rolecraft.voice.tts import PiperTTS  # noqa: E402

if not PiperTTS.installed():
    pytest.skip("needs piper-tts", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_helpers import Server, start_server, stop_server  # noqa: E402

pytestmark = [pytest.mark.slow,  # the client thread outlives a `with` block, so connect() is used bare
              pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")]
FRAME_S = 0.1
RATE = 16_000


def speech(text: str) -> np.ndarray:
    return decode_audio(synthesize(text, f"piper:{BUNDLED_PIPER_VOICE}"))[0]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), dtype=np.float32)


def pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


class Client:
    """A WebSocket client that sends frames at real-time pace and collects every event in a thread."""

    def __init__(self, url: str) -> None:
        self.ws = sync_client.connect(url, max_size=None, open_timeout=60)
        self.events: list[dict] = []
        self.closed: tuple[int | None, str] | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                self.events.append(json.loads(text))
        except Exception:  # the close code is what the test looks at
            pass
        self.closed = (self.ws.close_code, self.ws.close_reason or "")

    def send(self, kind: str, **fields: object) -> None:
        self.ws.send(json.dumps({"type": kind, **fields}))

    def stream(self, samples: np.ndarray, until: str | None = None) -> None:
        """Send `samples` in 100 ms frames, one per 100 ms; stop early once an event `until` arrived."""
        step = int(RATE * FRAME_S)
        start = time.monotonic()
        for n, i in enumerate(range(0, len(samples), step)):
            if until and self.kinds().count(until):
                return
            self.send("input_audio_buffer.append", audio=base64.b64encode(pcm(samples[i:i + step])).decode())
            time.sleep(max(0.0, start + (n + 1) * FRAME_S - time.monotonic()))

    def audio_s(self, rate: int) -> float:
        """Seconds of reply audio received so far (a client plays it at this pace)."""
        return sum(len(base64.b64decode(e["delta"])) for e in self.events if e["type"] == "response.audio.delta") \
            / 2 / rate

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    def wait_for(self, predicate, timeout: float = 240.0) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout} s; got {self.kinds()[-30:]}")

    def done(self, status: str, count: int = 1) -> dict:
        matches = lambda: [e for e in self.events if e["type"] == "response.done"  # noqa: E731
                           and e["response"]["status"] == status]
        self.wait_for(lambda _: len(matches()) >= count)
        return matches()[count - 1]

    def close(self) -> None:
        self.ws.close()
        self.reader.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("realtime") / "home", ROLECRAFT_MAX_TOKENS="40")
    try:
        yield running
    finally:
        stop_server(running)


def ws_url(server: Server, query: str) -> str:
    return server.url.replace("http://", "ws://") + f"/v1/realtime?{query}"


def test_a_spoken_conversation_is_heard_answered_spoken_and_stored(server: Server) -> None:
    client = Client(ws_url(server, "model=ember"))
    created = client.wait_for(lambda e: e["type"] == "session.created")
    session_id = created["session"]["id"]
    client.stream(np.concatenate([silence(0.5), speech("Hello, who are you?"), silence(1.5)]))
    client.stream(silence(120.0), until="response.done")  # the user lets the answer finish, as people do
    client.stream(silence(client.audio_s(created["session"]["output_sample_rate"]) + 0.5))
    client.stream(np.concatenate([speech("Do you sell hot soup here?"), silence(1.5)]))
    client.done("completed", count=2)
    client.close()
    kinds = client.kinds()
    heard = [e["transcript"] for e in client.events
             if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(heard) == 2 and "who are you" in heard[0].lower() and "soup" in heard[1].lower(), heard
    assert kinds.count("input_audio_buffer.speech_started") == 2 == kinds.count("input_audio_buffer.speech_stopped")
    audio = b"".join(base64.b64decode(e["delta"]) for e in client.events if e["type"] == "response.audio.delta")
    assert len(audio) / 2 / created["session"]["output_sample_rate"] > 1.0  # more than a second of speech
    assert kinds.index("rolecraft.expression") < kinds.index("response.audio.delta")
    assert kinds.index("response.audio_transcript.delta") < kinds.index("response.audio.delta")
    replies = ["".join(e["delta"] for e in client.events if e["type"] == "response.audio_transcript.delta"
                       and e["response_id"] == done["response"]["id"])
               for done in client.events if done["type"] == "response.done"]
    with server.http() as http:
        stored = http.get(f"/v1/sessions/{session_id}").json()["messages"]
    users = [m for m in stored if m["role"] == "user"]
    assert [m["content"] for m in users] == heard
    assert all(m["meta"]["audio"]["observation"]["duration_s"] > 1.0 for m in users)
    assert all(m["meta"]["voice_call"] and m["meta"]["attachments"][0]["kind"] == "audio" for m in users)
    assert [m["content"] for m in stored if m["role"] == "assistant"][1:] == [r.strip() for r in replies]


def test_speaking_over_the_reply_stops_it_and_stores_only_what_was_heard(server: Server) -> None:
    client = Client(ws_url(server, "model=ember"))
    session_id = client.wait_for(lambda e: e["type"] == "session.created")["session"]["id"]
    client.send("session.update", session={"rolecraft": {"partial_transcripts_s": 0}})
    client.stream(np.concatenate([speech("Tell me a long story about the mountain pass."), silence(1.0)]))
    client.stream(silence(60.0), until="response.audio.delta")
    client.stream(np.concatenate([silence(0.3), speech("Wait, stop."), silence(0.2)]))
    cancelled = client.done("cancelled")
    client.close()
    extra = cancelled["response"]["rolecraft"]
    assert cancelled["response"]["status_details"]["reason"] == "turn_detected"
    assert extra["stopped_after_s"] < 0.2
    kinds = client.kinds()
    cut_at = kinds.index("response.done")
    assert "response.audio.delta" not in kinds[cut_at + 1:kinds.index("input_audio_buffer.speech_stopped", cut_at)
                                               if "input_audio_buffer.speech_stopped" in kinds[cut_at:] else None]
    with server.http() as http:
        stored = http.get(f"/v1/sessions/{session_id}").json()["messages"]
    said = "".join(e["delta"] for e in client.events if e["type"] == "response.audio_transcript.delta"
                   and e["response_id"] == cancelled["response"]["id"])
    reply = next(m for m in stored if m["role"] == "assistant" and m["meta"].get("interrupted"))
    assert reply["content"] == extra["heard"] and len(reply["content"]) < len(said.strip())
    assert reply["meta"]["heard_s"] > 0 and said.strip().startswith(reply["content"].split()[0])


def test_a_connection_dropped_mid_reply_stores_nothing_of_that_turn(server: Server) -> None:
    client = Client(ws_url(server, "model=ember"))
    session_id = client.wait_for(lambda e: e["type"] == "session.created")["session"]["id"]
    client.stream(np.concatenate([speech("Tell me everything about the northern holds."), silence(1.0)]))
    client.wait_for(lambda e: e["type"] == "response.created", timeout=120)
    client.ws.close()  # gone before the reply is finished
    time.sleep(8.0)  # whatever the model thread was doing has stopped by now
    with server.http() as http:
        stored = http.get(f"/v1/sessions/{session_id}").json()["messages"]
    assert [m["role"] for m in stored] == ["assistant"]  # the greeting only


def test_bad_format_and_bad_events_are_named(server: Server) -> None:
    client = Client(ws_url(server, "model=ember"))
    client.wait_for(lambda e: e["type"] == "session.created")
    client.send("session.update", session={"input_audio_format": "g711_ulaw"})
    client.send("session.update", session={"input_sample_rate": 7000})
    client.send("no.such.event")
    client.send("input_audio_buffer.append", audio="%%%")
    client.send("session.update", session={"input_sample_rate": 48000})
    client.wait_for(lambda e: e["type"] == "session.updated")
    client.close()
    errors = {e["error"]["code"]: e["error"]["message"] for e in client.events if e["type"] == "error"}
    assert "g711_ulaw" in errors["unsupported_audio_format"] and "7000" in errors["unsupported_sample_rate"]
    assert "no.such.event" in errors["unknown_event"] and "base64" in errors["invalid_audio"]


def test_input_faster_than_real_time_closes_with_4001_and_minutes_of_silence_make_no_turn(server: Server) -> None:
    client = Client(ws_url(server, "model=ember"))
    client.wait_for(lambda e: e["type"] == "session.created")
    minute = base64.b64encode(pcm(silence(60.0))).decode()
    client.send("input_audio_buffer.append", audio=minute[: len(minute) // 2 // 4 * 4])  # 30 s at once
    deadline = time.monotonic() + 30
    while client.closed is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.closed is not None and client.closed[0] == 4001, client.closed
    assert "real time" in client.closed[1]
    assert "input_audio_buffer.speech_started" not in client.kinds()


def test_unknown_session_is_refused_with_a_reason(server: Server) -> None:
    client = Client(ws_url(server, "session=nope"))
    error = client.wait_for(lambda e: e["type"] == "error")
    client.reader.join(timeout=10)
    assert client.closed is not None and client.closed[0] == 1008
    assert error["error"]["code"] == "session_not_found"

"""The web app's call mode in headless Chromium, with a fake microphone playing a Piper recording.

Chromium's fake capture device reads the WAV (once: `%noloop`); the page streams it to /v1/realtime
through the same code a real microphone uses. The test sees the level meter move, the words appear, the
reply's text, expression and audio arrive, and the spoken turn stored in the session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from browser_helpers import open_page, require_browser

require_browser("the call test")
pytest.importorskip("faster_whisper", reason="call mode needs rolecraft[whisper]")
pytest.importorskip("silero_vad", reason="call mode needs rolecraft[whisper]")

from rolecraft.perception.audio import decode_audio  # noqa: E402
from rolecraft.voice import BUNDLED_PIPER_VOICE, synthesize  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_helpers import Server, start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webapp"
WAIT_MS = 240_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("call") / "home", ROLECRAFT_MAX_TOKENS="30")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def microphone(tmp_path: Path) -> Path:
    import soundfile

    words = decode_audio(synthesize("Hello, who are you?", f"piper:{BUNDLED_PIPER_VOICE}"))[0]
    path = tmp_path / "mic.wav"
    soundfile.write(path, np.concatenate([np.zeros(16_000), words, np.zeros(16_000 * 30)]), 16_000,
                    subtype="PCM_16")
    return path


def test_call_mode_hears_you_and_answers_aloud(server: Server, microphone: Path) -> None:
    args = ["--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}%noloop",
            "--autoplay-policy=no-user-gesture-required"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open_page(WAIT_MS, args) as page:
        page.goto(server.url)
        page.click("#gallery .character:has-text('Ember')")
        page.click("#new-session")
        page.wait_for_selector(".msg.assistant")
        page.click("#call")
        page.wait_for_function("() => document.querySelector('#call-level').value > 0.01")
        page.wait_for_function("() => /who are you/i.test(document.querySelector('#call-you').textContent)")
        page.wait_for_function("() => window.callStats.replies.length >= 1")
        page.screenshot(path=str(ARTIFACTS / "call-answered.png"))
        stats = page.evaluate("window.callStats")
        assert stats["audioFrames"] >= 5 and stats["expressions"], stats
        assert page.locator("#call-them").inner_text().strip() == stats["replies"][0].strip()
        page.click("#call")
        assert page.locator("#call-panel").is_hidden()
        page.wait_for_selector(".msg.user .text:has-text('who are you')")

"""The scene view in a real browser against a real `rolecraft serve`: two characters, two turns, join/leave.

Headless Debian Chromium driven by Playwright (never Playwright's own browser download); screenshots land in
test-artifacts/scenes/.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_helpers import open_page, require_browser

sync_api = require_browser("the scene view test")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_helpers import Server, start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "scenes"
WAIT_MS = 240_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("scene-webapp") / "home", ROLECRAFT_MAX_TOKENS="8",
                           ROLECRAFT_STATE_TRACKING="off")
    try:
        yield running
    finally:
        stop_server(running)


def _replies(page: sync_api.Page, count: int) -> list[str]:
    page.wait_for_function(f"() => !document.querySelector('#scene .msg.streaming') && "
                           f"document.querySelectorAll('#scene .msg.assistant').length >= {count}")
    assert page.locator("#status").is_hidden(), page.locator("#status").inner_text()
    return page.locator("#scene .msg.assistant .speaker").all_inner_texts()


def test_a_scene_with_two_characters_plays_two_turns(server: Server) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open_page(WAIT_MS) as page:
        page.goto(server.url)
        page.click("#scene-builder button:has-text('New scene')")
        page.check(".scene-pick[value=ember]")
        page.check(".scene-pick[value=vellum]")
        page.click("#scene-picks button:has-text('Start scene')")
        page.wait_for_selector("#scene-cast .member.present[data-id=vellum]")
        assert page.locator("#scene-cast .member").count() == 2 and page.locator("#chat").is_hidden()
        greeting = page.locator("#scene .msg.assistant").count()

        page.fill("#scene-input", "Ember and Vellum, good evening to you both!")
        page.press("#scene-input", "Enter")
        speakers = _replies(page, greeting + 2)[greeting:]
        assert speakers == ["Ember", "Vellum"], speakers
        page.wait_for_function("() => document.querySelectorAll('#scene-cast .scene-avatar').length === 2 && "
                               "[...document.querySelectorAll('#scene-cast .scene-avatar')]"
                               ".every((img) => img.naturalWidth > 0)")
        page.screenshot(path=str(ARTIFACTS / "01-two-replies.png"))

        page.click("#scene-cast .member[data-id=vellum] button:has-text('Leave')")
        page.wait_for_selector("#scene-cast .member.away[data-id=vellum]")
        page.fill("#scene-input", "Now that he is gone, Ember: can you keep a secret?")
        page.click("#scene-send")
        speakers = _replies(page, greeting + 3)[greeting:]
        assert speakers == ["Ember", "Vellum", "Ember"], speakers
        assert page.locator("#scene .msg.assistant .text").last.inner_text().strip()
        page.screenshot(path=str(ARTIFACTS / "02-after-leave.png"))

"""The web app in a real browser against a real `rolecraft serve`: import, chat, image, regenerate.

Headless Debian Chromium driven by Playwright (never Playwright's own browser
download). Screenshots of every step land in test-artifacts/webapp/.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_helpers import open_page, require_browser

sync_api = require_browser("the web app test")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_helpers import Server, start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webapp"
WAIT_MS = 60_000
# Counts text updates of streaming bubbles: more than one per reply means it arrived in pieces.
WATCH_STREAM = """() => {
  window.streamUpdates = 0;
  new MutationObserver((records) => {
    for (const r of records) if (r.target.closest && r.target.closest('.streaming .text')) window.streamUpdates++;
  }).observe(document.querySelector('#messages'), {childList: true, subtree: true, characterData: true});
}"""
DROP = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type: 'image/png'}));
  const zone = document.querySelector('#dropzone');
  zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
}"""


def _png(array: object) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")  # type: ignore[arg-type]
    return out.getvalue()


def _card() -> bytes:
    """A PNG card with an avatar and a lorebook, as `rolecraft.characters.dump_character` writes it."""
    from PIL import Image
    from skimage import data as skdata

    from rolecraft.characters import dump_character
    from rolecraft.characters.model import Character, Lorebook, LorebookEntry

    avatar = io.BytesIO()
    Image.fromarray(skdata.coffee()).resize((128, 96)).save(avatar, "PNG")
    book = Lorebook(name="Herbarium", entries=[LorebookEntry(keys=["moss"], content="Moss grows on the north wall.")])
    character = Character(name="Mossy Quill", description="A gentle botanist who keeps a herbarium.",
                          personality="patient, curious", first_mes="Welcome to my herbarium, traveller.",
                          character_book=book, avatar=avatar.getvalue())
    return dump_character(character, "png")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("webapp") / "home")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def page(server: Server) -> Iterator[sync_api.Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open_page(WAIT_MS) as tab:
        yield tab


def _shot(page: sync_api.Page, name: str) -> None:
    assert page.locator("#status").is_hidden() or "Imported" in page.locator("#status").inner_text(), \
        page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _send(page: sync_api.Page, text: str, replies: int) -> str:
    """Type and send; wait for reply number `replies` to be stored and shown; its text."""
    page.evaluate("() => { window.streamUpdates = 0; }")
    page.fill("#input", text)
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.streaming")
    page.wait_for_function(f"() => !document.querySelector('.msg.streaming') && "
                           f"document.querySelectorAll('.msg.assistant').length === {replies}")
    assert page.evaluate("window.streamUpdates") > 1, "the reply did not arrive in streamed pieces"
    reply = page.locator(".msg.assistant .text").last.inner_text()
    assert reply.strip()
    assert page.locator("#status").is_hidden(), page.locator("#status").inner_text()
    return reply


def test_import_chat_image_and_regenerate(server: Server, page: sync_api.Page) -> None:
    page.goto(server.url)
    page.wait_for_selector("#gallery .character")
    _shot(page, "01-gallery")

    page.evaluate(DROP, ["mossy.png", base64.b64encode(_card()).decode()])
    page.wait_for_selector("#gallery .character.selected:has-text('Mossy Quill')")
    page.wait_for_function("() => document.querySelector('.character.selected img').naturalWidth > 0")
    _shot(page, "02-imported")

    page.click("#new-session")
    page.wait_for_selector(".msg.assistant .text:has-text('Welcome to my herbarium')")
    page.evaluate(WATCH_STREAM)
    _shot(page, "03-chat-open")

    _send(page, "Hello! What are you working on today?", 2)
    _shot(page, "04-first-reply")
    _send(page, "Tell me about the moss.", 3)
    _shot(page, "05-second-reply")

    from skimage import data as skdata

    photo = ARTIFACTS / "chelsea.png"
    photo.write_bytes(_png(skdata.chelsea()))
    page.set_input_files("#image-file", str(photo))
    page.wait_for_selector("#attachments img")
    _shot(page, "06-image-attached")
    _send(page, "What do you see in this picture?", 4)
    shown = page.locator(".msg.user").last
    assert shown.locator(".text").inner_text() == "What do you see in this picture?"  # the words, not the observation
    page.wait_for_function("() => { const img = [...document.querySelectorAll('.msg.user .thumb')].pop(); "
                           "return img && img.src.startsWith('blob:') && img.naturalWidth > 0; }")
    shown.locator("summary").click()
    assert "cat" in shown.locator(".observation").inner_text()  # what was seen, on demand
    _shot(page, "07-image-reply")
    shown.locator(".thumb").click()
    page.wait_for_selector("dialog.lightbox[open] img")
    _shot(page, "07b-image-enlarged")
    page.locator("dialog.lightbox").click()

    page.click(".msg.assistant:last-child button:has-text('Regenerate')")
    page.wait_for_selector(".swipe-count:has-text('2/2')")
    _shot(page, "08-regenerated")
    page.click(".msg.assistant:last-child button[title='Previous alternative']")
    page.wait_for_selector(".swipe-count:has-text('1/2')")
    _shot(page, "09-first-swipe")

    page.click(".msg.assistant:last-child button:has-text('Voice')")
    page.wait_for_function("() => performance.getEntriesByType('resource').some("
                           "(e) => e.name.endsWith('/audio') && e.responseStatus === 200)")
    assert page.locator("#status").is_hidden(), page.locator("#status").inner_text()

    page.click("#panel .tabs button[data-view='lorebook']")
    page.wait_for_selector("#panel-body:has-text('Moss grows on the north wall.')")
    _shot(page, "10-lorebook")
    assert page.locator("#sessions li").count() == 1

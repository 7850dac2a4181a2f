"""Pictures and speech through a real turn on the bundled model, and the CLI flags for them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from cli_helpers import rolecraft
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.expressions import LABELS
from rolecraft.settings import Settings

skdata = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.slow


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("photo", "concept"), [("chelsea", "cat"), ("coffee", "espresso")])
def test_photo_observation_is_stored_and_prompted(settings: Settings, photo: str, concept: str) -> None:
    engine = Engine(settings)
    session = engine.new_session("ember")
    turn = session.send("Look at this!", images=[_png(getattr(skdata, photo)())])
    assert concept in turn.plan.messages[-3].content or concept in "\n".join(m.content for m in turn.plan.messages)
    turn.text()
    stored = session.history()[-2]
    labels = " ".join(label["name"] for label in stored.meta["images"][0]["labels"])
    assert concept in labels and stored.content == "Look at this!"
    later = session.send("And what do you think now?")
    assert any(concept in m.content for m in later.plan.messages if m.kind == "history")
    engine.close()


def test_only_recent_pictures_are_described(settings: Settings) -> None:
    engine = Engine(settings.model_copy(update={"max_context_images": 1}))
    session = engine.new_session("ember")
    session.send("First picture.", images=[_png(skdata.chelsea())]).text()
    turn = session.send("Second picture.", images=[_png(skdata.coffee())])
    history = "\n".join(m.content for m in turn.plan.messages if m.kind == "history")
    assert "espresso" in history and "cat" not in history and "showed a picture earlier" in history
    engine.close()


def test_bad_pictures_are_clear_errors_and_store_nothing(settings: Settings) -> None:
    engine = Engine(settings)
    session = engine.new_session("ember")
    before = session.history()
    with pytest.raises(RolecraftError, match="image"):
        session.send("Look", images=[b"not an image at all"])
    with pytest.raises(RolecraftError):
        session.send("Look", images=[_png(skdata.chelsea())[:200]])
    assert session.history() == before
    engine.close()


def test_spoken_turn_is_transcribed(settings: Settings) -> None:
    voice = pytest.importorskip("rolecraft.voice")
    wav = voice.synthesize("I would like a cup of coffee please.", "piper:en_US-joe-medium")
    engine = Engine(settings)
    session = engine.new_session("ember")
    turn = session.send(audio=wav)
    turn.text()
    user = session.history()[-2]
    assert "coffee" in user.content
    assert user.meta["audio"]["observation"]["duration_s"] > 1
    assert user.meta["audio"]["note"] in turn.plan.messages[-2].content or any(
        user.meta["audio"]["note"] in m.content for m in turn.plan.messages)
    engine.close()


def test_cli_image_speak_and_expression(home: Path, tmp_path: Path) -> None:
    photo = tmp_path / "cat.png"
    photo.write_bytes(_png(skdata.chelsea()))
    result = rolecraft(home, "chat", "--new", "--image", str(photo), "--speak", "--show-expression",
                       stdin="What is this animal?\n", ROLECRAFT_MAX_TOKENS="40")
    assert result.returncode == 0, result.stderr
    clips = [line.split("(speech: ")[1].rstrip(")") for line in result.stderr.splitlines() if "(speech: " in line]
    assert clips and all(Path(c).read_bytes()[:4] == b"RIFF" for c in clips)
    label = result.stdout.rstrip().rsplit("[", 1)[-1].rstrip("]")
    assert label in LABELS, result.stdout
    shown = rolecraft(home, "sessions", "show", "--tree", result.stdout.split("session ")[1].split()[0])
    assert "What is this animal?" in shown.stdout


def test_native_vision_wiring_fails_clearly_without_projector_weights(settings: Settings) -> None:
    """No vision GGUF ships offline: prove the mmproj path is wired up to the point weights are read."""
    from rolecraft.backends.llama_cpp import LlamaCppBackend
    from rolecraft.backends.models import resolve_gguf

    with pytest.raises(RolecraftError, match="mmproj") as caught:
        LlamaCppBackend(settings.model_copy(update={"mmproj": str(resolve_gguf("smollm2"))}))
    assert caught.value.code == "model_load_failed"
    with pytest.raises(RolecraftError):
        LlamaCppBackend(settings.model_copy(update={"mmproj": "/nonexistent/mmproj.gguf"}))


def test_messages_with_pictures_become_image_url_parts() -> None:
    from rolecraft.messages import Message

    wire = Message("user", "What is this?", images=("data:image/png;base64,AAAA",)).wire()
    assert wire == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "What is this?"}]}
    assert Message("user", "hi").wire() == {"role": "user", "content": "hi"}

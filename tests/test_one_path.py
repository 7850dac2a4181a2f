"""Every door reaches the one turn planner and the one perception path (real bundled model, in-process).

The same conversation is sent through the library/CLI session, the REST session
turn, the OpenAI API in a session, the OpenAI API statelessly (client-held
history) and the training renderer; the model must read token-identical
prompts. A picture sent through the CLI path, REST and an OpenAI `image_url`
part is stored as the same attachment with the same observation meta, and
the user's words stay the user's words.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from rolecraft.backends import create_backend
from rolecraft.backends.base import SamplingParams, StreamEvent
from rolecraft.conversation import Engine
from rolecraft.messages import Message
from rolecraft.server.app import create_app
from rolecraft.server.config import server_settings
from rolecraft.settings import Settings
from rolecraft.training.render import Renderer
from rolecraft.training.samples import TrainingSample

pytestmark = pytest.mark.slow
QUESTION = "Hello! Is the forge hot today?"


class Recording:
    """The real llama.cpp backend, noting the token ids of every prompt it is asked to answer."""

    def __init__(self, real: object) -> None:
        self._real = real
        self.prompts: list[list[int]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        self.prompts.append(self._real.prompt_tokens(messages))
        yield from self._real.stream(messages, params)

    def close(self) -> None:
        """Shared by every test of the module; closed once at the end."""


@pytest.fixture(scope="module")
def real():
    backend = create_backend(Settings(n_ctx=2048, n_threads=2))
    yield backend
    backend.close()


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    return settings.model_copy(update={"state_tracking": "off", "max_tokens": 8, "user_name": "Kai"})


@pytest.fixture
def client(quiet: Settings, real) -> Iterator[tuple[TestClient, Recording]]:
    recording = Recording(real)
    app = create_app(quiet, server_settings(quiet, require_api_key=False), backend=recording)  # type: ignore[arg-type]
    with TestClient(app) as test_client:
        yield test_client, recording


def _png() -> bytes:
    from skimage import data as skdata

    out = io.BytesIO()
    Image.fromarray(np.asarray(skdata.chelsea())).save(out, format="PNG")
    return out.getvalue()


def _session(http: TestClient) -> dict:
    response = http.post("/v1/sessions", json={"character": "ember"})
    assert response.status_code == 201, response.text
    return response.json()


def test_every_door_renders_the_same_prompt(client, quiet: Settings, real) -> None:
    http, recording = client
    engine = Engine(quiet, backend=recording)  # type: ignore[arg-type]
    cli = engine.new_session("ember")
    cli.send(QUESTION).text()
    greeting = cli.history()[0].content

    rest = _session(http)["id"]
    assert http.post(f"/v1/sessions/{rest}/turns", json={"content": QUESTION}).status_code == 200
    openai_session = _session(http)["id"]
    body = {"model": "ember", "messages": [{"role": "user", "content": QUESTION}]}
    assert http.post("/v1/chat/completions", json=body,
                     headers={"X-Rolecraft-Session": openai_session}).status_code == 200
    stateless = {"model": "ember", "metadata": {"user_name": "Kai"},
                 "messages": [{"role": "assistant", "content": greeting}, {"role": "user", "content": QUESTION}]}
    assert http.post("/v1/chat/completions", json=stateless).status_code == 200

    sample = TrainingSample(id="s", character="ember", user="Kai", messages=[
        {"role": "assistant", "content": greeting}, {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "Aye."}])
    encoded = Renderer(real, engine.character, quiet).encode(sample)
    cli_prompt, *others = recording.prompts
    assert len(others) == 3 and all(p == cli_prompt for p in others)
    assert encoded.ids[: encoded.prompt_len] == cli_prompt
    engine.close()


def test_a_picture_is_one_attachment_whichever_door(client, quiet: Settings) -> None:
    http, recording = client
    png = _png()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    engine = Engine(quiet, backend=recording)  # type: ignore[arg-type]
    cli = engine.new_session("ember")
    cli.send("What is this?", images=[png]).text()
    by_cli = cli.history()[-2]

    rest = _session(http)["id"]
    turn = http.post(f"/v1/sessions/{rest}/turns", json={"content": "What is this?", "images": [url]})
    assert turn.status_code == 200, turn.text
    web = _session(http)["id"]
    parts = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    response = http.post("/v1/chat/completions", json={"model": "ember", "messages": [{"role": "user",
                                                                                          "content": parts}]},
                         headers={"X-Rolecraft-Session": web})
    assert response.status_code == 200, response.text
    stored = [http.get(f"/v1/sessions/{sid}").json()["messages"][-2] for sid in (rest, web)]
    for message in stored:
        assert message["content"] == by_cli.content == "What is this?"  # the words, never the observation
        assert message["meta"]["attachments"] == by_cli.meta["attachments"]
        assert message["meta"]["image_notes"] == by_cli.meta["image_notes"]
    assert "cat" in by_cli.meta["image_notes"][0]
    first, *others = recording.prompts
    assert all(p == first for p in others)
    ref = by_cli.meta["attachments"][0]
    picture = http.get(f"/v1/attachments/{ref['sha256']}")
    assert picture.status_code == 200 and picture.content == png and picture.headers["content-type"] == "image/png"
    engine.close()


@pytest.mark.parametrize(("content", "code"), [
    ("x \ud800", "invalid_text"), ("nul \x00 byte", "invalid_text"), ("", "empty_message"),
    ("x" * 100_001, "message_too_long"),
])
def test_bad_text_is_refused_before_the_model(client, content: str, code: str) -> None:
    http, recording = client
    for model in ("smollm2", "ember"):
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": content}]})  # \ud800 escaped
        response = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == code
    rest = _session(http)["id"]
    response = http.post(f"/v1/sessions/{rest}/turns", content=json.dumps({"content": content}),
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text  # the session API refuses the same input
    assert recording.prompts == []

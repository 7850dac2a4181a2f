"""The official `ollama` Python client, unmodified, against a real `rolecraft serve` (as Open WebUI and
SillyTavern's Ollama type talk to it), plus SillyTavern's raw /api/generate body.

Greedy and short: streamed lines must add up to the whole answer, a character id answers in character,
a picture must reach the prompt through perception, and options map onto the same samplers.
"""

from __future__ import annotations

import base64
import io
import json

import ollama
import pytest
from PIL import Image
from server_helpers import Server

pytestmark = pytest.mark.slow
OPTIONS = {"num_predict": 5, "temperature": 0}


def _client(server: Server) -> ollama.Client:
    return ollama.Client(host=server.url, headers={"Authorization": f"Bearer {server.keys['alice']}"}, timeout=180)


def _photo() -> bytes:
    from skimage import data as skdata

    out = io.BytesIO()
    Image.fromarray(skdata.chelsea()).save(out, "PNG")
    return out.getvalue()


def test_list_show_version(server: Server) -> None:
    client = _client(server)
    names = [m.model for m in client.list().models]
    with server.http() as http:
        assert names == [m["id"] for m in http.get("/v1/models").json()["data"]]
        assert http.get("/api/version").json()["version"]
    shown = client.show("smollm2:latest")
    assert "vision" in shown.capabilities and "<|im_start|>" in shown.template
    assert any(key.endswith("context_length") and value > 0 for key, value in shown.modelinfo.items())
    with pytest.raises(ollama.ResponseError) as caught:
        client.show("nobody")
    assert caught.value.status_code == 404


def test_chat_whole_and_streamed_agree(server: Server) -> None:
    client = _client(server)
    messages = [{"role": "user", "content": "Hello! What do you do here?"}]
    whole = client.chat(model="smollm2", messages=messages, options=OPTIONS)
    assert whole.done and whole.done_reason == "length" and whole.eval_count == 5
    assert whole.message.role == "assistant" and whole.message.content
    parts = list(client.chat(model="smollm2", messages=messages, options=OPTIONS, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].prompt_eval_count == whole.prompt_eval_count


def test_chat_with_a_character_answers_in_character(server: Server) -> None:
    client = _client(server)
    messages = [{"role": "user", "content": "Who are you?"}]
    plain = client.chat(model="smollm2", messages=messages, options=OPTIONS)
    ember = client.chat(model="ember", messages=messages, options=OPTIONS)
    assert ember.prompt_eval_count > plain.prompt_eval_count + 50  # the card's prompt comes first
    assert not ember.message.content.lower().startswith("ember:")


def test_chat_pictures_go_through_perception(server: Server) -> None:
    client = _client(server)
    words = {"role": "user", "content": "What do you see?"}
    without = client.chat(model="smollm2", messages=[words], options=OPTIONS)
    seen = client.chat(model="smollm2", messages=[{**words, "images": [_photo()]}], options=OPTIONS)
    assert seen.prompt_eval_count > without.prompt_eval_count  # perception described the picture
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="smollm2", messages=[{**words, "images": [base64.b64encode(b"no image").decode()]}])
    assert caught.value.status_code == 400 and "images[0]" in str(caught.value)


def test_generate_raw_templated_streamed_and_loaded(server: Server) -> None:
    client = _client(server)
    raw = client.generate(model="smollm2", prompt="1, 2, 3,", raw=True, options=OPTIONS)
    with server.http() as http:
        tokens = http.post("/tokenize", json={"content": "1, 2, 3,", "add_special": True}).json()["tokens"]
    assert raw.response and raw.prompt_eval_count == len(tokens)  # as written: no template
    chat = client.generate(model="smollm2", prompt="1, 2, 3,", options=OPTIONS)
    assert chat.prompt_eval_count > raw.prompt_eval_count  # one user turn in the chat template
    parts = list(client.generate(model="smollm2", prompt="1, 2, 3,", raw=True, options=OPTIONS, stream=True))
    assert "".join(p.response for p in parts) == raw.response and parts[-1].done
    assert client.generate(model="smollm2").done_reason == "load"
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model="smollm2", prompt="Hi", options={"temperature": "hot"})
    assert caught.value.status_code == 400


def test_sillytavern_ollama_body(server: Server) -> None:
    # What SillyTavern's server sends for its Ollama text-completion type (src/endpoints/backends/text-completions.js)
    options = {"num_predict": 4, "num_ctx": 2048, "stop": ["\nYou:"], "temperature": 0, "repeat_penalty": 1.1,
               "presence_penalty": 0, "frequency_penalty": 0, "top_k": 40, "top_p": 0.95, "tfs_z": 1,
               "typical_p": 1, "seed": -1, "repeat_last_n": 64, "mirostat": 0, "mirostat_tau": 5,
               "mirostat_eta": 0.1, "min_p": 0.05}
    body = {"model": "smollm2", "prompt": "1, 2, 3,", "stream": False, "keep_alive": -1, "raw": True,
            "options": options}
    with server.http() as http:
        whole = http.post("/api/generate", json=body)
        assert whole.status_code == 200, whole.text
        assert set(whole.headers["x-rolecraft-ignored"].split(", ")) == {"options.num_ctx", "options.repeat_last_n"}
        with http.stream("POST", "/api/generate", json={**body, "stream": True}) as streamed:
            assert streamed.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) for line in streamed.iter_lines() if line]
    assert "".join(line["response"] for line in lines) == whole.json()["response"]
    assert lines[-1]["done"] is True and lines[-1]["eval_count"] == 4

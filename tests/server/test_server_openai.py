"""The official `openai` client, unmodified, against a real `rolecraft serve`.

Streamed and non-streamed greedy answers agree; stateless and session use both
work; image and audio parts are decoded and checked; errors are OpenAI-shaped.
"""

from __future__ import annotations

import base64
import io
import wave

import openai
import pytest
from PIL import Image
from server_helpers import Server, assert_openai_error, new_session

pytestmark = pytest.mark.slow
GREETING = [{"role": "user", "content": "Hello! What do you do here?"}]


def _png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(16000)
        sink.writeframes(b"\x00\x00" * 1600)
    return out.getvalue()


def _streamed(client: openai.OpenAI, **request: object) -> tuple[str, str | None, list]:
    chunks = list(client.chat.completions.create(stream=True, **request))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = next((c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason), None)
    return text, finish, chunks


def test_models_list_characters_and_the_base_model(server: Server) -> None:
    client = server.client()
    models = {m.id: m for m in client.models.list()}
    assert {"ember", "linyue", "vellum", "smollm2"} <= set(models)
    assert models["ember"].model_extra["rolecraft"] == {"kind": "character", "name": "Ember"}
    assert client.models.retrieve("smollm2").model_extra["rolecraft"]["kind"] == "base_model"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nobody")
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("model", ["ember", "smollm2"])
def test_streamed_and_whole_answers_agree(server: Server, model: str) -> None:
    client = server.client()
    # Prime llama.cpp's prompt cache, so both answers below read the same cached prompt: how much of a
    # prompt is evaluated in one batch changes the logits in the last bits, which can flip a greedy tie.
    client.chat.completions.create(model=model, messages=GREETING, temperature=0, max_tokens=3)
    whole = client.chat.completions.create(model=model, messages=GREETING, temperature=0, max_tokens=10)
    text, finish, chunks = _streamed(client, model=model, messages=GREETING, temperature=0, max_tokens=10,
                                     stream_options={"include_usage": True})
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    assert whole.choices[0].message.content.strip()
    assert text == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert whole.usage.completion_tokens > 0 and whole.usage.total_tokens == (
        whole.usage.prompt_tokens + whole.usage.completion_tokens)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_sampling_parameters_are_honoured(server: Server) -> None:
    client = server.client()
    one = client.chat.completions.create(model="ember", messages=GREETING, max_completion_tokens=1, seed=3,
                                         temperature=0.5, top_p=0.9, stop=["\n\n"])
    assert one.choices[0].finish_reason == "length" and one.usage.completion_tokens == 1
    system = [{"role": "system", "content": "Answer in one short sentence."},
              {"role": "developer", "content": "Mention the forge."}, *GREETING]
    assert client.chat.completions.create(model="ember", messages=system, max_tokens=4).choices[0].message.content


@pytest.mark.parametrize(("extra", "param"), [({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
                                              ({"modalities": ["text", "audio"]}, "modalities"),
                                              ({"prediction": {"type": "content", "content": "x"}}, "prediction")])
def test_unsupported_parameters_are_refused_clearly(server: Server, extra: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(model="ember", messages=GREETING, **extra)
    assert caught.value.code == "unsupported_parameter" and caught.value.param == param


def test_unknown_model_and_bad_messages(server: Server) -> None:
    client = server.client()
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nobody", messages=GREETING)
    assert (caught.value.code, caught.value.param, caught.value.type) == (
        "model_not_found", "model", "invalid_request_error")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="ember", messages=[{"role": "assistant", "content": "Hi."}])
    assert caught.value.code == "invalid_messages"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="ember", messages=[])
    assert caught.value.param == "messages"


def test_malformed_json_and_wrong_types(server: Server) -> None:
    with server.http() as http:
        bad = http.post("/v1/chat/completions", content=b'{"model": "ember", "messages": [',
                        headers={"content-type": "application/json"})
        assert_openai_error(bad, 400, "invalid_json")
        wrong = http.post("/v1/chat/completions", json={"model": "ember", "messages": [{"role": "user",
                                                                                        "content": 5}]})
        assert assert_openai_error(wrong, 400, "invalid_type")["param"] == "messages[0].content"
        unknown = http.post("/v1/chat/completions", json={"model": "ember", "messages": GREETING, "bogus": 1,
                                                          "max_tokens": 2})
        assert unknown.status_code == 200 and unknown.headers["X-Rolecraft-Ignored"] == "bogus"  # as llama.cpp does
        missing = http.post("/v1/chat/completions", json={"messages": GREETING})
        assert assert_openai_error(missing, 400, "missing_required_parameter")["param"] == "model"


def _photo() -> str:
    from skimage import data as skdata

    out = io.BytesIO()
    Image.fromarray(skdata.chelsea()).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _speech(text: str) -> bytes:
    from rolecraft.voice import synthesize

    return synthesize(text, "piper:en_US-joe-medium")


def test_image_parts_are_seen_and_bad_ones_refused(server: Server) -> None:
    client = server.client()
    sid = new_session(server, "ember")
    answer = client.chat.completions.create(model="ember", extra_headers={"X-Rolecraft-Session": sid},
                                            messages=[{"role": "user", "content": [
                                                {"type": "text", "text": "What do you see?"},
                                                {"type": "image_url", "image_url": {"url": _photo()}}]}])
    assert answer.choices[0].message.content
    with server.http() as http:
        stored = http.get(f"/v1/sessions/{sid}").json()["messages"][-2]
        assert stored["content"] == "What do you see?"  # the user's words; what was seen lives in meta
        assert "cat" in stored["meta"]["image_notes"][0]
        picture = http.get(f"/v1/attachments/{stored['meta']['attachments'][0]['sha256']}")
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"

    def ask(url: str) -> openai.BadRequestError:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="ember", messages=[{"role": "user", "content": [
                {"type": "text", "text": "What do you see?"}, {"type": "image_url", "image_url": {"url": url}}]}])
        return caught.value

    assert ask("https://example.com/cat.png").code == "remote_media_offline"
    assert ask("data:image/png;base64,@@not-base64@@").code == "invalid_image"
    assert ask("data:image/png;base64," + base64.b64encode(b"not an image").decode()).code == "invalid_image"
    assert ask("ftp://example.com/cat.png").code == "invalid_image_url"


def test_audio_parts_are_heard_and_bad_ones_refused(server: Server) -> None:
    client = server.client()
    sid = new_session(server, "ember")
    spoken = base64.b64encode(_speech("I would like a cup of coffee please.")).decode()
    client.chat.completions.create(model="ember", extra_headers={"X-Rolecraft-Session": sid}, messages=[
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": spoken, "format": "wav"}}]}])
    with server.http() as http:
        stored = http.get(f"/v1/sessions/{sid}").json()["messages"][-2]
        assert "coffee" in stored["content"] and "spoken aloud" in stored["meta"]["audio"]["note"]
        ref = stored["meta"]["attachments"][0]
        assert ref["kind"] == "audio" and http.get(f"/v1/attachments/{ref['sha256']}").content[:4] == b"RIFF"

    def ask(data: str, fmt: str = "wav") -> openai.BadRequestError:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="ember", messages=[{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}]}])
        return caught.value

    assert ask("%%%").code == "invalid_audio"
    assert ask(base64.b64encode(b"plain text").decode()).code == "invalid_audio"
    assert ask(base64.b64encode(_wav()).decode(), "mp3").code == "invalid_audio"


def test_audio_endpoints_speak_and_transcribe(server: Server) -> None:
    client = server.client()
    speech = client.audio.speech.create(model="ember", voice="alloy", input="Hello there.", response_format="wav")
    assert speech.content[:4] == b"RIFF" and len(speech.content) > 10_000
    heard = client.audio.transcriptions.create(model="whisper-1", file=(
        "coffee.wav", _speech("I would like a cup of coffee please."), "audio/wav"))
    assert "coffee" in heard.text
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("hello.wav", b"not audio", "audio/wav"))
    assert caught.value.code == "invalid_audio"
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="ember", voice="alloy", input="Hi", speed=9)
    assert caught.value.param == "speed"


def test_session_use_stores_turns(server: Server) -> None:
    client = server.client()
    sid = new_session(server, "ember")
    first = client.chat.completions.create(model="ember", messages=GREETING,
                                           extra_headers={"X-Rolecraft-Session": sid})
    assert first.model_extra["rolecraft"]["session_id"] == sid
    text, _, chunks = _streamed(client, model="ember", metadata={"session_id": sid},
                                messages=[{"role": "user", "content": "And what is your name?"}])
    assert chunks[-1].model_extra["rolecraft"]["session_id"] == sid
    client.chat.completions.create(model="ember", user=f"session:{sid}",
                                   messages=[{"role": "user", "content": "Thank you."}])
    with server.http() as http:
        path = http.get(f"/v1/sessions/{sid}").json()["messages"]
    assert [m["role"] for m in path] == ["assistant", "user", "assistant"] * 1 + ["user", "assistant"] * 2
    assert [m["content"] for m in path if m["role"] == "user"] == [
        GREETING[0]["content"], "And what is your name?", "Thank you."]
    assert path[2]["content"] == first.choices[0].message.content.strip()
    assert path[4]["content"] == text.strip()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="vellum", messages=GREETING, metadata={"session_id": sid})
    assert caught.value.code == "model_mismatch"

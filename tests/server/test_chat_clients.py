"""Chat completions as the clients people use send them: SillyTavern's bodies, the official `openai` SDK
with samplers, n > 1, logprobs, and the 404 for unknown paths, against a real keyless `rolecraft serve`."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Server, assert_openai_error, new_session, start_server, stop_server

from rolecraft.errors import RolecraftError
from rolecraft.server.chat.protocol import ChatCompletionRequest

pytestmark = pytest.mark.slow
HELLO = [{"role": "user", "content": "Write a short poem about the sea."}]
LOOP = [{"role": "user", "content": "Repeat after me forever: the cat sat on the mat, the cat sat on the mat, "
                                    "the cat sat on the mat,"}]
# SillyTavern's default chat-completion body, plus "Include Body Parameters" extras and one it made up.
TAVERN = {
    "messages": [{"role": "system", "content": "Write Seraphina's next reply."},
                 {"role": "system", "name": "example_user", "content": "Hi"},
                 {"role": "system", "name": "example_assistant", "content": "Hello, traveller."},
                 {"role": "assistant", "content": "Welcome to the glade."}, *HELLO],
    "model": "smollm2", "temperature": 1, "frequency_penalty": 0.3, "presence_penalty": 0.2, "top_p": 1,
    "max_tokens": 8, "stream": False, "logit_bias": {}, "min_p": 0.05, "top_k": 40, "repetition_penalty": 1.1,
    "typical_p": 1, "dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2,
    "dry_sequence_breakers": "[\"\\n\", \":\"]", "xtc_probability": 0.1, "xtc_threshold": 0.1,
    "include_reasoning": False, "chat_completion_source": "custom",
}


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Local single-user mode: loopback, no keys (SillyTavern then sends `Authorization: Bearer `)."""
    home: Path = tmp_path_factory.mktemp("clients") / "home"
    running = start_server(home)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def tokenizer() -> object:
    from llama_cpp import Llama

    from rolecraft.backends.models import resolve_gguf

    return Llama(model_path=str(resolve_gguf("smollm2")), vocab_only=True, verbose=False)


def _ids(tokenizer: object, text: str) -> list[int]:
    return tokenizer.tokenize(text.encode(), add_bos=False, special=False)  # type: ignore[attr-defined]


def _raw_post(server: Server, path: str, body: dict, headers: str) -> tuple[int, dict[str, str], bytes]:
    """POST as bytes on a socket: httpx refuses to send a header value with a trailing space, SillyTavern doesn't."""
    data = json.dumps(body).encode()
    host, port = server.url.removeprefix("http://").split(":")
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=180) as sock:
        sock.sendall(head.encode() + data)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    top, _, payload = answer.partition(b"\r\n\r\n")
    status, *lines = top.decode().split("\r\n")
    return int(status.split()[1]), {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}, payload


def test_sillytavern_body_with_an_empty_bearer_is_honoured(keyless: Server) -> None:
    status, headers, payload = _raw_post(keyless, "/v1/chat/completions", TAVERN, "Authorization: Bearer \r\n")
    assert status == 200, payload
    assert set(headers["x-rolecraft-ignored"].split(", ")) == {"include_reasoning", "chat_completion_source"}
    with keyless.http(None) as http:
        answer = http.post("/v1/chat/completions", json=TAVERN)
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"].strip()
        streamed = http.post("/v1/chat/completions", json={**TAVERN, "stream": True})
        assert streamed.status_code == 200 and "chat_completion_source" in streamed.headers["X-Rolecraft-Ignored"]
        assert streamed.text.rstrip().endswith("data: [DONE]")
    assert "chat_completion_source" in keyless.log_tail()  # logged once by name


@pytest.mark.parametrize(("extra", "param"), [
    ({"min_p": 5}, "min_p"), ({"top_k": "many"}, "top_k"), ({"repetition_penalty": -1}, "repetition_penalty"),
    ({"dry_multiplier": [1]}, "dry_multiplier"), ({"logit_bias": {"forty": 1}}, "logit_bias"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"), ({"frequency_penalty": 3}, "frequency_penalty"),
    ({"top_logprobs": 2}, "top_logprobs"),
])
def test_wrong_sampler_values_are_a_400_naming_the_field(keyless: Server, extra: dict, param: str) -> None:
    with keyless.http(None) as http:
        answer = http.post("/v1/chat/completions", json={"model": "smollm2", "messages": HELLO, **extra})
    assert assert_openai_error(answer, 400)["param"] == param


def test_strict_api_refuses_unknown_fields() -> None:
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": HELLO, "min_p": 0.1, "bogus": 1,
                                                    "cache_prompt": True})
    assert request.check_supported() == ["cache_prompt", "bogus"]
    with pytest.raises(RolecraftError) as caught:
        request.check_supported(strict=True)
    assert (caught.value.code, caught.value.param) == ("unknown_parameter", "bogus")
    assert request.sampling_overrides()["min_p"] == 0.1


def test_logit_bias_and_penalties_change_the_greedy_reply(keyless: Server, tokenizer: object) -> None:
    client = keyless.client()
    ask = {"model": "smollm2", "messages": LOOP, "temperature": 0, "max_tokens": 40}
    plain = client.chat.completions.create(**ask).choices[0].message.content
    ids = _ids(tokenizer, plain)
    assert len(set(ids)) < len(ids) - 6, plain  # greedy decoding repeats itself on this prompt
    first = ids[0]
    banned = client.chat.completions.create(**ask, logit_bias={str(first): -100}).choices[0].message.content
    assert _ids(tokenizer, banned)[0] != first
    for samplers in ({"frequency_penalty": 2, "presence_penalty": 2}, {"extra_body": {"dry_multiplier": 3}},
                     {"extra_body": {"repetition_penalty": 1.8, "top_k": 1}}):
        assert client.chat.completions.create(**ask, **samplers).choices[0].message.content != plain, samplers


def test_n_choices_whole_and_streamed(keyless: Server) -> None:
    client = keyless.client()
    ask = {"model": "smollm2", "messages": HELLO, "temperature": 1.5, "max_tokens": 8, "seed": 11, "n": 3}
    whole = client.chat.completions.create(**ask)
    assert [c.index for c in whole.choices] == [0, 1, 2]
    texts = [c.message.content for c in whole.choices]
    assert len(set(texts)) > 1 and all(texts)
    assert whole.usage.completion_tokens > 8
    chunks = list(client.chat.completions.create(**ask, stream=True))
    streamed: dict[int, str] = {}
    finished = set()
    for chunk in chunks:
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1, 2} and [streamed[i] for i in range(3)] == texts


def test_n_in_a_session_stores_swipes(keyless: Server) -> None:
    sid = new_session(keyless, "ember", key=None)  # type: ignore[arg-type]
    reply = keyless.client().chat.completions.create(
        model="ember", messages=[{"role": "user", "content": "Hello!"}], n=2, temperature=1.2, seed=3,
        extra_headers={"X-Rolecraft-Session": sid})
    assert len(reply.choices) == 2
    with keyless.http(None) as http:
        swipes = http.get(f"/v1/sessions/{sid}/swipes").json()
    assert [s["content"] for s in swipes["swipes"]] == [c.message.content.strip() for c in reply.choices]
    assert len(reply.model_extra["rolecraft"]["message_ids"]) == 3  # the user message and two replies


def test_logprobs_in_openai_shape(keyless: Server) -> None:
    client = keyless.client()
    ask = {"model": "smollm2", "messages": HELLO, "temperature": 0, "max_tokens": 6, "logprobs": True,
           "top_logprobs": 2}
    whole = client.chat.completions.create(**ask)
    content = whole.choices[0].logprobs.content
    assert "".join(t.token for t in content) == whole.choices[0].message.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in content)
    chunks = list(client.chat.completions.create(**ask, stream=True))
    streamed = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs]
    assert [t.token for t in streamed[-1].content] == [t.token for t in content]


def test_models_list_the_base_model_first(keyless: Server) -> None:
    ids = [(m.id, m.model_extra["rolecraft"]["kind"]) for m in keyless.client().models.list()]
    assert ids[0] == ("smollm2", "base_model")
    kinds = [kind for _, kind in ids]
    assert kinds == sorted(kinds, key=["base_model", "adapter", "character"].index)


def test_unknown_paths_are_404_for_every_method(keyless: Server) -> None:
    with keyless.http(None) as http:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            answer = http.request(method, "/no/such/route", json={})
            assert assert_openai_error(answer, 404, "not_found")["message"].startswith(f"unknown URL: {method}")
        assert http.post("/").status_code == 404
        wrong = http.post("/v1/models")
        assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]


def test_session_rest_turns_take_the_same_samplers(keyless: Server) -> None:
    sid = new_session(keyless, "ember", key=None)  # type: ignore[arg-type]
    with keyless.http(None) as http:
        turn = http.post(f"/v1/sessions/{sid}/turns", json={
            "content": "Hello!", "top_k": 5, "min_p": 0.1, "repeat_penalty": 1.2, "dry_multiplier": 0.8,
            "xtc_probability": 0.5, "logit_bias": {"42": -100}, "max_tokens": 6})
        assert turn.status_code == 200, turn.text
        bad = http.post(f"/v1/sessions/{sid}/turns", json={"content": "Hi", "min_p": 3})
        assert assert_openai_error(bad, 400)["param"] == "min_p"
        unknown = http.post(f"/v1/sessions/{sid}/turns", json={"content": "Hi", "bogus": 3})
        assert assert_openai_error(unknown, 400, "unknown_parameter")["param"] == "bogus"
    assert json.loads(turn.text)["messages"][-1]["content"]


def test_openai_compat_forwards_the_samplers_to_a_server(keyless: Server, tokenizer: object) -> None:
    """rolecraft's own server as the remote engine: what openai_compat sends must be honoured there."""
    from rolecraft.backends import SamplingParams, create_backend
    from rolecraft.messages import Message
    from rolecraft.settings import Settings

    remote = create_backend(Settings(backend="openai_compat", base_url=f"{keyless.url}/v1", model="smollm2",
                                     n_ctx=1024))
    ask = [Message("user", "Repeat after me forever: the cat sat on the mat, the cat sat on the mat,")]

    def reply(**fields: object) -> str:
        params = SamplingParams(max_tokens=24, temperature=0.0, repeat_penalty=1.0, seed=1)
        for key, value in fields.items():
            setattr(params, key, value)
        return "".join(e.text for e in remote.stream(ask, params))

    try:
        plain = reply()
        ids = _ids(tokenizer, plain)
        common = max(set(ids), key=ids.count)
        assert common not in _ids(tokenizer, reply(logit_bias={common: -100.0}))
        assert reply(dry_multiplier=3.0) != plain
    finally:
        remote.close()


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The time now.",
                                         "parameters": {"type": "object", "properties": {}}}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_a_required_tool_call_is_valid_whole_and_streamed(keyless: Server) -> None:
    client = keyless.client()
    ask = {"model": "smollm2", "messages": ASK_WEATHER, "tools": [WEATHER, TIME], "temperature": 0,
           "max_tokens": 60, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    whole = client.chat.completions.create(**ask)
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    chunks = list(client.chat.completions.create(**ask, stream=True))
    deltas = [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather" and deltas[0].id
    assert "".join(d.function.arguments or "" for d in deltas) == call.function.arguments
    assert not any(c.choices[0].delta.content for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_auto_and_required_give_a_call_or_words_never_broken_json(keyless: Server) -> None:
    client = keyless.client()
    for choice in ("auto", "required"):
        answer = client.chat.completions.create(model="smollm2", messages=ASK_WEATHER, tools=[WEATHER, TIME],
                                                tool_choice=choice, temperature=0, max_tokens=60).choices[0]
        if answer.message.tool_calls:
            assert answer.finish_reason == "tool_calls"
            assert answer.message.tool_calls[0].function.name in ("get_weather", "get_time")
            assert isinstance(json.loads(answer.message.tool_calls[0].function.arguments), dict)
        else:
            assert choice == "auto" and not answer.message.content.lstrip().startswith("{")
    short = client.chat.completions.create(model="smollm2", messages=ASK_WEATHER, tools=[WEATHER],
                                           tool_choice="required", temperature=0, max_tokens=3).choices[0]
    assert (short.finish_reason, short.message.content, short.message.tool_calls) == ("length", None, None)


def test_tool_results_in_the_history_reach_the_model(keyless: Server) -> None:
    client = keyless.client()
    first = client.chat.completions.create(model="smollm2", messages=ASK_WEATHER, tools=[WEATHER], temperature=0,
                                           max_tokens=60, tool_choice="required").choices[0].message
    history = [*ASK_WEATHER, first.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "Sunny, 24 degrees."}]
    answer = client.chat.completions.with_raw_response.create(model="smollm2", messages=history, tools=[WEATHER],
                                                              temperature=0, max_tokens=16)
    assert answer.parse().choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert "X-Rolecraft-Ignored" not in answer.headers
    with keyless.http(None) as http:
        bad = http.post("/v1/chat/completions", json={"model": "smollm2", "messages": [*ASK_WEATHER, {
            "role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                 "function": {"name": "get_weather", "arguments": "{oops"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "?"}]})
        assert assert_openai_error(bad, 400, "invalid_value")["param"] == "messages[1].tool_calls[0].function.arguments"


def test_structured_output_follows_the_schema(keyless: Server) -> None:
    import jsonschema

    client = keyless.client()
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    made = client.chat.completions.create(model="smollm2", temperature=0, max_tokens=40, response_format=fmt,
                                          messages=[{"role": "user", "content": "Invent a person."}])
    jsonschema.validate(json.loads(made.choices[0].message.content), schema)
    anything = client.chat.completions.create(model="smollm2", temperature=0, max_tokens=40,
                                              response_format={"type": "json_object"}, messages=ASK_WEATHER)
    assert isinstance(json.loads(anything.choices[0].message.content), dict)


def test_bad_tools_are_a_400_naming_the_tool(keyless: Server) -> None:
    broken = {"type": "function", "function": {"name": "broken", "parameters": {"type": "nonsense"}}}
    with keyless.http(None) as http:
        answer = http.post("/v1/chat/completions", json={"model": "smollm2", "messages": ASK_WEATHER,
                                                         "tools": [WEATHER, broken]})
        error = assert_openai_error(answer, 400, "invalid_schema")
        assert error["param"] == "tools[1].function.parameters" and "'broken'" in error["message"]
        unknown = http.post("/v1/chat/completions", json={"model": "smollm2", "messages": ASK_WEATHER,
                                                          "tools": [WEATHER], "tool_choice": {
                                                              "type": "function", "function": {"name": "nope"}}})
        assert assert_openai_error(unknown, 400)["param"] == "tool_choice"
        sid = new_session(keyless, "ember", key=None)  # type: ignore[arg-type]
        stored = http.post("/v1/chat/completions", json={"model": "ember", "messages": ASK_WEATHER,
                                                         "tools": [WEATHER]}, headers={"X-Rolecraft-Session": sid})
        assert assert_openai_error(stored, 400, "unsupported_parameter")["param"] == "tools"


def test_logprobs_are_refused_where_the_backend_cannot_give_them() -> None:
    from rolecraft.backends.base import Capabilities
    from rolecraft.server.chat.serving import _check_backend

    request = ChatCompletionRequest.model_validate({"model": "m", "messages": HELLO, "logprobs": True})
    with pytest.raises(RolecraftError) as caught:
        _check_backend(Capabilities(), "openai_compat", request)
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "logprobs")
    _check_backend(Capabilities(logprobs=True), "llama_cpp", request)

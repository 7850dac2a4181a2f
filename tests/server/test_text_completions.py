"""Text completion against a real `rolecraft serve`: the official `openai` SDK on /v1/completions, and the
bodies SillyTavern's text-completion types send (llama.cpp, KoboldCpp, vLLM, Generic), field for field.

Greedy and short: a streamed answer must equal the whole one, a raw prompt must reach the model as
written (same token count as /tokenize says, no character prompt added), a character named as the
model must apply its banned phrases, and every bad field is a 400 naming it.
"""

from __future__ import annotations

import json
import re
import threading
import time

import openai
import pytest
from server_helpers import Server, assert_openai_error, start_server, stop_server

from rolecraft.backends.base import SamplingParams
from rolecraft.backends.openai_compat import OpenAICompatBackend
from rolecraft.messages import RAW_PROMPT, Message
from rolecraft.settings import Settings

pytestmark = pytest.mark.slow
COUNT = "1, 2, 3,"
STOPS = ["\nYou:", "\nSeraphina:"]
# SillyTavern's llama.cpp type: its whole settings body (public/scripts/textgen-settings.js), as forwarded.
LLAMACPP_BODY = {
    "prompt": COUNT, "n_predict": 4, "max_new_tokens": 4, "max_tokens": 4, "temperature": 0, "top_k": 40,
    "top_p": 0.95, "min_p": 0.05, "typical_p": 1, "typical": 1, "tfs": 1, "tfs_z": 1, "repeat_penalty": 1.1,
    "repetition_penalty": 1.1, "rep_pen": 1.1, "repeat_last_n": 64, "rep_pen_range": 64,
    "presence_penalty": 0, "frequency_penalty": 0, "mirostat": 0, "mirostat_mode": 0, "mirostat_tau": 5,
    "mirostat_eta": 0.1, "dry_multiplier": 0, "dry_base": 1.75, "dry_allowed_length": 2,
    "dry_penalty_last_n": 0, "dry_sequence_breakers": json.dumps(["\n", ":", "\"", "*"]),
    "xtc_probability": 0, "xtc_threshold": 0.1, "samplers": ["top_k", "tfs_z", "typical_p", "top_p", "min_p",
                                                              "xtc", "temperature"],
    "cache_prompt": True, "logit_bias": [], "grammar": "", "stop": STOPS, "stopping_strings": STOPS,
    "n": 1, "stream": False, "seed": -1, "ignore_eos": False, "add_bos_token": True, "skip_special_tokens": True,
    "top_a": 0, "min_keep": 0, "smoothing_factor": 0, "truncation_length": 2048, "num_ctx": 2048,
    "num_predict": 4, "rep_pen_slope": 1, "negative_prompt": "", "guidance_scale": 1, "banned_strings": [],
    "custom_token_bans": "", "api_type": "llamacpp", "api_server": "http://127.0.0.1:8765",
}


def _post(server: Server, path: str, body: dict) -> dict:
    with server.http() as http:
        answer = http.post(path, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sse(server: Server, path: str, body: dict) -> list[dict]:
    with server.http() as http, http.stream("POST", path, json=body) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in answer.iter_lines() if line.startswith("data: ")]
    return [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]


def test_openai_sdk_completions_plain_stream_list_n_echo(server: Server) -> None:
    client = server.client()
    whole = client.completions.create(model="smollm2", prompt=COUNT, max_tokens=4, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 4 and whole.choices[0].text
    chunks = list(client.completions.create(model="smollm2", prompt=COUNT, max_tokens=4, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == 4
    many = client.completions.create(model="smollm2", prompt=[COUNT, "A, B, C,"], n=2, max_tokens=3,
                                     temperature=0, echo=True)
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    assert many.choices[0].text.startswith(COUNT) and many.choices[2].text.startswith("A, B, C,")
    assert whole.choices[0].text.startswith(many.choices[0].text.removeprefix(COUNT))  # greedy: same start
    assert many.choices[0].text == many.choices[1].text
    streamed = list(client.completions.create(model="smollm2", prompt=COUNT, n=2, max_tokens=2, temperature=0,
                                              stream=True))
    assert {c.choices[0].index for c in streamed} == {0, 1}


def test_logprobs_and_refusals(server: Server) -> None:
    client = server.client()
    answer = client.completions.create(model="smollm2", prompt=COUNT, max_tokens=3, temperature=0, logprobs=2)
    logprobs = answer.choices[0].logprobs
    assert "".join(logprobs.tokens) == answer.choices[0].text and len(logprobs.token_logprobs) == 3
    assert all(len(top) == 2 for top in logprobs.top_logprobs) and logprobs.text_offset[0] == 0
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="smollm2", prompt="Hello", suffix="world")
    assert caught.value.body["param"] == "suffix"
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="smollm2", prompt="")
    assert caught.value.body["param"] == "prompt"
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="smollm2", prompt="Hi", extra_body={"min_p": 3})
    assert caught.value.body["param"] == "min_p"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nobody", prompt="Hi")


def test_a_character_lends_its_bans_but_no_prompt(server: Server) -> None:
    client = server.client()
    prompt = "OpenAI, OpenAI, OpenAI, OpenAI, OpenAI,"
    plain = client.completions.create(model="smollm2", prompt=prompt, max_tokens=6, temperature=0)
    ember = client.completions.create(model="ember", prompt=prompt, max_tokens=6, temperature=0)
    assert re.search(r"\bOpenAI\b", plain.choices[0].text), plain.choices[0].text
    assert not re.search(r"\bOpenAI\b", ember.choices[0].text), ember.choices[0].text
    assert ember.usage.prompt_tokens == plain.usage.prompt_tokens  # the prompt as written, nothing added


def test_unknown_fields_are_ignored_and_listed(server: Server) -> None:
    raw = server.client().completions.with_raw_response.create(
        model="smollm2", prompt=COUNT, max_tokens=2, temperature=0, extra_body={"frobnicate": 1, "top_a": 0})
    assert set(raw.headers["x-rolecraft-ignored"].split(", ")) == {"frobnicate", "top_a"}
    assert raw.parse().choices[0].text


def test_sillytavern_llamacpp_body_whole_and_streamed(server: Server) -> None:
    whole = _post(server, "/completion", LLAMACPP_BODY)
    assert whole["stop"] is True and whole["content"] and whole["tokens_predicted"] <= 4
    assert whole["stop_type"] in {"limit", "eos"}
    with server.http() as http:
        ids = http.post("/tokenize", json={"content": COUNT, "add_special": True}).json()["tokens"]
        ignored = http.post("/completion", json=LLAMACPP_BODY).headers["x-rolecraft-ignored"].split(", ")
    assert whole["tokens_evaluated"] == len(ids)  # the raw prompt, tokenized as is
    assert {"api_type", "samplers", "custom_token_bans"} <= set(ignored) and "n_predict" not in ignored
    events = _sse(server, "/completion", {**LLAMACPP_BODY, "stream": True})
    assert all(e["stop"] is False for e in events[:-1]) and events[-1]["stop"] is True
    assert "".join(e["content"] for e in events) == whole["content"]
    probed = _post(server, "/completion", {**LLAMACPP_BODY, "n_probs": 1})
    top = probed["completion_probabilities"][0]["token"]
    top_id = _post(server, "/tokenize", {"content": top})["tokens"]
    avoided = _post(server, "/completion", {**LLAMACPP_BODY, "n_probs": 1, "logit_bias": [[top_id[0], False]]})
    assert avoided["completion_probabilities"][0]["token"] != top  # [[id, false]] bans the greedy token


def test_llamacpp_bad_sampler_fields_name_the_field(server: Server) -> None:
    with server.http() as http:
        for field, value in (("temperature", "hot"), ("top_p", 7), ("n_predict", 0), ("logit_bias", [["a", 1]])):
            answer = http.post("/completion", json={**LLAMACPP_BODY, field: value})
            assert assert_openai_error(answer, 400)["param"] == field, (field, answer.text)
        assert_openai_error(http.post("/completion", json={"prompt": ""}), 400, "invalid_value")


def test_tokenize_both_shapes_detokenize_and_props(server: Server) -> None:
    llama = _post(server, "/tokenize", {"content": "<|im_start|>Hello world"})
    vllm = _post(server, "/tokenize", {"model": "smollm2", "prompt": "Hello world"})
    assert len(llama["tokens"]) == 3 and llama["tokens"][1:] == vllm["tokens"][-2:]  # special token parsed
    assert vllm["count"] == len(vllm["tokens"]) and vllm["max_model_len"] > 0
    pieces = _post(server, "/tokenize", {"content": "Hello world", "with_pieces": True})["tokens"]
    assert "".join(p["piece"] for p in pieces) == "Hello world"
    assert _post(server, "/detokenize", {"tokens": vllm["tokens"]})["content"].endswith("Hello world")
    with server.http() as http:
        assert_openai_error(http.post("/detokenize", json={"tokens": [10**9]}), 400, "invalid_value")
        props = http.get("/props").json()
    assert props["default_generation_settings"]["n_ctx"] == vllm["max_model_len"]
    assert "<|im_start|>" in props["chat_template"]


def test_sillytavern_vllm_and_generic_bodies(server: Server) -> None:
    vllm = {"prompt": COUNT, "model": "smollm2", "max_tokens": 3, "temperature": 0, "top_p": 1, "top_k": 0,
            "min_p": 0, "repetition_penalty": 1, "frequency_penalty": 0, "presence_penalty": 0, "stop": STOPS,
            "n": 1, "stream": False, "ignore_eos": False, "spaces_between_special_tokens": True,
            "skip_special_tokens": True, "include_stop_str_in_output": False, "logprobs": None}
    generic = {k: vllm[k] for k in ("prompt", "model", "max_tokens", "temperature", "top_p", "frequency_penalty",
                                    "presence_penalty", "stop", "n", "stream")}
    first = _post(server, "/v1/completions", vllm)["choices"][0]["text"]
    assert first and _post(server, "/v1/completions", generic)["choices"][0]["text"] == first
    count = _post(server, "/tokenize", {"model": "smollm2", "prompt": COUNT})["count"]
    assert count == _post(server, "/v1/completions", vllm)["usage"]["prompt_tokens"]
    events = _sse(server, "/v1/completions", {**generic, "stream": True})
    assert "".join(e["choices"][0]["text"] for e in events) == first


def test_sillytavern_koboldcpp_routes(server: Server) -> None:
    body = {"prompt": COUNT, "max_length": 3, "max_context_length": 2048, "temperature": 0, "rep_pen": 1.1,
            "rep_pen_range": 64, "top_p": 0.95, "top_k": 40, "top_a": 0, "typical": 1, "tfs": 1,
            "sampler_order": [6, 0, 1, 3, 4, 2, 5], "stop_sequence": STOPS, "trim_stop": True,
            "use_default_badwordsids": False, "genkey": "KCPP1234", "quiet": True}
    oai = _post(server, "/v1/completions", {**body, "max_tokens": 3})["choices"][0]["text"]
    native = _post(server, "/api/v1/generate", body)["results"][0]
    assert native["text"] == oai and native["finish_reason"] == "length"
    with server.http() as http, http.stream("POST", "/api/extra/generate/stream", json=body) as answer:
        lines = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: ")]
    assert "".join(e["token"] for e in lines) == oai and lines[-1]["finish_reason"] == "length"
    counted = _post(server, "/api/extra/tokencount", {"prompt": COUNT})
    assert counted["value"] == len(counted["ids"]) > 0
    with server.http() as http:
        assert http.get("/api/extra/version").json()["result"] == "KoboldCpp"
        assert http.get("/api/v1/model").json()["result"].endswith("smollm2")


def test_koboldcpp_abort_stops_a_generation(server: Server) -> None:
    body = {"prompt": "Once upon a time", "max_length": 400, "temperature": 0, "genkey": "KCPP-ABORT",
            "stop_sequence": []}
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(_post(server, "/api/v1/generate", body)))
    worker.start()
    deadline = time.monotonic() + 60
    with server.http() as http:
        while worker.is_alive() and time.monotonic() < deadline:
            if http.post("/api/extra/abort", json={"genkey": "KCPP-ABORT"}).json()["done"] == "true":
                break
            time.sleep(0.2)
    worker.join(120)
    assert result["results"][0]["finish_reason"] == "abort"


def test_openai_compat_backend_sends_raw_prompts_to_completions(server: Server, tmp_path) -> None:
    settings = Settings(home=tmp_path, backend="openai_compat", base_url=f"{server.url}/v1", model="smollm2",
                        api_key=server.keys["alice"])
    backend = OpenAICompatBackend(settings)
    try:
        events = list(backend.stream([Message("user", COUNT, kind=RAW_PROMPT)],
                                     SamplingParams(max_tokens=4, temperature=0)))
    finally:
        backend.close()
    expected = server.client().completions.create(model="smollm2", prompt=COUNT, max_tokens=4, temperature=0)
    assert "".join(e.text for e in events) == expected.choices[0].text
    assert events[-1].prompt_tokens == expected.usage.prompt_tokens


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory):
    running = start_server(tmp_path_factory.mktemp("strict") / "home", ROLECRAFT_STRICT_API="true")
    try:
        yield running
    finally:
        stop_server(running)


def test_strict_api_refuses_unknown_fields(strict: Server) -> None:
    with strict.http(None) as http:
        answer = http.post("/completion", json={"prompt": COUNT, "n_predict": 2, "frobnicate": 1})
        assert assert_openai_error(answer, 400, "unknown_parameter")["param"] == "frobnicate"
        answer = http.post("/api/generate", json={"model": "smollm2", "prompt": COUNT, "raw": True, "stream": False,
                                                  "options": {"num_predict": 2, "frobnicate": 1}})
        assert assert_openai_error(answer, 400, "unknown_parameter")["param"] == "options.frobnicate"
        assert http.post("/completion", json={"prompt": COUNT, "n_predict": 2, "cache_prompt": True}).status_code == 200

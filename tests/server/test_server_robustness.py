"""Hostile timing against a real server: clients that hang up mid-stream, writers racing on one session,
and the keyless local mode (loopback only)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from server_helpers import Server, new_session, start_server, stop_server

from cli_helpers import rolecraft

pytestmark = pytest.mark.slow
LONG = "Tell me the longest story you know about your forge, with every detail."


def _stored(server: Server, sid: str) -> list[dict]:
    with server.http() as http:
        return http.get(f"/v1/sessions/{sid}/tree").json()["messages"]


def test_disconnect_mid_stream_stops_generation_and_stores_nothing(server: Server) -> None:
    sid = new_session(server)
    before = _stored(server, sid)
    request = {"model": "ember", "stream": True, "max_tokens": 1500, "messages": [{"role": "user", "content": LONG}]}
    with server.http() as http:
        with http.stream("POST", "/v1/chat/completions", json=request, headers={"X-Rolecraft-Session": sid}) as answer:
            assert answer.status_code == 200
            pieces, started = 0, None
            for line in answer.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    started = started or time.monotonic()
                    pieces += 1
                if pieces == 6:
                    break
        rate = 5 / max(time.monotonic() - started, 1e-3)  # pieces a second while streaming
        hung_up = time.monotonic()
        after = http.post("/v1/chat/completions", json={"model": "ember", "max_tokens": 1, "messages": [
            {"role": "user", "content": "Hello?"}]})
        assert after.status_code == 200, after.text
    waited = time.monotonic() - hung_up
    # Had the abandoned reply run on (up to ~1400 more pieces), the next request would have queued behind it.
    assert waited < 0.5 * 1400 / rate, (waited, rate)
    assert _stored(server, sid) == before


def test_concurrent_turns_on_one_session_are_serialised(server: Server) -> None:
    sid = new_session(server)
    greeting = _stored(server, sid)

    def send(i: int) -> int:
        with server.http() as http:
            if i % 2:
                return http.post(f"/v1/sessions/{sid}/turns", json={"content": f"Message {i}"}).status_code
            return http.post("/v1/chat/completions", headers={"X-Rolecraft-Session": sid}, json={
                "model": "ember", "messages": [{"role": "user", "content": f"Message {i}"}]}).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(send, range(4)))
    assert statuses == [200] * 4
    tree = _stored(server, sid)
    with server.http() as http:
        path = http.get(f"/v1/sessions/{sid}").json()["messages"]
    new = [m for m in tree if m not in greeting]
    assert len(new) == 8 and new == path[1:]  # one linear chain: nothing forked, lost or duplicated
    assert sorted(m["content"] for m in path if m["role"] == "user") == [f"Message {i}" for i in range(4)]
    assert [m["role"] for m in path[1:]] == ["user", "assistant"] * 4
    assert all(m["parent_id"] == path[i]["id"] for i, m in enumerate(path[1:]))


def test_keyless_local_mode_on_loopback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    local = start_server(home)
    try:
        with local.http(None) as anonymous, local.http("sk-anything") as any_token:
            assert anonymous.get("/v1/models").status_code == 200
            made = any_token.post("/v1/sessions", json={"character": "vellum"})
            assert made.status_code == 201
            assert made.json()["id"] in {s["id"] for s in anonymous.get("/v1/sessions").json()["data"]}
    finally:
        stop_server(local)
    assert made.json()["id"] in rolecraft(home, "sessions", "list").stdout  # the CLI's sessions are the same


def test_keyless_mode_refuses_non_loopback(tmp_path: Path) -> None:
    done = rolecraft(tmp_path / "home", "serve", "--host", "0.0.0.0", "--no-require-api-key", timeout=60)
    assert done.returncode == 1 and "refusing to serve without API keys" in done.stderr

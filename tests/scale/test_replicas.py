"""Two `rolecraft serve` replicas on one PostgreSQL behind nginx, started by scripts/replicas.sh.

Checks what a deployment relies on: concurrent clients on several sessions lose and duplicate no
turn, each session's turns are all answered by one replica (the one holding its KV cache), requests
without a session are spread over both, and a key's rate limit holds across replicas. Runs in
`make test`'s PostgreSQL pass (ROLECRAFT_TEST_DATABASE_URL); replies are 4 tokens to stay fast.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

ROOT = Path(__file__).parents[2]
PG_URL = os.environ.get("ROLECRAFT_TEST_DATABASE_URL", "")
SESSIONS, TURNS = 4, 3
pytestmark = pytest.mark.skipif(not PG_URL.startswith("postgresql"),
                                reason="needs PostgreSQL: runs in make test's PostgreSQL pass")


def free_base_port() -> int:
    """A port p such that p, p+1 and p+2 are free on loopback (nginx and two replicas)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 2 < 65536 and all(_free(base + i) for i in range(3)):
            return base
    raise RuntimeError("no three free consecutive ports on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start nginx and two replicas on the test database; stop everything afterwards."""
    run_dir = tmp_path_factory.mktemp("replicas")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLECRAFT_")}
    env |= {"ROLECRAFT_DATABASE_URL": PG_URL, "ROLECRAFT_REPLICAS_DIR": str(run_dir),
            "ROLECRAFT_LB_PORT": str(free_base_port()), "ROLECRAFT_N_THREADS": "1",
            "ROLECRAFT_LONG_TERM_MEMORY": "false", "ROLECRAFT_CONFIG": str(run_dir / "none.toml"),
            "ROLECRAFT_BIN": str(Path(sys.executable).with_name("rolecraft")), "ROLECRAFT_PYTHON": sys.executable}
    script = str(ROOT / "scripts" / "replicas.sh")
    try:
        started = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=240)
        assert started.returncode == 0, started.stderr
        yield {**env, "url": started.stdout.strip().splitlines()[-1]}
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=60)


def replica_of(response: httpx.Response) -> str:
    return response.headers["x-rolecraft-replica"]


def chat(client: OpenAI, session_id: str, text: str) -> str:
    """One turn of `session_id` through nginx; the name of the replica that answered."""
    raw = client.chat.completions.with_raw_response.create(
        model="ember", messages=[{"role": "user", "content": text}], max_tokens=4, temperature=0.7,
        extra_headers={"X-Rolecraft-Session": session_id})
    assert raw.parse().choices[0].message.content
    return raw.headers["x-rolecraft-replica"]


def test_concurrent_sessions_keep_every_turn_once_each_on_one_replica(cluster: dict[str, str]) -> None:
    url = cluster["url"]
    with httpx.Client(base_url=url, timeout=60) as http:
        ids = [http.post("/v1/sessions", json={"character": "ember"}).raise_for_status().json()["id"]
               for _ in range(SESSIONS)]
    client = OpenAI(base_url=f"{url}/v1", api_key="local", timeout=300, max_retries=0)

    def converse(session_id: str) -> list[str]:
        return [chat(client, session_id, f"{session_id} turn {t}") for t in range(TURNS)]

    with ThreadPoolExecutor(SESSIONS) as pool:
        answered = dict(zip(ids, pool.map(converse, ids), strict=True))
    with httpx.Client(base_url=url, timeout=60) as http:
        for session_id, replicas in answered.items():
            assert len(set(replicas)) == 1, f"session {session_id} moved between replicas: {replicas}"
            history = http.get(f"/v1/sessions/{session_id}").raise_for_status()
            assert replica_of(history) == replicas[0]  # the session's REST path hashes to the same replica
            messages = history.json()["messages"]
            assert [m["content"] for m in messages if m["role"] == "user"] == [
                f"{session_id} turn {t}" for t in range(TURNS)]
            assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * TURNS


def test_requests_without_a_session_reach_both_replicas(cluster: dict[str, str]) -> None:
    with httpx.Client(base_url=cluster["url"], timeout=30) as http:
        seen = {replica_of(http.get("/health").raise_for_status()) for _ in range(6)}
    assert seen == {"replica-1", "replica-2"}


def test_a_keys_rate_limit_holds_across_replicas(cluster: dict[str, str]) -> None:
    limit = 5
    env = {k: v for k, v in cluster.items() if k != "url"}
    env["ROLECRAFT_HOME"] = str(Path(env["ROLECRAFT_REPLICAS_DIR"]) / "setup")
    made = subprocess.run([env["ROLECRAFT_BIN"], "keys", "create", "scale-test", "--rate-limit", str(limit)],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    secret = made.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=cluster["url"], timeout=30, headers=auth) as http, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: http.get("/v1/models"), range(2 * limit)))
    assert sorted(a.status_code for a in answers) == [200] * limit + [429] * limit
    assert {replica_of(a) for a in answers} == {"replica-1", "replica-2"}
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"

"""The server shared by every test file in this folder.

API keys are required (made by the real `rolecraft keys` command: alice, bob, a
revoked one, and one limited to 3 requests a minute); bodies are capped at 2 MiB
and CORS allows one origin.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_helpers import MAX_BODY, ORIGIN, Server, make_key, start_server, stop_server

from cli_helpers import rolecraft


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("server") / "home"
    home.mkdir(parents=True)
    keys = {name: make_key(home, name) for name in ("alice", "bob", "revoked")}
    keys["limited"] = make_key(home, "limited", "--rate-limit", "3")
    assert rolecraft(home, "keys", "revoke", keys["revoked"][0]).returncode == 0
    running = start_server(home, ROLECRAFT_REQUIRE_API_KEY="true", ROLECRAFT_MAX_BODY_BYTES=str(MAX_BODY),
                           ROLECRAFT_CORS_ORIGINS=ORIGIN, ROLECRAFT_RATE_LIMIT_PER_MINUTE="10000")
    running.keys = {name: secret for name, (_, secret) in keys.items()}
    running.key_ids = {name: key_id for name, (key_id, _) in keys.items()}
    try:
        yield running
    finally:
        stop_server(running)

"""The cross-key matrix: every REST route over personas, lorebooks, characters, sessions and attachments,
called by key B on key A's things, answers as if they did not exist and changes nothing of A's.

In-process (`create_app` on the word-counting fake backend): ownership is decided before any model runs.
The route list comes from /openapi.json, so a new route under these prefixes fails the test until it is
added to the walk below.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from fakes import WordBackend
from rolecraft.server.app import create_app
from rolecraft.server.config import server_settings
from rolecraft.settings import Settings
from rolecraft.store import Store
from rolecraft.store.keys import create_key

PREFIXES = ("/v1/personas", "/v1/lorebooks", "/v1/characters", "/v1/sessions", "/v1/attachments")
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
LORE = {"name": "Alice's lore", "entries": [{"keys": ["vault"], "content": "The vault code is 1234."}]}
CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
        "data": {"name": "Agent Alice", "description": "Secret.", "first_mes": "Psst."}}


@dataclass
class Keys:
    http: TestClient
    a: dict[str, str]
    b: dict[str, str]
    a_owner: str


@pytest.fixture
def keys(settings: Settings) -> Iterator[Keys]:
    quiet = settings.model_copy(update={"state_tracking": "off", "max_tokens": 8})
    store = Store(quiet.db_url)
    alice, alice_secret = create_key(store, "alice")
    _, bob_secret = create_key(store, "bob")
    store.close()
    app = create_app(quiet, server_settings(quiet, require_api_key=True), backend=WordBackend(4096))
    with TestClient(app) as http:
        yield Keys(http, {"Authorization": f"Bearer {alice_secret}"}, {"Authorization": f"Bearer {bob_secret}"},
                   alice.id)


@dataclass
class Alices:
    char: str
    session: str
    message: int
    attached: int
    sha: str


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def _alices_things(k: Keys, state) -> Alices:
    """Alice uploads a character, keeps a persona and a lorebook, chats, attaches the lorebook, sends a picture."""
    files = {"file": ("agent.json", io.BytesIO(json.dumps(CARD).encode()), "application/json")}
    char = _ok(k.http.post("/v1/characters", files=files, headers=k.a), 201)["id"]
    _ok(k.http.put("/v1/personas/me", json={"name": "Alice", "description": "Spy."}, headers=k.a))
    _ok(k.http.put("/v1/lorebooks/alice-lore", json=LORE, headers=k.a))
    session = _ok(k.http.post("/v1/sessions", json={"character": char}, headers=k.a), 201)["id"]
    turn = _ok(k.http.post(f"/v1/sessions/{session}/turns", json={"content": "The vault?"}, headers=k.a))
    attached = _ok(k.http.post(f"/v1/sessions/{session}/lorebooks", json={"lorebook_id": "alice-lore"},
                               headers=k.a), 201)["id"]
    store = state.engine.store
    sha = store.put_attachment(PICTURE, "image/png", "image", k.a_owner)
    return Alices(char, session, turn["messages"][0]["id"], attached, sha)


def _snapshot(k: Keys, a: Alices) -> dict:
    """Everything of Alice's, as Alice reads it."""
    get = lambda path: _ok(k.http.get(path, headers=k.a))  # noqa: E731
    return {"personas": get("/v1/personas"), "lorebooks": get("/v1/lorebooks"), "card": get(f"/v1/characters/{a.char}"),
            "tree": get(f"/v1/sessions/{a.session}/tree"), "attached": get(f"/v1/sessions/{a.session}/lorebooks"),
            "picture": k.http.get(f"/v1/attachments/{a.sha}", headers=k.a).content}


def _walk(a: Alices) -> dict[tuple[str, str], tuple[dict, int]]:
    """(method, route) → (request for key B aimed at Alice's things, the status B must get)."""
    s, m = a.session, a.message
    sample = {"role": "assistant", "content": "Hacked."}
    return {
        ("GET", "/v1/personas"): ({}, 200),
        ("PUT", "/v1/personas/{persona_id}"): ({"path": "/v1/personas/me", "json": {"name": "Bob"}}, 200),
        ("DELETE", "/v1/personas/{persona_id}"): ({"path": "/v1/personas/me"}, 404),
        ("GET", "/v1/lorebooks"): ({}, 200),
        ("GET", "/v1/lorebooks/{book_id}"): ({"path": "/v1/lorebooks/alice-lore"}, 404),
        ("PUT", "/v1/lorebooks/{book_id}"): ({"path": "/v1/lorebooks/alice-lore", "json": {"entries": []}}, 200),
        ("DELETE", "/v1/lorebooks/{book_id}"): ({"path": "/v1/lorebooks/alice-lore"}, 404),
        ("GET", "/v1/characters"): ({}, 200),
        ("POST", "/v1/characters"): ({"upload": a.char}, 409),
        ("GET", "/v1/characters/{char_id}"): ({"path": f"/v1/characters/{a.char}"}, 404),
        ("DELETE", "/v1/characters/{char_id}"): ({"path": f"/v1/characters/{a.char}"}, 404),
        ("GET", "/v1/characters/{char_id}/export"): ({"path": f"/v1/characters/{a.char}/export"}, 404),
        ("GET", "/v1/characters/{char_id}/avatar"): ({"path": f"/v1/characters/{a.char}/avatar"}, 404),
        ("GET", "/v1/characters/{char_id}/lorebook"): ({"path": f"/v1/characters/{a.char}/lorebook"}, 404),
        ("PUT", "/v1/characters/{char_id}/lorebook"): ({"path": f"/v1/characters/{a.char}/lorebook",
                                                        "json": LORE}, 404),
        ("GET", "/v1/characters/{char_id}/expressions"): ({"path": f"/v1/characters/{a.char}/expressions"}, 404),
        ("GET", "/v1/characters/{char_id}/expressions/{label}"): (
            {"path": f"/v1/characters/{a.char}/expressions/joy"}, 404),
        ("POST", "/v1/sessions"): ({"json": {"character": a.char}}, 404),
        ("GET", "/v1/sessions"): ({}, 200),
        ("GET", "/v1/sessions/{session_id}"): ({"path": f"/v1/sessions/{s}"}, 404),
        ("DELETE", "/v1/sessions/{session_id}"): ({"path": f"/v1/sessions/{s}"}, 404),
        ("GET", "/v1/sessions/{session_id}/tree"): ({"path": f"/v1/sessions/{s}/tree"}, 404),
        ("POST", "/v1/sessions/{session_id}/turns"): ({"path": f"/v1/sessions/{s}/turns", "json": {"content": "Hi"}},
                                                      404),
        ("POST", "/v1/sessions/{session_id}/regenerate"): ({"path": f"/v1/sessions/{s}/regenerate", "json": {}}, 404),
        ("POST", "/v1/sessions/{session_id}/edit"): ({"path": f"/v1/sessions/{s}/edit", "json": sample}, 404),
        ("GET", "/v1/sessions/{session_id}/swipes"): ({"path": f"/v1/sessions/{s}/swipes"}, 404),
        ("POST", "/v1/sessions/{session_id}/swipes"): ({"path": f"/v1/sessions/{s}/swipes", "json": {"index": 0}},
                                                       404),
        ("POST", "/v1/sessions/{session_id}/branch"): ({"path": f"/v1/sessions/{s}/branch",
                                                        "json": {"message_id": m}}, 404),
        ("DELETE", "/v1/sessions/{session_id}/messages/{message_id}"): ({"path": f"/v1/sessions/{s}/messages/{m}"},
                                                                        404),
        ("GET", "/v1/sessions/{session_id}/messages/{message_id}/audio"): (
            {"path": f"/v1/sessions/{s}/messages/{m}/audio"}, 404),
        ("GET", "/v1/sessions/{session_id}/state"): ({"path": f"/v1/sessions/{s}/state"}, 404),
        ("GET", "/v1/sessions/{session_id}/summary"): ({"path": f"/v1/sessions/{s}/summary"}, 404),
        ("GET", "/v1/sessions/{session_id}/lorebooks"): ({"path": f"/v1/sessions/{s}/lorebooks"}, 404),
        ("POST", "/v1/sessions/{session_id}/lorebooks"): ({"path": f"/v1/sessions/{s}/lorebooks",
                                                           "json": {"lorebook_id": "alice-lore"}}, 404),
        ("DELETE", "/v1/sessions/{session_id}/lorebooks/{attached_id}"): (
            {"path": f"/v1/sessions/{s}/lorebooks/{a.attached}"}, 404),
        ("GET", "/v1/attachments/{sha256}"): ({"path": f"/v1/attachments/{a.sha}"}, 404),
    }


def _routes(http: TestClient) -> set[tuple[str, str]]:
    paths = http.get("/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() if path.startswith(PREFIXES) for method in ops}


def _call(k: Keys, method: str, route: str, request: dict):
    if "upload" in request:
        files = {"file": ("mine.json", io.BytesIO(json.dumps(CARD).encode()), "application/json")}
        return k.http.post(route, files=files, data={"id": request["upload"]}, headers=k.b)
    return k.http.request(method, request.get("path", route), json=request.get("json"), headers=k.b)


def test_key_b_can_neither_read_nor_change_alices_things(keys: Keys) -> None:
    k = keys
    alices = _alices_things(k, k.http.app.state.rolecraft)
    before = _snapshot(k, alices)
    walk = _walk(alices)
    assert set(walk) == _routes(k.http), "add new routes to the ownership walk"
    secrets = (alices.char, alices.session, "alice-lore", "Spy.", "1234", alices.sha)
    for (method, route), (request, status) in sorted(walk.items(), key=lambda item: item[0][0] == "PUT"):
        response = _call(k, method, route, request)
        assert response.status_code == status, f"{method} {route}: {response.status_code} {response.text}"
        if status == 200:
            leaked = [x for x in secrets if x in response.text and x not in request.get("path", "")]
            assert not leaked, f"{method} {route} shows Alice's {leaked}"
        if status == 404:
            assert response.json()["error"]["code"].endswith("_not_found"), response.text
    assert _snapshot(k, alices) == before


def test_what_b_gets_for_alices_ids_is_what_unknown_ids_get(keys: Keys) -> None:
    k = keys
    alices = _alices_things(k, k.http.app.state.rolecraft)
    for known, unknown in ((f"/v1/sessions/{alices.session}", "/v1/sessions/0123456789abcdef"),
                           (f"/v1/characters/{alices.char}", "/v1/characters/no-such-one"),
                           ("/v1/lorebooks/alice-lore", "/v1/lorebooks/no-such-one"),
                           (f"/v1/attachments/{alices.sha}", f"/v1/attachments/{'0' * 64}")):
        theirs, missing = k.http.get(known, headers=k.b), k.http.get(unknown, headers=k.b)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"]
    mine = _ok(k.http.post("/v1/sessions", json={"character": "ember"}, headers=k.b), 201)["id"]
    attach = k.http.post(f"/v1/sessions/{mine}/lorebooks", json={"lorebook_id": "alice-lore"}, headers=k.b)
    assert attach.status_code == 404
    picture = k.http.get(f"/v1/attachments/{alices.sha}", headers=k.a)
    assert picture.content == PICTURE and picture.headers["content-type"] == "image/png"


def test_shared_samples_are_read_only_for_keys(keys: Keys) -> None:
    k = keys
    before = _ok(k.http.get("/v1/characters/ember/lorebook", headers=k.b))
    for response in (k.http.put("/v1/characters/ember/lorebook", json=LORE, headers=k.b),
                     k.http.delete("/v1/characters/ember", headers=k.b)):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "character_read_only"
    assert _ok(k.http.get("/v1/characters/ember/lorebook", headers=k.a)) == before
    listed = {c["id"]: c for c in _ok(k.http.get("/v1/characters", headers=k.b))["data"]}
    assert listed["ember"]["source"] == "sample"
    files = {"file": ("ember.json", io.BytesIO(json.dumps(_ok(k.http.get("/v1/characters/ember", headers=k.b)))
                                                .encode()), "application/json")}
    copy = _ok(k.http.post("/v1/characters", files=files, headers=k.b), 201)["id"]
    assert copy != "ember"
    assert _ok(k.http.put(f"/v1/characters/{copy}/lorebook", json=LORE, headers=k.b))["name"] == LORE["name"]
    assert copy not in {c["id"] for c in _ok(k.http.get("/v1/characters", headers=k.a))["data"]}


def test_a_keys_default_persona_opens_its_sessions_only(keys: Keys) -> None:
    k = keys
    _ok(k.http.put("/v1/personas/me", json={"name": "Alice", "description": "Spy.", "default": True}, headers=k.a))
    alices = _ok(k.http.post("/v1/sessions", json={"character": "ember"}, headers=k.a), 201)
    assert (alices["user_name"], alices["persona"]) == ("Alice", "Spy.")
    bobs = _ok(k.http.post("/v1/sessions", json={"character": "Ember"}, headers=k.b), 201)
    assert bobs["user_name"] != "Alice" and bobs["persona"] != "Spy." and bobs["character_id"] == "ember"


def test_other_doors_do_not_reach_alices_character_or_persona(keys: Keys) -> None:
    k = keys
    alices = _alices_things(k, k.http.app.state.rolecraft)
    models = {m["id"] for m in _ok(k.http.get("/v1/models", headers=k.b))["data"]}
    assert alices.char not in models and alices.char in {m["id"] for m in _ok(k.http.get("/v1/models",
                                                                                          headers=k.a))["data"]}
    ask = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    for path, body in (("/v1/chat/completions", {"model": alices.char, **ask}),
                       ("/v1/completions", {"model": alices.char, "prompt": "Hi", "max_tokens": 4}),
                       ("/api/chat", {"model": alices.char, **ask, "stream": False})):
        assert k.http.post(path, json=body, headers=k.b).status_code == 404, path
    _ok(k.http.put("/v1/personas/me", json={"name": "Alice", "description": "Spy.", "default": True}, headers=k.a))
    backend = k.http.app.state.rolecraft.engine.backend
    _ok(k.http.post("/v1/chat/completions", json={"model": "ember", **ask}, headers=k.b))
    assert "Spy." not in "\n".join(m.content for m in backend.prompts[-1])  # B's prompt: not A's persona
    _ok(k.http.post("/v1/chat/completions", json={"model": "ember", **ask}, headers=k.a))
    assert "Spy." in "\n".join(m.content for m in backend.prompts[-1])

"""Native REST against a real `rolecraft serve`: characters, sessions, keys, limits, file names, CORS, spec."""

from __future__ import annotations

import json
import uuid

import httpx2
import pytest
from server_helpers import MAX_BODY, ORIGIN, Server, assert_openai_error, new_session

from rolecraft.characters.io import dump_character, load_character
from rolecraft.characters.model import Character

pytestmark = pytest.mark.slow


def _card(name: str) -> bytes:
    return dump_character(Character(name=name, description="A test character.", first_mes="Well met.",
                                    alternate_greetings=["Hello again."]), "png")


def test_character_upload_list_get_export_delete(server: Server) -> None:
    name = f"Tess {uuid.uuid4().hex[:6]}"
    with server.http() as http:
        made = http.post("/v1/characters", files={"file": ("../../etc/tess.png", _card(name), "image/png")})
        assert made.status_code == 201, made.text
        char_id = made.json()["id"]
        assert made.json()["name"] == name and made.json()["source"] == "upload"
        assert char_id in {c["id"] for c in http.get("/v1/characters").json()["data"]}
        assert http.get(f"/v1/characters/{char_id}").json()["data"]["name"] == name
        exported = http.get(f"/v1/characters/{char_id}/export", params={"format": "png", "spec": "v2"})
        assert exported.headers["content-type"] == "image/png"
        assert "filename=\"character.png\"" in exported.headers["content-disposition"]
        assert load_character(exported.content).name == name
        assert http.get(f"/v1/characters/{char_id}/avatar").content.startswith(b"\x89PNG")
        again = http.post("/v1/characters", files={"file": ("t.png", _card(name), "image/png")},
                          data={"id": char_id})
        assert_openai_error(again, 409, "character_exists")
        assert http.delete(f"/v1/characters/{char_id}").json() == {"id": char_id, "deleted": True}
        assert_openai_error(http.get(f"/v1/characters/{char_id}"), 404, "character_not_found")


def test_bad_cards_are_clear_errors(server: Server) -> None:
    with server.http() as http:
        junk = http.post("/v1/characters", files={"file": ("card.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")})
        assert_openai_error(junk, 400, "invalid_card")
        empty = http.post("/v1/characters", files={"file": ("card.json", b"{}", "application/json")})
        assert_openai_error(empty, 400, "invalid_card")
        bad_id = http.post("/v1/characters", files={"file": ("c.png", _card("X"), "image/png")},
                           data={"id": "../escape"})
        assert assert_openai_error(bad_id, 400)["param"] == "id"
        assert_openai_error(http.post("/v1/characters"), 400, "missing_required_parameter")


def test_lorebook_and_expressions(server: Server) -> None:
    with server.http() as http:
        char_id = http.post("/v1/characters", files={"file": ("c.png", _card("Lore Keeper"), "image/png")}).json()["id"]
        book = {"name": "World", "entries": [{"keys": ["forge"], "content": "The forge never cools."}]}
        assert http.put(f"/v1/characters/{char_id}/lorebook", json=book).json()["entries"][0]["keys"] == ["forge"]
        assert http.get(f"/v1/characters/{char_id}/lorebook").json()["name"] == "World"
        assert http.get(f"/v1/characters/{char_id}").json()["data"]["character_book"]["name"] == "World"
        wrong = http.put(f"/v1/characters/{char_id}/lorebook", json={"entries": [{"keys": "forge"}]})
        assert assert_openai_error(wrong, 400)["param"] == "entries[0].keys"
        assert http.get(f"/v1/characters/{char_id}/expressions").json()["expressions"] == {}
        assert_openai_error(http.get(f"/v1/characters/{char_id}/expressions/joy"), 404, "sprite_not_found")
        http.delete(f"/v1/characters/{char_id}")


def test_session_tree_swipes_edits_branches(server: Server) -> None:
    sid = new_session(server)
    with server.http() as http:
        turn = http.post(f"/v1/sessions/{sid}/turns", json={"content": "Hi, I'm Mara."}).json()
        user_id, reply_id = (m["id"] for m in turn["messages"])
        regen = http.post(f"/v1/sessions/{sid}/regenerate", json={"temperature": 0.9, "seed": 5}).json()
        assert [m["role"] for m in regen["messages"]] == ["assistant"]
        swipes = http.get(f"/v1/sessions/{sid}/swipes").json()
        assert [m["id"] for m in swipes["swipes"]] == [reply_id, regen["messages"][0]["id"]]
        assert swipes["selected"] == 1
        assert http.post(f"/v1/sessions/{sid}/swipes", json={"index": 0}).json()["selected"] == 0
        assert http.get(f"/v1/sessions/{sid}").json()["messages"][-1]["id"] == reply_id
        edited = http.post(f"/v1/sessions/{sid}/edit", json={"role": "assistant", "content": "Welcome, Mara!"})
        assert edited.json()["messages"][0]["content"] == "Welcome, Mara!"
        redo = http.post(f"/v1/sessions/{sid}/edit", json={"role": "user", "content": "Hi, I'm Mara!"}).json()
        assert redo["messages"][0]["content"] == "Hi, I'm Mara!"
        tree = http.get(f"/v1/sessions/{sid}/tree").json()["messages"]
        assert len([m for m in tree if m["role"] == "user"]) == 2
        assert len([m for m in tree if m["parent_id"] == user_id]) == 3  # reply, regenerated, edited
        branched = http.post(f"/v1/sessions/{sid}/branch", json={"message_id": reply_id}).json()
        assert branched["messages"][-1]["id"] == reply_id
        after = http.delete(f"/v1/sessions/{sid}/messages/{user_id}").json()
        assert [m["role"] for m in after["messages"]] == ["assistant"]
        assert_openai_error(http.post(f"/v1/sessions/{sid}/branch", json={"message_id": 10**9}), 404)
        assert http.get(f"/v1/sessions/{sid}/state").json()["user"]["name"] is None
        assert http.get(f"/v1/sessions/{sid}/summary").json()["summary"] == ""
        mara = http.post(f"/v1/sessions/{sid}/turns", json={"content": "My name is Mara."})
        assert mara.status_code == 200, mara.text
        assert http.get(f"/v1/sessions/{sid}/state").json()["user"]["name"] == "Mara"
        assert http.put("/v1/personas/mara", json={"name": "Mara", "description": "A sailor."}).status_code == 200
        assert [p["id"] for p in http.get("/v1/personas").json()] == ["mara"]
        assert http.delete(f"/v1/sessions/{sid}").json()["deleted"] is True
        assert_openai_error(http.get(f"/v1/sessions/{sid}"), 404, "session_not_found")


def test_streamed_rest_turn(server: Server) -> None:
    sid = new_session(server)
    with server.http() as http, http.stream("POST", f"/v1/sessions/{sid}/turns",
                                            json={"content": "Tell me about your forge.", "stream": True}) as answer:
        events = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: {")]
    text = "".join(e.get("delta", "") for e in events)
    assert events[-1]["turn"]["messages"][1]["content"] == text.strip()


def test_sessions_belong_to_their_key(server: Server) -> None:
    sid = new_session(server, key="alice")
    with server.http("bob") as bob, server.http("alice") as alice:
        assert_openai_error(bob.get(f"/v1/sessions/{sid}"), 404, "session_not_found")
        assert_openai_error(bob.post(f"/v1/sessions/{sid}/turns", json={"content": "hi"}), 404)
        assert_openai_error(bob.delete(f"/v1/sessions/{sid}"), 404)
        chat = bob.post("/v1/chat/completions", headers={"X-Rolecraft-Session": sid},
                        json={"model": "ember", "messages": [{"role": "user", "content": "hi"}]})
        assert_openai_error(chat, 404, "session_not_found")
        assert sid not in {s["id"] for s in bob.get("/v1/sessions").json()["data"]}
        assert sid in {s["id"] for s in alice.get("/v1/sessions").json()["data"]}
        assert_openai_error(bob.delete("/v1/characters/ember"), 403, "character_read_only")  # shared sample


def test_keys_are_required_and_checked(server: Server) -> None:
    with server.http(None) as anonymous:
        missing = anonymous.get("/v1/models")
        assert_openai_error(missing, 401, "invalid_api_key")
        assert missing.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/health").status_code == 200
    for key in ("revoked", "rc-not-a-real-key"):
        with server.http(key) as http:
            assert_openai_error(http.get("/v1/models"), 401, "invalid_api_key")


def test_rate_limit_per_key(server: Server) -> None:
    with server.http("limited") as http:
        statuses = [http.get("/v1/models").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = http.get("/v1/models")
        assert_openai_error(limited, 429, "rate_limit_exceeded")
        assert int(limited.headers["retry-after"]) > 0
    with server.http("alice") as http:
        assert http.get("/v1/models").status_code == 200


def test_body_size_limit(server: Server) -> None:
    big = {"model": "ember", "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    with server.http() as http:
        assert_openai_error(http.post("/v1/chat/completions", json=big), 413, "request_too_large")

        def chunks():  # no Content-Length: counted as it arrives
            yield b'{"model": "ember", "messages": [{"role": "user", "content": "'
            for _ in range(3):
                yield b"x" * (MAX_BODY // 2)
            yield b'"}]}'

        chunked = http.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert_openai_error(chunked, 413, "request_too_large")


@pytest.mark.parametrize("path", ["/v1/characters/..%2F..%2Fetc%2Fpasswd", "/v1/characters/%2e%2e/export",
                                  "/..%2F..%2Fpyproject.toml", "/v1/sessions/..%2F..%2Fx/tree",
                                  "/v1/models/..%2F..%2Fetc%2Fpasswd"])
def test_no_path_traversal(server: Server, path: str) -> None:
    with server.http() as http:
        answer = http.get(path)
    assert answer.status_code in (400, 404) and "root:" not in answer.text and "[project]" not in answer.text


def test_cors_and_published_spec(server: Server) -> None:
    with server.http() as http:
        preflight = http.options("/v1/chat/completions", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        other = http.get("/v1/models", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
        spec = http.get("/openapi.json").json()
    assert {"/v1/chat/completions", "/v1/models", "/v1/audio/speech", "/v1/audio/transcriptions",
            "/v1/characters", "/v1/sessions/{session_id}/tree"} <= set(spec["paths"])
    assert httpx2.get(f"{server.url}/openapi.json").status_code == 200

"""Library lorebooks over the REST API: stored, listed, attached to a session, and read by its next turn."""

from __future__ import annotations

from server_helpers import Server, assert_openai_error, new_session

BOOK = {"name": "Dragon lore", "entries": [
    {"keys": ["dragon"], "content": "Old Cinderjaw, a dragon the size of a barn, sleeps under Kettle Pass and "
                                    "wakes only when someone rings the summit bell three times."}]}


def _prompt_tokens(server: Server, sid: str) -> int:
    turn = server.http().post(f"/v1/sessions/{sid}/turns", json={"content": "Is there a dragon here?",
                                                                 "max_tokens": 4})
    assert turn.status_code == 200, turn.text
    return turn.json()["prompt_tokens"]


def test_library_lorebook_reaches_the_sessions_it_is_attached_to(server: Server) -> None:
    http = server.http()
    stored = http.put("/v1/lorebooks/dragons", json=BOOK)
    assert stored.status_code == 200, stored.text
    assert stored.json()["entries"] == 1 and stored.json()["name"] == "Dragon lore"
    assert "dragons" in {b["id"] for b in http.get("/v1/lorebooks").json()}
    plain, lore = new_session(server), new_session(server)
    attached = http.post(f"/v1/sessions/{lore}/lorebooks", json={"lorebook_id": "dragons"})
    assert attached.status_code == 201, attached.text
    assert [b["name"] for b in http.get(f"/v1/sessions/{lore}/lorebooks").json()] == ["Dragon lore"]
    assert _prompt_tokens(server, lore) > _prompt_tokens(server, plain) + 20
    assert_openai_error(server.http("bob").get(f"/v1/sessions/{lore}/lorebooks"), 404)
    assert_openai_error(http.post(f"/v1/sessions/{lore}/lorebooks", json={"lorebook_id": "nope"}), 404)
    detached = http.delete(f"/v1/sessions/{lore}/lorebooks/{attached.json()['id']}")
    assert detached.status_code == 200 and http.get(f"/v1/sessions/{lore}/lorebooks").json() == []
    assert http.delete("/v1/lorebooks/dragons").json() == {"id": "dragons", "deleted": True}
    assert_openai_error(http.get("/v1/lorebooks/dragons"), 404)


def test_a_malformed_lorebook_is_refused(server: Server) -> None:
    answer = server.http().put("/v1/lorebooks/bad", json={"entries": [{"keys": "dragon", "content": 3}]})
    assert answer.status_code == 400

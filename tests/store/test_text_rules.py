"""NUL characters are refused by the store, naming the field, on every database (PostgreSQL cannot hold
them in text; SQLite could). Runs on SQLite or ROLECRAFT_TEST_DATABASE_URL."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from fakes import WordBackend
from rolecraft.characters.model import Character, Lorebook
from rolecraft.errors import RolecraftError
from rolecraft.server.app import create_app
from rolecraft.server.config import server_settings
from rolecraft.settings import Settings
from rolecraft.store import Store
from rolecraft.store.records import NewMessage


def _refused(field: str, call, *args, **kwargs) -> None:
    with pytest.raises(RolecraftError) as caught:
        call(*args, **kwargs)
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "invalid_text", field)


def test_nul_is_refused_at_the_store_boundary(store: Store) -> None:
    cid = store.put_character(Character(name="Tess", first_mes="Hi."))
    sid = store.create_session(cid, user_name="U").id
    _refused("content", store.append, sid, None, [NewMessage("user", "U", "hi\x00there")])
    _refused("name", store.append, sid, None, [NewMessage("user", "U\x00", "hi")])
    _refused("user_name", store.create_session, cid, user_name="U\x00")
    _refused("persona", store.create_session, cid, user_name="U", persona="\x00")
    _refused("name", store.put_character, Character(name="Bad\x00Name"))
    _refused("name", store.put_persona, "p", "Ro\x00bin")
    _refused("description", store.put_persona, "p", "Robin", "\x00")
    _refused("name", store.put_lorebook, "book", Lorebook(name="\x00"))
    assert store.get_session(sid).message_count == 0
    assert [m.content for m in store.append(sid, None, [NewMessage("user", "U", "fine \u2028 text")])] \
        == ["fine \u2028 text"]


def test_nul_inside_json_fields_round_trips(store: Store) -> None:
    """Card fields and meta are JSON, where a NUL is an escape (\\u0000) both databases keep."""
    cid = store.put_character(Character(name="Tess", description="a\x00b", first_mes="Hi."))
    assert store.get_character(cid).description == "a\x00b"


def test_rest_answers_a_nul_with_a_400_naming_the_field(settings: Settings) -> None:
    """Through the API the store's refusal is an OpenAI error naming the field, never a 500 (PostgreSQL too)."""
    quiet = settings.model_copy(update={"state_tracking": "off"})
    app = create_app(quiet, server_settings(quiet, require_api_key=False), backend=WordBackend(4096))
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Bad\x00Name", "first_mes": "Hi."}}
    with TestClient(app) as http:
        answers = {
            "name": http.put("/v1/personas/nul-test", json={"name": "Ro\x00bin"}),
            "user_name": http.post("/v1/sessions", json={"character": "ember", "user_name": "U\x00"}),
            "persona": http.post("/v1/sessions", json={"character": "ember", "persona": "\x00"}),
        }
        answers["file.name"] = http.post("/v1/characters", files={
            "file": ("bad.json", io.BytesIO(json.dumps(card).encode()), "application/json")})
        for field, answer in answers.items():
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["param"] == field.removeprefix("file."), answer.text
        assert "nul-test" not in {p["id"] for p in http.get("/v1/personas").json()}

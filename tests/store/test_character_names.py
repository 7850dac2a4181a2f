"""Characters resolve by id or by a unique case-insensitive name, in the store and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import rolecraft
from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.store import Store


def test_ids_and_unique_names_resolve_in_any_case(store: Store) -> None:
    cid = store.put_character(Character(name="Seraphina", first_mes="Welcome."))
    moon = store.put_character(Character(name="林月", first_mes="你好。"))
    assert cid == "seraphina"
    for ref in ("seraphina", "Seraphina", "SERAPHINA", " seraphina "):
        assert store.resolve_character(ref) == cid
    assert store.resolve_character("林月") == moon
    assert store.get_character("SeRaPhInA").name == "Seraphina"
    assert store.create_session("Seraphina", user_name="U").character_id == cid
    assert store.latest_session("SERAPHINA").character_id == cid
    with pytest.raises(RolecraftError) as caught:
        store.resolve_character("Nobody")
    assert caught.value.status == 404 and caught.value.message == "unknown character: 'Nobody'"


def test_an_ambiguous_name_lists_the_ids(store: Store) -> None:
    first = store.put_character(Character(name="Twin", first_mes="A."))
    second = store.put_character(Character(name="twin", first_mes="B."))
    assert store.resolve_character(first) == first  # an exact id always wins
    with pytest.raises(RolecraftError) as caught:
        store.get_character("TWIN")
    assert caught.value.code == "ambiguous_character" and caught.value.status == 400
    assert f"{first}, {second}" in caught.value.message
    assert store.has_character("TWIN")


def test_cli_uses_the_name_it_printed(home: Path, tmp_path: Path) -> None:
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Seraphina", "description": "A forest guardian.", "first_mes": "Welcome, traveller."}}
    source = tmp_path / "seraphina.json"
    source.write_text(json.dumps(card))
    assert rolecraft(home, "characters", "import", str(source)).stdout.strip() == "imported Seraphina as seraphina"
    chat = rolecraft(home, "chat", "Seraphina", "--new", stdin="/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert "with Seraphina" in chat.stdout and "Welcome, traveller." in chat.stdout
    out = tmp_path / "out.json"
    exported = rolecraft(home, "characters", "export", "Seraphina", "--format", "json", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["data"]["name"] == "Seraphina"
    shown = rolecraft(home, "characters", "show", "SERAPHINA")
    assert "Name: Seraphina" in shown.stdout
    unknown = rolecraft(home, "characters", "export", "Nobody")
    assert unknown.returncode != 0 and "unknown character: 'Nobody'" in unknown.stderr

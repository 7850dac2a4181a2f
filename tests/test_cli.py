"""The CLI without generation: character and session commands, settings, and error rendering."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import rolecraft


def test_characters_list_shows_samples(home: Path) -> None:
    result = rolecraft(home, "characters", "list")
    assert result.returncode == 0, result.stderr
    assert "ember" in result.stdout and "sample" in result.stdout


def test_import_export_round_trip(home: Path, tmp_path: Path) -> None:
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Pip", "description": "A tiny knight.", "first_mes": "Halt!",
                     "extensions": {"someone_else": {"keep": [1, 2]}}}}
    source = tmp_path / "pip.json"
    source.write_text(json.dumps(card))
    assert rolecraft(home, "characters", "import", str(source)).stdout.strip() == "imported Pip as pip"
    out = tmp_path / "out" / "pip.png"
    result = rolecraft(home, "characters", "export", "pip", "-o", str(out))
    assert result.returncode == 0, result.stderr
    again = rolecraft(home, "characters", "import", str(out), "--id", "pip2")
    assert again.returncode == 0, again.stderr
    shown = json.loads(rolecraft(home, "characters", "show", "pip2", "--json").stdout)
    assert shown["data"]["extensions"]["someone_else"] == {"keep": [1, 2]}


def test_bad_cards_fail_cleanly_and_store_nothing(home: Path, tmp_path: Path) -> None:
    before = rolecraft(home, "characters", "list").stdout
    cases = {
        "truncated.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        "garbage.json": b"{not json",
        "noname.json": json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": ""}}).encode(),
        "future.json": json.dumps({"spec": "chara_card_v9", "spec_version": "9.0", "data": {"name": "X"}}).encode(),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = rolecraft(home, "characters", "import", str(path))
        assert result.returncode == 1, (name, result.stdout)
        assert result.stderr.startswith("error: ") and name in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (50 * 1024 * 1024))
    result = rolecraft(home, "characters", "import", str(big))
    assert result.returncode == 1 and "big.png" in result.stderr
    assert rolecraft(home, "characters", "list").stdout == before


def test_unknown_ids_are_errors(home: Path) -> None:
    for args in (["chat", "nobody"], ["characters", "show", "nobody"], ["sessions", "show", "nope"],
                 ["sessions", "delete", "nope"], ["sessions", "list", "nobody"]):
        result = rolecraft(home, *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: unknown"), result.stderr


def test_sessions_are_listed_by_character_name_or_id(home: Path) -> None:
    from fakes import WordBackend
    from rolecraft.conversation import Engine
    from rolecraft.settings import Settings

    engine = Engine(Settings(), backend=WordBackend(2048))
    ember, vellum = engine.new_session("ember").id, engine.new_session("vellum").id
    engine.close()
    for ref in ("Ember", "ember", "EMBER"):
        listed = rolecraft(home, "sessions", "list", ref).stdout
        assert ember in listed and vellum not in listed, (ref, listed)


def test_settings_flags_and_help(home: Path) -> None:
    result = rolecraft(home, "--temperature", "5", "models", "list")
    assert result.returncode == 1 and "--temperature" in result.stderr
    result = rolecraft(home, "models", "list", ROLECRAFT_BACKEND="nope")
    assert result.returncode == 0 and "in use: nope" in result.stdout
    help_text = rolecraft(home, "--help").stdout
    assert "--catchphrase-bias" in help_text and "ROLECRAFT_N_CTX" in help_text

"""Settings precedence: flags > environment > config file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolecraft.cli.options import build_settings
from rolecraft.errors import RolecraftError


def test_precedence(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('user_name = "Config"\nmax_tokens = 50\ntop_k = 7\n')
    monkeypatch.setenv("ROLECRAFT_MAX_TOKENS", "60")
    monkeypatch.setenv("ROLECRAFT_BANNED_PHRASES", '["foo", "bar baz"]')
    settings = build_settings({"user_name": "Flag", "temperature": None})
    assert (settings.user_name, settings.max_tokens, settings.top_k) == ("Flag", 60, 7)
    assert settings.banned_phrases == ["foo", "bar baz"]
    assert settings.db_url == f"sqlite:///{home / 'rolecraft.db'}"
    assert build_settings({"banned_phrases": "one, two"}).banned_phrases == ["one", "two"]


def test_invalid_values_name_the_flag(home: Path) -> None:
    with pytest.raises(RolecraftError, match="--n-ctx"):
        build_settings({"n_ctx": "12"})
    with pytest.raises(RolecraftError, match="--temperature"):
        build_settings({"temperature": "hot"})

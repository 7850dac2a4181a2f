"""Shared fixtures: an isolated rolecraft home per test, and the database URL under test.

Set ROLECRAFT_TEST_DATABASE_URL to run the store tests against another database (e.g. PostgreSQL).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolecraft.settings import Settings
from rolecraft.store import Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ROLECRAFT_HOME; env vars and config files of the developer do not leak in."""
    for key in list(os.environ):
        if key.startswith("ROLECRAFT_") and key != "ROLECRAFT_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("ROLECRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROLECRAFT_CONFIG", str(tmp_path / "config.toml"))
    return tmp_path / "home"


@pytest.fixture
def db_url(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    return os.environ.get("ROLECRAFT_TEST_DATABASE_URL") or f"sqlite:///{home / 'test.db'}"


@pytest.fixture
def settings(home: Path, db_url: str) -> Settings:
    """Greedy, short replies on the bundled model: deterministic tests."""
    home.mkdir(parents=True, exist_ok=True)
    return Settings(home=home, database_url=db_url, temperature=0.0, max_tokens=24, seed=1, n_threads=2,
                    long_term_memory=False)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A Store on the database under test, emptied afterwards (shared databases such as PostgreSQL)."""
    s = Store(db_url)
    yield s
    for info in s.list_characters():
        if info.source != "sample":  # the bundled samples are shared by every test on a shared database
            s.delete_character(info.id)
    s.close()

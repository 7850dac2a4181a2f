"""What the server needs from the store: API keys, session owners, compare-and-set turns, the v1 → v2 migration.

Runs on SQLite, or on ROLECRAFT_TEST_DATABASE_URL (PostgreSQL in `make test`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.store import Store, migrations
from rolecraft.store.keys import create_key, find_key, list_keys, revoke_key
from rolecraft.store.records import NewMessage


def test_keys_are_stored_hashed_and_revocable(store: Store) -> None:
    key, secret = create_key(store, "alice", rate_limit=30)
    assert secret.startswith("rc-") and len(secret) > 40
    assert find_key(store, secret) == key and key.rate_limit == 30
    assert find_key(store, secret + "x") is None and find_key(store, "not-a-key") is None
    with store.engine.connect() as conn:
        stored = [tuple(row) for row in conn.exec_driver_sql("SELECT * FROM api_keys")]
    assert not any(secret in str(value) for row in stored for value in row)
    assert revoke_key(store, key.id).revoked_at is not None
    assert find_key(store, secret) is None
    assert key.id in {k.id for k in list_keys(store) if not k.active}
    with pytest.raises(RolecraftError, match="unknown api_key"):
        revoke_key(store, "nope")
    with pytest.raises(RolecraftError, match="1 to 100 characters"):
        create_key(store, "  ")


def test_sessions_have_owners(store: Store) -> None:
    cid = store.put_character(Character(name="Owner Test", first_mes="Hi."))
    mine = store.create_session(cid, user_name="U", owner="k1")
    theirs = store.create_session(cid, user_name="U", owner="k2")
    local = store.create_session(cid, user_name="U")
    assert store.get_session(mine.id).owner == "k1"
    assert [s.id for s in store.list_sessions(cid, owner="k1")] == [mine.id]
    assert [s.id for s in store.list_sessions(cid, owner=None)] == [local.id]
    assert {s.id for s in store.list_sessions(cid)} == {mine.id, theirs.id, local.id}


def test_append_with_expected_head_refuses_a_moved_head(store: Store) -> None:
    cid = store.put_character(Character(name="Race Test", first_mes="Hi."))
    info = store.create_session(cid, user_name="U", greetings=[NewMessage("assistant", "R", "Hi.")])
    head = info.head_id
    first = store.append(info.id, head, [NewMessage("user", "U", "a"), NewMessage("assistant", "R", "b")],
                         expect_head=head)
    with pytest.raises(RolecraftError, match="changed while") as caught:
        store.append(info.id, head, [NewMessage("user", "U", "c"), NewMessage("assistant", "R", "d")],
                     expect_head=head)
    assert caught.value.status == 409 and caught.value.code == "session_conflict"
    assert [m.content for m in store.path(info.id)] == ["Hi.", "a", "b"]
    assert store.get_session(info.id).head_id == first[-1].id


def test_v1_sqlite_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE schema_version (version INTEGER PRIMARY KEY);
            INSERT INTO schema_version VALUES (1);
            CREATE TABLE characters (id VARCHAR(80) PRIMARY KEY, name VARCHAR(200), card JSON, avatar BLOB,
                                     source VARCHAR(20), created_at DATETIME);
            CREATE TABLE sessions (id VARCHAR(32) PRIMARY KEY, character_id VARCHAR(80) REFERENCES characters(id),
                                   title VARCHAR(200), user_name VARCHAR(64), persona TEXT, head_id INTEGER,
                                   created_at DATETIME, updated_at DATETIME);
            INSERT INTO characters VALUES ('old', 'Old', '{"name": "Old"}', NULL, 'import', '2024-01-01 00:00:00');
            INSERT INTO sessions VALUES ('s1', 'old', '', 'U', '', NULL, '2024-01-01 00:00:00',
                                         '2024-01-01 00:00:00');
        """)
    store = Store(f"sqlite:///{path}")
    try:
        assert store.get_session("s1").owner is None
        assert [s.id for s in store.list_sessions(owner=None)] == ["s1"]
        assert store.create_session("old", user_name="U", owner="k").owner == "k"
        assert migrations.current(store.engine) == migrations.head()
    finally:
        store.close()
    Store(f"sqlite:///{path}").close()  # migrating again is a no-op

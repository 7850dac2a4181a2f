"""Numbered migrations: a database written by the last release before them upgrades without losing a row.

tests/fixtures/released.db was written by that release (tests/fixtures/make_released_db.py). On SQLite a
copy of it is upgraded in place; with ROLECRAFT_TEST_DATABASE_URL set to PostgreSQL its rows are loaded into
a fresh schema at the old revision and upgraded there.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, insert, select, text
from sqlalchemy.engine import Engine, make_url

from rolecraft.characters.model import Character
from rolecraft.store import Store, migrations
from rolecraft.store.keys import list_keys
from rolecraft.store.records import NewMessage
from rolecraft.store.tables import Base

FIXTURE = Path(__file__).parents[1] / "fixtures" / "released.db"
OLD_TABLES = ("characters", "sessions", "messages", "api_keys", "personas", "lorebooks", "session_lorebooks",
              "session_members", "memories")
PG_URL = os.environ.get("ROLECRAFT_TEST_DATABASE_URL", "")


def _released() -> MetaData:
    """The released schema, as the fixture database holds it."""
    meta = MetaData()
    meta.reflect(create_engine(f"sqlite:///{FIXTURE}"))
    return meta


def _rows(engine: Engine, meta: MetaData) -> dict[str, list[tuple]]:
    """Every row of every released table (released columns only, read with their types), in a stable order."""
    present = MetaData()
    present.reflect(engine)
    found = {}
    with engine.connect() as conn:
        for name in OLD_TABLES:
            table = present.tables[name]
            result = conn.execute(select(*[table.c[c.name] for c in meta.tables[name].columns]))
            found[name] = sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                                  for row in result), key=repr)
    return found


def _check_usable(store: Store) -> None:
    """The upgraded rows work through the store, and new writes land beside them."""
    assert store.default_persona().name == "Robin"
    assert [p.id for p in store.list_personas()] == ["me", "pirate"]
    assert [b.id for b in store.list_lorebooks()] == ["harbour"]
    assert store.get_lorebook("harbour").book.entries[0].content == "Fog every morning."
    assert store.resolve_character("SERAPHINA") == "seraphina"
    local = next(s for s in store.list_sessions("seraphina"))
    path = store.path(local.id)
    assert [m.content for m in path] == ["Welcome, traveller.", "Where is the harbour? 🌊", "Follow the gulls."]
    assert path[1].meta == {"image_notes": ["a map"]}
    assert [a.name for a in store.session_lorebooks(local.id)] == ["Harbour lore"]
    assert len(store.memories_since(local.id, 0)) == 1
    assert sorted(k.name for k in list_keys(store)) == ["alice", "old laptop"]
    appended = store.append(local.id, path[-1].id, [NewMessage("user", "Robin", "Thanks!")])
    assert appended[0].id > path[-1].id
    store.put_persona("me", "Ali", owner=next(k.id for k in list_keys(store) if k.name == "alice"))
    assert store.get_persona("me").name == "Robin"


def test_baseline_revision_is_the_released_schema(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'baseline.db'}")
    migrations.upgrade(engine, "0001")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), _released())
    assert [d for d in diffs if "alembic_version" not in repr(d)] == []


def test_released_sqlite_database_upgrades_without_loss(tmp_path: Path) -> None:
    copy = tmp_path / "released.db"
    shutil.copy(FIXTURE, copy)
    released = _released()
    before = _rows(create_engine(f"sqlite:///{FIXTURE}"), released)
    assert all(before[name] for name in OLD_TABLES)  # the fixture has rows in every table
    store = Store(f"sqlite:///{copy}")
    try:
        assert migrations.current(store.engine) == migrations.head()
        assert _rows(store.engine, released) == before
        _check_usable(store)
    finally:
        store.close()
    Store(f"sqlite:///{copy}").close()  # a second open finds nothing to do


def test_upgraded_schema_matches_the_tables(tmp_path: Path) -> None:
    """The migrations and store/tables.py describe the same schema (add a revision with every table change)."""
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    Base.metadata) == []
    finally:
        store.close()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A database URL whose default schema is a fresh, empty PostgreSQL schema."""
    if not PG_URL.startswith("postgresql"):
        pytest.skip("set ROLECRAFT_TEST_DATABASE_URL to a PostgreSQL URL (make test does)")
    schema = f"released_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_released_rows_upgrade_on_postgresql(pg_schema: str) -> None:
    released = _released()
    before = _rows(create_engine(f"sqlite:///{FIXTURE}"), released)
    engine = create_engine(pg_schema)
    migrations.upgrade(engine, "0001")  # the released schema, as that rolecraft created it on PostgreSQL
    _load(engine, released)
    engine.dispose()
    store = Store(pg_schema)
    try:
        assert migrations.current(store.engine) == migrations.head()
        assert _rows(store.engine, released) == before
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        _check_usable(store)
    finally:
        store.close()


def _load(engine: Engine, released: MetaData) -> None:
    """Copy the fixture's rows into `engine`'s tables, and move the id sequences past them."""
    target = MetaData()
    target.reflect(engine)
    source = create_engine(f"sqlite:///{FIXTURE}")
    with source.connect() as src, engine.begin() as dst:
        for name in OLD_TABLES:
            rows = [dict(row._mapping) for row in src.execute(select(released.tables[name]))]
            dst.execute(insert(target.tables[name]), rows)
        for name in ("messages", "session_lorebooks", "memories"):
            dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))


def test_new_database_upgrades_and_works(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        cid = store.put_character(Character(name="Tess", first_mes="Hi."))
        assert store.create_session(cid, user_name="U").character_id == cid
        assert migrations.current(store.engine) == migrations.head()
    finally:
        store.close()


def test_revisions_are_numbered_in_one_line() -> None:
    """`migrations.head()` reads the file names; Alembic's own view of the scripts must agree."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(migrations.HERE))
    assert scripts.get_heads() == [migrations.head()]
    for script in scripts.walk_revisions():
        assert Path(script.path).name.startswith(f"{script.revision}_")

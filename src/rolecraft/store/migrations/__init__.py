"""Numbered schema migrations (Alembic), applied to every database when a `Store` opens it.

Alembic is configured here in code: no alembic.ini and no network at run
time. Revision 0001 is the schema rolecraft had before migrations were
numbered; it creates whatever part of it a database lacks, so an empty
database and one written by an older rolecraft (a `schema_version` table,
with or without the tables added later) both arrive at it. Later revisions
are ordinary steps. To add one, write `versions/NNNN_what.py` by hand with
revision "NNNN" (see the existing ones) and change `store/tables.py` to match;
tests/store checks that the two agree.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).parent
VERSION_TABLE = "alembic_version"


def _config(connection: Connection):  # -> alembic.config.Config
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest) in one transaction; Alembic is only
    loaded when there is something to do (opening an up-to-date database costs one query)."""
    if revision == "head" and current(engine) == head():
        return
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # two processes starting at once migrate one after the other
            connection.execute(text("SELECT pg_advisory_xact_lock(7160001)"))
        command.upgrade(_config(connection), revision)


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: not yet migrated)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def head() -> str:
    """The newest revision: revisions are numbered, and each file is named after its number."""
    return max(path.name.split("_", 1)[0] for path in (HERE / "versions").glob("[0-9]*_*.py"))

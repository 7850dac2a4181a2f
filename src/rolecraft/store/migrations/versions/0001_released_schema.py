"""The schema of rolecraft before numbered migrations (its `schema_version` 2 and the tables added after it).

Each table is created only when missing and `sessions.owner` only added when
absent, so this revision also adopts databases that older rolecraft versions
created (with `create_all` and an inspect-based patch).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from rolecraft.errors import RolecraftError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = {
    "schema_version": lambda: op.create_table(
        "schema_version", sa.Column("version", sa.Integer, primary_key=True)),
    "characters": lambda: op.create_table(
        "characters",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("avatar", sa.LargeBinary, nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False)),
    "sessions": lambda: op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("character_id", sa.String(80), sa.ForeignKey("characters.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("persona", sa.Text, nullable=False),
        sa.Column("head_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, index=True),
        sa.Column("owner", sa.String(16), nullable=True, index=True)),
    "messages": lambda: op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=True,
                  index=True),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Index("ix_messages_session_depth", "session_id", "depth")),
    "api_keys": lambda: op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("rate_limit", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True)),
    "personas": lambda: op.create_table(
        "personas",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False)),
    "lorebooks": lambda: op.create_table(
        "lorebooks",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("book", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False)),
    "session_lorebooks": lambda: op.create_table(
        "session_lorebooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("book", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False)),
    "session_members": lambda: op.create_table(
        "session_members",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("character_id", sa.String(80), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("talkativeness", sa.Float, nullable=False),
        sa.Column("muted", sa.Boolean, nullable=False),
        sa.Column("present", sa.Boolean, nullable=False)),
    "memories": lambda: op.create_table(
        "memories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False)),
}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():  # in dependency order
        if name not in existing:
            create()
    if "sessions" in existing:
        _add_session_owner()
    if "schema_version" not in existing:
        op.execute("INSERT INTO schema_version (version) VALUES (2)")


def _add_session_owner() -> None:
    """Version 1 → 2 of the old scheme: sessions gained an `owner` (API key id) column."""
    if "owner" not in {column["name"] for column in sa.inspect(op.get_bind()).get_columns("sessions")}:
        op.add_column("sessions", sa.Column("owner", sa.String(16), nullable=True))
        op.create_index("ix_sessions_owner", "sessions", ["owner"])


def downgrade() -> None:
    raise RolecraftError("rolecraft's database migrations only go forward; restore a backup instead",
                         code="database_error", status=500)

"""Owners for characters, personas and library lorebooks; attachments; Alembic replaces `schema_version`.

Personas and library lorebooks are keyed by (owner, id), so two API keys may
each have a persona "me"; the rows that exist belong to the local user ("").
Characters keep one id space and gain a nullable owner: the ones already
stored stay shared, as they were.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

from rolecraft.errors import RolecraftError

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PERSONA_COLUMNS = ("id", "name", "description", "is_default", "created_at")
LOREBOOK_COLUMNS = ("id", "name", "book", "updated_at")


def _rekey(table: str, columns: tuple[str, ...], *definition: sa.Column) -> None:
    """Recreate `table` with an (owner, id) primary key, its rows owned by the local user."""
    op.create_table(f"{table}_owned", sa.Column("owner", sa.String(16), nullable=False), *definition,
                    sa.PrimaryKeyConstraint("owner", "id", name=f"pk_{table}"))
    names = ", ".join(columns)
    op.execute(f"INSERT INTO {table}_owned (owner, {names}) SELECT '', {names} FROM {table}")
    op.drop_table(table)
    op.rename_table(f"{table}_owned", table)


def upgrade() -> None:
    op.add_column("characters", sa.Column("owner", sa.String(16), nullable=True))
    op.create_index("ix_characters_owner", "characters", ["owner"])
    _rekey("personas", PERSONA_COLUMNS,
           sa.Column("id", sa.String(80), nullable=False),
           sa.Column("name", sa.String(64), nullable=False),
           sa.Column("description", sa.Text, nullable=False),
           sa.Column("is_default", sa.Boolean, nullable=False),
           sa.Column("created_at", sa.DateTime, nullable=False))
    _rekey("lorebooks", LOREBOOK_COLUMNS,
           sa.Column("id", sa.String(80), nullable=False),
           sa.Column("name", sa.String(200), nullable=False),
           sa.Column("book", sa.JSON, nullable=False),
           sa.Column("updated_at", sa.DateTime, nullable=False))
    op.create_table(
        "attachments",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False))
    op.create_table(
        "attachment_owners",
        sa.Column("sha256", sa.String(64), sa.ForeignKey("attachments.sha256", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("owner", sa.String(16), primary_key=True))
    op.create_table(
        "message_attachments",
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("attachments.sha256", ondelete="CASCADE"),
                  primary_key=True, index=True))
    op.drop_table("schema_version")


def downgrade() -> None:
    raise RolecraftError("rolecraft's database migrations only go forward; restore a backup instead",
                         code="database_error", status=500)

"""Rate-limit hits counted in the database, so replicas sharing it enforce one limit per API key.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

from rolecraft.errors import RolecraftError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_hits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("who", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Index("ix_rate_hits_who_at", "who", "at"))


def downgrade() -> None:
    raise RolecraftError("rolecraft's database migrations only go forward; restore a backup instead",
                         code="database_error", status=500)

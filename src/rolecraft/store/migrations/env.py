"""Alembic's environment: run the migrations on the connection `rolecraft.store.migrations.upgrade` hands over."""

from alembic import context

from rolecraft.store.tables import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment: always runs on the connection gristmill hands over."""

from __future__ import annotations

from alembic import context

from gristmill.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("gristmill migrations run through gristmill.store.migrations.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

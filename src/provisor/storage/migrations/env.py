"""Alembic environment: runs on the connection that provisor.storage.migrate hands over."""

from __future__ import annotations

from alembic import context

from provisor.storage.migrate import ours
from provisor.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=ours,
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic's environment: always run programmatically, on the connection the factory opened.

:func:`bastion.factory._db.migrate` passes it as ``config.attributes["connection"]``; the
``alembic`` command line is not used.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - a misuse, not an input
    raise RuntimeError("the factory migrations run only through bastion.factory.open_state")
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

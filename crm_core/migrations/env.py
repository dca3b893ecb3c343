"""Alembic environment: uses the connection handed over by ``crm_core.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import crm_core.models  # noqa: F401  (registers every table)
from crm_core.models import Base
from crm_core.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # FTS5 shadow tables and hand-written search indexes live outside the models
    if type_ == "table" and name and name.startswith(("customer_fts", "module_record_fts")):
        return False
    return not (type_ == "index" and name and name.endswith("_trgm"))


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=_include_object,
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    engine = engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()

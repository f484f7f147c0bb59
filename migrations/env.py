"""Alembic environment: the URL comes from ``config.attributes["url"]`` (set by
``audit.migrate``), an existing ``config.attributes["connection"]``, or ``CLEARANCE_DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from audit._db import ENV_DATABASE_URL, sqlalchemy_url
from audit.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = (
        config.attributes.get("url")
        or os.environ.get(ENV_DATABASE_URL)
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise RuntimeError(f"no database URL: set {ENV_DATABASE_URL} or pass url= to upgrade()")
    return sqlalchemy_url(url).render_as_string(hide_password=False)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

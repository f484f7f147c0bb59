"""Apply the database migrations without an ``alembic.ini``: ``upgrade(url)``.

``clearance db upgrade`` calls :func:`upgrade`. The Alembic script directory is the installed
``migrations`` package, found relative to the code, so the current directory does not matter.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import migrations

from ._db import map_errors, sqlalchemy_url

__all__ = ["alembic_config", "current_revision", "downgrade", "head_revision", "upgrade"]

SELECT_SCHEMA_REVISION_SQL = "SELECT version_num FROM alembic_version"

SCRIPT_LOCATION = Path(next(iter(migrations.__path__))).resolve()


def alembic_config(url: str) -> Config:
    """An Alembic config equivalent to an ``alembic.ini`` pointing at ``migrations/``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = sqlalchemy_url(url).render_as_string(hide_password=False)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (default: the newest)."""
    with map_errors("database upgrade"):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Step the schema back (the first revision refuses while entries exist)."""
    with map_errors("database downgrade"):
        command.downgrade(alembic_config(url), revision)


@functools.cache
def head_revision() -> str:
    """The newest revision in ``migrations/versions``."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://localhost/x")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (``None`` if never migrated)."""
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with map_errors("reading the schema revision"), engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT to_regclass('alembic_version')")).scalar()
            if exists is None:
                return None
            return conn.execute(sa.text(SELECT_SCHEMA_REVISION_SQL)).scalar()
    finally:
        engine.dispose()

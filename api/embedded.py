"""The embedded PostgreSQL used when ``CLEARANCE_DATABASE_URL`` is unset.

A real PostgreSQL server from the ``pgserver`` wheel (binaries inside the wheel, no download),
its data directory under ``~/.clearance/pg``. It listens on a Unix socket only. As root the
wheel runs the server as an unprivileged system user it creates, since PostgreSQL refuses root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded(home: Path) -> tuple[str, Any]:
    """Start (or attach to) the embedded server; returns its SQLAlchemy URL and the handle.

    The server stops when the handle is cleaned up (``handle.cleanup()``) or the process exits.
    """
    import pgserver  # imported lazily: only the embedded mode needs it

    home.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(home / "pg", cleanup_mode="stop")
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    return url, server

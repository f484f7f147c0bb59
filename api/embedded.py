"""The embedded PostgreSQL used when ``CLEARANCE_DATABASE_URL`` is unset.

A real PostgreSQL server from the ``pgserver`` wheel (binaries inside the wheel, no download),
its data directory under ``~/.clearance/pg``. It listens on a Unix socket only. As root the
wheel runs the server as an unprivileged system user it creates, since PostgreSQL refuses root.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("clearance.embedded")

# pgserver gives `pg_ctl start` a fixed 10 s; on a loaded machine the server can be slower to
# come up than that while starting fine. Such a start is retried (it then finds it running).
_ATTEMPTS = 4


def start_embedded(home: Path) -> tuple[str, Any]:
    """Start (or attach to) the embedded server; returns its SQLAlchemy URL and the handle.

    The server stops when the last handle is cleaned up (``handle.cleanup()``) or at exit.
    """
    import pgserver  # imported lazily: only the embedded mode needs it
    from pgserver.postgres_server import PostgresServer

    home.mkdir(parents=True, exist_ok=True)
    pgdata = (home / "pg").resolve()
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
            break
        except subprocess.TimeoutExpired:
            if attempt == _ATTEMPTS:
                raise
            log.warning("embedded PostgreSQL slow to start (attempt %d); waiting", attempt)
            # pgserver registers an instance before starting it; forget the failed one.
            PostgresServer._instances.pop(pgdata, None)  # noqa: SLF001
            time.sleep(2.0 * attempt)
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    return url, server

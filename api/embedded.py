"""The embedded PostgreSQL used when ``CLEARANCE_DATABASE_URL`` is unset.

A real PostgreSQL server from the ``pgserver`` wheel (binaries inside the wheel, no download),
its data directory under ``~/.clearance/pg``. It listens on a Unix socket only. As root the
wheel runs the server as an unprivileged system user it creates, since PostgreSQL refuses root.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from clearance.errors import ClearanceError

log = logging.getLogger("clearance.embedded")

# The system user pgserver runs the server as when started by root (a name fixed by the wheel).
SYSTEM_USER = "pgserver"
_ELSEWHERE = ("set CLEARANCE_DATABASE_URL to an existing PostgreSQL (postgresql://user@host/db), "
              "or run Clearance as an ordinary user")


class EmbeddedUnavailable(ClearanceError):
    """The embedded PostgreSQL cannot start here; the message says what is missing and what to do."""


def _check_system_user() -> None:
    """As root, pgserver runs PostgreSQL as ``SYSTEM_USER`` and creates it with ``useradd``
    when it is missing; refuse before it tries, when ``useradd`` cannot be found."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(SYSTEM_USER)
        return
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        raise EmbeddedUnavailable(_no_useradd())


def _no_useradd() -> str:
    return (
        "the embedded PostgreSQL cannot start: as root, it must run the server as the system user "
        f"'{SYSTEM_USER}' (PostgreSQL refuses to run as root), that user does not exist, and `useradd`, "
        f"which creates it, is not on PATH ({os.environ.get('PATH', '')}; it is usually in /usr/sbin). "
        f"Add /usr/sbin to PATH (export PATH=\"$PATH:/usr/sbin\"), or create the user once "
        f"(/usr/sbin/useradd -s /bin/bash {SYSTEM_USER}), or {_ELSEWHERE}."
    )

# pgserver gives `pg_ctl start` a fixed 10 s; on a loaded machine the server can be slower to
# come up than that while starting fine. Such a start is retried (it then finds it running).
_ATTEMPTS = 4


def start_embedded(home: Path) -> tuple[str, Any]:
    """Start (or attach to) the embedded server; returns its SQLAlchemy URL and the handle.

    The server stops when the last handle is cleaned up (``handle.cleanup()``) or at exit.
    """
    _check_system_user()
    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR (root, containers) platformdirs warns and uses /tmp/runtime-UID
        # for pgserver's lock file, which is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver  # imported lazily: only the embedded mode needs it
        from pgserver.postgres_server import PostgresServer

    home.mkdir(parents=True, exist_ok=True)
    pgdata = (home / "pg").resolve()
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
            break
        except FileNotFoundError as exc:  # a tool pgserver runs (useradd, as root) is missing
            raise EmbeddedUnavailable(_no_useradd() if exc.filename == "useradd" else
                                      f"the embedded PostgreSQL cannot start: {exc}; {_ELSEWHERE}") from None
        except subprocess.CalledProcessError as exc:  # useradd, initdb or pg_ctl refused
            output = str(exc.stderr or exc.stdout or "").strip()[-2000:]
            command = " ".join(str(part) for part in exc.cmd) if isinstance(exc.cmd, list) else str(exc.cmd)
            raise EmbeddedUnavailable(
                f"the embedded PostgreSQL cannot start: `{command}` failed with exit code {exc.returncode}"
                f"{': ' + output if output else ''}; {_ELSEWHERE}") from None
        except subprocess.TimeoutExpired:
            if attempt == _ATTEMPTS:
                raise
            log.warning("embedded PostgreSQL slow to start (attempt %d); waiting", attempt)
            # pgserver registers an instance before starting it; forget the failed one.
            PostgresServer._instances.pop(pgdata, None)  # noqa: SLF001
            time.sleep(2.0 * attempt)
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    return url, server

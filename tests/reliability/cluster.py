"""A PostgreSQL server of the test's own, to stop and start at will.

Its own data directory and port, so ``pg_ctl stop -m immediate`` (a crash, as far as the
clients can tell) never touches the machine's shared server. Binaries: Debian's
``/usr/lib/postgresql/<version>/bin``, else those inside the ``pgserver`` wheel. PostgreSQL
refuses to run as root, so as root the server runs as the unprivileged ``pgserver`` user (the
one the pgserver wheel uses; created here if missing).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_USER = "pgserver"


def find_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    with contextlib.suppress(ImportError):
        import pgserver

        candidates.insert(0, Path(pgserver.__file__).parent / "pginstall" / "bin")
    usable = [d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]
    # Prefer the newest Debian build; the wheel's binaries are the fallback.
    debian = [d for d in usable if str(d).startswith("/usr/lib/postgresql")]
    return (debian or usable or [None])[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """The user to run PostgreSQL as: ourselves, or ``pgserver`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        SERVER_USER], check=True, capture_output=True)
    return SERVER_USER


@dataclass
class PgCluster:
    root: Path
    bindir: Path
    port: int
    user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def create(cls, bindir: Path) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="clearance-reliability-pg-"))
        user = _server_user()
        if user is not None:
            shutil.chown(root, user)
        cluster = cls(root=root, bindir=bindir, port=free_port(), user=user)
        cluster._run("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                     "--no-sync")
        return cluster

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([str(self.bindir / tool), *args], user=self.user, capture_output=True,
                              text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}\n"
                               f"{self.log.read_text() if self.log.exists() else ''}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` kills every server process at once: no checkpoint, crash recovery on start."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def libpq(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.libpq(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

"""``python -m api serve`` as a real subprocess, to load, SIGKILL and restart.

The server runs in a session of its own so a kill reaches every process it started (uvicorn
workers included). Its stderr goes to a file the secrets test reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import REPO

from .cluster import free_port


def server_env(*, database_url: str, home: Path, signing_key: str, **extra: str) -> dict[str, str]:
    """The process environment of a server: ours without any CLEARANCE_* setting, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
    env.update(
        CLEARANCE_DATABASE_URL=database_url,
        CLEARANCE_HOME=str(home),
        CLEARANCE_SIGNING_KEY=signing_key,
        CLEARANCE_POLICY_DIR=str(REPO / "rego"),
        CLEARANCE_AUDIT_BATCH_MS="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    env: dict[str, str]
    log_path: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        command = [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=self.env, cwd=REPO, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the server and everything it started: no shutdown, no flush."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

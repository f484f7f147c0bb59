"""`clearance serve` as a real subprocess with the embedded PostgreSQL (no database configured):
starts the server from the pip wheel, migrates, creates a key, answers a decision end to end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.schemas import DECISION_REQUEST_EXAMPLE
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clearance(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def home() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root the server runs as another user, and pytest keeps
    # /tmp/pytest-of-<user> private (0700), resetting it whenever another session starts.
    path = Path(tempfile.mkdtemp(prefix="clearance-serve-test-"))
    yield path / "home"
    shutil.rmtree(path, ignore_errors=True)


def test_serve_with_embedded_postgres_end_to_end(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
    env["CLEARANCE_HOME"] = str(home)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "api", "serve", "--port", str(port)], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("clearance serve did not become ready within 120 s")
        assert (home / "pg").is_dir() and (home / "signing.key").exists()

        app_key = clearance("apikeys", "create", "--app", "claims-summariser", "--role", "app", env=env)
        auditor_key = clearance("apikeys", "create", "--role", "auditor", env=env)
        assert app_key.returncode == 0, app_key.stderr
        decision = httpx.post(f"{base}/v1/decisions", json=DECISION_REQUEST_EXAMPLE, timeout=10,
                              headers={"Authorization": f"Bearer {app_key.stdout.strip()}"})
        assert decision.status_code == 200, decision.text
        body = decision.json()
        assert body["audit"]["seq"] >= 1
        entry = httpx.get(f"{base}/v1/decisions/{body['decision_id']}", timeout=10,
                          headers={"Authorization": f"Bearer {auditor_key.stdout.strip()}"})
        assert entry.status_code == 200 and entry.json()["verification"]["valid"] is True
        assert entry.json()["body"]["decision_id"] == body["decision_id"]
        assert entry.json()["result"]["outcome"] == body["outcome"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    assert server.returncode == 0
    # The last handle stopped the embedded server on the way out.
    assert not (home / "pg" / "postmaster.pid").exists()

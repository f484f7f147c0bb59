"""A real `clearance serve` in a process of its own, for the tests that need one (signals,
several workers, file permissions)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.api.test_serve_embedded import free_port
from tests.conftest import REPO


def serve_env(database_url: str, home: Path, **settings: str) -> dict[str, str]:
    """This environment without CLEARANCE_* settings, then the database, a new signing key in
    ``home`` and ``settings`` (``policy_dir="…"`` sets CLEARANCE_POLICY_DIR)."""
    from audit import init_key

    home.mkdir(parents=True, exist_ok=True)
    key_file = home / "signing.key"
    if not key_file.exists():
        init_key(key_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
    env |= {"CLEARANCE_DATABASE_URL": database_url, "CLEARANCE_SIGNING_KEY": str(key_file),
            "CLEARANCE_HOME": str(home / "home")}
    env |= {f"CLEARANCE_{name.upper()}": value for name, value in settings.items()}
    return env


@contextmanager
def serving(env: dict[str, str], *args: str, prefix: Sequence[str] = ()) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``[prefix…] python -m api serve --port P [args…]``: (the process, its base URL); stopped
    with SIGTERM on the way out (killed if it does not stop within a minute)."""
    port = free_port()
    process = subprocess.Popen([*prefix, sys.executable, "-m", "api", "serve", "--port", str(port), *args],
                               env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(check: Callable[[], object], seconds: float, what: str) -> None:
    """Poll `check` every 0.2 s until it is true; fail the test saying `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} within {seconds} s")

"""Pool children end when their parent is killed (``clearance/children.py``): a server's
verification process, or any pool child, is not left waiting forever on a queue nobody will
close. The parent is a real process, SIGKILLed; the child is looked for in /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

GENERIC = """
import os, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from clearance.children import exit_with_parent
pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent)
print(pool.submit(os.getpid).result(), flush=True)
time.sleep(120)
"""

# The server's own pool of verification processes, as api/verify_worker.py builds it.
VERIFIER = """
import os, time
from api.verify_worker import VerifierProcesses
processes = VerifierProcesses("postgresql+psycopg://unused@127.0.0.1:1/none", processes=1)
print(processes._executor().submit(os.getpid).result(), flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


@pytest.mark.parametrize("script", [GENERIC, VERIFIER], ids=["pool", "verification-processes"])
def test_a_pool_child_ends_with_its_killed_parent(script: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert running(child)
        time.sleep(1.5)
        assert running(child)  # alive while its parent is
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(child), "the pool's child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()

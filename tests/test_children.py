"""Pool children end when their parent is killed (``clearance/children.py``): a server's
verification process, or any pool child, is not left waiting forever on a queue nobody will
close, and the report's verification child does not go on holding a database connection. The
parent is a real process, SIGKILLed; the child is looked for in /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO, _libpq

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

GENERIC = """
import os, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from clearance.children import exit_with_parent
pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent,
                           initargs=(os.getpid(),))
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

# Each pool of the project with its child still starting (held up by STARTING_LATE): the child's
# pid is printed before its initializer has run.
STARTING = {
    "pool": GENERIC.replace("pool.submit(os.getpid).result()", "pool.submit(os.getpid) and next(iter(pool._processes))"),
    "verification-processes": VERIFIER.replace(
        "processes._executor().submit(os.getpid).result()",
        "processes._executor().submit(os.getpid) and next(iter(processes._executor()._processes))"),
}
# A sitecustomize that holds up every multiprocessing child before it runs anything of the pool.
STARTING_LATE = """
import sys, time
if "--multiprocessing-fork" in sys.argv:
    time.sleep(3)
"""

# The report's verification child (audit/report/verification.py), started as `clearance audit
# report` starts it, on the database given as the first argument.
REPORT = """
import sys, time
from audit.keys import SigningKey
from audit.report.verification import BackgroundVerification
from audit.store import AuditStore
from audit.trust import log_verifier
store = AuditStore.from_url(sys.argv[1], pooled=False)
trusted = [log_verifier(SigningKey.generate().public, "clearance/audit")]
print(BackgroundVerification(store, trusted=trusted, from_seq=1, to_seq=10)._process.pid, flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


def child_outlives_killed_parent(args: list[str], alive_for: float, env: dict[str, str] | None = None) -> bool:
    """Start ``python -c`` ``args`` (a script printing its child's pid), check the child alive
    after ``alive_for`` s, SIGKILL the parent: whether the child is still running 10 s later."""
    parent = subprocess.Popen([sys.executable, "-c", *args], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env=None if env is None else os.environ | env)
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(alive_for)
        assert running(child)  # alive while its parent is
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        return running(child)
    finally:
        if parent.poll() is None:
            parent.kill()
        if child and running(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("script", [GENERIC, VERIFIER], ids=["pool", "verification-processes"])
def test_a_pool_child_ends_with_its_killed_parent(script: str) -> None:
    assert not child_outlives_killed_parent([script], 1.5), "the pool's child outlived its killed parent"


@pytest.mark.parametrize("name", ["pool", "verification-processes"])
def test_a_pool_child_killed_as_it_starts_ends_too(name: str, tmp_path: Path) -> None:
    """The parent is killed before its child's initializer runs: without the parent's pid from
    the parent, the child would take whoever adopted it for its parent and wait for ever. (The
    impact replay's ``multiprocessing.Pool`` child, started the same way, fails to open its
    queue's semaphores once the parent's resource tracker has gone, and ends either way.)"""
    (tmp_path / "sitecustomize.py").write_text(STARTING_LATE)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    assert not child_outlives_killed_parent([STARTING[name]], 0.0, env), (
        f"the {name} child outlived a parent killed while it started")


@pytest.mark.parametrize("alive_for", [3.0, 0.0], ids=["while-it-waits", "while-it-starts"])
def test_the_reports_verification_child_ends_with_its_killed_parent(migrated_database: str, alive_for: float) -> None:
    """The child's first query waits behind a lock this test holds on every table of the log, as
    behind a long verification: killed parent or not, without its watch it would wait there
    (with its connection) until the lock went. Killed at once, the parent is gone before the
    child starts its watch: the child knows its parent's pid from the parent."""
    with psycopg.connect(_libpq(migrated_database)) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        assert not child_outlives_killed_parent([REPORT, migrated_database], alive_for), (
            "the report's verification child outlived its killed parent")

"""PostgreSQL crashes (``pg_ctl stop -m immediate``) under a load of concurrent decisions.

While it is down every request gets 503 with a clear error and no decision; once it is back the
same server process answers again (no restart); every decision answered 200 is in the trail,
at the seq its receipt named, and the chain verifies.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from api.apikeys import Role
from audit import upgrade

from .cluster import PgCluster
from .conftest import LONG, make_api_key
from .figures import Figures
from .load import Load, ok_after, summarise
from .server import ServerProcess
from .trail import assert_trail_intact, check_trail

pytestmark = pytest.mark.slow

CYCLES = 8 if LONG else 2
DOWN_SECONDS = 4.0 if LONG else 1.5
THREADS = 8
REFUSALS = {"audit_unavailable", "database_unavailable"}


def test_postgres_stopped_immediately_under_load(
    own_cluster: PgCluster, start_server: Callable[..., ServerProcess], figures: Figures
) -> None:
    url = own_cluster.create_database(f"faults_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    key = make_api_key(url, Role.app, "claims-summariser")
    server = start_server(url, CLEARANCE_CHECKPOINT_EVERY="50", CLEARANCE_APIKEY_CACHE_SECONDS="1")
    assert server.process is not None
    pid = server.process.pid

    load = Load([server.url], key, threads=THREADS, limit=1_000_000).start()
    windows: list[tuple[float, float]] = []
    readiness_while_down: list[int] = []
    try:
        load.wait_until(ok_after(0, 30), timeout=60, what="the first 30 decisions")
        for cycle in range(CYCLES):
            own_cluster.stop("immediate")
            down = time.monotonic()
            time.sleep(DOWN_SECONDS / 2)
            readiness_while_down.append(httpx.get(f"{server.url}/readyz", timeout=10).status_code)
            time.sleep(DOWN_SECONDS / 2)
            up = time.monotonic()  # answers that came before this came while the database was down
            own_cluster.start()
            windows.append((down, up))
            load.wait_until(ok_after(time.monotonic(), 20), timeout=60,
                            what=f"20 decisions after restart {cycle + 1} of PostgreSQL")
    finally:
        answers = load.stop()

    # The service recovered by itself: the same process, never restarted.
    assert server.process.poll() is None and server.process.pid == pid and server.starts == 1
    assert readiness_while_down == [503] * CYCLES

    # Only 200 (recorded) or 503 (refused, nothing issued): never a 500, never a dropped connection.
    assert {a.status for a in answers} <= {200, 503}, summarise(answers)
    refused = [a for a in answers if a.status == 503]
    assert all(a.code in REFUSALS and a.message for a in refused), summarise(answers)
    assert not any(a.body_mentions_decision for a in answers)

    under_fault = [a for a in answers if any(down <= a.sent and a.answered <= up for down, up in windows)]
    for down, up in windows:
        during = [a for a in under_fault if down <= a.sent and a.answered <= up]
        assert during, "no request was answered while the database was down"
        assert all(a.status == 503 for a in during), summarise(during)
    figures.requests_under_fault += len(under_fault)

    check = check_trail(url, answers, checkpoint_files=_checkpoint_files(server))
    assert_trail_intact(check, figures)
    assert check.answered == sum(1 for a in answers if a.status == 200)
    figures.notes.append(
        f"database faults: {CYCLES} immediate stops, {len(under_fault)} requests refused while down, "
        f"{check.answered} decisions recorded, {check.unanswered_entries} entries committed for "
        "callers who got 503 (commit raced the crash; allowed: never the reverse)")


def _checkpoint_files(server: ServerProcess) -> list[Path]:
    path = Path(server.env["CLEARANCE_HOME"]) / "checkpoint.json"
    return [path] if path.exists() else []

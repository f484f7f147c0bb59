"""Heavy auditor work cannot starve decisions.

A real server over a real database holding enough entries that one verification of the whole
trail takes about a second. Sixteen ``GET /v1/audit/verify`` run at once, with every API key
looked up in the database on every request (``CLEARANCE_APIKEY_CACHE_SECONDS=0``): before the
auditor's reads had threads and connections of their own, and key lookups left the event loop,
``/healthz`` and decisions stalled for seconds. Measured here as a ratio to the same server's
unloaded latency: decisions' p99 under that load stays within 2× of it, or within 25 ms more,
or within 3.5× of it on a machine slow enough that 25 ms is less than its fair share's cost.

The machine is shared (2 cores, other suites running): a measurement is repeated, up to three
times, when a noisy moment spoils it; a real starvation (seconds) fails every attempt.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.apikeys import Role
from api.schemas import DECISION_REQUEST_EXAMPLE
from audit import AuditStore, AuditWriter, CheckpointPolicy, init_key, upgrade
from tests.compliance.conftest import dataset_fields
from tests.conftest import create_database, drop_database

from .conftest import make_api_key
from .server import ServerProcess, server_env

pytestmark = pytest.mark.slow

ENTRIES = 5000  # one verification of them: ~1 s on the development machine
VERIFIERS = 16
SAMPLES = 200
ATTEMPTS = 3
SLACK = 0.025  # seconds a decision's p99 may grow by under the verifications (Measure.within)
FAIR_SHARE = 3.5  # or this many times its unloaded p99 (Measure.within)


@dataclass(frozen=True)
class Loaded:
    server: ServerProcess
    app_key: str
    auditor_key: str


@pytest.fixture(scope="module")
def loaded(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    name = f"clearance_isolation_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    home = tmp_path_factory.mktemp("isolation")
    key = init_key(home / "signing.key")
    server = ServerProcess(env=server_env(database_url=url, home=home, signing_key=str(home / "signing.key"),
                                          CLEARANCE_APIKEY_CACHE_SECONDS="0"),
                           log_path=home / "server.log")
    try:
        upgrade(url)
        store = AuditStore.from_url(url)
        with AuditWriter(store, key=key, max_batch=512, max_wait=0.005,
                         checkpoints=CheckpointPolicy(every_entries=1000, every_seconds=10**9)) as writer:
            for receipt in [writer.submit(dataset_fields(i)) for i in range(ENTRIES)]:
                receipt.result()
        store.dispose()
        yield Loaded(server.start(), make_api_key(url, Role.app, "claims-summariser"), make_api_key(url, Role.auditor))
    finally:
        server.kill()
        drop_database(pg_server_url, name)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _decisions(client: httpx.Client, key: str, count: int, *, until: threading.Event | None = None) -> list[float]:
    """Latencies of ``count`` decisions in a row (fewer if ``until`` is set first)."""
    latencies = []
    for _ in range(count):
        if until is not None and until.is_set():
            break
        started = time.perf_counter()
        answer = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE, headers={"Authorization": f"Bearer {key}"})
        latencies.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return latencies


@dataclass(frozen=True)
class Measure:
    baseline_p99: float
    loaded_p99: float
    loaded_count: int  # decisions answered while the verifications ran
    slowest_decision: float
    slowest_health: float

    def within(self) -> bool:
        # Twice the unloaded p99, or at most SLACK more: the verification's PostgreSQL backend is
        # not niced and takes its share of one of the two cores, which on this machine alone
        # puts a single caller's p99 of 4-10 ms at 12-28 ms (both before and after the fast
        # path; docs/reliability.md). Starvation, what this test is for, was 8-10 s.
        # On a machine five times slower (2026-12-06: unloaded p99 14-22 ms) the same share
        # cost ~3× (48-71 ms), as it does here, and 25 ms no longer covered it: hence 3.5×,
        # still a hundred times below a starvation.
        return (self.loaded_count >= 50
                and self.loaded_p99 <= max(FAIR_SHARE * self.baseline_p99, self.baseline_p99 + SLACK)
                and self.slowest_health <= max(2 * self.baseline_p99, 0.05))

    def __str__(self) -> str:
        return (f"p99 {self.baseline_p99 * 1000:.1f} ms unloaded, {self.loaded_p99 * 1000:.1f} ms over "
                f"{self.loaded_count} decisions under load (slowest {self.slowest_decision * 1000:.0f} ms), "
                f"slowest /healthz {self.slowest_health * 1000:.1f} ms")


def _measure(site: Loaded) -> Measure:
    with httpx.Client(base_url=site.server.url, timeout=120) as client:
        _decisions(client, site.app_key, 20)  # warm: connections, caches
        baseline = _decisions(client, site.app_key, SAMPLES)
        answers: list[httpx.Response] = []
        done = threading.Event()
        started = threading.Barrier(VERIFIERS + 1)

        def verify() -> None:
            with httpx.Client(base_url=site.server.url, timeout=600) as own:
                started.wait()
                answers.append(own.get("/v1/audit/verify", headers={"Authorization": f"Bearer {site.auditor_key}"}))
                if len(answers) == VERIFIERS:
                    done.set()

        threads = [threading.Thread(target=verify, daemon=True) for _ in range(VERIFIERS)]
        for thread in threads:
            thread.start()
        started.wait()
        time.sleep(0.3)  # all sixteen are in: queued or running
        health = [0.0]
        loaded: list[float] = []
        while len(loaded) < SAMPLES and not done.is_set():
            loaded += _decisions(client, site.app_key, 10, until=done)
            t = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            health.append(time.perf_counter() - t)
        for thread in threads:
            thread.join(600)
    assert len(answers) == VERIFIERS
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["valid"] is True and answer.json()["checked"] >= ENTRIES, answer.text
    return Measure(p99(baseline), p99(loaded) if loaded else float("inf"), len(loaded),
                   max(loaded, default=float("inf")), max(health))


def test_decisions_keep_their_latency_while_sixteen_verifications_run(loaded: Loaded) -> None:
    results: list[Measure] = []
    for _ in range(ATTEMPTS):
        results.append(_measure(loaded))
        if results[-1].within():
            break
    else:
        pytest.fail("decisions' p99 grew by more than 3.5× and by more than 25 ms (or /healthz slowed) while "
                    "verifications ran, every attempt: "
                    + "; ".join(str(r) for r in results))
    assert "Traceback" not in loaded.server.log_text()


def test_a_key_lookup_stuck_in_the_database_holds_up_only_its_own_request(
        pg_server_url: str, tmp_path: Path) -> None:
    """The api_keys table locked by another session: a request whose key must be looked up
    waits for it; /healthz and a decision whose key is cached answer meanwhile (the lookup is
    not on the event loop)."""
    import psycopg

    from tests.audit.helpers import libpq

    name = f"clearance_keylock_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    init_key(tmp_path / "signing.key")
    server = ServerProcess(env=server_env(database_url=url, home=tmp_path, signing_key=str(tmp_path / "signing.key"),
                                          CLEARANCE_APIKEY_CACHE_SECONDS="300"), log_path=tmp_path / "server.log")
    try:
        upgrade(url)
        server.start()
        app_key, auditor_key = make_api_key(url, Role.app, "claims-summariser"), make_api_key(url, Role.auditor)
        decide = {"json": DECISION_REQUEST_EXAMPLE, "headers": {"Authorization": f"Bearer {app_key}"}}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/v1/decisions", **decide).status_code == 200  # its key is cached now
            with psycopg.connect(libpq(url)) as locker:
                locker.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
                stuck: list[httpx.Response] = []
                waiting = threading.Thread(target=lambda: stuck.append(httpx.get(
                    f"{server.url}/v1/audit/decisions", headers={"Authorization": f"Bearer {auditor_key}"},
                    timeout=60)))
                waiting.start()
                time.sleep(0.5)  # its lookup now waits for the lock
                for _ in range(5):
                    t = time.perf_counter()
                    assert client.get("/healthz", timeout=5).status_code == 200
                    assert client.post("/v1/decisions", **decide, timeout=10).status_code == 200
                    assert time.perf_counter() - t < 5
                assert not stuck, "the lookup should still be waiting for the lock"
                locker.rollback()  # releases the lock
            waiting.join(60)
        assert stuck and stuck[0].status_code == 200, stuck
    finally:
        server.kill()
        drop_database(pg_server_url, name)

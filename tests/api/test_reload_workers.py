"""A reload reaches every worker of a real `clearance serve --workers 3`, and is recorded once:
by ``POST /v1/policy/reload`` (answered by one worker) and by SIGHUP to the server process."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.apikeys import Role, create_key
from audit import AuditStore, verify_database
from tests.api.servers import serve_env, serving, wait_until
from tests.bundles import entries, lower_llama_cap, set_org_mau

pytestmark = pytest.mark.slow

WORKERS = 3
FOLLOW_SECONDS = 1.0  # the bar: every worker serves the new revision within a second


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    admin: str
    store: AuditStore

    def policy(self) -> tuple[int, str] | None:
        """(pid, revision) of whichever worker answers, on a connection of its own."""
        try:
            body = httpx.get(f"{self.base}/v1/policy", headers={"Authorization": f"Bearer {self.admin}"},
                             timeout=5).json()
        except httpx.HTTPError:
            return None
        return body["pid"], body["revision"]

    def every_worker(self, seconds: float = 60) -> dict[int, str]:
        """The revision each of the workers serves, asking until all of them have answered."""
        seen: dict[int, str] = {}
        deadline = time.monotonic() + seconds
        while len(seen) < WORKERS and time.monotonic() < deadline:
            answer = self.policy()
            if answer is not None:
                seen[answer[0]] = answer[1]
        assert len(seen) == WORKERS, f"only workers {sorted(seen)} answered within {seconds} s"
        return seen

    def answers_after(self, since: float, revision: str, requests: int = 60) -> set[int]:
        """Ask ``requests`` times, from ``FOLLOW_SECONDS`` after ``since`` on: every answer must
        show ``revision``. Returns the pids that answered."""
        time.sleep(max(0.0, since + FOLLOW_SECONDS - time.monotonic()))
        pids = set()
        for _ in range(requests):
            answer = self.policy()
            assert answer is not None
            assert answer[1] == revision, f"worker {answer[0]} still serves {answer[1]}, not {revision}"
            pids.add(answer[0])
        return pids


@pytest.fixture
def server(migrated_database: str, bundle_dir: Path, tmp_path: Path) -> Iterator[Server]:
    env = serve_env(migrated_database, tmp_path, policy_dir=str(bundle_dir))
    store = AuditStore.from_url(migrated_database, pooled=False)
    admin, _ = create_key(store.engine, role=Role.admin, app_id=None)
    try:
        with serving(env, "--workers", str(WORKERS)) as (process, base):
            running = Server(process, base, admin, store)
            wait_until(lambda: running.policy() is not None, 120, "the server did not answer")
            yield running
    finally:
        store.dispose()


def test_a_reload_reaches_every_worker_and_is_recorded_once(server: Server, bundle_dir: Path) -> None:
    workers = server.every_worker()
    (first,) = set(workers.values())

    # POST: one worker answers and records it; the two others follow.
    lower_llama_cap(bundle_dir)
    answer = httpx.post(f"{server.base}/v1/policy/reload", headers={"Authorization": f"Bearer {server.admin}"},
                        timeout=120)
    reloaded = time.monotonic()
    assert answer.status_code == 200, answer.text
    second = answer.json()["revision"]
    assert second != first and answer.json()["pid"] in workers
    assert server.answers_after(reloaded, second) <= set(workers)
    assert server.every_worker() == dict.fromkeys(workers, second)
    (recorded,) = entries(server.store, "policy_reload")
    assert recorded["reload"]["outcome"] == "accepted" and recorded["reload"]["new_revision"] == second
    assert recorded["seq"] == answer.json()["audit"]["seq"]

    # SIGHUP to the server process: reloaded by one worker, recorded once, followed by the others;
    # the workers are not restarted.
    set_org_mau(bundle_dir, "2025-03", 1_000)
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: len(entries(server.store, "policy_reload")) == 2, 60, "SIGHUP was not recorded")
    recorded_at = time.monotonic()
    by_signal = entries(server.store, "policy_reload")[1]
    third = by_signal["reload"]["new_revision"]
    assert by_signal["reload"]["outcome"] == "accepted" and third not in (first, second)
    assert by_signal["reload"]["requested_by"] == "SIGHUP" and by_signal["reload"]["pid"] in workers
    assert server.answers_after(recorded_at, third) <= set(workers)
    assert server.every_worker() == dict.fromkeys(workers, third)  # the same three processes
    time.sleep(1)
    assert len(entries(server.store, "policy_reload")) == 2  # once, not once per worker
    assert verify_database(server.store).valid

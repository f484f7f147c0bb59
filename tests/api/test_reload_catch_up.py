"""A worker that lost its LISTEN connection while a reload was announced catches up from the
log once it listens again (api/reload_broadcast.py): the newest ``policy_reload`` leaf of its
policy directory, followed with the same checks as an announcement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from api import reload_broadcast
from api.reload import reload_policy
from api.reload_broadcast import catch_up, listen, missed
from api.services import Services
from tests.bundles import lower_llama_cap, start_services
from tests.conftest import _libpq

# regorus VMs are bound to the thread that made them (see tests/api/test_reload.py).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def follower(migrated_database: str, bundle_dir: Path, tmp_path: Path,
             services_on_copy: Services) -> Iterator[Services]:
    """A second worker of the same service: same database, home and policy directory."""
    started = start_services(migrated_database, tmp_path / "home", policy_dir=bundle_dir)
    yield started
    started.close()


def test_a_missed_reload_is_followed_from_the_log(services_on_copy: Services, follower: Services,
                                                  bundle_dir: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    old = follower.policy.current.revision
    assert catch_up(follower, before) is None  # nothing recorded yet
    lower_llama_cap(bundle_dir)
    result = reload_policy(services_on_copy, requested_by="test")  # announced to nobody listening
    assert result.outcome == "accepted" and result.revision != old
    assert follower.policy.current.revision == old

    announced = missed(follower, before)
    assert announced is not None and announced.seq == result.receipt.seq
    followed = catch_up(follower, before)
    assert followed is not None and followed.swapped
    assert follower.policy.current.revision == result.revision
    # Catching up again is a no-op, and a window after the reload finds nothing.
    again = catch_up(follower, before)
    assert again is not None and not again.swapped
    assert missed(follower, datetime.now(UTC) + timedelta(seconds=1)) is None


def test_a_refused_reload_moves_no_follower(services_on_copy: Services, follower: Services,
                                            bundle_dir: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    old = follower.policy.current.revision
    (bundle_dir / "licence.rego").write_text("package broken\n\nthis is not rego\n")
    assert reload_policy(services_on_copy, requested_by="test").outcome == "refused"
    followed = catch_up(follower, before)
    assert followed is not None and not followed.swapped and follower.policy.current.revision == old


def test_the_listener_catches_up_after_its_connection_is_cut(
        services_on_copy: Services, follower: Services, bundle_dir: Path, migrated_database: str,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Long enough that the reload below is announced while the follower is not listening.
    monkeypatch.setattr(reload_broadcast, "RECONNECT_SECONDS", (3.0,))
    caplog.set_level(logging.INFO, logger="clearance")
    old = follower.policy.current.revision

    async def scenario() -> str:
        ready = asyncio.Event()
        task = asyncio.create_task(listen(follower, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            with psycopg.connect(_libpq(migrated_database), autocommit=True) as conn:
                cut = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query = %s",
                    (f"LISTEN {reload_broadcast.CHANNEL}",)).fetchone()
            assert cut == (1,)
            lower_llama_cap(bundle_dir)
            result = await asyncio.to_thread(reload_policy, services_on_copy, requested_by="test")
            assert result.outcome == "accepted"
            for _ in range(200):
                if follower.policy.current.revision == result.revision:
                    break
                await asyncio.sleep(0.1)
            return result.revision
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    revision = asyncio.run(scenario())
    assert revision != old and follower.policy.current.revision == revision
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("not listening for policy reloads") for m in messages), messages
    assert any(m.startswith("caught up with a reload missed while not listening") for m in messages), messages

"""A batch held up by another session's lock on the log head is reported with who holds it
(audit/head_watch.py): the insider who keeps ``SELECT … FOR UPDATE`` open on the head, with the
service's own credentials or any others, stops decisions (they fail closed), but not unseen."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from api.apikeys import Role, create_key
from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from audit import AuditStore, AuditWriter, SigningKey
from tests.api.conftest import bearer, make_settings

from .helpers import decision_fields


def _libpq(url: str, application: str) -> str:
    # Added to the URL's query, not in place of it: an embedded server's socket is in it (host=).
    return make_url(url).set(drivername="postgresql").update_query_dict(
        {"application_name": application}).render_as_string(hide_password=False)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "audit.head_watch" and r.levelno == logging.WARNING]


def test_a_batch_waiting_for_the_head_names_the_session_that_holds_it(
        store: AuditStore, signing_key: SigningKey, migrated_database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="audit.head_watch")
    with AuditWriter(store, key=signing_key, stalled_after=0.3).start() as writer:
        assert writer.append(decision_fields(0)).seq == 1
        assert _warnings(caplog) == []  # a batch that is not held up says nothing
        with psycopg.connect(_libpq(migrated_database, "insider-session")) as insider:
            insider.execute("SELECT 1 FROM audit_tlog_head WHERE id = 1 FOR UPDATE")
            insider_pid = insider.info.backend_pid
            held = writer.submit(decision_fields(1))
            deadline = time.monotonic() + 10
            while len(_warnings(caplog)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not held.done()
            insider.rollback()
        assert held.result(10).seq == 2
    first, second = _warnings(caplog)[:2]
    assert f"pid {insider_pid}" in first and "'insider-session'" in first and "fail closed" in first
    assert f"pid {insider_pid}" in second  # again while it still waits
    warned = len(_warnings(caplog))
    time.sleep(0.5)
    assert len(_warnings(caplog)) == warned  # the batch went through: no more


def test_the_watch_needs_a_positive_time() -> None:
    from audit.head_watch import HeadWatch

    with pytest.raises(ValueError):
        HeadWatch(None, after=0)  # type: ignore[arg-type]


def test_the_service_counts_a_stalled_batch_and_answers_once_the_head_is_free(
        migrated_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Through the app: a decision whose batch waits for a head held elsewhere is counted in
    ``clearance_audit_stalled_total`` and logged, and answered 200 once the holder lets go."""
    caplog.set_level(logging.WARNING, logger="audit.head_watch")
    services = Services.start(make_settings(tmp_path, migrated_database, audit_stalled_seconds=0.3))
    try:
        key, _ = create_key(services.db, role=Role.app, app_id="claims-summariser")
        stalled = lambda: services.metrics.registry.get_sample_value("clearance_audit_stalled_total")  # noqa: E731

        async def decide_while_held() -> int:
            app = create_app(services=services)
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://clearance") as client:
                with psycopg.connect(_libpq(migrated_database, "insider-session")) as insider:
                    insider.execute("SELECT 1 FROM audit_tlog_head WHERE id = 1 FOR UPDATE")
                    answer = asyncio.ensure_future(client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE,
                                                               headers=bearer(key)))
                    deadline = time.monotonic() + 10
                    named = lambda: any("'insider-session'" in m for m in _warnings(caplog))  # noqa: E731
                    while not named() and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                    assert named() and not answer.done()
                    insider.rollback()
                return (await asyncio.wait_for(answer, 10)).status_code

        assert asyncio.run(decide_while_held()) == 200
        assert stalled() >= 1
    finally:
        services.close()

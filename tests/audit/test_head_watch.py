"""A batch held up by another session's lock on the log head is reported with who holds it
(audit/head_watch.py): the insider who keeps ``SELECT … FOR UPDATE`` open on the head, with the
service's own credentials or any others, stops decisions (they fail closed), but not unseen."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from sqlalchemy.engine import make_url

from audit import AuditStore, AuditWriter, SigningKey

from .helpers import decision_fields


def _libpq(url: str, application: str) -> str:
    return make_url(url).set(drivername="postgresql", query={"application_name": application}).render_as_string(
        hide_password=False)


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

"""The v1 chain's monthly partitions are kept by the writer thread (at start, then every six hours),
and creating one takes an ACCESS EXCLUSIVE lock on ``audit_entries``. Every verification of the
log (``verify_log``) reads that table (the v1 head) in its one transaction, ~30 s per million
entries: a writer that met one while a month was due waited behind it, and so did every
decision meanwhile. The wait is bounded
(``audit.store.PARTITION_LOCK_TIMEOUT``): the partition is made at a later check instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from audit import AuditStore, AuditWriter, SigningKey
from audit.store import PARTITION_LOCK_TIMEOUT

from .helpers import decision_fields, libpq

MONTHS_AHEAD = 9  # beyond what the migration created


def _within(seconds: float, work: Callable[[], Any]) -> tuple[bool, list[Any]]:
    """Run ``work`` in a thread: (whether it ended within ``seconds``, [its result])."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), out


def _append_one(store: AuditStore, key: SigningKey) -> int:
    with AuditWriter(store, key=key) as writer:  # starting it ensures the partitions
        return writer.append(decision_fields(1), timeout=10).seq


def test_a_long_read_of_the_v1_chain_does_not_hold_up_the_writer(migrated_database: str, store: AuditStore,
                                                                    signing_key: SigningKey) -> None:
    with psycopg.connect(libpq(migrated_database)) as reader:  # a verification's open snapshot
        reader.execute("SELECT count(*) FROM audit_entries").fetchone()
        ended, created = _within(PARTITION_LOCK_TIMEOUT + 5, lambda: store.ensure_partitions(months_ahead=MONTHS_AHEAD))
        assert ended, "creating the v1 chain's partitions waited behind a read of it"
        assert created == [0]  # not now: the read holds the table
        ended, seq = _within(PARTITION_LOCK_TIMEOUT + 10, lambda: _append_one(store, signing_key))
        assert ended, "the writer waited behind a read of the v1 chain"
        assert seq == [1]
        reader.rollback()  # the read ends (and lets go of anything a blocked call still waits for)
    assert store.ensure_partitions(months_ahead=MONTHS_AHEAD) > 0  # made once the read is over

"""Who holds up the audit log: a warning naming the sessions that block a batch for long.

Why: the service's role may update the log head (every batch moves it), so anyone with the
service's database credentials can also hold the head row's lock — ``SELECT … FOR UPDATE`` in a
transaction left open — and so can a stuck migration or a careless maintenance session. The
writer then waits and decisions fail closed (503 once its queue is full): nothing is lost, but
until now nothing said why. Once a batch has waited ``after`` seconds, the watch asks
PostgreSQL which sessions block the service's role in this database (``pg_blocking_pids``) and
logs each — pid, user, application, client address, since when — and again every ``after``
seconds while the batch waits. A batch that waits with no session blocking it (a disk or network
stall) is logged as such.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# Sessions of any role that block a waiting session of this one, in this database.
_BLOCKERS = text(
    "SELECT DISTINCT b.pid, b.usename, b.application_name, host(b.client_addr) AS client, b.state, "
    "to_char(b.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS since "
    "FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) "
    "JOIN pg_stat_activity b ON b.pid = blocker.pid "
    "WHERE w.datname = current_database() AND w.usename = current_user AND w.wait_event_type = 'Lock' "
    "ORDER BY b.pid"
)


class HeadWatch:
    """Warns, from a thread of its own, while a batch the writer began has waited ``after`` s.

    The writer only stores the time its batch began (:meth:`begin`, :meth:`end`: no lock, no
    wake-up on its path); the watch looks every ``after / 4`` s (at most 1 s).

    :param engine: a connection to ask PostgreSQL with (the store's; taken only while a batch
        is stuck).
    :param on_warning: called with the seconds waited at each warning (for metrics).
    """

    def __init__(self, engine: Engine, *, after: float = 5.0,
                 on_warning: Callable[[float], None] | None = None) -> None:
        if after <= 0:
            raise ValueError("after must be positive")
        self._engine, self._after, self._on_warning = engine, after, on_warning
        self._since: float | None = None  # when the batch under way began (None: none)
        self._stop = threading.Event()
        self.warnings = 0  # how many times it warned (for tests)
        self._thread = threading.Thread(target=self._run, name="clearance-audit-head-watch", daemon=True)
        self._thread.start()

    def begin(self) -> None:
        self._since = time.monotonic()

    def end(self) -> None:
        self._since = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        warned_for, warned_at = None, 0.0
        while not self._stop.wait(min(1.0, self._after / 4)):
            since, now = self._since, time.monotonic()
            if since is None or now - since < self._after:
                continue
            if since != warned_for or now - warned_at >= self._after:  # then again every ``after`` s
                warned_for, warned_at = since, now
                self._warn(since, now - since)

    def _warn(self, since: float, waited: float) -> None:
        error = ""
        try:
            with self._engine.connect() as connection:
                blockers = connection.execute(_BLOCKERS).all()
        except SQLAlchemyError as exc:
            blockers, error = None, type(exc).__name__
        if self._since != since:  # the batch ended while PostgreSQL was asked: nothing to report
            return
        self.warnings += 1
        if self._on_warning is not None:
            self._on_warning(waited)
        if blockers is None:
            log.warning("an audit batch has waited %.1f s; who blocks it cannot be read: %s", waited, error)
            return
        if not blockers:
            log.warning("an audit batch has waited %.1f s and no database session blocks the service's "
                        "role just now (the disk, the network or PostgreSQL itself may be slow)", waited)
            return
        for b in blockers:
            # A role without pg_read_all_stats sees another role's pid, user and application only.
            seen = (f", client {b.client or 'local'}, {b.state}, in a transaction since {b.since}"
                    if b.state is not None else "")
            log.warning("an audit batch has waited %.1f s for a lock held by database session pid %s "
                        "(user %s, application %r%s): decisions fail closed until it ends",
                        waited, b.pid, b.usename, b.application_name, seen)

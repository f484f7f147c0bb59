"""A batch larger than its connection's socket buffer is appended, on every path a batch takes.

The writer's full path (its first batch, or one whose head moved under it) ran in psycopg's
pipeline mode, and a batch statement that did not fit in the socket's send buffer hung there
for good: PostgreSQL waiting for the rest of the statement (``ClientRead``), psycopg waiting for
the commit's answer. Seen first as a suite run that stopped in a fixture writing 5,000 entries in
batches of 512 over an embedded server's Unix-domain socket; then about one such run in six
under CPU load on a socket, and every time with a 4 kB send buffer, on TCP too (2026-12-06).
A small ``SO_SNDBUF`` on the store's connections makes it happen at once. The writer runs in a
child process, so that a hang fails the test (the child killed, its session ended with it)
instead of stopping the suite.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

from sqlalchemy import event

from audit import AuditStore, AuditWriter, SigningKey
from tests.compliance.conftest import dataset_fields
from tests.conftest import REPO

from .helpers import verify_whole

SEND_BUFFER = 4096  # bytes; the kernel doubles it, still far below one batch's statement
ENTRIES = 2000  # each with blobs of its own: the first batches carry ~1 MB statements
MAX_BATCH = 512
ANSWER_WITHIN = 60.0  # seconds for all of them (~2 s when nothing hangs)


def small_buffer_store(url: str) -> AuditStore:
    """A store whose every connection's socket sends through a ``SEND_BUFFER``-byte buffer."""
    store = AuditStore.from_url(url)

    @event.listens_for(store.engine, "connect")
    def small_send_buffer(dbapi_connection: Any, _record: Any) -> None:
        wrapped = socket.socket(fileno=dbapi_connection.pgconn.socket)  # only to set the option:
        try:
            wrapped.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        finally:
            wrapped.detach()  # not closed: the fd is libpq's

    return store


def append_all(url: str) -> dict[str, Any]:
    """In the child: ``ENTRIES`` entries through a writer on the small-buffer store."""
    store = small_buffer_store(url)
    writer = AuditWriter(store, key=SigningKey.generate(), max_batch=MAX_BATCH, max_wait=0.005).start()
    try:
        futures = [writer.submit(dataset_fields(i)) for i in range(ENTRIES)]
        seqs = [future.result().seq for future in futures]
    finally:
        writer.close()
        store.dispose()
    return {"seqs": seqs, "full_checks": writer.stats.full_checks, "batches": writer.stats.batches}


def test_a_first_batch_larger_than_the_send_buffer_commits(migrated_database: str) -> None:
    child = (f"import json; from tests.audit.test_append_large_batch import append_all; "
             f"print(json.dumps(append_all({migrated_database!r})))")
    try:
        done = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True,
                              timeout=ANSWER_WITHIN, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the batches did not commit within {ANSWER_WITHIN} s: the writer hung") from exc
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["seqs"] == list(range(1, ENTRIES + 1))
    assert result["full_checks"] >= 1  # the first batch took the full path
    assert result["batches"] < ENTRIES // 50  # batches far larger than the buffer
    store = AuditStore.from_url(migrated_database)
    try:
        assert verify_whole(store).valid
    finally:
        store.dispose()

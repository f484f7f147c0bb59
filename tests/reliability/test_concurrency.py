"""Several server processes on one database under load write one contiguous, valid log: seqs
1..N, one signed checkpoint per batch (each batch's leaves signed by one server), verified."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from api.apikeys import Role
from audit import AuditStore, init_key
from audit.trust import log_verifier, write_trusted_keys

from .conftest import LONG, make_api_key
from .figures import Figures
from .load import Load, summarise
from .server import ServerProcess
from .trail import assert_trail_intact, check_trail, libpq

pytestmark = pytest.mark.slow

DECISIONS = 5000 if LONG else 300


def test_servers_on_one_database_write_one_chain(
    migrated_database: str, start_server: Callable[..., ServerProcess], tmp_path: Path, figures: Figures
) -> None:
    # Each server signs with a key of its own, so the trail shows who appended what. Every
    # server pins all three verifier keys (CLEARANCE_TRUSTED_KEYS, as one deployment's pinned
    # file would): each writer checks the head against the newest checkpoint before its batch,
    # and that checkpoint is often another server's.
    keys = [init_key(tmp_path / f"server{i}.key") for i in range(3)]
    store = AuditStore.from_url(migrated_database, pooled=False)
    try:
        origin = store.log_origin()
    finally:
        store.dispose()
    pinned = str(write_trusted_keys(tmp_path / "trusted-keys", [log_verifier(k.public, origin) for k in keys]))
    servers = [
        start_server(migrated_database, signing_key=str(tmp_path / "server0.key"), CLEARANCE_CHECKPOINT_EVERY="20",
                     CLEARANCE_TRUSTED_KEYS=pinned),
        start_server(migrated_database, signing_key=str(tmp_path / "server1.key"), CLEARANCE_CHECKPOINT_EVERY="20",
                     CLEARANCE_TRUSTED_KEYS=pinned),
        # and one server with two worker processes of its own
        start_server(migrated_database, signing_key=str(tmp_path / "server2.key"), workers=2,
                     CLEARANCE_CHECKPOINT_EVERY="20", CLEARANCE_TRUSTED_KEYS=pinned),
    ]
    key = make_api_key(migrated_database, Role.app, "claims-summariser")
    load = Load([s.url for s in servers], key, threads=9, limit=DECISIONS).start()
    answers = load.stop() if load.wait_until(lambda a: len(a) >= DECISIONS, timeout=240,
                                             what=f"{DECISIONS} answers") else []

    assert [a.status for a in answers] == [200] * DECISIONS, summarise(answers)
    check = check_trail(migrated_database, answers)
    assert_trail_intact(check, figures)
    assert check.entries == DECISIONS and check.unanswered_entries == 0

    with psycopg.connect(libpq(migrated_database)) as conn:
        signers = [row[0] for row in conn.execute(
            "SELECT convert_from(body, 'UTF8')::jsonb ->> 'key_id' FROM audit_leaves ORDER BY seq")]
        # a checkpoint's signer is its batch's: that of the batch's last leaf
        checkpoints = conn.execute(
            "SELECT count(DISTINCT convert_from(l.body, 'UTF8')::jsonb ->> 'key_id'), count(*) "
            "FROM audit_tlog_checkpoints c JOIN audit_leaves l ON l.seq = c.size").fetchone()
    assert set(signers) == {k.key_id for k in keys}
    switches = sum(1 for a, b in zip(signers, signers[1:], strict=False) if a != b)
    assert switches >= 3, "the servers did not interleave their appends"
    # one per batch (check_trail: each checkpoint's range is one batch); several servers, so
    # many batches, and every server signed some
    assert checkpoints is not None and checkpoints[1] == check.checkpoints and checkpoints[0] == 3
    assert check.checkpoints >= DECISIONS // 40, check.checkpoints
    figures.notes.append(
        f"concurrency: 3 servers (4 processes), {DECISIONS} decisions -> seq 1..{check.head_seq}, "
        f"{check.checkpoints} batches, "
        f"{switches} hand-overs between signers, {checkpoints[1]} checkpoints by {checkpoints[0]} keys")

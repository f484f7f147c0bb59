"""The batching writer: group commit, fail closed, concurrency across processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from audit import (
    AuditEntryInvalid,
    AuditStore,
    AuditUnavailable,
    AuditWriter,
    CheckpointPolicy,
    SigningKey,
    WriterClosed,
)

from audit.checkpoint_file import read_checkpoint_note_file
from audit.log import AppendedLeaves
from audit.trust import log_verifier

from .helpers import (
    verify_whole,
    proxy_to,
    count_entries,
    decision_fields,
    head_seq,
    superuser,
    writer_process,
)


def test_append_returns_a_receipt_matching_the_committed_row(
    writer: AuditWriter, migrated_database: str
) -> None:
    fields = decision_fields(1)
    receipt = writer.append(fields)
    assert receipt.seq == 1
    assert receipt.decision_id == fields["decision_id"]
    with superuser(migrated_database) as conn:
        row = conn.execute(
            "SELECT leaf_hash, key_id, decision_id::text, outcome, app_id FROM audit_log"
        ).fetchone()
    assert row == (
        bytes.fromhex(receipt.leaf_hash), receipt.entry["key_id"], fields["decision_id"], "allow", "app-1"
    )


def test_concurrent_submissions_are_group_committed(
    writer: AuditWriter, store: AuditStore
) -> None:
    with ThreadPoolExecutor(32) as pool:
        receipts = list(pool.map(lambda i: writer.append(decision_fields(i)), range(400)))
    assert sorted(r.seq for r in receipts) == list(range(1, 401))
    assert writer.stats.batches < 400 / 4, writer.stats  # many entries per transaction
    result = verify_whole(store)
    assert result.valid and result.checked == 400


def test_append_from_asyncio(writer: AuditWriter) -> None:
    async def main() -> list[int]:
        receipts = await asyncio.gather(
            *(writer.append_async(decision_fields(i)) for i in range(50))
        )
        return sorted(r.seq for r in receipts)

    assert asyncio.run(main()) == list(range(1, 51))


def test_close_flushes_every_queued_entry(store: AuditStore, signing_key: SigningKey) -> None:
    writer = AuditWriter(store, key=signing_key, max_batch=16, max_wait=0.05).start()
    futures = [writer.submit(decision_fields(i)) for i in range(100)]
    writer.close()
    assert sorted(f.result(0).seq for f in futures) == list(range(1, 101))
    with pytest.raises(WriterClosed):
        writer.submit(decision_fields())


def test_an_unusable_entry_fails_alone(writer: AuditWriter, store: AuditStore) -> None:
    with pytest.raises(AuditEntryInvalid):
        writer.submit({**decision_fields(), "seq": 3})
    good = [writer.submit(decision_fields(i)) for i in range(3)]
    bad = writer.submit(decision_fields(context="\x00"))  # valid JSON, refused by JSONB
    more = [writer.submit(decision_fields(i)) for i in range(3)]
    with pytest.raises(AuditEntryInvalid, match="NUL"):
        bad.result(10)
    assert sorted(f.result(10).seq for f in good + more) == list(range(1, 7))
    assert verify_whole(store).valid


def test_every_batch_commits_one_checkpoint_exported_to_a_file(
    store: AuditStore, signing_key: SigningKey, tmp_path: Path
) -> None:
    export = tmp_path / "outside" / "checkpoint"
    export.parent.mkdir()
    policy = CheckpointPolicy(export_path=export)
    with AuditWriter(store, key=signing_key, checkpoints=policy) as writer:
        for i in range(23):
            writer.append(decision_fields(i))
        batches = writer.stats.batches
    with superuser(str(store.engine.url.render_as_string(hide_password=False))) as conn:
        sizes = [r[0] for r in conn.execute("SELECT size FROM audit_tlog_checkpoints ORDER BY size")]
    assert sizes == list(range(1, 24)) and batches == 23  # one append at a time: one batch each
    trusted = [log_verifier(signing_key.public, store.log_origin())]
    assert read_checkpoint_note_file(export, trusted).size == 23
    result = verify_whole(store, checkpoint_files=[export])
    assert result.valid and result.checkpoints_checked == 24  # 23 stored, and the one outside


def test_two_processes_appending_keep_one_contiguous_valid_chain(
    migrated_database: str, store: AuditStore
) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    keys = [SigningKey.generate(), SigningKey.generate()]
    pinned = [log_verifier(k.public, store.log_origin()).verifier_key for k in keys]  # both writers' keys
    procs = [
        ctx.Process(target=writer_process, args=(migrated_database, 150, 8, k.private_pem(), out, pinned))
        for k in keys
    ]
    for proc in procs:
        proc.start()
    seqs = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert sorted(seqs[0] + seqs[1]) == list(range(1, 301))
    assert set(seqs[0]).isdisjoint(seqs[1])
    result = verify_whole(store)
    assert result.valid, result
    assert result.checked == 300
    assert {k.key_id for k in keys} <= set(store.keyring())


def test_database_down_append_raises_and_nothing_is_recorded(
    migrated_database: str, signing_key: SigningKey
) -> None:
    proxy, through_proxy = proxy_to(migrated_database)
    store = AuditStore.from_url(through_proxy, connect_timeout=1)
    try:
        writer = AuditWriter(store, key=signing_key).start()
        writer.append(decision_fields(0))
        proxy.stop()  # PostgreSQL unreachable from the writer's point of view
        with pytest.raises(AuditUnavailable):
            writer.append(decision_fields(1), timeout=20)
        futures = [writer.submit(decision_fields(i)) for i in range(5)]
        for future in futures:
            with pytest.raises(AuditUnavailable):
                future.result(20)
        assert count_entries(migrated_database) == 1
        assert head_seq(migrated_database) == 1

        proxy.start()  # back up: the writer recovers, the chain continues without a gap
        assert writer.append(decision_fields(2)).seq == 2
        writer.close()
        result = verify_whole(store)
        assert result.valid and result.checked == 2
    finally:
        proxy.stop()
        store.dispose()


def test_unreachable_database_refuses_to_start(signing_key: SigningKey) -> None:
    store = AuditStore.from_url("postgresql://postgres@127.0.0.1:9/nowhere", connect_timeout=1)
    try:
        with pytest.raises(AuditUnavailable, match="failed"):
            AuditWriter(store, key=signing_key).start()
    finally:
        store.dispose()


def test_a_failing_commit_fails_the_whole_batch_and_writes_nothing(
    writer: AuditWriter, store: AuditStore, migrated_database: str
) -> None:
    writer.append(decision_fields(0))
    with superuser(migrated_database) as conn:
        # A deferred constraint trigger: every statement succeeds, COMMIT itself fails.
        conn.execute(
            "CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'commit refused for the test'; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER fail_commit AFTER UPDATE ON audit_tlog_head "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit()"
        )
    futures = [writer.submit(decision_fields(i)) for i in range(20)]
    for future in futures:
        with pytest.raises(AuditUnavailable, match="commit refused"):
            future.result(20)
    assert count_entries(migrated_database) == 1
    assert head_seq(migrated_database) == 1
    with superuser(migrated_database) as conn:
        conn.execute("DROP TRIGGER fail_commit ON audit_tlog_head")
    assert writer.append(decision_fields(1)).seq == 2
    assert verify_whole(store).valid


def test_the_head_lock_serialises_a_second_appender(
    store: AuditStore, signing_key: SigningKey, migrated_database: str
) -> None:
    """While another transaction holds the log head, a batch waits instead of forking."""
    writer = AuditWriter(store, key=signing_key).start()
    try:
        with psycopg.connect(
            make_url(migrated_database).set(drivername="postgresql").render_as_string(
                hide_password=False
            )
        ) as blocker:
            blocker.execute("SELECT 1 FROM audit_tlog_head FOR UPDATE")
            future = writer.submit(decision_fields(0))
            assert not future.done() or future.exception() is None
            threading.Event().wait(0.2)
            assert not future.done()
            blocker.rollback()
        assert future.result(10).seq == 1
    finally:
        writer.close()


def test_a_full_queue_refuses_at_once_and_loses_nothing_queued(store: AuditStore, signing_key: SigningKey,
                                                                migrated_database: str) -> None:
    """Back-pressure: with the writer stuck on a batch (the head lock held elsewhere) and
    ``max_queue`` entries waiting, the next submission is refused at once (503 in the API);
    everything accepted before is committed once the lock is free."""
    with AuditWriter(store, key=signing_key, max_queue=3) as writer:
        writer.append(decision_fields(0))
        with superuser(migrated_database) as holder:
            holder.execute("BEGIN")
            holder.execute("SELECT 1 FROM audit_tlog_head WHERE id = 1 FOR UPDATE")
            stuck = writer.submit(decision_fields(1))  # taken by the writer thread, waiting for the lock
            deadline = time.monotonic() + 10
            while writer._queue.qsize() and time.monotonic() < deadline:
                time.sleep(0.005)
            queued = [writer.submit(decision_fields(i)) for i in range(2, 5)]
            with pytest.raises(AuditUnavailable, match="queue is full"):
                writer.submit(decision_fields(5))
            holder.execute("COMMIT")
        seqs = [f.result(10).seq for f in (stuck, *queued)]
    assert seqs == [2, 3, 4, 5]
    assert verify_whole(store).valid


def test_receipts_that_cannot_be_built_fail_their_callers_and_the_writer_goes_on(
        writer: AuditWriter, store: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The receipts are built after the batch committed (and the head mailbox was let go): a bug
    there answers the batch's callers AuditUnavailable, never leaves them waiting, and the next
    batch is written and verifies."""
    build = AppendedLeaves.outcomes

    def broken(self: AppendedLeaves) -> list[object]:
        raise RuntimeError("receipt bug")

    monkeypatch.setattr(AppendedLeaves, "outcomes", broken)
    with pytest.raises(AuditUnavailable, match="receipt bug"):
        writer.append(decision_fields(1), timeout=10)
    assert writer.stats.failed_batches == 1
    monkeypatch.setattr(AppendedLeaves, "outcomes", build)
    assert writer.append(decision_fields(2), timeout=10).seq == 2  # the first one did commit
    assert verify_whole(store).valid

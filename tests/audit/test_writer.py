"""The batching writer: group commit, fail closed, concurrency across processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
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
    read_checkpoint_file,
    verify_database,
)

from .helpers import (
    TcpProxy,
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
            "SELECT entry_hash, key_id, decision_id::text, outcome, app_id FROM audit_entries"
        ).fetchone()
    assert row == (
        bytes.fromhex(receipt.entry_hash), receipt.key_id, fields["decision_id"], "allow", "app-1"
    )


def test_concurrent_submissions_are_group_committed(
    writer: AuditWriter, store: AuditStore
) -> None:
    with ThreadPoolExecutor(32) as pool:
        receipts = list(pool.map(lambda i: writer.append(decision_fields(i)), range(400)))
    assert sorted(r.seq for r in receipts) == list(range(1, 401))
    assert writer.stats.batches < 400 / 4, writer.stats  # many entries per transaction
    result = verify_database(store)
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
    assert verify_database(store).valid


def test_checkpoints_every_n_entries_exported_to_a_file(
    store: AuditStore, signing_key: SigningKey, tmp_path: Path
) -> None:
    export = tmp_path / "outside" / "checkpoint.json"
    policy = CheckpointPolicy(every_entries=10, every_seconds=3600, export_path=export)
    with AuditWriter(store, key=signing_key, checkpoints=policy) as writer:
        for i in range(23):
            writer.append(decision_fields(i))
    with store.snapshot() as snapshot:
        assert [c.seq for c in snapshot.fetch_checkpoints(1)] == [1, 11, 21]
    checkpoint = read_checkpoint_file(export)
    assert checkpoint.seq == 21
    assert checkpoint.verify_signature(store.keyring()) is None
    assert checkpoint.log_id == store.head().log_id
    result = verify_database(store, checkpoint_files=[export])
    assert result.valid and result.checkpoints_checked == 4


def test_an_idle_writer_checkpoints_the_tail_after_t_seconds(
    store: AuditStore, signing_key: SigningKey, tmp_path: Path
) -> None:
    export = tmp_path / "checkpoint.json"
    policy = CheckpointPolicy(every_entries=1000, every_seconds=0.2, export_path=export)
    with AuditWriter(store, key=signing_key, checkpoints=policy) as writer:
        for i in range(5):
            writer.append(decision_fields(i))
        for _ in range(100):
            if export.exists() and read_checkpoint_file(export).seq == 5:
                break
            threading.Event().wait(0.05)
    assert read_checkpoint_file(export).seq == 5


def test_two_processes_appending_keep_one_contiguous_valid_chain(
    migrated_database: str, store: AuditStore
) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    keys = [SigningKey.generate(), SigningKey.generate()]
    procs = [
        ctx.Process(target=writer_process, args=(migrated_database, 150, 8, k.private_pem(), out))
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
    result = verify_database(store)
    assert result.valid, result
    assert result.checked == 300
    assert {k.key_id for k in keys} <= set(store.keyring())


def test_database_down_append_raises_and_nothing_is_recorded(
    migrated_database: str, signing_key: SigningKey
) -> None:
    url = make_url(migrated_database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False
    )
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
        result = verify_database(store)
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
            "CREATE CONSTRAINT TRIGGER fail_commit AFTER UPDATE ON audit_chain_head "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit()"
        )
    futures = [writer.submit(decision_fields(i)) for i in range(20)]
    for future in futures:
        with pytest.raises(AuditUnavailable, match="commit refused"):
            future.result(20)
    assert count_entries(migrated_database) == 1
    assert head_seq(migrated_database) == 1
    with superuser(migrated_database) as conn:
        conn.execute("DROP TRIGGER fail_commit ON audit_chain_head")
    assert writer.append(decision_fields(1)).seq == 2
    assert verify_database(store).valid


def test_the_head_lock_serialises_a_second_appender(
    store: AuditStore, signing_key: SigningKey, migrated_database: str
) -> None:
    """While another transaction holds the chain head, a batch waits instead of forking."""
    writer = AuditWriter(store, key=signing_key).start()
    try:
        with psycopg.connect(
            make_url(migrated_database).set(drivername="postgresql").render_as_string(
                hide_password=False
            )
        ) as blocker:
            blocker.execute("SELECT 1 FROM audit_chain_head FOR UPDATE")
            future = writer.submit(decision_fields(0))
            assert not future.done() or future.exception() is None
            threading.Event().wait(0.2)
            assert not future.done()
            blocker.rollback()
        assert future.result(10).seq == 1
    finally:
        writer.close()

"""The writer's shortcut between its own batches (``known`` head, docs/audit.md "What the writer
checks before each batch"): after its first batch a writer verifies the signature, frontier and
checkpoint file again only when the locked head row or the file is not what it left. Every
tampering an attacker with the database role (or the file) does between two batches of the same
writer must still be refused by the next batch, as the full check refuses it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from audit import AuditStore, AuditUnavailable, AuditWriter, CheckpointPolicy, SigningKey
from audit.chain import encode_members
from audit.entry import draft_leaf, prepare_fields
import audit.log as log_module
from audit.log import append_leaves
from audit.checkpoint_file import read_checkpoint_note_file
from audit.tlog.checkpoint import Checkpoint, sign_checkpoint
from audit.trust import log_signer, log_verifier

from .helpers import cut_tail, decision_fields, superuser, triggers_disabled, verify_whole


@pytest.fixture
def file_writer(store: AuditStore, signing_key: SigningKey, checkpoint_file: Path) -> Iterator[AuditWriter]:
    writer = AuditWriter(store, key=signing_key, checkpoints=CheckpointPolicy(export_path=checkpoint_file)).start()
    yield writer
    writer.close()


def _tampered(url: str, sql: str, *params: Any) -> None:
    with superuser(url) as conn, triggers_disabled(conn):
        conn.execute(sql, params or None)


def test_a_writer_verifies_everything_once_then_only_what_changed(file_writer: AuditWriter, store: AuditStore,
                                                                 checkpoint_file: Path) -> None:
    for i in range(12):
        file_writer.append(decision_fields(i))
    assert file_writer.stats.batches == 12
    assert file_writer.stats.full_checks == 1  # the first batch; the others found their own head
    assert file_writer.flush_checkpoint_file()
    trusted = [log_verifier(file_writer._key.public, store.log_origin())]
    assert read_checkpoint_note_file(checkpoint_file, trusted).size == 12
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def _cut_last_leaf(url: str) -> None:
    _tampered(url, "DELETE FROM audit_leaves WHERE seq = (SELECT size FROM audit_tlog_head)")


def _leaf_beyond_head(url: str) -> None:
    with superuser(url) as conn, triggers_disabled(conn):
        conn.execute("CREATE TEMP TABLE extra AS SELECT * FROM audit_leaves "
                     "WHERE seq = (SELECT size FROM audit_tlog_head)")
        conn.execute("UPDATE extra SET seq = seq + 1")
        conn.execute("INSERT INTO audit_leaves SELECT * FROM extra")


def _newest_note_forged(url: str) -> None:
    other = SigningKey.generate()
    with superuser(url) as conn:
        origin, size, root = conn.execute("SELECT origin, size, root FROM audit_tlog_head").fetchone()  # type: ignore[misc]
    forged = sign_checkpoint(Checkpoint(origin, size, bytes(root)), [log_signer(other, origin)])
    _tampered(url, "UPDATE audit_tlog_checkpoints SET note = %s WHERE size = %s", forged, size)


def _head_moved_back(url: str) -> None:
    """A rolled-back tail: the last leaf and checkpoint gone, the head row put back to the
    previous checkpoint (self-consistent, signed by the writer's own key)."""
    with superuser(url) as conn, triggers_disabled(conn):
        cut_tail(conn, int(conn.execute("SELECT size FROM audit_tlog_head").fetchone()[0]) - 1)  # type: ignore[index]


TAMPERINGS: dict[str, tuple[Callable[[str], None], str]] = {
    "a leaf cut from the tail, head row untouched": (_cut_last_leaf, "the leaves stored end at seq"),
    "a leaf inserted beyond the head": (_leaf_beyond_head, "the leaves stored end at seq"),
    "the newest checkpoint's note replaced": (_newest_note_forged, "does not verify with a trusted key"),
    "the head moved back with its tail": (_head_moved_back, "smaller than the checkpoint of size"),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_tampering_between_two_batches_of_one_writer_is_refused(
        name: str, file_writer: AuditWriter, migrated_database: str) -> None:
    tamper, says = TAMPERINGS[name]
    for i in range(5):
        file_writer.append(decision_fields(i))
    assert file_writer.flush_checkpoint_file()
    tamper(migrated_database)
    with pytest.raises(AuditUnavailable, match="refuses to append"):
        file_writer.append(decision_fields(99))
    assert file_writer.refusal is not None and says in file_writer.refusal
    assert file_writer.stats.refused_batches == 1


def test_a_checkpoint_file_deleted_while_the_writer_runs_does_not_let_a_rolled_back_tail_through(
        file_writer: AuditWriter, checkpoint_file: Path, migrated_database: str) -> None:
    """Deleting the file is not a first start for a writer that has seen it: the newest
    checkpoint it knew stays the floor, and the file comes back with the next batch."""
    for i in range(5):
        file_writer.append(decision_fields(i))
    assert file_writer.flush_checkpoint_file()
    checkpoint_file.unlink()
    _head_moved_back(migrated_database)
    with pytest.raises(AuditUnavailable, match="refuses to append"):
        file_writer.append(decision_fields(99))
    assert file_writer.refusal is not None and "has size 4, smaller than the checkpoint of size 5" in file_writer.refusal


def test_a_checkpoint_file_deleted_while_the_writer_runs_is_written_again(
        file_writer: AuditWriter, store: AuditStore, checkpoint_file: Path) -> None:
    for i in range(3):
        file_writer.append(decision_fields(i))
    assert file_writer.flush_checkpoint_file()
    checkpoint_file.unlink()
    file_writer.append(decision_fields(3))
    assert file_writer.flush_checkpoint_file()
    trusted = [log_verifier(file_writer._key.public, store.log_origin())]
    assert read_checkpoint_note_file(checkpoint_file, trusted).size == 4


def _other_history(writer: AuditWriter, store: AuditStore, path: Path) -> None:
    origin = store.log_origin()
    path.write_text(sign_checkpoint(Checkpoint(origin, 3, bytes(32)), [log_signer(writer._key, origin)]))


def _garbage(writer: AuditWriter, store: AuditStore, path: Path) -> None:
    path.write_text("not a checkpoint\n")


def _ahead(writer: AuditWriter, store: AuditStore, path: Path) -> None:
    origin = store.log_origin()
    path.write_text(sign_checkpoint(Checkpoint(origin, 50, bytes(32)), [log_signer(writer._key, origin)]))


FILE_SWAPS: dict[str, tuple[Callable[[AuditWriter, AuditStore, Path], None], str]] = {
    "a checkpoint of another history": (_other_history, "(the stored tree was rewritten)"),
    "not a checkpoint": (_garbage, "is not a checkpoint signed with a pinned key"),
    "a checkpoint beyond the database": (_ahead, "smaller than the checkpoint of size 50"),
}


@pytest.mark.parametrize("name", FILE_SWAPS)
def test_the_checkpoint_file_replaced_between_two_batches_is_refused(
        name: str, file_writer: AuditWriter, store: AuditStore, checkpoint_file: Path) -> None:
    swap, says = FILE_SWAPS[name]
    for i in range(5):
        file_writer.append(decision_fields(i))
    assert file_writer.flush_checkpoint_file()
    swap(file_writer, store, checkpoint_file)
    with pytest.raises(AuditUnavailable, match="refuses to append"):
        file_writer.append(decision_fields(99))
    assert file_writer.refusal is not None and says in file_writer.refusal


def test_the_checkpoint_file_appearing_during_its_read_is_read_again(
        file_writer: AuditWriter, checkpoint_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file writer's first note can land between the writer's failed read ("no file yet")
    and its check that the file exists: that is a file to read, not one that cannot be read.
    Modelled by a read that fails once with FileNotFoundError while the file is there."""
    for i in range(3):
        file_writer.append(decision_fields(i))
    assert file_writer.flush_checkpoint_file()
    import audit.writer

    real, failed = audit.writer.file_bytes, []

    def file_bytes(path: Path) -> bytes:
        if path == checkpoint_file and not failed:
            failed.append(path)
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path)

    monkeypatch.setattr(audit.writer, "file_bytes", file_bytes)
    assert file_writer.append(decision_fields(3)).seq == 4
    assert failed and file_writer.refusal is None


@pytest.fixture
def two_writers(store: AuditStore, migrated_database: str, signing_key: SigningKey,
                checkpoint_file: Path) -> Iterator[tuple[AuditWriter, AuditWriter]]:
    """Two workers' writers on one database and checkpoint file (the log verified afterwards)."""
    other_store = AuditStore.from_url(migrated_database)
    policy = CheckpointPolicy(export_path=checkpoint_file)
    try:
        with AuditWriter(store, key=signing_key, checkpoints=policy) as first, \
                AuditWriter(other_store, key=signing_key, checkpoints=policy) as second:
            yield first, second
    finally:
        other_store.dispose()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_two_writers_on_one_database_and_file_check_each_others_heads(
        two_writers: tuple[AuditWriter, AuditWriter]) -> None:
    """Each sees the other's head, not its own: a full check, and both keep appending."""
    first, second = two_writers
    for i in range(6):
        (first if i % 2 else second).append(decision_fields(i))
    assert first.stats.full_checks == 3 and second.stats.full_checks == 3
    # Back to one writer, which made the last batch: its own head, nothing to check again.
    for i in range(6, 10):
        first.append(decision_fields(i))
    assert first.stats.full_checks == 3
    second.append(decision_fields(10))  # one full check: the head is not its own
    assert second.stats.full_checks == 4


def test_a_connection_broken_between_batches_fails_one_batch_at_most(
        file_writer: AuditWriter, migrated_database: str) -> None:
    """The appending connection is kept between batches; a server that closed it costs no
    decision when it sat idle (the pool pings it), at most the batch that found it dead."""
    file_writer.append(decision_fields(0))
    with superuser(migrated_database) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    outcomes = []
    for i in range(1, 4):
        try:
            outcomes.append(file_writer.append(decision_fields(i)).seq)
        except AuditUnavailable:
            outcomes.append(None)
    assert outcomes[1:] == [outcomes[1], outcomes[1] + 1] and outcomes[1] is not None
    assert outcomes.count(None) <= 1
    with psycopg.connect(migrated_database.replace("postgresql+psycopg://", "postgresql://")) as conn:
        assert conn.execute("SELECT size FROM audit_tlog_head").fetchone()[0] == 4 - outcomes.count(None)  # type: ignore[index]


def test_an_older_genuine_checkpoint_in_the_file_is_checked_against_the_stored_tiles(
        file_writer: AuditWriter, migrated_database: str, checkpoint_file: Path) -> None:
    """The file put back to an older checkpoint of this log: not one the writer knows, so its
    root is folded from the stored tiles (read in the lock's round trip) — it matches."""
    for i in range(6):
        file_writer.append(decision_fields(i))
    with superuser(migrated_database) as conn:
        older = conn.execute("SELECT note FROM audit_tlog_checkpoints WHERE size = 2").fetchone()[0]  # type: ignore[index]
    assert file_writer.flush_checkpoint_file()
    checkpoint_file.write_text(older)
    assert file_writer.append(decision_fields(6)).seq == 7
    assert file_writer.refusal is None and file_writer.stats.full_checks == 1


def test_a_caller_alone_does_not_wait_for_the_batching_window(store: AuditStore, signing_key: SigningKey) -> None:
    """The window is waited only after a batch that had company: one caller at a time never
    waits it (here 0.5 s, which each of its appends would otherwise take at least)."""
    with AuditWriter(store, key=signing_key, max_wait=0.5) as writer:
        writer.append(decision_fields(0))
        started = time.monotonic()
        for i in range(1, 5):
            writer.append(decision_fields(i))
        assert time.monotonic() - started < 1.5
        futures = [writer.submit(decision_fields(i)) for i in range(5, 25)]  # company: batched
        assert sorted(f.result(30).seq for f in futures) == list(range(6, 26))
        assert writer.stats.batches < 5 + 20


# -- the one-round-trip batch on the writer's own head (guarded; docs/audit.md) --------------------


def test_a_writer_alone_writes_its_batches_in_one_round_trip(file_writer: AuditWriter, store: AuditStore,
                                                            checkpoint_file: Path) -> None:
    """After the first batch (full check) and the second (which finds its own head), every batch
    is built before the lock and sent with its guard: one round trip each."""
    receipts = [file_writer.append(decision_fields(i)) for i in range(8)]
    assert [r.seq for r in receipts] == list(range(1, 9))
    assert file_writer.stats.one_trip == 6 and file_writer.stats.head_moved == 0
    assert file_writer.flush_checkpoint_file()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def _insider_appends(url: str, writer: AuditWriter, store: AuditStore) -> None:
    """The service's role appending a leaf under a key of its own (a checkpoint it signed,
    the head moved forward): not the writer's head any more, and not a trusted one."""
    insider = SigningKey.generate()
    origin = store.log_origin()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        draft = draft_leaf(encode_members(prepare_fields(decision_fields(900))))
        append_leaves(conn, [draft], signer=log_signer(insider, origin), key_id=insider.key_id,
                      trusted=[log_verifier(writer._key.public, origin)], now=datetime.now(UTC))
        conn.commit()


@pytest.mark.parametrize("name", [*TAMPERINGS, "the head moved by another role's append"])
def test_tampering_while_the_writer_is_on_its_own_head_misses_the_guard_and_is_refused(
        name: str, file_writer: AuditWriter, store: AuditStore, migrated_database: str) -> None:
    """The guarded batch writes nothing when the head is not the one it knows; the full check
    that follows refuses it as before (nothing of the batch is stored)."""
    for i in range(5):
        file_writer.append(decision_fields(i))
    assert file_writer.stats.one_trip == 3
    assert file_writer.flush_checkpoint_file()
    if name in TAMPERINGS:
        TAMPERINGS[name][0](migrated_database)
    else:
        _insider_appends(migrated_database, file_writer, store)
    with superuser(migrated_database) as conn:
        before = conn.execute("SELECT (SELECT count(*) FROM audit_leaves), (SELECT count(*) FROM "
                              "audit_tlog_checkpoints), (SELECT size FROM audit_tlog_head)").fetchone()
    with pytest.raises(AuditUnavailable, match="refuses to append"):
        file_writer.append(decision_fields(99))
    assert file_writer.stats.one_trip == 3 and file_writer.stats.refused_batches == 1
    with superuser(migrated_database) as conn:
        after = conn.execute("SELECT (SELECT count(*) FROM audit_leaves), (SELECT count(*) FROM "
                             "audit_tlog_checkpoints), (SELECT size FROM audit_tlog_head)").fetchone()
    assert after == before


def test_the_head_row_rewritten_to_equal_values_but_its_time_is_a_full_check(
        file_writer: AuditWriter, migrated_database: str) -> None:
    """Any difference in the locked row (here only its time) misses the guard: the full check
    runs (and passes: the tree is intact), exactly as a two-round-trip batch would."""
    for i in range(4):
        file_writer.append(decision_fields(i))
    _tampered(migrated_database, "UPDATE audit_tlog_head SET recorded_at = recorded_at - interval '1 second'")
    assert file_writer.append(decision_fields(4)).seq == 5
    assert file_writer.stats.head_moved == 1 and file_writer.stats.full_checks == 2


def test_another_writer_between_two_of_its_own_batches_misses_the_guard_then_is_checked(
        store: AuditStore, migrated_database: str, signing_key: SigningKey, checkpoint_file: Path) -> None:
    """A second worker appends while the first is on its own head: the first's guarded batch
    writes nothing, the full check verifies the other's head, and both batches are in the log.
    The second writes no checkpoint file here: the file is written in the background, and a note
    of the other's landing before the first's next batch would send that batch to the full check
    without trying the guard (safe, but not the case this test is about)."""
    other_store = AuditStore.from_url(migrated_database)
    try:
        with AuditWriter(store, key=signing_key, checkpoints=CheckpointPolicy(export_path=checkpoint_file)) as first, \
                AuditWriter(other_store, key=signing_key) as second:
            for i in range(4):
                first.append(decision_fields(i))
            assert first.stats.one_trip == 2
            assert first.flush_checkpoint_file()
            assert second.append(decision_fields(4)).seq == 5
            assert first.append(decision_fields(5)).seq == 6
            assert first.stats.head_moved == 1 and first.stats.full_checks == 2
            assert first.append(decision_fields(6)).seq == 7  # its own head again: full path once more
            assert first.flush_checkpoint_file()
            assert first.append(decision_fields(7)).seq == 8 and first.stats.one_trip == 3
    finally:
        other_store.dispose()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_batch_committed_while_the_guarded_batch_waits_for_the_lock_misses_the_guard(
        file_writer: AuditWriter, store: AuditStore, migrated_database: str, signing_key: SigningKey,
        checkpoint_file: Path) -> None:
    """The guarded batch locks the head in its own statement, whose snapshot is taken before it
    waits: an append holding the lock when it arrives (another worker's) and committing meanwhile
    must still make it miss the guard — the locked row is read at its newest version — and the
    full check then appends after that batch."""
    for i in range(4):
        file_writer.append(decision_fields(i))
    assert file_writer.stats.one_trip == 2
    assert file_writer.flush_checkpoint_file()
    origin = store.log_origin()
    url = migrated_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as other, psycopg.connect(url, autocommit=True) as watcher:
        draft = draft_leaf(encode_members(prepare_fields(decision_fields(900))))
        append_leaves(other, [draft], signer=log_signer(signing_key, origin), key_id=signing_key.key_id,
                      trusted=[log_verifier(signing_key.public, origin)], now=datetime.now(UTC))
        waiting = file_writer.submit(decision_fields(4))  # the head lock is the other's until it commits
        deadline = time.monotonic() + 10
        while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND wait_event_type = 'Lock'").fetchone()[0]:
            assert time.monotonic() < deadline, "the writer's batch never waited for the head lock"
            time.sleep(0.01)
        other.commit()
    assert waiting.result(10).seq == 6
    assert file_writer.stats.head_moved == 1 and file_writer.stats.full_checks == 2
    assert file_writer.flush_checkpoint_file()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How the guarded batches were sent: by libpq itself, or by psycopg after libpq could not."""
    counted = {"libpq": 0, "psycopg": 0, "refuse": 0}  # refuse: libpq not asked (psycopg sends)
    real = log_module._libpq_statement

    def counting(conn: psycopg.Connection[Any], sql: bytes, name: bytes | None, *args: Any) -> Any:
        if name != log_module._KNOWN_HEAD_NAME:
            return real(conn, sql, name, *args)
        result = None if counted["refuse"] else real(conn, sql, name, *args)
        counted["libpq" if result is not None else "psycopg"] += 1
        return result

    monkeypatch.setattr(log_module, "_libpq_statement", counting)
    return counted


def _stored(url: str) -> list[tuple[Any, ...]]:
    """Each leaf's columns beside what its body says, and its blobs."""
    with superuser(url) as conn:
        return conn.execute(
            "SELECT l.seq, l.recorded_at, l.kind, l.decision_id::text, l.app_id, l.outcome, l.leaf_hash, l.body, "
            "i.data IS NOT NULL, r.data IS NOT NULL, c.note FROM audit_leaves l "
            "LEFT JOIN audit_blobs i ON i.sha256 = l.input_sha256 LEFT JOIN audit_blobs r ON r.sha256 = l.result_sha256 "
            "LEFT JOIN audit_tlog_checkpoints c ON c.size = l.seq ORDER BY l.seq").fetchall()


def test_guarded_batches_sent_by_libpq_store_what_psycopg_stores(
        file_writer: AuditWriter, store: AuditStore, checkpoint_file: Path, migrated_database: str,
        sends: dict[str, int]) -> None:
    """The guarded statement is sent by libpq with parameters encoded in audit/log.py (not by
    psycopg's adapters): every column, blob and checkpoint it stores is what the receipts say,
    as for the batches psycopg sends."""
    receipts = [file_writer.append(decision_fields(i)) for i in range(5)]
    assert sends == {"libpq": 3, "psycopg": 0, "refuse": 0}
    sends["refuse"] = 1
    receipts += [file_writer.append(decision_fields(i)) for i in range(5, 8)]
    assert sends["psycopg"] == 3 and file_writer.stats.one_trip == 6
    rows = _stored(migrated_database)
    assert [row[0] for row in rows] == list(range(1, 9))
    for receipt, (seq, recorded_at, kind, decision_id, app_id, outcome, leaf_hash, body, has_input, has_result,
                  note) in zip(receipts, rows, strict=True):
        entry = receipt.entry
        assert (seq, orjson.loads(bytes(body)), bytes(leaf_hash).hex()) == (receipt.seq, entry, receipt.leaf_hash)
        assert (kind, decision_id, app_id, outcome) == ("decision", entry["decision_id"], entry["app_id"],
                                                      entry["outcome"])
        assert recorded_at == datetime.fromisoformat(entry["recorded_at"].replace("Z", "+00:00"))
        assert has_input and has_result and note == receipt.checkpoint
    assert file_writer.flush_checkpoint_file()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_statement_dropped_from_the_connection_is_sent_by_psycopg_then_prepared_again(
        file_writer: AuditWriter, store: AuditStore, checkpoint_file: Path, sends: dict[str, int]) -> None:
    """libpq's prepared statement gone from the session (a ``DEALLOCATE ALL``, a pooler's reset):
    that batch is sent by psycopg, and the next one prepares it again."""
    for i in range(4):
        file_writer.append(decision_fields(i))
    assert sends["libpq"] == 2
    held = store._append_held  # the writer's kept connection (it is idle between batches)
    assert held is not None
    conn = held.driver_connection
    conn.execute("DEALLOCATE ALL")
    conn.commit()
    assert file_writer.append(decision_fields(4)).seq == 5
    assert sends == {"libpq": 2, "psycopg": 1, "refuse": 0}
    assert file_writer.append(decision_fields(5)).seq == 6
    assert sends["libpq"] == 3 and file_writer.stats.one_trip == 4
    assert file_writer.flush_checkpoint_file()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_guarded_batch_the_database_refuses_fails_closed_and_stores_nothing(
        file_writer: AuditWriter, store: AuditStore, migrated_database: str, sends: dict[str, int]) -> None:
    """An error in the statement libpq sends is raised as psycopg raises it (it sends it again,
    nothing of the first having committed): the batch fails closed, nothing is stored, and the
    writer goes on once the database takes leaves again."""
    for i in range(4):
        file_writer.append(decision_fields(i))
    with superuser(migrated_database) as conn:
        conn.execute("ALTER TABLE audit_leaves ADD CONSTRAINT no_more CHECK (seq <= 4) NOT VALID")
    with pytest.raises(AuditUnavailable):
        file_writer.append(decision_fields(4))
    assert sends == {"libpq": 2, "psycopg": 1, "refuse": 0}
    with superuser(migrated_database) as conn:
        assert conn.execute("SELECT count(*), max(seq) FROM audit_leaves").fetchone() == (4, 4)
        assert conn.execute("SELECT size FROM audit_tlog_head").fetchone() == (4,)
        conn.execute("ALTER TABLE audit_leaves DROP CONSTRAINT no_more")
    assert file_writer.append(decision_fields(5)).seq == 5
    assert verify_whole(store).valid


def test_parameters_libpq_would_cut_or_misread_are_refused() -> None:
    """Text parameters travel as C strings (a NUL would cut them short) and a time without a
    zone would be read in the server's: both are refused before anything is sent."""
    params: dict[str, Any] = {name: None for name in log_module._KNOWN_HEAD_ORDER}
    params.update(note="clearance/test\n1\n\0", recorded_at=datetime.now(UTC))
    with pytest.raises(ValueError, match="note: text with a NUL"):
        log_module._known_head_values(params)
    params.update(note="fine", recorded_at=datetime.now())
    with pytest.raises(ValueError, match="recorded_at: a timestamp without a time zone"):
        log_module._known_head_values(params)
    params.update(recorded_at=datetime.now(UTC), blob_data=[b"\0\1"], size=7)
    values = log_module._known_head_values(params)
    assert values[log_module._KNOWN_HEAD_ORDER.index("size")] == b"7"
    assert values[log_module._KNOWN_HEAD_ORDER.index("blob_data")].endswith(b"\0\0\0\2\0\1")

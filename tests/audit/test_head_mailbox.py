"""Writers of one host share their committed head (``audit.head_mailbox``; docs/audit.md,
"Writers of one host share their head"): two writers taking turns send every batch after the
first as one guarded round trip on the state the other left. The mailbox is a hint: whatever
it says — edited, forged, garbage, older, another origin, a head since moved by a writer without
it or rolled back below it — a batch ends on the full path or refused, never on a wrong head,
and the log verifies."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from audit import AuditStore, AuditUnavailable, AuditWriter, CheckpointPolicy, SigningKey
from audit.head_mailbox import HeadMailbox, mailbox_path_for
from audit.log import AppendedLeaves, HeadState

from .helpers import cut_tail, decision_fields, superuser, triggers_disabled, verify_whole


@pytest.fixture
def pair(store: AuditStore, other_store: AuditStore, signing_key: SigningKey,
         checkpoint_file: Path) -> Iterator[tuple[AuditWriter, AuditWriter]]:
    """Two writers (two connections, as two worker processes) with one checkpoint file and one
    mailbox, each through its own open file (``flock`` orders them as it orders processes)."""
    policy = CheckpointPolicy(export_path=checkpoint_file)
    path = mailbox_path_for(checkpoint_file)
    first = AuditWriter(store, key=signing_key, checkpoints=policy, mailbox=HeadMailbox(path, signing_key)).start()
    second = AuditWriter(other_store, key=signing_key, checkpoints=policy,
                         mailbox=HeadMailbox(path, signing_key)).start()
    yield first, second
    first.close()
    second.close()


def _append(writer: AuditWriter, i: int, *writers: AuditWriter) -> int:
    seq = writer.append(decision_fields(i)).seq
    assert all(w.flush_checkpoint_file() for w in (writer, *writers))
    return seq


def _full_checks(*writers: AuditWriter) -> int:
    return sum(w.stats.full_checks for w in writers)


def test_two_writers_taking_turns_check_everything_once(pair: tuple[AuditWriter, AuditWriter],
                                                        store: AuditStore, checkpoint_file: Path) -> None:
    first, second = pair
    for i in range(10):
        assert _append(second if i % 2 else first, i, first, second) == i + 1
    # Only the very first batch checked everything; each later one was sent on the head the
    # other writer left, in one round trip, and its guard held.
    assert _full_checks(first, second) == 1
    assert first.stats.sibling_head + second.stats.sibling_head == 9
    assert first.stats.head_moved == second.stats.head_moved == 0
    assert mailbox_path_for(checkpoint_file).stat().st_mode & 0o777 == 0o600
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_receipts_are_built_after_the_mailbox_is_released(pair: tuple[AuditWriter, AuditWriter],
                                                         checkpoint_file: Path, store: AuditStore,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's receipts (each entry parsed back, its inclusion proof) are built once the
    mailbox's lock is released, so another worker's batch does not wait for them; the writer's
    time per phase shows where they went (``WriterStats``: after the append, not in it)."""
    first, second = pair
    path = mailbox_path_for(checkpoint_file)
    free_when_built: list[bool] = []
    build = AppendedLeaves.outcomes

    def outcomes(self: AppendedLeaves) -> list[object]:
        fd = os.open(path, os.O_RDWR)  # another open file: flock refuses it while a writer holds the lock
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free_when_built.append(True)
        except BlockingIOError:
            free_when_built.append(False)
        finally:
            os.close(fd)  # and with it the lock, if taken
        return build(self)  # type: ignore[return-value]

    monkeypatch.setattr(AppendedLeaves, "outcomes", outcomes)
    for i in range(4):
        assert _append(second if i % 2 else first, i, first, second) == i + 1
    assert free_when_built == [True] * 4
    for writer in (first, second):
        stats = writer.stats
        assert stats.batches == 2
        assert min(stats.phase_s.values()) > 0 and stats.phase_cpu_s["append"] > 0
        # A phase's CPU is part of its wall-clock time (both clocks tick per lap; slack for their grain).
        assert all(stats.phase_cpu_s[p] <= stats.phase_s[p] + 0.005 for p in stats.phase_s)
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def _mailbox(checkpoint_file: Path) -> Path:
    return mailbox_path_for(checkpoint_file)


def _garbage(path: Path, key: SigningKey) -> None:
    path.write_bytes(b"\x00" * 7 + b"not a head")


def _edited(path: Path, key: SigningKey) -> None:
    """A byte of the genuine mailbox changed (its size: a forged state without the key)."""
    data = bytearray(path.read_bytes())
    at = data.index(b'"row":[') + len(b'"row":[')
    at = data.index(b",", at) + 1  # the size
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    path.write_bytes(bytes(data))


def _other_key(path: Path, key: SigningKey) -> None:
    """A well-formed mailbox made with another key, claiming a larger head."""
    genuine = HeadMailbox(path, key)._parse(path.read_bytes())
    assert genuine is not None
    row = list(genuine.state.row)
    row[1] = int(row[1]) + 5
    forger = HeadMailbox(path, SigningKey.generate())
    forger.write(HeadState(tuple(row)), genuine.known)
    forger.close()


def _other_origin(path: Path, key: SigningKey) -> None:
    """Made with the signing key, but of another log (the state otherwise the genuine one, its
    size one larger so that it would be newer)."""
    genuine = HeadMailbox(path, key)._parse(path.read_bytes())
    assert genuine is not None
    row = list(genuine.state.row)
    row[0], row[1] = "someone/else", int(row[1]) + 1
    holder = HeadMailbox(path, key)
    holder.write(HeadState(tuple(row)), genuine.known)
    holder.close()


def _wrong_state(path: Path, key: SigningKey) -> None:
    """Made with the signing key (a key holder can sign anything anyway), a state the database
    does not hold: a larger size, another root."""
    genuine = HeadMailbox(path, key)._parse(path.read_bytes())
    assert genuine is not None
    row = list(genuine.state.row)
    row[1], row[2] = int(row[1]) + 3, bytes(32)
    holder = HeadMailbox(path, key)
    holder.write(HeadState(tuple(row)), genuine.known)
    holder.close()


@pytest.mark.parametrize("tamper", [_garbage, _edited, _other_key, _other_origin, _wrong_state])
def test_a_tampered_mailbox_only_costs_a_full_check(pair: tuple[AuditWriter, AuditWriter], store: AuditStore,
                                                     signing_key: SigningKey, checkpoint_file: Path,
                                                     tamper: object) -> None:
    first, second = pair
    for i in range(4):
        _append(second if i % 2 else first, i, first, second)
    assert _full_checks(first, second) == 1
    tamper(_mailbox(checkpoint_file), signing_key)  # type: ignore[operator]
    # The next batch is the first writer's, after the second's: without a usable mailbox it
    # takes the full path (verifying the second writer's checkpoint) and still appends.
    assert _append(first, 4, first, second) == 5
    assert _full_checks(first, second) == 2
    for i in range(5, 9):  # and the writers are back to taking turns in one round trip
        assert _append(second if i % 2 else first, i, first, second) == i + 1
    assert _full_checks(first, second) == 2
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def _head_row(url: str) -> tuple[object, ...]:
    with superuser(url) as conn:
        row = conn.execute("SELECT size, root, frontier, recorded_at FROM audit_tlog_head").fetchone()
    assert row is not None
    return tuple(row)


def _roll_back(url: str, row: tuple[object, ...]) -> None:
    """The database put back exactly to the head ``row`` (_head_row's): the leaves and checkpoints
    after it deleted, the head row as it was, its time included (the guard compares it too)."""
    with superuser(url) as conn, triggers_disabled(conn):
        conn.execute("DELETE FROM audit_leaves WHERE seq > %s", (row[0],))
        conn.execute("DELETE FROM audit_tlog_checkpoints WHERE size > %s", (row[0],))
        conn.execute("UPDATE audit_tlog_head SET size = %s, root = %s, frontier = %s, recorded_at = %s", row)


def test_an_older_mailbox_put_back_with_the_log_rolled_back_to_it_is_refused(
        pair: tuple[AuditWriter, AuditWriter], store: AuditStore, migrated_database: str,
        checkpoint_file: Path) -> None:
    """The genuine mailbox of an earlier head (MAC valid), and the database's head row, leaves and
    checkpoints put back exactly to that head: the guard would hold on it, but no writer takes
    it — the one that knows a newer head does not go back, and the checkpoint file holds a
    newer checkpoint than that tree contains — so the full check compares the file and refuses."""
    first, second = pair
    for i in range(3):
        _append(second if i % 2 else first, i, first, second)
    old_mailbox, old_row = _mailbox(checkpoint_file).read_bytes(), _head_row(migrated_database)
    assert old_row[0] == 3
    for i in range(3, 6):
        _append(second if i % 2 else first, i, first, second)
    _roll_back(migrated_database, old_row)
    _mailbox(checkpoint_file).write_bytes(old_mailbox)
    for writer in (first, second):
        with pytest.raises(AuditUnavailable, match="refuses to append"):
            writer.append(decision_fields(99))
        assert writer.refusal is not None and "smaller than the checkpoint of size 6" in writer.refusal


def test_a_writer_that_failed_does_not_take_an_older_mailbox_past_the_file(
        pair: tuple[AuditWriter, AuditWriter], store: AuditStore, migrated_database: str,
        checkpoint_file: Path) -> None:
    """A writer that knows no head of its own (its last batch failed) takes a mailbox newer than
    nothing — but the floor must be among what that tree contains: a put-back older mailbox on
    a database rolled back to it is refused."""
    first, second = pair
    for i in range(3):
        _append(second if i % 2 else first, i, first, second)
    old_mailbox, old_row = _mailbox(checkpoint_file).read_bytes(), _head_row(migrated_database)
    for i in range(3, 6):
        _append(second if i % 2 else first, i, first, second)
    first._known, first._known_files = None, {}  # as after a failed batch
    _roll_back(migrated_database, old_row)
    _mailbox(checkpoint_file).write_bytes(old_mailbox)
    with pytest.raises(AuditUnavailable, match="refuses to append"):
        first.append(decision_fields(99))
    # Its batches before (seq 3 and 5) were on the sibling's head; the refused one was not even
    # tried on the mailbox's: the file's checkpoint is not among what that tree contains.
    assert first.stats.sibling_head == first.stats.one_trip == 2 and first.stats.head_moved == 0
    assert first.refusal is not None and "smaller than the checkpoint of size 6" in first.refusal


def test_a_tail_rolled_back_below_the_mailbox_is_refused(pair: tuple[AuditWriter, AuditWriter],
                                                          store: AuditStore, migrated_database: str,
                                                          checkpoint_file: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.store

    guards: list[bool] = []
    real = audit.store.append_on_known_head

    def recorded(*args: object, **kwargs: object) -> object:
        done = real(*args, **kwargs)  # type: ignore[arg-type]
        guards.append(done is not None)
        return done

    monkeypatch.setattr(audit.store, "append_on_known_head", recorded)
    first, second = pair
    for i in range(6):
        _append(second if i % 2 else first, i, first, second)
    with superuser(migrated_database) as conn, triggers_disabled(conn):
        cut_tail(conn, 3)
    # The mailbox holds the second writer's head of size 6, newer than the first's own (5):
    # taken, its guard misses, the full check finds the tree smaller than the file's checkpoint.
    guards.clear()
    with pytest.raises(AuditUnavailable, match="refuses to append"):
        first.append(decision_fields(99))
    assert guards == [False]
    assert first.refusal is not None and "smaller than the checkpoint of size 6" in first.refusal


def test_a_head_moved_by_a_writer_without_the_mailbox_takes_the_full_path(
        pair: tuple[AuditWriter, AuditWriter], store: AuditStore, signing_key: SigningKey,
        migrated_database: str, checkpoint_file: Path) -> None:
    """A third writer (another host, same key, same database) appends without the mailbox: the
    next batch on the mailbox's head misses its guard and verifies the third writer's head."""
    first, second = pair
    for i in range(4):
        _append(second if i % 2 else first, i, first, second)
    third_store = AuditStore.from_url(migrated_database)
    try:
        with AuditWriter(third_store, key=signing_key) as third:
            third.append(decision_fields(50))
            third.append(decision_fields(51))
    finally:
        third_store.dispose()
    before = _full_checks(first, second)
    assert _append(first, 4, first, second) == 7  # on the second's head (mailbox): guard missed
    assert first.stats.head_moved == 1 and _full_checks(first, second) == before + 1
    assert _append(second, 5, first, second) == 8  # back on the mailbox, one round trip
    assert _full_checks(first, second) == before + 1
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_busy_mailbox_is_waited_for_a_bounded_time(store: AuditStore, signing_key: SigningKey,
                                                     checkpoint_file: Path) -> None:
    """A sibling that hangs holding the lock costs a batch its mailbox, not its service."""
    path = mailbox_path_for(checkpoint_file)
    hung = HeadMailbox(path, signing_key)
    assert hung.acquire()
    try:
        with AuditWriter(store, key=signing_key, checkpoints=CheckpointPolicy(export_path=checkpoint_file),
                         mailbox=HeadMailbox(path, signing_key, wait=0.05)) as writer:
            assert writer.append(decision_fields(0)).seq == 1
            assert writer.stats.mailbox_busy == 1
            assert writer.append(decision_fields(1)).seq == 2  # not waited for again at once
            assert writer.stats.mailbox_busy == 1
    finally:
        hung.release()
        hung.close()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_mailbox_round_trips_the_head_exactly(tmp_path: Path, signing_key: SigningKey) -> None:
    """What the guard compares byte for byte comes back as it was written (times to the µs)."""
    from datetime import UTC, datetime

    row = ("clearance/audit", 7, b"\x01" * 32, b"\x02" * 100, datetime(2026, 12, 4, 14, 0, 0, 123456, tzinfo=UTC),
           7, b"\x01" * 32, "note\n", None, None)
    writer, reader = HeadMailbox(tmp_path / "m", signing_key), HeadMailbox(tmp_path / "m", signing_key)
    writer.write(HeadState(row), [None, b"file"])
    found = reader.read(origin="clearance/audit", newer_than=None)
    assert found is not None and found.state.row == row and found.known == (None, b"file")
    assert reader.read(origin="clearance/audit", newer_than=replace(HeadState(row))) is None  # not newer
    assert writer.read(origin="clearance/audit", newer_than=None) is None  # its own
    writer.close()
    reader.close()


def test_a_shorter_state_after_a_longer_one_is_read_whole(tmp_path: Path, signing_key: SigningKey) -> None:
    """The file is truncated only when what is written is shorter than what it holds (read under
    the same lock): a longer tail left behind would break the MAC, a sibling's batch would lose
    its one round trip."""
    from datetime import UTC, datetime

    def row(size: int, note: str) -> tuple[object, ...]:
        return ("clearance/audit", size, b"\x01" * 32, b"\x02" * 64, datetime(2026, 12, 4, tzinfo=UTC),
                size, b"\x01" * 32, note, None, None)

    first, second = HeadMailbox(tmp_path / "m", signing_key), HeadMailbox(tmp_path / "m", signing_key)
    for writer, reader, size, note in ((first, second, 5, "n" * 300 + "\n"), (second, first, 6, "short\n"),
                                       (first, second, 7, "x" * 200 + "\n"), (first, second, 8, "y\n")):
        assert writer.acquire()
        writer.read(origin="clearance/audit", newer_than=None)
        writer.write(HeadState(row(size, note)), [b"file"])
        writer.release()
        assert reader.acquire()
        found = reader.read(origin="clearance/audit", newer_than=None)
        reader.release()
        assert found is not None and found.state.row == row(size, note)
        assert (tmp_path / "m").stat().st_size == len(writer._written or b"")
    first.close()
    second.close()

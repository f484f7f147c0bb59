"""A batch after another worker's (docs/audit.md, "After another worker's batch"): the writer reads
that worker's head without the lock, gives it the full check — the tree read must extend the
one this writer last checked or made — and writes its batch on it with the guarded one-statement
write. A head that moves before the lock misses the guard; a tree that does not extend the
writer's own (a rolled-back tail grown again by a worker without the checkpoint file) goes to
the locked full check, which refuses it as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import audit.store
from audit import AuditStore, AuditUnavailable, AuditWriter, CheckpointPolicy, SigningKey
from audit.log import HeadState

from .helpers import cut_tail, decision_fields, superuser, triggers_disabled, verify_whole


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    return tmp_path / "outside" / "checkpoint"


def _append(writer: AuditWriter, i: int, *writers: AuditWriter) -> int:
    """Append one entry, then wait for every writer's checkpoint file thread (the file then holds
    the newest note: the case under test does not depend on how far behind it is)."""
    seq = writer.append(decision_fields(i)).seq
    assert all(w.flush_checkpoint_file() for w in (writer, *writers))
    return seq


@pytest.fixture
def other_store(migrated_database: str) -> Iterator[AuditStore]:
    store = AuditStore.from_url(migrated_database)
    yield store
    store.dispose()


def test_a_batch_after_another_writers_is_written_on_the_head_checked_before_the_lock(
        store: AuditStore, other_store: AuditStore, signing_key: SigningKey, checkpoint_file: Path) -> None:
    policy = CheckpointPolicy(export_path=checkpoint_file)
    with AuditWriter(store, key=signing_key, checkpoints=policy) as first, \
            AuditWriter(other_store, key=signing_key, checkpoints=policy) as second:
        for i in range(8):
            assert _append(first if i % 2 else second, i, first, second) == i + 1
        # Every batch but each writer's first found the other's head: read ahead, guard held.
        assert first.stats.read_ahead == 3 and second.stats.read_ahead == 3
        assert first.stats.read_ahead_moved == 0 and first.stats.full_checks == 4
        assert first.flush_checkpoint_file() and second.flush_checkpoint_file()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_head_moved_between_the_read_and_the_lock_misses_the_guard(
        store: AuditStore, other_store: AuditStore, signing_key: SigningKey, checkpoint_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The other worker commits after the head was read and checked, before the guarded write
    takes the lock: that write must store nothing, and the locked full path appends after it."""
    policy = CheckpointPolicy(export_path=checkpoint_file)
    with AuditWriter(store, key=signing_key, checkpoints=policy) as first, \
            AuditWriter(other_store, key=signing_key, checkpoints=policy) as second:
        _append(first, 0, second)
        _append(second, 1, first)
        real, done = audit.store.read_ahead, []

        def then_the_other_appends(*args: Any, **kwargs: Any) -> HeadState | None:
            read = real(*args, **kwargs)
            if not done:  # the first writer's read; the other's own batch reads as usual
                done.append(read)
                assert read is not None and read.size == 2
                assert second.append(decision_fields(2)).seq == 3
            return read

        monkeypatch.setattr(audit.store, "read_ahead", then_the_other_appends)
        assert first.append(decision_fields(3)).seq == 4
        assert first.stats.read_ahead_moved == 1 and first.stats.read_ahead == 0
        assert first.flush_checkpoint_file() and second.flush_checkpoint_file()
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_rolled_back_tail_grown_again_past_the_writers_tree_is_refused(
        store: AuditStore, other_store: AuditStore, signing_key: SigningKey, checkpoint_file: Path,
        migrated_database: str) -> None:
    """The tail cut back below this writer's last tree, then grown past it by a worker that
    keeps no checkpoint file: a head signed by the pinned key, larger than the checkpoint file's,
    with a frontier that gives its root — but its tree does not extend the writer's own. The
    read-ahead must not take it (the leaves appended since do not fold from the writer's
    frontier to that root); the locked full check finds the file's checkpoint is not in it."""
    with AuditWriter(store, key=signing_key, checkpoints=CheckpointPolicy(export_path=checkpoint_file)) as first, \
            AuditWriter(other_store, key=signing_key) as second:
        for i in range(4):  # taking turns: each batch of the first after the other's
            _append(second if i % 2 else first, i, first)
        assert _append(first, 4, first) == 5 and first.stats.read_ahead == 2
        second.append(decision_fields(5))
        with superuser(migrated_database) as conn, triggers_disabled(conn):
            cut_tail(conn, 3)
        for i in range(6, 10):  # the other worker's head check passes: it has no file to compare
            second.append(decision_fields(i))
        with pytest.raises(AuditUnavailable, match="refuses to append"):
            first.append(decision_fields(99))
        assert first.refusal is not None and "the stored tree was rewritten" in first.refusal
        assert first.stats.read_ahead == 2

"""The floor check of a batch after another worker's (docs/audit.md, "What the writer checks
before each batch"): read from what changed since the writer's own last tree — the leaves
stored after it, fetched with the locked head — instead of the floor's tiles. The leaves must
fold from the writer's frontier to the locked head's: a tail rolled back below the writer's
tree and grown again past it by a worker that keeps no checkpoint file (a head signed by the
pinned key, larger than the file's checkpoint, whose frontier gives its root) does not, and
the file's checkpoint, no longer in the tree, is refused as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit import AuditStore, AuditUnavailable, AuditWriter, CheckpointPolicy, SigningKey

from .helpers import cut_tail, decision_fields, superuser, triggers_disabled, verify_whole


def _append(writer: AuditWriter, i: int, *writers: AuditWriter) -> int:
    """Append one entry, then wait for every writer's checkpoint-file thread (the file then holds
    the newest note: what is tested does not depend on how far behind it is)."""
    seq = writer.append(decision_fields(i)).seq
    assert all(w.flush_checkpoint_file() for w in (writer, *writers))
    return seq


def test_two_writers_taking_turns_check_the_floor_from_the_leaves_since(
        store: AuditStore, other_store: AuditStore, signing_key: SigningKey, checkpoint_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.log

    read: list[int] = []
    real = audit.log._floor_tiles
    monkeypatch.setattr(audit.log, "_floor_tiles", lambda conn, floor: read.append(floor.size) or real(conn, floor))
    policy = CheckpointPolicy(export_path=checkpoint_file)
    with AuditWriter(store, key=signing_key, checkpoints=policy) as first, \
            AuditWriter(other_store, key=signing_key, checkpoints=policy) as second:
        for i in range(10):
            assert _append(first if i % 2 else second, i, first, second) == i + 1
        assert first.stats.full_checks == 5 and second.stats.full_checks == 5
    # One tile read: the first writer's first batch, which has no tree of its own to start from;
    # every later one settled the floor from the leaves since its own tree.
    assert read == [1]
    assert verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_rolled_back_tail_grown_again_past_the_writers_tree_is_refused(
        store: AuditStore, other_store: AuditStore, signing_key: SigningKey, checkpoint_file: Path,
        migrated_database: str) -> None:
    with AuditWriter(store, key=signing_key, checkpoints=CheckpointPolicy(export_path=checkpoint_file)) as first, \
            AuditWriter(other_store, key=signing_key) as second:
        for i in range(5):  # taking turns: each batch of the first after the other's (a full check)
            _append(second if i % 2 else first, i, first)
        assert first.stats.full_checks == 3
        second.append(decision_fields(5))
        with superuser(migrated_database) as conn, triggers_disabled(conn):
            cut_tail(conn, 3)
        for i in range(6, 10):  # the other's head check passes: it has no file to compare with
            second.append(decision_fields(i))
        with pytest.raises(AuditUnavailable, match="refuses to append"):
            first.append(decision_fields(99))
        assert first.refusal is not None and "the stored tree was rewritten" in first.refusal

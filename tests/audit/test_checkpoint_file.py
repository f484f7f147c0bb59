"""The checkpoint file's two slots (audit/checkpoint_file.py): written in place, the larger note
that verifies serves, a torn slot never costs more than the note before it, and the file never
goes back — for readers in the middle of a write and after a crash in one."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

import audit.checkpoint_file as module
from audit import AuditStore, AuditUnavailable, AuditWriter, CheckpointPolicy, SigningKey
from audit.checkpoint_file import SLOT_BYTES, grow_checkpoint_file, notes_in, read_checkpoint_note_file
from audit.errors import CheckpointFileError
from audit.tlog.checkpoint import Checkpoint, sign_checkpoint
from audit.tlog.errors import TlogError
from audit.trust import log_signer, log_verifier

from .helpers import cut_tail, decision_fields, superuser, triggers_disabled, verify_whole

ORIGIN = "clearance/test"
KEY = SigningKey.generate()
TRUSTED = [log_verifier(KEY.public, ORIGIN)]


def _note(size: int, *, signers: int = 1) -> str:
    extra = [log_signer(SigningKey.generate(), f"{ORIGIN}/{i}") for i in range(signers - 1)]
    return sign_checkpoint(Checkpoint(ORIGIN, size, bytes([size % 256]) * 32), [log_signer(KEY, ORIGIN), *extra])


def _size(path: Path) -> int:
    return read_checkpoint_note_file(path, TRUSTED, origin=ORIGIN).size


def _slot_of(path: Path, size: int) -> int:
    """The byte offset of the slot holding the note of ``size``."""
    data = path.read_bytes()
    return 0 if _note(size).encode() in data[:SLOT_BYTES] else SLOT_BYTES


def test_notes_are_written_in_place_into_the_slot_not_holding_the_larger(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    assert grow_checkpoint_file(path, _note(1), TRUSTED)
    inode = path.stat().st_ino
    assert path.stat().st_size == 2 * SLOT_BYTES and notes_in(path.read_bytes()) == [_note(1).encode()]
    for size in range(2, 8):
        assert grow_checkpoint_file(path, _note(size), TRUSTED)
        # The two newest notes, the newest in the slot the older one left; no rename after the first.
        assert sorted(notes_in(path.read_bytes())) == sorted([_note(size - 1).encode(), _note(size).encode()])
        assert _size(path) == size and path.stat().st_ino == inode and path.stat().st_size == 2 * SLOT_BYTES
    assert not grow_checkpoint_file(path, _note(5), TRUSTED)  # only grows
    assert _size(path) == 7
    text = path.read_text(encoding="utf-8")  # text an operator can read: the two notes, newlines after each
    assert _note(7) in text and _note(6) in text


def test_a_slot_torn_by_a_crash_costs_no_more_than_the_note_before(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    for size in (1, 2):
        grow_checkpoint_file(path, _note(size), TRUSTED)
    # A crash in the middle of writing note 3: into the slot of note 1, half of it written.
    offset, new = _slot_of(path, 1), _note(3).encode()
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(new[: len(new) // 2])
    assert _size(path) == 2
    assert grow_checkpoint_file(path, _note(4), TRUSTED)  # into the torn slot: note 2 stays whole
    assert sorted(notes_in(path.read_bytes())) == sorted([_note(2).encode(), _note(4).encode()])
    assert _size(path) == 4


def test_a_plain_note_is_read_and_the_next_write_makes_two_slots(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    path.write_text(_note(5), encoding="utf-8")  # an earlier version's file, or an operator's copy
    assert _size(path) == 5
    assert not grow_checkpoint_file(path, _note(4), TRUSTED)
    assert grow_checkpoint_file(path, _note(6), TRUSTED)
    assert path.stat().st_size == 2 * SLOT_BYTES and _size(path) == 6


def test_a_note_too_long_for_a_slot_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    long = _note(3, signers=60)
    assert len(long.encode()) > SLOT_BYTES
    grow_checkpoint_file(path, _note(2), TRUSTED)
    assert grow_checkpoint_file(path, long, TRUSTED)
    assert path.read_text(encoding="utf-8") == long and _size(path) == 3
    assert grow_checkpoint_file(path, _note(4), TRUSTED)
    assert path.stat().st_size == 2 * SLOT_BYTES and _size(path) == 4


def test_a_plain_note_longer_than_both_slots_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    long = _note(5, signers=100)  # read in more than one piece
    assert len(long.encode()) > 2 * SLOT_BYTES + 1
    path.write_text(long, encoding="utf-8")
    assert not grow_checkpoint_file(path, _note(4), TRUSTED)
    assert grow_checkpoint_file(path, _note(6), TRUSTED)
    assert path.stat().st_size == 2 * SLOT_BYTES and _size(path) == 6


def test_every_slot_write_is_on_disk_before_the_write_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What reaches the slots is written synchronously (the descriptor is O_DSYNC, or a flush
    follows): a note the file thread reports written survives a power cut."""
    path = tmp_path / "checkpoint"
    grow_checkpoint_file(path, _note(1), TRUSTED)  # the first write makes the file (atomically, flushed)
    unsynced: list[int] = []
    real_pwrite, real_fdatasync = module.os.pwrite, module.os.fdatasync

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        if not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DSYNC:
            unsynced.append(fd)
        return real_pwrite(fd, data, offset)

    def fdatasync(fd: int) -> None:
        if fd in unsynced:
            unsynced.remove(fd)
        real_fdatasync(fd)

    monkeypatch.setattr(module.os, "pwrite", pwrite)
    monkeypatch.setattr(module.os, "fdatasync", fdatasync)
    for size in range(2, 6):
        assert grow_checkpoint_file(path, _note(size), TRUSTED)
    assert _size(path) == 5 and not unsynced


@pytest.mark.parametrize("damage", ["garbage", "both slots torn"])
def test_a_damaged_file_is_named_and_not_written_over(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "checkpoint"
    if damage == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    else:
        path.write_bytes(b"clearance/test\n12".ljust(SLOT_BYTES, b"\n") + b"not a note".ljust(SLOT_BYTES, b"\n"))
    before = path.read_bytes()
    with pytest.raises(CheckpointFileError):
        read_checkpoint_note_file(path, TRUSTED)
    with pytest.raises((TlogError, UnicodeDecodeError)):
        grow_checkpoint_file(path, _note(20), TRUSTED)
    assert path.read_bytes() == before


def test_empty_slots_hold_no_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    path.write_bytes(b"\n" * (2 * SLOT_BYTES))
    with pytest.raises(CheckpointFileError, match="holds no checkpoint"):
        read_checkpoint_note_file(path, TRUSTED)


def test_a_note_no_pinned_key_signed_does_not_serve(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    grow_checkpoint_file(path, _note(2), TRUSTED)
    intruder = SigningKey.generate()
    forged = sign_checkpoint(Checkpoint(ORIGIN, 9, bytes(32)), [log_signer(intruder, ORIGIN)])
    assert grow_checkpoint_file(path, forged, TRUSTED)  # what it is given: the writer signed it
    assert _size(path) == 2
    assert grow_checkpoint_file(path, _note(10), TRUSTED)  # over the forged one, which does not count
    assert notes_in(path.read_bytes()) == [_note(10).encode(), _note(2).encode()] or \
        notes_in(path.read_bytes()) == [_note(2).encode(), _note(10).encode()]
    assert _size(path) == 10 and not grow_checkpoint_file(path, _note(3), TRUSTED)


def test_readers_in_the_middle_of_writes_never_see_the_file_go_back(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    grow_checkpoint_file(path, _note(1), TRUSTED)
    notes = [_note(size) for size in range(2, 400)]
    done = threading.Event()
    seen: list[int] = []
    failures: list[Exception] = []

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(_size(path))
            except CheckpointFileError as exc:  # pragma: no cover - the failure this test looks for
                failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for note in notes:
            grow_checkpoint_file(path, note, TRUSTED)
    finally:
        done.set()
        reader.join()
    assert not failures
    assert seen == sorted(seen) and seen[-1] >= 300


def test_a_writer_restarted_after_a_torn_write_keeps_the_newest_whole_note_as_its_floor(
        store: AuditStore, signing_key: SigningKey, checkpoint_file: Path, migrated_database: str) -> None:
    """A crash tore the slot being written; the other holds the newest note the file had: a tail
    cut back below it is still refused, and an intact log goes on (the torn slot written next)."""
    policy = CheckpointPolicy(export_path=checkpoint_file)
    with AuditWriter(store, key=signing_key, checkpoints=policy) as writer:
        for i in range(3):
            writer.append(decision_fields(i))
    trusted = [log_verifier(signing_key.public, store.log_origin())]
    assert read_checkpoint_note_file(checkpoint_file, trusted).size == 3
    # The slot not holding note 3 (note 2, or 1 when the file's thread coalesced 2 away): the
    # next write goes there; note 4 half written over it, then the crash.
    offset = SLOT_BYTES if b"\n3\n" in checkpoint_file.read_bytes()[:SLOT_BYTES] else 0
    with checkpoint_file.open("r+b") as f:
        f.seek(offset)
        f.write(b"clearance/audit\n4\nAAAA")
    assert read_checkpoint_note_file(checkpoint_file, trusted).size == 3

    with AuditWriter(store, key=signing_key, checkpoints=policy) as writer:
        writer.append(decision_fields(3))
        assert writer.flush_checkpoint_file()
    assert read_checkpoint_note_file(checkpoint_file, trusted).size == 4
    assert len(notes_in(checkpoint_file.read_bytes())) == 2

    with superuser(migrated_database) as conn, triggers_disabled(conn):
        cut_tail(conn, 2)  # the database's operators roll the tail back
    with AuditWriter(store, key=signing_key, checkpoints=policy) as writer:
        assert writer.refusal is not None and "smaller than the checkpoint of size 4" in writer.refusal
        with pytest.raises(AuditUnavailable):
            writer.append(decision_fields(9))
    assert not verify_whole(store, checkpoint_files=[checkpoint_file]).valid


def test_a_slot_torn_before_a_process_starts_is_verified_at_its_first_write(tmp_path: Path) -> None:
    """The torn slot parses as the larger note (its first lines are the new note's): a process
    starting on that file must still write into it, not over the one whole note."""
    path = tmp_path / "checkpoint"
    for size in (1, 2):
        grow_checkpoint_file(path, _note(size), TRUSTED)
    offset, new = _slot_of(path, 1), _note(3).encode()
    with path.open("r+b") as f:  # note 3's first lines over note 1, its signature not yet: a crash
        f.seek(offset)
        f.write(new[: new.index(b"\n\n")])
    torn = notes_in(path.read_bytes())
    assert len(torn) == 2 and _size(path) == 2
    assert grow_checkpoint_file(path, _note(4), TRUSTED)  # a fresh process (a new _GrowingFile)
    assert sorted(notes_in(path.read_bytes())) == sorted([_note(2).encode(), _note(4).encode()])


@pytest.mark.parametrize("size", [0, 1, 4096, 8191, 8192, 8193, 70_001])
def test_file_bytes_reads_every_byte(tmp_path: Path, size: int) -> None:
    """The writer's read of the file before each batch (two slots, or one plain note of any length)."""
    from audit.checkpoint_file import file_bytes

    data = bytes(i % 251 for i in range(size))
    (tmp_path / "f").write_bytes(data)
    assert file_bytes(tmp_path / "f") == data
    with pytest.raises(FileNotFoundError):
        file_bytes(tmp_path / "missing")


def test_a_slots_note_is_found_as_stripping_the_padding_finds_it() -> None:
    """``_unpadded`` (which skips scanning the padding) against what it replaced, the padding
    stripped and the note's last newline put back, on slots of every shape: notes of every
    length up to a full slot, with and without their last newline, holding blank lines or three
    newlines in a row, padding of zero to 4,096 bytes, damaged bytes after the padding."""
    import random

    from audit.checkpoint_file import _unpadded

    def reference(slot: bytes) -> bytes:
        note = slot.rstrip(b"\n")
        return note + b"\n" if note else b""

    rng = random.Random(7)
    alphabet = [b"a", b"Z", b"0", b" ", b"\n", b"\n\n", b"\n\n\n", b"\xe2\x80\x94", b"+"]
    slots = [b"", b"\n" * SLOT_BYTES, b"x" * SLOT_BYTES, b"x" * (SLOT_BYTES - 1) + b"\n",
             b"x" * (SLOT_BYTES - 2) + b"\n\n", b"x" * (SLOT_BYTES - 3) + b"\n\n\n"]
    for _ in range(3000):
        note = b"".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 60, 400, 2000])))
        slot = (note + b"\n" * rng.randrange(0, SLOT_BYTES))[:SLOT_BYTES]
        if rng.random() < 0.1:
            slot = slot[:-1] + b"x"  # damaged after the padding
        slots.append(slot.ljust(SLOT_BYTES, b"\n") if rng.random() < 0.5 else slot)
    for slot in slots:
        assert _unpadded(slot) == reference(slot), slot[:80]

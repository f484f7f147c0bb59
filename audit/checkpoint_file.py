"""The growing checkpoint file (``CLEARANCE_CHECKPOINT_FILE``): the newest v2 checkpoint the
service has ever issued, kept outside the database.

Every batch signs a checkpoint in its transaction; after the commit the writer hands that note
to a :class:`CheckpointFileWriter`, whose thread puts it in the file (:func:`grow_checkpoint_file`)
unless the file already holds a larger one (several worker processes share it: an exclusive
``flock`` on ``<file>.lock`` orders them). The writer does not wait for it: the next batch
starts at once, and notes committed while a write is under way are coalesced (the thread writes
the newest one next). So the file holds the newest checkpoint committed before the write under
way started: behind the database by at most the batches committed during one file write (a
fraction of a millisecond), and by none once the writer is closed (``close`` waits for the last
note). The file only grows, so a database cut back or rewritten behind it is caught at the
writer's next head check (``audit.log.append_leaves``) and by verification.

**Two slots, written in place.** The file is two slots of :data:`SLOT_BYTES` bytes, each a
signed note padded with newlines (an empty slot is all newlines); the checkpoint it holds is the
largest note of the two that verifies. A write overwrites the slot that does *not* hold that
note (one ``pwrite`` to a descriptor opened ``O_DSYNC``, on disk when it returns: the file keeps
its size and blocks, so no rename, no directory fsync and no journal commit — about a fifth of
the atomic replacement's cost, which competed with PostgreSQL's WAL flush on the same disk). A
crash or a reader in the middle of a write can find that one slot torn; its signature fails and
the other slot still holds the previous note, so the file is never worse than "the previous
note" (as a temporary file + rename gave). A file that is one plain note (written by an earlier
version, or copied by an operator) is read as that note, and the next write replaces it by a
two-slot file (atomically, once); so is a note too long for a slot.

:func:`read_checkpoint_note_file` reads it back with the pinned keys; any problem (unreadable,
not a checkpoint note, no pinned signature, another log's origin) is a
:class:`~audit.errors.CheckpointFileError` naming the file and the reason.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from ._files import atomic_write
from .checkpoints import read_checkpoint_file
from .errors import CheckpointFileError
from .keys import Keyring
from .log import VerifiedNotes, opened
from .tlog.checkpoint import Checkpoint, SignedCheckpoint
from .tlog.errors import TlogError
from .tlog.note import Verifier, parse_note
from .trust import pinned_keyring

log = logging.getLogger(__name__)

__all__ = ["SLOT_BYTES", "CheckpointFileWriter", "checkpoint_note_of", "file_bytes", "grow_checkpoint_file",
           "note_size", "notes_in", "read_checkpoint_note_file", "read_outside_checkpoint", "unreadable"]

SLOT_BYTES = 4096
"""One slot of the checkpoint file: a page, which a note (a few hundred bytes) fits many times."""
_SLOTTED_BYTES = 2 * SLOT_BYTES
_PAD = b"\n"
_PADDING = _PAD * SLOT_BYTES
_END = _PAD * 3


def _unusable(path: str | os.PathLike[str], reason: str) -> CheckpointFileError:
    return CheckpointFileError(f"checkpoint file {path}: {reason}", path=str(path), reason=reason)


def note_size(note: str) -> int:
    """The tree size a checkpoint note states (signature not checked). Raises ``TlogError``."""
    return Checkpoint.parse(parse_note(note).text).size


def read_checkpoint_note_file(path: str | os.PathLike[str], trusted: Sequence[Verifier], *,
                              origin: str | None = None) -> SignedCheckpoint:
    """The checkpoint in ``path``, its signature checked with ``trusted`` (the pinned keys)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from exc
    return checkpoint_note_of(path, data, trusted, origin=origin)


def unreadable(path: str | os.PathLike[str], exc: OSError) -> CheckpointFileError:
    return _unusable(path, f"cannot be read ({exc.strerror or exc})")


def notes_in(data: bytes) -> list[bytes]:
    """The notes in a checkpoint file's bytes: its two slots' notes, padding taken off (empty
    slots left out), or the whole file when it is not two slots (one plain note)."""
    slots = _slots(data)
    return [data] if slots is None else [note for note in slots if note]


def file_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, read with bare descriptors: the writer reads the file before every batch,
    and ``Path.read_bytes``'s file objects cost about as much as the read itself."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _pread_all(fd)
    finally:
        os.close(fd)


def _pread_all(fd: int) -> bytes:
    """The whole file from offset 0, without asking its size first: two slots read at once."""
    data = os.pread(fd, _SLOTTED_BYTES + 1, 0)
    if len(data) <= _SLOTTED_BYTES:  # a regular file reads short only at its end
        return data
    chunks = [data]
    while chunk := os.pread(fd, 1 << 16, sum(map(len, chunks))):  # one plain note, longer than a slot
        chunks.append(chunk)
    return b"".join(chunks)


def _slots(data: bytes) -> tuple[bytes, bytes] | None:
    """Each slot's note, padding taken off (``b""``: an empty slot); None: not two slots."""
    if len(data) != _SLOTTED_BYTES:
        return None
    return _unpadded(data[:SLOT_BYTES]), _unpadded(data[SLOT_BYTES:])


def _unpadded(slot: bytes) -> bytes:
    """``slot.rstrip(_PAD)`` with the note's own last newline (which the padding took) put back;
    ``b""`` for an empty slot. Found without scanning the padding byte by byte (``rstrip`` does,
    and it was 8 % of the writer process's instructions per entry, four slots read per batch): a
    note holds no three newlines in a row (no blank line in its text, one before its
    signatures), so the first three end it when all that follows them is padding; else (a note
    that fills its slot, damaged bytes) ``rstrip`` decides, as before."""
    end = slot.find(_END)
    if end < 0 or slot[end:] != _PADDING[:len(slot) - end]:
        note = slot.rstrip(_PAD)
        return note + _PAD if note else b""
    return slot[:end + 1] if end else b""


def checkpoint_note_of(path: str | os.PathLike[str], data: bytes, trusted: Sequence[Verifier], *,
                       origin: str | None = None, verified: VerifiedNotes | None = None) -> SignedCheckpoint:
    """:func:`read_checkpoint_note_file` of the bytes ``data`` already read from ``path``: the
    largest of its notes that verifies (a slot torn by a crash or caught mid-write is passed
    over); ``verified``: notes already verified with ``trusted`` (``audit.log.VerifiedNotes``)."""
    best: SignedCheckpoint | None = None
    problem: CheckpointFileError | None = None
    for note in notes_in(data):
        try:
            signed = _note_of(path, note, trusted, origin=origin, verified=verified)
        except CheckpointFileError as exc:
            problem = problem or exc
            continue
        if best is None or signed.size > best.size:
            best = signed
    if best is not None:
        return best
    raise problem or _unusable(path, "holds no checkpoint (both slots are empty)")


def _note_of(path: str | os.PathLike[str], data: bytes, trusted: Sequence[Verifier], *,
             origin: str | None, verified: VerifiedNotes | None) -> SignedCheckpoint:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unusable(path, f"is not UTF-8 text, truncated or damaged ({exc})") from exc
    try:
        return opened(text, trusted, origin=origin, verified=verified)
    except TlogError as exc:
        raise _unusable(path, f"is not a checkpoint signed with a pinned key ({exc})") from exc


def read_outside_checkpoint(path: str | os.PathLike[str], trusted: Sequence[Verifier], *,
                            keyring: Keyring | None = None) -> str | None:
    """A checkpoint file given to verification, checked before use: a v2 checkpoint note
    (returned as text, its signature checked with ``trusted``) or a v1 checkpoint (JSON; None
    is returned, its signature checked with ``keyring``, default the ``trusted`` keys).
    Raises :class:`CheckpointFileError` naming the file and what is wrong with it."""
    try:
        head = Path(path).read_bytes()[:64].lstrip()
    except OSError as exc:
        raise _unusable(path, f"cannot be read ({exc.strerror or exc})") from exc
    if head.startswith(b"{"):
        read_checkpoint_file(path, keyring=keyring if keyring is not None else pinned_keyring(trusted))
        return None
    return read_checkpoint_note_file(path, trusted).note


def grow_checkpoint_file(path: str | os.PathLike[str], note: str, trusted: Sequence[Verifier], *,
                         origin: str | None = None) -> bool:
    """Write ``note`` to ``path`` if it is larger than the checkpoint there (or there is none);
    False when the file already holds a checkpoint at least as large. The notes there count only
    when they verify with ``trusted`` (the pinned keys): a slot torn mid-write is written over.
    Raises ``OSError``, and ``TlogError``/``UnicodeDecodeError`` for a damaged file."""
    return _GrowingFile(Path(path), trusted, origin=origin).grow(note, note_size(note))


_LOCK_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND


class _GrowingFile:
    """The checkpoint file as one process grows it, and the notes this process last wrote or
    read there, with their sizes (finding one again costs a dictionary lookup).

    At this process's first write every note there counts only once its signature verifies
    with the pinned keys: a slot torn by a crash can parse (the new note's first lines before
    the old one's signature) and must not pass for the larger note, or the next write would go
    into the one slot still whole. That first write puts a whole note into any torn slot; from
    then on every note in the file was written whole under the lock (a process killed in a
    ``pwrite`` does not leave a page half copied), so the others' notes are only parsed, not
    verified again (a signature check per write, with several workers). Readers
    (:func:`checkpoint_note_of`) always verify."""

    _KEPT = 4  # this process's last notes and the other workers' in the slots

    def __init__(self, path: Path, trusted: Sequence[Verifier], *, origin: str | None = None) -> None:
        self._path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._trusted = trusted
        self._origin = origin
        self._known: dict[bytes, int] = {}
        self._checked = False  # the file's notes were verified at this process's first write

    def grow(self, note: str, size: int) -> bool:
        """:func:`grow_checkpoint_file` of ``note``, whose tree size is ``size``."""
        try:
            lock = os.open(self._lock_path, _LOCK_FLAGS, 0o644)
        except FileNotFoundError:  # no directory yet (or no more): made only then, not every write
            self._path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(self._lock_path, _LOCK_FLAGS, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the close
            data = note.encode("utf-8")
            try:
                # Read and written through one descriptor: a file replaced meanwhile (by rename)
                # is not written into; the replacement is read at the next write. O_DSYNC: the
                # pwrite returns once its data is on disk, as pwrite + fdatasync did, in one
                # system call fewer (each call lets the worker's other threads take the GIL).
                fd = os.open(self._path, os.O_RDWR | os.O_DSYNC)
            except FileNotFoundError:
                self._replace(data)
            else:
                try:
                    sizes = self._sizes(_pread_all(fd))
                    if max(sizes) >= size:
                        return False
                    if len(sizes) == 2 and len(data) <= SLOT_BYTES:
                        # The slot that does not hold the larger note: that one stays whole.
                        os.pwrite(fd, data.ljust(SLOT_BYTES, _PAD), 0 if sizes[0] <= sizes[1] else SLOT_BYTES)
                    else:
                        self._replace(data)
                finally:
                    os.close(fd)
            self._remember(data, size)
            self._checked = True  # a torn slot, the smaller, was the one written
            return True
        finally:
            os.close(lock)

    def _replace(self, data: bytes) -> None:
        """A new file, atomically: two slots, the note in the first; one plain note if it is too
        long for a slot."""
        if len(data) <= SLOT_BYTES:
            data = data.ljust(SLOT_BYTES, _PAD) + _PAD * SLOT_BYTES
        atomic_write(self._path, data, make_parent=False)

    def _sizes(self, data: bytes) -> list[int]:
        """The tree sizes of the file's notes, slot by slot (-1: empty, or not verifying: torn
        mid-write), or of its one plain note. Raises ``TlogError``/``UnicodeDecodeError`` when
        no note verifies: a damaged file is left for the head check to name, not written over."""
        slots = _slots(data)
        if slots is None:
            return [self._size_of(data)]
        sizes: list[int] = []
        problem: Exception | None = None
        for note in slots:
            try:
                sizes.append(self._size_of(note) if note else -1)
            except (TlogError, UnicodeDecodeError) as exc:
                problem = exc
                sizes.append(-1)
        if problem is not None and max(sizes) < 0:
            raise problem
        return sizes

    def _size_of(self, note: bytes) -> int:
        size = self._known.get(note)
        if size is None:
            text = note.decode("utf-8")
            size = note_size(text) if self._checked else opened(text, self._trusted, origin=self._origin).size
            self._remember(note, size)
        return size

    def _remember(self, note: bytes, size: int) -> None:
        self._known[note] = size
        while len(self._known) > self._KEPT:
            del self._known[next(iter(self._known))]


class CheckpointFileWriter:
    """Grows the checkpoint file from its own thread with the newest note submitted, so that
    the audit writer's next batch does not wait for a file write (module docstring).

    A write that fails is logged and counted (``errors``); the next note submitted is written
    again in full, and the audit writer's next head check reads what the file holds.
    """

    def __init__(self, path: str | os.PathLike[str], trusted: Sequence[Verifier], *,
                 origin: str | None = None) -> None:
        self._path = Path(path)
        self._file = _GrowingFile(self._path, trusted, origin=origin)
        self._cond = threading.Condition()
        self._pending: tuple[str, int] | None = None
        self._busy = False
        self._closed = False
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="clearance-checkpoint-file", daemon=True)
        self._thread.start()

    def submit(self, note: str, size: int | None = None) -> None:
        """Write ``note`` soon (it replaces a note not yet written: the newest is enough).
        ``size``: its tree size, when the caller knows it (it signed the note)."""
        entry = (note, note_size(note) if size is None else size)
        with self._cond:
            self._pending = entry
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every note submitted so far is written (or failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is pending, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the checkpoint file %s was not written within %ss", self._path, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                pending, self._pending = self._pending, None
                if pending is None:
                    return  # closed with nothing left to write
                self._busy = True
            try:
                self._file.grow(*pending)
            except (OSError, TlogError, UnicodeDecodeError) as exc:  # the writer's next head check reads the file
                self.errors += 1
                log.error("could not write the checkpoint to %s: %s", self._path, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

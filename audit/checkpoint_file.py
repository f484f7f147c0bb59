"""The growing checkpoint file (``CLEARANCE_CHECKPOINT_FILE``): the newest v2 checkpoint the
service has ever issued, kept outside the database.

Every batch signs a checkpoint in its transaction; after the commit the writer hands that note
to a :class:`CheckpointFileWriter`, whose thread puts it in the file (:func:`grow_checkpoint_file`)
unless the file already holds a larger one (several worker processes share it: an exclusive
``flock`` on ``<file>.lock`` orders them). The write is a temporary file, fsync, rename, fsync of
the directory: a crash leaves the old note or the new. The writer does not wait for it: the
next batch starts at once, and notes committed while a write is under way are coalesced (the
thread writes the newest one next). So the file holds the newest checkpoint committed before
the write under way started: behind the database by at most the batches committed during one
file write (about a millisecond), and by none once the writer is closed (``close`` waits for
the last note). The file only grows, so a database cut back or rewritten behind it is caught at
the writer's next head check (``audit.log.append_leaves``) and by verification.

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

__all__ = ["CheckpointFileWriter", "checkpoint_note_of", "grow_checkpoint_file", "note_size",
           "read_checkpoint_note_file", "read_outside_checkpoint", "unreadable"]


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


def checkpoint_note_of(path: str | os.PathLike[str], data: bytes, trusted: Sequence[Verifier], *,
                       origin: str | None = None, verified: VerifiedNotes | None = None) -> SignedCheckpoint:
    """:func:`read_checkpoint_note_file` of the bytes ``data`` already read from ``path``;
    ``verified``: notes already verified with ``trusted`` (``audit.log.VerifiedNotes``)."""
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


def grow_checkpoint_file(path: str | os.PathLike[str], note: str) -> bool:
    """Write ``note`` to ``path`` if it is larger than the checkpoint there (or there is none);
    False when the file already holds a checkpoint at least as large. Raises ``OSError``."""
    return _GrowingFile(Path(path)).grow(note, note_size(note))


_LOCK_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND


class _GrowingFile:
    """The checkpoint file as one process grows it, and the bytes this process last wrote there
    with their size. Finding those bytes in the file again (one worker,
    or the others behind it) costs a comparison instead of parsing the note; any other contents
    (another worker's note, or a file replaced) are parsed as before."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._written: tuple[bytes, int] | None = None

    def grow(self, note: str, size: int) -> bool:
        """:func:`grow_checkpoint_file` of ``note``, whose tree size is ``size``."""
        try:
            lock = os.open(self._lock_path, _LOCK_FLAGS, 0o644)
        except FileNotFoundError:  # no directory yet (or no more): made only then, not every write
            self._path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(self._lock_path, _LOCK_FLAGS, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the close
            if self._current_size() >= size:
                return False
            data = note.encode("utf-8")
            atomic_write(self._path, data, make_parent=False)
            self._written = (data, size)
            return True
        finally:
            os.close(lock)

    def _current_size(self) -> int:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return -1
        if self._written is not None and data == self._written[0]:
            return self._written[1]
        return note_size(data.decode("utf-8"))


class CheckpointFileWriter:
    """Grows the checkpoint file from its own thread with the newest note submitted, so that
    the audit writer's next batch does not wait for a file write (module docstring).

    A write that fails is logged and counted (``errors``); the next note submitted is written
    again in full, and the audit writer's next head check reads what the file holds.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._file = _GrowingFile(self._path)
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

"""The growing checkpoint file (``CLEARANCE_CHECKPOINT_FILE``): the newest v2 checkpoint the
service has ever issued, kept outside the database.

Every batch signs a checkpoint in its transaction; after the commit the writer puts that note
in the file (:func:`grow_checkpoint_file`) unless the file already holds a larger one (several
worker processes share it: an exclusive ``flock`` on ``<file>.lock`` orders them). The write is
a temporary file, fsync, rename, fsync of the directory: a crash leaves the old note or the new.
The file only grows, so a database cut back or rewritten behind it is caught at the writer's
next head check (``audit.log.append_leaves``) and by verification.

:func:`read_checkpoint_note_file` reads it back with the pinned keys; any problem (unreadable,
not a checkpoint note, no pinned signature, another log's origin) is a
:class:`~audit.errors.CheckpointFileError` naming the file and the reason.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from ._files import atomic_write
from .checkpoints import read_checkpoint_file
from .errors import CheckpointFileError
from .keys import Keyring
from .tlog.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from .tlog.errors import TlogError
from .tlog.note import Verifier, parse_note
from .trust import pinned_keyring

__all__ = ["grow_checkpoint_file", "note_size", "read_checkpoint_note_file", "read_outside_checkpoint"]


def _unusable(path: str | os.PathLike[str], reason: str) -> CheckpointFileError:
    return CheckpointFileError(f"checkpoint file {path}: {reason}", path=str(path), reason=reason)


def note_size(note: str) -> int:
    """The tree size a checkpoint note states (signature not checked). Raises ``TlogError``."""
    return Checkpoint.parse(parse_note(note).text).size


def read_checkpoint_note_file(path: str | os.PathLike[str], trusted: Sequence[Verifier], *,
                              origin: str | None = None) -> SignedCheckpoint:
    """The checkpoint in ``path``, its signature checked with ``trusted`` (the pinned keys)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise _unusable(path, f"cannot be read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise _unusable(path, f"is not UTF-8 text, truncated or damaged ({exc})") from exc
    try:
        return open_checkpoint(text, trusted, origin=origin)
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
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    size = note_size(note)
    with open(target.with_name(target.name + ".lock"), "a", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            current = note_size(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            current = -1
        if current >= size:
            return False
        atomic_write(target, note)
        return True

"""The head mailbox: writers of one host hand each other the head they committed.

``clearance serve`` runs several worker processes, each with its own ``AuditWriter`` appending
to the same log. A writer whose last batch found its own head sends its next batch as one
guarded statement (``audit.log.append_on_known_head``); after another worker's batch it takes
the full path (lock, read, verify the other worker's checkpoint, check the floor: two round
trips with PostgreSQL's head lock held across the Python check). The mailbox lets the writers
of one host take turns on the one-statement path: after each committed batch a writer leaves
the head state it committed (``audit.log.HeadState``: the ten values the guard compares) and
the checkpoint file contents that tree is known to contain; before each batch the next writer
reads it and, when it is newer than the head it knows itself, sends its batch guarded by that
state. It is a hint, not state: the guard in the database confirms it or the batch takes the
full path (docs/audit.md, "Writers of one host share their head").

One file, ``<checkpoint file>.head`` (mode 0600, with ``<checkpoint file>.head.queue`` whose
lock makes the writers take turns: :meth:`HeadMailbox.acquire`): an exclusive ``flock`` on it orders the
writers (held from before the batch is built until its commit and the mailbox write, so the
writers do not race for the head: the one waiting here is not waiting on PostgreSQL's lock),
and its contents are the last writer's state, rewritten in place under that lock (no fsync:
a crash leaves a mailbox that fails its check or names a head the guard does not find). The
contents carry an HMAC whose key is derived from the signing key: only a holder of the
signing key — who can sign any checkpoint anyway — makes a mailbox a writer accepts; an edited,
truncated or foreign mailbox is ignored. The lock wait is bounded (``wait``): a sibling that
hangs holding it costs the waiting writer one full-path batch, not its service.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization

from .keys import SigningKey
from .log import HeadState

__all__ = ["HeadMailbox", "SiblingHead", "mailbox_path_for"]

_VERSION = 1
_MAC_SIZE = 32
_MAX_BYTES = 64 * 1024  # 17 checkpoint notes and a frontier: a few kB
_DOMAIN = b"clearance audit head mailbox v1\x00"


def mailbox_path_for(checkpoint_file: Path) -> Path:
    """The mailbox of the writers sharing ``checkpoint_file``: ``<checkpoint file>.head``."""
    return checkpoint_file.with_name(checkpoint_file.name + ".head")


@dataclass(frozen=True)
class SiblingHead:
    """A state another writer committed and left in the mailbox: ``state`` (the guard's ten
    values), ``known`` (the checkpoint file contents that tree contains, as that writer knew
    them; ``None`` among them: no file)."""

    state: HeadState
    known: tuple[bytes | None, ...]


def _mac_key(key: SigningKey) -> bytes:
    raw = key.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return hashlib.sha256(_DOMAIN + raw).digest()


def _hex(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def _unhex(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not hex")
    return bytes.fromhex(value)


class HeadMailbox:
    """One writer's handle on the host's mailbox (its own open file: ``flock`` orders the
    handles of one process too).

    :param path: the mailbox file (created 0600 when missing).
    :param key: the signing key (the MAC key is derived from it).
    :param wait: seconds :meth:`acquire` waits for the lock at most.
    """

    def __init__(self, path: Path, key: SigningKey, *, wait: float = 1.0) -> None:
        self.path = path
        self._mac_key = _mac_key(key)
        self._wait = wait
        self.queue_path = path.with_name(path.name + ".queue")
        self._fd: int | None = None
        self._queue_fd: int | None = None
        self._written: bytes | None = None  # what this handle wrote last (read back: not parsed)
        self._length: int | None = None  # the file's length as read under the lock now held

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._queue_fd = os.open(self.queue_path, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o600)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o600)
        return self._fd

    def acquire(self) -> bool:
        """Take the mailbox's exclusive lock, waiting ``wait`` seconds at most. False: not
        taken (the batch goes without the mailbox). Raises ``OSError`` if the files cannot be
        opened or locked.

        Fair between the writers: a writer first takes the queue lock (``<mailbox>.queue``),
        then the mailbox lock, and lets the queue lock go once it holds the mailbox. The writer
        that just released the mailbox finds the queue lock held by the one waiting for it, so
        under load the writers take turns; without the queue a writer with entries queued
        again took the mailbox back before the other's next poll, again and again. Both waits
        are polled (a blocking ``flock`` cannot be bounded)."""
        fd = self._open()
        assert self._queue_fd is not None
        self._length = None
        deadline = time.monotonic() + self._wait
        if not _poll_lock(self._queue_fd, deadline):
            return False
        try:
            return _poll_lock(fd, deadline)
        finally:
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def read(self, *, origin: str, newer_than: HeadState | None) -> SiblingHead | None:
        """The state in the mailbox when another writer left it, its MAC holds, it is of
        ``origin`` and larger than ``newer_than`` (the caller's own head); else None. Call with
        the lock held."""
        fd = self._open()
        data = os.pread(fd, _MAX_BYTES + 1, 0)
        self._length = len(data)
        if not data or data == self._written or len(data) > _MAX_BYTES:
            return None
        found = self._parse(data)
        if found is None or found.state.row[0] != origin:
            return None
        if newer_than is not None and found.state.size <= newer_than.size:
            return None
        return found

    def _parse(self, data: bytes) -> SiblingHead | None:
        mac, body = data[:_MAC_SIZE], data[_MAC_SIZE:]
        if not hmac.compare_digest(mac, hmac.new(self._mac_key, body, hashlib.sha256).digest()):
            return None
        try:
            doc = orjson.loads(body)
            if doc.get("v") != _VERSION:
                return None
            (origin, size, root, frontier, recorded_at, c_size, c_root, note, v1_seq, v1_hash) = doc["row"]
            row = (str(origin), int(size), _unhex(root), _unhex(frontier),
                   datetime.fromisoformat(recorded_at) if recorded_at is not None else None,
                   None if c_size is None else int(c_size), _unhex(c_root), None if note is None else str(note),
                   None if v1_seq is None else int(v1_seq), _unhex(v1_hash))
            known = tuple(None if k is None else bytes.fromhex(k) for k in doc["known"])
        except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError):
            return None  # a MAC that holds over contents this version cannot read: ignored too
        return SiblingHead(HeadState(row), known)

    def write(self, state: HeadState, known: Iterable[bytes | None]) -> None:
        """Leave ``state`` and the file contents its tree contains (call with the lock held).
        Rewritten in place, not synced: a torn or lost mailbox is only ignored."""
        row = state.row
        recorded_at = row[4]
        doc = {"v": _VERSION, "row": [row[0], int(row[1]), _hex(row[2]), _hex(row[3]),
                                      recorded_at.isoformat() if recorded_at is not None else None,
                                      None if row[5] is None else int(row[5]), _hex(row[6]), row[7],
                                      None if row[8] is None else int(row[8]), _hex(row[9])],
               "known": [_hex(k) for k in known], "pid": os.getpid()}
        body = orjson.dumps(doc)
        data = hmac.new(self._mac_key, body, hashlib.sha256).digest() + body
        fd = self._open()
        os.pwrite(fd, data, 0)
        if self._length is None or len(data) < self._length:  # a longer tail would break the MAC
            os.ftruncate(fd, len(data))
        self._length = len(data)
        self._written = data

    def close(self) -> None:
        for fd in (self._fd, self._queue_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._queue_fd = None


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _poll_lock(fd: int, deadline: float) -> bool:
    """``flock(fd, LOCK_EX)`` tried until ``deadline``: first at once, then after pauses of
    20 µs growing to 100 µs (a batch holds the lock for about one round trip)."""
    pause = 20e-6
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 1.5, 100e-6)

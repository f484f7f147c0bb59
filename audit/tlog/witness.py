"""A C2SP tlog-witness: cosigns a log's checkpoint only if it extends the last one it cosigned.

The witness knows a set of logs (origin + verifier keys) and, per log, the last checkpoint it
cosigned, kept in its own state directory (one file per log, written atomically and fsynced
before any cosignature leaves the process; never in the log's database).

:meth:`Witness.add_checkpoint` is the protocol's ``add-checkpoint``; its refusals are the
spec's status codes, as exception classes the HTTP layer maps:

=========================  ====  ============================================================
:class:`BadRequest`        400   malformed body; old size larger than the checkpoint's size
:class:`UnknownLog`        404   no log with this origin is configured
:class:`UntrustedCheckpoint` 403 no valid signature by the log's key (or a bad one)
:class:`OldSizeConflict`   409   old size is not the size last cosigned (``size`` says which)
:class:`ProofRejected`     422   bad consistency proof, root mismatch, non-empty empty tree
=========================  ====  ============================================================

Request body (``format_request`` / ``parse_request``)::

    old <size>\\n
    <base64 consistency proof hash>\\n     zero to 63 lines
    \\n
    <signed checkpoint note>

Answer: the witness's ``cosignature/v1`` signature line(s).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import Checkpoint
from .cosignature import CosignatureSigner, cosignature_line
from .errors import ConsistencyProofError, NoteVerificationError, TlogError, TlogFormatError
from .merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from .note import Ed25519Verifier, Verifier, open_note, parse_note

MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")

log = logging.getLogger("clearance.witness")

__all__ = [
    "AddCheckpointRequest",
    "BadRequest",
    "KnownLog",
    "OldSizeConflict",
    "ProofRejected",
    "UnknownLog",
    "UntrustedCheckpoint",
    "Witness",
    "WitnessRefusal",
    "WitnessState",
    "WitnessStateError",
    "format_request",
    "logs_from_keys",
    "origin_hash",
    "parse_request",
]


class WitnessRefusal(TlogError):
    """The witness does not cosign this request; the subclass says why (and which status)."""


class BadRequest(WitnessRefusal):
    """400: the request does not follow the protocol."""


class UnknownLog(WitnessRefusal):
    """404: the checkpoint's origin is not a log this witness knows."""


class UntrustedCheckpoint(WitnessRefusal):
    """403: the checkpoint carries no valid signature by the log's key, or an invalid one."""


class OldSizeConflict(WitnessRefusal):
    """409: the client's old size is not the size this witness last cosigned (``size``)."""

    def __init__(self, *, origin: str, size: int, old_size: int) -> None:
        self.size = size
        super().__init__(f"{origin}: the last cosigned size is {size}, the request's old size is {old_size}")


class ProofRejected(WitnessRefusal):
    """422: the checkpoint is not consistent with the last one cosigned (or the proof is wrong)."""


class WitnessStateError(TlogError):
    """The state directory cannot be used (locked by another process, unreadable, tampered)."""


@dataclass(frozen=True, slots=True)
class KnownLog:
    """A log the witness cosigns for: its origin and the keys that may sign its checkpoints."""

    origin: str
    verifiers: tuple[Verifier, ...]


def logs_from_keys(vkeys: Iterable[str]) -> list[KnownLog]:
    """Logs from Ed25519 verifier keys; a key's name is its log's origin (as tlog-checkpoint
    recommends), several keys of one name are one log's keys."""
    by_origin: dict[str, list[Verifier]] = {}
    for vkey in vkeys:
        verifier = Ed25519Verifier.from_key(vkey)
        by_origin.setdefault(verifier.name, []).append(verifier)
    return [KnownLog(origin, tuple(keys)) for origin, keys in by_origin.items()]


def origin_hash(origin: str) -> str:
    """Lowercase hex SHA-256 of the origin: the log's name in the monitoring URL and state files."""
    return hashlib.sha256(origin.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str


def parse_request(body: bytes) -> AddCheckpointRequest:
    """Parse an ``add-checkpoint`` body; :class:`BadRequest` names what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise BadRequest("no empty line between the old size / proof lines and the checkpoint")
    lines = head.split("\n")
    match = _OLD.fullmatch(lines[0])
    if not match:
        raise BadRequest(f"first line {lines[0][:40]!r} is not 'old <size>' (decimal, no leading zeros)")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise BadRequest(f"{len(proof_lines)} consistency proof lines, at most {MAX_PROOF_LINES} are allowed")
    proof = []
    for number, line in enumerate(proof_lines, 2):
        try:
            value = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            value = b""
        if len(value) != HASH_SIZE or base64.b64encode(value).decode() != line:
            raise BadRequest(f"line {number} is not the base64 of a {HASH_SIZE}-byte hash")
        proof.append(value)
    return AddCheckpointRequest(int(match.group(1)), tuple(proof), note)


def format_request(*, old_size: int, proof: Sequence[bytes], checkpoint: str) -> bytes:
    """The ``add-checkpoint`` body a log sends."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint).encode()


@dataclass(frozen=True, slots=True)
class _Cosigned:
    size: int
    root_hash: bytes
    note: str


class WitnessState:
    """The witness's state directory: one file per log with the last checkpoint it cosigned.

    Holds an exclusive lock on ``<directory>/lock`` while open, so two witness processes never
    share (and roll back) one state. Files are replaced atomically and fsynced with their
    directory before :meth:`store` returns.
    """

    def __init__(self, directory: Path | str) -> None:
        """``directory``: created (mode 0700) if missing."""
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(mode=0o700, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise WitnessStateError(f"state directory {self.directory} is in use by another witness process") from exc

    def path_of(self, origin: str) -> Path:
        """The file holding the last checkpoint cosigned for ``origin``."""
        return self.directory / "logs" / origin_hash(origin)

    def load(self, origin: str) -> str | None:
        """The stored cosigned checkpoint note of ``origin``, or ``None``."""
        try:
            return self.path_of(origin).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def store(self, origin: str, note: str) -> None:
        """Replace ``origin``'s checkpoint durably (write, fsync, rename, fsync directory)."""
        path = self.path_of(origin)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, note.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1


class Witness:
    """Cosigns checkpoints of known logs, each only as an extension of the last one it cosigned."""

    def __init__(self, *, signer: CosignatureSigner, logs: Sequence[KnownLog], state: WitnessState) -> None:
        """``signer``: the witness key; ``logs``: the logs it witnesses; ``state``: its directory.

        Reads each log's last cosigned checkpoint and checks the witness's own cosignature on
        it, so a state file written by anything else stops the start.
        """
        self.signer = signer
        self._logs = {known.origin: known for known in logs}
        self._state = state
        self._lock = threading.Lock()
        self._cosigned: dict[str, _Cosigned] = {}
        own = signer.verifier()
        for origin in self._logs:
            note = state.load(origin)
            if note is None:
                continue
            try:
                checkpoint = Checkpoint.parse(open_note(note, [own]).text)
            except TlogError as exc:
                raise WitnessStateError(f"state of {origin} ({state.path_of(origin)}) is not a checkpoint this "
                                        f"witness cosigned: {exc}") from exc
            if checkpoint.origin != origin:
                raise WitnessStateError(f"state file of {origin} holds a checkpoint of {checkpoint.origin}")
            self._cosigned[origin] = _Cosigned(checkpoint.size, checkpoint.root_hash, note)

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier_key

    def cosigned_size(self, origin: str) -> int:
        """The size of the last checkpoint cosigned for ``origin`` (0 if none)."""
        state = self._cosigned.get(origin)
        return state.size if state else 0

    def latest(self, origin_hex: str) -> str | None:
        """The last cosigned checkpoint (log signatures and this witness's) of the log whose
        origin hashes to ``origin_hex``, for the monitoring endpoint."""
        for origin, state in self._cosigned.items():
            if origin_hash(origin) == origin_hex:
                return state.note
        return None

    def handle(self, body: bytes) -> str:
        """Parse and serve an ``add-checkpoint`` request body; returns the cosignature line(s)."""
        request = parse_request(body)
        return self.add_checkpoint(old_size=request.old_size, proof=request.proof, checkpoint=request.checkpoint)

    def add_checkpoint(self, *, old_size: int, proof: Sequence[bytes], checkpoint: str) -> str:
        """Cosign ``checkpoint`` if it extends the last cosigned checkpoint of its log."""
        try:
            note = parse_note(checkpoint)
            parsed = Checkpoint.parse(note.text)
        except TlogFormatError as exc:
            raise BadRequest(f"checkpoint: {exc}") from exc
        known = self._logs.get(parsed.origin)
        if known is None:
            raise UnknownLog(f"unknown log origin {parsed.origin!r}")
        try:
            opened = open_note(note, known.verifiers)
        except NoteVerificationError as exc:
            raise UntrustedCheckpoint(f"{parsed.origin}: {exc}") from exc
        if old_size > parsed.size:
            raise BadRequest(f"old size {old_size} is larger than the checkpoint size {parsed.size}")
        with self._lock:  # the check and the update are one step (tlog-witness: no rollback race)
            current = self._cosigned.get(parsed.origin) or _Cosigned(0, EMPTY_ROOT, "")
            if old_size != current.size:
                raise OldSizeConflict(origin=parsed.origin, size=current.size, old_size=old_size)
            self._check_extends(parsed, current, proof)
            line = cosignature_line(self.signer, note.text)
            kept = note.text + "\n" + "".join(s.line() for s in opened.verified) + line
            self._state.store(parsed.origin, kept)
            self._cosigned[parsed.origin] = _Cosigned(parsed.size, parsed.root_hash, kept)
        log.info("cosigned %s at size %d (was %d)", parsed.origin, parsed.size, current.size)
        return line

    @staticmethod
    def _check_extends(checkpoint: Checkpoint, current: _Cosigned, proof: Sequence[bytes]) -> None:
        if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
            raise ProofRejected("a checkpoint of size 0 must have the empty tree's root (SHA-256 of nothing)")
        if current.size == 0 and proof:
            raise ProofRejected("the old size is 0: the consistency proof must be empty")
        try:
            verify_consistency(old_size=current.size, new_size=checkpoint.size, old_root=current.root_hash,
                               new_root=checkpoint.root_hash, proof=proof)
        except ConsistencyProofError as exc:
            log.warning("%s: refused checkpoint of size %d, inconsistent with cosigned size %d: %s",
                        checkpoint.origin, checkpoint.size, current.size, exc)
            raise ProofRejected(f"{checkpoint.origin}: not consistent with the cosigned checkpoint of size "
                                f"{current.size}: {exc}") from exc

    def close(self) -> None:
        self._state.close()

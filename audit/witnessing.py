"""Witnessing: push each new checkpoint to the configured witnesses, keep their cosignatures.

The service is the log's client of C2SP ``tlog-witness``. :class:`WitnessPusher` runs one thread
per witness, off the request path: the writer hands it each committed checkpoint
(``AuditWriter(on_checkpoint=pusher.submit)``), and each thread pushes only the newest one it
has not had cosigned (older ones are skipped, coalesced into the next consistency proof).

One push (:meth:`_WitnessWorker.push`)::

    POST <url>/add-checkpoint      old <size the witness last cosigned>
                                   <consistency proof from that size, base64 lines>
                                   <blank line>
                                   <the log-signed checkpoint note>

* ``200``: the body is the witness's cosignature line(s). One that verifies with the witness's
  configured verifier key is stored (``audit_witness_cosignatures``); anything else is an error.
* ``409`` (``text/x.tlog.size``): the witness has cosigned another size (after a restart of the
  service the pusher starts from 0 and lets the witness say). Retried at once from that size.
  A size beyond the log's newest checkpoint is an **alarm**: the witness saw a larger tree.
* ``422``: the witness refuses the checkpoint as inconsistent with the tree it cosigned: an
  **alarm** (``on_alarm`` and an ERROR log line naming the witness and both sizes).
* network errors, ``5xx``, other refusals: retried with exponential backoff (``min_backoff``
  doubling to ``max_backoff``); a newer checkpoint does not cut the wait short.

``CLEARANCE_WITNESSES`` (:func:`parse_witnesses`): entries separated by newlines or commas, each
``URL VKEY`` (the witness's base URL and its ``cosignature/v1`` verifier key, type 0x04); or
``@PATH``: a file of such entries, one a line, ``#`` comments allowed.

Reading: :func:`cosigned_checkpoint` is a stored checkpoint with its stored cosignatures as
extra signature lines; :func:`check_cosignatures` counts the valid ones of pinned witnesses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests

from .errors import AuditError
from .log import StoredTiles
from .tlog.checkpoint import Checkpoint, open_checkpoint
from .tlog.cosignature import ALG_COSIGNATURE_V1, Cosignature, CosignatureVerifier, verified_cosignatures
from .tlog.errors import TlogError
from .tlog.merkle import consistency_proof
from .tlog.note import Verifier, parse_note, parse_verifier_key
from .tlog.witness import format_request

log = logging.getLogger("clearance.witnessing")

__all__ = [
    "CosignatureCheck",
    "WitnessConfigError",
    "WitnessEndpoint",
    "WitnessPusher",
    "check_cosignatures",
    "judge_witnessed",
    "cosignature_lines",
    "cosigned_checkpoint",
    "parse_witnesses",
    "stored_cosigned_note",
    "store_cosignature",
    "with_cosignatures",
]

SIZE_MEDIA_TYPE = "text/x.tlog.size"
MAX_CONFLICTS = 3  # 409s answered in one push before giving up until the next attempt

INSERT_COSIGNATURE_SQL = (
    "INSERT INTO audit_witness_cosignatures (size, witness, key_id, cosigned_at, line) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
SELECT_LINES_SQL = "SELECT line FROM audit_witness_cosignatures WHERE size = %s ORDER BY witness, key_id"
SELECT_CHECKPOINT_SQL = "SELECT size, note FROM audit_tlog_checkpoints WHERE size = %s"
SELECT_NEWEST_SQL = "SELECT size, note FROM audit_tlog_checkpoints ORDER BY size DESC LIMIT 1"


class WitnessConfigError(AuditError, ValueError):
    """``CLEARANCE_WITNESSES`` (or a ``--witness`` key) cannot be used; the message says where."""


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessEndpoint:
    """One witness: where to push (``url``, without ``/add-checkpoint``) and whose key cosigns."""

    url: str
    verifier: CosignatureVerifier

    @property
    def name(self) -> str:
        return self.verifier.name


def witness_verifier(vkey: str) -> CosignatureVerifier:
    """A witness verifier key (``name+hash+base64(0x04 ‖ key)``); a log key (0x01) is refused."""
    try:
        parsed = parse_verifier_key(vkey.strip())
    except TlogError as exc:
        raise WitnessConfigError(f"witness key {vkey.strip()[:60]!r}: {exc}") from exc
    if parsed.alg != ALG_COSIGNATURE_V1:
        raise WitnessConfigError(f"witness key {parsed.name}: signature type 0x{parsed.alg:02x} is not a witness "
                                 f"cosignature key (0x{ALG_COSIGNATURE_V1:02x}); `clearance witness init` prints one")
    return CosignatureVerifier(parsed.name, parsed.public_key)


def parse_witnesses(value: str) -> list[WitnessEndpoint]:
    """Parse ``CLEARANCE_WITNESSES`` (format in the module docstring); duplicates are refused."""
    text = value.strip()
    source = "CLEARANCE_WITNESSES"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise WitnessConfigError(f"{source}: cannot read {path}: {exc.strerror}") from exc
        source = str(path)
    entries = [e.strip() for line in text.splitlines() for e in line.split("#", 1)[0].split(",")]
    endpoints: list[WitnessEndpoint] = []
    for number, entry in enumerate((e for e in entries if e), 1):
        parts = entry.split()
        if len(parts) != 2:
            raise WitnessConfigError(f"{source}: witness {number} {entry[:80]!r} is not 'URL VKEY'")
        url, vkey = parts
        scheme = urlsplit(url)
        if scheme.scheme not in ("http", "https") or not scheme.netloc:
            raise WitnessConfigError(f"{source}: witness {number}: {url!r} is not an http(s) URL")
        endpoint = WitnessEndpoint(url.rstrip("/"), witness_verifier(vkey))
        if any((e.name, e.verifier.key_id) == (endpoint.name, endpoint.verifier.key_id) for e in endpoints):
            raise WitnessConfigError(f"{source}: witness {endpoint.name} is listed twice")
        endpoints.append(endpoint)
    return endpoints


# -- storage and reading ----------------------------------------------------------------------


def store_cosignature(conn: psycopg.Connection[Any], size: int, cosignature: Cosignature) -> None:
    """Record a verified cosignature of the checkpoint of ``size`` (the caller commits)."""
    conn.execute(INSERT_COSIGNATURE_SQL, (size, cosignature.name, cosignature.key_id, cosignature.timestamp,
                                          cosignature.line()))


def cosignature_lines(conn: psycopg.Connection[Any], size: int) -> list[str]:
    """The stored cosignature lines of the checkpoint of ``size`` (each ends in a newline)."""
    return [str(row[0]) for row in conn.execute(SELECT_LINES_SQL, (size,)).fetchall()]


def with_cosignatures(note: str, lines: Sequence[str]) -> str:
    """``note`` with ``lines`` as extra signature lines (C2SP tlog-cosignature)."""
    present = set(note.splitlines(keepends=True))
    return note + "".join(line for line in lines if line not in present)


def cosigned_checkpoint(conn: psycopg.Connection[Any], size: int | None = None) -> tuple[int, str] | None:
    """The stored checkpoint of ``size`` (default: the newest) with its witnesses' cosignatures."""
    row = conn.execute(SELECT_NEWEST_SQL if size is None else SELECT_CHECKPOINT_SQL,
                       () if size is None else (size,)).fetchone()
    if row is None:
        return None
    found = int(row[0])
    return found, with_cosignatures(str(row[1]), cosignature_lines(conn, found))


@dataclass(frozen=True)
class CosignatureCheck:
    """How many of the pinned witnesses validly cosigned one checkpoint."""

    size: int
    minimum: int
    cosigned: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return len(self.cosigned) >= self.minimum

    def message(self) -> str:
        have = f"{len(self.cosigned)} valid cosignature(s) of the {len(self.cosigned) + len(self.missing)} " \
               f"pinned witnesses on the checkpoint of size {self.size}, at least {self.minimum} required"
        return have + (f"; missing: {', '.join(self.missing)}" if self.missing else "")

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "min_cosignatures": self.minimum, "cosigned_by": list(self.cosigned),
                "missing": list(self.missing), "valid": self.ok}


def check_cosignatures(note: str, witnesses: Sequence[Verifier], minimum: int) -> CosignatureCheck:
    """Count the witnesses among ``witnesses`` with a valid cosignature on ``note``.

    Raises :class:`~audit.tlog.errors.NoteVerificationError` when a pinned witness's cosignature
    is present but does not verify (the checkpoint or the line was altered). The log's own
    signature is checked elsewhere (``open_checkpoint``).
    """
    size = Checkpoint.parse(parse_note(note).text).size
    found = {(c.name, c.key_id) for c in verified_cosignatures(note, witnesses)}
    cosigned = tuple(f"{w.name}+{w.key_id.hex()}" for w in witnesses if (w.name, w.key_id) in found)
    missing = tuple(f"{w.name}+{w.key_id.hex()}" for w in witnesses if (w.name, w.key_id) not in found)
    return CosignatureCheck(size, minimum, cosigned, missing)


def judge_witnessed(answer: dict[str, Any], note: str | None, witnesses: Sequence[Verifier],
                    minimum: int | None) -> dict[str, Any]:
    """A verification ``answer`` (``to_dict`` form) judged also on the cosignatures of ``note``,
    the checkpoint at the end of the verified range (None: none is stored there) by
    ``witnesses``, at least ``minimum`` of them (None: all; 0: only report): adds ``witnesses``;
    turns the answer invalid (``check`` ``cosignatures``) when too few cosigned or one does not
    verify."""
    minimum = len(witnesses) if minimum is None else minimum
    end = answer.get("to_seq")
    if note is None:
        return answer | {"valid": False, "check": "cosignatures", "first_bad_seq": end,
                         "reason": f"no checkpoint is stored at size {end}, the end of the verified range"}
    try:
        check = check_cosignatures(note, witnesses, minimum)
    except TlogError as exc:
        return answer | {"valid": False, "check": "cosignatures", "first_bad_seq": end,
                         "reason": f"a pinned witness's cosignature does not verify: {exc}"}
    answer = answer | {"witnesses": check.to_dict() | {"message": check.message()}}
    if check.ok:
        return answer
    return answer | {"valid": False, "check": "cosignatures", "first_bad_seq": end, "reason": check.message()}


def stored_cosigned_note(conn: psycopg.Connection[Any], size: int, trusted: Sequence[Verifier], *,
                         origin: str | None = None) -> str | None:
    """The stored checkpoint of ``size`` with its stored cosignatures, after checking it
    carries the log's signature by a pinned key (raises ``TlogError`` otherwise)."""
    found = cosigned_checkpoint(conn, size)
    if found is None:
        return None
    open_checkpoint(found[1], trusted, origin=origin)
    return found[1]


# -- pushing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    size: int
    note: str
    text: str  # the checkpoint body the cosignatures sign


class _RetryLater(Exception):
    """This push failed; the worker waits (backoff) before the next attempt."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class WitnessStatus:
    """What the pusher knows of one witness (read without locking; for tests and /metrics)."""

    name: str
    url: str
    cosigned_size: int = 0  # the newest size of this log the witness cosigned for this pusher
    claimed_size: int = 0  # the size the witness says it last cosigned (409): the next old size
    attempts: int = 0
    conflicts: int = 0  # 409s: the witness said its size
    refusals: int = 0  # 422s and witnesses ahead of the log: alarms
    errors: int = 0
    last_error: str | None = None


class WitnessPusher:
    """Pushes the newest checkpoint to each witness on a thread of its own; stores cosignatures.

    :param store: an ``AuditStore``: consistency proofs are read and cosignatures written
        through its connections.
    :param witnesses: from :func:`parse_witnesses`.
    :param on_cosigned: called with the witness's name after a cosignature was stored.
    :param on_alarm: called with the witness's name and the reason when it refuses the log's
        tree as inconsistent (or has cosigned a larger one). Must be fast and must not raise.
    :param on_error: called with the witness's name after a failed attempt (network, 5xx, …).
    """

    def __init__(
        self,
        store: Any,
        witnesses: Sequence[WitnessEndpoint],
        *,
        timeout: float = 10.0,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        on_cosigned: Callable[[str], None] | None = None,
        on_alarm: Callable[[str, str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._latest: _Target | None = None
        self._stop = threading.Event()
        self.timeout = timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.on_cosigned = on_cosigned
        self.on_alarm = on_alarm
        self.on_error = on_error
        self._workers = [_WitnessWorker(self, w) for w in witnesses]

    @property
    def statuses(self) -> list[WitnessStatus]:
        return [w.status for w in self._workers]

    def start(self) -> WitnessPusher:
        """Start the threads with the newest stored checkpoint (witnesses may be behind it)."""
        try:
            with self._store.log_snapshot() as conn:
                newest = conn.execute(SELECT_NEWEST_SQL).fetchone()
        except AuditError as exc:
            log.warning("witnessing starts without the newest checkpoint: %s", exc)
            newest = None
        if newest is not None:
            self.submit(str(newest[1]))
        for worker in self._workers:
            worker.thread.start()
        return self

    def submit(self, note: str) -> None:
        """A checkpoint was committed: push it (unless a newer one is already waiting).
        Called on the writer's thread: takes a lock briefly, never raises."""
        try:
            text = parse_note(note).text
            target = _Target(Checkpoint.parse(text).size, note, text)
        except TlogError as exc:  # the writer signed it: a bug, not the caller's problem
            log.error("not witnessing a malformed checkpoint: %s", exc)
            return
        with self._lock:
            if self._latest is not None and self._latest.size >= target.size:
                return
            self._latest = target
        for worker in self._workers:
            worker.wake.set()

    @property
    def latest(self) -> _Target | None:
        return self._latest

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads (a push under way is abandoned; the next start resumes)."""
        self._stop.set()
        for worker in self._workers:
            worker.wake.set()
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.thread.join(timeout)

    def wait_cosigned(self, size: int, timeout: float) -> bool:
        """Whether every witness cosigned ``size`` or more within ``timeout`` seconds (tests, tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.cosigned_size >= size for s in self.statuses):
                return True
            time.sleep(0.05)
        return False

    # used by the workers

    def proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof from ``old_size`` to ``new_size``, from the stored tree."""
        if old_size == 0 or old_size == new_size:
            return []
        with self._store.log_snapshot() as conn:
            return list(consistency_proof(StoredTiles(conn, new_size, cache=True), old_size=old_size,
                                          new_size=new_size))

    def store(self, size: int, cosignature: Cosignature) -> None:
        with self._store._connection("storing a witness cosignature") as conn:  # noqa: SLF001
            store_cosignature(conn, size, cosignature)
            conn.commit()


@dataclass
class _WitnessWorker:
    pusher: WitnessPusher
    endpoint: WitnessEndpoint
    wake: threading.Event = field(default_factory=threading.Event)
    status: WitnessStatus = field(init=False)
    thread: threading.Thread = field(init=False)
    _failures: int = 0
    _retry_at: float = 0.0  # monotonic time before which no attempt is made (backoff)

    def __post_init__(self) -> None:
        self.status = WitnessStatus(self.endpoint.name, self.endpoint.url)
        self.thread = threading.Thread(target=self._run, name=f"clearance-witness-{self.endpoint.name}",
                                       daemon=True)
        self._session = requests.Session()

    def _run(self) -> None:
        pusher, delay = self.pusher, None
        while True:
            self.wake.wait(delay)
            self.wake.clear()  # before reading the target: a later submit wakes us again
            if pusher._stop.is_set():  # noqa: SLF001
                self._session.close()
                return
            target = pusher.latest
            if self._retry_at > time.monotonic():
                delay = self._retry_at - time.monotonic()
                continue
            if target is None or target.size <= self.status.cosigned_size:
                delay = None
                continue
            try:
                self.push(target)
            except _RetryLater as exc:
                self._failures += 1
                backoff = pusher.max_backoff if exc.refused else min(
                    pusher.max_backoff, pusher.min_backoff * 2 ** (self._failures - 1))
                self._retry_at = time.monotonic() + backoff
                self.status.last_error = str(exc)
                delay = backoff
                if not exc.refused:
                    self.status.errors += 1
                    log.warning("witness %s (%s): %s; retrying in %.1f s", self.endpoint.name, self.endpoint.url,
                                exc, backoff)
                    if pusher.on_error is not None:
                        pusher.on_error(self.endpoint.name)
            except Exception as exc:  # a bug must not end witnessing silently
                log.exception("witness %s: push failed unexpectedly", self.endpoint.name)
                self._failures += 1
                self._retry_at = time.monotonic() + pusher.max_backoff
                self.status.last_error = repr(exc)
                delay = pusher.max_backoff
            else:
                self._failures = 0
                self._retry_at = 0.0
                self.status.last_error = None
                delay = 0.0 if (pusher.latest and pusher.latest.size > self.status.cosigned_size) else None

    def push(self, target: _Target) -> None:
        """One attempt to have ``target`` cosigned; answers 409 at once. Raises :class:`_RetryLater`."""
        name, status = self.endpoint.name, self.status
        old = status.claimed_size
        for _ in range(MAX_CONFLICTS):
            if old > target.size:
                self._alarm(target, old, f"the witness has cosigned a tree of size {old}, larger than the log's "
                                         f"newest checkpoint (size {target.size}): the log was rolled back or forked")
            try:
                proof = self.pusher.proof(old, target.size)
            except (AuditError, TlogError) as exc:  # the database is down: try again later
                raise _RetryLater(f"no consistency proof {old} -> {target.size}: {exc}") from None
            body = format_request(old_size=old, proof=proof, checkpoint=target.note)
            status.attempts += 1
            try:
                response = self._session.post(f"{self.endpoint.url}/add-checkpoint", data=body,
                                              timeout=self.pusher.timeout)
            except requests.RequestException as exc:
                raise _RetryLater(f"cannot reach the witness: {exc.__class__.__name__}: {exc}") from None
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(SIZE_MEDIA_TYPE):
                try:
                    said = int(response.text.strip())
                except ValueError:
                    raise _RetryLater(f"409 without a size: {response.text[:80]!r}") from None
                status.conflicts += 1
                log.info("witness %s has cosigned size %d (not %d); retrying from it", name, said, old)
                old = status.claimed_size = said  # not trusted as ours until the witness cosigns
                continue
            if response.status_code == 422:
                self._alarm(target, old, response.text.strip()[:500])
            if response.status_code != 200:
                raise _RetryLater(f"HTTP {response.status_code} for the checkpoint of size {target.size} "
                                  f"(old {old}): {response.text.strip()[:300]}")
            self._accept(target, response.text)
            return
        raise _RetryLater(f"the witness answered 409 {MAX_CONFLICTS} times in a row")

    def _accept(self, target: _Target, lines: str) -> None:
        try:
            found = verified_cosignatures(target.text + "\n" + lines, [self.endpoint.verifier])
        except TlogError as exc:
            raise _RetryLater(f"its answer is not a valid cosignature of the checkpoint of size {target.size}: "
                              f"{exc}") from None
        if not found:
            raise _RetryLater(f"its answer holds no cosignature by {self.endpoint.verifier.verifier_key}")
        try:
            self.pusher.store(target.size, found[0])
        except AuditError as exc:
            raise _RetryLater(f"the cosignature of size {target.size} could not be stored: {exc}") from None
        self.status.cosigned_size = self.status.claimed_size = target.size
        log.info("witness %s cosigned the checkpoint of size %d", self.endpoint.name, target.size)
        if self.pusher.on_cosigned is not None:
            self.pusher.on_cosigned(self.endpoint.name)

    def _alarm(self, target: _Target, old: int, reason: str) -> None:
        self.status.refusals += 1
        message = (f"witness {self.endpoint.name} ({self.endpoint.url}) refuses the log's checkpoint of size "
                   f"{target.size} (its last cosigned size: {old}): {reason}")
        log.error("ALARM: %s", message)
        if self.pusher.on_alarm is not None:
            self.pusher.on_alarm(self.endpoint.name, reason)
        raise _RetryLater(message, refused=True)

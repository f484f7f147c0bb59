"""The batching writer: group commit of audit entries to the v2 log, fail closed.

Callers submit entry fields from any thread (:meth:`AuditWriter.append`, blocking) or from
asyncio (:meth:`AuditWriter.append_async`). Submitting prepares the leaf outside any lock (the
members canonicalised, input and result split off as blobs: ``entry.draft_leaf``). One
background thread takes what is queued (up to ``max_batch``; no waiting window unless
``max_wait`` is set), appends it in **one** transaction with one signed checkpoint
(``AuditStore.append_batch``), and only after that transaction committed resolves each caller's
future with its receipt (entry, leaf hash, checkpoint, inclusion proof). If the batch fails
(PostgreSQL down, commit refused, stored head not the newest trusted checkpoint) every caller
of that batch gets :class:`~audit.errors.AuditUnavailable` and nothing of the batch is
recorded. A caller never gets a receipt for an entry that is not durable.

:meth:`close` stops taking submissions, flushes what is queued, and joins the thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .chain import encode_members
from ._fastsig import sodium_first
from .checkpoints import CheckpointPolicy
from .entry import LeafDraft, draft_leaf, prepare_fields
from .errors import AuditError, AuditUnavailable, CheckpointFileError, WriterClosed
from .keys import SigningKey
from .log import LogReceipt as Receipt
from .checkpoint_file import CheckpointFileWriter, checkpoint_note_of, file_bytes, notes_in, unreadable
from .head_mailbox import HeadMailbox, SiblingHead
from .head_watch import HeadWatch
from .log import Floor, HeadState, LogStateMismatch, VerifiedNotes, prepare_leaves
from .store import AuditStore, BatchResult
from .tlog.note import Signer, Verifier
from .trust import log_signer, log_verifier

log = logging.getLogger(__name__)

__all__ = ["AuditWriter", "WriterStats"]

# How many of its own newest checkpoints the writer recognises in the checkpoint file without
# verifying them again: the file may be a few batches behind (audit.checkpoint_file).
OWN_NOTES_KEPT = 16
# After the head mailbox's lock was not free within its wait, the batches of this long go
# without it (PostgreSQL's lock orders them, as without a mailbox): a hung sibling holding the
# lock costs one wait, not one per batch.
MAILBOX_REST_SECONDS = 10.0
_STOP = object()
# The phases of a batch whose time WriterStats sums (bench/http_bench.py prints them per batch).
PHASES = ("collect", "prepare", "floor", "mailbox_wait", "append", "after")


@dataclass
class WriterStats:
    """Counters for metrics (read without locking; monotonic)."""

    batches: int = 0
    entries: int = 0
    failed_batches: int = 0
    rejected_entries: int = 0
    checkpoints: int = 0
    last_batch_size: int = 0
    refused_batches: int = 0  # the stored head was not the newest trusted checkpoint
    full_checks: int = 0  # batches whose head check verified everything (not the writer's own head)
    one_trip: int = 0  # batches written on the writer's own head in one round trip (guard held)
    head_moved: int = 0  # batches tried on its own head whose guard found another: full path
    # Head mailbox (several writers of one host, audit.head_mailbox): batches sent on the state
    # another writer left there (each also counts in one_trip or head_moved), and batches that
    # went without the mailbox because its lock was not free within its wait.
    sibling_head: int = 0
    mailbox_busy: int = 0
    # Where the writer thread's time went, per phase (PHASES), summed over batches in seconds,
    # wall-clock and the thread's CPU: the window after a batch's first entry, building its
    # leaves, reading and checking the checkpoint file, the head mailbox's lock and the head
    # another writer left there, the batch built on its head and the database's round trip(s)
    # to the commit, and after it (the head left in the mailbox, the receipts, the callers
    # answered). Under load a worker's batch cycle is the wall-clock sum.
    phase_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    phase_cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))


@dataclass
class _Pending:
    """One queued entry and who waits for it: a thread (``loop`` is None) or an event loop."""

    skeleton: LeafDraft
    future: Future[Receipt] | asyncio.Future[Receipt]
    loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> bool:
        """False if the caller gave up before the batch started (then it is not written)."""
        if self.loop is None:
            return self.future.set_running_or_notify_cancel()  # type: ignore[union-attr]
        return not self.future.cancelled()


class AuditWriter:
    """Group-commit writer of one process.

    :param store: where entries go.
    :param key: the signing key, loaded once (``keys.load_signing_key``).
    :param max_batch: most entries per transaction.
    :param max_wait: seconds to keep collecting once the thread has taken a batch's first entry
        (not since that entry was queued: measured, that halves the batches under load;
        docs/performance.md), when the previous batch had more than one entry; 0 (the
        default): no window, a batch is what is queued when the thread gets to it.
    :param checkpoints: only its ``export_path`` is used: the checkpoint file
        (``audit.checkpoint_file``). After each batch the batch's checkpoint is written there
        by a background thread if larger than the one it holds (two slots written in place,
        fsynced: it only grows); before each batch (and at start-up) the stored tree must
        contain the checkpoint it holds.
    :param trusted: the verifier keys whose checkpoints the writer accepts as the stored head:
        the pinned keys (default: its own key's only; never the database's keyring).
    :param origin: the configured log origin (``CLEARANCE_LOG_ORIGIN``): the stored head must
        carry it, checkpoints are signed under it (default: the head's).
    :param mailbox: the head mailbox shared with the other writers of this host
        (``audit.head_mailbox``; None: none, each batch after another writer's takes the full
        path). Before each batch the writer takes its lock and, when another writer left a head
        newer than its own there, sends the batch on that head in one guarded round trip; after
        the commit it leaves its own head there.
    :param on_refused: called with ``"startup"`` or ``"batch"`` each time the stored head
        fails the check (metrics); must be fast and must not raise.
    :param max_queue: submissions waiting at most; beyond it :meth:`submit` raises
        :class:`AuditUnavailable` at once (back-pressure instead of unbounded memory).
    :param check_schema: refuse to start unless the schema is at the expected revision.
    :param on_batch: called with the size of each committed batch (for metrics); must be fast
        and must not raise.
    :param on_checkpoint: called with each committed checkpoint note (witnessing:
        ``audit.witnessing.WitnessPusher.submit``); must be fast and must not raise.
    :param stalled_after: seconds a batch may wait in the database before the writer's log names
        the sessions that block it, and again every as many seconds (``audit/head_watch.py``).
    :param on_stalled: called with the seconds waited each time it does (for metrics); must be
        fast and must not raise.
    """

    def __init__(
        self,
        store: AuditStore,
        *,
        key: SigningKey,
        max_batch: int = 256,
        max_wait: float = 0.0,
        checkpoints: CheckpointPolicy | None = None,
        max_queue: int = 10_000,
        check_schema: bool = True,
        on_batch: Callable[[int], None] | None = None,
        trusted: Sequence[Verifier] | None = None,
        on_checkpoint: Callable[[str], None] | None = None,
        origin: str | None = None,
        on_refused: Callable[[str], None] | None = None,
        mailbox: HeadMailbox | None = None,
        stalled_after: float = 5.0,
        on_stalled: Callable[[float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self._store = store
        self._key = key
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._checkpoints = checkpoints
        self._check_schema = check_schema
        self._on_batch = on_batch
        # A SimpleQueue (C, no Condition to notify on each put: ~3 % of the event loop's CPU per
        # decision with queue.Queue), bounded by hand in _enqueue under self._lock.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_queue = max_queue
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._lock = threading.Lock()
        self.stats = WriterStats()
        self._phases = _PhaseClock(self.stats)
        self.last_checkpoint: str | None = None
        self._trusted = trusted
        self._signer: Signer | None = None
        self._on_checkpoint = on_checkpoint
        self._origin = origin
        self._on_refused = on_refused
        self.refusal: str | None = None  # why the last head check failed (None: it passed)
        # The head row as this writer's last batch committed it, and the checkpoint file
        # contents (None: no file) whose checkpoint that tree is known to contain: checked
        # against it, or signed by this writer on the way to it. The next batch skips the
        # signature and frontier checks when it finds that row, and the floor check too when
        # the file holds one of those (docs/audit.md, "What the writer checks before each batch").
        self._known: HeadState | None = None
        self._others_appended = True  # the last head check found a head this writer had not made
        self._known_files: dict[bytes | None, None] = {}
        self._floors: dict[bytes, Floor] = {}  # file contents already verified, newest last
        # Notes verified with the pinned keys (the file's and the stored newest checkpoint's are
        # often the same note: another worker's): each is verified once.
        self._verified = VerifiedNotes()
        path = checkpoints.export_path if checkpoints else None
        self._file: CheckpointFileWriter | None = None
        self._file_path = path
        self._mailbox = mailbox
        self._log_origin: str | None = None  # the origin checkpoints are signed under (at start)
        self._mailbox_rests_until = 0.0  # monotonic time before which the mailbox is not tried
        # Names who blocks a batch that has waited ``stalled_after`` s (audit/head_watch.py).
        self._stalled_after, self._on_stalled = stalled_after, on_stalled
        self._watch: HeadWatch | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> AuditWriter:
        """Check the schema, register the public key, check the head, start the thread.

        Raises :class:`~audit.errors.SchemaMismatch` or :class:`AuditUnavailable`.
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the writer is already started")
            if self._check_schema:
                self._store.check_schema()
            self._store.register_key(self._key.public)
            origin = self._log_origin = self._origin or self._store.log_origin()
            self._signer = log_signer(self._key, origin)
            if self._trusted is None:
                self._trusted = (log_verifier(self._key.public, origin),)
            # Checked by libsodium first (same verdicts, half the CPU: audit._fastsig): a batch
            # after another worker's verifies that worker's checkpoint.
            self._trusted = sodium_first(self._trusted)
            self._check_at_start()
            if self._file_path is not None:
                self._file = CheckpointFileWriter(self._file_path, self._trusted, origin=origin)
            self._watch = HeadWatch(self._store.engine, after=self._stalled_after, on_warning=self._on_stalled)
            self._accepting = True
            self._thread = threading.Thread(
                target=self._run, name="clearance-audit-writer", daemon=True
            )
            self._thread.start()
        return self

    def _check_at_start(self) -> None:
        """The head check of every batch, once now: a database cut back or written around the
        writer is reported at start-up (log line, counter). The writer still starts, and every
        batch refuses (503) until the database is consistent again."""
        assert self._trusted is not None
        try:
            self._store.check_head(self._trusted, origin=self._origin, floor=self._floor()[0])
        except LogStateMismatch as exc:
            self._refused("startup", exc)
        else:
            self.refusal = None

    def _refused(self, when: str, exc: AuditError) -> None:
        if when == "batch":
            self.stats.refused_batches += 1
        self.refusal = str(exc)
        if self._on_refused is not None:
            self._on_refused(when)

    def _floor(self) -> tuple[Floor | None, bytes | None]:
        """The checkpoint file's checkpoint, checked with the pinned keys, and its note's bytes
        (None, None: no file). A file that cannot serve (unreadable, damaged, not signed by a
        pinned key) stops the writer like a cut tail: it is the only record of how far the log
        had grown. The file is read every time (two slots of a page); a note's signature is
        checked only the first time it is seen. Of two slots, the larger note that verifies
        serves (``audit.checkpoint_file``: the other slot may be mid-write)."""
        path = self._file_path
        if path is None:
            return None, None
        try:
            data = file_bytes(path)
        except OSError:
            if not path.exists() and not path.is_symlink():
                return self._remembered_floor()
            try:  # the file writer's first note may have landed between the read and the check
                data = file_bytes(path)
            except OSError as again:
                raise LogStateMismatch(f"the audit log refuses to append: {unreadable(path, again)}") from None
        best: tuple[Floor, bytes] | None = None
        problem: CheckpointFileError | None = None
        for note in notes_in(data):
            floor = self._floors.get(note)
            if floor is None:
                try:
                    signed = checkpoint_note_of(path, note, self._trusted or (), origin=self._origin,
                                                verified=self._verified)
                except CheckpointFileError as exc:
                    problem = problem or exc
                    continue
                floor = Floor(signed.size, signed.root_hash, str(path))
                self._remember_floor(note, floor)
            if best is None or floor.size > best[0].size:
                best = (floor, note)
        if best is None:
            reason = problem or f"checkpoint file {path}: holds no checkpoint (both slots are empty)"
            raise LogStateMismatch(f"the audit log refuses to append: {reason}") from None
        return best

    def _remembered_floor(self) -> tuple[Floor | None, bytes | None]:
        """No checkpoint file. Before this writer has seen one it is a first start (nothing
        issued yet); after, the file was deleted while it ran, and the newest checkpoint it
        knows stays the floor: deleting the file must not let a rolled-back tail through. The
        file's thread writes it again after the next batch."""
        if not self._floors:
            return None, None
        data, floor = max(self._floors.items(), key=lambda item: item[1].size)
        log.warning("the checkpoint file %s is missing: the newest checkpoint this writer knew "
                    "(size %d) stays the floor", self._file_path, floor.size)
        return floor, data

    def _remember_floor(self, data: bytes, floor: Floor) -> None:
        self._floors[data] = floor
        while len(self._floors) > OWN_NOTES_KEPT + 1:
            del self._floors[next(iter(self._floors))]

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting entries, flush the queue (each caller still gets its outcome), join."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            thread = self._thread
            self._queue.put(_STOP)  # always taken: the bound is only for submissions
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("audit writer did not finish flushing within %ss", timeout)
            else:  # how its batches went (bench/http_bench.py reads this line)
                log.info("audit writer closed: %s", vars(self.stats))
        if self._file is not None:
            self._file.close(timeout)  # the file holds the last committed checkpoint
        if self._watch is not None:
            self._watch.close()
        if self._mailbox is not None and (thread is None or not thread.is_alive()):
            self._mailbox.close()

    def flush_checkpoint_file(self, timeout: float | None = 30.0) -> bool:
        """Wait until the checkpoint file holds every checkpoint committed so far."""
        return self._file is None or self._file.flush(timeout)

    def __enter__(self) -> AuditWriter:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._accepting and self._thread is not None and self._thread.is_alive()

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, fields: Mapping[str, Any]) -> Future[Receipt]:
        """Queue an entry; the future resolves to its receipt once its batch has committed.

        Raises :class:`~audit.errors.AuditEntryInvalid` at once for unusable fields, and
        :class:`WriterClosed` / :class:`AuditUnavailable` when nothing can be queued.
        """
        future: Future[Receipt] = Future()
        self._enqueue(_Pending(draft_leaf(encode_members(prepare_fields(fields))), future))
        return future

    def _enqueue(self, pending: _Pending) -> None:
        with self._lock:
            if not self._accepting:
                raise WriterClosed("the audit writer is not running; no decision can be recorded")
            if self._queue.qsize() >= self._max_queue:
                raise AuditUnavailable(f"the audit queue is full ({self._max_queue} entries waiting)")
            self._queue.put(pending)

    def append(self, fields: Mapping[str, Any], *, timeout: float | None = 30.0) -> Receipt:
        """Record one entry and block until it has committed; returns its receipt."""
        future = self.submit(fields)
        try:
            return future.result(timeout)
        except TimeoutError:
            raise AuditUnavailable(
                f"the audit entry was not committed within {timeout}s "
                "(it may still commit later; the decision must not be returned)"
            ) from None

    async def append_async(self, fields: Mapping[str, Any]) -> Receipt:
        """Asyncio form of :meth:`append` (does not block the event loop).

        The writer settles all of a batch's futures of one loop with a single
        ``call_soon_threadsafe`` (one wake-up per batch rather than one per entry)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()
        self._enqueue(_Pending(draft_leaf(encode_members(prepare_fields(fields))), future, loop))
        return await future

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        # The stop marker is always the last item queued (submit and close share a lock), so
        # everything submitted before close() is committed before the thread ends.
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            self._phases.start()
            stop = self._collect(batch)
            self._phases.lap("collect")
            self._commit(batch)
            if stop:
                return

    def _collect(self, batch: list[_Pending]) -> bool:
        """Fill ``batch`` for up to ``max_wait``; True if the stop marker was seen. The window
        is waited only while batching pays: when the previous batch had company (more than one
        entry). A caller alone never waits for others that are not coming."""
        window = self._max_wait if self.stats.last_batch_size > 1 else 0.0
        deadline = time.monotonic() + window
        while len(batch) < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    item = self._queue.get(timeout=remaining)
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    def _commit(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.start()]
        if not live:
            return
        phases = self._phases
        # The bodies but seq, time and key id: made before the mailbox is taken, so the
        # writers of the host do not wait for each other's.
        prepared = prepare_leaves([p.skeleton for p in live])
        phases.lap("prepare")
        held = False
        try:
            try:
                assert self._trusted is not None
                floor, contents = self._floor()
                phases.lap("floor")
                held = self._take_mailbox()
                sibling = self._sibling_head() if held else None
                phases.lap("mailbox_wait")
                assert self._watch is not None
                self._watch.begin()
                if sibling is not None:  # another writer's newer head: the batch is tried on it
                    known, known_files, own = sibling.state, dict.fromkeys(sibling.known), True
                else:
                    known, known_files, own = self._known, self._known_files, not self._others_appended
                result = self._store.append_batch(
                    [p.skeleton for p in live], key=self._key, trusted=self._trusted, signer=self._signer,
                    origin=self._origin, floor=floor, known=known, floor_known=contents in known_files,
                    # Another writer made the last head (several workers): this one will be checked too.
                    prefetch_floor=not own or contents not in known_files,
                    # Its last batch found its own head, or another writer of this host left a
                    # newer one in the mailbox: try this one on it, in one round trip.
                    own_head=own, verified=self._verified, prepared=prepared,
                )
                phases.lap("append")
            except AuditError as exc:
                if isinstance(exc, LogStateMismatch):
                    self._refused("batch", exc)
                log.error("audit batch of %d entries not recorded: %s", len(live), exc)
                self._fail(live, exc if isinstance(exc, AuditUnavailable) else AuditUnavailable(str(exc)))
                return
            except BaseException as exc:  # a bug: still fail every caller closed, never hang them
                log.exception("audit batch failed unexpectedly")
                self._fail(live, AuditUnavailable(f"audit writer error: {exc!r}"))
                return
            finally:
                if self._watch is not None:
                    self._watch.end()
            if sibling is not None:
                # The sibling's tree contains these; the batch extended it (or, the guard missed,
                # the full check below resets them in _learn).
                self._known_files = known_files
                if result.on_known_head:
                    self.stats.sibling_head += 1
            self._learn_batch(result, contents)
            if held and self._known is not None:
                self._leave_head()
        finally:
            if held:
                self._release_mailbox()
        try:
            outcomes = result.outcomes  # the receipts: built now, with the mailbox free for the next writer
        except BaseException as exc:  # a bug: the batch committed, yet fail every caller closed
            log.exception("audit batch committed but its receipts could not be built")
            self._fail(live, AuditUnavailable(f"audit writer error: {exc!r}"))
            return
        self._deliver(live, result, outcomes)
        phases.lap("after")

    def _fail(self, live: list[_Pending], error: AuditUnavailable) -> None:
        """Every caller of a batch gets ``error``; committed or not, the next batch checks
        everything (the head this writer knew may not be the log's)."""
        self._known, self._known_files = None, {}
        self.stats.failed_batches += 1
        _settle(live, [error] * len(live))

    # -- the head mailbox (audit.head_mailbox) -------------------------------------------------

    def _take_mailbox(self) -> bool:
        """The mailbox's lock, when there is a mailbox and it is free within its wait."""
        if self._mailbox is None:
            return False
        if self._mailbox_rests_until and time.monotonic() < self._mailbox_rests_until:
            return False  # a sibling held it past the wait: not waited for again for a while
        try:
            if self._mailbox.acquire():
                self._mailbox_rests_until = 0.0
                return True
        except OSError as exc:  # not every batch: without it the writer works as it always did
            log.warning("the head mailbox %s cannot be used (each batch after another writer's "
                        "takes the full check): %s", self._mailbox.path, exc)
            self._mailbox.close()
            self._mailbox = None
            return False
        self.stats.mailbox_busy += 1
        self._mailbox_rests_until = time.monotonic() + MAILBOX_REST_SECONDS
        log.warning("the head mailbox %s was held past its wait (a writer of this host hung?): "
                    "the next %.0f s of batches go without it", self._mailbox.path, MAILBOX_REST_SECONDS)
        return False

    def _sibling_head(self) -> SiblingHead | None:
        assert self._mailbox is not None and self._log_origin is not None
        try:
            return self._mailbox.read(origin=self._log_origin, newer_than=self._known)
        except OSError as exc:
            log.warning("the head mailbox %s cannot be read: %s", self._mailbox.path, exc)
            return None

    def _leave_head(self) -> None:
        assert self._mailbox is not None and self._known is not None
        try:
            self._mailbox.write(self._known, self._known_files)
        except OSError as exc:
            log.warning("the head mailbox %s cannot be written: %s", self._mailbox.path, exc)

    def _release_mailbox(self) -> None:
        assert self._mailbox is not None
        try:
            self._mailbox.release()
        except OSError as exc:  # a closed descriptor: nothing is held any more
            log.warning("the head mailbox %s: %s", self._mailbox.path, exc)

    def _learn_batch(self, result: BatchResult, contents: bytes | None) -> None:
        """What a committed batch teaches the writer (before the mailbox is written)."""
        if result.on_known_head is not None:
            if result.on_known_head:
                self.stats.one_trip += 1
            else:
                self.stats.head_moved += 1
        checked = result.checked
        self._learn(result.state, contents, result.checkpoint, full=checked.full,
                    extended=checked.row[7] if checked.full else None)

    def _deliver(self, live: list[_Pending], result: BatchResult, outcomes: Sequence[Outcome]) -> None:
        """Each caller's outcome of a committed batch, after the mailbox lock is released."""
        self.refusal = None
        self.stats.batches += 1
        self.stats.last_batch_size = len(live)
        if self._on_batch is not None:
            self._on_batch(len(live))
        receipts = sum(isinstance(outcome, Receipt) for outcome in outcomes)
        self.stats.entries += receipts
        self.stats.rejected_entries += len(live) - receipts
        _settle(live, outcomes)
        if result.checkpoint is not None:
            self._published(result.checkpoint, result.state.size)

    def _learn(self, state: HeadState | None, contents: bytes | None, note: str | None, *, full: bool,
               extended: str | None = None) -> None:
        """Remember the head this batch committed, and which checkpoint file contents its tree
        contains: those its head checks compared with it since the last full one (which found
        a head this writer had not made), the note of the head that full check verified and the
        batch extended (``extended``: another worker's, which the file may hold next), and the
        checkpoints this writer signed since (the file may hold any of the newest of them)."""
        self._others_appended = full
        if full:
            self.stats.full_checks += 1
            self._known_files = {}
            if extended is not None:
                self._known_files[extended.encode("utf-8")] = None
        self._known_files[contents] = None  # checked this time, or already known
        self._known = state
        if note is not None and state is not None and self._file_path is not None:
            data = note.encode("utf-8")
            self._remember_floor(data, Floor(state.size, bytes(state.row[2]), str(self._file_path)))
            self._known_files[data] = None
            while len(self._known_files) > OWN_NOTES_KEPT + 1:
                del self._known_files[next(iter(self._known_files))]

    def _published(self, note: str, size: int) -> None:
        self.stats.checkpoints += 1
        self.last_checkpoint = note
        if self._on_checkpoint is not None:
            self._on_checkpoint(note)
        if self._file is not None:
            self._file.submit(note, size)  # written by its own thread: the next batch does not wait


Outcome = Receipt | BaseException


class _PhaseClock:
    """Times the phases of the writer thread's batches into ``WriterStats`` (that thread only)."""

    def __init__(self, stats: WriterStats) -> None:
        self._wall, self._cpu = stats.phase_s, stats.phase_cpu_s
        self.start()

    def start(self) -> None:
        self._at, self._cpu_at = time.perf_counter(), time.thread_time()

    def lap(self, phase: str) -> None:
        """Add the time since the last lap (or start) to ``phase``."""
        at, cpu_at = time.perf_counter(), time.thread_time()
        self._wall[phase] += at - self._at
        self._cpu[phase] += cpu_at - self._cpu_at
        self._at, self._cpu_at = at, cpu_at


def _settle(batch: list[_Pending], outcomes: Sequence[Outcome]) -> None:
    """Hand each caller its outcome: threads directly, each event loop in one call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Receipt], Outcome]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        if pending.loop is None:
            _resolve(pending.future, outcome)
        else:
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))  # type: ignore[arg-type]
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_all, items)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            log.warning("%d audit outcomes not delivered: their event loop is closed", len(items))


def _resolve_all(items: list[tuple[asyncio.Future[Receipt], Outcome]]) -> None:
    for future, outcome in items:
        if not future.done():  # the request may have been cancelled meanwhile
            _resolve(future, outcome)


def _resolve(future: Future[Receipt] | asyncio.Future[Receipt], outcome: Outcome) -> None:
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)

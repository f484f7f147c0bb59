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
from dataclasses import dataclass
from typing import Any

from .chain import encode_members
from .checkpoints import CheckpointPolicy
from .entry import LeafDraft, draft_leaf, prepare_fields
from .errors import AuditError, AuditUnavailable, WriterClosed
from .keys import SigningKey
from .log import LogReceipt as Receipt
from .log import LogStateMismatch
from .store import AuditStore
from .tlog.note import Signer, Verifier
from .trust import log_signer, trusted_verifiers

log = logging.getLogger(__name__)

__all__ = ["AuditWriter", "WriterStats"]

PARTITION_CHECK_SECONDS = 6 * 3600.0
_STOP = object()


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
    :param max_wait: seconds to keep collecting after the first entry of a batch arrived; 0 (the
        default): no window, a batch is what is queued when the thread gets to it.
    :param checkpoints: only its ``export_path`` is used: the newest signed checkpoint note is
        written there after each batch (every batch signs one checkpoint in its transaction).
    :param on_refused: called when a batch is refused because the stored head is not the newest
        trusted checkpoint (for a metric); must be fast and must not raise.
    :param trusted: the verifier keys whose checkpoints the writer accepts as the stored head
        (default: ``audit.trust.trusted_verifiers`` of the keys registered, its own included).
    :param max_queue: submissions waiting at most; beyond it :meth:`submit` raises
        :class:`AuditUnavailable` at once (back-pressure instead of unbounded memory).
    :param check_schema: refuse to start unless the schema is at the expected revision.
    :param on_batch: called with the size of each committed batch (for metrics); must be fast
        and must not raise.
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
        on_refused: Callable[[], None] | None = None,
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
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._lock = threading.Lock()
        self.stats = WriterStats()
        self.last_checkpoint: str | None = None
        self._trusted = trusted
        self._trusted_given = trusted is not None
        self._on_refused = on_refused
        self._signer: Signer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> AuditWriter:
        """Check the schema, register the public key, ensure partitions, start the thread.

        Raises :class:`~audit.errors.SchemaMismatch` or :class:`AuditUnavailable`.
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the writer is already started")
            if self._check_schema:
                self._store.check_schema()
            self._store.register_key(self._key.public)
            origin = self._store.log_origin()
            self._signer = log_signer(self._key, origin)
            if self._trusted is None:
                self._trusted = trusted_verifiers(self._store.list_keys(), origin)
            self._ensure_partitions()
            self._accepting = True
            self._thread = threading.Thread(
                target=self._run, name="clearance-audit-writer", daemon=True
            )
            self._thread.start()
        return self

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting entries, flush the queue (each caller still gets its outcome), join."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            thread = self._thread
            self._queue.put(_STOP)  # may wait for room; the writer thread keeps draining
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("audit writer did not finish flushing within %ss", timeout)

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
            try:
                self._queue.put_nowait(pending)
            except queue.Full:
                raise AuditUnavailable(
                    f"the audit queue is full ({self._queue.maxsize} entries waiting)"
                ) from None

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
        next_partition_check = time.monotonic() + PARTITION_CHECK_SECONDS
        while True:
            if time.monotonic() >= next_partition_check:  # busy or idle, next months exist
                next_partition_check = time.monotonic() + PARTITION_CHECK_SECONDS
                self._ensure_partitions()
            try:
                first = self._queue.get(timeout=PARTITION_CHECK_SECONDS)
            except queue.Empty:
                continue
            if first is _STOP:
                return
            batch = [first]
            stop = self._collect(batch)
            self._commit(batch)
            if stop:
                return

    def _collect(self, batch: list[_Pending]) -> bool:
        """Fill ``batch`` for up to ``max_wait``; True if the stop marker was seen."""
        deadline = time.monotonic() + self._max_wait
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
        try:
            result = self._append([p.skeleton for p in live])
        except AuditError as exc:
            self.stats.failed_batches += 1
            if isinstance(exc, LogStateMismatch):
                self.stats.refused_batches += 1
                if self._on_refused is not None:
                    self._on_refused()
            log.error("audit batch of %d entries not recorded: %s", len(live), exc)
            error = exc if isinstance(exc, AuditUnavailable) else AuditUnavailable(str(exc))
            _settle(live, [error] * len(live))
            return
        except BaseException as exc:  # a bug: still fail every caller closed, never hang them
            self.stats.failed_batches += 1
            log.exception("audit batch failed unexpectedly")
            _settle(live, [AuditUnavailable(f"audit writer error: {exc!r}")] * len(live))
            return
        self.stats.batches += 1
        self.stats.last_batch_size = len(live)
        if self._on_batch is not None:
            self._on_batch(len(live))
        receipts = sum(isinstance(outcome, Receipt) for outcome in result.outcomes)
        self.stats.entries += receipts
        self.stats.rejected_entries += len(live) - receipts
        _settle(live, result.outcomes)
        if result.checkpoint is not None:
            self._published(result.checkpoint)

    def _append(self, drafts: list[LeafDraft]) -> Any:
        assert self._trusted is not None
        try:
            return self._store.append_batch(drafts, key=self._key, trusted=self._trusted, signer=self._signer)
        except LogStateMismatch:
            if self._trusted_given:
                raise
            # Keys from the database keyring: another writer may have registered its key since
            # start-up. Read them again once (audit.trust.trusted_verifiers) before refusing.
            self._trusted = trusted_verifiers(self._store.list_keys(), self._store.log_origin())
            return self._store.append_batch(drafts, key=self._key, trusted=self._trusted, signer=self._signer)

    def _published(self, note: str) -> None:
        self.stats.checkpoints += 1
        self.last_checkpoint = note
        path = self._checkpoints.export_path if self._checkpoints else None
        if path is None:
            return
        try:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(note, encoding="utf-8")
            tmp.replace(path)  # atomic: a reader sees the old note or the new one
        except OSError as exc:
            log.error("could not export the checkpoint to %s: %s", path, exc)

    def _ensure_partitions(self) -> None:
        try:
            created = self._store.ensure_partitions()
        except AuditError as exc:
            log.warning("could not ensure audit partitions (the DEFAULT one takes rows): %s", exc)
            return
        if created:
            log.info("created %d audit partition(s)", created)


Outcome = Receipt | BaseException


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

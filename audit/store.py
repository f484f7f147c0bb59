"""PostgreSQL store of the audit trail: the v2 transparency log (written) and the v1 chain (kept).

The service appends to the v2 log (:meth:`AuditStore.append_batch`, ``audit/log.py``): a batch
of leaves, its blobs, the new complete subtrees and **one signed checkpoint** in one
transaction, after checking that the stored head is the newest checkpoint that verifies with a
trusted key. Receipts exist only after the commit returned: no receipt, no decision.

The v1 hash chain (``audit_entries``) stays readable and verifiable; :meth:`append_v1_batch`
still builds one (migration tests and fixtures): it locks the chain head, assigns ``seq``,
``recorded_at`` and ``prev_hash``, hashes and signs each entry (``audit/chain.py``), inserts them
with their derived columns, moves the head and stores a checkpoint if one is due.

Any PostgreSQL or driver error rolls the whole batch back and surfaces as
:class:`~audit.errors.AuditUnavailable` (fail closed; nothing is half-written).

The writer refuses to start unless the schema is at the newest revision shipped in
``migrations/`` (:meth:`AuditStore.check_schema`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from ._db import map_errors, sqlalchemy_url
from .canonical import plain
from .chain import Receipt, SignedEntry, build_entry
from .checkpoints import CheckpointPolicy, SignedCheckpoint, build_checkpoint
from .entry import ENTRY_COLUMNS, LeafDraft, queryable_columns
from .log import (AppendedLeaves, CheckedHead, Floor, HeadState, LogHead, LogReceipt, PreparedLeaf, VerifiedNotes,
                  append_batch_leaves, append_on_known_head, check_head, prepare_leaves, read_head)
from .errors import AuditEntryInvalid, SchemaMismatch
from .keys import Keyring, PublicKey, SigningKey
from .tlog.note import Signer, Verifier
from .trust import log_signer
from .migrate import SELECT_SCHEMA_REVISION_SQL, head_revision
from .snapshot import SELECT_HEAD_SQL, SELECT_KEYS_SQL, ChainHeadState, StoreSnapshot, head_state

log = logging.getLogger(__name__)

__all__ = ["AuditStore", "BatchResult"]

SET_LZ4_SQL = "SET default_toast_compression = lz4"
# GIN indexes collect new keys in a pending list that the inserting session merges once it is
# over this size, inside its transaction (and so inside the chain lock). PostgreSQL's 4 MB
# default made one batch in a few hundred take 20-80 ms; 512 kB merges as cheaply, more often,
# in under 10 ms (bench: docs/performance.md).
SET_GIN_PENDING_SQL = "SET gin_pending_list_limit = '512kB'"
UPDATE_HEAD_SQL = (
    "UPDATE audit_chain_head SET seq = %(seq)s, head_hash = %(head_hash)s, "
    "recorded_at = %(recorded_at)s WHERE id = 1"
)
# The derived columns (audit/entry.py) and the signed material, in column order. The body's
# JSONB is not stored: the view audit_entries_json derives it from ``body`` when read.
INSERT_ENTRY_SQL = (
    f"INSERT INTO audit_entries ({', '.join(ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(ENTRY_COLUMNS))})"
)
# The head, locked, with the newest checkpoint's seq and time (is one due?) in one statement.
SELECT_HEAD_FOR_APPEND_SQL = (
    "SELECT h.log_id, h.seq, h.head_hash, h.recorded_at, c.seq, c.recorded_at "
    "FROM audit_chain_head h LEFT JOIN LATERAL "
    "(SELECT seq, recorded_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1) c ON true "
    "WHERE h.id = 1 FOR UPDATE OF h"
)
SELECT_LATEST_CHECKPOINT_SQL = (
    "SELECT body, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
)
INSERT_CHECKPOINT_SQL = (
    "INSERT INTO audit_checkpoints (seq, head_hash, recorded_at, key_id, body, signature) "
    "VALUES (%(seq)s, %(head_hash)s, %(recorded_at)s, %(key_id)s, %(body)s, %(signature)s)"
)
INSERT_KEY_SQL = (
    "INSERT INTO audit_signing_keys (key_id, algorithm, public_key) "
    "VALUES (%(key_id)s, 'Ed25519', %(public_key)s) ON CONFLICT (key_id) DO NOTHING"
)
SET_SNAPSHOT_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
# The appending connection is kept between batches (checking one out of the pool pings it: a
# round trip per batch). Idle longer than this, it goes back to the pool and the next batch
# checks out a pinged one, so a server restarted meanwhile costs no failed batch.
APPEND_IDLE_SECONDS = 1.0

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BatchResult:
    """What one appended batch produced. Its receipts (:attr:`outcomes`) are built when first
    read, from what the batch wrote: the audit writer reads them after it has released the head
    mailbox, so that another worker's batch does not wait for them."""

    appended: AppendedLeaves
    # The head row as the committed batch left it (``known`` of the next batch).
    state: HeadState
    # ``own_head`` batches: written in one round trip on the known head (True), or the guard
    # found another head and the full path wrote it (False); None: not tried.
    on_known_head: bool | None = None

    @property
    def checkpoint(self) -> str | None:
        """The batch's signed checkpoint note (None: nothing appended)."""
        return self.appended.checkpoint

    @property
    def checked(self) -> CheckedHead:
        """What the head check found (``checked.full``: whether it verified everything this time)."""
        return self.appended.checked

    @cached_property
    def outcomes(self) -> list[LogReceipt | AuditEntryInvalid]:
        """One outcome per draft, in submission order: its receipt or why it was left out."""
        return self.appended.outcomes()


@dataclass(frozen=True)
class V1BatchResult:
    """What one batch appended to the v1 chain produced."""

    outcomes: list[Receipt | AuditEntryInvalid]
    checkpoint: SignedCheckpoint | None


class AuditStore:
    """The audit chain in PostgreSQL.

    :param engine: a SQLAlchemy engine on ``postgresql+psycopg://``; its pool is used for
        appends and reads. Use :meth:`from_url` to build one with sensible settings.
    :param clock: where ``recorded_at`` comes from (UTC, timezone-aware); injectable for tests.
    """

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        if engine.dialect.driver != "psycopg":
            raise ValueError("AuditStore needs a postgresql+psycopg:// engine (psycopg 3)")
        self._engine = engine
        self._clock = clock
        self._append_lock = threading.Lock()
        self._append_held: Any = None  # the pooled connection kept by append_batch
        self._append_cursor: psycopg.Cursor[Any] | None = None  # the batch-on-own-head cursor of that connection
        self._append_used = 0.0
        if not event.contains(engine, "connect", _on_connect):
            event.listen(engine, "connect", _on_connect)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        clock: Clock = utc_now,
        pooled: bool = True,
    ) -> AuditStore:
        """Build a store for ``url`` (``postgresql://`` and ``postgresql+psycopg://`` accepted).

        :param pool_size: connections kept open (the writer uses one, verification one).
        :param connect_timeout: seconds before an unreachable server counts as down.
        :param pooled: ``False`` opens a connection per operation (CLI one-shots).
        """
        options: dict[str, Any] = {"connect_args": {"connect_timeout": max(1, int(connect_timeout))}}
        if pooled:
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        else:
            options.update(poolclass=NullPool)
        return cls(create_engine(sqlalchemy_url(url), **options), clock=clock)

    @property
    def engine(self) -> Engine:
        return self._engine

    def dispose(self) -> None:
        """Close the pooled connections."""
        with self._append_lock:
            held, self._append_held, self._append_cursor = self._append_held, None, None
        if held is not None:
            with contextlib.suppress(Exception):
                held.close()
        self._engine.dispose()

    # -- start-up ------------------------------------------------------------------------------

    def check_schema(self, expected: str | None = None) -> None:
        """Raise :class:`SchemaMismatch` unless the database is at ``expected``.

        The default is the newest revision shipped in ``migrations/``: code and schema come
        from the same release, and the audit code is never run against a half-migrated schema.
        """
        expected = expected or head_revision()
        found = self.schema_revision()
        if found != expected:
            raise SchemaMismatch(expected=expected, found=found)

    def schema_revision(self) -> str | None:
        """The migration the database is at (``None``: never migrated)."""
        with self._connection("reading the schema revision") as conn:
            try:
                row = conn.execute(SELECT_SCHEMA_REVISION_SQL).fetchone()
            except psycopg.errors.UndefinedTable:
                return None
        return row[0] if row else None

    # -- keys ----------------------------------------------------------------------------------

    def register_key(self, key: PublicKey) -> None:
        """Record a public key (idempotent). Keys are never removed."""
        params = {"key_id": key.key_id, "public_key": key.raw}
        with self._connection("registering a signing key") as conn:
            try:
                conn.execute(INSERT_KEY_SQL, params)
            except psycopg.errors.UniqueViolation:
                # Another process inserted the same key at the same moment (each worker registers
                # it at start) and the public key's unique index, which ON CONFLICT (key_id) does
                # not arbitrate, saw it first; that insert has committed, so the statement run
                # again finds its row by key_id and does nothing. Any other clash raises.
                conn.rollback()
                conn.execute(INSERT_KEY_SQL, params)
            conn.commit()

    def list_keys(self) -> list[PublicKey]:
        """Every valid public key registered, oldest first (a row whose public key is not the
        one its id names — an altered table — is left out and logged)."""
        return list(self.keyring().values())

    def keyring(self) -> Keyring:
        """The registered public keys as a :class:`Keyring` (trusts the database)."""
        with self._connection("listing signing keys") as conn:
            keyring = Keyring.from_rows(conn.execute(SELECT_KEYS_SQL).fetchall())
        for key_id, why in keyring.rejected.items():
            log.error("audit_signing_keys row %s refused: %s", key_id, why)
        return keyring

    # -- append --------------------------------------------------------------------------------

    def append_batch(
        self,
        drafts: Sequence[LeafDraft],
        *,
        key: SigningKey,
        trusted: Sequence[Verifier],
        signer: Signer | None = None,
        origin: str | None = None,
        floor: Floor | None = None,
        known: HeadState | None = None,
        floor_known: bool = False,
        prefetch_floor: bool = False,
        own_head: bool = False,
        verified: VerifiedNotes | None = None,
        prepared: Sequence[PreparedLeaf | AuditEntryInvalid] | None = None,
    ) -> BatchResult:
        """Append prepared leaves (``entry.draft_leaf``) to the v2 log in one transaction, with
        one checkpoint signed by ``key`` (``audit/log.py``).

        Returns a receipt per entry, or the :class:`AuditEntryInvalid` that kept that one entry
        out (the others are appended). Raises :class:`AuditUnavailable` if the transaction did
        not commit (then nothing of the batch was recorded), :class:`LogStateMismatch` if the
        stored head is not the newest checkpoint verified with ``trusted`` (under ``origin``,
        containing ``floor``: the checkpoint file's checkpoint). ``known``: the ``state`` of this
        caller's previous committed batch; ``floor_known``: ``floor`` is one that tree contains;
        ``prefetch_floor``: read the floor's tiles in the first round trip; ``verified``: notes
        already verified with ``trusted`` (``audit.log.check_head``).

        ``own_head`` (with ``known`` and ``floor_known``): the caller expects the head to be
        still ``known`` (its last batch found its own head). The batch is then built before the
        lock and sent as one guarded statement that takes the lock, alone in its transaction:
        **one** round trip (``audit.log.append_on_known_head``); if the head is not ``known``
        that statement wrote nothing and the batch takes the full path. ``prepared``: the
        drafts' ``prepare_leaves``, when the caller made them already. The full path (a first
        batch, a head that moved) is a round trip per statement: BEGIN, the lock, the head read,
        the one statement of writes, COMMIT (plus one to read tiles when the floor is older than
        the head, it has to be checked and ``prefetch_floor`` was not given). Not in pipeline
        mode: there, a statement larger than the socket's send buffer hung for good (psycopg
        waiting for the commit, PostgreSQL for the rest of the statement;
        tests/audit/test_append_large_batch.py), and the full path is rare enough that its
        round trips do not matter.
        """
        signer = signer or log_signer(key, origin or self.log_origin())
        done = tried = None
        if prepared is None:  # the bodies but seq, time and key id: before the lock
            prepared = prepare_leaves(drafts)
        with self._append_connection() as conn:
            if own_head and known is not None and floor_known:
                # Committed when it returns: the batch, or nothing when the guard did not hold.
                done = append_on_known_head(self._kept_cursor(conn), prepared, signer=signer, key_id=key.key_id,
                                            known=known, now=self._clock())
                tried = done is not None
            if done is None:
                done = append_batch_leaves(conn, drafts, signer=signer, key_id=key.key_id, trusted=trusted,
                                           now=self._clock(), origin=origin, floor=floor, known=known,
                                           floor_known=floor_known, prefetch_floor=prefetch_floor,
                                           verified=verified, prepared=prepared)
                conn.commit()  # only now do receipts mean anything
        return BatchResult(appended=done, state=done.state or HeadState(done.checked.row), on_known_head=tried)

    def append_v1_batch(
        self,
        skeletons: Sequence[Mapping[str, Any]],
        *,
        key: SigningKey,
        checkpoints: CheckpointPolicy | None = None,
    ) -> V1BatchResult:
        """Append prepared entries to the **v1** hash chain (``audit_entries``) in one transaction.

        Legacy: the service writes the v2 log (:meth:`append_batch`). Kept so that a v1 chain
        can still be built (migration tests, fixtures) and verified.

        Returns a receipt per entry, or the :class:`AuditEntryInvalid` that kept that one entry
        out (the others are appended). Raises :class:`AuditUnavailable` if the transaction did
        not commit: then nothing of the batch was recorded.
        """
        outcomes: list[Receipt | AuditEntryInvalid] = []
        checkpoint: SignedCheckpoint | None = None
        # Everything but seq, time, key and link is derived before the lock is taken.
        derived = [queryable_columns(plain(skeleton)) for skeleton in skeletons]
        # Two round trips in all (pipeline mode): BEGIN + lock, then the inserts, the head, the
        # checkpoint and COMMIT together. The lock is held across only one of them, and under
        # load every round trip waits for two schedulers (PostgreSQL's and Python's GIL).
        with self._connection("appending audit entries") as conn, conn.pipeline():
            with conn.cursor() as cur:
                # (1) lock the chain head: appends are serialised across processes.
                cur.execute(SELECT_HEAD_FOR_APPEND_SQL)
                head, last_seq, last_at = _head_for_append(cur.fetchone())
                # (2) assign seq / time / prev_hash, build and sign.
                now = self._clock()
                recorded_at = max(now, head.recorded_at) if head.recorded_at else now
                seq, prev_hash = head.seq, head.head_hash
                rows: list[tuple[Any, ...]] = []
                for skeleton, columns in zip(skeletons, derived, strict=True):
                    try:
                        entry = build_entry(
                            skeleton,
                            seq=seq + 1,
                            prev_hash=prev_hash,
                            recorded_at=recorded_at,
                            key=key,
                        )
                    except AuditEntryInvalid as exc:
                        outcomes.append(exc)
                        continue
                    rows.append(_entry_row(entry, columns))
                    outcomes.append(entry.receipt())
                    seq, prev_hash = entry.seq, entry.entry_hash
                if rows:
                    # (3) insert with the derived columns.
                    cur.executemany(INSERT_ENTRY_SQL, rows)
                    # (4) move the head; checkpoint if due.
                    cur.execute(
                        UPDATE_HEAD_SQL,
                        {"seq": seq, "head_hash": prev_hash, "recorded_at": recorded_at},
                    )
                    if checkpoints is not None and checkpoints.due(
                        head_seq=seq, last_seq=last_seq, last_at=last_at, now=recorded_at
                    ):
                        checkpoint = self._insert_checkpoint(
                            cur, log_id=head.log_id, seq=seq, head_hash=prev_hash,
                            now=recorded_at, key=key,
                        )
            # (5) commit; only now do receipts mean anything.
            conn.commit()
        return V1BatchResult(outcomes=outcomes, checkpoint=checkpoint)

    def check_head(self, trusted: Sequence[Verifier], *, origin: str | None = None,
                   floor: Floor | None = None) -> LogHead:
        """The writer's start-up check (``audit.log.check_head``), in a transaction rolled back."""
        with self._connection("checking the log head") as conn:
            try:
                return check_head(conn, trusted, origin=origin, floor=floor).head
            finally:
                conn.rollback()

    def log_origin(self) -> str:
        """The v2 log's origin (the checkpoints' first line and the signing key's name)."""
        with self._connection("reading the log origin") as conn:
            return read_head(conn).origin

    def log_head(self) -> LogHead:
        with self._connection("reading the log head") as conn:
            return read_head(conn)

    def checkpoint(
        self, *, key: SigningKey, policy: CheckpointPolicy | None = None, force: bool = False
    ) -> SignedCheckpoint | None:
        """Sign and store a checkpoint of the current head if ``policy`` says it is due
        (or ``force``, as long as the head moved since the last one)."""
        policy = policy or CheckpointPolicy()
        checkpoint: SignedCheckpoint | None = None
        with self._connection("signing a checkpoint") as conn:
            with conn.cursor() as cur:
                cur.execute(SELECT_HEAD_FOR_APPEND_SQL)
                head, last_seq, last_at = _head_for_append(cur.fetchone())
                now = self._clock()
                moment = max(now, head.recorded_at) if head.recorded_at else now
                due = head.seq > last_seq and (force or policy.due(
                    head_seq=head.seq, last_seq=last_seq, last_at=last_at, now=moment))
                if due:
                    checkpoint = self._insert_checkpoint(
                        cur, log_id=head.log_id, seq=head.seq, head_hash=head.head_hash,
                        now=moment, key=key,
                    )
            conn.commit()
        return checkpoint

    @staticmethod
    def _insert_checkpoint(
        cur: psycopg.Cursor[Any], *, log_id: str, seq: int, head_hash: bytes, now: datetime,
        key: SigningKey,
    ) -> SignedCheckpoint:
        checkpoint = build_checkpoint(
            log_id=log_id, seq=seq, head_hash=head_hash, recorded_at=now, key=key
        )
        cur.execute(
            INSERT_CHECKPOINT_SQL,
            {
                "seq": checkpoint.seq,
                "head_hash": checkpoint.head_hash,
                "recorded_at": checkpoint.recorded_at,
                "key_id": checkpoint.key_id,
                "body": checkpoint.body,
                "signature": checkpoint.signature,
            },
        )
        return checkpoint

    # -- read ----------------------------------------------------------------------------------

    def head(self) -> ChainHeadState:
        with self._connection("reading the chain head") as conn:
            return head_state(conn.execute(SELECT_HEAD_SQL).fetchone())

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self._connection("reading the latest checkpoint") as conn:
            row = conn.execute(SELECT_LATEST_CHECKPOINT_SQL).fetchone()
        return SignedCheckpoint.from_body(bytes(row[0]), bytes(row[1])) if row else None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[StoreSnapshot]:
        """A consistent read-only view (REPEATABLE READ) for verification and export."""
        with self._connection("reading the audit trail") as conn:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()  # SET TRANSACTION must be the first statement of a transaction
            conn.execute(SET_SNAPSHOT_SQL)
            try:
                yield StoreSnapshot(conn)
            finally:
                if not conn.closed:
                    conn.rollback()

    @contextlib.contextmanager
    def log_statement(self) -> Iterator[psycopg.Connection[Any]]:
        """An idle connection for a read that is one consistent statement (an inclusion or
        consistency proof: ``audit.log`` runs it outside a transaction, saving the snapshot's
        BEGIN and ROLLBACK round trips)."""
        with self._connection("reading the audit log") as conn:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            try:
                yield conn
            finally:
                if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.rollback()

    @contextlib.contextmanager
    def log_snapshot(self) -> Iterator[psycopg.Connection[Any]]:
        """A read-only REPEATABLE READ connection on the v2 log (proofs, tiles, packs)."""
        with self._connection("reading the audit log") as conn:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            conn.execute(SET_SNAPSHOT_SQL)
            try:
                yield conn
            finally:
                if not conn.closed:
                    conn.rollback()

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _append_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection appends run on, kept between them (``APPEND_IDLE_SECONDS``); one
        append at a time. On any error it is dropped (invalidated if broken), so the next append
        starts from a pinged connection of the pool."""
        with self._append_lock, map_errors("appending audit entries"):
            held, self._append_held = self._append_held, None
            if held is not None and time.monotonic() - self._append_used > APPEND_IDLE_SECONDS:
                with contextlib.suppress(Exception):
                    held.close()  # back to the pool, which pings it at the next checkout
                held = None
            if held is None:
                held = self._engine.raw_connection()
            conn = held.driver_connection
            assert isinstance(conn, psycopg.Connection)
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):
                    if _broken(conn):
                        held.invalidate()  # do not hand a dead connection to the next caller
                    held.close()  # rolled back by the pool
                raise
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with contextlib.suppress(Exception):
                    held.close()
                return
            self._append_held = held
            self._append_used = time.monotonic()

    def _kept_cursor(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
        """One cursor per appending connection (under the append lock): running the same statement
        on it again skips looking up its parameters' adapters (psycopg keeps them per cursor)."""
        kept = self._append_cursor
        if kept is None or kept.connection is not conn:
            kept = self._append_cursor = conn.cursor()
        return kept

    @contextlib.contextmanager
    def _connection(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled psycopg connection; any driver error becomes :class:`AuditUnavailable`.

        The connection goes back to the pool rolled back unless the caller committed.
        """
        with map_errors(doing):
            proxied = self._engine.raw_connection()
            try:
                conn = proxied.driver_connection
                assert isinstance(conn, psycopg.Connection)
                yield conn
            except BaseException:
                if _broken(proxied.driver_connection):
                    proxied.invalidate()  # do not hand a dead connection to the next caller
                raise
            finally:
                with contextlib.suppress(Exception):
                    proxied.close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Load JSONB with orjson (faster; same values as the stdlib), and compress the large
    value this session stores (the signed body) with lz4 rather than pglz: several times
    cheaper for PostgreSQL on every append. Servers built without lz4 keep pglz. Smaller GIN
    pending lists (``SET_GIN_PENDING_SQL``)."""
    if isinstance(dbapi_connection, psycopg.Connection):
        set_json_loads(orjson.loads, dbapi_connection)
        dbapi_connection.execute(SET_GIN_PENDING_SQL)
        dbapi_connection.commit()
        try:
            dbapi_connection.execute(SET_LZ4_SQL)
        except psycopg.Error:
            dbapi_connection.rollback()
        else:
            dbapi_connection.commit()


def _broken(conn: Any) -> bool:
    return isinstance(conn, psycopg.Connection) and (
        conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.UNKNOWN
    )


def _head_for_append(row: Sequence[Any] | None) -> tuple[ChainHeadState, int, datetime | None]:
    """The head and the newest checkpoint's seq (0: none yet) and time."""
    head = head_state(row[:4] if row else None)  # raises if the row is missing
    assert row is not None
    return head, int(row[4] or 0), row[5]


def _entry_row(entry: SignedEntry, columns: Mapping[str, Any]) -> tuple[Any, ...]:
    """The inserted row: ``columns`` derived from the entry's fields (``queryable_columns``), the
    chain fields from the entry itself."""
    return (
        entry.seq,
        entry.recorded_at,
        columns["kind"],
        columns["decision_id"],
        columns["app_id"],
        columns["caller_key_id"],
        columns["outcome"],
        columns["policy_revision"],
        columns["engine"],
        entry.key_id,
        entry.prev_hash,
        columns["regulatory_tier"],
        columns["sector"],
        columns["models_allowed"],
        columns["models_denied"],
        columns["reason_codes"],
        columns["provenances_allowed"],
        entry.entry_hash,
        entry.signature,
        entry.body,
    )

"""The v2 log in PostgreSQL: append a batch of leaves with its signed checkpoint in one
transaction; read leaves, blobs, checkpoints, tiles and proofs back.

Appending (:func:`append_leaves`, called by ``AuditStore.append_batch``) in one transaction:

1. lock the head row (``audit_tlog_head … FOR UPDATE``); the next statement reads the newest
   stored checkpoint, the highest stored seq and the v1 chain head;
2. refuse (:class:`LogStateMismatch`, a 503) unless the stored head — size, root, frontier, the
   leaves actually stored — equals the newest checkpoint, and that checkpoint's note verifies
   with a trusted key: the writer never signs over a tree it did not verify. A writer may pass
   the :class:`HeadState` its previous batch committed (``known``): when the locked row and
   newest checkpoint are byte for byte that state, and the highest stored seq is still its
   size, the signature and frontier were already checked (or made) by this writer and are not
   checked again, nor the floor when the writer knows that tree contains it (``floor_known``;
   docs/audit.md, "What the writer checks before each batch");
3. build the leaves (seq, recorded_at, key_id spliced into bodies prepared before the lock:
   :func:`prepare_leaves`), hash them, grow the frontier, sign the checkpoint; in a database
   holding a v1 chain the first leaf is a ``v1_head`` leaf recording the v1 chain head (seq and
   entry hash);
4. in one statement (:data:`WRITE_BATCH_SQL`): insert the blobs (``ON CONFLICT DO NOTHING``:
   each distinct one is stored once), the leaves, the complete subtrees at levels 8, 16, … (the
   tlog-tiles above level 0), one signed checkpoint, and move the head;
5. commit. Receipts (with inclusion proofs against that checkpoint, computed from the old
   frontier and the batch, no reads) exist only after the commit returned.

A writer that expects its own head (:func:`append_on_known_head`) does steps 3 and 4 on the row
its last batch left before any lock, and sends them as one statement that takes the lock and is
guarded by step 2's check of a row it knows, alone in its transaction: one round trip, the commit
included; if the guard does not hold nothing is written and the batch takes the path above.

Storage of the tree: level-0 tiles are the leaves' ``leaf_hash``; ``audit_tlog_nodes`` holds the
hashes of tiles 1, 2, … (one row per 256 leaves, per 65,536, …). Any node is in a tile or the
fold of at most 128 hashes of one tile, so a proof reads ⌈log₂(n)/8⌉ + 1 tiles at most, each
one index range scan (:class:`StoredTiles`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import struct
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg

from .canonical import _member_order, canonical_bytes, format_time, plain
from .entry import BLOB_FACETS, LEAF_COLUMNS, STANDARD_FIELDS, LeafDraft, leaf_columns
from .errors import AuditEntryInvalid, AuditUnavailable
from .tlog.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint, open_checkpoint
from .tlog.errors import TlogError
from .tlog.errors import ProofRequestError, TlogFormatError
from .tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    HashReader,
    Node,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    root_hash,
    root_plan,
)
from .tlog.note import Signer, Verifier
from .tlog.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    TileHashReader,
    TileInterior,
    TileKey,
    encode_entry_bundle,
    fold_lookups,
    parse_tile_path,
    range_lookups,
    tile_for_size,
    tiles_for_size,
    tiles_of,
)

log = logging.getLogger(__name__)

__all__ = ["Floor", "HeadState", "LogHead", "LogReceipt", "LogStateMismatch", "StoredTiles", "VerifiedNotes",
           "append_leaves", "append_on_known_head", "check_head", "last_leaf_proof", "opened", "read_head"]

_NUL_ESCAPE = b"\\u0000"

# Two statements: the lock first, then what is checked against it. Under READ COMMITTED a
# statement that waited for the lock sees the locked row's newest version but reads everything
# else with the snapshot it started with, which may predate the previous batch's commit.
LOCK_HEAD_SQL = "SELECT 1 FROM audit_tlog_head WHERE id = 1 FOR UPDATE"
SELECT_HEAD_FOR_APPEND_SQL = (
    "SELECT h.origin, h.size, h.root, h.frontier, h.recorded_at, "
    "(SELECT max(seq) FROM audit_leaves), c.size, c.root, c.note, v.seq, v.head_hash "
    "FROM audit_tlog_head h "
    "LEFT JOIN LATERAL (SELECT size, root, note FROM audit_tlog_checkpoints ORDER BY size DESC LIMIT 1) c ON true "
    "LEFT JOIN audit_chain_head v ON v.id = 1 "
    "WHERE h.id = 1"
)
SELECT_HEAD_SQL = "SELECT origin, size, root, frontier, recorded_at FROM audit_tlog_head WHERE id = 1"
# A batch's writes as one statement (in pipeline mode psycopg waits on the socket once per
# statement sent: one here, not one per row): the blobs (each distinct one stored once), the
# leaves, the tiles above level 0, the checkpoint and the head. Rows travel as one JSON document
# per table (hashes in hex) and the large values (leaf bodies, blob data) as a binary bytea array
# zipped with it: psycopg adapts a list in Python, element type first, so one list per column
# cost ~15 µs each — with the head lock already taken by the statement sent before.
# ``{guard}`` is a query of one boolean ``ok`` every write depends on; the statement returns
# it and how many head rows it moved (0 or 1). Data-modifying CTEs all see the statement's
# snapshot, so the guard reads the log as it was before these writes.
_LEAF_ARRAYS = ("seq", "kind", "decision_id", "app_id", "outcome", "input_sha256", "result_sha256",
                "leaf_hash", "body")
_LEAF_TYPES = {"seq": "bigint", "kind": "text", "decision_id": "uuid", "app_id": "text", "outcome": "text",
               "input_sha256": "text", "result_sha256": "text", "leaf_hash": "text"}  # hashes: hex
assert tuple(c for c in LEAF_COLUMNS if c != "recorded_at") == _LEAF_ARRAYS[:-2], "audit_leaves columns changed"
_FACET_TYPES = {"regulatory_tier": "text", "sector": "text", "dangerous_capability": "text",
                "models_allowed": "text[]", "models_denied": "text[]", "reason_codes": "text[]",
                "provenances_allowed": "text[]", "policy_revision": "text"}
assert tuple(_FACET_TYPES) == BLOB_FACETS, "audit_blobs facets changed"
WRITE_BATCH_SQL = (
    "WITH g AS ({guard}), "
    f"b AS (INSERT INTO audit_blobs (sha256, data, {', '.join(BLOB_FACETS)}) "
    f"SELECT decode(x.sha256, 'hex'), x.unnest, {', '.join(f'x.{k}' for k in BLOB_FACETS)} "
    f"FROM ROWS FROM (jsonb_to_recordset(%(blobs)s::jsonb) AS (sha256 text, "
    f"{', '.join(f'{k} {t}' for k, t in _FACET_TYPES.items())}), unnest(%(blob_data)b::bytea[])) AS x "
    f"WHERE (SELECT ok FROM g) ON CONFLICT (sha256) DO NOTHING), "
    f"l AS (INSERT INTO audit_leaves ({', '.join(LEAF_COLUMNS)}, leaf_hash, body) "
    "SELECT x.seq, %(recorded_at)s::timestamptz, x.kind, x.decision_id, x.app_id, x.outcome, "
    "decode(x.input_sha256, 'hex'), decode(x.result_sha256, 'hex'), decode(x.leaf_hash, 'hex'), x.unnest "
    f"FROM ROWS FROM (jsonb_to_recordset(%(leaves)s::jsonb) AS "
    f"({', '.join(f'{c} {t}' for c, t in _LEAF_TYPES.items())}), unnest(%(bodies)b::bytea[])) AS x "
    "WHERE (SELECT ok FROM g)), "
    "n AS (INSERT INTO audit_tlog_nodes (level, idx, hash) "
    "SELECT x.level, x.idx, decode(x.hash, 'hex') "
    "FROM jsonb_to_recordset(%(nodes)s::jsonb) AS x(level smallint, idx bigint, hash text) "
    "WHERE (SELECT ok FROM g)), "
    "c AS (INSERT INTO audit_tlog_checkpoints (size, root, note, created_at) "
    "SELECT %(size)s, %(root)s, %(note)s, %(recorded_at)s WHERE (SELECT ok FROM g)), "
    "h AS (UPDATE audit_tlog_head SET size = %(size)s, root = %(root)s, frontier = %(frontier)s, "
    "recorded_at = %(recorded_at)s WHERE id = 1 AND (SELECT ok FROM g) RETURNING 1) "
    "SELECT (SELECT ok FROM g), (SELECT count(*) FROM h)"
)
NO_GUARD_SQL = "SELECT true AS ok"  # the head was checked by the statements before (check_head)
# The writer's own head: the row and newest checkpoint exactly as its last batch left them (the
# columns of SELECT_HEAD_FOR_APPEND_SQL but max(seq)), and the leaves stored ending at its size.
# The head row is locked by the guard itself (``k``): the batch is one statement, run alone in
# its transaction. Under READ COMMITTED a row locked after waiting for another transaction is
# its newest committed version (PostgreSQL re-reads it), while the rest of the statement reads
# the snapshot taken before the wait: so the guard compares the *newest* head row with the one
# this writer left. Every batch moves the head row (its size grows), so any batch committed
# since this writer's — before the snapshot or during the wait — makes the row differ and the
# guard fail; when the row is still the writer's, nothing was appended since, and the snapshot
# (taken after this writer's own last commit, on the same connection) holds the newest
# checkpoint and leaves as the lock left them.
GUARD_PARAMS = tuple(f"known_{i}" for i in range(10))
KNOWN_HEAD_GUARD_SQL = (
    "SELECT coalesce((k.origin, k.size, k.root, k.frontier, k.recorded_at, c.size, c.root, c.note, v.seq, "
    "v.head_hash) IS NOT DISTINCT FROM (%(known_0)s::text, %(known_1)s::bigint, %(known_2)s::bytea, "
    "%(known_3)s::bytea, %(known_4)s::timestamptz, %(known_5)s::bigint, %(known_6)s::bytea, "
    "%(known_7)s::text, %(known_8)s::bigint, %(known_9)s::bytea) "
    "AND (SELECT max(seq) FROM audit_leaves) IS NOT DISTINCT FROM nullif(%(known_1)s::bigint, 0), false) AS ok "
    "FROM k "
    "LEFT JOIN LATERAL (SELECT size, root, note FROM audit_tlog_checkpoints ORDER BY size DESC LIMIT 1) c ON true "
    "LEFT JOIN audit_chain_head v ON v.id = 1"
)
KNOWN_HEAD_BATCH_SQL = WRITE_BATCH_SQL.format(guard=KNOWN_HEAD_GUARD_SQL).replace(
    "WITH g AS (", "WITH k AS (SELECT origin, size, root, frontier, recorded_at FROM audit_tlog_head "
    "WHERE id = 1 FOR UPDATE), g AS (", 1)
# KNOWN_HEAD_BATCH_SQL for libpq: its named parameters numbered in order of first use, each
# with its type (oid) and format (0 text, 1 binary), and encoded by that type.
_TEXT, _BIGINT, _BYTEA, _TIMESTAMPTZ, _BYTEA_ARRAY = 25, 20, 17, 1184, 1001
_PARAM_TYPES = {"blobs": _TEXT, "blob_data": _BYTEA_ARRAY, "leaves": _TEXT, "bodies": _BYTEA_ARRAY,
                "nodes": _TEXT, "recorded_at": _TIMESTAMPTZ, "size": _BIGINT, "root": _BYTEA, "note": _TEXT,
                "frontier": _BYTEA, **dict(zip(GUARD_PARAMS, (_TEXT, _BIGINT, _BYTEA, _BYTEA, _TIMESTAMPTZ, _BIGINT,
                                                              _BYTEA, _TEXT, _BIGINT, _BYTEA), strict=True))}
_PARAM_FORMATS = {_TEXT: 0, _BIGINT: 0, _TIMESTAMPTZ: 0, _BYTEA: 1, _BYTEA_ARRAY: 1}


def _numbered(sql: str) -> tuple[tuple[str, ...], bytes]:
    """The parameters' names in number order and the statement with ``$n`` for ``%(name)s``."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${names.setdefault(match.group(1), len(names) + 1)}"

    text = re.sub(r"%\((\w+)\)[sb]", number, sql)
    assert "%" not in text.replace("%%", ""), "a parameter not named"
    return tuple(names), text.replace("%%", "%").encode()


_KNOWN_HEAD_ORDER, _KNOWN_HEAD_LIBPQ = _numbered(KNOWN_HEAD_BATCH_SQL)
_KNOWN_HEAD_NAME = b"clearance_known_head_batch"
_KNOWN_HEAD_TYPES = [_PARAM_TYPES[name] for name in _KNOWN_HEAD_ORDER]
_KNOWN_HEAD_FORMATS = [_PARAM_FORMATS[t] for t in _KNOWN_HEAD_TYPES]


def _known_head_values(params: Mapping[str, Any]) -> list[bytes | None]:
    """The parameters of :data:`KNOWN_HEAD_BATCH_SQL` as libpq takes them (``_KNOWN_HEAD_TYPES``)."""
    values: list[bytes | None] = []
    for name, oid in zip(_KNOWN_HEAD_ORDER, _KNOWN_HEAD_TYPES, strict=True):
        value = params[name]
        if value is None:
            values.append(None)
        elif oid == _BYTEA:
            values.append(bytes(value))
        elif oid == _BYTEA_ARRAY:
            parts = [_ARRAY_HEADER.pack(1, 0, _BYTEA, len(value), 1)]  # PostgreSQL's binary array
            for item in value:
                parts += (len(item).to_bytes(4, "big"), item)
            values.append(b"".join(parts))
        elif oid == _TIMESTAMPTZ:
            if value.tzinfo is None:  # never sent as the server's local time
                raise ValueError(f"{name}: a timestamp without a time zone")
            values.append(value.isoformat().encode())
        elif oid == _BIGINT:
            values.append(str(int(value)).encode())
        else:
            text = str(value)
            if "\x00" in text:  # libpq would cut a text parameter there; psycopg refuses it
                raise ValueError(f"{name}: text with a NUL character")
            values.append(text.encode("utf-8"))
    return values


LEAF_TILE_SQL = (
    "SELECT coalesce(string_agg(leaf_hash, ''::bytea ORDER BY seq), ''::bytea) FROM audit_leaves "
    "WHERE seq > %s AND seq <= %s"
)
NODE_TILE_SQL = (
    "SELECT coalesce(string_agg(hash, ''::bytea ORDER BY idx), ''::bytea) FROM audit_tlog_nodes "
    "WHERE level = %s AND idx >= %s AND idx < %s"
)


class LogStateMismatch(AuditUnavailable):
    """The stored head is not what the newest trusted checkpoint says: a leaf or head written
    around the writer, or a rolled-back tail. The writer refuses to extend the tree."""


@dataclass(frozen=True)
class LogHead:
    origin: str
    size: int
    root: bytes
    frontier: Frontier
    recorded_at: datetime | None


def read_head(conn: psycopg.Connection[Any]) -> LogHead:
    row = conn.execute(SELECT_HEAD_SQL).fetchone()
    if row is None:
        raise AuditUnavailable("audit_tlog_head has no row: run `clearance db upgrade`")
    return LogHead(row[0], int(row[1]), bytes(row[2]), Frontier.from_bytes(bytes(row[3])), row[4])


@dataclass(frozen=True)
class LogReceipt:
    """What a caller gets once its leaf has committed: the decision's ``audit`` field
    (``audit.tlog.receipt.Receipt`` form, checked by ``verify_receipt``)."""

    seq: int
    leaf_hash: str
    recorded_at: str
    entry: dict[str, Any]
    checkpoint: str
    inclusion_proof: tuple[str, ...]
    decision_id: str | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf_hash": self.leaf_hash, "recorded_at": self.recorded_at,
                "entry": self.entry, "checkpoint": self.checkpoint,
                "inclusion_proof": list(self.inclusion_proof)}


def batch_proofs(old: Frontier, leaves: Sequence[bytes]) -> list[list[bytes]]:
    """The audit path of each of ``leaves`` appended to the tree whose right edge is ``old``, in
    the tree of ``old.size + len(leaves)`` leaves (RFC 6962 PATH, bottom to top), with no read.

    One walk down the new tree's root split (RFC 6962: at the largest power of two below the
    width) into the ranges that hold new leaves: a range wholly of old leaves it meets is one of
    ``old``'s edge subtrees (the walk enters a range only at a boundary of that edge), and each
    range's hash becomes the sibling of every new leaf in the other half. Every node is hashed
    once and each proof grows by list appends: about ten times cheaper for a batch of ten than a
    proof plan per leaf (``inclusion_proof`` over a memo of the batch's nodes)."""
    start, end = old.size, old.size + len(leaves)
    edge: dict[int, bytes] = {}
    first = 0
    for level, value in zip([lv for lv in range(start.bit_length() - 1, -1, -1) if start >> lv & 1],
                            old.hashes, strict=True):
        edge[first] = value
        first += 1 << level
    proofs: list[list[bytes]] = [[] for _ in leaves]

    def walk(lo: int, hi: int) -> bytes:
        if hi <= start:
            return edge[lo]
        if hi - lo == 1:
            return leaves[lo - start]
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))
        left, right = walk(lo, mid), walk(mid, hi)
        for j in range(max(lo, start) - start, mid - start):
            proofs[j].append(right)
        for j in range(max(mid, start) - start, hi - start):
            proofs[j].append(left)
        return node_hash(left, right)

    if leaves:
        walk(0, end)
    return proofs


class StoredTiles:
    """A :class:`HashReader` over the stored tree (tiles read from PostgreSQL).

    ``cache``: keep the tiles read (many proofs of one tree). Verification and the writer's
    checks read through it: what the database holds now. (The proof endpoints read tiles with
    :func:`inclusion` and :func:`consistency`, through the process's :class:`SharedTiles`.)
    """

    def __init__(self, conn: psycopg.Connection[Any], size: int, *, cache: bool = False) -> None:
        self._conn = conn
        self._size = size
        self._reader = TileHashReader(self.tile, size=size)
        self._cache: dict[Tile, bytes] | None = {} if cache else None  # many proofs of one tree

    def tile(self, tile: Tile) -> bytes:
        """The bytes of a hash tile (full or partial) as stored."""
        if self._cache is not None:
            found = self._cache.get(tile)
            if found is None:
                found = self._cache[tile] = self._read_tile(tile)
            return found
        return self._read_tile(tile)

    def _read_tile(self, tile: Tile) -> bytes:
        first = tile.index * TILE_WIDTH
        if tile.level == 0:
            row = self._conn.execute(LEAF_TILE_SQL, (first, first + tile.width)).fetchone()
        else:
            row = self._conn.execute(NODE_TILE_SQL, (TILE_HEIGHT * (tile.level or 0), first,
                                                     first + tile.width)).fetchone()
        return bytes(row[0]) if row else b""

    def read_hashes(self, nodes: Sequence[Node]) -> Sequence[bytes]:
        return self._reader.read_hashes(nodes)

    def prefetch(self, nodes: Sequence[Node]) -> int:
        """Read every tile ``nodes`` need in one statement with the log's current size, which it
        returns (:func:`_read_tiles`, the proof endpoints' statement)."""
        if self._cache is None:
            self._cache = {}
        wanted = [t for t in tiles_of(nodes, self._size) if t not in self._cache]
        head, contents = _read_tiles(self._conn, [(t.level or 0, t.index, t.width) for t in wanted])
        self._cache.update(zip(wanted, contents, strict=True))
        return head


def _joined(hashes: Sequence[bytes | None]) -> bytes:
    if None in hashes:  # NOT NULL columns: only a changed schema gets here
        raise TlogFormatError("tile", "a stored hash is NULL")
    return b"".join(hashes)  # type: ignore[arg-type]


class SharedTiles(MutableMapping[TileKey, TileInterior]):
    """Folded tiles kept for the proof endpoints and shared by the connections of one process
    (the app builds one at startup: ``api.services.Services.proof_tiles``): two bounded LRUs,
    one for level-0 tiles (one per 256 leaves: proofs of recent entries hit it) and one for the
    tiles above (one per 65,536 leaves or more: nearly every proof needs them).

    Safe because a stored tile is append-only: a complete tile never changes and a partial one
    is keyed with its width (:data:`~audit.tlog.tiles.TileKey`), so it is never taken for the
    complete tile it becomes; a :class:`TileInterior` is folded whole when built and never
    changes, so threads share it without a lock of its own. The trade-off: an insider who
    rewrites a stored hash after it was folded here is not reflected in the proofs this process
    serves (they stay those of the signed tree) until the entry is evicted or the process
    restarts; verification (``audit.logverify``) and the writer's checks never read through it,
    so they see the rewrite. One database per cache (:meth:`on` refuses another), so a process
    never mixes two databases' trees. Thread-safe: the auditor's threads share it.
    """

    LEAF_TILES = 256  # ~16 kB each when folded to the top
    UPPER_TILES = 1024

    def __init__(self) -> None:
        self._leaf: OrderedDict[TileKey, TileInterior] = OrderedDict()
        self._upper: OrderedDict[TileKey, TileInterior] = OrderedDict()
        self._lock = threading.Lock()
        self._database: tuple[bytes, bytes, bytes] | None = None

    def on(self, conn: psycopg.Connection[Any]) -> SharedTiles:
        """This cache, for proofs read on ``conn``: the first connection names the database."""
        pgconn = conn.pgconn
        database = (pgconn.host, pgconn.port, pgconn.db)
        with self._lock:
            if self._database is None:
                self._database = database
        if database != self._database:
            raise ValueError(f"these folded tiles are of database {self._database}, not {database}")
        return self

    def warm(self, conn: psycopg.Connection[Any], *, per_statement: int = 64) -> int:
        """Read and fold the current tree's tiles above level 0 that are not here yet (up to
        :attr:`UPPER_TILES`: the highest levels, then the newest), a statement per
        ``per_statement`` tiles; returns how many. For a process that serves proofs, at start:
        nearly every proof needs one of them, and each first use would cost that proof a second
        tile read and ~255 hashes (at 10M leaves: 154 tiles, ~4 % of the first 2,000 random proofs,
        enough to set their p99; docs/performance.md)."""
        shared = self.on(conn)
        size, _ = _read_tiles(conn, [])
        keys = sorted(((t.level or 0, t.index, t.width) for t in tiles_for_size(size) if t.level),
                      key=lambda key: (-key[0], -key[1]))[:self.UPPER_TILES]
        missing = [key for key in keys if key not in shared]
        for start in range(0, len(missing), per_statement):
            chunk = missing[start:start + per_statement]
            _, contents = _read_tiles(conn, chunk)
            for key, data in zip(chunk, contents, strict=True):
                shared[key] = TileInterior(Tile(*key), data)
        return len(missing)

    def _lru(self, key: TileKey) -> tuple[OrderedDict[TileKey, TileInterior], int]:
        return (self._leaf, self.LEAF_TILES) if key[0] == 0 else (self._upper, self.UPPER_TILES)

    def __getitem__(self, key: TileKey) -> TileInterior:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: TileKey, default: Any = None) -> Any:  # every lookup of a proof: no KeyError
        lru = self._leaf if key[0] == 0 else self._upper
        with self._lock:
            found = lru.get(key)
            if found is None:
                return default
            lru.move_to_end(key)
        return found

    def __setitem__(self, key: TileKey, interior: TileInterior) -> None:
        lru, bound = self._lru(key)
        with self._lock:
            lru[key] = interior
            lru.move_to_end(key)
            while len(lru) > bound:
                lru.popitem(last=False)

    def __delitem__(self, key: TileKey) -> None:
        with self._lock:
            del self._lru(key)[0][key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and key in self._lru(key)[0]

    def __iter__(self) -> Iterator[TileKey]:
        with self._lock:
            keys = [*self._leaf, *self._upper]
        yield from keys

    def __len__(self) -> int:
        return len(self._leaf) + len(self._upper)


@contextlib.contextmanager
def _one_statement(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Run the block's single statement outside a transaction when the connection is idle
    (a caller's open transaction, e.g. ``log_snapshot``'s, is left as it is)."""
    if conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        yield
        return
    conn.autocommit = True
    try:
        yield
    finally:
        conn.autocommit = False


@dataclass(frozen=True)
class Floor:
    """The newest checkpoint issued as the checkpoint file keeps it (``audit.checkpoint_file``):
    the stored tree must contain it — at least ``size`` leaves whose first ``size`` fold to
    ``root``."""

    size: int
    root: bytes
    source: str


@dataclass(frozen=True)
class HeadState:
    """The locked head row and newest checkpoint exactly as one batch of a writer left them
    (:func:`append_batch_leaves` returns it): the tree that writer checked or built
    itself. Its next batch passes it back (``known``) to skip what it already checked."""

    row: tuple[Any, ...]  # SELECT_HEAD_FOR_APPEND_SQL's columns without max(seq)
    # The row's head as the batch that left it built it (its frontier not parsed again from the
    # row's bytes by the next batch); None: parsed from ``row`` when needed.
    head: LogHead | None = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return int(self.row[1])


def _row_state(row: Sequence[Any]) -> tuple[Any, ...]:
    return (*row[:5], *row[6:])  # max(seq) is compared on its own, every batch


@dataclass(frozen=True)
class CheckedHead:
    """The head that passed the check (step 2), the v1 chain head, and the row it was read
    from; ``full``: whether the signature and frontier were checked this time (False: the row
    was the caller's ``known`` state, which it had checked or made)."""

    head: LogHead
    v1_seq: int
    v1_hash: bytes
    row: tuple[Any, ...]
    full: bool


def _floor_tiles(conn: psycopg.Connection[Any], floor: Floor) -> StoredTiles:
    """The tiles the floor's root folds from, read in one query."""
    reader = StoredTiles(conn, floor.size, cache=True)
    reader.prefetch(root_plan(floor.size).nodes)
    return reader


def _floor_problem(conn: psycopg.Connection[Any], head: LogHead, floor: Floor | None,
                   tiles: StoredTiles | None = None) -> str | None:
    if floor is None or floor.size == 0:
        return None
    if head.size < floor.size:
        return (f"the database's tree has size {head.size}, smaller than the checkpoint of size {floor.size} "
                f"in {floor.source} (a tail was cut or the head moved back)")
    if head.size == floor.size:
        stored = head.root
    else:
        stored = root_hash(tiles or _floor_tiles(conn, floor), floor.size)
    if stored != floor.root:
        return (f"the database's tree of size {floor.size} has root {stored.hex()}, the checkpoint of size "
                f"{floor.size} in {floor.source} says {floor.root.hex()} (the stored tree was rewritten)")
    return None


def _head_of(row: Sequence[Any]) -> LogHead:
    origin, size, root, frontier_bytes, recorded_at = row[:5]
    return LogHead(origin, int(size), bytes(root), Frontier.from_bytes(bytes(frontier_bytes)), recorded_at)


def _checked_head(row: Sequence[Any], trusted: Sequence[Verifier], *, expected_origin: str | None = None,
                  conn: psycopg.Connection[Any] | None = None, floor: Floor | None = None,
                  known: HeadState | None = None, floor_known: bool = False,
                  tiles: StoredTiles | None = None, verified: VerifiedNotes | None = None,
                  floor_in_tree: bool = False) -> CheckedHead:
    """Step 2: the head, after checking it is the newest trusted checkpoint, under
    ``expected_origin`` (when given), containing ``floor``; also the v1 head.

    With ``known`` equal to the row (all but max(seq)), the leaves actually stored are still
    compared with the head's size, but not the signature and frontier: the rest of the row is
    what the caller checked or wrote itself. The floor is then checked unless ``floor_known``:
    the caller knows that tree contains it (``audit.writer``). ``floor_in_tree``: this row's
    tree was shown to contain the floor (:func:`_floor_in_tree`), which is not checked again."""
    origin, size, root, frontier_bytes, recorded_at, max_seq, c_size, c_root, note, v1_seq, v1_hash = row
    state = _row_state(row)
    head = _head_of(row)
    stored = int(max_seq or 0)
    problems = []
    full = known is None or known.row != state
    floor_checked = (full or not floor_known) and not floor_in_tree
    if expected_origin is not None and head.origin != expected_origin:
        problems.append(f"the log's origin in the database is {head.origin!r}, CLEARANCE_LOG_ORIGIN is "
                        f"{expected_origin!r}")
    if stored != head.size:
        problems.append(f"the leaves stored end at seq {stored}, the head says size {head.size}")
    if full and (head.frontier.size != head.size or head.frontier.root() != head.root):
        problems.append(f"the head's frontier (size {head.frontier.size}) does not give its root")
    if not full:
        pass  # the row is this writer's own: its note was verified, or signed, by this writer
    elif note is None:
        if head.size != 0:
            problems.append(f"no checkpoint is stored for a head of size {head.size}")
    else:
        try:
            signed = opened(note, trusted, origin=head.origin, verified=verified)
        except TlogError as exc:
            problems.append(f"the newest checkpoint (size {c_size}) does not verify with a trusted key: {exc}")
        else:
            if (signed.size, signed.root_hash) != (head.size, head.root) or int(c_size) != head.size \
                    or bytes(c_root) != head.root:
                problems.append(f"the newest trusted checkpoint is of size {signed.size}, the head of size "
                                f"{head.size}")
    if floor_checked and conn is not None and not problems:
        found = _floor_problem(conn, head, floor, tiles)
        if found:
            problems.append(found)
    if problems:
        message = "the audit log refuses to append: " + "; ".join(problems)
        log.error(message)
        raise LogStateMismatch(message)
    return CheckedHead(head, int(v1_seq or 0), bytes(v1_hash) if v1_hash is not None else bytes(32), state, full)


def check_head(conn: psycopg.Connection[Any], trusted: Sequence[Verifier], *, origin: str | None = None,
               floor: Floor | None = None, known: HeadState | None = None,
               floor_known: bool = False, prefetch_floor: bool = False,
               verified: VerifiedNotes | None = None) -> CheckedHead:
    """Lock the head row and check it (step 2): raises :class:`LogStateMismatch` naming the
    sizes. The writer calls it at start-up (then rolls back) and in every batch of the full
    path. The head read carries what the floor check needs when ``prefetch_floor`` (a caller
    that expects to check the floor: with several writers, every batch after another's): with
    ``known``, the hashes of the leaves stored since it (the
    floor from what changed: :func:`_floor_in_tree`), else the floor's tiles."""
    conn.execute(LOCK_HEAD_SQL)
    since = prefetch_floor and known is not None and floor is not None and floor.size > 0
    if since:
        assert known is not None
        cursor = conn.execute(SELECT_HEAD_AND_LEAVES_SQL, {"after": known.size, "most": LEAVES_SINCE_MAX})
    else:
        cursor = conn.execute(SELECT_HEAD_FOR_APPEND_SQL)
    tiles = _floor_tiles(conn, floor) if prefetch_floor and not since and floor is not None and floor.size else None
    row = cursor.fetchone()
    if row is None:
        raise AuditUnavailable("audit_tlog_head has no row: run `clearance db upgrade`")
    in_tree = False
    if since:
        assert known is not None
        row, appended = row[:-1], row[-1]
        in_tree = _floor_in_tree(known, row, appended, floor, floor_known=floor_known)
    return _checked_head(row, trusted, expected_origin=origin, conn=conn, floor=floor, known=known,
                         floor_known=floor_known, tiles=tiles, verified=verified, floor_in_tree=in_tree)


# The head with the hashes of the leaves stored after the size a writer knows, in seq order
# (NULL when there are none, or more than LEAVES_SINCE_MAX: then the floor's tiles are read).
LEAVES_SINCE_MAX = 4096
SELECT_HEAD_AND_LEAVES_SQL = SELECT_HEAD_FOR_APPEND_SQL.replace(
    " FROM audit_tlog_head h ",
    ", (SELECT string_agg(leaf_hash, ''::bytea ORDER BY seq) FROM audit_leaves "
    "WHERE seq > %(after)s AND seq <= h.size AND h.size - %(after)s <= %(most)s) "
    "FROM audit_tlog_head h ", 1)
assert SELECT_HEAD_AND_LEAVES_SQL != SELECT_HEAD_FOR_APPEND_SQL


def _floor_in_tree(known: HeadState, row: Sequence[Any], appended: bytes | None, floor: Floor | None, *,
                   floor_known: bool) -> bool:
    """Whether the tree of the locked ``row`` contains ``floor``, settled from what changed since
    ``known`` (a writer's last tree) alone: the leaves stored after it (``appended``) must fold
    from its frontier to the row's frontier — so the row's tree extends ``known``'s, which
    contains the floor when ``floor_known`` — or, for a floor between the two sizes, give the
    floor's root at its size on the way. False: not settled so (no leaf or too many since, a
    floor older than ``known`` not known to be in it, a fold that does not match): the floor is
    then checked from the tiles, as without ``known``. The rest of the row (its frontier
    against its root, the signed checkpoint) is checked by :func:`_checked_head` as always."""
    if floor is None or floor.size == 0 or appended is None:
        return False
    old = known.head.frontier if known.head is not None else Frontier.from_bytes(bytes(known.row[3]))
    size, appended = int(row[1]), bytes(appended)
    if size <= old.size or len(appended) != (size - old.size) * HASH_SIZE or old.size != known.size:
        return False
    hashes = [appended[i:i + HASH_SIZE] for i in range(0, len(appended), HASH_SIZE)]
    if floor_known:
        grown = old.extend(hashes)
    elif old.size < floor.size <= size:
        upto = old.extend(hashes[:floor.size - old.size])
        if upto.root() != floor.root:
            return False
        grown = upto.extend(hashes[floor.size - old.size:])
    else:
        return False
    return grown.to_bytes() == bytes(row[3])


class VerifiedNotes:
    """Signed notes that verified with one fixed set of trusted keys (a writer's pinned keys),
    newest kept: the checkpoint file's note and the newest stored checkpoint are often the same
    note (with several workers, the one another worker just signed), and verifying the same bytes
    with the same keys again gives the same answer. The origin is still compared every time."""

    KEPT = 32

    def __init__(self) -> None:
        self._notes: OrderedDict[str, SignedCheckpoint] = OrderedDict()

    def opened(self, note: str, trusted: Sequence[Verifier], *, origin: str | None = None) -> SignedCheckpoint:
        """``open_checkpoint(note, trusted, origin=origin)``, verified once per note (always with
        the same ``trusted``); the origin is compared every time."""
        signed = self._notes.get(note)
        if signed is None or (origin is not None and signed.origin != origin):
            signed = open_checkpoint(note, trusted, origin=origin)
            self._notes[note] = signed
        self._notes.move_to_end(note)
        while len(self._notes) > self.KEPT:
            self._notes.popitem(last=False)
        return signed


def opened(note: str, trusted: Sequence[Verifier], *, origin: str | None = None,
           verified: VerifiedNotes | None = None) -> SignedCheckpoint:
    """``open_checkpoint(note, trusted, origin=origin)``, through ``verified`` when given: the
    stored head's note (:func:`check_head`) and the checkpoint file's (``audit.checkpoint_file``)."""
    if verified is None:
        return open_checkpoint(note, trusted, origin=origin)
    return verified.opened(note, trusted, origin=origin)


_SPLICED = ("seq", "recorded_at", "key_id")  # the members only the head lock decides (key_id: per batch)


@dataclass(frozen=True, slots=True)
class PreparedLeaf:
    """A leaf built as far as it can be before the head lock: its body's RFC 8785 members in
    order (``canonical_object``'s parts), the three spliced in under the lock only named yet
    (``at``: their places), and its columns but ``seq``."""

    draft: LeafDraft | None
    parts: tuple[bytes, ...]
    at: tuple[int, int, int]
    columns: tuple[Any, ...]  # _LEAF_ARRAYS[1:-2]

    def body(self, seq: bytes, recorded_at: bytes, key_id: bytes) -> bytes:
        """``canonical_bytes`` of the members with these (canonical) seq, time and key id."""
        parts = list(self.parts)
        for place, value in zip(self.at, (seq, recorded_at, key_id), strict=True):
            parts[place] += value
        return b"{" + b",".join(parts) + b"}"


def prepare_leaf(members: Mapping[str, Any], draft: LeafDraft | None = None) -> PreparedLeaf:
    """Raises :class:`AuditEntryInvalid` for a member that is not JSON or holds a NUL."""
    names = tuple(dict.fromkeys([*members, *_SPLICED]))
    parts: list[bytes] = []
    at: dict[str, int] = {}
    for name, encoded in _member_order(names):
        if name in _SPLICED:
            at[name] = len(parts)
            parts.append(encoded)
            continue
        part = encoded + canonical_bytes(members[name])
        if _NUL_ESCAPE in part:  # an escape never spans two members
            raise AuditEntryInvalid("an entry field contains a NUL character (\\u0000), which the log refuses")
        parts.append(part)
    columns = leaf_columns({**_plain_columns(members), "seq": None, "recorded_at": None})
    return PreparedLeaf(draft, tuple(parts), (at["seq"], at["recorded_at"], at["key_id"]),
                        tuple(columns[name] for name in _LEAF_ARRAYS[1:-2]))


def prepare_leaves(drafts: Sequence[LeafDraft]) -> list[PreparedLeaf | AuditEntryInvalid]:
    """:func:`prepare_leaf` of each draft, or why it cannot be a leaf (before the lock)."""
    prepared: list[PreparedLeaf | AuditEntryInvalid] = []
    for draft in drafts:
        try:
            prepared.append(prepare_leaf(draft.members, draft))
        except AuditEntryInvalid as exc:
            prepared.append(exc)
    return prepared


def v1_head_members(v1_seq: int, v1_hash: bytes) -> dict[str, Any]:
    """The first v2 leaf: it links the v2 log to the v1 chain's last entry."""
    body: dict[str, Any] = dict.fromkeys(STANDARD_FIELDS)
    body.pop("input")
    body.pop("result")
    return body | {"kind": "v1_head", "v1_head": {"seq": v1_seq, "entry_hash": v1_hash.hex()},
                   "input_sha256": None, "result_sha256": None}


@dataclass(frozen=True)
class AppendedLeaves:
    """What :func:`append_batch_leaves` did: ``checked``, what step 2 found; ``state``, the head
    row as the batch leaves it once committed (None when nothing was appended). The receipts
    (:meth:`outcomes`) are built on demand, after the commit: the head lock is not held for
    them."""

    checked: CheckedHead
    state: HeadState | None
    _slots: list[int | AuditEntryInvalid]
    _bodies: list[bytes]
    _hashes: list[bytes]
    _note: str
    _size: int

    @property
    def checkpoint(self) -> str | None:
        """The batch's signed checkpoint note, None when nothing was appended."""
        return self._note if self._bodies else None

    def outcomes(self) -> list[LogReceipt | AuditEntryInvalid]:
        """One outcome per draft: its receipt (with the inclusion proof) or why it was left out."""
        if not self._bodies:
            return [o for o in self._slots if not isinstance(o, int)]
        head = self.checked.head
        first = head.size + 1
        if len(self._bodies) == 1:  # a caller alone: no tree to walk
            proofs = [last_leaf_proof(head.frontier)]
        else:
            proofs = batch_proofs(head.frontier, self._hashes)
        return [_receipt(first + o, self._bodies, self._hashes, first, self._note, proofs[o])
                if isinstance(o, int) else o for o in self._slots]


def append_leaves(conn: psycopg.Connection[Any], drafts: Sequence[LeafDraft],
                  **options: Any) -> list[LogReceipt | AuditEntryInvalid]:
    """Steps 1–4 on ``conn`` (the caller commits). One outcome per draft. Options as
    :func:`append_batch_leaves` takes them: ``signer``, ``key_id``, ``trusted``, ``now``;
    ``origin``, the configured one the stored head must carry; ``floor``, the checkpoint file's
    checkpoint the stored tree must contain (else :class:`LogStateMismatch`)."""
    return append_batch_leaves(conn, drafts, **options).outcomes()


def append_batch_leaves(
    conn: psycopg.Connection[Any],
    drafts: Sequence[LeafDraft],
    *,
    signer: Signer,
    key_id: str,
    trusted: Sequence[Verifier],
    now: datetime,
    origin: str | None = None,
    floor: Floor | None = None,
    known: HeadState | None = None,
    floor_known: bool = False,
    prefetch_floor: bool = False,
    verified: VerifiedNotes | None = None,
    prepared: Sequence[PreparedLeaf | AuditEntryInvalid] | None = None,
) -> AppendedLeaves:
    """:func:`append_leaves` for the writer: ``known``, ``floor_known``, ``prefetch_floor`` and
    ``verified`` as :func:`check_head` takes them, ``prepared`` the drafts' :func:`prepare_leaves`
    (made before the lock); returns what was checked and the head state it
    leaves, and builds the receipts only when asked (after the caller committed): the lock and
    head read, then one statement of writes, before the caller's COMMIT."""
    checked = check_head(conn, trusted, origin=origin, floor=floor, known=known, floor_known=floor_known,
                         prefetch_floor=prefetch_floor, verified=verified)
    batch = _build_batch(prepare_leaves(drafts) if prepared is None else prepared, checked, signer=signer,
                         key_id=key_id, now=now)
    if batch.rows:
        conn.execute(WRITE_BATCH_SQL.format(guard=NO_GUARD_SQL), batch.params())
    return batch.appended(checked)


def append_on_known_head(cursor: psycopg.Cursor[Any], prepared: Sequence[PreparedLeaf | AuditEntryInvalid], *,
                         signer: Signer, key_id: str, known: HeadState, now: datetime) -> AppendedLeaves | None:
    """The batch built on ``known`` before any lock (leaves, tiles, signed checkpoint), and sent
    as **one** statement that locks the head, checks it and writes (:data:`KNOWN_HEAD_BATCH_SQL`),
    alone in its transaction on an idle connection (``cursor``'s: a cursor kept for it runs the
    same statement again with the parameter adapters it looked up the first time): one round
    trip, the commit included (the server answers after it). The guard is the check a batch on its own head makes
    (``_checked_head`` with ``known``, the floor known): the locked row and newest checkpoint byte
    for byte ``known`` and max(seq) its size; unless it holds, the statement writes nothing and
    None is returned (the caller then runs the full check: :func:`append_batch_leaves`), as when
    there is nothing to send."""
    checked = CheckedHead(known.head or _head_of(known.row), int(known.row[8] or 0),
                          bytes(known.row[9]) if known.row[9] is not None else bytes(32), known.row, False)
    batch = _build_batch(prepared, checked, signer=signer, key_id=key_id, now=now)
    if not batch.rows:
        return None
    params = batch.params()
    params.update(zip(GUARD_PARAMS, known.row, strict=True))
    conn = cursor.connection
    # One statement, one implicit transaction: no BEGIN or COMMIT to send. Sent by libpq itself,
    # prepared once per connection, its parameters encoded by their known types: psycopg's
    # execute (the query's conversion, an adapter per parameter, the autocommit switch around
    # it) was ~1/6 of the writer's CPU for a batch of one, all of it on one caller's wait.
    result = _libpq_statement(conn, _KNOWN_HEAD_LIBPQ, _KNOWN_HEAD_NAME, _known_head_values(params),
                              _KNOWN_HEAD_TYPES, _KNOWN_HEAD_FORMATS)
    if result is not None and result.ntuples == 1:
        ok, moved = result.get_value(0, 0), result.get_value(0, 1)
        done = ok == b"\x01" and moved is not None and int.from_bytes(moved, "big", signed=True) == 1
        return batch.appended(checked) if done else None
    conn.autocommit = True
    try:
        row = cursor.execute(KNOWN_HEAD_BATCH_SQL, params).fetchone()
    finally:
        if not conn.closed:
            conn.autocommit = False
    return batch.appended(checked) if row is not None and row[0] is True and row[1] == 1 else None


@dataclass
class _Batch:
    """A batch's leaves built on one head: its rows, blobs, tiles, signed checkpoint."""

    head: LogHead
    slots: list[int | AuditEntryInvalid]
    bodies: list[bytes]
    hashes: list[bytes]
    rows: list[tuple[Any, ...]]
    blobs: dict[bytes, Any]
    moment: datetime
    tiles: list[tuple[int, int, bytes]] = field(default_factory=list)
    note: str = ""
    frontier: Frontier | None = None
    root: bytes = b""

    def params(self) -> dict[str, Any]:
        """The parameters of :data:`WRITE_BATCH_SQL`."""
        assert self.frontier is not None
        blobs = [self.blobs[k] for k in sorted(self.blobs)]
        names = _LEAF_ARRAYS[:-1]
        return {
            "blobs": orjson.dumps([{"sha256": b.sha256.hex(), **dict(zip(BLOB_FACETS, b.facets, strict=True))}
                                   for b in blobs]).decode(),
            "blob_data": [b.data for b in blobs],
            "leaves": orjson.dumps([dict(zip(names, row[:-1], strict=True)) for row in self.rows],
                                   default=_hex_bytes).decode(),
            "bodies": [row[-1] for row in self.rows],
            "nodes": orjson.dumps([{"level": t[0], "idx": t[1], "hash": t[2].hex()} for t in self.tiles]).decode(),
            "recorded_at": self.moment, "size": self.frontier.size, "root": self.root, "note": self.note,
            "frontier": self.frontier.to_bytes(),
        }

    def appended(self, checked: CheckedHead) -> AppendedLeaves:
        if not self.rows:
            return AppendedLeaves(checked, None, self.slots, [], [], "", self.head.size)
        assert self.frontier is not None
        head = self.head
        # The row as this batch leaves it (v1 head unchanged): what the next batch expects to find.
        state = HeadState((head.origin, self.frontier.size, self.root, self.frontier.to_bytes(), self.moment,
                           self.frontier.size, self.root, self.note, *checked.row[8:]),
                          LogHead(head.origin, self.frontier.size, self.root, self.frontier, self.moment))
        return AppendedLeaves(checked, state, self.slots, self.bodies, self.hashes, self.note, self.frontier.size)


def _hex_bytes(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _build_batch(prepared: Sequence[PreparedLeaf | AuditEntryInvalid], checked: CheckedHead, *, signer: Signer,
                 key_id: str, now: datetime) -> _Batch:
    """Step 3 and the rows of step 4 on ``checked``'s head: no database access; only what the
    head decides is done here (seq, time and key id spliced into the prepared bodies, hashes,
    the frontier, the signed checkpoint)."""
    head, v1_seq, v1_hash = checked.head, checked.v1_seq, checked.v1_hash
    moment = max(now, head.recorded_at) if head.recorded_at else now
    seq = head.size
    batch = _Batch(head, [], [], [], [], {}, moment)
    todo = list(prepared)
    if seq == 0 and v1_seq > 0:  # a database that recorded a v1 chain: link it first
        todo.insert(0, prepare_leaf(v1_head_members(v1_seq, v1_hash)))
    time_bytes, key_bytes = canonical_bytes(format_time(moment)), canonical_bytes(key_id)
    for leaf in todo:
        if isinstance(leaf, AuditEntryInvalid):
            batch.slots.append(leaf)
            continue
        seq += 1
        data = leaf.body(canonical_bytes(seq), time_bytes, key_bytes)
        hash_ = leaf_hash(data)
        batch.bodies.append(data)
        batch.hashes.append(hash_)
        batch.rows.append((seq, *leaf.columns, hash_, data))
        if leaf.draft is not None:
            batch.slots.append(len(batch.bodies) - 1)  # its index among the batch's leaves
            for blob in leaf.draft.blobs:
                batch.blobs.setdefault(blob.sha256, blob)
    if batch.rows:
        grown: list[tuple[Node, bytes]] = []
        batch.frontier = head.frontier.grow(batch.hashes, nodes=grown)
        batch.root = batch.frontier.root()
        batch.note = sign_checkpoint(Checkpoint(head.origin, batch.frontier.size, batch.root), [signer])
        batch.tiles = [(n.level, n.index, h) for n, h in grown if n.level and n.level % TILE_HEIGHT == 0]
    return batch


def last_leaf_proof(old: Frontier) -> list[bytes]:
    """The audit path of the leaf appended to the tree whose right edge is ``old``, in the tree
    of ``old.size + 1`` leaves: the old edge's subtrees, smallest first. (RFC 6962 PATH(n-1,
    D[n]) splits at the largest power of two k < n: the left part D[0:k] is the old edge's
    largest subtree, and the path goes on in D[k:n], whose own edge is the rest of the old one.)"""
    return list(reversed(old.hashes))


def _receipt(seq: int, bodies: list[bytes], hashes: list[bytes], first: int, note: str,
             proof: Sequence[bytes]) -> LogReceipt:
    at = seq - first
    entry = orjson.loads(bodies[at])
    return LogReceipt(seq=seq, leaf_hash=hashes[at].hex(), recorded_at=entry["recorded_at"], entry=entry,
                      checkpoint=note, inclusion_proof=tuple(h.hex() for h in proof),
                      decision_id=entry.get("decision_id"))


def _plain_columns(members: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(members.get(k)) for k in LEAF_COLUMNS if k not in ("seq", "recorded_at")}


def proof_reader(conn: psycopg.Connection[Any], size: int) -> HashReader:
    return StoredTiles(conn, size)


# -- reads for the proof endpoints ------------------------------------------------------------

SELECT_NEWEST_NOTE_SQL = "SELECT size, note FROM audit_tlog_checkpoints ORDER BY size DESC LIMIT 1"
ENTRY_BUNDLE_SQL = "SELECT body FROM audit_leaves WHERE seq > %s AND seq <= %s ORDER BY seq"


def newest_checkpoint(conn: psycopg.Connection[Any]) -> tuple[int, str] | None:
    """The newest stored checkpoint: ``(size, signed note)``."""
    row = conn.execute(SELECT_NEWEST_NOTE_SQL).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def inclusion(conn: psycopg.Connection[Any], *, seq: int, size: int,
              tiles: SharedTiles | None = None) -> dict[str, Any]:
    """The inclusion proof of leaf ``seq`` in the tree of ``size`` leaves, with both hashes.
    ``tiles``: the process's folded tiles (the proof endpoints'), else every tile is read."""
    if not 1 <= seq <= size:
        raise ProofRequestError(f"seq {seq} is not in a tree of size {size}")
    ranges = [(seq - 1, seq), *inclusion_ranges(seq - 1, size), (0, size)]
    leaf_hash, *proof, root = _range_hashes(conn, ranges, size, "size", tiles)
    return {"seq": seq, "size": size, "leaf_hash": leaf_hash.hex(), "root": root.hex(),
            "inclusion_proof": [h.hex() for h in proof]}


def consistency(conn: psycopg.Connection[Any], *, old_size: int, new_size: int,
                tiles: SharedTiles | None = None) -> dict[str, Any]:
    """The consistency proof from the tree of ``old_size`` leaves to that of ``new_size``
    (``tiles`` as for :func:`inclusion`)."""
    ranges = consistency_ranges(old_size, new_size)
    roots = [(0, n) for n in (old_size, new_size) if n]
    found = _range_hashes(conn, [*ranges, *roots], new_size, "to", tiles)
    proof, rest = found[:len(ranges)], iter(found[len(ranges):])
    old_root = next(rest) if old_size else EMPTY_ROOT
    new_root = next(rest) if new_size else EMPTY_ROOT
    return {"from": old_size, "to": new_size, "old_root": old_root.hex(),
            "new_root": new_root.hex(), "consistency_proof": [h.hex() for h in proof]}


def _range_hashes(conn: psycopg.Connection[Any], ranges: Sequence[tuple[int, int]], size: int, name: str,
                  tiles: SharedTiles | None) -> list[bytes]:
    """Each leaf range's hash in the tree of ``size`` leaves, from one statement (the head's size
    and the tiles not folded yet in this process; ``size`` beyond the head is refused before any
    hash is used), each tile folded once, each node one lookup in it."""
    lookups, counts = range_lookups(ranges, size)
    shared = tiles.on(conn) if tiles is not None else None
    interiors: dict[TileKey, TileInterior] = {}
    wanted: list[TileKey] = []
    for key in dict.fromkeys(key for key, _, _ in lookups):
        found = shared.get(key) if shared is not None else None
        if found is None:
            wanted.append(key)
        else:
            interiors[key] = found
    head, contents = _read_tiles(conn, wanted)
    if size > head:
        raise ProofRequestError(f"{name} {size} is beyond the log's size {head}")
    for key, data in zip(wanted, contents, strict=True):
        interior = interiors[key] = TileInterior(Tile(*key), data)
        if shared is not None:
            shared[key] = interior
    return fold_lookups(lookups, counts, interiors)


# The statement reading tiles (the proof endpoints', StoredTiles.prefetch's): the head's size, then
# each tile as an array of its hashes in key order, one column each, in binary
# (``ARRAY(SELECT … ORDER BY …)``: an ordered ``string_agg`` sorts again inside the aggregate,
# ~100–250 µs more of PostgreSQL's CPU per tile here). One statement is one snapshot: on an idle
# connection it is sent through libpq, without a transaction, as a prepared statement of this
# process (psycopg's execute and the autocommit switch around it were a third of a proof's CPU);
# inside a transaction, through psycopg.
_INT8 = 20  # the bigint type's oid: the parameters travel as 8-byte big-endian integers
_PREPARED_TILES = 4  # prepare the statements of up to 4 tiles (a warm proof reads 0–2)
_prepared: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[bytes]] = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()


@functools.lru_cache(maxsize=256)
def _tiles_sql(levels: tuple[int, ...]) -> tuple[str, bytes, bytes | None]:
    """The statement reading tiles of these tile levels: psycopg's text, libpq's, its name."""
    parts = ["SELECT (SELECT size FROM audit_tlog_head WHERE id = 1)"]
    for level in levels:
        if level == 0:
            parts.append("ARRAY(SELECT leaf_hash FROM audit_leaves WHERE seq > {} AND seq <= {} ORDER BY seq)")
        else:
            parts.append(f"ARRAY(SELECT hash FROM audit_tlog_nodes WHERE level = {TILE_HEIGHT * level} "
                         "AND idx >= {} AND idx < {} ORDER BY idx)")
    text = ", ".join(parts)
    numbered = text.format(*(f"${n}" for n in range(1, 2 * len(levels) + 1)))
    name = f"clearance_tiles_{'_'.join(map(str, levels))}".encode() if len(levels) <= _PREPARED_TILES else None
    return text.format(*["%s"] * 2 * len(levels)), numbered.encode(), name


def _read_tiles(conn: psycopg.Connection[Any], keys: Sequence[TileKey]) -> tuple[int, list[bytes]]:
    """The head's size (0 without a head) and each tile's content, from one statement."""
    params = []
    for _, index, width in keys:
        params += [index * TILE_WIDTH, index * TILE_WIDTH + width]
    plain, numbered, name = _tiles_sql(tuple(key[0] for key in keys))
    values = [p.to_bytes(8, "big", signed=True) for p in params]
    result = _libpq_statement(conn, numbered, name, values, [_INT8] * len(values), [1] * len(values))
    if result is not None:
        values = [result.get_value(0, column) for column in range(len(keys) + 1)]
        head = int.from_bytes(values[0], "big", signed=True) if values[0] is not None else 0
        return head, [_array_hashes(value) for value in values[1:]]
    with _one_statement(conn):
        row = conn.execute(plain, params, binary=True).fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    return row[0] or 0, [_joined(hashes) for hashes in row[1:]]


def _libpq_statement(conn: psycopg.Connection[Any], sql: bytes, name: bytes | None,
                     values: Sequence[bytes | None], types: Sequence[int],
                     formats: Sequence[int]) -> psycopg.pq.abc.PGresult | None:
    """The statement's result (binary), run by libpq on an idle connection outside pipeline
    mode (one statement, one snapshot, its own implicit transaction: committed when it returns);
    ``None`` when psycopg must run it (a transaction is open, or it failed: psycopg runs it again
    and raises what it says — nothing of a failed statement was committed)."""
    pgconn = conn.pgconn
    with conn.lock:
        if pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE or pgconn.pipeline_status:
            return None
        if name is None:
            result = pgconn.exec_params(sql, values, types, formats, result_format=1)
        else:
            with _prepared_lock:
                prepared = _prepared.setdefault(conn, set())
            if name not in prepared:
                if pgconn.prepare(name, sql, types).status != psycopg.pq.ExecStatus.COMMAND_OK:
                    return None
                prepared.add(name)
            result = pgconn.exec_prepared(name, values, formats, result_format=1)
            if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
                prepared.discard(name)  # e.g. a DISCARD ALL dropped it: prepared again next time
    return result if result.status == psycopg.pq.ExecStatus.TUPLES_OK else None


_ARRAY_HEADER = struct.Struct(">iiIii")  # dimensions, has nulls, element type, length, lower bound


@functools.lru_cache(maxsize=TILE_WIDTH)
def _hash_elements(count: int) -> struct.Struct:
    return struct.Struct(">" + "i32s" * count)  # each element: its length, then its bytes


def _array_hashes(data: bytes | None) -> bytes:
    """The concatenated elements of a binary ``bytea[]`` of 32-byte hashes. Read in order, a
    length that is not 32 stops the check at the first wrong element, so all lengths being 32
    means every element is one hash."""
    if data is None or len(data) < 12:
        raise TlogFormatError("tile", "the stored tile is not an array")
    if data[:4] == bytes(4):
        return b""  # no rows: an empty array has no dimension
    header = _ARRAY_HEADER.size
    if len(data) < header:
        raise TlogFormatError("tile", "the stored tile is not an array")
    dimensions, nulls, _, count, _ = _ARRAY_HEADER.unpack_from(data)
    if nulls:  # NOT NULL columns: only a changed schema gets here
        raise TlogFormatError("tile", "a stored hash is NULL")
    if dimensions == 1 and len(data) - header == (4 + HASH_SIZE) * count:
        fields = _hash_elements(count).unpack_from(data, header)
        if fields[0::2].count(HASH_SIZE) == count:
            return b"".join(fields[1::2])
    raise TlogFormatError("tile", f"a stored hash is not {HASH_SIZE} bytes")


def tile_content(conn: psycopg.Connection[Any], path: str) -> bytes:
    """A C2SP tlog-tiles resource of the current tree: ``tile/<L>/<N>[.p/<W>]`` (hashes) or
    ``tile/entries/<N>[.p/<W>]`` (the leaves' exact bytes as an entry bundle)."""
    tile = parse_tile_path(path)
    size = read_head(conn).size
    if tile.is_entries:
        tile_for_size(Tile(0, tile.index, tile.width), size)
        first = tile.index * TILE_WIDTH
        rows = conn.execute(ENTRY_BUNDLE_SQL, (first, first + tile.width)).fetchall()
        return encode_entry_bundle(bytes(r[0]) for r in rows)
    tile_for_size(tile, size)
    return StoredTiles(conn, size).tile(tile)

"""Verification of the v2 log (and its link to the v1 chain) against pinned verifier keys.

:func:`verify_leaves` reads only through what it is given (rows, blobs, checkpoints, stored
subtrees, the head), so the same code checks the database (:func:`verify_log`, inside one
REPEATABLE READ snapshot) and an evidence pack. Every function takes the trusted verifier keys
as an explicit parameter; nothing is trusted because it is in the database.

Steps, per leaf in seq order (the first failure stops verification and names its seq):

1. Contiguity: each row is the next seq (``missing`` names a removed one).
2. Body: the stored bytes parse as a JSON object whose ``seq`` is the row's (``body``, ``seq``).
3. Leaf hash: ``SHA-256(0x00 ‖ body)`` is the stored ``leaf_hash`` (``leaf_hash``); the body's
   ``key_id`` (the key whose writer appended it) is one of the pinned keys (``unknown_key``: a
   key known only to the database, named with the first seq it touches).
4. Columns: every derived column equals what the body says (``column``).
5. Blobs: the blob named by ``input_sha256``/``result_sha256`` exists, hashes to its name and
   its stored facets are those derived from its bytes (``blob``; checked once per blob, the
   failure names the first seq that uses it).
6. Time: ``recorded_at`` never goes backwards (``time_order``).
7. Subtrees: every stored complete subtree (level 8, 16, …) is the one the leaves give
   (``tree``, naming the subtree's first seq).
8. Checkpoints: each stored checkpoint's note verifies with a trusted key (``checkpoint_key``:
   a checkpoint signed only by a key that is not pinned names the first seq it covers beyond
   the previous trusted one) and its root is the root of the leaves so far (``checkpoint``).
9. Head: the head row is the last leaf and root (``truncated``, ``beyond_head``, ``head``), and
   the newest checkpoint is of the head (every batch commits one).
10. Link to v1: when the database holds a v1 chain, leaf 1 is a ``v1_head`` leaf naming its head
    (seq and entry hash), and the v1 entry at that seq has that hash (``v1_head``).

Inserting or removing a leaf anywhere changes a leaf hash or a seq, and with it every later
root: step 1, 2, 3 or 8 names it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from ._db import map_errors
from .entry import BLOB_FACETS, INPUT_FACETS, LEAF_COLUMNS, RESULT_FACETS, blob_facets
from .errors import AuditError, CheckpointError
from .tlog.checkpoint import open_checkpoint
from .tlog.errors import TlogError
from .tlog.merkle import Frontier, Node, leaf_hash
from .tlog.note import Ed25519Verifier, Verifier
from .tlog.tiles import TILE_HEIGHT
from .verify import Progress, VerificationResult

__all__ = ["LeafRow", "StoredLogCheckpoint", "verify_leaves", "verify_log"]

PROGRESS_EVERY = 1000
GROW_CHUNK = 4096  # leaf hashes folded into the frontier at once (and at every checkpoint)
PAGE = 5000

# The derived columns read as text in the exact form the leaf writes them, so that comparing
# is comparing strings: no timestamp or UUID parsing per leaf (verification rate:
# docs/performance.md).
COLUMNS_AS_TEXT = (
    "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", "kind",
    "decision_id::text", "app_id", "outcome", "encode(input_sha256, 'hex')", "encode(result_sha256, 'hex')",
)
TEXT_COLUMNS = LEAF_COLUMNS[1:]  # the names of COLUMNS_AS_TEXT, in order
SELECT_LEAVES_SQL = (
    f"SELECT seq, {', '.join(COLUMNS_AS_TEXT)}, leaf_hash, body FROM audit_leaves "
    "WHERE seq >= %s AND (%s::bigint IS NULL OR seq <= %s) ORDER BY seq"
)
SELECT_BLOB_SQL = f"SELECT data, {', '.join(BLOB_FACETS)} FROM audit_blobs WHERE sha256 = %s"
SELECT_CHECKPOINTS_SQL = "SELECT size, root, note FROM audit_tlog_checkpoints ORDER BY size"
SELECT_NODES_SQL = "SELECT level, idx, hash FROM audit_tlog_nodes ORDER BY idx << level, level"
SELECT_HEAD_SQL = "SELECT origin, size, root FROM audit_tlog_head WHERE id = 1"
SELECT_V1_SQL = (
    "SELECT h.seq, h.head_hash, (SELECT entry_hash FROM audit_entries e WHERE e.seq = h.seq LIMIT 1) "
    "FROM audit_chain_head h WHERE h.id = 1"
)
SET_SNAPSHOT_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


@dataclass(frozen=True, slots=True)
class LeafRow:
    """A leaf as stored: its derived columns as text (:data:`COLUMNS_AS_TEXT`; ``None`` for a
    pack: nothing derived to compare), its leaf hash and its exact bytes."""

    seq: int
    leaf_hash: bytes
    body: bytes
    columns: tuple[str | None, ...] | None = None


@dataclass(frozen=True, slots=True)
class StoredLogCheckpoint:
    size: int
    root: bytes | None  # the stored column (None in a pack: only the note)
    note: str


class _Failed(Exception):
    def __init__(self, seq: int | None, check: str, reason: str) -> None:
        super().__init__(reason)
        self.seq, self.check, self.reason = seq, check, reason


BlobFetch = Callable[[bytes], "tuple[bytes, tuple[Any, ...] | None] | None"]


def verify_leaves(
    rows: Iterable[LeafRow],
    *,
    trusted: Sequence[Verifier],
    origin: str | None,
    checkpoints: Iterable[StoredLogCheckpoint],
    fetch_blob: BlobFetch | None,
    nodes: Iterable[tuple[int, int, bytes]] | None = None,
    head: tuple[int, bytes] | None = None,
    v1_head: tuple[int, bytes, bytes | None] | None = None,
    from_seq: int = 1,
    to_seq: int | None = None,
    anchor: Frontier | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> VerificationResult:
    """Verify leaves ``from_seq..to_seq`` (see the module's steps).

    ``anchor``: the frontier of the first ``from_seq - 1`` leaves (read from the stored tree for
    a range; the first checkpoint after it is then checked against leaves that were verified).
    ``head``: ``(size, root)`` of the head row when the range runs to the end of the log.
    ``v1_head``: the v1 chain head ``(seq, head_hash, entry_hash stored at that seq)`` for step 10.
    ``fetch_blob(sha256)``: ``(data, stored facets or None)`` or ``None`` if missing.
    """
    frontier = anchor if anchor is not None else Frontier()
    if frontier.size != from_seq - 1:
        raise ValueError("the anchor must be the frontier of the leaves before from_seq")
    pending = sorted(checkpoints, key=lambda c: c.size)
    pending = [c for c in pending if c.size >= from_seq and (to_seq is None or c.size <= to_seq)]
    node_map = {(level, idx): h for level, idx, h in nodes} if nodes is not None else None
    expected = from_seq
    checked = 0
    trusted_size = from_seq - 1  # the last size vouched for by a trusted checkpoint
    checkpoints_checked = 0
    last_time: str | None = None
    good_blobs: set[bytes] = set()
    pinned_ids = _pinned_key_ids(trusted)
    pending_hashes: list[bytes] = []  # leaf hashes not yet folded into the frontier
    ci = 0
    try:
        while ci < len(pending) and pending[ci].size < from_seq:
            ci += 1
        for row in rows:
            seq = row.seq
            if seq != expected:  # (1)
                if seq < expected:
                    raise _Failed(seq, "duplicate", f"entry {seq} appears twice")
                raise _Failed(expected, "missing", f"entry {expected} is missing (next stored seq is {seq})")
            try:  # (2)
                body = orjson.loads(row.body)
            except orjson.JSONDecodeError as exc:
                raise _Failed(seq, "body", f"entry {seq}: the stored bytes are not JSON ({exc})") from None
            if not isinstance(body, dict):
                raise _Failed(seq, "body", f"entry {seq}: the stored bytes are not a JSON object")
            if body.get("seq") != seq:
                raise _Failed(seq, "seq", f"entry {seq}: the body says seq {body.get('seq')!r}")
            computed = leaf_hash(row.body)  # (3)
            if computed != row.leaf_hash:
                raise _Failed(seq, "leaf_hash", f"entry {seq}: leaf_hash does not match SHA-256(0x00 ‖ body): "
                                                f"computed {computed.hex()}, stored {row.leaf_hash.hex()}")
            if pinned_ids and body.get("key_id") not in pinned_ids:  # (3b)
                raise _Failed(seq, "unknown_key", f"entry {seq} was appended under signing key "
                                                  f"{body.get('key_id')!r}, which is not pinned (CLEARANCE_TRUSTED_KEYS)")
            if row.columns is not None:  # (4)
                derived = _text_columns(body)
                if derived != row.columns:
                    name, stored, value = next((n, c, d) for n, c, d in zip(TEXT_COLUMNS, row.columns, derived,
                                                                              strict=True) if c != d)
                    raise _Failed(seq, "column", f"entry {seq}: column {name} is {stored!r}, "
                                                 f"the signed body says {value!r}")
            if fetch_blob is not None:  # (5)
                for member in ("input_sha256", "result_sha256"):
                    digest_hex = body.get(member)
                    if digest_hex is None:
                        continue
                    digest = bytes.fromhex(digest_hex) if isinstance(digest_hex, str) else b""
                    if digest not in good_blobs:
                        _check_blob(seq, member, digest, fetch_blob)
                        good_blobs.add(digest)
            moment = body.get("recorded_at")  # (6)
            if not isinstance(moment, str) or (last_time is not None and moment < last_time):
                raise _Failed(seq, "time_order", f"entry {seq}: recorded_at {moment!r} is before "
                                                 f"the previous entry's {last_time!r}")
            last_time = moment
            if seq == 1 and v1_head is not None:  # (10)
                _check_v1_head(body, v1_head)
            pending_hashes.append(row.leaf_hash)
            if len(pending_hashes) >= GROW_CHUNK or (ci < len(pending) and pending[ci].size == seq):
                frontier = _grow(frontier, pending_hashes, node_map)
                pending_hashes = []
            covered = trusted_size  # checkpoints of this size all name the entries after it
            while ci < len(pending) and pending[ci].size == seq:  # (8)
                _check_checkpoint(pending[ci], frontier.root(), trusted, origin, covered)
                trusted_size = seq
                checkpoints_checked += 1
                ci += 1
            checked += 1
            expected = seq + 1
            if progress is not None and checked % PROGRESS_EVERY == 0:
                progress(checked, total)
        frontier = _grow(frontier, pending_hashes, node_map)
        last = expected - 1
        if to_seq is not None and last < to_seq:
            raise _Failed(last + 1, "missing", f"entry {last + 1} is missing (the range ends at {to_seq})")
        if ci < len(pending):
            # A checkpoint beyond the end proves removed entries only if a trusted key signed it:
            # a forged one (kept outside, say) is named as such, not taken as evidence.
            for beyond in pending[ci:]:
                try:
                    open_checkpoint(beyond.note, trusted, origin=origin)
                except TlogError as exc:
                    raise _Failed(last + 1, "checkpoint_key", f"checkpoint of size {beyond.size} (entries "
                                                              f"{last + 1}..{beyond.size}, beyond the last entry "
                                                              f"{last}) does not verify with a pinned key: "
                                                              f"{exc}") from None
            raise _Failed(last + 1, "truncated", f"checkpoint of size {pending[ci].size} is beyond the last "
                                                 f"entry {last}: entries {last + 1}..{pending[ci].size} were removed")
        if head is not None:  # (9)
            size, root = head
            if size > last:
                raise _Failed(last + 1, "truncated", f"the head says {size} entries, only {last} are stored: "
                                                     f"entries {last + 1}..{size} were removed")
            if size < last:
                raise _Failed(size + 1, "beyond_head", f"entries after the head (size {size}) are stored")
            if root != frontier.root():
                raise _Failed(last, "head", f"the head's root {root.hex()} is not the root of the leaves "
                                            f"1..{last} {frontier.root().hex()}")
            if last and trusted_size != last:
                raise _Failed(trusted_size + 1, "checkpoint", f"no trusted checkpoint covers entries "
                                                              f"{trusted_size + 1}..{last}")
    except _Failed as failure:
        return VerificationResult(valid=False, checked=checked, first_bad_seq=failure.seq, reason=failure.reason,
                                  check=failure.check, from_seq=from_seq, to_seq=to_seq,
                                  checkpoints_checked=checkpoints_checked, log="v2")
    if progress is not None:
        progress(checked, total)
    return VerificationResult(valid=True, checked=checked, from_seq=from_seq, to_seq=expected - 1,
                              checkpoints_checked=checkpoints_checked, log="v2")


def _pinned_key_ids(trusted: Sequence[Verifier]) -> frozenset[str]:
    """The Clearance key ids of the trusted Ed25519 keys: a leaf names the key of the writer
    that appended it, and a key nobody pinned is an insider's (empty: no Ed25519 key given)."""
    from .keys import PublicKey

    return frozenset(PublicKey.from_raw(v.public_key).key_id for v in trusted if isinstance(v, Ed25519Verifier))


def _text_columns(body: Mapping[str, Any]) -> tuple[str | None, ...]:
    """What :data:`COLUMNS_AS_TEXT` must read for this body (``leaf_columns``, as text)."""
    get = body.get
    return (_str(get("recorded_at")), _str(get("kind")), _str(get("decision_id")), _str(get("app_id")),
            _str(get("outcome")), _str(get("input_sha256")), _str(get("result_sha256")))


def _str(value: Any) -> str | None:
    return value if type(value) is str else None


def _grow(frontier: Frontier, hashes: list[bytes], node_map: dict[tuple[int, int], bytes] | None) -> Frontier:
    """(7): fold ``hashes`` into the frontier, checking every stored subtree they complete."""
    if not hashes:
        return frontier
    grown: list[tuple[Node, bytes]] | None = [] if node_map is not None else None
    frontier = frontier.grow(hashes, nodes=grown)
    for node, value in grown or ():
        if node.level and node.level % TILE_HEIGHT == 0:
            stored = node_map.get((node.level, node.index)) if node_map is not None else None
            if stored != value:
                raise _Failed(node.start + 1, "tree", f"stored subtree ({node.level}, {node.index}) "
                              f"of entries {node.start + 1}..{node.end} is "
                              f"{stored.hex() if stored else 'missing'}, the leaves give {value.hex()}")
    return frontier


def _check_blob(seq: int, member: str, digest: bytes, fetch_blob: BlobFetch) -> None:
    found = fetch_blob(digest)
    if found is None:
        raise _Failed(seq, "blob", f"entry {seq}: the blob of {member} {digest.hex()} is missing")
    data, facets = found
    actual = hashlib.sha256(data).digest()
    if actual != digest:
        raise _Failed(seq, "blob", f"entry {seq}: the blob of {member} hashes to {actual.hex()}, "
                                   f"not {digest.hex()}")
    if facets is not None:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _Failed(seq, "blob", f"entry {seq}: the blob of {member} is not JSON") from None
        derived = blob_facets(result=value) if member == "result_sha256" else blob_facets(input_=value)
        relevant = INPUT_FACETS if member == "input_sha256" else RESULT_FACETS
        for name in relevant:
            stored = facets[BLOB_FACETS.index(name)]
            if (list(stored) if isinstance(stored, list | tuple) else stored) != derived[name]:
                raise _Failed(seq, "column", f"entry {seq}: blob column {name} is {stored!r}, its bytes say "
                                             f"{derived[name]!r}")


def _check_v1_head(body: Mapping[str, Any], v1_head: tuple[int, bytes, bytes | None]) -> None:
    v1_seq, v1_hash, stored_at_seq = v1_head
    if v1_seq == 0:  # no v1 chain: leaf 1 is an ordinary entry, and none may claim a v1 head
        if body.get("kind") == "v1_head":
            raise _Failed(1, "v1_head", "entry 1 records a v1 head, but the v1 chain is empty")
        return
    link = body.get("v1_head")
    expected = {"seq": v1_seq, "entry_hash": v1_hash.hex()}
    if body.get("kind") != "v1_head" or link != expected:
        raise _Failed(1, "v1_head", f"entry 1 records the v1 head {link!r}; the v1 chain's head is {expected}")
    if v1_seq and (stored_at_seq is None or stored_at_seq != v1_hash):
        raise _Failed(1, "v1_head", f"the v1 entry {v1_seq} does not have the recorded hash {v1_hash.hex()}")


def _check_checkpoint(checkpoint: StoredLogCheckpoint, root: bytes, trusted: Sequence[Verifier],
                      origin: str | None, trusted_size: int) -> None:
    size = checkpoint.size
    try:
        signed = open_checkpoint(checkpoint.note, trusted, origin=origin)
    except TlogError as exc:
        raise _Failed(trusted_size + 1, "checkpoint_key", f"checkpoint of size {size} (entries {trusted_size + 1}.."
                                                          f"{size}) does not verify with a pinned key: {exc}") from None
    if signed.size != size or (checkpoint.root is not None and checkpoint.root != signed.root_hash):
        raise _Failed(trusted_size + 1, "checkpoint", f"checkpoint of size {size}: its columns disagree with "
                                                      f"its signed note (size {signed.size})")
    if signed.root_hash != root:
        raise _Failed(trusted_size + 1, "checkpoint",
                      f"checkpoint of size {size}: root of entries 1..{size} is {root.hex()}, the signed "
                      f"checkpoint says {signed.root_hash.hex()} (an entry in {trusted_size + 1}..{size} changed)")


def verify_log(
    conn_source: Any,
    *,
    trusted: Sequence[Verifier],
    from_seq: int = 1,
    to_seq: int | None = None,
    outside: Sequence[str] = (),
    progress: Progress | None = None,
) -> VerificationResult:
    """Verify the v2 log in the database (``conn_source``: an ``AuditStore``) with ``trusted``
    keys, inside one REPEATABLE READ snapshot."""
    from .log import StoredTiles  # the store's tile reader anchors a range

    with conn_source._connection("verifying the audit log") as conn:  # noqa: SLF001
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.execute(SET_SNAPSHOT_SQL)
        try:
            origin, size, root = conn.execute(SELECT_HEAD_SQL).fetchone()
            size = int(size)
            anchor = Frontier()
            if from_seq > 1:
                try:
                    anchor = Frontier.from_reader(StoredTiles(conn, from_seq - 1), from_seq - 1)
                except (TlogError, AuditError) as exc:
                    return VerificationResult(valid=False, checked=0, first_bad_seq=from_seq - 1, check="tree",
                                              reason=f"the stored tree before {from_seq} cannot be read: {exc}",
                                              from_seq=from_seq, to_seq=to_seq, log="v2")
            checkpoints = [StoredLogCheckpoint(int(s), bytes(r), n)
                           for s, r, n in conn.execute(SELECT_CHECKPOINTS_SQL).fetchall()]
            checkpoints += [_outside(note, trusted) for note in outside]
            nodes = [(int(lv), int(i), bytes(h)) for lv, i, h in conn.execute(SELECT_NODES_SQL).fetchall()]
            v1 = conn.execute(SELECT_V1_SQL).fetchone()
            v1_head = (int(v1[0]), bytes(v1[1]), bytes(v1[2]) if v1[2] is not None else None) if v1 else None
            blob_cur = conn.cursor()

            def fetch_blob(digest: bytes) -> tuple[bytes, tuple[Any, ...]] | None:
                found = blob_cur.execute(SELECT_BLOB_SQL, (digest,)).fetchone()
                return (bytes(found[0]), tuple(found[1:])) if found else None

            end = to_seq if to_seq is not None else size
            with map_errors("verifying the audit log"):
                return verify_leaves(
                    _stream(conn, from_seq, to_seq), trusted=trusted, origin=origin, checkpoints=checkpoints,
                    fetch_blob=fetch_blob, nodes=nodes,
                    head=(size, bytes(root)) if to_seq is None or to_seq >= size else None,
                    v1_head=v1_head if from_seq == 1 else None, from_seq=from_seq, to_seq=to_seq,
                    anchor=anchor, progress=progress, total=max(0, end - from_seq + 1))
        finally:
            if not conn.closed:
                conn.rollback()


def _stream(conn: psycopg.Connection[Any], from_seq: int, to_seq: int | None) -> Iterator[LeafRow]:
    with conn.cursor(name="audit_verify_leaves", binary=True) as cur:  # bytes as stored, not hex
        cur.execute(SELECT_LEAVES_SQL, (from_seq, to_seq, to_seq))
        while records := cur.fetchmany(PAGE):  # one round trip per page
            for record in records:
                yield LeafRow(record[0], record[-2], record[-1], record[1:-2])


def _outside(note: str, trusted: Sequence[Verifier]) -> StoredLogCheckpoint:
    """A checkpoint kept outside the database: checked like a stored one (a size beyond the
    log's end proves the tail was removed)."""
    from .tlog.checkpoint import Checkpoint
    from .tlog.note import parse_note

    try:
        size = Checkpoint.parse(parse_note(note).text).size
    except TlogError as exc:
        raise CheckpointError(f"the outside checkpoint is not a C2SP checkpoint note: {exc}") from exc
    return StoredLogCheckpoint(size, None, note)


def verify_trail(
    store: Any,
    *,
    trusted: Sequence[Verifier],
    from_seq: int = 1,
    to_seq: int | None = None,
    keyring: Any = None,
    checkpoint_files: Sequence[Any] = (),
    progress: Progress | None = None,
    workers: int = 1,
) -> VerificationResult:
    """The whole trail: the v2 log over ``from_seq..to_seq`` with ``trusted`` keys and, for a
    range starting at 1, the v1 chain before it (``verify_database``; ``keyring``, default the
    ``trusted`` keys) and the
    link between them. ``checkpoint_files``: v2 checkpoint notes (text) or v1 checkpoint files
    (JSON) kept outside the database; one that cannot serve raises
    :class:`~audit.errors.CheckpointFileError` naming it."""
    from .checkpoint_file import read_outside_checkpoint
    from .trust import pinned_keyring
    from .verify import verify_database

    if keyring is None:  # the v1 chain is checked with the same (pinned) keys, never the database's
        keyring = pinned_keyring(trusted)
    notes, v1_files = [], []
    for path in checkpoint_files:
        note = read_outside_checkpoint(path, trusted, keyring=keyring)
        if note is None:
            v1_files.append(path)
        else:
            notes.append(note)
    result = verify_log(store, trusted=trusted, from_seq=from_seq, to_seq=to_seq, outside=notes,
                        progress=progress)
    if not result.valid or from_seq != 1:
        return result
    v1 = verify_database(store, keyring=keyring, checkpoint_files=v1_files, workers=workers)
    return result if v1.valid else v1


SELECT_ONE_SQL = f"SELECT seq, {', '.join(COLUMNS_AS_TEXT)}, leaf_hash, body FROM audit_leaves WHERE seq = %s"
SELECT_NEWEST_CHECKPOINT_SQL = "SELECT size, note FROM audit_tlog_checkpoints ORDER BY size DESC LIMIT 1"


def read_one(store: Any, seq: int, *, trusted: Sequence[Verifier]) -> dict[str, Any]:
    """Leaf ``seq`` with its blobs, a receipt against the newest checkpoint, and its verdict:
    leaf hash, columns and blobs as in :func:`verify_leaves`, then the receipt
    (``verify_receipt``) with ``trusted`` keys. Keys of :class:`audit.queries.FoundEntry`."""
    from .log import StoredTiles
    from .tlog.merkle import inclusion_proof
    from .tlog.receipt import verify_receipt

    with store._connection("reading one audit entry") as conn:  # noqa: SLF001
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.execute(SET_SNAPSHOT_SQL)
        try:
            record = conn.execute(SELECT_ONE_SQL, (seq,)).fetchone()
            row = LeafRow(int(record[0]), bytes(record[-2]), bytes(record[-1]), tuple(record[1:-2]))
            blob_cur = conn.cursor()

            def fetch_blob(digest: bytes) -> tuple[bytes, tuple[Any, ...]] | None:
                found = blob_cur.execute(SELECT_BLOB_SQL, (digest,)).fetchone()
                return (bytes(found[0]), tuple(found[1:])) if found else None

            newest = conn.execute(SELECT_NEWEST_CHECKPOINT_SQL).fetchone()
            receipt = None
            if newest is not None and int(newest[0]) >= seq:
                size = int(newest[0])
                proof = inclusion_proof(StoredTiles(conn, size), index=seq - 1, size=size)
            try:
                document = orjson.loads(row.body)
            except orjson.JSONDecodeError:
                document = {}
            blobs = {}
            for member in ("input_sha256", "result_sha256"):
                digest = document.get(member) if isinstance(document, dict) else None
                found_blob = fetch_blob(bytes.fromhex(digest)) if isinstance(digest, str) else None
                blobs[member] = orjson.loads(found_blob[0]) if found_blob else None
            if newest is not None and int(newest[0]) >= seq and isinstance(document, dict):
                receipt = {"seq": seq, "leaf_hash": row.leaf_hash.hex(), "recorded_at": document.get("recorded_at"),
                           "entry": document, "checkpoint": _cosigned(conn, size, newest[1]),
                           "inclusion_proof": [h.hex() for h in proof]}
            result = verify_leaves([row], trusted=trusted, origin=None, checkpoints=(), fetch_blob=fetch_blob,
                                   from_seq=seq, to_seq=seq, anchor=_placeholder_frontier(seq - 1))
            if result.valid:
                try:
                    if receipt is None:
                        raise ValueError("no checkpoint covers this entry")
                    verify_receipt(receipt, trusted_keys=trusted)
                except (TlogError, ValueError) as exc:
                    result = VerificationResult(valid=False, checked=0, first_bad_seq=seq, check="receipt",
                                                reason=f"entry {seq}: {exc}", from_seq=seq, to_seq=seq, log="v2")
        finally:
            if not conn.closed:
                conn.rollback()
    return {"seq": seq, "leaf_hash": row.leaf_hash, "document": document, "input": blobs["input_sha256"],
            "result": blobs["result_sha256"], "receipt": receipt, "verification": result}


def _cosigned(conn: psycopg.Connection[Any], size: int, note: str) -> str:
    """``note`` with the witnesses' stored cosignatures (audit/witnessing.py)."""
    from .witnessing import cosignature_lines, with_cosignatures

    return with_cosignatures(note, cosignature_lines(conn, size))


def _placeholder_frontier(size: int) -> Frontier:
    """A frontier of the right size whose hashes are never used (one leaf checked alone)."""
    return Frontier(size, tuple(bytes(32) for _ in range(size.bit_count())))

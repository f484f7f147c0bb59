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

import gc
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Annotated, Any

import msgspec
import orjson
import psycopg

from ._db import map_errors
from ._fastsig import sodium_first
from .entry import BLOB_FACETS, INPUT_FACETS, LEAF_COLUMNS, RESULT_FACETS, blob_facets
from .errors import AuditError, CheckpointError
from .tlog.checkpoint import SignedCheckpoint, open_checkpoint
from .tlog.errors import TlogError
from .tlog.merkle import EMPTY_ROOT, MAX_TREE_SIZE, Frontier, leaf_hash
from .tlog.note import Ed25519Verifier, Verifier
from .tlog.tiles import TILE_HEIGHT
from .verify import Progress, VerificationResult

__all__ = ["LeafPage", "LeafRow", "StoredLogCheckpoint", "verify_leaves", "verify_log"]

PAGE = 8192  # leaves per query and per fold (verify_log reads the log a page at a time)
PREFETCH = 2  # pages read ahead
# Stored subtrees: the tlog-tiles above level 0 (levels 8, 16, …).
TREE_LEVELS = frozenset(range(TILE_HEIGHT, 64, TILE_HEIGHT))
ALL_LEVELS = range(64)

# The derived columns read as text in the exact form the leaf writes them, so that comparing
# is comparing strings: no timestamp or UUID parsing per leaf (verification rate:
# docs/performance.md). Every function verification's SQL calls is named with its schema: an
# unqualified name resolves through the search_path, where the database's owner can put a
# function of its own (one taking ``text`` even beats pg_catalog's polymorphic aggregates) that
# shows an edited column as it was signed (tests/reliability/test_tampering.py, "shadowed").
COLUMNS_AS_TEXT = (
    "pg_catalog.to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", "kind",
    "decision_id::text", "app_id", "outcome", "pg_catalog.encode(input_sha256, 'hex')",
    "pg_catalog.encode(result_sha256, 'hex')",
)
TEXT_COLUMNS = LEAF_COLUMNS[1:]  # the names of COLUMNS_AS_TEXT, in order
# A page: the next PAGE leaves after a seq as one row of arrays: seqs, leaf hashes, bodies (one
# object per value, none per leaf: psycopg's per-row cost was most of verification's) and one
# text array per derived column, which the fast path compares list for list with the same
# member of the decoded bodies. The aggregates read the ordered subquery in one pass, so they are
# aligned; the order itself is checked (contiguity). (Text arrays rather than one JSON text of
# the columns: less for PostgreSQL to format, nothing for Python to serialise.)
SELECT_PAGE_SQL = (
    "SELECT pg_catalog.array_agg(seq), pg_catalog.array_agg(leaf_hash), pg_catalog.array_agg(body), "
    f"{', '.join(f'pg_catalog.array_agg(c{i})' for i in range(len(COLUMNS_AS_TEXT)))} FROM ("
    f"SELECT seq, leaf_hash, body, {', '.join(f'{c} AS c{i}' for i, c in enumerate(COLUMNS_AS_TEXT))} "
    "FROM audit_leaves WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s) page"
)
SELECT_BLOB_SQL = f"SELECT data, {', '.join(BLOB_FACETS)} FROM audit_blobs WHERE sha256 = %s"
SELECT_BLOBS_SQL = f"SELECT sha256, data, {', '.join(BLOB_FACETS)} FROM audit_blobs WHERE sha256 = ANY(%s)"
SELECT_CHECKPOINTS_SQL = "SELECT size, root, note FROM audit_tlog_checkpoints ORDER BY size"
SELECT_NODES_SQL = "SELECT level, idx, hash FROM audit_tlog_nodes ORDER BY idx << level, level"
SELECT_HEAD_SQL = "SELECT origin, size, root FROM audit_tlog_head WHERE id = 1"
SELECT_V1_SQL = (
    "SELECT h.seq, h.head_hash, (SELECT entry_hash FROM audit_entries e WHERE e.seq = h.seq LIMIT 1) "
    "FROM audit_chain_head h WHERE h.id = 1"
)
SET_SNAPSHOT_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
_LEAF_PREFIX = b"\x00"
_BLOB_MEMBERS = ("input_sha256", "result_sha256")

# The fast path's first reading of a page: each body decoded by msgspec into :class:`_Leaf`
# (no dict per leaf; ~1.6x faster than orjson on the writer's leaves, docs/performance.md).
# _Leaf names every member the writer puts in a leaf, each with a strict type, and no member is
# skipped: msgspec checks a skipped member more loosely than orjson (it lets invalid UTF-8,
# integers of 400 digits, 1e400 and any depth through), and a body orjson refuses must never
# pass. What _Leaf accepts, orjson parses to the same values for the members the checks read:
# no unknown member (``forbid_unknown_fields``), strings checked as UTF-8, no float (parsers
# may round differently near the limits), only integers orjson reads exactly (int64), three
# levels of nesting at most; a duplicated member is its last occurrence in both. A page with a
# body _Leaf refuses (another member, a float, a deeper value...) is read by orjson as before.
# Tested: tests/audit/test_log_verify.py::test_the_typed_reading_never_accepts_what_orjson_refuses.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = str | bool | _Int | None
_Value2 = _Scalar | list[_Scalar] | dict[str, _Scalar]
_Value1 = _Scalar | list[_Value2] | dict[str, _Value2]
_Value = _Scalar | list[_Value1] | dict[str, _Value1]  # JSON without floats, at most three levels deep


class _Leaf(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    seq: int  # a large one is compared with the row's seq and fails there
    key_id: str | None = None
    recorded_at: str | None = None
    kind: str | None = None
    decision_id: str | None = None
    app_id: str | None = None
    outcome: str | None = None
    input_sha256: str | None = None
    result_sha256: str | None = None
    caller_key_id: _Value = None
    policy_revision: _Value = None
    engine: _Value = None
    policy_git: _Value = None
    context: _Value = None
    shadow: _Value = None
    reload: _Value = None
    served: _Value = None
    key: _Value = None
    v1_head: _Value = None
    prev_hash: _Value = None


_LEAF_DECODER = msgspec.json.Decoder(_Leaf)


def _typed(bodies: list[bytes]) -> list[_Leaf] | None:
    """The page's bodies read by :class:`_Leaf` (``None``: one is not of that form).

    The collector is paused while a page is decoded: each leaf's ``context`` is a new dict, so
    a page of 8,192 set off a dozen young collections and the older ones that scan every page
    still held (~0.05–0.1 s per 100,000 leaves, docs/performance.md); nothing decoded here can
    form a cycle. Paused for the page only (a few milliseconds), and left off if it was off.
    """
    enabled = gc.isenabled()
    gc.disable()
    decode = _LEAF_DECODER.decode
    try:  # a loop of bytecode, not map(): the page reader may take the GIL between two bodies
        return [decode(body) for body in bodies]
    except msgspec.DecodeError:  # also its ValidationError
        return None
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class LeafRow:
    """A leaf as stored: its derived columns as text (:data:`COLUMNS_AS_TEXT`; ``None`` for a
    pack: nothing derived to compare), its leaf hash and its exact bytes."""

    seq: int
    leaf_hash: bytes
    body: bytes
    columns: tuple[str | None, ...] | None = None


@dataclass(frozen=True, slots=True)
class LeafPage:
    """Consecutive stored leaves as parallel lists (:data:`SELECT_PAGE_SQL`); ``columns``: their
    derived columns (:data:`TEXT_COLUMNS`, as text), a list per column."""

    seqs: list[int]
    leaf_hashes: list[bytes]
    bodies: list[bytes]
    columns: Sequence[list[str | None]]

    def rows(self) -> list[LeafRow]:
        """The same leaves one by one, in seq order (for the exact per-leaf checks)."""
        columns = zip(*self.columns, strict=True)  # a tuple per leaf
        rows = [LeafRow(seq, bytes(h), bytes(b), c)
                for seq, h, b, c in zip(self.seqs, self.leaf_hashes, self.bodies, columns, strict=True)]
        return sorted(rows, key=lambda r: r.seq)


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
    rows: Iterable[LeafRow | LeafPage],
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

    ``rows``: leaves one by one, or pages of them (:class:`LeafPage`, read by :func:`verify_log`).
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
    run = _Run(trusted=trusted, origin=origin, pending=pending, fetch_blob=fetch_blob,
               node_map={(level, idx): h for level, idx, h in nodes} if nodes is not None else None,
               v1_head=v1_head, from_seq=from_seq, frontier=frontier)
    try:
        for chunk in _chunks(rows):
            if isinstance(chunk, LeafPage):
                run.page(chunk)
            else:
                run.rows(chunk)
            if progress is not None:
                progress(run.checked, total)
        run.end(to_seq=to_seq, head=head)
    except _Failed as failure:
        run.opened.close()
        return VerificationResult(valid=False, checked=run.checked, first_bad_seq=failure.seq, reason=failure.reason,
                                  check=failure.check, from_seq=from_seq, to_seq=to_seq,
                                  checkpoints_checked=run.checkpoints_checked, log="v2")
    finally:
        run.opened.close()
    if progress is not None:
        progress(run.checked, total)
    return VerificationResult(valid=True, checked=run.checked, from_seq=from_seq, to_seq=run.expected - 1,
                              checkpoints_checked=run.checkpoints_checked, log="v2")


def _chunks(rows: Iterable[LeafRow | LeafPage]) -> Iterator[LeafPage | list[LeafRow]]:
    """Pages as they come; single rows in lists of up to :data:`PAGE` (one fold each)."""
    batch: list[LeafRow] = []
    for item in rows:
        if isinstance(item, LeafPage):
            if batch:
                yield batch
                batch = []
            yield item
            continue
        batch.append(item)
        if len(batch) >= PAGE:
            yield batch
            batch = []
    if batch:
        yield batch


class _Run:
    """The state of one verification: the steps of the module, a chunk of leaves at a time.

    :meth:`rows` checks leaf by leaf, exactly as the steps say. :meth:`page` checks a whole
    page with list operations (the fast path) and, if any check might fail, hands the page to
    :meth:`rows`, so a failure is always found and named by the exact checks. Both fold the
    leaf hashes at the same points (each checkpoint's size, the chunk's end), so the subtree
    and checkpoint checks see the same frontiers either way.
    """

    def __init__(self, *, trusted: Sequence[Verifier], origin: str | None, pending: list[StoredLogCheckpoint],
                 fetch_blob: BlobFetch | None, node_map: dict[tuple[int, int], bytes] | None,
                 v1_head: tuple[int, bytes, bytes | None] | None, from_seq: int, frontier: Frontier) -> None:
        self.trusted, self.origin, self.pending, self.fetch_blob = trusted, origin, pending, fetch_blob
        self.node_map, self.v1_head, self.from_seq, self.frontier = node_map, v1_head, from_seq, frontier
        self.expected = from_seq
        self.checked = 0
        self.trusted_size = from_seq - 1  # the last size vouched for by a trusted checkpoint
        self.checkpoints_checked = 0
        self.last_time: str | None = None
        self.good_blobs: set[bytes] = set()
        self.good_hex: set[str] = set()  # the same blobs by their body members (the fast path)
        self.pinned_ids = _pinned_key_ids(trusted)
        self.ci = 0  # the next pending checkpoint
        self.opened = _OpenedCheckpoints(pending, sodium_first(trusted), origin)

    # -- the exact checks, leaf by leaf ----------------------------------------------------------

    def rows(self, rows: Sequence[LeafRow]) -> None:
        pending, hashes = self.pending, []
        for row in rows:
            seq = row.seq
            expected = self.expected
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
            key_id = body.get("key_id")  # (3b); not a string: not a key's (and maybe unhashable)
            if self.pinned_ids and (type(key_id) is not str or key_id not in self.pinned_ids):
                raise _Failed(seq, "unknown_key", f"entry {seq} was appended under signing key "
                                                  f"{key_id!r}, which is not pinned (CLEARANCE_TRUSTED_KEYS)")
            if row.columns is not None:  # (4)
                derived = _text_columns(body)
                if derived != row.columns:
                    name, stored, value = next((n, c, d) for n, c, d in zip(TEXT_COLUMNS, row.columns, derived,
                                                                              strict=True) if c != d)
                    raise _Failed(seq, "column", f"entry {seq}: column {name} is {stored!r}, "
                                                 f"the signed body says {value!r}")
            if self.fetch_blob is not None:  # (5)
                for member in ("input_sha256", "result_sha256"):
                    digest_hex = body.get(member)
                    if digest_hex is None:
                        continue
                    digest = bytes.fromhex(digest_hex) if isinstance(digest_hex, str) else b""
                    if digest not in self.good_blobs:
                        _check_blob(seq, member, digest, self.fetch_blob)
                        self.good_blobs.add(digest)
            moment = body.get("recorded_at")  # (6)
            if not isinstance(moment, str) or (self.last_time is not None and moment < self.last_time):
                raise _Failed(seq, "time_order", f"entry {seq}: recorded_at {moment!r} is before "
                                                 f"the previous entry's {self.last_time!r}")
            self.last_time = moment
            if seq == 1 and self.v1_head is not None:  # (10)
                _check_v1_head(body, self.v1_head)
            hashes.append(row.leaf_hash)
            if self.ci < len(pending) and pending[self.ci].size == seq:  # (8), at its size
                self._grow(hashes)
                hashes = []
                self._checkpoints(seq)
            self.checked += 1
            self.expected = seq + 1
        self._grow(hashes)

    # -- the fast path: a page with list operations ----------------------------------------------

    def page(self, page: LeafPage) -> None:
        if not self._page_passes(page):
            self.rows(page.rows())  # names the first failure, or finds none
            return
        # One fold of the whole page keeping every level; the root at each checkpoint's size is
        # then read off it (its edge: one node per set bit of the size). The subtree and
        # checkpoint checks run in the order the per-leaf path runs them: at each checkpoint
        # size, the subtrees completed by then, then the checkpoint; at the end, the rest.
        n = len(page.seqs)
        first, pending = page.seqs[0], self.pending
        old = self.frontier
        old_edge = dict(zip([n.level for n in old.nodes], old.hashes, strict=True))
        folded, rows = old.fold(page.leaf_hashes, keep=ALL_LEVELS)
        bad = self._first_bad_subtree(rows)
        while self.ci < len(pending) and pending[self.ci].size < first + n:  # (8), at their sizes
            size = pending[self.ci].size
            self.checked = size - self.from_seq
            if bad is not None and bad[0] <= size:
                self._subtree_failed(bad)
            self._checkpoints(size, _root_at(size, old_edge, rows))
        self.checked = first + n - self.from_seq
        if bad is not None:
            self._subtree_failed(bad)
        self.frontier = folded
        self.expected = first + n

    def _page_passes(self, page: LeafPage) -> bool:
        """Whether every leaf of the page passes steps 1–6 and 10 (``False``: one might not).

        The bodies are read by :class:`_Leaf` (msgspec), or by orjson if one does not fit it.
        Each check is the exact one over the page's lists; equality of lists compares element
        by element with ``==``, as the exact checks do. (4): a column (text or NULL) equals a
        member that is the same string, or null or missing where it is NULL; a member of another
        type never equals it here (the exact check may still pass it: it then decides).
        """
        seqs, bodies = page.seqs, page.bodies
        if not seqs or seqs != list(range(self.expected, self.expected + len(seqs))):  # (1)
            return False
        docs: list[Any] | None = _typed(bodies)  # (2)
        get: Callable[[str], Callable[[Any], Any]] = attrgetter
        if docs is None:
            get = itemgetter
            try:
                docs = list(map(orjson.loads, bodies))
            except orjson.JSONDecodeError:
                return False
            if set(map(type, docs)) != {dict}:
                return False
        try:  # a missing member or an unhashable key_id: the exact checks name it
            if list(map(get("seq"), docs)) != seqs:  # (2)
                return False
            for name, column in zip(TEXT_COLUMNS, page.columns, strict=True):  # (4)
                if list(map(get(name), docs)) != column:
                    return False
            key_ids = set(map(get("key_id"), docs))
        except (KeyError, TypeError):
            return False
        sha256 = hashlib.sha256  # (3)
        if [sha256(_LEAF_PREFIX + b).digest() for b in bodies] != page.leaf_hashes:
            return False
        if self.pinned_ids and not key_ids <= self.pinned_ids:
            return False
        if self.fetch_blob is not None and not self._blobs_pass(docs, get):  # (5)
            return False
        times = list(map(get("recorded_at"), docs))  # (6)
        if set(map(type, times)) != {str} or (self.last_time is not None and times[0] < self.last_time) or times != sorted(times):
            return False
        if seqs[0] == 1 and self.v1_head is not None:  # (10): the other checks of leaf 1 passed
            _check_v1_head(orjson.loads(bodies[0]), self.v1_head)
        self.last_time = times[-1]
        return True

    def _blobs_pass(self, docs: list[Any], get: Callable[[str], Callable[[Any], Any]]) -> bool:
        """(5) for the blobs the page names that are not yet checked; each as an input and as
        a result if named as both (the exact check checks it as its first use)."""
        named = {member: set(map(get(member), docs)) - self.good_hex - {None} for member in _BLOB_MEMBERS}
        if isinstance(self.fetch_blob, _BlobReader):
            try:  # one round trip for the page's new blobs, not one each
                self.fetch_blob.read_ahead([bytes.fromhex(h) for h in set().union(*named.values())])
            except (ValueError, TypeError):
                return False
        for member in _BLOB_MEMBERS:
            for digest_hex in named[member]:
                try:
                    digest = bytes.fromhex(digest_hex)
                    _check_blob(0, member, digest, self.fetch_blob)  # type: ignore[arg-type]
                except (_Failed, ValueError, TypeError):
                    return False
                self.good_blobs.add(digest)
                self.good_hex.add(digest_hex)
        return True

    # -- folding, subtrees, checkpoints, the end -------------------------------------------------

    def _grow(self, hashes: Sequence[bytes]) -> None:
        """(7): fold ``hashes`` into the frontier a level at a time, checking every stored
        subtree they complete; the first bad one in leaf order is named."""
        if not hashes:
            return
        self.frontier, kept = self.frontier.fold(hashes, keep=TREE_LEVELS if self.node_map is not None else ())
        bad = self._first_bad_subtree(kept)
        if bad is not None:
            self._subtree_failed(bad)

    def _first_bad_subtree(self, kept: Mapping[int, tuple[int, list[bytes]]]) -> tuple[int, int, int, bytes] | None:
        """``(end, level, index, hash)`` of the new stored subtree (levels 8, 16, …) that differs
        from the leaves' and ends first (the lower level first at one end), or ``None``."""
        node_map = self.node_map
        if node_map is None:
            return None
        worst: tuple[int, int, int, bytes] | None = None
        for level, (lo, row) in kept.items():
            if level not in TREE_LEVELS:
                continue
            for offset, value in enumerate(row):
                if node_map.get((level, lo + offset)) != value:
                    bad = ((lo + offset + 1) << level, level, lo + offset, value)
                    worst = bad if worst is None or bad < worst else worst
                    break
        return worst

    def _subtree_failed(self, bad: tuple[int, int, int, bytes]) -> None:
        _, level, index, value = bad
        stored = self.node_map.get((level, index)) if self.node_map is not None else None
        raise _Failed((index << level) + 1, "tree", f"stored subtree ({level}, {index}) "
                      f"of entries {(index << level) + 1}..{(index + 1) << level} is "
                      f"{stored.hex() if stored else 'missing'}, the leaves give {value.hex()}")

    def _checkpoints(self, size: int, root: bytes | None = None) -> None:
        """(8): every pending checkpoint of ``size``, whose tree's root is ``root`` (default:
        the frontier's, when it is of that size)."""
        pending = self.pending
        covered = self.trusted_size  # checkpoints of this size all name the entries after it
        if root is None:
            root = self.frontier.root()
        while self.ci < len(pending) and pending[self.ci].size == size:
            _check_checkpoint(pending[self.ci], self.opened.get(self.ci), root, covered)
            self.trusted_size = size
            self.checkpoints_checked += 1
            self.ci += 1

    def end(self, *, to_seq: int | None, head: tuple[int, bytes] | None) -> None:
        """After the last leaf: removed tails, checkpoints beyond the end, the head (9)."""
        last, pending, ci = self.expected - 1, self.pending, self.ci
        if to_seq is not None and last < to_seq:
            raise _Failed(last + 1, "missing", f"entry {last + 1} is missing (the range ends at {to_seq})")
        if ci < len(pending):
            # A checkpoint beyond the end proves removed entries only if a trusted key signed it:
            # a forged one (kept outside, say) is named as such, not taken as evidence.
            for beyond in pending[ci:]:
                try:
                    open_checkpoint(beyond.note, self.trusted, origin=self.origin)
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
            if root != self.frontier.root():
                raise _Failed(last, "head", f"the head's root {root.hex()} is not the root of the leaves "
                                            f"1..{last} {self.frontier.root().hex()}")
            if last and self.trusted_size != last:
                raise _Failed(self.trusted_size + 1, "checkpoint", f"no trusted checkpoint covers entries "
                                                                   f"{self.trusted_size + 1}..{last}")


def _root_at(size: int, old_edge: Mapping[int, bytes], rows: Mapping[int, tuple[int, list[bytes]]]) -> bytes:
    """The root of the first ``size`` leaves from a fold's rows (``Frontier.fold`` keeping every
    level) and the frontier it started from (``old_edge``: its hash per level): each edge node
    of ``size`` is new (in its level's row) or the old frontier's."""
    acc: bytes | None = None
    for level in range(size.bit_length()):
        if not size >> level & 1:
            continue
        index = (size >> level) - 1
        lo, row = rows.get(level, (index + 1, []))
        value = row[index - lo] if index >= lo else old_edge[level]
        acc = value if acc is None else hashlib.sha256(b"\x01" + value + acc).digest()
    return acc if acc is not None else EMPTY_ROOT


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


class _OpenedCheckpoints:
    """The pending checkpoints opened (``open_checkpoint``: parsed, signature checked with the
    trusted keys, by libsodium first: :mod:`audit._fastsig`) by a thread, in order, ahead of the
    leaves: the check releases the GIL, so the signatures run beside the hashing. Each
    result is the checkpoint or the exception opening it raised; it is judged where the
    leaves reach its size, as before."""

    def __init__(self, pending: Sequence[StoredLogCheckpoint], trusted: Sequence[Verifier],
                 origin: str | None) -> None:
        self._results: list[SignedCheckpoint | BaseException] = []
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._open, args=(list(pending), trusted, origin),
                                        name="audit-verify-checkpoints", daemon=True)
        self._thread.start()

    def _open(self, pending: list[StoredLogCheckpoint], trusted: Sequence[Verifier], origin: str | None) -> None:
        for checkpoint in pending:
            if self._stop.is_set():
                return
            try:
                result: SignedCheckpoint | BaseException = open_checkpoint(checkpoint.note, trusted, origin=origin)
            except BaseException as exc:  # noqa: BLE001 - judged (or raised) by the verifying thread
                result = exc
            with self._ready:
                self._results.append(result)
                self._ready.notify_all()

    def get(self, index: int) -> SignedCheckpoint | BaseException:
        with self._ready:
            self._ready.wait_for(lambda: len(self._results) > index)
            return self._results[index]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _check_checkpoint(checkpoint: StoredLogCheckpoint, opened: SignedCheckpoint | BaseException, root: bytes,
                      trusted_size: int) -> None:
    size = checkpoint.size
    if isinstance(opened, TlogError):
        raise _Failed(trusted_size + 1, "checkpoint_key", f"checkpoint of size {size} (entries {trusted_size + 1}.."
                                                          f"{size}) does not verify with a pinned key: {opened}")
    if isinstance(opened, BaseException):
        raise opened
    signed = opened
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
            fetch_blob = _BlobReader(conn)
            end = to_seq if to_seq is not None else size
            with map_errors("verifying the audit log"):
                return verify_leaves(
                    _pages(conn, from_seq, to_seq), trusted=trusted, origin=origin, checkpoints=checkpoints,
                    fetch_blob=fetch_blob, nodes=nodes,
                    head=(size, bytes(root)) if to_seq is None or to_seq >= size else None,
                    v1_head=v1_head if from_seq == 1 else None, from_seq=from_seq, to_seq=to_seq,
                    anchor=anchor, progress=progress, total=max(0, end - from_seq + 1))
        finally:
            if not conn.closed:
                conn.rollback()


def _pages(conn: psycopg.Connection[Any], from_seq: int, to_seq: int | None) -> Iterator[LeafPage]:
    """The leaves from ``from_seq`` (to ``to_seq``) a page at a time: one query per page, each
    starting after the last seq of the one before (so a gap is seen, never skipped).

    A thread reads the next page while the caller checks this one: PostgreSQL's part (reading,
    formatting the columns) then runs beside Python's instead of after it. The connection is
    psycopg's, safe to share (one statement at a time); the thread has ended when this returns.
    """
    after, last = from_seq - 1, to_seq if to_seq is not None else MAX_TREE_SIZE
    pages: queue.Queue[LeafPage | BaseException | None] = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def put(item: LeafPage | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        nonlocal after
        try:
            with conn.cursor(binary=True) as cur:  # bytes as stored, not hex
                while after < last and not stop.is_set():
                    found = cur.execute(SELECT_PAGE_SQL, (after, last, PAGE)).fetchone()
                    if found is None or found[0] is None:
                        break
                    page = LeafPage(found[0], found[1], found[2], found[3:])
                    after = max(page.seqs)
                    if not put(page):
                        return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            put(exc)
            return
        put(None)

    reader = threading.Thread(target=read, name="audit-verify-pages", daemon=True)
    reader.start()
    try:
        while (item := pages.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


class _BlobReader:
    """``fetch_blob`` of :func:`verify_leaves` over the database; :meth:`read_ahead` reads many
    blobs in one statement (kept until asked for once)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._cur = conn.cursor()
        self._ahead: dict[bytes, tuple[bytes, tuple[Any, ...]]] = {}

    def read_ahead(self, digests: Sequence[bytes]) -> None:
        if digests:
            for found in self._cur.execute(SELECT_BLOBS_SQL, (list(digests),)).fetchall():
                self._ahead[bytes(found[0])] = (bytes(found[1]), tuple(found[2:]))

    def __call__(self, digest: bytes) -> tuple[bytes, tuple[Any, ...]] | None:
        found = self._ahead.pop(digest, None)
        if found is not None:
            return found
        row = self._cur.execute(SELECT_BLOB_SQL, (digest,)).fetchone()
        return (bytes(row[0]), tuple(row[1:])) if row else None


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

"""Evidence packs: a contiguous range of the v2 log in files that verify offline, and one
decision's proof that reveals no other (C2SP tlog-proof in spirit).

A pack (``write_pack`` / ``verify_pack``) is a directory::

    manifest.json      format, origin, requested time range, first/last seq, file hashes
    entries.jsonl      one leaf per line: ``seq``, ``recorded_at``, ``leaf_hash``, the leaf's exact
                       bytes (``entry``) and its ``inclusion_proof`` (hex, RFC 9162 order) in the
                       checkpoint
    blobs.jsonl        each input and result blob the leaves name, once (``sha256``, ``data``: its
                       RFC 8785 text): thousands of decisions share a workload's blobs, so a
                       million leaves make a pack of ~1.5 GB instead of ~21 GB (format v3; a v2
                       pack, each line carrying its ``input`` and ``result``, still verifies)
    boundary.jsonl     the leaves just before and just after the range (bytes and proof, no
                       blobs): they show that nothing of the requested time range was left out
    checkpoint         the signed checkpoint note every proof folds to

Offline verification (:func:`verify_pack`) trusts only the verifier keys it is given: the
checkpoint must verify with one of them; every leaf must hash to its ``leaf_hash``, the blobs it
names must be in the pack and hash to their names, and it must be included in the checkpoint
at its seq; seqs are contiguous; and the range must be complete: it starts at seq 1 or after a
boundary leaf recorded before the requested start, and ends at the checkpoint's size or before a
boundary leaf recorded at or after the requested end. A pack cut at either end fails (``truncated``); one re-signed with
another key fails (``checkpoint_key``). The manifest is not signed; pass the range you asked for
(``requested``) to rule out a manifest rewritten to match a cut.

``prove_decision`` writes one decision's proof (``clearance.decision-proof.v1``): its leaf and
blobs and a C2SP tlog-proof (index, inclusion proof, checkpoint) — nothing about any other entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from psycopg.rows import namedtuple_row

from ._db import map_errors
from .canonical import format_time, parse_time
from .errors import ExportError, SigningKeyError
from .export import export_dict, psycopg_params
from .filters import EntryFilter, where_clause
from .keys import Keyring, PublicKey
from .log import StoredTiles
from .store import AuditStore
from .tlog.checkpoint import SignedCheckpoint, open_checkpoint
from .tlog.errors import TlogError
from .tlog.merkle import leaf_hash, node_hash, root_from_inclusion_proof
from .tlog.note import Ed25519Verifier, Verifier
from .tlog.proof import TlogProof, parse_tlog_proof, verify_tlog_proof
from .tlog.tiles import HASH_SIZE, TILE_HEIGHT, TILE_WIDTH, Tile
from .verify import Progress, VerificationResult
from .witnessing import cosignature_lines, with_cosignatures

__all__ = ["PACK_FORMAT", "PROOF_FORMAT", "PackVerification", "load_trusted_keys", "load_verifier_keys",
           "prove_decision", "verify_decision_proof", "verify_pack", "write_pack"]

PACK_FORMAT = "clearance.evidence-pack.v3"
INLINE_BLOBS_FORMAT = "clearance.evidence-pack.v2"  # each line carries its blobs (still verified)
PROOF_FORMAT = "clearance.decision-proof.v1"
MANIFEST_FILE = "manifest.json"
ENTRIES_FILE = "entries.jsonl"
BLOBS_FILE = "blobs.jsonl"
BOUNDARY_FILE = "boundary.jsonl"
CHECKPOINT_FILE = "checkpoint"
PAGE_SIZE = 1000
SET_SNAPSHOT_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
SELECT_TOP_SQL = (
    "SELECT h.origin, h.size, c.note FROM audit_tlog_head h "
    "LEFT JOIN audit_tlog_checkpoints c ON c.size = h.size WHERE h.id = 1"
)
SELECT_ROWS_SQL = (
    "SELECT seq, recorded_at, leaf_hash, body, input_data, result_data FROM audit_log "
    "WHERE seq >= %s AND seq <= %s ORDER BY seq"
)
SELECT_LEAF_SQL = "SELECT seq, recorded_at, leaf_hash, body FROM audit_leaves WHERE seq = %s"
SELECT_LEAVES_SQL = (
    "SELECT seq, recorded_at, leaf_hash, body, input_sha256, result_sha256 FROM audit_leaves "
    "WHERE seq >= %s AND seq <= %s ORDER BY seq"
)
SELECT_BLOBS_SQL = "SELECT sha256, data FROM audit_blobs WHERE sha256 = ANY(%s) ORDER BY sha256"


class _PathCache:
    """The complete subtrees of one tree for the inclusion proofs of many consecutive leaves.

    Consecutive leaves share most of their audit path: a node missing here is folded from its
    tile together with every node of the tile's 8 levels, once (a proof alone folds up to 128
    hashes per level, again for each leaf). Bounded: forgotten wholesale beyond ``LIMIT``
    nodes (a pack moves forward; folding again is cheap).
    """

    LIMIT = 1 << 18

    def __init__(self, tiles: StoredTiles, size: int) -> None:
        self._tiles, self._size = tiles, size
        self._known: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        found = self._known.get((level, index))
        if found is None:
            self._fold_level(level, index)
            found = self._known[(level, index)]
        return found

    def _fold_level(self, level: int, index: int) -> None:
        """Fold the tile holding node ``(level, index)``: every complete node of its 8 levels."""
        if len(self._known) > self.LIMIT:
            self._known.clear()
        tile_level, rise = divmod(level, TILE_HEIGHT)
        tile_index = (index << rise) // TILE_WIDTH
        width = min(TILE_WIDTH, (self._size >> (TILE_HEIGHT * tile_level)) - tile_index * TILE_WIDTH)
        data = self._tiles.tile(Tile(tile_level, tile_index, width))
        if len(data) != width * HASH_SIZE:
            raise TlogError(f"tile {tile_level}/{tile_index} of width {width} has {len(data)} bytes")
        row = [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        base = TILE_HEIGHT * tile_level
        for up in range(TILE_HEIGHT):
            first = (tile_index * TILE_WIDTH) >> up
            for offset, value in enumerate(row):
                self._known[(base + up, first + offset)] = value
            # Pairs of complete nodes only: an odd last one is not complete.
            row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]


class _Proofs:
    """Inclusion proofs of many leaves of one tree (RFC 9162 §2.1.3.1 PATH, bottom to top).

    The path of a leaf is the hashes of the ranges met walking down the tree to it. Every leaf
    of an aligned block of ``TILE_WIDTH`` leaves meets the same ranges above the block: those
    are kept for the block, so a proof walks at most 8 levels, reading nodes from the cache
    (planning and folding each proof on its own took ~0.8 ms a leaf: a million, ~13 minutes).
    """

    def __init__(self, nodes: _PathCache, size: int) -> None:
        self._nodes, self._size = nodes, size
        self._block: int | None = None
        self._top: list[str] = []  # the path above the block, bottom to top, in hex
        self._span = (0, size)  # the range the walk reaches the block with
        self._inside: list[list[str]] | None = None

    def proof(self, index: int) -> list[str]:
        """The inclusion proof of leaf ``index`` (hex hashes, bottom to top)."""
        if index >> TILE_HEIGHT != self._block:
            self._block = index >> TILE_HEIGHT
            top: list[bytes] = []
            self._span = self._walk(index, 0, self._size, top, lambda width: width > TILE_WIDTH)
            self._top = [h.hex() for h in reversed(top)]
            lo, hi = self._span
            # A whole block: every node in it, in hex, by level (510 for its 256 leaves' paths).
            self._inside = [[self._nodes.node(level, (lo >> level) + j).hex() for j in range(TILE_WIDTH >> level)]
                            for level in range(TILE_HEIGHT)] if hi - lo == TILE_WIDTH else None
        if self._inside is not None:  # the path in a whole block: the sibling at each level
            offset = index & (TILE_WIDTH - 1)
            return [row[(offset >> level) ^ 1] for level, row in enumerate(self._inside)] + self._top
        lo, hi = self._span
        low: list[bytes] = []
        self._walk(index, lo, hi, low, lambda width: width > 1)
        return [h.hex() for h in reversed(low)] + self._top

    def _walk(self, index: int, lo: int, hi: int, out: list[bytes], go: Any) -> tuple[int, int]:
        while go(hi - lo):
            k = 1 << ((hi - lo - 1).bit_length() - 1)  # the largest power of two below hi - lo
            if index < lo + k:
                out.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                out.append(self._range_hash(lo, lo + k))
                lo += k
        return lo, hi

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)``: its complete subtrees, largest first, folded from the right."""
        width = end - start
        if width & (width - 1) == 0:  # one complete subtree (every range but the right edge's)
            level = width.bit_length() - 1
            return self._nodes.node(level, start >> level)
        hashes = []
        for level in range(width.bit_length() - 1, -1, -1):
            if width >> level & 1:
                hashes.append(self._nodes.node(level, start >> level))
                start += 1 << level
        acc = hashes[-1]
        for value in reversed(hashes[:-1]):
            acc = node_hash(value, acc)
        return acc


class _Snapshot:
    """The newest checkpoint and proofs against it, inside one read-only snapshot."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.execute(SET_SNAPSHOT_SQL)
        origin, size, note = conn.execute(SELECT_TOP_SQL).fetchone()
        if int(size) == 0:
            raise ExportError("the log is empty; nothing to export")
        if note is None:
            raise ExportError(f"no checkpoint is stored for the head (size {size}); verify the log")
        self.conn, self.origin, self.size = conn, str(origin), int(size)
        self.note = with_cosignatures(str(note), cosignature_lines(conn, self.size))  # and the witnesses'
        self._proofs = _Proofs(_PathCache(StoredTiles(conn, self.size), self.size), self.size)

    def proof(self, seq: int) -> list[str]:
        return self._proofs.proof(seq - 1)

    def boundary(self, seq: int) -> dict[str, Any]:
        row = self.conn.execute(SELECT_LEAF_SQL, (seq,)).fetchone()
        return {"seq": int(row[0]), "recorded_at": format_time(row[1]), "leaf_hash": bytes(row[2]).hex(),
                "entry": bytes(row[3]).decode("utf-8"), "inclusion_proof": self.proof(seq)}


def write_pack(
    store: AuditStore,
    out_dir: str | os.PathLike[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the evidence pack of the leaves recorded in ``[start, end)``; returns the manifest.

    Everything is read in one REPEATABLE READ, read-only snapshot, against the newest
    checkpoint. Refuses a non-empty ``out_dir`` and a range without entries (:class:`ExportError`).
    """
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} exists and is not an empty directory; choose a new one")
    where, params = EntryFilter(start=start, end=end).sql()
    with map_errors("writing an evidence pack"), store._connection("writing an evidence pack") as conn:  # noqa: SLF001
        try:
            snap = _Snapshot(conn)
            where.append("seq <= :size")
            params["size"] = snap.size
            low, high = conn.execute(psycopg_params(
                f"SELECT min(seq), max(seq) FROM audit_leaves{where_clause(where)}"), params).fetchone()
            if low is None:
                raise ExportError("no entries were recorded in that time range; nothing to export")
            first, last = int(low), int(high)
            target.mkdir(parents=True, exist_ok=True)
            _write_bytes(target / CHECKPOINT_FILE, snap.note.encode())
            boundaries = [snap.boundary(s) for s in (first - 1, last + 1) if 1 <= s <= snap.size]
            _write_bytes(target / BOUNDARY_FILE, b"".join(orjson.dumps(b) + b"\n" for b in boundaries))
            count, total = 0, last - first + 1
            named: set[bytes] = set()  # the blobs the leaves name, written once each after them
            written = hashlib.sha256()  # of entries.jsonl, as written: not read back (GBs a million)
            with open(target / ENTRIES_FILE, "wb") as handle, conn.cursor(binary=True) as cur:
                moment, at = None, ""  # a batch's leaves share their time: formatted once
                for lo in range(first, last + 1, PAGE_SIZE):
                    lines = []
                    for seq, recorded_at, hash_, body, input_sha256, result_sha256 in cur.execute(
                            SELECT_LEAVES_SQL, (lo, min(last, lo + PAGE_SIZE - 1))):
                        if recorded_at != moment:
                            moment, at = recorded_at, format_time(recorded_at)
                        lines.append(orjson.dumps({
                            "seq": seq, "recorded_at": at, "leaf_hash": bytes(hash_).hex(),
                            "entry": bytes(body).decode("utf-8"), "inclusion_proof": snap.proof(seq)}))
                        named.update(bytes(d) for d in (input_sha256, result_sha256) if d is not None)
                    chunk = b"\n".join(lines) + b"\n"
                    handle.write(chunk)
                    written.update(chunk)
                    count += len(lines)
                    if progress is not None:
                        progress(count, total)
                handle.flush()
                os.fsync(handle.fileno())
            digests = sorted(named)
            with open(target / BLOBS_FILE, "wb") as handle, conn.cursor(binary=True) as cur:
                for lo in range(0, len(digests), PAGE_SIZE):
                    for digest, data in cur.execute(SELECT_BLOBS_SQL, (digests[lo:lo + PAGE_SIZE],)):
                        handle.write(orjson.dumps({"sha256": bytes(digest).hex(),
                                                   "data": bytes(data).decode("utf-8")}) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            if not conn.closed:
                conn.rollback()
    manifest = {
        "format": PACK_FORMAT,
        "created_at": format_time(datetime.now(UTC)),
        "origin": snap.origin,
        "requested": {"from": format_time(start) if start else None, "to": format_time(end) if end else None},
        "first_seq": first,
        "last_seq": last,
        "entries": count,
        "blobs": len(digests),
        "checkpoint_size": snap.size,
        "files": {ENTRIES_FILE: {"sha256": written.hexdigest(), "bytes": (target / ENTRIES_FILE).stat().st_size},
                  **{name: _file_digest(target / name) for name in (BLOBS_FILE, BOUNDARY_FILE, CHECKPOINT_FILE)}},
        "notes": [
            "Verify with: clearance audit verify --pack DIR --trusted-keys LOG_VERIFIER_KEYS",
            "Integrity comes from the signed checkpoint and the inclusion proofs; this manifest is "
            "not signed and its hashes only catch damaged or swapped files.",
            "The boundary leaves (without their blobs) show the range is complete.",
        ],
    }
    _write_bytes(target / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def prove_decision(store: AuditStore, decision_id: str) -> dict[str, Any]:
    """One decision's proof: its leaf and blobs and a C2SP tlog-proof against the newest
    checkpoint (``clearance.decision-proof.v1``). Reveals nothing about any other entry but
    the hashes of the proof. :class:`ExportError` if there is no such decision."""
    try:
        wanted = uuid.UUID(decision_id)
    except ValueError as exc:
        raise ExportError(f"{decision_id!r} is not a decision id (a UUID)") from exc
    with map_errors("proving a decision"), store._connection("proving a decision") as conn:  # noqa: SLF001
        try:
            snap = _Snapshot(conn)
            with conn.cursor(row_factory=namedtuple_row, binary=True) as cur:
                found = cur.execute("SELECT seq FROM audit_leaves WHERE decision_id = %s AND seq <= %s "
                                    "ORDER BY seq LIMIT 1", (wanted, snap.size)).fetchone()
                if found is None:
                    raise ExportError(f"no decision {decision_id} in the audit log")
                row = cur.execute(SELECT_ROWS_SQL, (found.seq, found.seq)).fetchone()
            proof = TlogProof(index=row.seq - 1, inclusion_proof=tuple(bytes.fromhex(h) for h in snap.proof(row.seq)),
                              checkpoint=snap.note)
        finally:
            if not conn.closed:
                conn.rollback()
    return {"format": PROOF_FORMAT, **export_dict(row), "tlog_proof": proof.format()}


def verify_decision_proof(document: dict[str, Any], *, trusted: Sequence[Verifier]) -> VerificationResult:
    """Verify :func:`prove_decision`'s output offline with ``trusted`` keys."""
    seq = document.get("seq") if isinstance(document.get("seq"), int) else None
    try:
        if document.get("format") != PROOF_FORMAT:
            raise _Bad(seq, "body", f"not a {PROOF_FORMAT} document")
        entry = _check_line(document, seq or 0)
        proof = parse_tlog_proof(str(document["tlog_proof"]))
        if proof.index != entry["seq"] - 1:
            raise _Bad(seq, "inclusion", f"the proof is for index {proof.index}, the entry is seq {entry['seq']}")
        try:
            verify_tlog_proof(proof, leaf_hash=bytes.fromhex(document["leaf_hash"]), log_verifiers=trusted)
        except TlogError as exc:
            check = "checkpoint_key" if "trusted" in str(exc) or "signature" in str(exc) else "inclusion"
            raise _Bad(seq, check, f"entry {seq}: {exc}") from None
    except (KeyError, TypeError, ValueError, TlogError) as exc:
        return VerificationResult(valid=False, checked=0, first_bad_seq=seq, check="body",
                                  reason=f"malformed decision proof: {exc}", log="v2")
    except _Bad as bad:
        return VerificationResult(valid=False, checked=0, first_bad_seq=bad.seq, check=bad.check, reason=bad.reason,
                                  log="v2")
    return VerificationResult(valid=True, checked=1, from_seq=seq or 1, to_seq=seq, checkpoints_checked=1, log="v2")


def load_trusted_keys(path: str | os.PathLike[str]) -> Keyring:
    """A keyring from a Clearance keyring JSON file or from PEM Ed25519 public key(s)."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read public key file {source}: {exc.strerror}") from exc
    if b"-----BEGIN PUBLIC KEY-----" in data:
        keys = []
        for block in data.split(b"-----END PUBLIC KEY-----")[:-1]:
            pem = block[block.index(b"-----BEGIN PUBLIC KEY-----"):] + b"-----END PUBLIC KEY-----\n"
            try:
                key = serialization.load_pem_public_key(pem)
            except ValueError as exc:
                raise SigningKeyError(f"{source}: not a PEM public key ({exc})") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise SigningKeyError(f"{source}: expected an Ed25519 public key")
            keys.append(PublicKey.from_raw(key.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)))
        return Keyring(keys)
    return Keyring.from_file(source)


def load_verifier_keys(path: str | os.PathLike[str]) -> list[Verifier]:
    """Pinned log verifier keys: a file of C2SP verifier keys (``name+hash+base64``), one a
    line; blank lines and ``#`` comments are skipped."""
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SigningKeyError(f"cannot read trusted keys file {source}: {exc.strerror}") from exc
    keys: list[Verifier] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            keys.append(Ed25519Verifier.from_key(text))
        except TlogError as exc:
            raise SigningKeyError(f"{source} line {number}: not a verifier key ({exc})") from exc
    if not keys:
        raise SigningKeyError(f"{source} holds no verifier key")
    return keys


@dataclass(frozen=True)
class PackVerification:
    """The verdict on an evidence pack, plus the manifest's file checks."""

    result: VerificationResult
    files: dict[str, str] = field(default_factory=dict)
    keys_source: str = "pinned"
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.result.valid

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "files": self.files, "keys_source": self.keys_source}


class _Bad(Exception):
    def __init__(self, seq: int | None, check: str, reason: str) -> None:
        super().__init__(reason)
        self.seq, self.check, self.reason = seq, check, reason


def _check_line(line: dict[str, Any], seq: int, blobs: set[str] | None = None) -> dict[str, Any]:
    """A leaf line: its bytes hash to ``leaf_hash`` and name its seq; the blobs it names are on
    the line (v2, a decision proof) or among ``blobs`` (v3: the digests of blobs.jsonl whose
    data hash to them)."""
    data = str(line["entry"]).encode("utf-8")
    if leaf_hash(data) != bytes.fromhex(line["leaf_hash"]):
        raise _Bad(seq, "leaf_hash", f"entry {seq}: leaf_hash is not SHA-256(0x00 ‖ entry)")
    entry = orjson.loads(data)
    if not isinstance(entry, dict) or entry.get("seq") != line.get("seq"):
        raise _Bad(seq, "seq", f"entry {seq}: the leaf says seq {entry.get('seq') if isinstance(entry, dict) else None}")
    for member, name in (("input_sha256", "input"), ("result_sha256", "result")):
        blob = line.get(name)
        digest = entry.get(member)
        if digest is None and blob is None:
            continue
        if blob is None and blobs is not None:
            if digest not in blobs:
                raise _Bad(seq, "blob", f"entry {seq}: the {name} blob {digest} is not in {BLOBS_FILE} "
                                        "or does not hash to its name")
            continue
        if blob is None or digest != hashlib.sha256(str(blob).encode("utf-8")).hexdigest():
            raise _Bad(seq, "blob", f"entry {seq}: the {name} blob does not hash to the leaf's {member}")
    return entry


def _included(line: dict[str, Any], checkpoint: SignedCheckpoint, seq: int) -> None:
    try:
        root = root_from_inclusion_proof(leaf_hash=bytes.fromhex(line["leaf_hash"]), index=seq - 1,
                                         size=checkpoint.size,
                                         proof=[bytes.fromhex(h) for h in line["inclusion_proof"]])
    except TlogError as exc:
        raise _Bad(seq, "inclusion", f"entry {seq}: {exc}") from None
    if root != checkpoint.root_hash:
        raise _Bad(seq, "inclusion", f"entry {seq}: the inclusion proof does not fold to the checkpoint's root")


def verify_pack(
    pack_dir: str | os.PathLike[str],
    *,
    trusted: Sequence[Verifier],
    requested: tuple[datetime | None, datetime | None] | None = None,
    progress: Progress | None = None,
) -> PackVerification:
    """Verify an evidence pack offline with ``trusted`` verifier keys (see the module).

    ``requested``: the time range you asked for; default the manifest's (unsigned) one.
    """
    root = Path(pack_dir)
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{root} is not an evidence pack: cannot read {MANIFEST_FILE}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") not in (PACK_FORMAT, INLINE_BLOBS_FORMAT):
        raise ExportError(f"{root / MANIFEST_FILE} is not a {PACK_FORMAT} manifest")
    files: dict[str, str] = {}
    for name, expected in (manifest.get("files") or {}).items():
        path = root / name
        if not path.is_file():
            files[name] = "missing"
        elif _file_digest(path)["sha256"] != expected.get("sha256"):
            files[name] = "sha256 mismatch"
        else:
            files[name] = "ok"
    if requested is None:
        asked = manifest.get("requested") or {}
        requested = (parse_time(asked["from"]) if asked.get("from") else None,
                     parse_time(asked["to"]) if asked.get("to") else None)
    first_seq = int(manifest.get("first_seq", 1))
    checked = 0
    try:
        try:
            checkpoint = open_checkpoint((root / CHECKPOINT_FILE).read_text(encoding="utf-8"), trusted)
        except (OSError, TlogError) as exc:
            raise _Bad(first_seq, "checkpoint_key", f"the pack's checkpoint does not verify with a pinned key: "
                                                    f"{exc}") from None
        blobs = _good_blobs(root / BLOBS_FILE) if manifest["format"] == PACK_FORMAT else None
        expected = first_seq
        for line in _lines(root / ENTRIES_FILE):
            seq = line.get("seq")
            if isinstance(seq, int) and seq < expected:
                raise _Bad(seq, "duplicate", f"entry {seq} appears twice (or out of order)")
            if seq != expected:
                raise _Bad(expected, "missing", f"entry {expected} is missing (next in the pack: {seq})")
            _check_line(line, seq, blobs)
            _included(line, checkpoint, seq)
            checked += 1
            expected += 1
            if progress is not None and checked % PAGE_SIZE == 0:
                progress(checked, None)
        last = expected - 1
        if checked == 0:
            raise _Bad(first_seq, "truncated", "the pack holds no entries")
        boundary = {b.get("seq"): b for b in _lines(root / BOUNDARY_FILE)}
        _check_end(boundary.get(first_seq - 1), first_seq, "before", requested[0], checkpoint)
        _check_end(boundary.get(last + 1), last, "after", requested[1], checkpoint)
        if manifest.get("last_seq") is not None and int(manifest["last_seq"]) != last:
            raise _Bad(last + 1, "truncated", f"the manifest says the pack ends at {manifest['last_seq']}, "
                                              f"its last entry is {last}")
        if any(state != "ok" for state in files.values()):
            bad = ", ".join(f"{name}: {state}" for name, state in files.items() if state != "ok")
            raise _Bad(None, "manifest", f"pack files differ from the manifest ({bad})")
    except _Bad as bad:
        result = VerificationResult(valid=False, checked=checked, first_bad_seq=bad.seq, check=bad.check,
                                    reason=bad.reason, from_seq=first_seq, log="v2")
    except (KeyError, TypeError, ValueError) as exc:
        result = VerificationResult(valid=False, checked=checked, first_bad_seq=first_seq + checked, check="body",
                                    reason=f"malformed pack line: {exc!r}", from_seq=first_seq, log="v2")
    else:
        result = VerificationResult(valid=True, checked=checked, from_seq=first_seq, to_seq=last,
                                    checkpoints_checked=1, log="v2")
    return PackVerification(result=result, files=files, manifest=manifest)


def _good_blobs(path: Path) -> set[str]:
    """The digests (hex) of the pack's blobs whose data hash to them. A blob that does not is
    left out: the first entry naming it fails (``blob``), as the log's verification names it."""
    good: set[str] = set()
    if not path.is_file():  # the manifest check names it missing; the first leaf with a blob fails
        return good
    for line in _lines(path):
        if hashlib.sha256(str(line["data"]).encode("utf-8")).hexdigest() == line["sha256"]:
            good.add(line["sha256"])
    return good


def _check_end(neighbour: dict[str, Any] | None, seq: int, side: str, moment: datetime | None,
               checkpoint: SignedCheckpoint) -> None:
    """The range is complete on ``side``: it is the log's edge, or the neighbouring leaf is in
    the log and was recorded outside the requested time range."""
    edge = seq == 1 if side == "before" else seq == checkpoint.size
    if edge:
        return
    where = seq - 1 if side == "before" else seq + 1
    cut = f"the pack is cut {'at its head' if side == 'before' else 'at its tail'}: entry {where}"
    if neighbour is None or moment is None:
        raise _Bad(where, "truncated", f"{cut} is neither in the pack nor shown to be outside the requested range")
    entry = orjson.loads(str(neighbour["entry"]).encode("utf-8"))
    if leaf_hash(str(neighbour["entry"]).encode("utf-8")) != bytes.fromhex(neighbour["leaf_hash"]) \
            or entry.get("seq") != where:
        raise _Bad(where, "truncated", f"{cut}: its boundary leaf does not hash to its leaf_hash")
    _included(neighbour, checkpoint, where)
    at = parse_time(entry["recorded_at"])
    inside = at >= moment if side == "before" else at < moment
    if inside:
        raise _Bad(where, "truncated", f"{cut} was recorded inside the requested range and is missing")


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        for raw in handle:
            if raw.strip():
                line = orjson.loads(raw)
                if not isinstance(line, dict):
                    raise ValueError(f"{path.name}: a line is not a JSON object")
                yield line


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}

"""Evidence packs: a contiguous range of the trail in files that verify offline.

A pack (``write_pack`` / ``verify_pack``) is a directory::

    manifest.json      format, log id, seq and time range, file hashes, what it does not prove
    entries.jsonl      one entry per line: seq, recorded_at, key_id, prev_hash, entry_hash,
                       signature (base64) and body (the canonical JSON text: the signed bytes)
    keys.json          the public keys (clearance.keyring.v1)
    checkpoints.jsonl  the signed checkpoints whose seq lies in the range, one per line

A pack holds a *contiguous* seq range (every entry of its time range), so that every link of
the chain can be checked. When a stored checkpoint exists at or after the last entry of the
requested range, the pack is extended up to it: the pack then ends on a signed checkpoint, and
cutting entries off its end is detected (``truncated``). The manifest is not signed; its file
hashes catch accidental damage, while tampering is caught by the signatures and the chain.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._db import map_errors
from .canonical import format_time
from .chain import StoredEntry
from .checkpoints import SignedCheckpoint
from .errors import AuditEntryInvalid, CheckpointError, ExportError, SigningKeyError
from .export import export_line, psycopg_params
from .filters import EntryFilter, where_clause
from .keys import Keyring, PublicKey
from .snapshot import SELECT_KEYS_SQL
from .store import AuditStore
from .verify import Progress, VerificationResult, verify_chain

__all__ = ["PACK_FORMAT", "PackVerification", "load_trusted_keys", "verify_pack", "write_pack"]

PACK_FORMAT = "clearance.evidence-pack.v1"
MANIFEST_FILE = "manifest.json"
ENTRIES_FILE = "entries.jsonl"
KEYS_FILE = "keys.json"
CHECKPOINTS_FILE = "checkpoints.jsonl"
PAGE_SIZE = 1000
# The first stored checkpoint at or after the requested end: the pack is extended to it.
SELECT_COVERING_CHECKPOINT_SQL = (
    "SELECT min(seq) FROM audit_checkpoints WHERE seq >= %(last)s AND seq <= %(head)s"
)


def write_pack(
    store: AuditStore,
    out_dir: str | os.PathLike[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the evidence pack of the entries recorded in ``[start, end)``; returns the manifest.

    Everything is read in one REPEATABLE READ, read-only snapshot. Refuses a non-empty
    ``out_dir`` and a range without entries (:class:`ExportError`).
    """
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} exists and is not an empty directory; choose a new one")
    where, params = EntryFilter(start=start, end=end).sql()
    # One REPEATABLE READ, read-only transaction; files that cannot be written fail as the
    # database would (AuditUnavailable), and nothing is half-reported as a pack.
    with map_errors("writing an evidence pack"), store.snapshot() as snapshot:
        conn = snapshot.connection
        head = snapshot.head()
        low, high = conn.execute(psycopg_params(
            f"SELECT min(seq), max(seq) FROM audit_entries{where_clause(where)}"), params).fetchone()
        if low is None:
            raise ExportError("no entries were recorded in that time range; nothing to export")
        requested_last = min(int(high), head.seq)
        cover = conn.execute(SELECT_COVERING_CHECKPOINT_SQL, {"last": requested_last, "head": head.seq}
                             ).fetchone()[0]
        first, last = int(low), int(cover) if cover is not None else requested_last
        target.mkdir(parents=True, exist_ok=True)
        keys = conn.execute(SELECT_KEYS_SQL).fetchall()
        keyring = Keyring(PublicKey(key_id=key_id, raw=bytes(raw), created_at=created_at)
                          for key_id, raw, created_at in keys)
        _write_bytes(target / KEYS_FILE,
                     (json.dumps(keyring.to_dict(), indent=2, sort_keys=True) + "\n").encode())
        checkpoints = snapshot.fetch_checkpoints(first, last)
        _write_bytes(target / CHECKPOINTS_FILE, b"".join(
            orjson.dumps(SignedCheckpoint.from_body(c.body, c.signature).to_dict()) + b"\n"
            for c in checkpoints))
        count = 0
        total = last - first + 1
        with open(target / ENTRIES_FILE, "wb") as handle:
            for entry in snapshot.fetch_entries(first, last, page_size=PAGE_SIZE):
                handle.write(export_line(entry))
                count += 1
                if progress is not None and count % PAGE_SIZE == 0:
                    progress(count, total)
            handle.flush()
            os.fsync(handle.fileno())
        if progress is not None:
            progress(count, total)
    manifest = {
        "format": PACK_FORMAT,
        "created_at": format_time(datetime.now(UTC)),
        "log_id": str(head.log_id),
        "requested": {"from": format_time(start) if start else None,
                      "to": format_time(end) if end else None},
        "first_seq": first,
        "last_seq": last,
        "entries": count,
        "requested_last_seq": requested_last,
        "tail_checkpoint_seq": last if cover is not None else None,
        "checkpoints": len(checkpoints),
        "files": {name: _file_digest(target / name)
                  for name in (ENTRIES_FILE, KEYS_FILE, CHECKPOINTS_FILE)},
        "notes": [
            "Verify with: clearance audit verify --pack DIR --pubkey PUBLISHED_KEYS",
            "Integrity comes from the Ed25519 signatures and the hash chain; this manifest is "
            "not signed and its hashes only catch damaged or swapped files.",
            "The first entry's prev_hash is taken as given (it is covered by its signature).",
            "Entries after the last checkpoint in checkpoints.jsonl could be cut off without "
            "detection unless you hold a later checkpoint from elsewhere.",
        ],
    }
    _write_bytes(target / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


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


@dataclass(frozen=True)
class PackVerification:
    """The verdict on an evidence pack: the chain verdict plus the manifest's file checks."""

    result: VerificationResult
    files: dict[str, str] = field(default_factory=dict)
    keys_source: str = "pack"
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.result.valid

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "files": self.files, "keys_source": self.keys_source}


def verify_pack(
    pack_dir: str | os.PathLike[str],
    *,
    keyring: Keyring | None = None,
    progress: Progress | None = None,
) -> PackVerification:
    """Verify an evidence pack offline: no database, only the files (and trusted keys).

    Steps: (1) the manifest is a Clearance pack; (2) every file's SHA-256 is recomputed;
    (3) the entries are verified as a chain (``verify_chain``: body, link, hash, key,
    signature, time) with the pack's checkpoints as outside checkpoints (a checkpoint beyond
    the last entry reports ``truncated``); (4) checkpoints belong to the manifest's log;
    (5) the entries cover the manifest's seq range. A chain failure is reported first (it names
    the seq); a file hash mismatch with an otherwise valid chain fails as ``manifest``.

    :param keyring: trusted public keys (``--pubkey``); default the pack's own ``keys.json``,
        which proves only that the pack is self-consistent.
    """
    root = Path(pack_dir)
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{root} is not an evidence pack: cannot read {MANIFEST_FILE}: {exc}") from exc
    # (1) Manifest.
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise ExportError(f"{root / MANIFEST_FILE} is not a {PACK_FORMAT} manifest")
    # (2) File hashes.
    files: dict[str, str] = {}
    for name, expected in (manifest.get("files") or {}).items():
        path = root / name
        if not path.is_file():
            files[name] = "missing"
        elif _file_digest(path)["sha256"] != expected.get("sha256"):
            files[name] = "sha256 mismatch"
        else:
            files[name] = "ok"
    keys_source = "pinned" if keyring is not None else "pack"
    if keyring is None:
        keyring = Keyring.from_file(root / KEYS_FILE)
    checkpoints = _read_checkpoints(root / CHECKPOINTS_FILE)
    first_seq = int(manifest.get("first_seq", 1))
    last_seq = manifest.get("last_seq")
    entries_path = root / ENTRIES_FILE

    def fetch(lo: int, hi: int | None) -> Iterator[StoredEntry]:
        # Entries are in seq order: stop reading at the first one past ``hi``.
        for entry in _read_entries(entries_path):
            if hi is not None and entry.seq > hi:
                return
            if entry.seq >= lo:
                yield entry

    # (3) The chain, with the pack's checkpoints.
    try:
        result = verify_chain(
            fetch_entries=fetch, keyring=keyring, from_seq=first_seq,
            outside_checkpoints=checkpoints, anchored=False, progress=progress,
        )
    except _MalformedLine as bad:
        result = VerificationResult(valid=False, checked=0, first_bad_seq=bad.seq,
                                    reason=str(bad), check="body", from_seq=first_seq)
    log_id = manifest.get("log_id")
    # (4) Checkpoints of this log.
    if result.valid:
        for checkpoint in checkpoints:
            if log_id is not None and checkpoint.log_id != log_id:
                result = _failed(result, checkpoint.seq, "checkpoint",
                                 f"checkpoint {checkpoint.seq} is for log {checkpoint.log_id}, "
                                 f"the pack is of log {log_id}")
                break
    # (5) Coverage of the manifest's range.
    if result.valid and last_seq is not None and (result.to_seq or 0) < int(last_seq):
        end = result.to_seq or first_seq - 1
        result = _failed(result, end + 1, "truncated",
                         f"entries {end + 1}..{last_seq} are missing: the manifest says the pack "
                         f"ends at seq {last_seq}, the last entry is {end}")
    if result.valid and any(state != "ok" for state in files.values()):
        bad = ", ".join(f"{name}: {state}" for name, state in files.items() if state != "ok")
        result = _failed(result, None, "manifest", f"pack files differ from the manifest ({bad})")
    return PackVerification(result=result, files=files, keys_source=keys_source,
                            manifest=manifest)


class _MalformedLine(Exception):
    def __init__(self, seq: int, message: str) -> None:
        super().__init__(message)
        self.seq = seq


def _read_entries(path: Path) -> Iterator[StoredEntry]:
    previous = 0
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = StoredEntry.from_export_dict(orjson.loads(line))
            except (orjson.JSONDecodeError, AuditEntryInvalid, AttributeError) as exc:
                raise _MalformedLine(previous + 1,
                                     f"{path.name} line {number} (after seq {previous}) is not "
                                     f"an exported entry: {exc}") from None
            previous = entry.seq
            yield entry


def _read_checkpoints(path: Path) -> list[SignedCheckpoint]:
    if not path.is_file():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(SignedCheckpoint.from_dict(json.loads(line)))
        except (ValueError, CheckpointError) as exc:
            raise ExportError(f"{path.name} line {number}: {exc}") from exc
    return out


def _failed(result: VerificationResult, seq: int | None, check: str, reason: str
            ) -> VerificationResult:
    return replace(result, valid=False, first_bad_seq=seq, check=check, reason=reason)

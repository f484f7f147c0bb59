"""The report's verification section: the period's entries verified, the checkpoint that seals
them, and the commands that re-check the evidence pack offline.

One function finds the sealing checkpoint and its witness cosignatures
(:data:`CheckpointSource`, default :func:`checkpoint_from_pack`): a log whose checkpoints are
cosigned by witnesses plugs in a source that returns them, and nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from ..canonical import format_time
from ..checkpoints import SignedCheckpoint
from ..keys import Keyring
from ..store import AuditStore
from ..verify import Progress, verify_database
from .model import CheckpointEvidence, VerificationSection

__all__ = ["CheckpointSource", "checkpoint_from_pack", "manifest_sha256", "verify_section"]

CheckpointSource = Callable[[Path], "CheckpointEvidence | None"]


def manifest_sha256(pack_dir: Path) -> str:
    """SHA-256 of the pack's manifest.json, which holds the SHA-256 of every other file of the
    pack: naming it in the report binds the report to exactly those files."""
    return hashlib.sha256((pack_dir / "manifest.json").read_bytes()).hexdigest()


def checkpoint_from_pack(pack_dir: Path) -> CheckpointEvidence | None:
    """The checkpoint the pack ends on (``tail_checkpoint_seq``), from its checkpoints.jsonl; when
    no checkpoint seals the end yet, the newest one in the pack (``seals_end=False``).

    The v1 chain's checkpoints are signed by the log's key alone: no cosignatures.
    """
    manifest = json.loads((pack_dir / "manifest.json").read_text(encoding="utf-8"))
    tail = manifest.get("tail_checkpoint_seq")
    path = pack_dir / "checkpoints.jsonl"
    if not path.is_file():
        return None
    newest: SignedCheckpoint | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            checkpoint = SignedCheckpoint.from_dict(json.loads(line))
            if newest is None or checkpoint.seq > newest.seq:
                newest = checkpoint
    if newest is None:
        return None
    return CheckpointEvidence(
        seq=newest.seq, recorded_at=format_time(newest.recorded_at), log_id=newest.log_id,
        key_id=newest.key_id, head_hash=newest.head_hash.hex(), seals_end=newest.seq == tail)


def verify_section(
    store: AuditStore,
    pack_dir: Path,
    *,
    pack_name: str,
    keyring: Keyring | None = None,
    checkpoint_source: CheckpointSource = checkpoint_from_pack,
    progress: Progress | None = None,
    workers: int = 1,
) -> VerificationSection:
    """Verify, in the database, the seq range the pack holds, and say how to re-check the pack.

    The database is verified rather than the pack's files because it also checks the queryable
    columns against the signed bodies (step 8 of ``audit/verify.py``): the report's counts come
    from those columns, so an edited column must make the report say NOT INTACT. The pack holds
    the same entries' signed bytes; its file hashes were taken as it was written.

    :param pack_name: the pack's path as the reader will type it, relative to the report.
    :param keyring: trusted keys (default: the database's key table; say so in the report).
    """
    manifest = json.loads((pack_dir / "manifest.json").read_text(encoding="utf-8"))
    result = verify_database(store, from_seq=int(manifest["first_seq"]), to_seq=int(manifest["last_seq"]),
                             keyring=keyring, progress=progress, workers=workers)
    return VerificationSection(
        valid=result.valid, checked=result.checked, from_seq=result.from_seq, to_seq=result.to_seq,
        first_bad_seq=result.first_bad_seq, check=result.check, reason=result.reason,
        keys_source="pinned" if keyring is not None else "database",
        files={name: digest["sha256"] for name, digest in (manifest.get("files") or {}).items()},
        checkpoint=checkpoint_source(pack_dir) if result.valid else None,
        commands=[
            f"clearance audit verify --pack {pack_name} --pubkey PUBLISHED_KEYS.json",
            f"sha256sum {pack_name}/manifest.json",
        ],
    )

"""The report's verification section: the period's entries verified, the checkpoint that seals
them, and the commands that re-check the evidence pack offline.

One function finds the sealing checkpoint and its witness cosignatures
(:data:`CheckpointSource`, default :func:`checkpoint_from_pack`: the pack's cosigned checkpoint
note). Verification trusts the pinned keys only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..logverify import verify_log
from ..pack import CHECKPOINT_FILE
from ..store import AuditStore
from ..tlog.checkpoint import Checkpoint
from ..tlog.errors import TlogError
from ..tlog.note import Verifier, parse_note
from ..verify import Progress
from .model import CheckpointEvidence, Cosignature, VerificationSection

__all__ = ["CheckpointSource", "checkpoint_from_pack", "manifest_sha256", "verify_section"]

CheckpointSource = Callable[[Path], "CheckpointEvidence | None"]


def manifest_sha256(pack_dir: Path) -> str:
    """SHA-256 of the pack's manifest.json, which holds the SHA-256 of every other file of the
    pack: naming it in the report binds the report to exactly those files."""
    return hashlib.sha256((pack_dir / "manifest.json").read_bytes()).hexdigest()


def checkpoint_from_pack(pack_dir: Path) -> CheckpointEvidence | None:
    """The v2 checkpoint the pack was written against (its ``checkpoint`` note, which covers
    every leaf of the pack: ``seals_end``), with the witnesses' cosignatures it carries
    (signature lines named other than the log's origin). Read only once the range verified."""
    manifest = json.loads((pack_dir / "manifest.json").read_text(encoding="utf-8"))
    path = pack_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        note = parse_note(path.read_text(encoding="utf-8"))
        checkpoint = Checkpoint.parse(note.text)
    except TlogError:
        return None
    own = [s for s in note.signatures if s.name == checkpoint.origin]
    return CheckpointEvidence(
        seq=checkpoint.size, recorded_at=str(manifest.get("created_at") or ""), log_id=checkpoint.origin,
        key_id=own[0].key_id.hex() if own else "", head_hash=checkpoint.root_hash.hex(),
        cosignatures=[Cosignature(witness=s.name, key_id=s.key_id.hex(), signed_at=None)
                      for s in note.signatures if s.name != checkpoint.origin],
        source="evidence pack checkpoint", seals_end=checkpoint.size >= int(manifest["last_seq"]))


def verify_section(
    store: AuditStore,
    pack_dir: Path,
    *,
    pack_name: str,
    trusted: Sequence[Verifier],
    checkpoint_source: CheckpointSource = checkpoint_from_pack,
    progress: Progress | None = None,
    workers: int = 1,
) -> VerificationSection:
    """Verify, in the database, the seq range the pack holds, and say how to re-check the pack.

    The database is verified rather than the pack's files because it also checks the queryable
    columns against the leaves (step 4 of ``audit/logverify.py``): the report's counts come
    from those columns, so an edited column must make the report say NOT INTACT. The pack holds
    the same leaves' exact bytes; its file hashes were taken as it was written.

    :param pack_name: the pack's path as the reader will type it, relative to the report.
    :param trusted: the pinned verifier keys (never the database's key table).
    :param workers: unused by the v2 verifier (one process); kept for the callers' signature.
    """
    del workers
    manifest = json.loads((pack_dir / "manifest.json").read_text(encoding="utf-8"))
    result = verify_log(store, trusted=trusted, from_seq=int(manifest["first_seq"]),
                        to_seq=int(manifest["last_seq"]), progress=progress)
    return VerificationSection(
        valid=result.valid, checked=result.checked, from_seq=result.from_seq, to_seq=result.to_seq,
        first_bad_seq=result.first_bad_seq, check=result.check, reason=result.reason,
        keys_source="pinned",
        files={name: digest["sha256"] for name, digest in (manifest.get("files") or {}).items()},
        checkpoint=checkpoint_source(pack_dir) if result.valid else None,
        commands=[
            f"clearance audit verify --pack {pack_name} --trusted-keys PINNED_KEYS",
            f"sha256sum {pack_name}/manifest.json",
        ],
    )

"""The report's verification section: the period's entries verified, the checkpoint that seals
them, and the commands that re-check the evidence pack offline.

One function finds the sealing checkpoint and its witness cosignatures
(:data:`CheckpointSource`, default :func:`checkpoint_from_pack`: the pack's cosigned checkpoint
note). Verification trusts the pinned keys only.

:class:`BackgroundVerification` verifies the period's range in another process while this one
writes the evidence pack: both are Python work of about the same size (a million leaves, ~30 s
each), so on two cores the report takes the time of one of them, not of both.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clearance.children import exit_with_parent

from ..errors import AuditUnavailable
from ..logverify import verify_log
from ..pack import CHECKPOINT_FILE
from ..store import AuditStore
from ..tlog.checkpoint import Checkpoint
from ..tlog.errors import TlogError
from ..tlog.note import Ed25519Verifier, Verifier, parse_note
from ..verify import Progress, VerificationResult
from .model import CheckpointEvidence, Cosignature, VerificationSection

__all__ = ["BackgroundVerification", "CheckpointSource", "checkpoint_from_pack", "manifest_sha256",
           "verify_section"]

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


class BackgroundVerification:
    """``verify_log`` of ``from_seq..to_seq`` in a child process (spawned: no state shared with
    this one but the database URL and the pinned verifier keys, as text), its progress passed on.

    :meth:`result` waits for the verdict; :meth:`cancel` stops it.
    """

    def __init__(self, store: AuditStore, *, trusted: Sequence[Ed25519Verifier], from_seq: int, to_seq: int,
                 progress: Progress | None = None) -> None:
        self.range = (from_seq, to_seq)
        context = multiprocessing.get_context("spawn")
        self._messages: Any = context.Queue()
        self._process = context.Process(
            target=_verify_in_child, name="clearance-report-verify", daemon=True,
            args=(store.engine.url.render_as_string(hide_password=False), [v.verifier_key for v in trusted],
                  from_seq, to_seq, self._messages, os.getpid()))
        self._process.start()
        self._outcome: tuple[str, Any] | None = None
        self._reader = threading.Thread(target=self._read, args=(progress,), name="clearance-report-verify",
                                        daemon=True)
        self._reader.start()

    @staticmethod
    def possible(trusted: Sequence[Verifier]) -> bool:
        """Only Ed25519 verifier keys cross to the child (as their C2SP text)."""
        return all(isinstance(v, Ed25519Verifier) for v in trusted)

    def _read(self, progress: Progress | None) -> None:
        while True:
            try:
                kind, *value = self._messages.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():  # died without a word (killed, out of memory)
                    self._outcome = ("error", f"the verification process exited with code {self._process.exitcode}")
                    return
                continue
            if kind == "progress":
                if progress is not None:
                    progress(*value)
                continue
            self._outcome = (kind, value[0])
            return

    def result(self) -> VerificationResult:
        self._reader.join()
        self._process.join()
        assert self._outcome is not None
        kind, value = self._outcome
        if kind == "error":
            raise AuditUnavailable(f"verifying the period: {value}")
        return value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _verify_in_child(url: str, keys: list[str], from_seq: int, to_seq: int, messages: Any, parent: int) -> None:
    # A killed parent takes no verdict: do not go on verifying (~30 s per million leaves) or
    # waiting on the database with a connection of its own.
    exit_with_parent(parent)
    try:
        store = AuditStore.from_url(url, pooled=False)
        result = verify_log(store, trusted=[Ed25519Verifier.from_key(k) for k in keys], from_seq=from_seq,
                            to_seq=to_seq, progress=lambda done, total: messages.put(("progress", done, total)))
        store.dispose()
        messages.put(("result", result))
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        messages.put(("error", f"{type(exc).__name__}: {exc}"))


def verify_section(
    store: AuditStore,
    pack_dir: Path,
    *,
    pack_name: str,
    trusted: Sequence[Verifier],
    checkpoint_source: CheckpointSource = checkpoint_from_pack,
    progress: Progress | None = None,
    started: BackgroundVerification | None = None,
) -> VerificationSection:
    """Verify, in the database, the seq range the pack holds, and say how to re-check the pack.

    The database is verified rather than the pack's files because it also checks the queryable
    columns against the leaves (step 4 of ``audit/logverify.py``): the report's counts come
    from those columns, so an edited column must make the report say NOT INTACT. The pack holds
    the same leaves' exact bytes; its file hashes were taken as it was written.

    :param pack_name: the pack's path as the reader will type it, relative to the report.
    :param trusted: the pinned verifier keys (never the database's key table).
    :param started: a verification started before the pack was written: its verdict is used if
        it covered exactly the pack's range (else it is stopped and the pack's range verified).
    """
    manifest = json.loads((pack_dir / "manifest.json").read_text(encoding="utf-8"))
    first, last = int(manifest["first_seq"]), int(manifest["last_seq"])
    if started is not None and started.range == (first, last):
        result = started.result()
    else:
        if started is not None:
            started.cancel()
        result = verify_log(store, trusted=trusted, from_seq=first, to_seq=last, progress=progress)
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

"""Service configuration, from the environment (``CLEARANCE_*``), in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_REGO = Path(__file__).resolve().parents[1] / "rego"


MAX_WORKERS = 64


def default_workers() -> int:
    """One worker per core this process may run on (its CPU affinity, which container CPU sets
    narrow; ``os.cpu_count()`` where affinity is unknown): the rate grows with workers up to the
    core count and falls past it (docs/performance.md)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def default_policy_dir() -> Path:
    """``./rego`` when there is one, else the bundle shipped beside the package (a checkout)."""
    here = Path.cwd() / "rego"
    return here if here.is_dir() else REPO_REGO


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEARANCE_", extra="ignore")

    # Unset: an embedded PostgreSQL is started under ``home``/pg (see api/embedded.py).
    database_url: str | None = None
    # A key file path, or the key itself (PEM, or base64 of the 32 raw bytes).
    signing_key: SecretStr | None = None
    policy_dir: Path = Field(default_factory=default_policy_dir)
    engine: Literal["regorus", "opa"] = "regorus"
    # ``clearance serve`` worker processes (CLEARANCE_WORKERS; ``--workers`` overrides it);
    # unset: one per core (default_workers).
    workers: int | None = Field(default=None, ge=1, le=MAX_WORKERS)
    # With several workers on Linux, each listens on a socket of its own (SO_REUSEPORT) and the
    # kernel spreads new connections over them; off: all share the supervisor's (api/supervisor.py).
    reuseport: bool = True
    # A candidate bundle evaluated beside the active one on live traffic (shadow mode): never
    # changes an answer; each decision's audit entry records whether the candidate agreed.
    shadow_policy_dir: Path | None = None
    opa_url: str | None = None
    # Engine opa: seconds allowed for each of connecting to OPA and reading its answer, per decision.
    opa_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Engine opa: take over an OPA that holds another Clearance revision (delete its modules)
    # instead of refusing to start. Only for an OPA this instance alone uses (docs/engines.md).
    opa_replace: bool = False
    home: Path = Path.home() / ".clearance"
    # Request bodies above this size are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # ``POST /v1/decisions`` answered by its fast path (api/fast_path.py), the same answers with
    # less CPU; off: through the FastAPI route, as every other endpoint (to compare the two).
    fast_decisions: bool = True
    # A response's status line, headers and body written to the socket as one write when the
    # app sends them in one step (api/http_protocol.py); off: uvicorn's two writes.
    http_coalesce: bool = True
    # Verified API keys are cached this long; a revocation takes effect within it.
    apikey_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    # Refused keys (unknown or revoked id, wrong secret) are remembered this long (10,000 at
    # most), so one presented again and again is not looked up each time.
    apikey_negative_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # The auditor's reads (search, stats, export, one entry) that run at once, on threads and
    # database connections of their own; more wait their turn. Decisions never wait for them.
    auditor_concurrency: int = Field(default=2, ge=1, le=32)
    # Verifications (GET /v1/audit/verify) that run at once, each in a process of its own at a
    # lower CPU priority; more wait their turn.
    verify_concurrency: int = Field(default=1, ge=1, le=32)
    # Group commit: how long the audit writer collects entries, and the most it takes at once.
    # The window is waited only after a batch of more than one entry (under load): a caller
    # alone never waits. 0: no window; a batch is what queued while the previous one committed.
    audit_batch_ms: float = Field(default=1.0, ge=0, le=1000)
    audit_batch_max: int = Field(default=256, ge=1, le=10_000)
    # The worker processes of this host hand each other the audit log head they committed
    # through ``<checkpoint file>.head`` (audit/head_mailbox.py), so a batch after a sibling's
    # is one guarded round trip, not a full head check. A hint the database's guard confirms.
    audit_head_mailbox: bool = True
    # The GIL switch interval of a serving process (Python's default is 5 ms): the audit writer
    # thread gets the GIL back sooner after each socket wait it makes holding the log's head lock.
    switch_interval_ms: float = Field(default=0.5, gt=0, le=100)
    # A serving process freezes its heap out of the cyclic collector's full passes every this
    # many seconds (0: never) and thaws and collects it all every gc_thaw_seconds (api/heap.py).
    gc_freeze_seconds: float = Field(default=0.1, ge=0, le=3600)
    gc_thaw_seconds: float = Field(default=600.0, gt=0, le=86_400)
    # Evaluations a serving process keeps (api/decider.py), each about 100 KB once recorded (its
    # answer, the entry's encoded members, the answer's JSON): the memory a worker's cache can
    # take when every request is a new input (~110 MB at 1024). 0: none kept.
    decision_cache_size: int = Field(default=1024, ge=0, le=1_000_000)
    # An audit batch that has waited this long in the database (a lock on the log head held
    # elsewhere, a stalled server) is logged with the sessions that block it, and counted
    # (clearance_audit_stalled_total), again every as many seconds (audit/head_watch.py).
    audit_stalled_seconds: float = Field(default=5.0, gt=0, le=3600)
    # A signed checkpoint every N entries or T seconds, whichever comes first.
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_seconds: float = Field(default=60.0, gt=0)
    # Where the newest signed checkpoint is exported (default ``home``/checkpoint.json). Keep a
    # copy somewhere the database's operators cannot rewrite: it is what exposes a cut tail.
    checkpoint_file: Path | None = None
    # Witnesses (C2SP tlog-witness) each new checkpoint is pushed to, off the request path:
    # entries `URL VKEY` separated by newlines or commas, or `@FILE` (audit/witnessing.py).
    witnesses: str | None = None
    # Per request to a witness; failed pushes are retried after 1 s, 2 s, … up to the maximum.
    witness_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    witness_max_backoff_seconds: float = Field(default=60.0, gt=0, le=3600)
    # The verifier keys verification trusts (C2SP signed-note form, one per line; audit/trust.py).
    # Unset: ``<signing key file>.trusted`` when it exists (``keys init|rotate`` write it); keep
    # the file you point this at where the database's operators cannot write.
    trusted_keys: Path | None = None
    # The log's name: the key name of its verifier keys and the first line of its checkpoints.
    log_origin: str = "clearance/audit"

    def serve_workers(self, flag: int | None = None) -> int:
        """Worker processes for ``clearance serve``: the flag, else CLEARANCE_WORKERS, else one per core."""
        return flag or self.workers or default_workers()

    def key_file(self) -> Path:
        return self.home / "signing.key"

    def trusted_keys_path(self) -> Path:
        """The pinned keys file: ``CLEARANCE_TRUSTED_KEYS``, else beside the key file (the one
        ``CLEARANCE_SIGNING_KEY`` names, when it names a file)."""
        from audit.trust import trusted_keys_path_for

        if self.trusted_keys is not None:
            return self.trusted_keys
        named = self.signing_key.get_secret_value().strip() if self.signing_key is not None else ""
        if named and not named.startswith("-----BEGIN") and "\n" not in named and Path(named).is_file():
            return trusted_keys_path_for(Path(named))
        return trusted_keys_path_for(self.key_file())

    def checkpoint_path(self) -> Path:
        return self.checkpoint_file or self.home / "checkpoint.json"

"""The one object built at start-up: database, active policy, decider, audit writer, API keys,
metrics.

Everything a request needs hangs off ``Services``; nothing lives in module globals. The active
policy is swapped as a whole (``PolicyHolder``), so a request sees one bundle from start to end.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from api.apikeys import KeyVerifier
from api.embedded import start_embedded
from api.metrics import Metrics
from api.decider import Decider, PolicyHolder
from api.settings import Settings
from api.verify_worker import VerifierProcesses
from api.workpool import WorkPool
from audit import AuditStore, AuditWriter, CheckpointPolicy, SigningKey, load_signing_key
from audit.logverify import verify_trail
from audit.tlog.note import Verifier
from audit.trust import trusted_verifiers
from policy import ActivePolicy, load_policy
from policy.review.gitinfo import git_info

log = logging.getLogger("clearance")


def build_policy(settings: Settings, directory: Path | None = None) -> ActivePolicy:
    """The active policy from ``directory`` (default: the configured one) with the configured
    engine: used at start-up and by every reload, so both build it the same way. Its git commit
    and dirtiness are recorded with every decision."""
    directory = directory or settings.policy_dir
    return load_policy(directory, engine=settings.engine, opa_url=settings.opa_url,
                       opa_timeout=settings.opa_timeout_seconds, opa_replace=settings.opa_replace,
                       git=git_info(directory))


def build_shadow(directory: Path) -> ActivePolicy:
    """A shadow candidate always runs on the embedded engine: in-process, and an OPA server
    holds one bundle at a time (the active one, when the engine is ``opa``)."""
    return load_policy(directory, git=git_info(directory))


def resolve_database_url(settings: Settings) -> tuple[str, Any | None]:
    """The configured database, or an embedded one started now (with its handle)."""
    if settings.database_url:
        return settings.database_url, None
    url, handle = start_embedded(settings.home)
    return url, handle


def load_key(settings: Settings) -> SigningKey:
    """``CLEARANCE_SIGNING_KEY`` (key, or path of a key file) else ``~/.clearance/signing.key``."""
    value = settings.signing_key
    if value is not None:
        secret = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return load_signing_key(environ={"CLEARANCE_SIGNING_KEY": secret})
    return load_signing_key(settings.key_file())


@dataclass
class Services:
    settings: Settings
    policy: PolicyHolder
    store: AuditStore
    writer: AuditWriter
    decider: Decider
    keys: KeyVerifier
    metrics: Metrics
    embedded: Any | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The candidate bundle evaluated beside the active one (CLEARANCE_SHADOW_POLICY_DIR).
    shadow: PolicyHolder | None = None
    # Serialises reloads (endpoint and SIGHUP): each one checks, records and swaps alone.
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    # The auditor's heavy reads run on their own threads and connections (``reads``), the
    # API-key lookups on theirs: neither can take what decisions need (api/workpool.py).
    reads: AuditStore | None = None
    auditor_work: WorkPool = field(default_factory=lambda: WorkPool("clearance-auditor", threads=2))
    key_lookups: WorkPool = field(default_factory=lambda: WorkPool("clearance-keys", threads=4))

    verifier: VerifierProcesses | None = None

    def trusted_verifiers(self) -> Sequence[Verifier]:
        """The checkpoint keys the API trusts (``audit.trust.trusted_verifiers``)."""
        store = self.audit_reads
        return trusted_verifiers(store.list_keys(), store.log_origin())

    async def verify_trail(self, **options: Any) -> dict[str, Any]:
        """``audit.logverify.verify_trail`` over the trail: in the verifier processes
        (``api/verify_worker.py``), or on an auditor thread when there are none."""
        trusted = await self.auditor_work.run(self.trusted_verifiers)
        if self.verifier is not None:
            keys = [v.verifier_key for v in trusted]  # type: ignore[attr-defined]
            return await self.verifier.verify(trusted_keys=keys, **options)
        result = await self.auditor_work.run(verify_trail, self.audit_reads, trusted=trusted, **options)
        return result.to_dict()

    @property
    def audit_reads(self) -> AuditStore:
        """The store the auditor's endpoints read through (its own connection pool)."""
        return self.reads if self.reads is not None else self.store

    @property
    def db(self) -> Engine:
        return self.store.engine

    @classmethod
    def start(cls, settings: Settings) -> Services:
        """Load the policy, connect, check the schema, start the audit writer.

        Raises ``BundleError``, ``SigningKeyError``, ``SchemaMismatch`` or ``AuditUnavailable``
        with a message that says what to do; the service does not start half-configured.
        """
        policy = build_policy(settings)
        shadow = build_shadow(settings.shadow_policy_dir) if settings.shadow_policy_dir else None
        key = load_key(settings)
        url, embedded = resolve_database_url(settings)
        store = AuditStore.from_url(url, pool_size=4)
        # Up to twice as many connections as concurrent reads: a streamed export keeps its
        # connection between the chunks its client reads.
        reads = AuditStore.from_url(url, pool_size=settings.auditor_concurrency)
        metrics = Metrics.create()
        writer = AuditWriter(
            store,
            key=key,
            max_batch=settings.audit_batch_max,
            max_wait=settings.audit_batch_ms / 1000,
            checkpoints=CheckpointPolicy(
                every_entries=settings.checkpoint_every,
                every_seconds=settings.checkpoint_seconds,
                export_path=settings.checkpoint_path(),
            ),
            on_batch=metrics.audit_batch_size.observe,
            on_refused=metrics.audit_log_refused.inc,
        ).start()
        log.info("policy %s loaded from %s; audit key %s; pid %d", policy.revision, settings.policy_dir,
                 key.key_id, os.getpid())
        if shadow is not None:
            log.info("shadow policy %s loaded from %s", shadow.revision, settings.shadow_policy_dir)
        active = PolicyHolder(policy)
        candidate = PolicyHolder(shadow) if shadow is not None else None
        return cls(
            settings=settings,
            policy=active,
            store=store,
            writer=writer,
            decider=Decider(policy=active, shadow=candidate, writer=writer, metrics=metrics),
            keys=KeyVerifier(store.engine, ttl=settings.apikey_cache_seconds,
                             negative_ttl=settings.apikey_negative_cache_seconds),
            metrics=metrics,
            embedded=embedded,
            shadow=candidate,
            reads=reads,
            auditor_work=WorkPool("clearance-auditor", threads=settings.auditor_concurrency),
            verifier=VerifierProcesses(url, processes=settings.verify_concurrency),
        )

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
        self.auditor_work.close()
        self.key_lookups.close()
        self.writer.close()
        self.store.dispose()
        if self.reads is not None:
            self.reads.dispose()
        if self.embedded is not None:
            self.embedded.cleanup()

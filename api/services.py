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

import psycopg
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from api.apikeys import KeyVerifier
from api.key_misses import KeyMisses
from api.embedded import start_embedded
from api.metrics import Metrics
from api.decider import Decider, PolicyHolder
from api.pinned import PinnedKeys, pinned_or_own
from api.redact import redact
from api.settings import Settings
from api.verify_worker import VerifierProcesses, verify_with_keys
from api.workpool import WorkPool
from audit import (
    AuditError,
    AuditStore,
    AuditWriter,
    CheckpointPolicy,
    SigningKey,
    load_signing_key,
)
from audit.head_mailbox import HeadMailbox, mailbox_path_for
from audit.log import SharedTiles
from audit.roles import LeastPrivilegeStore, role_report
from audit.tlog.note import Verifier
from audit.trust import check_keyring, first_signed_seqs, require_pinned
from audit.witnessing import WitnessPusher
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


def build_witnessing(settings: Settings, store: AuditStore, metrics: Metrics) -> WitnessPusher | None:
    """The witness pusher of ``CLEARANCE_WITNESSES`` (not started), reporting to ``metrics``."""
    from audit.witnessing import parse_witnesses

    witnesses = parse_witnesses(settings.witnesses) if settings.witnesses else []
    if not witnesses:
        return None
    log.info("witnesses: %s", ", ".join(f"{w.name} at {w.url}" for w in witnesses))
    return WitnessPusher(
        store, witnesses, timeout=settings.witness_timeout_seconds, max_backoff=settings.witness_max_backoff_seconds,
        on_cosigned=lambda name: metrics.witness_cosignatures.labels(name).inc(),
        on_error=lambda name: metrics.witness_errors.labels(name).inc(),
        on_alarm=lambda name, _reason: metrics.witness_alarms.labels(name).inc())


def _warn_about_trust(store: AuditStore, pinned: PinnedKeys, url: str) -> None:
    """One log line each: a role that can change keys; keys the database knows and nobody
    pinned; no pinned keys at all. The service still starts (verification reports the rest)."""
    try:
        warning = role_report(store.engine).warning()
        report = check_keyring(store.keyring(), pinned.verifiers,
                               first_seq=lambda ids: first_signed_seqs(store.engine, ids))
    except (AuditError, SQLAlchemyError, psycopg.Error) as exc:  # a diagnostic never stops the start
        log.warning("could not check the database role and keys: %s", exc)
        return
    if warning:
        log.warning("%s (database %s)", warning, redact(url))
    if pinned.own_key_only:
        log.warning("no pinned verifier keys (CLEARANCE_TRUSTED_KEYS): verification trusts only the "
                    "service's own signing key; pin the keys of every log key ever used")
    if not report.trusted:
        log.error("untrusted signing keys: %s", "; ".join(report.problems()))


def _warm_proof_tiles(tiles: SharedTiles, reads: AuditStore) -> None:
    """Fold the tree's tiles above level 0 before the first proof: nearly every proof needs one,
    and a cold one costs that proof a second read and ~255 hashes (at 10M leaves ~0.2 s here,
    once per worker). A failure only leaves the cache cold: proofs fill it as before."""
    try:
        with reads.log_statement() as conn:
            warmed = tiles.warm(conn)
        log.debug("proof tiles: %d upper tiles folded at start", warmed)
    except Exception as exc:  # noqa: BLE001 — never a reason not to start
        log.warning("proof tiles not warmed at start (%s); proofs fold them as they go", exc)


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
    # Renewals of cached keys in use have threads of their own: a backlog of misses (a flood of
    # unknown keys) cannot hold them until the answers they renew expire.
    key_renewals: WorkPool = field(default_factory=lambda: WorkPool("clearance-keys-renew", threads=2))
    # The misses of the key caches, read in batches on key_lookups' threads (api/key_misses.py).
    key_misses: KeyMisses = field(init=False)

    verifier: VerifierProcesses | None = None
    # Pushes each checkpoint to the witnesses of CLEARANCE_WITNESSES (None: no witnesses).
    witnessing: WitnessPusher | None = None
    # The verifier keys verification trusts (CLEARANCE_TRUSTED_KEYS; api/pinned.py).
    pinned: PinnedKeys | None = None
    # Folded tiles the proof endpoints share across audit_reads' connections (never verification).
    proof_tiles: SharedTiles = field(default_factory=SharedTiles)

    def __post_init__(self) -> None:
        self.key_misses = KeyMisses(self.keys, self.key_lookups)

    def trusted_verifiers(self) -> Sequence[Verifier]:
        """The checkpoint keys every verification path trusts: the pinned ones only."""
        if self.pinned is None:
            raise RuntimeError("Services.pinned is not set")
        return self.pinned.verifiers

    async def verify_trail(self, **options: Any) -> dict[str, Any]:
        """``audit.logverify.verify_trail`` over the trail with the pinned keys only (an entry
        or checkpoint signed by a key known only to the database fails): in the verifier
        processes (``api/verify_worker.py``), or on an auditor thread when there are none."""
        keys = [v.verifier_key for v in self.trusted_verifiers()]
        if self.verifier is not None:
            return await self.verifier.verify(trusted_keys=keys, **options)
        result = await self.auditor_work.run(verify_with_keys, self.audit_reads, keys, **options)
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
        pinned = pinned_or_own(settings, key.public)
        require_pinned(key.public, pinned.verifiers, source=pinned.source)  # never sign what verification refuses
        url, embedded = resolve_database_url(settings)
        # A role under `clearance db grant` may not register keys: the admin CLI has.
        store = LeastPrivilegeStore.from_url(url, pool_size=4)
        # Up to twice as many connections as concurrent reads: a streamed export keeps its
        # connection between the chunks its client reads.
        reads = AuditStore.from_url(url, pool_size=settings.auditor_concurrency)
        metrics = Metrics.create()
        witnessing = build_witnessing(settings, store, metrics)
        mailbox = (HeadMailbox(mailbox_path_for(settings.checkpoint_path()), key)
                   if settings.audit_head_mailbox else None)
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
            on_checkpoint=witnessing.submit if witnessing is not None else None,
            trusted=pinned.verifiers,
            origin=settings.log_origin,
            on_refused=lambda when: metrics.audit_log_refused.labels(when).inc(),
            stalled_after=settings.audit_stalled_seconds,
            on_stalled=lambda _waited: metrics.audit_stalled.inc(),
            mailbox=mailbox,
        ).start()
        if witnessing is not None:
            witnessing.start()
        log.info("policy %s loaded from %s; audit key %s; pid %d", policy.revision, settings.policy_dir,
                 key.key_id, os.getpid())
        _warn_about_trust(store, pinned, url)
        if shadow is not None:
            log.info("shadow policy %s loaded from %s", shadow.revision, settings.shadow_policy_dir)
        active = PolicyHolder(policy)
        candidate = PolicyHolder(shadow) if shadow is not None else None
        proof_tiles = SharedTiles()
        _warm_proof_tiles(proof_tiles, reads)
        return cls(
            settings=settings,
            policy=active,
            store=store,
            writer=writer,
            decider=Decider(policy=active, shadow=candidate, writer=writer, metrics=metrics,
                            cache_size=settings.decision_cache_size),
            keys=KeyVerifier(store.engine, ttl=settings.apikey_cache_seconds,
                             negative_ttl=settings.apikey_negative_cache_seconds),
            metrics=metrics,
            embedded=embedded,
            shadow=candidate,
            reads=reads,
            auditor_work=WorkPool("clearance-auditor", threads=settings.auditor_concurrency),
            verifier=VerifierProcesses(url, processes=settings.verify_concurrency),
            witnessing=witnessing,
            pinned=pinned,
            proof_tiles=proof_tiles,
        )

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
        self.auditor_work.close()
        self.key_lookups.close()
        self.key_renewals.close()
        self.writer.close()
        if self.witnessing is not None:
            self.witnessing.close()
        self.store.dispose()
        if self.reads is not None:
            self.reads.dispose()
        if self.embedded is not None:
            self.embedded.cleanup()

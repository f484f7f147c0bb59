"""Clearance's signed, hash-chained audit trail in PostgreSQL.

Public surface (what ``api/`` uses); see ``docs/audit.md`` for the formats and guarantees::

    store  = AuditStore.from_url(url)                 # postgresql+psycopg://…
    key    = load_signing_key(path)                   # or CLEARANCE_SIGNING_KEY
    writer = AuditWriter(store, key=key, checkpoints=CheckpointPolicy(...)).start()
    receipt = writer.append({"kind": "decision", ...})        # or await writer.append_async(...)
    result = verify_database(store, from_seq=1, checkpoint_files=[...])
    writer.close()

Dependencies run one way: ``api`` uses ``audit``; ``audit`` never imports ``api`` or ``policy``.
"""

from __future__ import annotations

from .chain import Receipt as V1Receipt
from .chain import StoredEntry
from .log import LogReceipt as Receipt
from .log import LogStateMismatch
from .checkpoints import (
    CheckpointPolicy,
    SignedCheckpoint,
    read_checkpoint_file,
    write_checkpoint_file,
)
from .entry import (
    DecisionMembers,
    decision_fields,
    key_event_fields,
    prepare_fields,
    reload_fields,
    served_fields,
)
from .errors import (
    AuditEntryInvalid,
    AuditError,
    AuditUnavailable,
    CheckpointError,
    CheckpointFileError,
    DatabaseUrlInvalid,
    ExportError,
    InsecureKeyFile,
    SchemaMismatch,
    SigningKeyError,
    WriterClosed,
)
from .keys import (
    Keyring,
    PublicKey,
    SigningKey,
    export_keyring,
    init_key,
    key_id_for,
    load_signing_key,
    rotate_key,
)
from .migrate import upgrade
from .snapshot import ChainHeadState
from .store import AuditStore
from .verify import VerificationResult, verify_chain, verify_database, verify_entries
from .writer import AuditWriter

__all__ = [
    "AuditEntryInvalid",
    "AuditError",
    "AuditStore",
    "AuditUnavailable",
    "AuditWriter",
    "ChainHeadState",
    "CheckpointError",
    "CheckpointFileError",
    "CheckpointPolicy",
    "DatabaseUrlInvalid",
    "ExportError",
    "DecisionMembers",
    "InsecureKeyFile",
    "Keyring",
    "PublicKey",
    "LogStateMismatch",
    "Receipt",
    "V1Receipt",
    "SchemaMismatch",
    "SignedCheckpoint",
    "SigningKey",
    "SigningKeyError",
    "StoredEntry",
    "VerificationResult",
    "WriterClosed",
    "decision_fields",
    "export_keyring",
    "init_key",
    "key_event_fields",
    "key_id_for",
    "load_signing_key",
    "prepare_fields",
    "read_checkpoint_file",
    "reload_fields",
    "rotate_key",
    "served_fields",
    "upgrade",
    "verify_chain",
    "verify_database",
    "verify_entries",
    "write_checkpoint_file",
]

"""SQLAlchemy 2 typed mappings of the audit tables.

The schema itself is created by the Alembic migrations in ``migrations/`` (partitions,
triggers, roles and grants are PostgreSQL DDL the mappings cannot express); these classes are
for typed queries and for Alembic's ``target_metadata``. :data:`SCHEMA_REVISION` is the
migration that created these tables.

Uniqueness of ``seq``: ``audit_entries`` is partitioned by month on ``recorded_at``, and
PostgreSQL requires a partitioned table's primary key to contain the partition key, so the key
is ``(seq, recorded_at)``. That ``seq`` alone is unique and contiguous is guaranteed by the
writer protocol (``seq`` is taken from the single ``audit_chain_head`` row locked ``FOR UPDATE``
in the appending transaction) and checked by verification.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    LargeBinary,
    SmallInteger,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_REVISION = "0001_audit_trail"

__all__ = [
    "SCHEMA_REVISION",
    "AuditEntry",
    "Base",
    "ChainHead",
    "Checkpoint",
    "SigningKeyRecord",
]


class Base(DeclarativeBase):
    pass


class AuditEntry(Base):
    """One signed entry; partitioned by month on ``recorded_at`` (native RANGE partitioning)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_recorded_at", "recorded_at"),
        Index("ix_audit_entries_app_recorded_at", "app_id", "recorded_at"),
        Index("ix_audit_entries_outcome_recorded_at", "outcome", "recorded_at"),
        Index("ix_audit_entries_policy_revision", "policy_revision", "recorded_at"),
        Index("ix_audit_entries_decision_id", "decision_id"),
        {"postgresql_partition_by": "RANGE (recorded_at)"},
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    app_id: Mapped[str | None] = mapped_column(Text)
    caller_key_id: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    policy_revision: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[str | None] = mapped_column(Text)
    regulatory_tier: Mapped[str | None] = mapped_column(Text)
    sector: Mapped[str | None] = mapped_column(Text)
    models_allowed: Mapped[list[str]] = mapped_column(ARRAY(Text))
    models_denied: Mapped[list[str]] = mapped_column(ARRAY(Text))
    reason_codes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    provenances_allowed: Mapped[list[str]] = mapped_column(ARRAY(Text))
    key_id: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    """The exact canonical bytes that were hashed and signed (as JSONB: the view
    ``audit_entries_json``, derived from these bytes when read)."""


class ChainHead(Base):
    """The single row (id = 1) that serialises appends: last seq and its entry hash."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    log_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """A signed statement "the log had ``seq`` entries ending in ``head_hash`` at this time"."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class SigningKeyRecord(Base):
    """A public key that signed (or may sign) entries; never deleted, so old entries verify."""

    __tablename__ = "audit_signing_keys"

    key_id: Mapped[str] = mapped_column(Text, primary_key=True)
    algorithm: Mapped[str] = mapped_column(Text)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

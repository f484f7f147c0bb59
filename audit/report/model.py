"""What a period report holds: plain data, gathered by ``gather.py``, rendered by ``render.py``.

Every count here comes from :func:`audit.queries.stats` with the filters named beside it
(``Count.query``), so ``GET /v1/audit/stats`` with the same parameters answers the same number.
Lists (reloads, flagged served routes, key events) are the entries themselves, read through the
export stream; their lengths are counts too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "CheckpointEvidence",
    "Cosignature",
    "DayCounts",
    "EventEntry",
    "FlaggedServed",
    "ReloadEntry",
    "ReportData",
    "RevisionSpan",
    "VerificationSection",
]


@dataclass(frozen=True)
class DayCounts:
    """One UTC day of a chart: counts per series value (an outcome, a provenance)."""

    day: str  # RFC 3339 start of the day (as /v1/audit/stats answers ``bucket``)
    counts: dict[str, int]


@dataclass(frozen=True)
class RevisionSpan:
    """A policy revision that recorded entries in the period, and when."""

    revision: str
    entries: int
    first_at: str
    last_at: str
    git_commit: str | None
    git_dirty: bool | None
    git_path: str | None


@dataclass(frozen=True)
class ReloadEntry:
    seq: int
    recorded_at: str
    outcome: str  # accepted | refused
    requested_by: str | None
    old_revision: str | None
    new_revision: str | None
    new_git_commit: str | None
    errors: list[str]


@dataclass(frozen=True)
class FlaggedServed:
    """A gateway's report that a route the decision did not clear served the call."""

    seq: int
    recorded_at: str
    app_id: str | None
    decision_id: str | None
    model: str | None
    deployment: str | None
    reasons: list[str]


@dataclass(frozen=True)
class EventEntry:
    """An entry of another kind (key creation, rotation, revocation… when the log records them)."""

    seq: int
    recorded_at: str
    kind: str
    summary: str


@dataclass(frozen=True)
class Cosignature:
    witness: str
    key_id: str | None
    signed_at: str | None


@dataclass(frozen=True)
class CheckpointEvidence:
    """The signed checkpoint that seals the period's entries, and who else vouched for it."""

    seq: int
    recorded_at: str
    log_id: str
    key_id: str
    head_hash: str
    cosignatures: list[Cosignature] = field(default_factory=list)
    source: str = "evidence pack checkpoints.jsonl"
    seals_end: bool = True  # False: the newest checkpoint precedes the period's last entry


@dataclass(frozen=True)
class VerificationSection:
    valid: bool
    checked: int
    from_seq: int
    to_seq: int | None
    first_bad_seq: int | None
    check: str | None
    reason: str | None
    keys_source: str
    files: dict[str, str]
    checkpoint: CheckpointEvidence | None
    commands: list[str]


@dataclass
class ReportData:
    """The whole report, before rendering (also written as ``report.json``)."""

    period_from: str
    period_to: str
    generated_at: str
    log_id: str
    signing_keys: list[str]
    entries_total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    first_seq: int | None = None
    last_seq: int | None = None
    decisions_by_outcome: dict[str, int] = field(default_factory=dict)
    shown_from: str | None = None  # the first entry's time: the charts start there
    shown_to: str | None = None  # the last entry's time
    bucket: str = "day"  # of the charts: day, or week for periods of more than a year
    days_by_outcome: list[DayCounts] = field(default_factory=list)
    cleared_by_provenance: dict[str, int] = field(default_factory=dict)
    days_by_provenance: list[DayCounts] = field(default_factory=list)
    denial_reasons_by_app: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    revisions: list[RevisionSpan] = field(default_factory=list)
    reloads: list[ReloadEntry] = field(default_factory=list)
    served_total: int = 0
    served_flagged_total: int = 0
    served_flagged: list[FlaggedServed] = field(default_factory=list)
    key_events: list[EventEntry] = field(default_factory=list)
    dangerous_capability: dict[str, dict[str, int]] = field(default_factory=dict)
    gated: dict[str, dict[str, int]] = field(default_factory=dict)
    listed_limit: int = 0
    pack_dir: str | None = None
    pack_manifest_sha256: str | None = None
    pack_entries: int | None = None
    verification: VerificationSection | None = None
    # The stats query behind each headline count: name -> query string of /v1/audit/stats.
    queries: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.entries_total == 0

    @property
    def refused_reloads(self) -> list[ReloadEntry]:
        return [r for r in self.reloads if r.outcome != "accepted"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

"""Which entries a query, a count, an export or a pack covers: :class:`EntryFilter` and its SQL.

The conditions use the queryable columns derived from the signed bytes (``audit/entry.py``) and
their indexes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["MODEL_STATUSES", "TRACE_KEYS", "TRACE_KEYS_SQL", "EntryFilter", "where_clause"]

MODEL_STATUSES = ("cleared", "denied")
# The expression of ix_audit_entries_trace_keys (migration 0007), verbatim, and the prefixes of
# the keys it derives from the signed body: the call a decision was made for (``context``) and,
# for a served-route report, the decision it reports on and whether that decision cleared it.
TRACE_KEYS_SQL = "audit_trace_keys(body)"
TRACE_KEYS = ("request_id", "trace_id", "gateway", "requested_model", "key_alias", "team", "call_id",
              "served_for", "served")


@dataclass(frozen=True)
class EntryFilter:
    """Which entries a query, a count or an export covers. ``None`` means "any".

    :param start: ``recorded_at >= start`` (inclusive).
    :param end: ``recorded_at < end`` (exclusive).
    :param model: the model appears among the cleared or the denied routes; narrow with
        ``model_status`` (``cleared`` or ``denied``).
    :param reason_code: some denied route carries this reason code.
    :param provenance: some cleared route has this provenance.
    :param regulatory_tier: of the workload (``input.workload``).
    :param sector: one of the sectors the workload was judged for (``input.workload.sectors``;
        ``input.workload.sector`` in entries from before app profiles).
    :param max_seq: only entries up to this seq (an export fixes it at its start).
    :param kind: ``decision``, ``policy_reload``, ``served`` or ``key``.
    :param trace: (prefix, value) pairs of :data:`TRACE_KEYS` the entry must all hold, e.g.
        ``("trace_id", "4bf9…")``, ``("served_for", "<decision id>")``, ``("served", "uncleared")``.
    """

    start: datetime | None = None
    end: datetime | None = None
    app_id: str | None = None
    model: str | None = None
    model_status: str | None = None
    outcome: str | None = None
    reason_code: str | None = None
    regulatory_tier: str | None = None
    sector: str | None = None
    provenance: str | None = None
    policy_revision: str | None = None
    decision_id: uuid.UUID | None = None
    max_seq: int | None = None
    kind: str | None = None
    trace: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        unknown = [prefix for prefix, _ in self.trace if prefix not in TRACE_KEYS]
        if unknown:
            raise ValueError(f"unknown trace keys {unknown}; choose from {TRACE_KEYS}")
        if self.model_status is not None and self.model_status not in MODEL_STATUSES:
            raise ValueError(f"model_status must be one of {MODEL_STATUSES}")
        if self.model_status is not None and self.model is None:
            raise ValueError("model_status needs a model")
        for name in ("start", "end"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")

    def facets(self) -> list[str]:
        """The keys of ``audit_facets(...)`` (migrations 0003, 0006) that a matching entry holds.

        With a provenance, its pairs (``tp:``, ``sp:``, ``ap:``) replace the single keys: a
        short posting list instead of the intersection of two long ones.
        """
        pairs = {"t": self.regulatory_tier, "s": self.sector, "a": self.app_id}
        keys = []
        if self.provenance is not None:
            keys = [f"{k}p:{v}:{self.provenance}" for k, v in pairs.items() if v is not None]
            if not keys:
                keys = [f"p:{self.provenance}"]
            pairs = {}
        keys += [f"{prefix}:{value}" for prefix, value in (
            *pairs.items(), ("o", self.outcome), ("r", self.policy_revision),
            ("c", self.reason_code)) if value is not None]
        if self.model is not None and self.model_status is not None:
            # No key for "cleared or denied": every decision lists every route.
            keys.append(f"{'mc' if self.model_status == 'cleared' else 'md'}:{self.model}")
        return keys

    def sql(self, *, narrowing: bool = True) -> tuple[list[str], dict[str, Any]]:
        """WHERE conditions (joined with AND) and their bound parameters; with
        ``narrowing=False`` only the time and seq bounds."""
        where: list[str] = []
        params: dict[str, Any] = {}
        scalar = {
            "app_id": self.app_id,
            "outcome": self.outcome,
            "regulatory_tier": self.regulatory_tier,
            "policy_revision": self.policy_revision,
            "decision_id": self.decision_id,
            "kind": self.kind,
        }
        for column, value in scalar.items():
            if value is not None and narrowing:
                where.append(f"{column} = :f_{column}")
                params[f"f_{column}"] = value
        if self.start is not None:
            where.append("recorded_at >= :f_start")
            params["f_start"] = self.start
        if self.end is not None:
            where.append("recorded_at < :f_end")
            params["f_end"] = self.end
        if self.max_seq is not None:
            where.append("seq <= :f_max_seq")
            params["f_max_seq"] = self.max_seq
        if not narrowing:
            return where, params
        if self.model is not None:
            params["f_model"] = [self.model]
            if self.model_status == "cleared":
                where.append("models_allowed @> CAST(:f_model AS text[])")
            elif self.model_status == "denied":
                where.append("models_denied @> CAST(:f_model AS text[])")
            else:
                where.append(
                    "(models_allowed @> CAST(:f_model AS text[]) "
                    "OR models_denied @> CAST(:f_model AS text[]))"
                )
        if self.trace:
            where.append(f"{TRACE_KEYS_SQL} @> CAST(:f_trace AS text[])")
            params["f_trace"] = [f"{prefix}:{value}" for prefix, value in self.trace]
        if self.sector is not None:  # the column joins several sectors with commas
            where.append("string_to_array(sector, ',') @> CAST(:f_sector AS text[])")
            params["f_sector"] = [self.sector]
        if self.reason_code is not None:
            where.append("reason_codes @> CAST(:f_reason_code AS text[])")
            params["f_reason_code"] = [self.reason_code]
        if self.provenance is not None:
            where.append("provenances_allowed @> CAST(:f_provenance AS text[])")
            params["f_provenance"] = [self.provenance]
        return where, params


def where_clause(conditions: Sequence[str]) -> str:
    """`` WHERE a AND b`` for ``EntryFilter.sql()``'s conditions (empty when there are none)."""
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""

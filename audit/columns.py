"""Queryable columns derived from a signed entry body.

The signed bytes are the record; these columns only make compliance queries fast. The store
computes them from the body at insert time and the verifier recomputes them from the signed
bytes and compares (editing a queryable column alone is tampering too).

=====================  ===========================================================
column                 derived from the body
=====================  ===========================================================
seq                    ``seq``
recorded_at            ``recorded_at`` (RFC 3339 → timestamptz)
kind                   ``kind``
decision_id            ``decision_id`` (UUID)
app_id                 ``app_id``
caller_key_id          ``caller_key_id``
outcome                ``outcome``
policy_revision        ``policy_revision``
engine                 ``engine``
key_id                 ``key_id``
prev_hash              ``prev_hash`` (hex → 32 bytes)
regulatory_tier        ``input.workload.regulatory_tier``
sector                 ``input.workload.sectors`` joined by commas (``input.workload.sector``
                       in entries recorded before app profiles)
models_allowed         distinct sorted ``result.allowed[].model``
models_denied          distinct sorted ``result.denied[].model``
reason_codes           distinct sorted ``result.denied[].reasons[].code``
provenances_allowed    distinct sorted ``result.allowed[].provenance``
=====================  ===========================================================

The whole body as JSONB is not a stored column: the view ``audit_entries_json`` derives it
from the signed bytes on every read (migration 0004), so there is nothing to compare.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .canonical import parse_time

__all__ = ["COLUMN_NAMES", "ENTRY_COLUMNS", "queryable_columns"]

COLUMN_NAMES = (
    "seq",
    "recorded_at",
    "kind",
    "decision_id",
    "app_id",
    "caller_key_id",
    "outcome",
    "policy_revision",
    "engine",
    "key_id",
    "prev_hash",
    "regulatory_tier",
    "sector",
    "models_allowed",
    "models_denied",
    "reason_codes",
    "provenances_allowed",
)
# Every stored column of an entry: the derived ones above and the signed material.
ENTRY_COLUMNS = (*COLUMN_NAMES, "entry_hash", "signature", "body")


def queryable_columns(body: Mapping[str, Any]) -> dict[str, Any]:
    """The column values an entry with this (parsed) body must have."""
    input_ = _mapping(body.get("input"))
    workload = _mapping(input_.get("workload"))
    result = _mapping(body.get("result"))
    allowed = [_mapping(r) for r in _list(result.get("allowed"))]
    denied = [_mapping(r) for r in _list(result.get("denied"))]
    codes = {
        _mapping(reason).get("code")
        for route in denied
        for reason in _list(route.get("reasons"))
    }
    return {
        "seq": body.get("seq"),
        "recorded_at": _time(body.get("recorded_at")),
        "kind": body.get("kind"),
        "decision_id": _uuid(body.get("decision_id")),
        "app_id": _text(body.get("app_id")),
        "caller_key_id": _text(body.get("caller_key_id")),
        "outcome": _text(body.get("outcome")),
        "policy_revision": _text(body.get("policy_revision")),
        "engine": _text(body.get("engine")),
        "key_id": body.get("key_id"),
        "prev_hash": _hex(body.get("prev_hash")),
        "regulatory_tier": _text(workload.get("regulatory_tier")),
        "sector": _sector(workload),
        "models_allowed": _distinct(r.get("model") for r in allowed),
        "models_denied": _distinct(r.get("model") for r in denied),
        "reason_codes": _distinct(codes),
        "provenances_allowed": _distinct(r.get("provenance") for r in allowed),
    }


def _sector(workload: Mapping[str, Any]) -> str | None:
    # The sectors a decision was judged for (several when the app's profile has several and
    # the request named none), as one comma-separated facet value.
    sectors = workload.get("sectors")
    if isinstance(sectors, list) and sectors and all(isinstance(s, str) for s in sectors):
        return ",".join(sectors)
    return _text(workload.get("sector"))


def _mapping(value: Any) -> Mapping[str, Any]:
    # Parsed JSON objects are dicts; the ABC check costs ~5x more and runs ~100 times per entry.
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _distinct(values: Any) -> list[str]:
    return sorted({v for v in values if isinstance(v, str)})


def _time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) else None


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _hex(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None

"""Reading the trail for people: filtered pages, counts, and one decision with its status.

Reads only. Filters and grouping use the queryable columns derived from the signed bytes
(``audit/entry.py``) and their indexes; verification checks that those columns still agree
with the signed bodies, so a query answer is as trustworthy as the last verification of its
range. A looked-up decision is verified (hash, signature, link to its predecessor, derived
columns) before it is shown.

Order and paging
    Pages are newest first by default. Rows are ordered by ``(recorded_at, seq)``, which is
    chain (``seq``) order: ``recorded_at`` never goes backwards along the chain (verification
    step 9), and using it lets PostgreSQL walk the ``(x, recorded_at)`` indexes and prune
    monthly partitions. The cursor is an opaque token naming the last row of a page; the next
    page starts strictly after it (keyset pagination), so entries appended meanwhile never
    shift or repeat a page — they appear only on a fresh first page.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import text

from ._db import map_errors
from .canonical import format_time, parse_time
from .filters import MODEL_STATUSES, EntryFilter, where_clause
from .store import AuditStore
from .logverify import read_one
from .tlog.note import Verifier
from .verify import VerificationResult

__all__ = [
    "BUCKETS",
    "GROUP_KEYS",
    "MODEL_STATUSES",
    "CursorError",
    "EntryFilter",
    "FoundEntry",
    "Page",
    "Stats",
    "decode_cursor",
    "encode_cursor",
    "find_decision",
    "query_entries",
    "stats",
    "where_clause",
]

Order = Literal["desc", "asc"]
BUCKETS = ("hour", "day", "week")
MAX_LIMIT = 1000
MAX_GROUPS = 10_000
WINDOW = 5000  # entries filtered directly before the rest of the range is searched (query_entries)

# group_by key -> (SQL expression, lateral unnest needed). Array columns (and the sectors the
# sector column joins with commas) count an entry once under each value it holds (and once
# under null when it holds none).
GROUP_KEYS: Mapping[str, tuple[str, str | None]] = {
    "outcome": ("outcome", None),
    "app": ("app_id", None),
    "model": ("g_model.v", "models_allowed"),
    "provenance": ("g_provenance.v", "provenances_allowed"),
    "regulatory_tier": ("regulatory_tier", None),
    "reason_code": ("g_reason_code.v", "reason_codes"),
    "sector": ("g_sector.v", "string_to_array(sector, ',')"),
    "kind": ("kind", None),
    "policy_revision": ("policy_revision", None),
    # The input blob's facet (migration 0011): the period report (audit/report/) counts
    # dangerous-capability requests with it.
    "dangerous_capability": ("dangerous_capability", None),
}

SUMMARY_COLUMNS = (
    "seq, recorded_at, kind, decision_id, app_id, caller_key_id, outcome, policy_revision, engine, "
    "regulatory_tier, sector, models_allowed, models_denied, reason_codes, provenances_allowed, "
    "key_id, leaf_hash"
)
SELECT_SEQ_BY_DECISION_SQL = text(
    "SELECT seq FROM audit_leaves WHERE decision_id = :decision_id ORDER BY seq LIMIT 2"
)
# The denied routes of one model, with their reasons, read from the signed body parsed as JSONB
# when the page is read: for the rows of the page (under an incremental sort, also the rest of
# the last batch sharing its recorded_at), not for the whole range.
MODEL_DENIALS_SQL = (
    "jsonb_path_query_array(convert_from(result_data, 'UTF8')::jsonb, "
    "'$.denied[*] ? (@.model == $m)', "
    "jsonb_build_object('m', CAST(:model AS text)))"
)


class CursorError(ValueError):
    """The paging cursor is not one this service handed out."""


# -- cursors ----------------------------------------------------------------------------------


def encode_cursor(seq: int, recorded_at: datetime) -> str:
    """An opaque token for "after the row (recorded_at, seq)" (URL-safe base64)."""
    raw = orjson.dumps([seq, format_time(recorded_at)])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str) -> tuple[int, datetime]:
    """Inverse of :func:`encode_cursor`; :class:`CursorError` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        seq, moment = orjson.loads(raw)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or seq >= 2**63:
            raise ValueError("bad seq")
        if not isinstance(moment, str):
            raise ValueError("bad time")
        at = parse_time(moment)
        if encode_cursor(seq, at) != token.rstrip("="):  # only the form this service hands out
            raise ValueError("not canonical")
        return seq, at
    # OverflowError: a time that leaves the datetime range once converted to UTC.
    except (binascii.Error, ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise CursorError("the cursor is malformed; pass back next_cursor exactly") from None


# -- pages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def query_entries(
    store: AuditStore,
    filt: EntryFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
    order: Order = "desc",
) -> Page:
    """One page of entry summaries matching ``filt``; ``next_cursor`` is None on the last page.

    Two steps keep a page fast whether the filters match often or almost never: (1) filter the
    ``WINDOW`` entries that come first in the requested order (a short walk of the time index);
    (2) if that does not fill the page, find the remaining matches beyond the window (the blob
    facets are per distinct input or result, so a facet filter narrows to few blobs first).

    Raises :class:`CursorError` for a malformed cursor and
    :class:`~audit.errors.AuditUnavailable` if the database cannot be read.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    direction = "DESC" if order == "desc" else "ASC"
    before = "<" if order == "desc" else ">"
    bounds, params = filt.sql(narrowing=False)
    if cursor is not None:
        after_seq, after_at = decode_cursor(cursor)
        bounds.append(f"(recorded_at, seq) {before} (:c_at, :c_seq)")
        params.update(c_at=after_at, c_seq=after_seq)
    where, filter_params = filt.sql()
    narrowing = [c for c in where if c not in bounds]
    params.update(filter_params)
    extra = ""
    if filt.model is not None:
        extra = f", {MODEL_DENIALS_SQL} AS model_denials"
        params["model"] = filt.model
    sort = f"ORDER BY recorded_at {direction}, seq {direction}"
    params.update(limit=limit + 1, window=WINDOW)  # one more than asked tells if a page follows
    columns = f"{SUMMARY_COLUMNS}{extra}"
    with map_errors("querying the audit trail"), store.engine.connect() as conn:
        # A decision id or a trace key (request, trace, call ids…) picks out a few entries
        # through its own index: no window to walk first.
        if not narrowing or filt.decision_id is not None or filt.trace:
            rows = _rows(conn, f"SELECT {columns} FROM audit_log{where_clause(bounds + narrowing)} "
                               f"{sort} LIMIT :limit", params)
        else:
            # (1) the first WINDOW entries of the range, filtered.
            rows = _rows(conn, f"SELECT {columns} FROM (SELECT * FROM audit_log{where_clause(bounds)} "
                               f"{sort} LIMIT :window) AS w{where_clause(narrowing)} {sort} LIMIT :limit",
                         params)
            if len(rows) <= limit:
                edge = conn.execute(text(
                    f"SELECT recorded_at, seq FROM audit_log{where_clause(bounds)} {sort} "
                    "OFFSET :window - 1 LIMIT 1"), params).first()
                if edge is not None:
                    # (2) beyond the window: the blobs' facets narrow the leaves to search.
                    rest = [*bounds, *narrowing, f"(recorded_at, seq) {before} (:e_at, :e_seq)"]
                    params.update(e_at=edge.recorded_at, e_seq=edge.seq,
                                  rest=limit + 1 - len(rows))
                    rows += _rows(conn, (
                        f"WITH m AS MATERIALIZED (SELECT seq, recorded_at FROM audit_log"
                        f"{where_clause(rest)}) SELECT {columns} FROM audit_log JOIN (SELECT seq, "
                        f"recorded_at FROM m {sort} LIMIT :rest) AS t USING (seq, recorded_at) "
                        f"{sort}"), params)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_summary(row) for row in rows]
    next_cursor = encode_cursor(rows[-1]["seq"], rows[-1]["recorded_at"]) if more else None
    return Page(items=items, next_cursor=next_cursor)


def _rows(conn: Any, sql: str, params: Mapping[str, Any]) -> list[Any]:
    return list(conn.execute(text(sql), params).mappings().all())


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    item = {
        "seq": row["seq"],
        "recorded_at": format_time(row["recorded_at"]),
        "kind": row["kind"],
        "decision_id": str(row["decision_id"]) if row["decision_id"] is not None else None,
        "app_id": row["app_id"],
        "caller_key_id": row["caller_key_id"],
        "outcome": row["outcome"],
        "policy_revision": row["policy_revision"],
        "engine": row["engine"],
        "regulatory_tier": row["regulatory_tier"],
        "sector": row["sector"],
        "models_allowed": list(row["models_allowed"]),
        "models_denied": list(row["models_denied"]),
        "reason_codes": list(row["reason_codes"]),
        "provenances_allowed": list(row["provenances_allowed"]),
        "key_id": row["key_id"],
        "leaf_hash": bytes(row["leaf_hash"]).hex(),
    }
    if "model_denials" in row:
        item["model_denials"] = row["model_denials"] or []
    return item


# -- stats ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    group_by: list[str]
    bucket: str | None
    total: int
    groups: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_by": self.group_by,
            "bucket": self.bucket,
            "total": self.total,
            "groups": self.groups,
            "truncated": self.truncated,
        }


def stats(
    store: AuditStore,
    filt: EntryFilter,
    *,
    group_by: Sequence[str] = (),
    bucket: str | None = None,
) -> Stats:
    """Counts of entries matching ``filt`` per group (and per UTC hour/day/ISO week).

    ``total`` counts entries; with an array key (``model`` = cleared models, ``provenance`` of
    cleared models, ``reason_code``) an entry counts once under each of its values, so the
    groups can add up to more than ``total``. At most ``MAX_GROUPS`` groups are returned
    (``truncated`` says when more exist).
    """
    unknown = [key for key in group_by if key not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"cannot group by {unknown}; choose from {sorted(GROUP_KEYS)}")
    if len(set(group_by)) != len(group_by):
        raise ValueError("group_by names a key twice")
    if bucket is not None and bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}")
    where, params = filt.sql()
    where_sql = where_clause(where)
    selects: list[str] = []
    joins: list[str] = []
    names: list[str] = []
    if bucket is not None:
        # date_trunc in UTC; 'week' starts on Monday (ISO 8601).
        selects.append(f"date_trunc('{bucket}', recorded_at AT TIME ZONE 'UTC') AS bucket")
        names.append("bucket")
    for key in group_by:
        expression, array = GROUP_KEYS[key]
        if array is not None:
            joins.append(f" LEFT JOIN LATERAL unnest({array}) AS g_{key}(v) ON true")
        selects.append(f"{expression} AS {key}")
        names.append(key)
    positions = ", ".join(str(i + 1) for i in range(len(names)))
    grouped = (
        f"SELECT {', '.join([*selects, 'count(*) AS count'])} FROM audit_log"
        f"{''.join(joins)}{where_sql}"
        + (f" GROUP BY {positions} ORDER BY {positions}" if names else "")
        + f" LIMIT {MAX_GROUPS + 1}"
    )
    # Without an array key every entry is in exactly one group: when the groups are all here,
    # their sum is the total (one scan, not two, and the same snapshot as the groups).
    summable = bool(names) and not any(GROUP_KEYS[key][1] for key in group_by)
    with map_errors("counting audit entries"), store.engine.connect() as conn:
        rows = conn.execute(text(grouped), params).mappings().all() if names else []
        if summable and len(rows) <= MAX_GROUPS:
            total = sum(int(row["count"]) for row in rows)
        else:
            total = int(conn.execute(text(f"SELECT count(*) FROM audit_log{where_sql}"), params)
                        .scalar_one())
    groups = []
    for row in rows[:MAX_GROUPS]:
        group = dict(row)
        if "bucket" in group:
            group["bucket"] = format_time(group["bucket"].replace(tzinfo=UTC))
        groups.append(group)
    if not names:
        groups = [{"count": total}]
    return Stats(group_by=list(group_by), bucket=bucket, total=total, groups=groups,
                 truncated=len(rows) > MAX_GROUPS)


# -- one decision -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundEntry:
    """One decision's leaf, its blobs, a receipt against the newest checkpoint, and the verdict."""

    seq: int
    leaf_hash: bytes
    document: dict[str, Any]
    input: Any
    result: Any
    receipt: dict[str, Any] | None
    verification: VerificationResult
    duplicates: bool  # the same decision id under two seqs: itself a finding

    def status(self) -> dict[str, str]:
        """Plain words for people: ``leaf`` (bytes, columns, blobs) and ``proof`` (inclusion in
        the newest checkpoint signed by a trusted key) are ``valid``, ``invalid`` or
        ``not checked``."""
        if self.verification.valid:
            return {"leaf": "valid", "proof": "valid", "overall": "valid"}
        proof_checks = ("receipt", "checkpoint", "checkpoint_key")
        if self.verification.check in proof_checks:
            return {"leaf": "valid", "proof": "invalid", "overall": "invalid"}
        return {"leaf": "invalid", "proof": "not checked", "overall": "invalid"}


def find_decision(store: AuditStore, decision_id: str, *, trusted: Sequence[Verifier]) -> FoundEntry | None:
    """The leaf recording ``decision_id`` (None if there is none) with its blobs and an
    inclusion proof against the newest checkpoint, verified with ``trusted`` keys."""
    try:
        wanted = uuid.UUID(decision_id)
    except ValueError:
        return None
    with map_errors("looking up a decision"), store.engine.connect() as conn:
        seqs = [row[0] for row in conn.execute(SELECT_SEQ_BY_DECISION_SQL, {"decision_id": wanted})]
    if not seqs:
        return None
    found = read_one(store, seqs[0], trusted=trusted)
    return FoundEntry(**found, duplicates=len(seqs) > 1)

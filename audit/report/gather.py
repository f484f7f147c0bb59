"""Gathering a period's report through the query layer: counts from :func:`audit.queries.stats`
(the function behind ``GET /v1/audit/stats``), first/last entries from
:func:`audit.queries.query_entries`, and the few entries whose bodies are shown (reloads,
flagged served routes, key events, a revision's git commit) from :func:`audit.export.stream_jsonl`.

No SQL of its own: when the storage changes under those functions, the report follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson

from ..canonical import format_time, parse_time
from ..export import stream_jsonl
from ..filters import EntryFilter
from ..queries import query_entries, stats
from ..store import AuditStore
from .model import DayCounts, EventEntry, FlaggedServed, ReloadEntry, ReportData, RevisionSpan

__all__ = ["GATED_CODES", "GATHER_STEPS", "KNOWN_KINDS", "LISTED_LIMIT", "StepProgress", "gather_report"]

# Denial reasons that mean a request touched a gated model or a dangerous capability
# (the reason codes of the reference policy pack, docs/policy-contract.md).
GATED_CODES = ("CAPABILITY_GATED", "CAPABILITY_PURPOSE", "DANGEROUS_CAPABILITY_NOT_APPROVED")
KNOWN_KINDS = ("decision", "policy_reload", "served")
LISTED_LIMIT = 500  # entries listed one by one per section; the counts cover them all
TOP_REASONS = 5
NOT_CLEARED = "(none cleared)"
# The steps of gather_report, in order, as its progress callback names them.
GATHER_STEPS = ("counting entries", "decisions per day", "provenance of cleared models", "denial reasons per app", "dangerous-capability requests", "policy revisions", "policy reloads", "served-route reports", "key events")
STEPS = len(GATHER_STEPS)
MAX_DAYS = 366  # beyond, the charts count per ISO week

StepProgress = Callable[[str, int, int], None]


def _query_string(filt: EntryFilter, **extra: str) -> str:
    """The /v1/audit/stats query string that gives the same count as ``stats(filt, …)``."""
    params: dict[str, str] = {}
    if filt.start is not None:
        params["from"] = format_time(filt.start)
    if filt.end is not None:
        params["to"] = format_time(filt.end)
    if filt.kind is not None:
        params["kind"] = filt.kind
    for prefix, value in filt.trace:
        params[prefix] = value
    params.update(extra)
    return urlencode(params)


def gather_report(
    store: AuditStore,
    *,
    start: datetime,
    end: datetime,
    progress: StepProgress | None = None,
    listed_limit: int = LISTED_LIMIT,
) -> ReportData:
    """Everything the report says about ``[start, end)``, except the evidence pack and its
    verification (``build.py`` adds those). A period without entries gives an empty report."""
    if end <= start:
        raise ValueError("the period's end must be after its start")
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        assert GATHER_STEPS[done - 1] == label
        if progress is not None:
            progress(label, done, STEPS)

    report = ReportData(
        period_from=format_time(start), period_to=format_time(end),
        generated_at=format_time(datetime.now(UTC)), log_id=store.log_origin(),
        signing_keys=[key["key_id"] for key in store.keyring().to_dict()["keys"]],
        listed_limit=listed_limit,
    )
    base = EntryFilter(start=start, end=end)
    decisions = replace(base, kind="decision")

    by_kind = stats(store, base, group_by=["kind"])
    report.entries_total = by_kind.total
    report.by_kind = {str(g["kind"]): int(g["count"]) for g in by_kind.groups}
    report.queries["entries_total"] = _query_string(base)
    report.queries["by_kind"] = _query_string(base, group_by="kind")
    step("counting entries")
    if report.empty:
        if progress is not None:
            progress("no entries", STEPS, STEPS)
        return report
    first = query_entries(store, base, limit=1, order="asc").items[0]
    last = query_entries(store, base, limit=1, order="desc").items[0]
    report.first_seq, report.last_seq = first["seq"], last["seq"]
    # The charts run from the first entry's day to the last one's (a period of years with a few
    # entries is not thousands of empty bars); weeks instead of days beyond MAX_DAYS.
    shown = (parse_time(first["recorded_at"]), parse_time(last["recorded_at"]) + timedelta(microseconds=1))
    report.shown_from, report.shown_to = first["recorded_at"], last["recorded_at"]
    report.bucket = bucket = "day" if shown[1] - shown[0] <= timedelta(days=MAX_DAYS) else "week"

    outcomes = stats(store, decisions, group_by=["outcome"], bucket=bucket)
    report.days_by_outcome = _days(outcomes.groups, "outcome", *shown, bucket=bucket)
    report.decisions_by_outcome = _sum_by(outcomes.groups, "outcome")
    report.queries["decisions_by_outcome"] = _query_string(decisions, group_by="outcome", bucket=bucket)
    step("decisions per day")

    provenances = stats(store, decisions, group_by=["provenance"], bucket=bucket)
    report.days_by_provenance = _days(provenances.groups, "provenance", *shown, bucket=bucket)
    report.cleared_by_provenance = _sum_by(provenances.groups, "provenance")
    report.queries["cleared_by_provenance"] = _query_string(decisions, group_by="provenance", bucket=bucket)
    step("provenance of cleared models")

    reasons = stats(store, decisions, group_by=["app", "reason_code"])
    per_app: dict[str, list[tuple[str, int]]] = {}
    gated: dict[str, dict[str, int]] = {}
    for group in reasons.groups:
        app, code, count = group["app"] or "-", group["reason_code"], int(group["count"])
        if code is None:
            continue
        per_app.setdefault(app, []).append((code, count))
        if code in GATED_CODES:
            gated.setdefault(code, {})[app] = count
    report.denial_reasons_by_app = {
        app: sorted(codes, key=lambda c: (-c[1], c[0]))[:TOP_REASONS] for app, codes in sorted(per_app.items())}
    report.gated = gated
    report.queries["denial_reasons_by_app"] = _query_string(decisions, group_by="app,reason_code")
    step("denial reasons per app")

    dangerous = stats(store, decisions, group_by=["dangerous_capability", "outcome"])
    for group in dangerous.groups:
        capability = group["dangerous_capability"]
        if capability in (None, "none"):
            continue
        report.dangerous_capability.setdefault(capability, {})[group["outcome"] or "-"] = int(group["count"])
    report.queries["dangerous_capability"] = _query_string(decisions, group_by="dangerous_capability,outcome")
    step("dangerous-capability requests")

    report.revisions = _revisions(store, base, bucket)
    # Summed over the days, the same counts as this query's groups.
    report.queries["revisions"] = _query_string(base, group_by="policy_revision")
    step("policy revisions")

    reloads = replace(base, kind="policy_reload")
    for document in _bodies(store, reloads):
        if len(report.reloads) < listed_limit:
            report.reloads.append(_reload(document))
    report.queries["reloads"] = _query_string(reloads)
    step("policy reloads")

    served = replace(base, kind="served")
    report.served_total = report.by_kind.get("served", 0)
    flagged = replace(served, trace=(("served", "uncleared"),))
    report.served_flagged_total = stats(store, flagged).total
    for document in _bodies(store, flagged, limit=listed_limit):
        report.served_flagged.append(_served(document))
    report.queries["served_flagged"] = _query_string(flagged)
    step("served-route reports")

    for kind in sorted(k for k in report.by_kind if k not in KNOWN_KINDS):
        for document in _bodies(store, replace(base, kind=kind), limit=listed_limit):
            report.key_events.append(EventEntry(
                seq=document["seq"], recorded_at=document["recorded_at"], kind=kind,
                summary=_event_summary(document)))
    step("key events")
    return report


def _bodies(store: AuditStore, filt: EntryFilter, *, limit: int | None = None,
            page_size: int = 1000) -> Iterator[dict[str, Any]]:
    """The leaves of the entries matching ``filt``, parsed, with their ``input`` and ``result``
    blobs put back in (as in the entry before it was split), in seq order."""
    yielded = 0
    for chunk in stream_jsonl(store, filt, page_size=page_size):
        for line in chunk.splitlines():
            if limit is not None and yielded >= limit:
                return
            exported = orjson.loads(line)
            document = orjson.loads(exported["entry"])
            for member in ("input", "result"):
                if exported.get(member) is not None:
                    document[member] = orjson.loads(exported[member])
            yield document
            yielded += 1


def _days(groups: list[dict[str, Any]], key: str, start: datetime, end: datetime, *,
          bucket: str = "day") -> list[DayCounts]:
    """Counts per UTC day (or ISO week), every one from ``start``'s to ``end``'s present (an
    empty one is a bar of zero)."""
    by_day: dict[str, dict[str, int]] = {}
    for group in groups:
        label = group[key] if group[key] is not None else NOT_CLEARED
        by_day.setdefault(group["bucket"], {})[label] = int(group["count"])
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "week":
        day -= timedelta(days=day.weekday())  # ISO weeks start on Monday, as date_trunc('week')
    out = []
    while day < end:
        label = format_time(day)
        out.append(DayCounts(day=label, counts=by_day.pop(label, {})))
        day += timedelta(days=7 if bucket == "week" else 1)
    return out


def _sum_by(groups: list[dict[str, Any]], key: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for group in groups:
        label = group[key] if group[key] is not None else NOT_CLEARED
        totals[label] = totals.get(label, 0) + int(group["count"])
    return dict(sorted(totals.items()))


def _revisions(store: AuditStore, base: EntryFilter, bucket: str) -> list[RevisionSpan]:
    """Each revision that recorded entries in the period: count, first and last entry, git.

    The counts per day (or week) say on which days each revision recorded entries: its first
    and last entries, and a body carrying its git commit, are then looked for on those days
    only (a revision active in the last days of a long period is not searched for through all
    the entries before them)."""
    days: dict[str, list[tuple[str, int]]] = {}
    for group in stats(store, base, group_by=["policy_revision"], bucket=bucket).groups:
        if group["policy_revision"] is not None:
            days.setdefault(group["policy_revision"], []).append((group["bucket"], int(group["count"])))
    step = timedelta(days=7 if bucket == "week" else 1)
    spans = []
    for revision, counted in days.items():
        first_day, last_day = parse_time(min(counted)[0]), parse_time(max(counted)[0])
        filt = replace(base, policy_revision=revision, start=max(base.start or first_day, first_day),
                       end=min(base.end or last_day + step, last_day + step))
        first = query_entries(store, filt, limit=1, order="asc").items[0]
        last = query_entries(store, filt, limit=1, order="desc").items[0]
        git: dict[str, Any] = {}
        for kind in ("decision", "policy_reload"):  # the kinds that record the bundle's git
            document = next(_bodies(store, replace(filt, kind=kind), limit=1, page_size=1), None)
            if document is not None:
                git = document.get("policy_git") or {}
                break
        spans.append(RevisionSpan(
            revision=revision, entries=sum(count for _, count in counted), first_at=first["recorded_at"],
            last_at=last["recorded_at"], git_commit=git.get("commit"), git_dirty=git.get("dirty"),
            git_path=git.get("path")))
    return sorted(spans, key=lambda s: (s.first_at, s.revision))


def _reload(document: dict[str, Any]) -> ReloadEntry:
    reload = document.get("reload") or {}
    errors = [str(e.get("message") or e) if isinstance(e, dict) else str(e) for e in reload.get("errors") or []]
    return ReloadEntry(
        seq=document["seq"], recorded_at=document["recorded_at"],
        outcome=str(reload.get("outcome") or "unknown"), requested_by=reload.get("requested_by"),
        old_revision=reload.get("old_revision"), new_revision=reload.get("new_revision"),
        new_git_commit=(reload.get("new_git") or {}).get("commit"), errors=errors)


def _served(document: dict[str, Any]) -> FlaggedServed:
    served = document.get("served") or {}
    reasons = [str(r.get("code") if isinstance(r, dict) else r) for r in served.get("reasons") or []]
    return FlaggedServed(
        seq=document["seq"], recorded_at=document["recorded_at"], app_id=document.get("app_id"),
        decision_id=served.get("decision_id"), model=served.get("model"),
        deployment=served.get("deployment"), reasons=reasons)


def _event_summary(document: dict[str, Any]) -> str:
    """A short line for an entry of a kind this report does not know in detail."""
    detail = document.get(document["kind"]) if isinstance(document.get(document["kind"]), dict) else {}
    shown = {k: v for k, v in (detail or {}).items() if isinstance(v, (str, int, bool))}
    return ", ".join(f"{k}={v}" for k, v in list(shown.items())[:6]) or document["kind"]

"""The app's registered profile binds every decision: what a request may ask, and what the
policy is asked.

A request can make a decision stricter than its app's profile (``apps.yaml``), never looser:

* ``sector`` missing → every sector of the profile; ``jurisdictions`` missing → the profile's;
* a sector, jurisdiction or task outside the profile → :class:`ProfileViolation` (HTTP 422,
  naming the field);
* a ``data_classification`` or ``regulatory_tier`` below the profile's floor → raised to it;
* jurisdictions expand to their groups (``DE`` → ``DE, EEA, EU``; see policy.jurisdiction).

The **strictest reading** of several sectors is the policy's to apply: the effective workload
carries them all as ``sectors`` and every sector rule denies a route when *any* of them calls
for it, which is the same as judging the workload once per sector and clearing a route only if
every one of those judgements clears it (sector rules only ever deny or add obligations).

The policy input carries the effective ``workload`` (what the Rego reads) and ``requested``
(what the caller sent: ``{"workload_profile": name | null, "workload": fields as sent | null}``),
so the audit entry shows both.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from policy.catalog import App, Catalog, DataClassification, RegulatoryTier
from policy.errors import ClearanceError
from policy.jurisdiction import Jurisdictions
from policy.workload import DecisionRequest, Workload

# The fields of the effective workload (input.workload) the rules may rely on.
EFFECTIVE_FIELDS = frozenset(
    {"task", "quality_tier", "regulatory_tier", "sectors", "jurisdictions", "data_classification",
     "dangerous_capability", "commercial", "monthly_active_users", "min_context_tokens",
     "max_price_per_mtok", "deployment_modes"}
)
_CLASSIFICATION_ORDER = {c.value: i for i, c in enumerate(DataClassification)}
_TIER_ORDER = {t.value: i for i, t in enumerate(RegulatoryTier)}


@dataclass(frozen=True)
class FieldProblem:
    field: str  # e.g. workload.sector, workload.jurisdictions.1
    reason: str


class ProfileViolation(ClearanceError):
    """The request asks for something outside its app's profile (or names no workload)."""

    def __init__(self, app_id: str, problems: list[FieldProblem]) -> None:
        self.app_id, self.problems = app_id, problems
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))

    def diagnostics(self) -> str:
        return f"the request is outside the profile of app {self.app_id!r} (apps.yaml): {self}"


class Profiles:
    """The apps' profiles of one bundle, ready to resolve requests (immutable but for a cache of
    expanded jurisdiction lists; thread-safe)."""

    def __init__(self, catalog: Catalog) -> None:
        self._apps = {a.id: a for a in catalog.apps}
        self._groups = _Expanded(catalog.jurisdictions)
        # Named workloads, validated once (profile_errors refuses a bundle where one is invalid).
        self._named: dict[tuple[str, str], Workload] = {}
        for app in catalog.apps:
            for name, raw in app.workloads.items():
                try:
                    self._named[(app.id, name)] = _named_workload(raw)
                except ValidationError:
                    continue

    def resolve(self, app_id: str, request: DecisionRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        """(effective workload, requested) for a request of ``app_id``; raises
        :class:`ProfileViolation`. The app must exist (the caller looked it up)."""
        app = self._apps[app_id]
        if request.workload_profile is not None:
            if request.workload is not None:
                raise ProfileViolation(app_id, [FieldProblem(
                    "workload_profile", "name a workload profile or send a workload, not both")])
            workload = self._named.get((app_id, request.workload_profile))
            if workload is None:
                known = ", ".join(sorted(app.workloads)) or "none"
                raise ProfileViolation(app_id, [FieldProblem(
                    "workload_profile", f"app {app_id} has no workload profile {request.workload_profile!r} "
                                        f"(its profiles: {known})")])
            return effective(app, self._groups, workload), {"workload_profile": request.workload_profile,
                                                            "workload": None}
        if request.workload is None:
            raise ProfileViolation(app_id, [FieldProblem("workload", "Field required (or name a workload_profile)")])
        return effective(app, self._groups, request.workload), {"workload_profile": None,
                                                                "workload": sent(request.workload)}

    def resolve_recorded(self, app_id: str, requested: dict[str, Any]) -> dict[str, Any]:
        """The effective workload for a recorded ``requested`` (impact analysis, replays)."""
        request = DecisionRequest.model_validate_json(orjson.dumps({"app_id": app_id, **requested}))
        return self.resolve(app_id, request)[0]


class _Expanded:
    """A bundle's jurisdiction groups, each list of codes expanded once (``expand`` walks every
    group for each code; requests ask for few distinct lists). The groups are immutable."""

    _LIMIT = 4096  # distinct lists remembered; past it, expanded afresh

    def __init__(self, groups: Jurisdictions) -> None:
        self._groups, self._expanded = groups, dict[tuple[str, ...], tuple[str, ...]]()

    def expand(self, codes: list[str]) -> list[str]:
        key = tuple(codes)
        found = self._expanded.get(key)
        if found is None:
            found = tuple(self._groups.expand(codes))
            if len(self._expanded) < self._LIMIT:
                self._expanded[key] = found
        return list(found)  # each input gets its own list

    def covers(self, registered: list[str], code: str) -> bool:
        return self._groups.covers(registered, code)


def request_key(request: DecisionRequest) -> Hashable:
    """What the policy input of ``request`` depends on besides the bundle and the caller: equal
    exactly when two requests of the same app resolve to the same ``workload`` and ``requested``
    (``context`` is left out: it is recorded, never judged). Made from the validated fields the
    caller set, without dumping the model, so that a service can memoise the effective workload
    per request cheaply; the strict schema makes equal values dump equally (a JSON integer sent
    as a price is already a float here)."""
    workload = request.workload
    if workload is None:
        return (request.app_id, request.workload_profile, None)
    values = workload.__dict__
    return (request.app_id, request.workload_profile,
            tuple((name, _frozen(values[name])) for name in sorted(workload.model_fields_set)))


def _frozen(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value  # lists of codes or enum members


def sent(workload: Workload) -> dict[str, Any]:
    """The workload's fields as the caller sent them (no defaults filled)."""
    dumped = workload.model_dump(mode="json")
    return {k: dumped[k] for k in sorted(workload.model_fields_set)}


def effective(app: App, groups: Jurisdictions | _Expanded, workload: Workload) -> dict[str, Any]:
    """The workload the policy judges: the request made at least as strict as ``app``'s profile."""
    problems: list[FieldProblem] = []
    w = workload.model_dump(mode="json")
    profile_sectors = [s.value for s in app.sectors]
    if w["sector"] is None:
        sectors = sorted(profile_sectors)
    elif w["sector"] in profile_sectors:
        sectors = [w["sector"]]
    else:
        sectors = []
        problems.append(FieldProblem("workload.sector", f"{w['sector']} is outside the profile of app {app.id} "
                                                        f"(sectors: {', '.join(profile_sectors)})"))
    asked = w["jurisdictions"]
    if asked is None:
        jurisdictions = groups.expand(list(app.jurisdictions))
    else:
        for i, code in enumerate(asked):
            if not groups.covers(app.jurisdictions, code):
                problems.append(FieldProblem(f"workload.jurisdictions.{i}",
                                             f"{code} is outside the profile of app {app.id} "
                                             f"(jurisdictions: {', '.join(app.jurisdictions)})"))
        jurisdictions = groups.expand(asked)
    if app.tasks is not None and w["task"] not in {t.value for t in app.tasks}:
        problems.append(FieldProblem("workload.task", f"{w['task']} is outside the profile of app {app.id} "
                                                      f"(tasks: {', '.join(t.value for t in app.tasks)})"))
    if problems:
        raise ProfileViolation(app.id, problems)
    floor = app.data_classification_floor.value
    tier_floor = app.regulatory_tier_floor.value
    del w["sector"]
    w["sectors"] = sectors
    w["jurisdictions"] = jurisdictions
    if _CLASSIFICATION_ORDER[w["data_classification"]] < _CLASSIFICATION_ORDER[floor]:
        w["data_classification"] = floor
    if _TIER_ORDER[w["regulatory_tier"]] < _TIER_ORDER[tier_floor]:
        w["regulatory_tier"] = tier_floor
    return w


def _named_workload(raw: dict[str, Any]) -> Workload:
    # Validated as JSON, exactly as a request's workload is (strict types, no coercion).
    return Workload.model_validate_json(orjson.dumps(raw))


def profile_errors(catalog: Catalog) -> Iterable[tuple[tuple[Any, ...], str]]:
    """(location in apps.yaml, message) for every named workload that is not a valid request
    workload or falls outside its app's profile."""
    for i, app in enumerate(catalog.apps):
        for name, raw in app.workloads.items():
            where: tuple[Any, ...] = ("apps", i, "workloads", name)
            try:
                workload = _named_workload(raw)
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    yield (*where, *err["loc"]), err["msg"] if err["type"] != "extra_forbidden" else "unknown field"
                continue
            try:
                effective(app, catalog.jurisdictions, workload)
            except ProfileViolation as exc:
                for problem in exc.problems:
                    parts = problem.field.split(".")[1:]
                    yield (*where, *(int(p) if p.isdigit() else p for p in parts)), problem.reason

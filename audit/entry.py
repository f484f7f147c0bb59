"""The body of an audit entry: its members, who fills which, and the columns derived from it.

This is the one module that knows the layout of an entry body. The service builds the fields of
each kind of entry here (:func:`decision_fields`, :func:`reload_fields`, :func:`served_fields`,
:func:`key_event_fields`); the writer checks them
(:func:`prepare_fields`) and adds the chain members; the store and the verifier derive the
queryable columns from a body (:func:`queryable_columns`). docs/audit.md documents the format.

=================  ========  =============================================================
member             set by    meaning
=================  ========  =============================================================
seq                writer    position in the chain, contiguous from 1
kind               caller    ``decision``, ``policy_reload``, ``served`` or ``key``
decision_id        caller    UUIDv7 of the decision (required for ``decision``, else null)
recorded_at        writer    RFC 3339 UTC with microseconds
app_id             caller    the app that asked
caller_key_id      caller    the API key that asked
input              caller    the full policy input (``app``, ``workload``, ``caller``)
result             caller    the decision as answered, without its ``audit`` receipt
outcome            caller    ``allow`` / ``deny`` (null for other kinds)
policy_revision    caller    ``sha256:…`` of the bundle that decided (or is active)
engine             caller    ``regorus`` / ``opa``
key_id             writer    the signing key
prev_hash          writer    ``entry_hash`` of entry ``seq - 1`` (hex)
context            caller    (decision) the request's ``context``
policy_git         caller    the bundle's git commit, dirtiness and path, or null
shadow             caller    (decision, shadow mode only) the candidate policy's verdict
reload             caller    (policy_reload) old and new revision, who asked, outcome, errors
served             caller    (served) the route a gateway reports served a decision: the
                             decision's id and seq, the route, whether the decision cleared it
key                caller    (key) a signing key or API key created, rotated, registered or
                             revoked: which, by whom, its role and apps (never a secret)
=================  ========  =============================================================

Queryable columns (the signed bytes are the record; the columns only make queries fast, and
verification recomputes them from the signed bytes: editing a column alone is tampering too):

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
                       in entries recorded before app profiles); filters and the facets
                       index split it, one facet per sector (migration 0006)
models_allowed         distinct sorted ``result.allowed[].model``
models_denied          distinct sorted ``result.denied[].model``
reason_codes           distinct sorted ``result.denied[].reasons[].code``
provenances_allowed    distinct sorted ``result.allowed[].provenance``
=====================  ===========================================================

The whole body as JSONB is not a stored column: the view ``audit_entries_json`` derives it
from the signed bytes on every read (migration 0004), so there is nothing to compare.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .canonical import Canonical, canonical, canonical_object, parse_time
from .errors import AuditEntryInvalid

__all__ = [
    "ASSIGNED_FIELDS",
    "LEAF_COLUMNS",
    "BLOB_FACETS",
    "Blob",
    "BlobMember",
    "blob_member",
    "LeafDraft",
    "blob_facets",
    "draft_leaf",
    "leaf_columns",
    "COLUMN_NAMES",
    "ENTRY_COLUMNS",
    "DecisionMembers",
    "decision_fields",
    "prepare_fields",
    "queryable_columns",
    "KEY_EVENTS",
    "key_event_fields",
    "reload_fields",
    "served_fields",
]

ASSIGNED_FIELDS = frozenset({"seq", "recorded_at", "key_id", "prev_hash", "input_sha256", "result_sha256"})
STANDARD_FIELDS = (
    "decision_id",
    "app_id",
    "caller_key_id",
    "input",
    "result",
    "outcome",
    "policy_revision",
    "engine",
)
DECISION_REQUIRED = ("decision_id", "input", "result", "outcome", "policy_revision", "engine")
OUTCOMES = ("allow", "deny", None)
# A UUID as str(uuid.UUID(...)) writes it: such an id is kept as it is (parsing it again costs
# more than the rest of the checks of an entry).
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# -- building the fields of an entry -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionMembers:
    """The large members of a decision entry, canonicalised once per distinct evaluation: the
    policy ``input`` and the route lists of the ``result``. The input and result blobs (bytes,
    SHA-256, facets) are made once too, the result blob once per policy revision: the entries
    of one cached evaluation differ only in their small members (ids, context), which are
    encoded per decision, and every byte of the blobs is the same for all of them."""

    input: Canonical  # a BlobMember when made by encode
    outcome: str
    allowed: Canonical
    denied: Canonical
    # policy revision -> the result blob; shared by the threads deciding: a race makes it twice,
    # equal, and one is kept.
    _results: dict[str, BlobMember] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def encode(cls, policy_input: Mapping[str, Any], answer: Mapping[str, Any]) -> DecisionMembers:
        """``answer`` is the engine's ``{"outcome", "allowed", "denied"}`` for ``policy_input``."""
        return cls(input=blob_member(canonical(policy_input), result=False), outcome=answer["outcome"],
                   allowed=canonical(answer["allowed"]), denied=canonical(answer["denied"]))

    def result_blob(self, *, policy_revision: str) -> BlobMember:
        """The result blob of the v2 log: the decision without ``decision_id`` and ``audit``,
        spliced from the route lists' bytes, with its digest and facets (made once per revision)."""
        found = self._results.get(policy_revision)
        if found is None:
            value = {"outcome": self.outcome, "allowed": self.allowed.value, "denied": self.denied.value,
                     "policy_revision": policy_revision}
            encoded = {**value, "allowed": self.allowed, "denied": self.denied}
            found = blob_member(Canonical(value, canonical_object(encoded)), result=True)
            if len(self._results) < _REVISIONS_KEPT:
                self._results[policy_revision] = found
        return found

    def decision(self, *, decision_id: str, policy_revision: str) -> dict[str, Any]:
        """The decision answered to the caller (without its ``audit`` receipt), which is also
        the entry's ``result`` with its ``decision_id``. Its values are shared: do not mutate."""
        return {"decision_id": decision_id, "outcome": self.outcome, "allowed": self.allowed.value,
                "denied": self.denied.value, "policy_revision": policy_revision}

    def result(self, *, decision_id: str, policy_revision: str) -> Canonical:
        """:meth:`decision` with its canonical bytes."""
        value = self.decision(decision_id=decision_id, policy_revision=policy_revision)
        encoded = {**value, "allowed": self.allowed, "denied": self.denied}
        return Canonical(value, canonical_object(encoded))


# A cached evaluation belongs to one revision (api/decider.py); a caller reusing members across
# revisions gets correct blobs past this many, only not memoised.
_REVISIONS_KEPT = 4


def decision_fields(
    *,
    members: DecisionMembers,
    result: Canonical | Mapping[str, Any],
    app_id: str,
    caller_key_id: str | None,
    policy_revision: str,
    engine: str,
    context: Mapping[str, Any] | Canonical,
    policy_git: Mapping[str, Any] | Canonical | None,
    shadow: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields of a ``decision`` entry (the writer adds seq, time, key and link).

    ``result`` comes from ``members.decision(...)`` (or ``members.result(...)``); ``shadow``
    is present only in shadow mode. ``context`` and ``policy_git`` may come canonicalised.
    """
    extra: dict[str, Any] = {"shadow": shadow} if shadow is not None else {}
    return extra | {
        "kind": "decision",
        "decision_id": (result.value if isinstance(result, Canonical) else result)["decision_id"],
        "app_id": app_id,
        "caller_key_id": caller_key_id,
        "input": members.input,
        # The result blob (no decision_id): what the v2 leaf's result_sha256 names.
        "result": members.result_blob(policy_revision=policy_revision),
        "outcome": members.outcome,
        "policy_revision": policy_revision,
        "engine": engine,
        "context": context,
        "policy_git": policy_git,
    }


def reload_fields(
    *,
    caller_key_id: str | None,
    policy_revision: str,
    engine: str,
    policy_git: Mapping[str, Any] | None,
    reload: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields of a ``policy_reload`` entry: the revision active after the attempt, and
    ``reload`` (outcome, who asked, old and new revision and git, errors, shadow)."""
    return {
        "kind": "policy_reload",
        "decision_id": None,
        "app_id": None,
        "caller_key_id": caller_key_id,
        "input": None,
        "result": None,
        "outcome": None,
        "policy_revision": policy_revision,
        "engine": engine,
        "policy_git": policy_git,
        "reload": reload,
    }


def served_fields(
    *,
    app_id: str,
    caller_key_id: str | None,
    policy_revision: str,
    engine: str,
    context: Mapping[str, Any],
    served: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields of a ``served`` entry: a gateway's report of the route that actually served a
    decision (after its retries and fallbacks). ``served`` holds ``decision_id`` and
    ``decision_seq`` (the decision reported on), ``model``, ``deployment``, ``cleared`` (whether
    that decision cleared the route), ``rank`` and ``reasons`` (its denial reasons, when it did not)
    and ``flag`` (``route_not_cleared`` or null). ``decision_id`` of the entry itself stays null:
    it names the decision an entry records, and this one records a report."""
    return {
        "kind": "served",
        "decision_id": None,
        "app_id": app_id,
        "caller_key_id": caller_key_id,
        "input": None,
        "result": None,
        "outcome": None,
        "policy_revision": policy_revision,
        "engine": engine,
        "context": context,
        "served": served,
    }


KEY_EVENTS = ("signing_key_created", "signing_key_rotated", "signing_key_registered",
              "api_key_created", "api_key_revoked")


def key_event_fields(
    *,
    event: str,
    key_id: str,
    actor: str | None,
    role: str | None = None,
    app_id: str | None = None,
    apps: list[str] | None = None,
    gateway: str | None = None,
    label: str | None = None,
    public_key: str | None = None,
    verifier_key: str | None = None,
    previous_key_id: str | None = None,
) -> dict[str, Any]:
    """The fields of a ``key`` entry: a change of who may sign the log or call the service.

    ``event`` is one of :data:`KEY_EVENTS`; ``key_id`` the signing key's id or the API key's id;
    ``actor`` who ran the command (``user@host``). API keys: ``role``, ``app_id``, ``apps``,
    ``gateway``, ``label``. Signing keys: ``public_key`` (base64), ``verifier_key`` (the pinned
    form) and, on rotation, ``previous_key_id``. Only public values: a secret has no parameter.
    """
    if event not in KEY_EVENTS:
        raise AuditEntryInvalid(f"key event {event!r} is not one of {list(KEY_EVENTS)}", field="key.event")
    member = {"event": event, "key_id": key_id, "actor": actor}
    optional = {"role": role, "app_id": app_id, "apps": apps, "gateway": gateway, "label": label,
                "public_key": public_key, "verifier_key": verifier_key, "previous_key_id": previous_key_id}
    member.update({name: value for name, value in optional.items() if value is not None})
    return {
        "kind": "key",
        "decision_id": None,
        "app_id": app_id,
        "caller_key_id": None,
        "input": None,
        "result": None,
        "outcome": None,
        "policy_revision": None,
        "engine": None,
        "key": member,
    }


def prepare_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check the caller's fields and return the body skeleton (standard keys filled with null).

    Raises :class:`AuditEntryInvalid` naming the offending field. The writer takes ownership of
    nested values: do not mutate them until the append has returned.
    """
    if not isinstance(fields, Mapping):
        raise AuditEntryInvalid(f"entry fields must be a mapping, got {type(fields).__name__}")
    reserved = ASSIGNED_FIELDS.intersection(fields)
    if reserved:
        raise AuditEntryInvalid(
            f"fields {sorted(reserved)} are assigned by the writer; do not submit them"
        )
    for name in fields:
        if not isinstance(name, str):
            raise AuditEntryInvalid(f"field names must be strings, got {name!r}")
    kind = fields.get("kind")
    if not isinstance(kind, str) or not kind:
        raise AuditEntryInvalid("field 'kind' is required (e.g. 'decision')")
    if kind == "decision":
        missing = [name for name in DECISION_REQUIRED if fields.get(name) is None]
        if missing:
            raise AuditEntryInvalid(f"a decision entry needs fields {missing}")
    body = {name: None for name in STANDARD_FIELDS}
    body.update(fields)
    decision_id = body["decision_id"]
    if decision_id is not None and not (type(decision_id) is str and _UUID_TEXT.fullmatch(decision_id)):
        try:
            body["decision_id"] = str(uuid.UUID(str(decision_id)))
        except ValueError as exc:
            raise AuditEntryInvalid(f"decision_id {decision_id!r} is not a UUID") from exc
    if body["outcome"] not in OUTCOMES:
        raise AuditEntryInvalid(f"outcome must be 'allow', 'deny' or null, got {body['outcome']!r}")
    for name in ("app_id", "caller_key_id", "policy_revision", "engine"):
        if body[name] is not None and not isinstance(body[name], str):
            raise AuditEntryInvalid(f"field {name!r} must be a string or null")
    return body


# -- the columns derived from a body ------------------------------------------------------------

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
        **_scalar_columns(body),
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


# -- the v2 leaf: the body without input and result, which are content-addressed blobs ----------

# Columns of audit_leaves derived from the leaf body (migration 0008), in insert order.
# Only what queries filter or sort on: the view audit_log derives caller_key_id, engine and
# key_id from the body when a page is read, and a decision's policy_revision is its result
# blob's facet (bytes on disk: docs/performance.md).
LEAF_COLUMNS = (
    "seq", "recorded_at", "kind", "decision_id", "app_id", "outcome", "input_sha256", "result_sha256",
)
# Columns of audit_blobs derived from a blob: an input's and a result's facets. An input's
# dangerous_capability (migration 0011) lets the period report and ``group_by`` count it from a
# column, as the others, instead of parsing every entry's input.
INPUT_FACETS = ("regulatory_tier", "sector", "dangerous_capability")
RESULT_FACETS = ("models_allowed", "models_denied", "reason_codes", "provenances_allowed", "policy_revision")
BLOB_FACETS = (*INPUT_FACETS, *RESULT_FACETS)
RESULT_EXCLUDED = ("audit", "decision_id")
RESULT_EXCLUDED_SET = frozenset(RESULT_EXCLUDED)


@dataclass(frozen=True, slots=True)
class Blob:
    """One content-addressed blob: SHA-256 of its RFC 8785 bytes, the bytes, its facets."""

    sha256: bytes
    data: bytes
    facets: tuple[Any, ...]  # in BLOB_FACETS order


@dataclass(frozen=True, slots=True)
class LeafDraft:
    """An entry prepared outside the log lock: the leaf body's members (``seq``,
    ``recorded_at`` and ``key_id`` still to come), its blobs, and its derived columns."""

    members: dict[str, Any]
    blobs: tuple[Blob, ...]
    columns: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BlobMember(Canonical):
    """An ``input`` or ``result`` member, canonicalised, with its blob made once
    (:func:`blob_member`): :func:`draft_leaf` takes the blob as it is instead of hashing the
    bytes and walking the value again. The entries of one cached evaluation share one."""

    blob: Blob
    is_result: bool


def blob_member(encoded: Canonical, *, result: bool) -> BlobMember:
    """``encoded`` with its blob: the one :func:`draft_leaf` would make of it as the entry's
    ``result`` (``result=True``) or ``input``."""
    return BlobMember(encoded.value, encoded.data, _blob(encoded, result=result), result)


def _blob(value: Any, *, result: bool) -> Blob:
    if isinstance(value, BlobMember) and value.is_result is result:
        return value.blob
    raw = value.value if isinstance(value, Canonical) else value
    if result and isinstance(raw, dict) and RESULT_EXCLUDED_SET.intersection(raw):
        encoded = canonical({k: v for k, v in raw.items() if k not in RESULT_EXCLUDED_SET})
    else:  # DecisionMembers.result_blob is the blob already, bytes and all
        encoded = value if isinstance(value, Canonical) else canonical(raw)
    facets = blob_facets(result=encoded.value) if result else blob_facets(input_=encoded.value)
    return Blob(hashlib.sha256(encoded.data).digest(), encoded.data, tuple(facets[n] for n in BLOB_FACETS))


def draft_leaf(skeleton: Mapping[str, Any]) -> LeafDraft:
    """Split a prepared entry (:func:`prepare_fields`, members canonicalised) into its leaf
    members and blobs: ``input`` and ``result`` become ``input_sha256`` and ``result_sha256``
    (hex SHA-256 of the RFC 8785 bytes; the result without ``decision_id`` and ``audit``)."""
    members = {k: v for k, v in skeleton.items() if k not in ("input", "result")}
    blobs: list[Blob] = []
    digests: dict[str, str | None] = {}
    for name, is_result in (("input", False), ("result", True)):
        value = skeleton.get(name)
        if value is None or (isinstance(value, Canonical) and value.value is None):
            digests[name] = None
            continue
        blob = _blob(value, result=is_result)
        blobs.append(blob)
        digests[name] = blob.sha256.hex()
    members["input_sha256"] = digests["input"]
    members["result_sha256"] = digests["result"]
    return LeafDraft(members=members, blobs=tuple(blobs), columns={})


def leaf_columns(body: Mapping[str, Any]) -> dict[str, Any]:
    """The audit_leaves column values (in :data:`LEAF_COLUMNS` order) a leaf with this
    (parsed) body must have."""
    scalars = _scalar_columns(body)
    scalars.update(input_sha256=_hex(body.get("input_sha256")), result_sha256=_hex(body.get("result_sha256")))
    return {name: scalars[name] for name in LEAF_COLUMNS}


def _scalar_columns(body: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of the body's own scalar members, the same in a v1 entry and a v2 leaf."""
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
    }


def blob_facets(*, input_: Any = None, result: Any = None) -> dict[str, Any]:
    """The facets of an input blob (tier, sector, dangerous capability) or a result blob
    (models, reasons, provenances, the policy revision that decided), derived as :func:`queryable_columns`
    derives them from a v1 body."""
    columns = queryable_columns({"input": input_, "result": result})
    columns["policy_revision"] = _text(_mapping(result).get("policy_revision"))
    columns["dangerous_capability"] = _text(_mapping(_mapping(input_).get("workload")).get("dangerous_capability"))
    return {name: columns[name] for name in BLOB_FACETS}

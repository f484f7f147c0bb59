"""Decision assembly: request + entitlements -> policy input -> engine -> the decision.

Everything that can change a result is passed in: the active policy (bundle + engine), the
request, the caller and the decision id. Nothing here reads a clock, a global or the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import uuid_utils
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from policy.bundle import Bundle
from policy.engine import Assembled, Engine, decoded
from policy.errors import EvaluationError, UnknownApp
from policy.profile import EFFECTIVE_FIELDS, Profiles
from policy.workload import DecisionRequest


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    message: str


class ClearedRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    deployment: str
    rank: int
    price_per_mtok: float
    provenance: str
    obligations: list[str]


class DeniedRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    deployment: str
    reasons: list[Reason]


class Decision(BaseModel):
    """The answer to a decision request, without its ``audit`` receipt."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    decision_id: str
    outcome: Literal["allow", "deny"]
    allowed: list[ClearedRoute]
    denied: list[DeniedRoute]
    policy_revision: str


@dataclass(frozen=True)
class Caller:
    """Who asked: recorded in the input so that the audit entry says it."""

    key_id: str | None
    role: str | None


class DecisionBody(BaseModel):
    """What the engine answers: a decision without its id and revision."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: Literal["allow", "deny"]
    allowed: list[ClearedRoute]
    denied: list[DeniedRoute]


# The same shape as DecisionBody, as TypedDicts: what an evaluation is checked against. Validated
# into plain dicts, about three times faster than building the models and dumping them again,
# with the same coercions (an integer price becomes a float) and the same refusals.
_FORBID = ConfigDict(extra="forbid")


class _ReasonDict(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    code: str
    message: str


class _ClearedDict(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    model: str
    deployment: str
    rank: int
    price_per_mtok: float
    provenance: str
    obligations: list[str]


class _DeniedDict(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    model: str
    deployment: str
    reasons: list[_ReasonDict]


class _BodyDict(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    outcome: Literal["allow", "deny"]
    allowed: list[_ClearedDict]
    denied: list[_DeniedDict]


_BODY = TypeAdapter(_BodyDict)


# The same shape again as msgspec structs: the engine's JSON text decoded and checked in one
# pass, about twice as fast as orjson.loads + _BODY (measured on the reference answers: ~30
# against ~56 µs). msgspec is stricter than _BODY (no "2" for a price, no 1.0 or true for a
# rank, no integer past 64 bits, no undefined answer), never looser: what it refuses is checked
# again by orjson.loads + _BODY, so the answers and the refusals stay _BODY's
# (tests/policy/test_engine.py compares the two on mutated answers).
class _FastReason(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    message: str


class _FastCleared(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    deployment: str
    rank: Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]  # _BODY refuses some past i64
    price_per_mtok: float
    provenance: str
    obligations: list[str]


class _FastDenied(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    deployment: str
    reasons: list[_FastReason]


class _FastBody(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["allow", "deny"]
    allowed: list[_FastCleared]
    denied: list[_FastDenied]


_FAST_BODY = msgspec.json.Decoder(_FastBody)


def _fast_checked(raw: str | bytes) -> dict[str, Any] | None:
    """The answer as _BODY would give it from this JSON text (same keys in the same order, same
    types), or ``None`` when msgspec refuses it: then the slow path decides."""
    try:
        return msgspec.to_builtins(_FAST_BODY.decode(raw))  # type: ignore[no-any-return]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _raw_checked(raw: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """An answer of ``RegorusEngine.evaluate_raw``, checked as ``_checked(engine.evaluate(…))``
    would check it."""
    if type(raw) is Assembled:
        return raw
    if not isinstance(raw, (str, bytes)):
        return _checked(raw)
    body = _fast_checked(raw)
    return body if body is not None else _checked(decoded(raw))


def _checked(raw: Any) -> dict[str, Any]:
    try:
        return _BODY.validate_python(raw)  # type: ignore[return-value]
    except ValidationError as exc:
        raise EvaluationError(f"the policy answered an invalid decision: {exc}") from None


@dataclass(frozen=True, eq=False)
class ActivePolicy:
    """A bundle and the engine compiled from it: the unit that a reload swaps as a whole.

    :meth:`evaluate` is the one evaluation every path uses (the service, simulate, shadow
    mode, ``clearance decide``, impact replay). It is not memoised here: a decision is a pure
    function of the revision and the input, and the input of the revision, the request and the
    caller, so the service keeps one cache keyed by those (``api/decider.py``).
    """

    bundle: Bundle
    engine: Engine
    _apps: dict[str, dict[str, Any]] = field(init=False, repr=False)
    _profiles: Profiles = field(init=False, repr=False)
    _routes: int = field(init=False, repr=False)
    # The engine's evaluation as JSON text, when it has one (RegorusEngine.evaluate_raw).
    _raw: Callable[[dict[str, Any]], str | bytes | dict[str, Any]] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_raw", getattr(self.engine, "evaluate_raw", None))
        object.__setattr__(self, "_apps", {a.id: app_record(a) for a in self.bundle.catalog.apps})
        object.__setattr__(self, "_profiles", Profiles(self.bundle.catalog))
        object.__setattr__(self, "_routes", sum(len(m.deployments) for m in self.bundle.catalog.models))

    @property
    def revision(self) -> str:
        return self.bundle.revision

    @property
    def blocking(self) -> bool:
        """Whether an evaluation waits on I/O (an OPA server): async callers run it in a thread."""
        return self.engine.blocking

    def route_count(self) -> int:
        return self._routes

    def app_record(self, app_id: str) -> dict[str, Any]:
        """The app's entitlements as the policy input carries them (shared: do not mutate)."""
        record = self._apps.get(app_id)
        if record is None:
            raise UnknownApp(app_id)
        return record

    def input_for(self, request: DecisionRequest, caller: Caller | None) -> dict[str, Any]:
        """The policy input of a request (the app record is shared: do not mutate); raises
        ``ProfileViolation`` for a request outside the app's profile."""
        return _input(self.app_record(request.app_id), request, caller, self._profiles)

    def input_for_recorded(self, app_id: str, requested: dict[str, Any], caller: dict[str, Any]) -> dict[str, Any]:
        """The policy input of a recorded request (``input.requested``), under this bundle's
        profiles: how impact analysis and shadow mode replay what was asked."""
        app = self.app_record(app_id)
        return {"app": app, "workload": self._profiles.resolve_recorded(app_id, requested),
                "requested": requested, "caller": caller}

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        """``{"outcome", "allowed", "denied"}`` for this input, checked; fails closed with
        ``EvaluationError``."""
        _check_shape(policy_input)
        if self._raw is None:
            body = _checked(self.engine.evaluate(policy_input))
        else:  # the VM's JSON text, decoded and checked in one pass
            body = _raw_checked(self._raw(policy_input))
        # Fail closed on a policy bug that loses or repeats a route.
        if len(body["allowed"]) + len(body["denied"]) != self._routes:
            raise EvaluationError(
                f"the policy answered {len(body['allowed']) + len(body['denied'])} routes, the catalog has {self._routes}"
            )
        return dict(body)


def build_input(bundle: Bundle, request: DecisionRequest, caller: Caller | None) -> dict[str, Any]:
    """The policy input: the workload, the app's entitlements from apps.yaml, and the caller."""
    app = bundle.catalog.app(request.app_id)
    if app is None:
        raise UnknownApp(request.app_id)
    return _input(app_record(app), request, caller, Profiles(bundle.catalog))


def app_record(app: Any) -> dict[str, Any]:
    """An app of apps.yaml as the policy input carries it: entitlements and profile (the named
    workloads and the default one stay out: ``input.requested`` says which one was used)."""
    return app.model_dump(mode="json", exclude={"workloads", "default_workload"})  # type: ignore[no-any-return]


def _input(app: dict[str, Any], request: DecisionRequest, caller: Caller | None, profiles: Profiles) -> dict[str, Any]:
    workload, requested = profiles.resolve(app["id"], request)
    return {
        "app": app,
        "workload": workload,
        "requested": requested,
        "caller": {"key_id": caller.key_id, "role": caller.role} if caller else {"key_id": None, "role": None},
    }


_WORKLOAD_FIELDS = EFFECTIVE_FIELDS


def _check_shape(policy_input: dict[str, Any]) -> None:
    """Refuse an input the rules cannot judge: a rule reading a missing field is silently
    undefined in Rego, which would clear routes it should deny."""
    workload, app = policy_input.get("workload"), policy_input.get("app")
    if not isinstance(workload, dict) or not isinstance(app, dict) or not isinstance(app.get("id"), str):
        raise EvaluationError("the policy input needs a workload object and the app's record")
    missing = _WORKLOAD_FIELDS - workload.keys()
    if missing:
        raise EvaluationError(f"the policy input lacks workload fields {sorted(missing)}")


def new_decision_id() -> str:
    return str(uuid_utils.uuid7())


def decision_of(answer: dict[str, Any], *, decision_id: str, revision: str) -> dict[str, Any]:
    """The decision as answered (without its ``audit`` receipt), from an evaluation."""
    return {"decision_id": decision_id, **answer, "policy_revision": revision}


def evaluate_input(
    policy: ActivePolicy, policy_input: dict[str, Any], *, decision_id: str
) -> Decision:
    """Evaluate an already-built input (also used to replay recorded inputs)."""
    return Decision.model_validate(decision_of(policy.evaluate(policy_input), decision_id=decision_id,
                                               revision=policy.revision))


def decide(
    policy: ActivePolicy,
    request: DecisionRequest,
    *,
    caller: Caller | None = None,
    decision_id: str | None = None,
) -> tuple[dict[str, Any], Decision]:
    """Decide one request; returns the policy input (for the audit entry) and the decision."""
    policy_input = policy.input_for(request, caller)
    return policy_input, evaluate_input(policy, policy_input, decision_id=decision_id or new_decision_id())

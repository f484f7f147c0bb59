"""Decision assembly: request + entitlements -> policy input -> engine -> the decision.

Everything that can change a result is passed in: the active policy (bundle + engine), the
request, the caller and the decision id. Nothing here reads a clock, a global or the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import uuid_utils
from pydantic import BaseModel, ConfigDict

from policy.bundle import Bundle
from policy.engine import Engine
from policy.errors import EvaluationError, UnknownApp
from policy.workload import DecisionRequest, Workload


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
    """DESIGN.md's decision without its ``audit`` receipt."""

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


@dataclass(frozen=True)
class ActivePolicy:
    """A bundle and the engine compiled from it: the unit that a reload swaps as a whole."""

    bundle: Bundle
    engine: Engine

    @property
    def revision(self) -> str:
        return self.bundle.revision

    def route_count(self) -> int:
        return sum(len(m.deployments) for m in self.bundle.catalog.models)


def build_input(bundle: Bundle, request: DecisionRequest, caller: Caller | None) -> dict[str, Any]:
    """The policy input: the workload, the app's entitlements from apps.yaml, and the caller."""
    app = bundle.catalog.app(request.app_id)
    if app is None:
        raise UnknownApp(request.app_id)
    return {
        "app": app.model_dump(mode="json"),
        "workload": request.workload.model_dump(mode="json"),
        "caller": {"key_id": caller.key_id, "role": caller.role} if caller else {"key_id": None, "role": None},
    }


_WORKLOAD_FIELDS = frozenset(Workload.model_fields)


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


def evaluate_input(
    policy: ActivePolicy, policy_input: dict[str, Any], *, decision_id: str
) -> Decision:
    """Evaluate an already-built input (also used to replay recorded inputs)."""
    _check_shape(policy_input)
    raw = policy.engine.evaluate(policy_input)
    try:
        decision = Decision(
            decision_id=decision_id,
            outcome=raw["outcome"],
            allowed=raw["allowed"],
            denied=raw["denied"],
            policy_revision=policy.revision,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvaluationError(f"the policy answered an invalid decision: {exc}") from None
    # Fail closed on a policy bug that loses or repeats a route.
    if len(decision.allowed) + len(decision.denied) != policy.route_count():
        raise EvaluationError(
            f"the policy answered {len(decision.allowed) + len(decision.denied)} routes, "
            f"the catalog has {policy.route_count()}"
        )
    return decision


def decide(
    policy: ActivePolicy,
    request: DecisionRequest,
    *,
    caller: Caller | None = None,
    decision_id: str | None = None,
) -> tuple[dict[str, Any], Decision]:
    """Decide one request; returns the policy input (for the audit entry) and the decision."""
    policy_input = build_input(policy.bundle, request, caller)
    return policy_input, evaluate_input(policy, policy_input, decision_id=decision_id or new_decision_id())

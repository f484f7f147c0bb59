"""Calls on behalf of apps: which app a caller acts for, and a gateway's check of one call.

The rule (docs/contract.md, "Gateways"): an ``app`` key acts for its own app; a ``gateway`` key
acts for the app its caller's identities (team, key alias) map to in ``gateways.yaml``, and only
when that app is among the apps listed with the key. The body never chooses the app on its own:
an ``app_id`` it names must agree with the mapping.

:func:`check_call` is what every gateway contract shares (the LiteLLM guardrail class, LiteLLM's
generic guardrail API, Portkey's webhook): decide the app's workload (recorded like any
decision), then judge the route (or the alias) about to be called against it, and propose the
best-ranked cleared substitute among the candidates the gateway may call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from api.apikeys import Principal, Role
from api.errors import ApiError
from api.services import Services
from policy import Caller, DecisionRequest
from policy.gateways import Gateway, IdentityRefused, app_for
from policy.profile import FieldProblem, ProfileViolation
from policy.workload import GatewayContext, RequestContext

ROUTE_UNKNOWN = "ROUTE_UNKNOWN"  # a gateway name gateways.yaml does not map to a catalog route


def gateway_of(services: Services, principal: Principal, named: str | None) -> Gateway:
    """The gateway ``principal`` speaks for: the one its key is bound to, else ``named`` (the URL
    or the context). 403 when they differ, when none is named, or when gateways.yaml lacks it."""
    if principal.gateway is not None and named is not None and named != principal.gateway:
        raise ApiError(403, "forbidden", f"this key belongs to gateway {principal.gateway!r}, not {named!r}")
    name = principal.gateway or named
    if name is None:
        raise ApiError(403, "forbidden", "a gateway key must name its gateway (context.gateway.name, "
                                         "or create the key with --gateway)")
    gateway = services.policy.current.bundle.gateways.get(name)
    if gateway is None:
        raise ApiError(403, "forbidden", f"gateway {name!r} is not in gateways.yaml")
    return gateway


def app_of(services: Services, principal: Principal, *, gateway: str | None, team: str | None,
           key_alias: str | None, body_app: str | None = None) -> tuple[str, Gateway | None]:
    """The app ``principal`` acts for (and, for a gateway key, its gateway); 403 otherwise."""
    if principal.role is Role.app:
        assert principal.app_id is not None
        if body_app is not None and body_app != principal.app_id:
            raise ApiError(403, "forbidden", f"this key belongs to app {principal.app_id!r}; "
                                             f"it may not act for {body_app!r}")
        return principal.app_id, None
    if principal.role is not Role.gateway:
        raise ApiError(403, "forbidden", f"a {principal.role.value} key may not do this; it needs the app or gateway role")
    found = gateway_of(services, principal, gateway)
    try:
        app = app_for(found, team=team, key_alias=key_alias)
    except IdentityRefused as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    if body_app is not None and body_app != app:
        raise ApiError(403, "forbidden", f"gateway {found.name}: the caller's identities map to app {app!r} "
                                         f"(gateways.yaml), not {body_app!r}")
    if not principal.may_act_for(app):
        raise ApiError(403, "forbidden", f"gateway {found.name}: app {app!r} is not among the apps this "
                                         f"gateway key may decide for ({', '.join(sorted(principal.apps))})")
    return app, found


def default_profile(services: Services, app_id: str) -> str:
    """The app's ``default_workload``; 422 ``outside_profile`` when it has none."""
    app = services.policy.current.bundle.catalog.app(app_id)
    if app is None or app.default_workload is None:
        raise ProfileViolation(app_id, [FieldProblem(
            "workload_profile", f"app {app_id} has no default_workload in apps.yaml: name a workload_profile")])
    return app.default_workload


def caller_of(principal: Principal) -> Caller:
    return Caller(key_id=principal.key_id, role=principal.role.value)


@dataclass(frozen=True)
class RouteVerdict:
    """One gateway route (or alias) judged against a decision."""

    name: str
    model: str | None
    deployment: str | None
    cleared: bool
    rank: int | None
    reasons: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "deployment": self.deployment, "cleared": self.cleared,
                "rank": self.rank, "reasons": self.reasons}

    def codes(self) -> list[str]:
        return sorted({r["code"] for r in self.reasons})


def judge_route(decision: Mapping[str, Any], gateway: Gateway, name: str) -> RouteVerdict:
    """Whether ``decision`` clears the catalog route ``gateway`` calls ``name``."""
    ref = gateway.routes.get(name)
    if ref is None:
        return RouteVerdict(name, None, None, False, None, [{
            "code": ROUTE_UNKNOWN, "message": f"gateway {gateway.name} maps no catalog route to {name!r} "
                                              "(gateways.yaml routes): an unknown route is never cleared"}])
    return judge_catalog_route(decision, name, ref.model, ref.deployment)


def judge_catalog_route(decision: Mapping[str, Any], name: str, model: str, deployment: str) -> RouteVerdict:
    for route in decision["allowed"]:
        if route["model"] == model and route["deployment"] == deployment:
            return RouteVerdict(name, model, deployment, True, route["rank"], [])
    for route in decision["denied"]:
        if route["model"] == model and route["deployment"] == deployment:
            return RouteVerdict(name, model, deployment, False, None, list(route["reasons"]))
    return RouteVerdict(name, model, deployment, False, None, [{
        "code": ROUTE_UNKNOWN, "message": f"the decision lists no route {model} via {deployment}"}])


def judge_alias(decision: Mapping[str, Any], gateway: Gateway, alias: str,
                routes: Sequence[str] | None = None) -> RouteVerdict:
    """An alias is cleared when every route that may serve it is (whichever the gateway picks);
    its rank is its best route's. ``routes`` (the gateway's own list) else gateways.yaml's."""
    names = list(routes) if routes is not None else gateway.aliases.get(alias)
    if not names:
        return RouteVerdict(alias, None, None, False, None, [{
            "code": ROUTE_UNKNOWN, "message": f"gateway {gateway.name} maps no routes to the model name {alias!r}"}])
    verdicts = [judge_route(decision, gateway, name) for name in names]
    reasons = [{**r, "message": f"{v.name}: {r['message']}"} for v in verdicts for r in v.reasons]
    ranks = [v.rank for v in verdicts if v.rank is not None]
    return RouteVerdict(alias, None, None, all(v.cleared for v in verdicts), min(ranks) if ranks else None, reasons)


def judge_candidates(decision: Mapping[str, Any], gateway: Gateway,
                     candidates: Mapping[str, Sequence[str] | None]) -> dict[str, RouteVerdict]:
    """Each candidate (alias -> its routes, or route name -> None) judged against ``decision``."""
    return {name: judge_alias(decision, gateway, name, routes) if routes is not None or name in gateway.aliases
            else judge_route(decision, gateway, name) for name, routes in candidates.items()}


def best_of(judged: Mapping[str, RouteVerdict]) -> RouteVerdict | None:
    """The best-ranked candidate whose every route is cleared (ties: by name), or None."""
    cleared = [v for v in judged.values() if v.cleared and v.rank is not None]
    return min(cleared, key=lambda v: (v.rank, v.name)) if cleared else None


@dataclass(frozen=True)
class CheckResult:
    app_id: str
    workload_profile: str
    decision: dict[str, Any]
    route: RouteVerdict | None
    substitute: RouteVerdict | None
    candidates: dict[str, RouteVerdict]

    @property
    def allowed(self) -> bool:
        return self.route.cleared if self.route is not None else self.decision["outcome"] == "allow"

    def to_dict(self) -> dict[str, Any]:
        return {"decision_id": self.decision["decision_id"], "app_id": self.app_id,
                "workload_profile": self.workload_profile, "allowed": self.allowed,
                "route": self.route.to_dict() if self.route else None,
                "substitute": self.substitute.to_dict() if self.substitute else None,
                "candidates": {name: v.to_dict() for name, v in self.candidates.items()},
                "decision": self.decision}


async def check_call(services: Services, principal: Principal, *, gateway: str, team: str | None,
                     key_alias: str | None, workload_profile: str | None, route: str | None,
                     alias_routes: Sequence[str] | None = None, candidates: Mapping[str, Sequence[str] | None],
                     context: RequestContext) -> CheckResult:
    """Decide for the caller's app (recorded) and judge ``route`` against the decision.

    ``route`` is a gateway route name, or an alias when ``alias_routes`` is given (the gateway's
    own list of its routes) or gateways.yaml maps it; ``candidates`` are what the caller may
    call instead (alias -> routes, or route name -> None), for a substitute.
    """
    app_id, found = app_of(services, principal, gateway=gateway, team=team, key_alias=key_alias)
    assert found is not None
    profile = workload_profile or default_profile(services, app_id)
    named = (context.gateway or GatewayContext()).model_copy(
        update={"name": found.name, "team": team, "key_alias": key_alias})
    request = DecisionRequest(app_id=app_id, workload_profile=profile,
                              context=context.model_copy(update={"gateway": named}))
    decision = await services.decider.decide(request, caller=caller_of(principal))
    verdict = None
    if route is not None:
        if alias_routes is not None or (route not in found.routes and route in found.aliases):
            verdict = judge_alias(decision, found, route, alias_routes)
        else:
            verdict = judge_route(decision, found, route)
    judged = judge_candidates(decision, found, candidates)
    substitute = best_of(judged) if verdict is None or not verdict.cleared else None
    services.metrics.gateway_checks.labels(gateway=found.name,
                                           verdict="decided" if verdict is None else "cleared" if verdict.cleared else
                                           "substituted" if substitute else "blocked").inc()
    return CheckResult(app_id, profile, decision, verdict, substitute, judged)

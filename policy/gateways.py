"""The gateways in front of the models (``rego/data/gateways.yaml``): who is who, and which route
each of a gateway's model names is.

A gateway (LiteLLM, Portkey, Envoy, Kong…) asks on behalf of many apps. Which app a call is made
for is governance data reviewed in git, like the apps' entitlements: the gateway reports its own
identities of the caller (the team and the key alias it authenticated), and this file maps them
to app ids. A request body never chooses the app on its own.

The file also maps the names a gateway calls models by (a LiteLLM deployment's
``litellm_params.model``, a Portkey provider model) to catalog routes, so that a check of "the
deployment about to be called" is a check of one route. A name this file does not map is no
route: it is never cleared.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from policy.catalog import Catalog, Identifier
from policy.errors import ClearanceError

# What gateways call their teams, keys and models: printable text, no control characters.
GatewayName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,200}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteRef(_Strict):
    """A catalog route: one model through one of its deployments."""

    model: Identifier
    deployment: Identifier


class Gateway(_Strict):
    name: Identifier
    kind: Annotated[str, StringConstraints(pattern=r"^(litellm|portkey|envoy|kong|other)$")]
    description: str | None = None
    # The gateway's team (LiteLLM team alias or id, Portkey metadata `team`) -> app id.
    teams: dict[GatewayName, Identifier] = {}
    # The gateway's key alias (LiteLLM key alias, Portkey metadata `key_alias`) -> app id. A key
    # alias is more specific than a team: when both are mapped they must name the same app.
    key_aliases: dict[GatewayName, Identifier] = {}
    # The gateway's name for a deployment (e.g. LiteLLM "openai/gemma-4-31b") -> catalog route.
    routes: dict[GatewayName, RouteRef] = {}
    # The model names clients send (LiteLLM model groups) -> the route names that may serve
    # them. A check that sees only the alias (LiteLLM's generic guardrail API) clears it only
    # when every one of its routes is cleared, since it cannot see which one will serve.
    aliases: dict[GatewayName, list[GatewayName]] = {}


class Gateways(_Strict):
    gateways: list[Gateway] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Gateways:
        names = [g.name for g in self.gateways]
        if len(names) != len(set(names)):
            raise ValueError(f"gateway names repeat: {sorted(names)}")
        return self

    def get(self, name: str) -> Gateway | None:
        return next((g for g in self.gateways if g.name == name), None)


def gateway_errors(gateways: Gateways, catalog: Catalog) -> list[tuple[tuple[object, ...], str]]:
    """(location in gateways.yaml, message) for every app or route the catalog does not hold."""
    apps = {a.id for a in catalog.apps}
    routes = {(m.id, d.id) for m in catalog.models for d in m.deployments}
    problems: list[tuple[tuple[object, ...], str]] = []
    for i, gateway in enumerate(gateways.gateways):
        for member in ("teams", "key_aliases"):
            for name, app in getattr(gateway, member).items():
                if app not in apps:
                    problems.append((("gateways", i, member, name), f"app {app!r} is not in apps.yaml"))
        for alias, names in gateway.aliases.items():
            for j, name in enumerate(names):
                if name not in gateway.routes:
                    problems.append((("gateways", i, "aliases", alias, j), f"{name!r} is not among its routes"))
        for name, ref in gateway.routes.items():
            if (ref.model, ref.deployment) not in routes:
                problems.append((("gateways", i, "routes", name),
                                 f"route {ref.model} via {ref.deployment} is not in models.yaml"))
    return problems


class IdentityRefused(ClearanceError):
    """The gateway's identities do not map to an app it may decide for (HTTP 403)."""


def app_for(gateway: Gateway, *, team: str | None, key_alias: str | None) -> str:
    """The app ``gateway``'s caller acts for, from its key alias and team; raises
    :class:`IdentityRefused` when neither is mapped or they name different apps."""
    by_alias = gateway.key_aliases.get(key_alias) if key_alias is not None else None
    by_team = gateway.teams.get(team) if team is not None else None
    if by_alias is not None and by_team is not None and by_alias != by_team:
        raise IdentityRefused(f"gateway {gateway.name}: key alias {key_alias!r} maps to app {by_alias!r} "
                              f"but team {team!r} maps to app {by_team!r} (gateways.yaml)")
    app = by_alias or by_team
    if app is None:
        asked = ", ".join(f"{k} {v!r}" for k, v in (("team", team), ("key alias", key_alias)) if v is not None)
        raise IdentityRefused(f"gateway {gateway.name}: {asked or 'no team or key alias'} maps to no app "
                              "in gateways.yaml; a gateway decides only for the apps its callers map to")
    return app

"""Test-only LiteLLM custom auth: the proxy's virtual keys, teams and key aliases without its
database (LiteLLM keeps those in PostgreSQL through Prisma, which cannot be set up offline).
What the Clearance guardrail reads is what the proxy's own key check would give it: the
``UserAPIKeyAuth`` of the caller (team alias, key alias, the model groups the key may call)."""

from __future__ import annotations

from fastapi import Request
from litellm.proxy._types import UserAPIKeyAuth

KEYS = {
    # The helpdesk's bot: team it-service-desk (-> internal-helpdesk in gateways.yaml), every group.
    "sk-helpdesk": {"team_alias": "it-service-desk", "key_alias": "helpdesk-slackbot"},
    # The same team, allowed only the group whose one deployment the helpdesk may not use.
    "sk-reasoning-only": {"team_alias": "it-service-desk", "models": ["reasoning"]},
    # A team gateways.yaml maps to no app.
    "sk-stranger": {"team_alias": "marketing"},
}


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    key = api_key.removeprefix("Bearer ").strip()
    found = KEYS.get(key)
    if found is None:
        raise Exception("unknown key")
    return UserAPIKeyAuth(api_key=key, team_id=f"team-{found['team_alias']}", **found)

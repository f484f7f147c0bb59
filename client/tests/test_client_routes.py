"""best_route: the best-ranked cleared route among those the app can reach."""

from __future__ import annotations

import pytest
from tlog_factory import decision_json

from clearance_client import Decision, best_route


def route(model, deployment, rank, price=1.0):
    return {"model": model, "deployment": deployment, "rank": rank, "price_per_mtok": price, "obligations": []}


DECISION = Decision.from_json(decision_json(allowed=[
    route("gemma-4-31b", "self-hosted", 1), route("gpt-5-mini", "openai-api", 2),
    route("mistral-medium-3", "mistral-api", 3), route("gpt-5-mini", "azure-eu", 3),
], denied=[{"model": "deepseek-v4", "deployment": "deepseek-api", "reasons": [{"code": "FOREIGN_HOSTED_API", "message": "m"}]}]))


def test_best_rank_among_the_reachable():
    pick = best_route(DECISION, {("gpt-5-mini", "openai-api"), ("mistral-medium-3", "mistral-api")})
    assert pick is not None and pick.route.route == ("gpt-5-mini", "openai-api") and pick.route.rank == 2
    assert pick.target == ("gpt-5-mini", "openai-api")


def test_mapping_gives_the_target():
    reachable = {("mistral-medium-3", "mistral-api"): "https://mistral.internal/v1",
                 ("gemma-4-31b", "self-hosted"): "http://gemma.svc:8000/v1"}
    pick = best_route(DECISION, reachable)
    assert pick is not None and pick.target == "http://gemma.svc:8000/v1" and pick.route.model == "gemma-4-31b"


def test_ties_keep_the_decisions_order():
    pick = best_route(DECISION, [("gpt-5-mini", "azure-eu"), ("mistral-medium-3", "mistral-api")])
    assert pick is not None and pick.route.route == ("mistral-medium-3", "mistral-api")


def test_none_when_nothing_reachable_is_cleared():
    assert best_route(DECISION, {("deepseek-v4", "deepseek-api"), ("unknown", "x")}) is None
    assert best_route(DECISION, set()) is None


def test_a_denied_route_is_never_chosen_even_if_also_listed_as_cleared():
    odd = Decision.from_json(decision_json(
        allowed=[route("deepseek-v4", "deepseek-api", 1), route("gemma-4-31b", "self-hosted", 2)],
        denied=[{"model": "deepseek-v4", "deployment": "deepseek-api", "reasons": [{"code": "X", "message": "m"}]}]))
    pick = best_route(odd, {("deepseek-v4", "deepseek-api"), ("gemma-4-31b", "self-hosted")})
    assert pick is not None and pick.route.model == "gemma-4-31b"
    assert odd.cleared("deepseek-v4") == []


def test_a_deny_decision_has_no_route():
    deny = Decision.from_json(decision_json(allowed=[]))
    assert best_route(deny, {("gemma-4-31b", "self-hosted")}) is None


@pytest.mark.parametrize("bad", [["gemma-4-31b"], [("gemma-4-31b",)], [("a", "b", "c")], [("a", 1)]])
def test_reachable_routes_must_be_pairs(bad):
    with pytest.raises(TypeError, match="pairs"):
        best_route(DECISION, bad)

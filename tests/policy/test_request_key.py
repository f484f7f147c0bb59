"""``policy.profile.request_key``: what the service memoises a request's policy input on.

The key must be equal exactly when two requests of an app resolve to the same policy input:
equal keys for different inputs would hand one request another's decision (and record the
wrong ``requested``); different keys for equal inputs only cost a cache miss, but are checked
too. Hypothesis draws pairs from a small space so that equal pairs are frequent.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import ActivePolicy, Caller, DecisionRequest
from policy.profile import ProfileViolation, request_key

CALLER = Caller(key_id="k1", role="app")

OPTIONAL: dict[str, Any] = {
    "sector": st.sampled_from([None, "general", "financial_services", "insurance", "public_sector"]),
    "jurisdictions": st.sampled_from([["EU"], ["US"], ["EU", "US"], ["US", "EU"], ["DE"], ["DE", "EU"], ["UK"]]),
    "commercial": st.booleans(),
    "monthly_active_users": st.sampled_from([0, 1, 5]),
    "max_price_per_mtok": st.sampled_from([None, 5, 5.0, 0.5]),
    "deployment_modes": st.sampled_from([["self_hosted"], ["self_hosted", "cloud"], ["cloud", "self_hosted"]]),
    "min_context_tokens": st.sampled_from([0, 32000]),
}
WORKLOADS = st.fixed_dictionaries(
    {"task": st.sampled_from(["summarization", "qa"]), "quality_tier": st.just("commodity"),
     "regulatory_tier": st.sampled_from(["minimal", "regulated"]),
     "data_classification": st.sampled_from(["public", "confidential"])},
    optional=OPTIONAL,
)
REQUESTS = st.one_of(
    st.builds(lambda app, w: {"app_id": app, "workload": w},
              st.sampled_from(["claims-summariser", "internal-helpdesk"]), WORKLOADS),
    st.sampled_from([{"app_id": "claims-summariser", "workload_profile": "claim-summary"},
                     {"app_id": "internal-helpdesk", "workload_profile": "ticket-summary"}]),
)


def resolved(policy: ActivePolicy, body: dict[str, Any]) -> tuple[object, bytes | None]:
    request = DecisionRequest.model_validate(body)
    try:
        policy_input = policy.input_for(request, CALLER)
    except ProfileViolation:
        return request_key(request), None
    return request_key(request), orjson.dumps(policy_input, option=orjson.OPT_SORT_KEYS)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(a=REQUESTS, b=REQUESTS)
def test_equal_keys_exactly_when_the_inputs_are_equal(policy: ActivePolicy, a: dict[str, Any],
                                                      b: dict[str, Any]) -> None:
    key_a, input_a = resolved(policy, a)
    key_b, input_b = resolved(policy, b)
    if input_a is None or input_b is None:
        return  # refused: nothing is cached
    assert (key_a == key_b) == (input_a == input_b), (a, b)


@pytest.mark.parametrize(("a", "b"), [
    ({"sector": "financial_services"}, {}),  # named vs left to the profile (recorded differently)
    ({"jurisdictions": ["EU", "US"]}, {}),
    ({"jurisdictions": ["DE"]}, {"jurisdictions": ["DE", "EU"]}),  # same expansion, asked differently
    ({"commercial": True}, {}),  # the default, but sent
    ({"max_price_per_mtok": None}, {}),
])
def test_what_was_asked_is_part_of_the_key(policy: ActivePolicy, a: dict[str, Any], b: dict[str, Any]) -> None:
    base = {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
            "data_classification": "confidential"}
    key_a, input_a = resolved(policy, {"app_id": "claims-summariser", "workload": {**base, **a}})
    key_b, input_b = resolved(policy, {"app_id": "claims-summariser", "workload": {**base, **b}})
    assert key_a != key_b
    assert input_a != input_b


def test_the_context_is_not_part_of_the_key(policy: ActivePolicy) -> None:
    body = {"app_id": "claims-summariser", "workload_profile": "claim-summary"}
    one = DecisionRequest.model_validate({**body, "context": {"request_id": "a"}})
    two = DecisionRequest.model_validate({**body, "context": {"request_id": "b"}})
    assert request_key(one) == request_key(two)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(a=REQUESTS)
def test_the_same_request_spelled_differently_has_the_same_key(policy: ActivePolicy, a: dict[str, Any]) -> None:
    # Keys in another order, and a price sent as an integer: the same validated request.
    workload = a.get("workload")
    if workload is None:
        b = dict(reversed(a.items()))
    else:
        price = workload.get("max_price_per_mtok")
        respelled = {**workload, **({"max_price_per_mtok": int(price)} if price == int(price or 0.5) else {})}
        b = {"workload": dict(reversed(respelled.items())), "app_id": a["app_id"]}
    key_a, input_a = resolved(policy, a)
    key_b, input_b = resolved(policy, b)
    assert key_a == key_b
    assert input_a == input_b

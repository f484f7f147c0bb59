"""The service's one cache (api/decider.py): keyed by (revision, request, caller), so a repeated
request skips the profile and the engine, and nothing else ever shares an evaluation."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import orjson
import pytest

from api.decider import Decider, PolicyHolder
from api.metrics import Metrics
from policy import ActivePolicy, Caller, DecisionRequest, load_policy
from policy.profile import ProfileViolation
from tests.bundles import REGO, copy_bundle, edit

APP = Caller(key_id="k_app", role="app")
WORKLOAD = {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
            "data_classification": "confidential"}


@pytest.fixture(scope="module")
def policy() -> ActivePolicy:
    return load_policy(REGO)


def decider_for(policy: ActivePolicy) -> Decider:
    return Decider(policy=PolicyHolder(policy), shadow=None, writer=None, metrics=Metrics.create())  # type: ignore[arg-type]


def request(**workload: Any) -> DecisionRequest:
    return DecisionRequest.model_validate({"app_id": "claims-summariser", "workload": {**WORKLOAD, **workload}})


def stricter_policy(tmp_path: Path) -> ActivePolicy:
    """Another revision: the reference bundle with a stricter profile for the app."""
    bundle = copy_bundle(tmp_path / "rego")
    edit(bundle / "data" / "apps.yaml", "data_classification_floor: confidential  # claim files",
         "data_classification_floor: restricted  # claim files")
    return load_policy(bundle)


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def test_a_repeated_request_is_resolved_and_evaluated_once(policy: ActivePolicy) -> None:
    decider = decider_for(policy)
    first = decider.evaluate(policy, request(), APP)
    again = decider.evaluate(policy, request(), APP)
    assert again is first
    assert decider.cache_info().hits == 1 and decider.cache_info().misses == 1
    # What was cached is what the request resolves to now, and what the engine answers for it.
    assert canonical(first.input) == canonical(policy.input_for(request(), APP))
    assert first.answer == policy.evaluate(policy.input_for(request(), APP))


def test_requests_that_differ_in_what_they_asked_never_share_an_evaluation(policy: ActivePolicy) -> None:
    decider = decider_for(policy)
    omitted = decider.evaluate(policy, request(), APP)  # both sectors of the profile
    named = decider.evaluate(policy, request(sector="insurance"), APP)
    other_caller = decider.evaluate(policy, request(), Caller(key_id="k_other", role="app"))
    assert len({id(omitted), id(named), id(other_caller)}) == 3
    assert omitted.input["workload"]["sectors"] == ["financial_services", "insurance"]
    assert "sector" not in omitted.input["requested"]["workload"]
    assert named.input["workload"]["sectors"] == ["insurance"]
    assert named.input["requested"]["workload"]["sector"] == "insurance"
    assert other_caller.input["caller"]["key_id"] == "k_other"


def test_a_refused_request_is_refused_every_time(policy: ActivePolicy) -> None:
    decider = decider_for(policy)
    for _ in range(2):
        with pytest.raises(ProfileViolation):
            decider.evaluate(policy, request(sector="public_sector"), APP)
    assert decider.cache_info().currsize == 0


def test_another_revision_never_reuses_an_answer(policy: ActivePolicy, tmp_path: Path) -> None:
    # The same request under a bundle whose profile for the app differs: its own answer.
    stricter = stricter_policy(tmp_path)
    decider = decider_for(policy)
    before = decider.evaluate(policy, request(), APP)
    after = decider.evaluate(stricter, request(), APP)
    assert before.input["workload"]["data_classification"] == "confidential"
    assert after.input["workload"]["data_classification"] == "restricted"
    assert decider.cache_info().misses == 2


def test_a_cached_answer_does_not_keep_its_policy_alive(policy: ActivePolicy, tmp_path: Path) -> None:
    """A reload swaps the policy; the answers cached under the old revision stay until evicted
    (a revert to that revision reuses them), but not the old bundle itself: with few distinct
    inputs nothing is evicted, and each reload kept one more engine alive (+3–7 MB a worker)."""
    old = stricter_policy(tmp_path)
    decider = decider_for(policy)
    cached = decider.evaluate(old, request(), APP)
    assert decider.evaluate(old, request(), APP) is cached
    gone = weakref.ref(old)
    del old
    gc.collect()
    assert gone() is None, "the decision cache keeps a reloaded policy alive"
    assert decider.cache_info().currsize == 1


def test_the_cache_keeps_at_most_its_size_and_zero_keeps_none(policy: ActivePolicy) -> None:
    """CLEARANCE_DECISION_CACHE_SIZE bounds a worker's memory (~100 KB an evaluation once
    recorded): the oldest is dropped; 0 evaluates every request."""
    decider = Decider(policy=PolicyHolder(policy), shadow=None, writer=None, metrics=Metrics.create(),  # type: ignore[arg-type]
                      cache_size=2)
    first = decider.evaluate(policy, request(monthly_active_users=1), APP)
    decider.evaluate(policy, request(monthly_active_users=2), APP)
    decider.evaluate(policy, request(monthly_active_users=3), APP)
    assert decider.cache_info().currsize == 2
    again = decider.evaluate(policy, request(monthly_active_users=1), APP)
    assert again is not first and canonical(again.answer) == canonical(first.answer)
    none_kept = Decider(policy=PolicyHolder(policy), shadow=None, writer=None, metrics=Metrics.create(),  # type: ignore[arg-type]
                        cache_size=0)
    assert none_kept.evaluate(policy, request(), APP) is not none_kept.evaluate(policy, request(), APP)
    assert none_kept.cache_info().currsize == 0


def test_the_service_takes_the_size_from_its_settings(api_database: str, tmp_path: Path) -> None:
    from api.services import Services
    from api.settings import Settings
    from tests.api.conftest import make_settings

    assert Settings().decision_cache_size == 1024
    with pytest.raises(ValueError, match="decision_cache_size"):
        Settings(decision_cache_size=-1)
    started = Services.start(make_settings(tmp_path, api_database, decision_cache_size=3))
    try:
        assert started.decider.cache_info().maxsize == 3
    finally:
        started.close()

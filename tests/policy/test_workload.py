"""Workload validation: unknown fields and values are refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from policy import DecisionRequest

VALID: dict[str, Any] = {
    "app_id": "claims-summariser",
    "workload": {
        "task": "summarization",
        "quality_tier": "commodity",
        "regulatory_tier": "regulated",
        "sector": "financial_services",
        "jurisdictions": ["EU", "US"],
        "data_classification": "confidential",
        "dangerous_capability": "none",
        "commercial": True,
        "monthly_active_users": 1200000,
        "min_context_tokens": 32000,
        "max_price_per_mtok": 5.0,
        "deployment_modes": ["self_hosted", "vendor_api", "cloud"],
    },
    "context": {"request_id": "abc"},
}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = {**VALID, "workload": dict(VALID["workload"]), "context": dict(VALID["context"])}
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def test_design_example_is_valid() -> None:
    req = DecisionRequest.model_validate(VALID)
    assert req.workload.model_dump()["monthly_active_users"] == 1_200_000


def test_monthly_active_users_is_accepted_recorded_and_documented_as_deprecated() -> None:
    req = DecisionRequest.model_validate(VALID)
    assert req.workload.model_dump(mode="json")["monthly_active_users"] == 1_200_000  # what the entry records
    schema = DecisionRequest.model_json_schema()["$defs"]["Workload"]["properties"]["monthly_active_users"]
    assert schema["deprecated"] is True
    with pytest.warns(DeprecationWarning, match="org.yaml"):
        assert req.workload.monthly_active_users == 1_200_000


def test_defaults_fill_optional_fields() -> None:
    req = DecisionRequest.model_validate(
        {"app_id": "x", "workload": {"task": "qa", "quality_tier": "commodity", "regulatory_tier": "minimal", "data_classification": "public"}}
    )
    # sector and jurisdictions stay unset: the app's profile fills them (policy.profile).
    assert req.workload.commercial is True and req.workload.sector is None and req.workload.jurisdictions is None
    assert req.workload.max_price_per_mtok is None and len(req.workload.deployment_modes) == 3


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("workload", "colour"), "blue", "workload.colour"),
        (("surprise",), 1, "surprise"),
        (("workload", "task"), "poetry", "workload.task"),
        (("workload", "sector"), "mining", "workload.sector"),
        (("workload", "regulatory_tier"), "extreme", "workload.regulatory_tier"),
        (("workload", "monthly_active_users"), -1, "workload.monthly_active_users"),
        (("workload", "monthly_active_users"), 10**15, "workload.monthly_active_users"),
        (("workload", "max_price_per_mtok"), -3.0, "workload.max_price_per_mtok"),
        (("workload", "min_context_tokens"), 10**12, "workload.min_context_tokens"),
        (("workload", "jurisdictions"), ["eu"], "workload.jurisdictions.0"),
        (("workload", "deployment_modes"), [], "workload.deployment_modes"),
        (("workload", "deployment_modes"), ["on_prem"], "workload.deployment_modes.0"),
        (("workload", "dangerous_capability"), "nukes", "workload.dangerous_capability"),
        (("app_id",), "Bad App!", "app_id"),
        (("context", "trace"), "x", "context.trace"),
    ],
)
def test_bad_values_are_refused_naming_the_field(path: tuple[str, ...], value: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        DecisionRequest.model_validate(_with(path, value))
    fields = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert field in fields, fields


def test_entitlements_cannot_be_asserted_by_the_caller() -> None:
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate({**VALID, "app": {"programs": ["glasswing"]}})
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate(_with(("workload", "capability_approvals"), ["cyber_offense"]))

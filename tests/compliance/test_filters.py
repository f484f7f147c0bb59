"""GET /v1/audit/decisions: every filter narrows the answer exactly as the signed bodies say."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from audit import queries
from audit.canonical import format_time
from tests.api.conftest import Keys, bearer
from tests.compliance.conftest import COUNT, REV_B, T0, Dataset, sectors_of


def _cleared(f: dict[str, Any]) -> list[str]:
    return [r["model"] for r in f["result"]["allowed"]]


def _denied(f: dict[str, Any]) -> list[str]:
    return [r["model"] for r in f["result"]["denied"]]


def _codes(f: dict[str, Any]) -> set[str]:
    return {c["code"] for r in f["result"]["denied"] for c in r["reasons"]}


# (query parameters, predicate over (fields, recorded_at)) — each matches a strict, non-empty
# subset of the dataset, so ignoring the filter would return more entries.
CASES: dict[str, tuple[dict[str, str], Any]] = {
    "from": ({"from": format_time(T0 + timedelta(hours=40))}, lambda f, t: t >= T0 + timedelta(hours=40)),
    "to": ({"to": format_time(T0 + timedelta(hours=5))}, lambda f, t: t < T0 + timedelta(hours=5)),
    "from+to": ({"from": format_time(T0 + timedelta(hours=10)), "to": format_time(T0 + timedelta(hours=20))},
                lambda f, t: T0 + timedelta(hours=10) <= t < T0 + timedelta(hours=20)),
    "app_id": ({"app_id": "internal-helpdesk"}, lambda f, t: f["app_id"] == "internal-helpdesk"),
    "model (cleared or denied)": ({"model": "gemma-4-31b"}, lambda f, t: "gemma-4-31b" in _cleared(f) + _denied(f)),
    "model cleared": ({"model": "deepseek-v4", "model_status": "cleared"}, lambda f, t: "deepseek-v4" in _cleared(f)),
    "model denied": ({"model": "deepseek-v4", "model_status": "denied"}, lambda f, t: "deepseek-v4" in _denied(f)),
    "outcome": ({"outcome": "deny"}, lambda f, t: f["outcome"] == "deny"),
    "reason_code": ({"reason_code": "LICENCE_PROHIBITED_USE"}, lambda f, t: "LICENCE_PROHIBITED_USE" in _codes(f)),
    "regulatory_tier": ({"regulatory_tier": "critical"}, lambda f, t: f["input"]["workload"]["regulatory_tier"] == "critical"),
    "sector": ({"sector": "healthcare"}, lambda f, t: "healthcare" in sectors_of(f)),
    # Judged for several sectors (the request left the sector to the app's profile): found by each.
    "sector among several": ({"sector": "insurance"}, lambda f, t: "insurance" in sectors_of(f)),
    "sector, alone or among several": ({"sector": "general"}, lambda f, t: "general" in sectors_of(f)),
    "provenance": ({"provenance": "open_chinese"}, lambda f, t: any(r["provenance"] == "open_chinese" for r in f["result"]["allowed"])),
    "policy_revision": ({"policy_revision": REV_B}, lambda f, t: f["policy_revision"] == REV_B),
    "sector+provenance": ({"sector": "healthcare", "provenance": "open_chinese"},
                          lambda f, t: "healthcare" in sectors_of(f) and "deepseek-v4" in _cleared(f)),
    "combined": ({"provenance": "open_chinese", "regulatory_tier": "regulated", "app_id": "internal-helpdesk"},
                 lambda f, t: f["app_id"] == "internal-helpdesk" and f["input"]["workload"]["regulatory_tier"] == "regulated"
                 and "deepseek-v4" in _cleared(f)),
}


def fetch_all(client: TestClient, keys: Keys, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        answer = client.get("/v1/audit/decisions", params={**params, **({"cursor": cursor} if cursor else {})},
                            headers=bearer(keys.auditor))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


@pytest.fixture(params=["window", "facets index"])
def search_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each case twice: answered within the first WINDOW entries, and (WINDOW = 3) mostly
    beyond it, through the facets index of migration 0003."""
    if request.param == "facets index":
        monkeypatch.setattr(queries, "WINDOW", 3)
    return str(request.param)


@pytest.mark.parametrize("case", list(CASES))
def test_each_filter_narrows_exactly(client: TestClient, keys: Keys, dataset: Dataset, case: str,
                                     search_path: str) -> None:
    params, predicate = CASES[case]
    expected = dataset.seqs(predicate)
    assert 0 < len(expected) < COUNT, "the case must select a strict subset"
    items = fetch_all(client, keys, {**params, "limit": 7})
    assert [i["seq"] for i in items] == sorted(expected, reverse=True)


def test_decision_id_filter(client: TestClient, keys: Keys, dataset: Dataset) -> None:
    wanted = dataset.fields[17]["decision_id"]
    items = fetch_all(client, keys, {"decision_id": wanted})
    assert [(i["seq"], i["decision_id"]) for i in items] == [(18, wanted)]


def test_default_is_newest_first_and_asc_is_chain_order(client: TestClient, keys: Keys) -> None:
    newest = client.get("/v1/audit/decisions", params={"limit": 3}, headers=bearer(keys.auditor)).json()
    assert [i["seq"] for i in newest["items"]] == [COUNT, COUNT - 1, COUNT - 2]
    oldest = client.get("/v1/audit/decisions", params={"limit": 3, "order": "asc"}, headers=bearer(keys.auditor)).json()
    assert [i["seq"] for i in oldest["items"]] == [1, 2, 3]


def test_items_carry_the_derived_columns(client: TestClient, keys: Keys, dataset: Dataset) -> None:
    item = fetch_all(client, keys, {"decision_id": dataset.fields[1]["decision_id"]})[0]
    f = dataset.fields[1]
    assert item["app_id"] == f["app_id"] and item["outcome"] == f["outcome"]
    assert item["models_allowed"] == sorted(_cleared(f)) and item["reason_codes"] == sorted(_codes(f))
    assert item["recorded_at"] == format_time(dataset.times[1]) and len(item["leaf_hash"]) == 64


def test_a_model_filter_returns_that_models_denials_and_why(client: TestClient, keys: Keys, search_path: str) -> None:
    items = fetch_all(client, keys, {"model": "gpt-5.4", "model_status": "denied", "app_id": "claims-summariser"})
    assert items and all(i["app_id"] == "claims-summariser" for i in items)
    for item in items:
        assert [d["model"] for d in item["model_denials"]] == ["gpt-5.4"]
        assert item["model_denials"][0]["reasons"][0]["code"] in ("LICENCE_PROHIBITED_USE", "UNSUITABLE_PRICE")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("from", "yesterday"), ("from", "2026-03-01"), ("from", "2026-03-01T00:00:00"), ("to", "1700000000"),
        ("outcome", "maybe"), ("regulatory_tier", "extreme"), ("sector", "retail"), ("provenance", "open_martian"),
        ("decision_id", "not-a-uuid"), ("limit", "0"), ("limit", "1001"), ("cursor", "garbage!"),
        ("reason_code", "lower_case"), ("model", "Bad Model"), ("app_id", "x" * 100), ("order", "sideways"),
        ("model_status", "cleared"), ("unknown_filter", "1"),
    ],
)
def test_invalid_filter_values_are_422_naming_the_parameter(client: TestClient, keys: Keys, param: str, value: str) -> None:
    answer = client.get("/v1/audit/decisions", params={param: value}, headers=bearer(keys.auditor))
    assert answer.status_code == 422, answer.text
    fields = [f["field"] for f in answer.json()["error"]["fields"]]
    assert param in fields, answer.json()


def test_to_before_from_is_422_naming_to(client: TestClient, keys: Keys) -> None:
    answer = client.get("/v1/audit/decisions", params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
                        headers=bearer(keys.auditor))
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["error"]["fields"]] == ["to"]

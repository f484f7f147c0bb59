"""GET /v1/audit/stats: counts per group and time bucket match the dataset."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from audit.canonical import format_time
from tests.api.conftest import Keys, bearer
from tests.compliance.conftest import COUNT, Dataset, sectors_of


def _stats(client: TestClient, keys: Keys, **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/audit/stats", params=params, headers=bearer(keys.auditor))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _day(t: datetime) -> str:
    return format_time(datetime(t.year, t.month, t.day, tzinfo=UTC))


def test_total_without_grouping(client: TestClient, keys: Keys) -> None:
    body = _stats(client, keys)
    assert body["total"] == COUNT and body["groups"] == [{"count": COUNT}]


def test_group_by_outcome_and_app_per_day(client: TestClient, keys: Keys, dataset: Dataset) -> None:
    body = _stats(client, keys, group_by="outcome,app", bucket="day")
    expected = Counter((_day(t), f["outcome"], f["app_id"]) for f, t in zip(dataset.fields, dataset.times, strict=True))
    got = {(g["bucket"], g["outcome"], g["app"]): g["count"] for g in body["groups"]}
    assert got == dict(expected)
    assert body["total"] == COUNT and body["bucket"] == "day" and body["group_by"] == ["outcome", "app"]


def test_group_by_provenance_counts_each_cleared_provenance(client: TestClient, keys: Keys, dataset: Dataset) -> None:
    body = _stats(client, keys, group_by="provenance")
    expected: Counter[str | None] = Counter()
    for f in dataset.fields:
        values = {r["provenance"] for r in f["result"]["allowed"]} or {None}
        expected.update(values)
    assert {g["provenance"]: g["count"] for g in body["groups"]} == dict(expected)


@pytest.mark.parametrize("key", ["model", "reason_code", "regulatory_tier", "sector"])
def test_other_group_keys(client: TestClient, keys: Keys, dataset: Dataset, key: str) -> None:
    body = _stats(client, keys, group_by=key, outcome="allow")
    expected: Counter[Any] = Counter()
    for f in dataset.fields:
        if f["outcome"] != "allow":
            continue
        if key == "model":
            values = {r["model"] for r in f["result"]["allowed"]} or {None}
        elif key == "reason_code":
            values = {c["code"] for r in f["result"]["denied"] for c in r["reasons"]} or {None}
        elif key == "sector":  # counted once under each sector it was judged for
            values = set(sectors_of(f))
        else:
            values = {f["input"]["workload"][key]}
        expected.update(values)
    assert {g[key]: g["count"] for g in body["groups"]} == dict(expected)
    # total counts entries: under an array key an entry is in several groups
    assert body["total"] == sum(1 for f in dataset.fields if f["outcome"] == "allow")


def test_hour_and_week_buckets_with_a_time_filter(client: TestClient, keys: Keys, dataset: Dataset) -> None:
    start = dataset.times[0] + timedelta(hours=3)
    body = _stats(client, keys, bucket="hour", **{"from": format_time(start)})
    assert body["total"] == COUNT - 3 and len(body["groups"]) == COUNT - 3
    assert all(g["count"] == 1 for g in body["groups"])
    weekly = _stats(client, keys, bucket="week")
    assert weekly["groups"] == [{"bucket": format_time(dataset.times[0]), "count": COUNT}]  # T0 is a Monday


@pytest.mark.parametrize(("param", "value"), [("group_by", "colour"), ("group_by", "app,app"), ("bucket", "month"),
                                              ("group_by", "app,outcome,sector,model")])
def test_invalid_grouping_is_422(client: TestClient, keys: Keys, param: str, value: str) -> None:
    answer = client.get("/v1/audit/stats", params={param: value}, headers=bearer(keys.auditor))
    assert answer.status_code == 422, answer.text
    assert param in [f["field"].split(".")[0] for f in answer.json()["error"]["fields"]]

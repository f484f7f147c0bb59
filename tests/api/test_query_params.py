"""Repeated query parameters on every endpoint: a documented list (``group_by``) accepts them;
any other parameter given twice is 422 naming it, never silently reduced to one value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.settings import Settings
from audit.queries import encode_cursor
from tests.api.conftest import Keys, bearer

DOCUMENT = create_app(Settings(database_url="postgresql://unused/none")).openapi()

# A valid value of every query parameter the API declares (a new one must be added here).
VALID: dict[str, tuple[str, str]] = {
    "from": ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
    "to": ("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
    "app_id": ("claims-summariser", "internal-helpdesk"),
    "model": ("gemma-4-31b", "deepseek-v4"),
    "model_status": ("cleared", "denied"),
    "outcome": ("allow", "deny"),
    "reason_code": ("LICENCE_MAU_CAP", "UNSUITABLE_PRICE"),
    "regulatory_tier": ("regulated", "minimal"),
    "sector": ("general", "healthcare"),
    "provenance": ("open_western", "open_chinese"),
    "policy_revision": ("sha256:" + "aa" * 32, "sha256:" + "bb" * 32),
    "decision_id": ("0190f3a0-0000-7000-8000-000000000001", "0190f3a0-0000-7000-8000-000000000002"),
    "limit": ("5", "7"),
    "cursor": (encode_cursor(5, datetime(2026, 3, 2, tzinfo=UTC)), encode_cursor(3, datetime(2026, 3, 1, tzinfo=UTC))),
    "order": ("asc", "desc"),
    "bucket": ("day", "week"),
    "format": ("csv", "jsonl"),
    "from_seq": ("1", "2"),
    "to_seq": ("3", "4"),
    "min_cosignatures": ("1", "2"),
    "group_by": ("outcome", "app"),
    "kind": ("decision", "served"),
    "request_id": ("r-1", "r-2"),
    "trace_id": ("t-1", "t-2"),
    "gateway": ("litellm-main", "portkey-main"),
    "requested_model": ("fast", "safe"),
    "key_alias": ("claims-batch", "helpdesk-slackbot"),
    "team": ("claims-platform", "it-service-desk"),
    "call_id": ("c-1", "c-2"),
    "served_for": ("0190f3a0-0000-7000-8000-000000000001", "0190f3a0-0000-7000-8000-000000000002"),
    "served": ("cleared", "uncleared"),
    "workload_profile": ("claim-summary", "claim-summary"),
    "substitute": ("true", "false"),
    "seq": ("1", "2"),
    "size": ("2", "3"),
}
# Parameters whose values differ by path: the log's proofs take tree sizes, not times.
VALID_AT = {"/v1/audit/proof/consistency": {"from": ("0", "1"), "to": ("2", "3")}}
NEEDS = {"model_status": {"model": "gemma-4-31b"}}  # a parameter valid only beside another
# Where one endpoint takes other values, or needs other parameters beside each one.
VALID_ON = {("/v1/audit/report", "format"): ("html", "zip")}
NEEDS_ON = {"/v1/audit/report": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}
# /v1/gateways/ answers every caller 200 (refusals are verdicts in the body); /v1/models lists the
# app key's own app (a gateway's team and key alias are ignored for an app key).
ROLE = {"/v1/audit/": "auditor", "/v1/policy": "admin", "/v1/decisions": "auditor", "/v1/models": "own_app",
        "/v1/gateways/": "auditor"}


def _query_parameters() -> list[tuple[str, str, str, bool]]:
    """(METHOD, path, name, is a list) of every query parameter of every operation."""
    return [(method.upper(), path, parameter["name"], "array" in json.dumps(parameter["schema"]))
            for path, item in DOCUMENT["paths"].items() for method, operation in item.items()
            for parameter in operation.get("parameters", ()) if parameter["in"] == "query"]


PARAMETERS = _query_parameters()
SINGLE = [(m, p, n) for m, p, n, is_list in PARAMETERS if not is_list]


def test_the_documented_lists_are_group_by_alone() -> None:
    assert sorted({(p, n) for m, p, n, is_list in PARAMETERS if is_list}) == [("/v1/audit/stats", "group_by")]
    assert {n for _, _, n, _ in PARAMETERS} <= set(VALID), "add a valid value for the new parameter to VALID"


def _call(client: TestClient, keys: Keys, method: str, path: str, query: list[tuple[str, str]]) -> Any:
    role = next(r for prefix, r in ROLE.items() if path.startswith(prefix))
    return client.request(method, path.replace("{gateway}", "litellm-main"), params=query,
                          headers=bearer(getattr(keys, role)))


@pytest.mark.parametrize(("method", "path", "name"), SINGLE, ids=[f"{m} {p} {n}" for m, p, n in SINGLE])
def test_a_single_valued_parameter_given_twice_is_422_naming_it(client: TestClient, keys: Keys, method: str,
                                                                path: str, name: str) -> None:
    extra = [*NEEDS.get(name, {}).items(), *((k, v) for k, v in NEEDS_ON.get(path, {}).items() if k != name)]
    valid = VALID_ON.get((path, name), VALID_AT.get(path, {}).get(name, VALID[name]))
    if path in NEEDS_ON and name in ("from", "to"):
        valid = (NEEDS_ON[path][name], valid[1]) if name == "from" else (valid[0], "2026-01-03T00:00:00Z")
    if path.startswith("/v1/audit/proof/"):  # proofs need a log of a few entries
        extra += [(n, VALID_AT.get(path, VALID)[n][0]) for n in ("from", "to", "seq", "size")
                  if n != name and n in {p for _, q, p, _ in PARAMETERS if q == path}]
        for _ in range(3):
            client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE, headers=bearer(keys.own_app))
    once = _call(client, keys, method, path, [(name, valid[0]), *extra])
    assert once.status_code == 200, once.text  # the value alone is fine
    for values in (valid, (valid[0], valid[0])):  # different, and the same twice
        twice = _call(client, keys, method, path, [(name, v) for v in values] + extra)
        assert twice.status_code == 422, twice.text
        error = twice.json()["error"]
        assert error["code"] == "invalid_request"
        assert error["fields"] == [{"field": name, "reason": "given 2 times; it takes one value"}]


def test_a_percent_encoded_name_counts_as_the_same(client: TestClient, keys: Keys) -> None:
    answer = client.get("/v1/audit/decisions?outcome=allow&out%63ome=deny", headers=bearer(keys.auditor))
    assert answer.status_code == 422 and answer.json()["error"]["fields"][0]["field"] == "outcome"


def test_undeclared_parameters_are_not_this_checks_concern(client: TestClient, keys: Keys) -> None:
    assert client.get("/healthz?x=1&x=2").status_code == 200
    assert client.get("/v1/audit/keys?x=1&x=2").status_code == 200


@pytest.mark.parametrize("query", [
    "group_by=outcome&group_by=app",
    "group_by=outcome,app",
    "group_by=outcome&group_by=app,model",
])
def test_group_by_is_a_list_repeated_or_comma_separated(client: TestClient, keys: Keys, query: str) -> None:
    answer = client.get(f"/v1/audit/stats?{query}", headers=bearer(keys.auditor))
    assert answer.status_code == 200, answer.text
    expected = [k for part in query.split("&") for k in part.removeprefix("group_by=").split(",")]
    assert answer.json()["group_by"] == expected


@pytest.mark.parametrize(("query", "reason"), [
    ("group_by=outcome&group_by=outcome", "twice"),
    ("group_by=outcome,app&group_by=model&group_by=sector", "at most 3"),
    ("group_by=outcome&group_by=colour", "outcome"),
])
def test_group_by_lists_are_still_checked(client: TestClient, keys: Keys, query: str, reason: str) -> None:
    answer = client.get(f"/v1/audit/stats?{query}", headers=bearer(keys.auditor))
    assert answer.status_code == 422, answer.text
    fields = answer.json()["error"]["fields"]
    assert fields and all(f["field"].startswith("group_by") for f in fields)
    assert any(reason in f["reason"] for f in fields), fields

"""Separation of duties: app keys cannot read the audit trail; auditor keys cannot decide."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.schemas import DECISION_REQUEST_EXAMPLE
from tests.api.conftest import Keys, bearer

AUDIT_READS = [
    "/v1/audit/decisions",
    "/v1/audit/decisions?outcome=deny",
    "/v1/audit/stats?group_by=outcome",
    "/v1/audit/export?format=jsonl",
    "/v1/audit/export?format=csv",
    "/v1/audit/verify",
    "/v1/decisions/0190f000-0000-7000-8000-000000000000",
]


@pytest.mark.parametrize("path", AUDIT_READS)
@pytest.mark.parametrize("who", ["own_app", "other_app", "admin"])
def test_only_auditors_read_the_audit(client: TestClient, keys: Keys, path: str, who: str) -> None:
    answer = client.get(path, headers=bearer(getattr(keys, who)))
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "forbidden"
    assert "items" not in answer.text and "entry_hash" not in answer.text


@pytest.mark.parametrize("path", AUDIT_READS)
def test_no_key_is_401(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401


def test_auditor_keys_cannot_decide(client: TestClient, keys: Keys) -> None:
    answer = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE, headers=bearer(keys.auditor))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"


def test_auditor_reads(client: TestClient, keys: Keys) -> None:
    for path in AUDIT_READS[:-1]:
        assert client.get(path, headers=bearer(keys.auditor)).status_code == 200, path

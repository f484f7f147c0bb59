"""``GET /v1/policy`` gives each role what it needs: any key the revision, engine, git commit,
catalog summary and reason codes; only an admin key the server's directories, files, the list
of every app, the shadow candidate and the process id."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient

from api.services import Services
from tests.api.conftest import Keys, bearer

SUMMARY = {"revision", "engine", "git", "models", "reason_codes"}
ADMIN_ONLY = {"directory", "modules", "files", "apps", "shadow", "pid"}


def test_app_and_auditor_keys_see_the_summary_alone(client: TestClient, keys: Keys, services: Services) -> None:
    for key in (keys.own_app, keys.other_app, keys.auditor):
        answer = client.get("/v1/policy", headers=bearer(key))
        assert answer.status_code == 200, answer.text
        info = answer.json()
        assert set(info) == SUMMARY
        assert info["revision"] == services.policy.current.revision
        assert {m["id"] for m in info["models"]} >= {"gemma-4-31b", "deepseek-v4"}
        text = answer.text
        assert str(services.policy.current.bundle.root) not in text  # no server path
        assert "internal-helpdesk" not in text or key == keys.other_app  # no other app's id


def test_an_admin_key_sees_everything(client: TestClient, keys: Keys, services: Services) -> None:
    info = client.get("/v1/policy", headers=bearer(keys.admin)).json()
    assert set(info) == SUMMARY | ADMIN_ONLY
    assert info["directory"] == str(services.policy.current.bundle.root)
    assert info["pid"] == os.getpid() and "internal-helpdesk" in info["apps"]


def test_the_openapi_document_describes_both_answers(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["paths"]["/v1/policy"]["get"]["responses"]["200"]
    refs = {s["$ref"].rsplit("/", 1)[1] for s in schema["content"]["application/json"]["schema"]["anyOf"]}
    assert refs == {"PolicyInfo", "PolicySummary"}

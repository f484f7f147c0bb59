"""The insider of issue 15, tried from outside with only the service's database role.

With the grants migrations before 0010 gave ``clearance_app`` (a database whose role was
never tightened), that role can register a key of its own, sign entries with it, and un-revoke an
API key: the pinned keys are what expose the forgery. After ``clearance db grant`` PostgreSQL refuses every one of those writes, and the
service, running as that role, still decides and records.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from api.settings import Settings
from audit import AuditStore, AuditWriter, SigningKey
from audit.trust import TrustedKeysError, verifier_for
from tests.audit.helpers import decision_fields
from tests.conftest import _libpq
from tests.trust.conftest import as_role, run

FORGED_KEY_SQL = "INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)"
UNREVOKE_SQL = "UPDATE api_keys SET revoked_at = NULL WHERE key_id = %s"
ADMIN_KEY_SQL = ("INSERT INTO api_keys (key_id, secret_sha256, role, created_at) "
                 "VALUES ('0123456789abcdef', sha256('x'::bytea), 'admin', now())")


def _admin_setup() -> tuple[str, str]:
    """As the owner: the signing key (pinned), an app key, and a revoked auditor key."""
    assert run("keys", "init").exit_code == 0
    app_key = run("apikeys", "create", "--role", "app", "--app", "claims-summariser").stdout.strip()
    revoked = run("apikeys", "create", "--role", "auditor").stdout.strip().split("_")[1]
    assert run("apikeys", "revoke", revoked).exit_code == 0
    return app_key, revoked


def test_with_the_old_grants_a_forged_key_is_named_by_pinned_verification(
        env: dict[str, str], role_name: str, caplog: pytest.LogCaptureFixture) -> None:
    url = env["CLEARANCE_DATABASE_URL"]
    app_key, revoked = _admin_setup()
    auditor = run("apikeys", "create", "--role", "auditor").stdout.strip()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:  # the role as migrations before 0010 left it
        conn.execute(f'CREATE ROLE "{role_name}" LOGIN IN ROLE clearance_app')
        conn.execute(f'GRANT INSERT ON audit_signing_keys TO "{role_name}"')
        conn.execute(f'GRANT INSERT, UPDATE (revoked_at) ON api_keys TO "{role_name}"')
    forged = SigningKey.generate()
    with psycopg.connect(_libpq(as_role(url, role_name)), autocommit=True) as conn:
        conn.execute(FORGED_KEY_SQL, (forged.key_id, forged.public.raw))
        assert conn.execute(UNREVOKE_SQL, (revoked,)).rowcount == 1  # the issue, reproduced
    insider = AuditStore.from_url(as_role(url, role_name), pooled=False)
    try:  # the insider runs a writer of its own that trusts its key beside the real one
        real = [verifier_for(k, "clearance/audit") for k in insider.list_keys() if k.key_id != forged.key_id]
        with AuditWriter(insider, key=forged, max_wait=0, origin="clearance/audit",
                         trusted=[*real, verifier_for(forged.public, "clearance/audit")]).start() as writer:
            first_forged = writer.append(decision_fields(1)).seq
            writer.append(decision_fields(2))
    finally:
        insider.dispose()

    check = run("keys", "check")
    assert check.exit_code == 1
    assert f"signing key {forged.key_id} is in the database but not pinned" in check.stdout
    assert f"it signs from seq {first_forged}" in check.stdout
    verify = run("audit", "verify", "--no-progress")
    assert verify.exit_code == 1
    assert f"INVALID at v2 seq {first_forged} (unknown_key)" in verify.stdout and forged.key_id in verify.stdout
    # The service names it at start-up, and GET /v1/audit/verify (in its worker process) too;
    # its writer signs nothing over the forged checkpoint (503, counted, both sizes logged).
    refused = run("apikeys", "create", "--role", "auditor")  # no key without its entry
    assert refused.exit_code == 1 and "refuses to append" in refused.stderr, refused.stderr
    caplog.set_level(logging.INFO, logger="clearance")
    services = Services.start(Settings())
    try:
        assert services.writer.refusal is not None and "does not verify with a trusted key" in services.writer.refusal
        with TestClient(create_app(services=services)) as client:
            answer = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE,
                                 headers={"Authorization": f"Bearer {app_key}"})
            assert (answer.status_code, answer.json()["error"]["code"]) == (503, "audit_unavailable"), answer.text
            metrics = client.get("/metrics").text
            verdict = client.get("/v1/audit/verify", headers={"Authorization": f"Bearer {auditor}"}).json()
    finally:
        services.close()
    assert 'clearance_audit_log_refused_total{when="startup"} 1.0' in metrics
    assert 'clearance_audit_log_refused_total{when="batch"} 1.0' in metrics
    assert (verdict["valid"], verdict["first_bad_seq"], verdict["check"]) == (False, first_forged, "unknown_key")
    assert forged.key_id in verdict["reason"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "clearance"]
    assert errors == [f"untrusted signing keys: signing key {forged.key_id} is in the database but not pinned "
                      f"in CLEARANCE_TRUSTED_KEYS; it signs from seq {first_forged}"]
    # Trusting the database instead (an exported keyring of its keys) the forgery verifies:
    keyring = Path(env["CLEARANCE_HOME"]) / "db-keys.json"
    assert run("keys", "export", "--out", str(keyring)).exit_code == 0
    assert run("audit", "verify", "--no-progress", "--pubkey", str(keyring)).exit_code == 0


def test_after_db_grant_the_insider_is_refused_and_the_service_decides(
        env: dict[str, str], role_name: str, caplog: pytest.LogCaptureFixture) -> None:
    url = env["CLEARANCE_DATABASE_URL"]
    app_key, revoked = _admin_setup()
    granted = run("db", "grant", "--role", role_name)
    assert granted.exit_code == 0, granted.stderr
    assert granted.stdout.startswith(f"created role {role_name}: SELECT, INSERT on audit_blobs")

    forged = SigningKey.generate()
    with psycopg.connect(_libpq(as_role(url, role_name)), autocommit=True) as conn:
        for statement, params in ((FORGED_KEY_SQL, (forged.key_id, forged.public.raw)),
                                  (UNREVOKE_SQL, (revoked,)), (ADMIN_KEY_SQL, None),
                                  ("DELETE FROM audit_signing_keys", None)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, params)
        assert conn.execute("SELECT revoked_at FROM api_keys WHERE key_id = %s", (revoked,)).fetchone()[0] < datetime.now(UTC)

    caplog.set_level(logging.INFO, logger="clearance")
    services = Services.start(Settings(database_url=as_role(url, role_name)))
    try:
        with TestClient(create_app(services=services)) as client:
            answer = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE,
                                 headers={"Authorization": f"Bearer {app_key}"})
            assert answer.status_code == 200, answer.text
            seq = answer.json()["audit"]["seq"]
    finally:
        services.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "clearance"]
    with psycopg.connect(_libpq(url)) as conn:
        assert conn.execute("SELECT kind FROM audit_leaves WHERE seq = %s", (seq,)).fetchone() == ("decision",)
    assert run("audit", "verify", "--no-progress").exit_code == 0


def test_the_service_warns_when_its_role_owns_the_tables(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    assert run("keys", "init").exit_code == 0
    caplog.set_level(logging.INFO, logger="clearance")
    services = Services.start(Settings())
    services.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "clearance"]
    assert len(warnings) == 1 and "clearance db grant" in warnings[0] and "database postgresql" in warnings[0]


def test_the_service_refuses_a_signing_key_that_is_not_pinned(env: dict[str, str]) -> None:
    assert run("keys", "init").exit_code == 0
    home = Path(env["CLEARANCE_HOME"])
    other = home / "other.trusted"
    other.write_text(verifier_for(SigningKey.generate().public, "clearance/audit").verifier_key + "\n")
    with pytest.raises(TrustedKeysError, match="is not pinned"):
        Services.start(Settings(trusted_keys=other))
    with pytest.raises(TrustedKeysError, match="no such file"):
        Services.start(Settings(trusted_keys=home / "absent"))


def test_the_admin_cli_under_the_service_role_is_refused_cleanly(env: dict[str, str], role_name: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _admin_setup()
    assert run("db", "grant", "--role", role_name).exit_code == 0
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", as_role(env["CLEARANCE_DATABASE_URL"], role_name))
    refused = run("apikeys", "create", "--role", "admin")
    assert refused.exit_code == 1 and "may not change API keys" in refused.stderr and refused.stdout == ""

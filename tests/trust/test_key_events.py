"""Key changes are entries of the signed log: signing keys created, rotated and registered,
API keys created and revoked — through the admin CLI, against a real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.apikeys import ApiKeyError, Role, create_key, list_keys
from api.app import create_app
from api.services import Services
from api.settings import Settings
from audit import AuditStore, load_signing_key
from audit.trust import load_trusted_keys
from tests.conftest import _libpq
from tests.trust.conftest import run


def key_entries(url: str) -> list[tuple[int, str, dict[str, Any], bytes]]:
    """(seq, signing key id, key member, raw signed body) of every ``key`` entry."""
    with psycopg.connect(_libpq(url)) as conn:
        rows = conn.execute("SELECT seq, key_id, body FROM audit_log WHERE kind = 'key' ORDER BY seq").fetchall()
    return [(seq, key_id, json.loads(body)["key"], bytes(body)) for seq, key_id, body in rows]


def test_signing_key_lifecycle_is_pinned_and_recorded(env: dict[str, str]) -> None:
    key_file = Path(env["CLEARANCE_HOME"]) / "signing.key"
    created = run("keys", "init", str(key_file))
    assert created.exit_code == 0, created.stderr
    first = created.stdout.split()[0]
    pinned_file = key_file.with_name("signing.key.trusted")
    assert f"pinned in {pinned_file}" in created.stdout
    rotated = run("keys", "rotate", str(key_file))
    assert rotated.exit_code == 0, rotated.stderr
    second = rotated.stdout.split()[0]
    pinned = load_trusted_keys(pinned_file)
    assert [v.name for v in pinned] == ["clearance/audit"] * 2
    assert [v.public_key for v in pinned] == [load_signing_key(next(key_file.parent.glob("*.retired"))).public.raw,
                                              load_signing_key(key_file).public.raw]
    entries = key_entries(env["CLEARANCE_DATABASE_URL"])
    assert [(e[0], e[2]["event"], e[2]["key_id"]) for e in entries] == [
        (1, "signing_key_created", first), (2, "signing_key_rotated", second)]
    assert entries[0][1] == first  # a new key records its own creation
    assert entries[1][1] == first and entries[1][2]["previous_key_id"] == first  # the old key vouches
    assert entries[1][2]["verifier_key"] == pinned[1].verifier_key
    assert "@" in entries[0][2]["actor"]
    assert key_file.read_bytes() not in b"".join(e[3] for e in entries)
    check = run("keys", "check")
    assert check.exit_code == 0 and "every signing key in the database is pinned" in check.stdout
    verify = run("audit", "verify", "--no-progress")
    assert verify.exit_code == 0, verify.stdout
    assert run("keys", "rotate", str(key_file)).exit_code == 0
    assert len(load_trusted_keys(pinned_file)) == 3  # rotation appends, never drops


def test_api_keys_created_and_revoked_are_recorded_without_secrets(env: dict[str, str]) -> None:
    made = run("apikeys", "create", "--role", "admin", "--label", "ops on-call")
    assert made.exit_code == 0, made.stderr
    secret = made.stdout.strip()
    key_id = secret.split("_")[1]
    app_key = run("apikeys", "create", "--role", "app", "--app", "claims-summariser").stdout.strip()
    assert run("apikeys", "revoke", key_id).exit_code == 0
    entries = key_entries(env["CLEARANCE_DATABASE_URL"])
    events = [(e[2]["event"], e[2]["key_id"], e[2].get("role"), e[2].get("app_id")) for e in entries]
    assert events == [
        ("signing_key_created", events[0][1], None, None),  # created on first use, as serve would
        ("api_key_created", key_id, "admin", None),
        ("api_key_created", app_key.split("_")[1], "app", "claims-summariser"),
        ("api_key_revoked", key_id, "admin", None),
    ]
    assert entries[1][2]["label"] == "ops on-call"
    everything = b"".join(e[3] for e in entries)
    for full in (secret, app_key):
        assert full.split("_", 2)[2].encode() not in everything


def test_an_api_key_whose_entry_fails_is_not_created(migrated_database: str) -> None:
    store = AuditStore.from_url(migrated_database, pooled=False)
    try:
        def refuse(principal: Any, label: str | None) -> None:
            raise ApiKeyError(f"recording {principal.key_id} failed")

        with pytest.raises(ApiKeyError, match="recording"):
            create_key(store.engine, role=Role.admin, app_id=None, record=refuse)
        assert list_keys(store.engine) == []
    finally:
        store.dispose()


def test_key_entries_are_found_by_kind_over_http(env: dict[str, str]) -> None:
    assert run("apikeys", "create", "--role", "auditor").exit_code == 0
    auditor = run("apikeys", "create", "--role", "auditor").stdout.strip()
    services = Services.start(Settings())
    try:
        with TestClient(create_app(services=services)) as client:
            page = client.get("/v1/audit/decisions", params={"kind": "key"},
                              headers={"Authorization": f"Bearer {auditor}"})
            assert page.status_code == 200, page.text
            kinds = {item["kind"] for item in page.json()["items"]}
            assert kinds == {"key"} and len(page.json()["items"]) == 3
            bad = client.get("/v1/audit/decisions", params={"kind": "keys"},
                             headers={"Authorization": f"Bearer {auditor}"})
            assert bad.status_code == 422 and "kind" in bad.text
    finally:
        services.close()

"""Secrets stay secret: API keys and the signing key never appear in logs or error bodies, and
a signing key file that others may read is refused at start.

Two ways of watching: ``caplog`` (every logger, DEBUG) around the in-process app — through
refusals, errors and a database cut mid-request — and the stderr of a real ``python -m api
serve`` process, whose keys are created with the CLI like an operator would.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from secrets import token_hex, token_urlsafe

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.apikeys import Role
from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from audit import InsecureKeyFile, SigningKey, init_key
from tests.api.conftest import Keys, bearer, make_keys, make_settings
from tests.audit.helpers import proxy_to
from tests.conftest import REPO

from .cluster import free_port
from .conftest import make_api_key
from .server import ServerProcess, server_env


def signing_key_forms(key: SigningKey) -> list[str]:
    """Every spelling of a private key that must never be printed."""
    raw = key.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    pem = key.private_pem().decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return [base64.b64encode(raw).decode(), raw.hex(), body, body[:24], body[-24:]]


def api_key_forms(keys: Iterable[str]) -> list[str]:
    """A key and its secret part (the key id is public: it is in every audit entry)."""
    return [form for key in keys for form in (key, key.split("_", 2)[2])]  # clr_<id>_<secret>


def assert_absent(secrets: Iterable[str], where: str, text: str) -> None:
    found = [s[:12] + "…" for s in secrets if s and s in text]
    assert not found, f"secret(s) {found} appear in {where}"


def abuse(client: httpx.Client | TestClient, keys: Keys, *, database_down: bool = False) -> list[str]:
    """Requests that present keys in every right and wrong way; returns the answer texts."""
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    tampered = keys.own_app[:-1] + ("A" if keys.own_app[-1] != "A" else "B")
    calls: list[tuple[str, str, dict[str, str], object]] = [
        ("POST", "/v1/decisions", bearer(keys.own_app), body),  # 200
        ("POST", "/v1/decisions", bearer(keys.other_app), body),  # 403: another app
        ("GET", "/v1/audit/verify", bearer(keys.own_app), None),  # 403: wrong role
        ("POST", "/v1/policy/simulate", bearer(keys.auditor), body),
        ("GET", "/v1/audit/verify", bearer(keys.revoked), None),  # 401: revoked
        ("GET", "/v1/audit/verify", bearer(tampered), None),  # 401: right id, wrong secret
        ("GET", "/v1/audit/verify", bearer(keys.auditor + "x"), None),  # 401: malformed
        ("GET", "/v1/audit/verify", {"Authorization": f"Basic {keys.auditor}"}, None),
        ("GET", "/v1/audit/verify", {"Authorization": keys.auditor}, None),
        ("GET", f"/v1/audit/verify?api_key={keys.auditor}", {}, None),
        ("GET", "/v1/audit/verify", {"X-Api-Key": keys.auditor}, None),
        ("POST", "/v1/decisions", {**bearer(keys.own_app), "Content-Type": "application/json"},
         f'{{"app_id": "{keys.admin}", '.encode()),  # malformed JSON around a key
        ("GET", f"/v1/decisions/{keys.admin}", bearer(keys.auditor), None),  # 404
        ("GET", "/v1/policy", bearer(keys.admin), None),
    ]
    texts = []
    for method, path, headers, payload in calls:
        kwargs: dict[str, object] = {"headers": headers}
        if isinstance(payload, bytes):
            kwargs["content"] = payload
        elif payload is not None:
            kwargs["json"] = payload
        response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 500 or (database_down and response.status_code == 503), response.text
        texts.append(response.text)
    return texts


# -- in process, logs captured with caplog ----------------------------------------------------


@pytest.mark.slow
def test_no_secret_in_logs_or_error_bodies_in_process(
    migrated_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, via_proxy = proxy_to(migrated_database)
    key = SigningKey.generate()
    # The key given as PEM text in the setting itself (as CLEARANCE_SIGNING_KEY would); valid API
    # keys are cached, so with the database gone some requests reach the audit writer and fail
    # there, others fail checking an uncached key.
    settings = make_settings(tmp_path, via_proxy).model_copy(
        update={"signing_key": SecretStr(key.private_pem().decode()), "apikey_cache_seconds": 60})
    caplog.set_level(logging.DEBUG)
    services = Services.start(settings)
    keys = make_keys(services)
    texts: list[str] = []
    try:
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            texts += abuse(client, keys)
            proxy.stop()  # the database goes away: key checks and the audit writer fail
            texts += abuse(client, keys, database_down=True)
            for _ in range(3):
                refused = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE, headers=bearer(keys.own_app))
                assert refused.status_code == 503
                texts.append(refused.text)
            # Every key presented so far is cached, good or bad: one never seen must be looked up.
            unseen = f"clr_{token_hex(8)}_{token_urlsafe(32)}"
            refused = client.get("/v1/audit/verify", headers=bearer(unseen))
            assert refused.status_code == 503, refused.text
            texts.append(refused.text)
    finally:
        proxy.stop()
        services.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("audit store unavailable" in m for m in messages), messages  # both failures logged
    assert any("cannot read API keys" in m for m in messages), messages
    secrets = [*api_key_forms([keys.own_app, keys.other_app, keys.auditor, keys.admin, keys.revoked]),
               *signing_key_forms(key)]
    # The service's records; the test's own HTTP client (httpx) logs the URLs it was asked to get.
    service = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in service)
    assert_absent(secrets, "the captured logs", logged)
    assert_absent(secrets, "the answers", "\n".join(texts))


# -- a real server, its stderr read -----------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_no_secret_on_a_real_servers_stderr(migrated_database: str, tmp_path: Path) -> None:
    key = SigningKey.generate()
    raw = key.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    env = server_env(database_url=migrated_database, home=tmp_path / "home",
                     signing_key=base64.b64encode(raw).decode(), CLEARANCE_APIKEY_CACHE_SECONDS="0")
    made: dict[str, str] = {}
    cli_stderr = ""
    for name, args in {"own_app": ("--app", "claims-summariser", "--role", "app"),
                       "revoked": ("--role", "auditor")}.items():
        done = cli(env, "apikeys", "create", *args)
        assert done.returncode == 0, done.stderr
        made[name] = done.stdout.strip()
        assert done.stdout == made[name] + "\n"  # the key alone on stdout
        cli_stderr += done.stderr
    assert cli(env, "apikeys", "revoke", made["revoked"].split("_")[1]).returncode == 0
    made.update(other_app=make_api_key(migrated_database, Role.app, "internal-helpdesk"),
                auditor=make_api_key(migrated_database, Role.auditor),
                admin=make_api_key(migrated_database, Role.admin))
    listed = cli(env, "apikeys", "list")
    keys = Keys(**made)

    server = ServerProcess(env=env, log_path=tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            texts = abuse(client, keys)
    finally:
        server.stop()
    secrets = [*api_key_forms(made.values()), *signing_key_forms(key)]
    assert "Started server process" in server.log_text()  # it is the real log we read
    assert_absent(secrets, "the server's stderr", server.log_text())
    assert_absent(secrets, "`apikeys create` stderr and `apikeys list`", cli_stderr + listed.stdout + listed.stderr)
    assert_absent(secrets, "the answers", "\n".join(texts))


@pytest.mark.slow
def test_a_failing_start_does_not_print_the_key(migrated_database: str, tmp_path: Path) -> None:
    """A key value that is almost a key, or a good key and no database: the errors say what is
    wrong without repeating the value."""
    key = SigningKey.generate()
    pem = key.private_pem().decode()
    broken = pem.replace(pem.splitlines()[1][:8], "!!!!!!!!")
    cases = {
        "malformed PEM": (broken, migrated_database),
        "not a key": (base64.b64encode(b"x" * 31).decode(), migrated_database),
        "unreachable database": (pem, "postgresql://postgres@127.0.0.1:1/nowhere"),
    }
    started = {
        label: subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(free_port())], cwd=REPO, text=True,
            env=server_env(database_url=url, home=tmp_path / label.replace(" ", "-"), signing_key=value),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for label, (value, url) in cases.items()
    }
    for label, process in started.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode != 0, label
        assert_absent([*signing_key_forms(key), cases[label][0]], f"stderr ({label})", stdout + stderr)


# -- the signing key file's permissions -------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_a_readable_signing_key_file_is_refused_by_the_services(migrated_database: str, tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.key"
    key = init_key(path)
    os.chmod(path, mode)
    with pytest.raises(InsecureKeyFile, match="chmod 600") as refused:
        Services.start(make_settings(tmp_path, migrated_database))
    assert_absent(signing_key_forms(key), "the refusal", str(refused.value))


@pytest.mark.slow
@pytest.mark.parametrize("where", ["CLEARANCE_SIGNING_KEY", "default location"])
def test_a_world_readable_signing_key_file_stops_the_server(
    migrated_database: str, tmp_path: Path, where: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = home / "signing.key"
    key = init_key(path)
    os.chmod(path, 0o644)
    env = server_env(database_url=migrated_database, home=home, signing_key=str(path))
    if where == "default location":
        del env["CLEARANCE_SIGNING_KEY"]
    server = ServerProcess(env=env, log_path=tmp_path / "refused.log")
    with pytest.raises(RuntimeError, match="exited"):
        server.start(timeout=60)
    log = server.log_text()
    assert "chmod 600" in log and str(path) in log, log
    assert_absent(signing_key_forms(key), "the refusal", log)
    assert server.process is not None and server.process.returncode != 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/healthz", timeout=2)


def test_keys_are_stored_hashed(migrated_database: str, tmp_path: Path) -> None:
    """The table holds no key: a database dump leaks nothing a caller could present."""
    import psycopg

    from tests.audit.helpers import libpq

    services = Services.start(make_settings(tmp_path, migrated_database))
    try:
        keys = make_keys(services)
    finally:
        services.close()
    with psycopg.connect(libpq(migrated_database)) as conn:
        dump = json.dumps([[str(v) if not isinstance(v, (bytes, memoryview)) else bytes(v).hex() for v in row]
                           for row in conn.execute("SELECT * FROM api_keys").fetchall()])
    assert_absent(api_key_forms([keys.own_app, keys.auditor, keys.admin]), "the api_keys table", dump)

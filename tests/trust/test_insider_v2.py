"""Issue 15 on the v2 log: an insider with the database forges a key and a leaf, then cuts the
tail and moves the head back. Tried with the service's role after ``clearance db grant`` and
with the owner's role with the guards switched off (``ALTER TABLE … DISABLE TRIGGER ALL``).

Each time: the service's writer refuses at start-up and before the batch (503
``audit_unavailable``, counted, both sizes in the log line) and signs no checkpoint over the
forgery; verification names the first seq it touches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from api.settings import Settings
from audit import SigningKey, load_signing_key
from audit.checkpoint_file import grow_checkpoint_file, notes_in
from audit.chain import encode_members
from audit.entry import draft_leaf, prepare_fields
from audit.log import append_leaves
from audit.tlog.checkpoint import Checkpoint, sign_checkpoint
from audit.trust import load_trusted_keys, log_signer, log_verifier
from tests.audit.helpers import cut_tail, decision_fields
from tests.conftest import _libpq
from tests.trust.conftest import as_role, run

ORIGIN = "clearance/audit"
FORGED_KEY_SQL = "INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)"
GUARDED = ("audit_leaves", "audit_blobs", "audit_tlog_nodes", "audit_tlog_checkpoints", "audit_tlog_head",
           "audit_signing_keys")


def _setup(env: dict[str, str]) -> tuple[str, str]:
    """As the owner: the signing key (pinned beside it), an app key and an auditor key."""
    assert run("keys", "init").exit_code == 0
    app_key = run("apikeys", "create", "--role", "app", "--app", "claims-summariser").stdout.strip()
    auditor = run("apikeys", "create", "--role", "auditor").stdout.strip()
    return app_key, auditor


def _decide(settings: Settings, count: int) -> None:
    """The genuine service records ``count`` decisions (one batch, one checkpoint each) and
    grows the checkpoint file."""
    services = Services.start(settings)
    try:
        for i in range(count):
            services.writer.append(decision_fields(i))
    finally:
        services.close()


def _forge_leaf(url: str, insider: SigningKey, pinned: list[Any]) -> int:
    """The insider's own append: a leaf under its key, a checkpoint signed by it, the head moved."""
    with psycopg.connect(_libpq(url)) as conn:
        draft = draft_leaf(encode_members(prepare_fields(decision_fields(900))))
        (receipt,) = append_leaves(conn, [draft], signer=log_signer(insider, ORIGIN), key_id=insider.key_id,
                                   trusted=pinned, now=datetime.now(UTC))
        conn.commit()
    return int(receipt.seq)  # type: ignore[union-attr]


def _checkpoints(url: str) -> list[int]:
    with psycopg.connect(_libpq(url)) as conn:
        return [int(r[0]) for r in conn.execute("SELECT size FROM audit_tlog_checkpoints ORDER BY size")]


@pytest.fixture
def owner_without_guards(env: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(_libpq(env["CLEARANCE_DATABASE_URL"]), autocommit=True) as conn:
        for table in GUARDED:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        try:
            yield conn
        finally:
            for table in GUARDED:
                conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def _refused(settings: Settings, app_key: str, auditor: str, caplog: pytest.LogCaptureFixture,
             ) -> tuple[Services, dict[str, Any], str]:
    """Start the service over the tampered database: its start-up refusal, a decision refused
    (503) and the verdict of GET /v1/audit/verify. Returns (services, verdict, refusal)."""
    caplog.set_level(logging.ERROR)
    services = Services.start(settings)
    try:
        refusal = services.writer.refusal
        assert refusal is not None
        with TestClient(create_app(services=services)) as client:
            answer = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE,
                                 headers={"Authorization": f"Bearer {app_key}"})
            assert (answer.status_code, answer.json()["error"]["code"]) == (503, "audit_unavailable"), answer.text
            verdict = client.get("/v1/audit/verify", headers={"Authorization": f"Bearer {auditor}"}).json()
        samples = {when: services.metrics.registry.get_sample_value("clearance_audit_log_refused_total",
                                                                     {"when": when}) for when in ("startup", "batch")}
        assert samples == {"startup": 1.0, "batch": 1.0}
    finally:
        services.close()
    return services, verdict, refusal


def test_the_service_role_forges_a_leaf_and_the_writer_signs_nothing_over_it(
        env: dict[str, str], role_name: str, caplog: pytest.LogCaptureFixture) -> None:
    url = env["CLEARANCE_DATABASE_URL"]
    app_key, auditor = _setup(env)
    assert run("db", "grant", "--role", role_name).exit_code == 0
    service_url = as_role(url, role_name)
    settings = Settings(database_url=service_url)
    _decide(settings, 5)
    home = Path(env["CLEARANCE_HOME"])
    pinned = load_trusted_keys(home / "signing.key.trusted")

    insider = SigningKey.generate()
    with psycopg.connect(_libpq(service_url), autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(FORGED_KEY_SQL, (insider.key_id, insider.public.raw))  # no key of its own
    forged = _forge_leaf(service_url, insider, pinned)  # but leaves, checkpoints and the head: yes
    before = _checkpoints(url)

    _, verdict, refusal = _refused(settings, app_key, auditor, caplog)
    assert f"the newest checkpoint (size {forged}) does not verify with a trusted key" in refusal
    assert _checkpoints(url) == before  # nothing signed over the forgery
    assert (verdict["valid"], verdict["first_bad_seq"], verdict["check"]) == (False, forged, "unknown_key")
    assert insider.key_id in verdict["reason"]
    cli = run("audit", "verify", "--no-progress")
    assert cli.exit_code == 1 and f"INVALID at v2 seq {forged} (unknown_key)" in cli.stdout


def test_the_owner_without_guards_forges_then_cuts_the_tail_and_the_checkpoint_file_catches_it(
        env: dict[str, str], owner_without_guards: psycopg.Connection[Any],
        caplog: pytest.LogCaptureFixture) -> None:
    url = env["CLEARANCE_DATABASE_URL"]
    app_key, auditor = _setup(env)
    settings = Settings()
    _decide(settings, 6)
    home = Path(env["CLEARANCE_HOME"])
    pinned = load_trusted_keys(home / "signing.key.trusted")
    issued = max(_checkpoints(url))  # what the checkpoint file holds

    # 1. A forged key and a leaf under it: named by seq.
    insider = SigningKey.generate()
    owner_without_guards.execute(FORGED_KEY_SQL, (insider.key_id, insider.public.raw))
    forged = _forge_leaf(url, insider, pinned)
    assert forged == issued + 1
    _, verdict, refusal = _refused(settings, app_key, auditor, caplog)
    assert f"the newest checkpoint (size {forged}) does not verify with a trusted key" in refusal
    assert (verdict["first_bad_seq"], verdict["check"]) == (forged, "unknown_key")
    check = run("keys", "check")
    assert check.exit_code == 1 and f"signing key {insider.key_id} is in the database but not pinned" in check.stdout
    assert f"it signs from seq {forged}" in check.stdout

    # 2. The tail cut back (the forgery and two genuine leaves) and the head moved back: the
    # database is self-consistent and signed by the pinned key, but behind the checkpoint file.
    cut = issued - 2
    cut_tail(owner_without_guards, cut)
    before = _checkpoints(url)
    caplog.clear()
    _, verdict, refusal = _refused(settings, app_key, auditor, caplog)
    assert f"has size {cut}, smaller than the checkpoint of size {issued} in {settings.checkpoint_path()}" in refusal
    logged = [r.getMessage() for r in caplog.records if r.name == "audit.log"]
    assert logged and all(f"size {cut}" in m and f"size {issued}" in m for m in logged)  # both sizes
    assert _checkpoints(url) == before  # the writer never signed the shorter tree again
    assert (verdict["valid"], verdict["first_bad_seq"], verdict["check"]) == (False, cut + 1, "truncated")
    cli = run("audit", "verify", "--no-progress", "--checkpoint", str(settings.checkpoint_path()))
    assert cli.exit_code == 1 and f"INVALID at v2 seq {cut + 1} (truncated)" in cli.stdout


def test_a_checkpoint_file_of_another_history_stops_the_writer(
        env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """The database's head verifies with the pinned key, but its first 3 leaves are not the tree
    the checkpoint file says was issued (a database restored from another history)."""
    url = env["CLEARANCE_DATABASE_URL"]
    app_key, auditor = _setup(env)
    settings = Settings()
    _decide(settings, 4)
    key = load_signing_key(Path(env["CLEARANCE_HOME"]) / "signing.key")
    other = sign_checkpoint(Checkpoint(ORIGIN, 3, bytes(32)), [log_signer(key, ORIGIN)])
    settings.checkpoint_path().write_text(other, encoding="utf-8")
    before = _checkpoints(url)
    _, verdict, refusal = _refused(settings, app_key, auditor, caplog)
    assert "the database's tree of size 3 has root" in refusal and "(the stored tree was rewritten)" in refusal
    assert _checkpoints(url) == before
    assert (verdict["valid"], verdict["check"]) == (False, "checkpoint")


def test_the_checkpoint_file_only_grows(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "checkpoint.json"
    notes = {n: sign_checkpoint(Checkpoint(ORIGIN, n, bytes([n]) * 32), [log_signer(key, ORIGIN)]) for n in (3, 5)}
    trusted = [log_verifier(key.public, ORIGIN)]
    assert grow_checkpoint_file(path, notes[5], trusted)
    assert not grow_checkpoint_file(path, notes[3], trusted)  # a writer that committed earlier loses
    assert notes_in(path.read_bytes()) == [notes[5].encode()]
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed

"""Witnessing end to end: the service pushes its checkpoints to ``clearance witness serve``
processes, stores and serves their cosignatures, and ``clearance audit verify --witness`` counts
them; a witness that cosigned another tree refuses the log's and raises the alarm.

Real PostgreSQL, the real app (services as in production, driven through HTTP), witnesses as
real processes on their own ports with their own state directories."""

from __future__ import annotations

import copy
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from audit import AuditStore, load_signing_key
from audit.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from audit.tlog.cosignature import CosignatureSigner, load_verifier
from audit.tlog.merkle import MemoryTree, leaf_hash
from audit.trust import log_signer
from audit.witnessing import check_cosignatures, parse_witnesses
from tests.api.conftest import Keys, bearer, make_keys, make_settings
from tests.api.test_witness_app import WitnessProcess, free_port
from tests.audit.helpers import libpq
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def clearance(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLEARANCE_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "api", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False, env=env)


class Setup:
    """A migrated database, the log's signing key and origin, and witness keys made by the CLI."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.url = database_url
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        make_settings(self.home, database_url)  # writes the signing key
        store = AuditStore.from_url(database_url, pool_size=1)
        try:
            self.origin = store.log_origin()
        finally:
            store.dispose()
        self.log_signer = log_signer(load_signing_key(self.home / "signing.key"), self.origin)
        self.trusted_keys = tmp_path / "trusted-keys"
        self.trusted_keys.write_text(self.log_signer.verifier_key + "\n")
        self.processes: list[WitnessProcess] = []

    def witness(self, name: str) -> tuple[WitnessProcess, str]:
        key = self.tmp / f"{name}.key"
        made = clearance("witness", "init", "--key", str(key), "--name", f"witness.test/{name}", database_url=self.url)
        assert made.returncode == 0, made.stderr
        process = WitnessProcess(key, self.tmp / f"{name}-state", [self.log_signer.verifier_key],
                                 self.tmp / f"{name}.out")
        self.processes.append(process)
        return process, made.stdout.strip()

    def services(self, witnesses: str) -> Services:
        return Services.start(make_settings(self.home, self.url, witnesses=witnesses,
                                            witness_max_backoff_seconds=0.3, witness_timeout_seconds=5))

    def close(self) -> None:
        for process in self.processes:
            process.stop(signal.SIGKILL)


@pytest.fixture
def setup(migrated_database: str, tmp_path: Path) -> Iterator[Setup]:
    made = Setup(migrated_database, tmp_path)
    yield made
    made.close()


def decide(client: TestClient, keys: Keys, n: int) -> None:
    for _ in range(n):
        answer = client.post("/v1/decisions", json=copy.deepcopy(DECISION_REQUEST_EXAMPLE),
                             headers=bearer(keys.own_app))
        assert answer.status_code == 200, answer.text


def eventually(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def cosigned_sizes(services: Services) -> dict[str, int]:
    assert services.witnessing is not None
    return {s.name: s.cosigned_size for s in services.witnessing.statuses}


def stored(url: str) -> dict[str, list[int]]:
    with psycopg.connect(libpq(url)) as conn:
        rows = conn.execute("SELECT witness, size FROM audit_witness_cosignatures ORDER BY witness, size").fetchall()
    found: dict[str, list[int]] = {}
    for witness, size in rows:
        found.setdefault(witness, []).append(int(size))
    return found


def test_two_witnesses_one_lagging_cosign_every_newest_checkpoint(setup: Setup) -> None:
    a, a_vkey = setup.witness("a")
    b, b_vkey = setup.witness("b")
    a.start()
    b_port = free_port()  # b is configured but not running yet: it lags
    witnesses = f"{a.url} {a_vkey},\nhttp://127.0.0.1:{b_port} {b_vkey}"
    verifiers = [load_verifier(a_vkey), load_verifier(b_vkey)]

    services = setup.services(witnesses)
    try:
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            keys = make_keys(services)
            auditor = bearer(keys.auditor)
            decide(client, keys, 3)
            size1 = services.store.log_head().size
            eventually(lambda: cosigned_sizes(services)["witness.test/a"] == size1, "a cosigns")
            assert services.witnessing is not None
            lagging = services.witnessing.statuses[1]
            eventually(lambda: lagging.errors >= 2, "b unreachable, retried")
            assert lagging.cosigned_size == 0 and "cannot reach" in (lagging.last_error or "")

            # Served with a's cosignature only.
            note = client.get("/v1/audit/checkpoint", headers=auditor).text
            check = check_cosignatures(note, verifiers, 2)
            assert check.size == size1 and not check.ok
            assert check.cosigned == (f"witness.test/a+{verifiers[0].key_id.hex()}",)
            assert check.missing == (f"witness.test/b+{verifiers[1].key_id.hex()}",)
            assert open_checkpoint(note, services.trusted_verifiers()).size == size1
            # GET /v1/audit/verify reports the configured witnesses; min_cosignatures requires them.
            a_id, b_id = (f"witness.test/{n}+{v.key_id.hex()}" for n, v in zip("ab", verifiers, strict=True))
            reported = client.get("/v1/audit/verify", headers=auditor).json()
            assert reported["valid"] and reported["to_seq"] == size1, reported
            assert reported["witnesses"] | {"message": ""} == {
                "size": size1, "min_cosignatures": 0, "cosigned_by": [a_id], "missing": [b_id], "valid": True,
                "message": ""}
            one = client.get("/v1/audit/verify", params={"min_cosignatures": 1}, headers=auditor).json()
            assert one["valid"] and one["witnesses"]["min_cosignatures"] == 1
            two = client.get("/v1/audit/verify", params={"min_cosignatures": 2}, headers=auditor).json()
            assert (two["valid"], two["check"], two["first_bad_seq"]) == (False, "cosignatures", size1), two
            assert f"missing: {b_id}" in two["reason"]
            three = client.get("/v1/audit/verify", params={"min_cosignatures": 3}, headers=auditor).json()
            assert (three["valid"], three["check"]) == (False, "cosignatures")
            assert "of the 2 pinned witnesses on the checkpoint" in three["reason"]
            assert "at least 3 required" in three["reason"]

            # b comes up: it gets the newest checkpoint from the empty tree.
            b.start(b_port)
            eventually(lambda: cosigned_sizes(services)["witness.test/b"] == size1, "b catches up")

            # b stops; the log grows; a keeps cosigning; b catches up by a consistency proof.
            b.stop()
            decide(client, keys, 4)
            size2 = services.store.log_head().size
            eventually(lambda: cosigned_sizes(services)["witness.test/a"] == size2, "a cosigns size 2")
            errors = lagging.errors
            eventually(lambda: lagging.errors > errors, "b unreachable again")
            b.start(b_port)
            eventually(lambda: cosigned_sizes(services)["witness.test/b"] == size2, "b catches up again")
            assert lagging.conflicts == 0  # it knew b's size: a consistency proof from size1
            assert services.metrics.registry.get_sample_value(
                "clearance_witness_cosignatures_total", {"witness": "witness.test/b"}) == 2
            assert services.metrics.registry.get_sample_value(
                "clearance_witness_errors_total", {"witness": "witness.test/b"}) >= 3
    finally:
        services.close()

    # A restarted service knows no witness's size: each says it with 409, then cosigns the rest.
    services = setup.services(witnesses)
    try:
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            keys = make_keys(services)
            eventually(lambda: set(cosigned_sizes(services).values()) == {size2}, "resumed at size 2")
            decide(client, keys, 2)
            size3 = services.store.log_head().size
            eventually(lambda: set(cosigned_sizes(services).values()) == {size3}, "both cosign size 3")
            assert services.witnessing is not None
            assert all(s.conflicts == 1 and s.refusals == 0 for s in services.witnessing.statuses)
            note = client.get("/v1/audit/checkpoint", headers=bearer(keys.auditor)).text
            check = check_cosignatures(note, verifiers, 2)
            assert check.ok and check.size == size3 and not check.missing
            # The receipt read back carries them too.
            decision_id = client.post("/v1/decisions", json=copy.deepcopy(DECISION_REQUEST_EXAMPLE),
                                      headers=bearer(keys.own_app)).json()["decision_id"]
            size4 = size3 + 1
            eventually(lambda: set(cosigned_sizes(services).values()) == {size4}, "both cosign size 4")
            receipt = client.get(f"/v1/decisions/{decision_id}", headers=bearer(keys.auditor)).json()["receipt"]
            assert check_cosignatures(receipt["checkpoint"], verifiers, 2).ok
    finally:
        services.close()

    # Each cosignature stored once; the lagging witness got only the newest checkpoint when it
    # came back (the ones it missed are covered by the consistency proof).
    found = stored(setup.url)
    assert {size1, size2, size3, size4} <= set(found["witness.test/a"]) and len(set(found["witness.test/a"])) == \
        len(found["witness.test/a"])
    assert {size1, size2, size3, size4} <= set(found["witness.test/b"])
    assert [s for s in found["witness.test/b"] if s <= size2] == [size1, size2]

    # clearance audit verify: 2 of 2 pinned witnesses; a third unknown witness and K=3 fail.
    base = ["audit", "verify", "--trusted-keys", str(setup.trusted_keys), "--no-progress",
            "--witness", a_vkey, "--witness", b_vkey]
    ok = clearance(*base, "--min-cosignatures", "2", database_url=setup.url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"valid: {size4} entries" in ok.stdout and "2 valid cosignature(s)" in ok.stdout
    unknown = CosignatureSigner.generate("witness.test/c").verifier_key
    missing = clearance(*base, "--witness", unknown, "--min-cosignatures", "3", database_url=setup.url)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "INVALID" in missing.stdout and "(cosignatures)" in missing.stdout
    assert "missing: witness.test/c+" in missing.stdout and "at least 3 required" in missing.stdout
    too_many = clearance(*base, "--min-cosignatures", "3", database_url=setup.url)
    assert too_many.returncode == 2 and "more than the 2 --witness key(s)" in too_many.stderr

    # An evidence pack carries the cosigned checkpoint and verifies offline with the witnesses.
    pack = setup.tmp / "pack"
    made = clearance("audit", "export", "--out", str(pack), "--no-progress", database_url=setup.url)
    assert made.returncode == 0, made.stderr
    offline = clearance("audit", "verify", "--pack", str(pack), "--trusted-keys", str(setup.trusted_keys),
                        "--no-progress", "--witness", a_vkey, "--witness", b_vkey, database_url=setup.url)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "2 valid cosignature(s)" in offline.stdout
    failed = clearance("audit", "verify", "--pack", str(pack), "--trusted-keys", str(setup.trusted_keys),
                       "--no-progress", "--witness", a_vkey, "--witness", unknown, database_url=setup.url)
    assert failed.returncode == 1 and "missing: witness.test/c+" in failed.stdout


def _forged(setup: Setup, size: int) -> str:
    """A checkpoint of another tree of ``size`` leaves under the log's key: a split view."""
    tree = MemoryTree()
    tree.extend(leaf_hash(f"forged {i}".encode()) for i in range(size))
    return sign_checkpoint(Checkpoint(setup.origin, size, tree.root()), [setup.log_signer])


def test_a_witness_that_cosigned_another_tree_refuses_and_raises_the_alarm(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    forked, forked_vkey = setup.witness("forked")
    ahead, ahead_vkey = setup.witness("ahead")
    good, good_vkey = setup.witness("good")
    for process, size in ((forked.start(), 2), (ahead.start(), 50)):
        answer = process.add(old_size=0, proof=[], checkpoint=_forged(setup, size))
        assert answer.status_code == 200, answer.text
    good.start()
    caplog.set_level(logging.ERROR, logger="clearance.witnessing")

    services = setup.services(f"{forked.url} {forked_vkey}\n{ahead.url} {ahead_vkey}\n{good.url} {good_vkey}")
    try:
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            keys = make_keys(services)
            decide(client, keys, 3)
            size = services.store.log_head().size

            def alarm(witness: str, *words: str) -> bool:
                return any("ALARM" in r.getMessage() and witness in r.getMessage()
                           and all(w in r.getMessage() for w in words) for r in caplog.records)

            # Once the log is past size 2, the forked witness's tree is shown not to be its prefix.
            eventually(lambda: alarm("witness.test/forked", f"checkpoint of size {size}", "its last cosigned size: 2",
                                     "not consistent"), "the forked witness refuses")
            eventually(lambda: alarm("witness.test/ahead", "size 50", "larger than the log's newest checkpoint"),
                       "the witness ahead of the log refuses")
            for name in ("witness.test/forked", "witness.test/ahead"):
                assert (services.metrics.registry.get_sample_value(
                    "clearance_witness_alarms_total", {"witness": name}) or 0) >= 1
            eventually(lambda: cosigned_sizes(services)["witness.test/good"] == size, "the good witness cosigns")
            note = client.get("/v1/audit/checkpoint", headers=bearer(keys.auditor)).text
    finally:
        services.close()

    check = check_cosignatures(note, [load_verifier(v) for v in (forked_vkey, ahead_vkey, good_vkey)], 1)
    assert check.ok and check.cosigned == (f"witness.test/good+{load_verifier(good_vkey).key_id.hex()}",)
    assert set(stored(setup.url)) == {"witness.test/good"}
    # The forked witness still holds its own tree: nothing the log sent replaced it.
    assert forked.add(old_size=0, proof=[], checkpoint=_forged(setup, 2)).status_code == 409


def test_the_witness_configuration_is_checked(tmp_path: Path) -> None:
    vkey = CosignatureSigner.generate("witness.test/x").verifier_key
    other = CosignatureSigner.generate("witness.test/y").verifier_key
    parsed = parse_witnesses(f"http://127.0.0.1:1/ {vkey}, https://w.example/y {other}")
    assert [(w.url, w.name) for w in parsed] == [("http://127.0.0.1:1", "witness.test/x"),
                                                ("https://w.example/y", "witness.test/y")]
    listed = tmp_path / "witnesses"
    listed.write_text(f"# two witnesses\nhttp://127.0.0.1:1 {vkey}\n\nhttps://w.example/y {other}  # y\n")
    assert [w.name for w in parse_witnesses(f"@{listed}")] == ["witness.test/x", "witness.test/y"]
    log_key = log_signer(load_signing_key(_key(tmp_path)), "log.test").verifier_key
    for value, reason in ((f"ftp://x {vkey}", "not an http(s) URL"), ("http://x", "is not 'URL VKEY'"),
                          (f"http://x {vkey}\nhttp://y {vkey}", "listed twice"),
                          (f"http://x {log_key}", "not a witness cosignature key"),
                          ("http://x nonsense", "witness key"), ("@/nonexistent/file", "cannot read")):
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_witnesses(value)


def _key(tmp_path: Path) -> Path:
    from audit import init_key

    path = tmp_path / "log.key"
    init_key(path)
    return path



def test_stored_cosignatures_are_append_only(migrated_database: str) -> None:
    with psycopg.connect(libpq(migrated_database), autocommit=True) as conn:
        conn.execute("INSERT INTO audit_witness_cosignatures (size, witness, key_id, cosigned_at, line) "
                     "VALUES (1, 'w', '\\x00000000', 1, 'x')")
        for statement in ("UPDATE audit_witness_cosignatures SET line = 'y'", "DELETE FROM audit_witness_cosignatures",
                          "TRUNCATE audit_witness_cosignatures"):
            with pytest.raises(psycopg.errors.RaiseException):
                conn.execute(statement)
        assert conn.execute("SELECT line FROM audit_witness_cosignatures").fetchall() == [("x",)]

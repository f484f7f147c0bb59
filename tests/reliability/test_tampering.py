"""Tampering with a trail the real service wrote: every case caught, with its seq and its check.

One pristine trail of ``ENTRIES`` real decisions (through the HTTP app, checkpoints every 4
entries, one exported outside the database at the end) is copied per case with
``CREATE DATABASE … TEMPLATE``; the case attacks its copy as a superuser with the append-only
triggers switched off, and verification must name the first bad seq and the failed check.

The cases of the audit tests (tests/audit/test_verify.py, whose helpers are reused) plus:
a public key swapped in ``audit_signing_keys``, a chain re-signed under a swapped key, and
forks — an older database state restored (a snapshot taken mid-way), then new appends by the
service, checked against the checkpoint exported before the restore.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.apikeys import Role, create_key
from api.app import create_app
from api.services import Services, load_key
from audit import (
    AuditStore,
    Keyring,
    SigningKey,
    VerificationResult,
    upgrade,
    verify_database,
    write_checkpoint_file,
)
from audit.canonical import GENESIS_PREV_HASH, format_time
from audit.chain import build_entry
from audit.entry import prepare_fields
from audit.checkpoints import build_checkpoint
from tests.api.conftest import bearer, make_settings
from tests.audit.helpers import decision_fields, libpq, superuser, triggers_disabled
from tests.audit.test_verify import _forge, _insert, _row
from tests.conftest import drop_database

from .figures import Figures
from .load import decision_body

ENTRIES = 12  # the pristine trail; checkpoints stored at 4, 8, 12; the one at 12 also outside
SNAPSHOT_AT = 8  # the older state a fork restores
pytestmark = pytest.mark.slow  # a pristine trail through the app, a database copy per case


def _create_from(server_url: str, name: str, template: str) -> str:
    from sqlalchemy.engine import make_url

    with psycopg.connect(libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _decide(services: Services, count: int, *, first: int, checkpoint_every: int | None = None) -> None:
    """``count`` decisions through the HTTP app; a checkpoint after every ``checkpoint_every``."""
    key, _ = create_key(services.db, role=Role.app, app_id="claims-summariser")
    signing_key = load_key(services.settings)
    with TestClient(create_app(services=services), raise_server_exceptions=True) as client:
        for n in range(first, first + count):
            response = client.post("/v1/decisions", json=decision_body(n), headers=bearer(key))
            assert response.status_code == 200, response.text
            if checkpoint_every and response.json()["audit"]["seq"] % checkpoint_every == 0:
                services.store.checkpoint(key=signing_key, force=True)


@dataclass(frozen=True)
class Pristine:
    server_url: str
    name: str  # the database holding the whole trail (a template)
    snapshot: str  # the same trail at SNAPSHOT_AT entries (a template)
    home: Path
    key: SigningKey  # the service's signing key
    pinned: Keyring  # public keys exported before any attack
    outside: Path  # checkpoint at ENTRIES, exported outside the database


@pytest.fixture(scope="module")
def pristine(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pristine]:
    tag = uuid.uuid4().hex[:10]
    name, snapshot = f"clearance_tamper_{tag}", f"clearance_tamper_{tag}_snap"
    from tests.conftest import create_database

    url = create_database(pg_server_url, name)
    home = tmp_path_factory.mktemp("tamper")
    try:
        upgrade(url)
        settings = make_settings(home, url)
        services = Services.start(settings)
        try:
            _decide(services, SNAPSHOT_AT, first=0, checkpoint_every=4)
        finally:
            services.close()
        _create_from(pg_server_url, snapshot, name)  # the backup a fork is restored from
        services = Services.start(settings)
        try:
            _decide(services, ENTRIES - SNAPSHOT_AT, first=SNAPSHOT_AT, checkpoint_every=4)
            checkpoint = services.store.latest_checkpoint()
            assert checkpoint is not None and checkpoint.seq == ENTRIES
            outside = home / "outside-checkpoint.json"
            write_checkpoint_file(outside, checkpoint)
            pinned = Keyring(services.store.list_keys())
        finally:
            services.close()
        yield Pristine(pg_server_url, name, snapshot, home, load_key(settings), pinned, outside)
    finally:
        drop_database(pg_server_url, snapshot)
        drop_database(pg_server_url, name)


@dataclass
class Attack:
    """What a case gets: its own copy of the trail and a superuser connection, guards off."""

    url: str
    conn: psycopg.Connection[Any]
    pristine: Pristine
    tmp: Path

    def verify(self, *, pinned: bool = False, outside: list[Path] | None = None) -> VerificationResult:
        store = AuditStore.from_url(self.url, pooled=False)
        try:
            return verify_database(store, keyring=self.pristine.pinned if pinned else None,
                                   checkpoint_files=outside or [])
        finally:
            store.dispose()

    def verify_outside(self) -> VerificationResult:
        return self.verify(outside=[self.pristine.outside])


@dataclass(frozen=True)
class Case:
    name: str
    attack: Callable[[Attack], VerificationResult]
    seq: int
    check: str
    says: str = ""  # a fragment the reason must contain
    template: str = "whole"  # "whole" trail, or "snapshot" (the older state, for forks)


CASES: list[Case] = []


def case(seq: int, check: str, says: str = "", template: str = "whole") -> Callable[..., Any]:
    def register(attack: Callable[[Attack], VerificationResult]) -> Callable[[Attack], VerificationResult]:
        CASES.append(Case(attack.__name__, attack, seq, check, says, template))
        return attack
    return register


# -- the audit issue's cases ------------------------------------------------------------------


@case(5, "entry_hash")
def body_edited(a: Attack) -> VerificationResult:
    doc = json.loads(_row(a.conn, 5)["body"])
    doc["outcome"] = "deny" if doc["outcome"] == "allow" else "allow"
    from audit.canonical import canonical_bytes

    a.conn.execute("UPDATE audit_entries SET body = %s, outcome = %s WHERE seq = 5",
                   (canonical_bytes(doc), doc["outcome"]))
    return a.verify()


COLUMN_EDITS = {
    "outcome": "outcome = CASE outcome WHEN 'allow' THEN 'deny' ELSE 'allow' END",
    "app_id": "app_id = 'someone-else'",
    "models_allowed": "models_allowed = array_append(models_allowed, 'gpt-9')",
    "reason_codes": "reason_codes = array_append(reason_codes, 'FORGED')",
    "policy_revision": "policy_revision = 'sha256:forged'",
    "decision_id": "decision_id = gen_random_uuid()",
    "recorded_at": "recorded_at = recorded_at + interval '1 microsecond'",
    "regulatory_tier": "regulatory_tier = 'minimal'",
}
for _column, _assignment in COLUMN_EDITS.items():
    def _edit(a: Attack, assignment: str = _assignment) -> VerificationResult:
        a.conn.execute(f"UPDATE audit_entries SET {assignment} WHERE seq = 6")
        return a.verify()
    _edit.__name__ = f"column_{_column}_edited"
    case(6, "column", says="" if _column == "recorded_at" else _column)(_edit)


@case(5, "missing")
def middle_row_deleted(a: Attack) -> VerificationResult:
    a.conn.execute("DELETE FROM audit_entries WHERE seq = 5")
    return a.verify()


@case(4, "seq")
def rows_swapped(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_entries SET seq = 1000004 WHERE seq = 4")
    a.conn.execute("UPDATE audit_entries SET seq = 4 WHERE seq = 5")
    a.conn.execute("UPDATE audit_entries SET seq = 5 WHERE seq = 1000004")
    return a.verify()


@case(4, "seq")
def bodies_swapped(a: Attack) -> VerificationResult:
    four, five = _row(a.conn, 4), _row(a.conn, 5)
    for target, source in ((4, five), (5, four)):
        a.conn.execute(
            "UPDATE audit_entries SET body = %s, entry_hash = %s, signature = %s, prev_hash = %s WHERE seq = %s",
            (source["body"], source["entry_hash"], source["signature"], source["prev_hash"], target))
    return a.verify()


@case(5, "duplicate")
def seq_duplicated(a: Attack) -> VerificationResult:
    from datetime import timedelta

    copy = _row(a.conn, 5)
    copy["recorded_at"] = copy["recorded_at"] + timedelta(microseconds=1)
    _insert(a.conn, copy)
    return a.verify()


@case(5, "signature")
def row_forged_with_another_key(a: Attack) -> VerificationResult:
    original, previous = _row(a.conn, 5), _row(a.conn, 4)
    doc = json.loads(original["body"])
    doc["outcome"] = "allow"
    forged = _forge(previous, doc, key=SigningKey.generate(), claim_key_id=a.pristine.key.key_id)
    a.conn.execute("DELETE FROM audit_entries WHERE seq = 5")
    _insert(a.conn, {**forged, "recorded_at": original["recorded_at"]})
    return a.verify()


def _append_intruder_entry(a: Attack, intruder: SigningKey) -> None:
    previous = _row(a.conn, ENTRIES)
    doc = json.loads(previous["body"])
    doc.update(seq=ENTRIES + 1, decision_id=str(uuid.uuid4()), recorded_at=format_time(previous["recorded_at"]))
    forged = _forge(previous, doc, key=intruder, claim_key_id=intruder.key_id)
    _insert(a.conn, forged)
    a.conn.execute("UPDATE audit_chain_head SET seq = %s, head_hash = %s", (ENTRIES + 1, forged["entry_hash"]))


@case(ENTRIES + 1, "unknown_key")
def entry_signed_by_unknown_key(a: Attack) -> VerificationResult:
    _append_intruder_entry(a, SigningKey.generate())
    return a.verify()


@case(ENTRIES + 1, "unknown_key")
def intruder_key_registered_in_database(a: Attack) -> VerificationResult:
    intruder = SigningKey.generate()
    _append_intruder_entry(a, intruder)
    a.conn.execute("INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)",
                   (intruder.key_id, intruder.public.raw))
    assert a.verify().valid  # the database vouches for its own intruder: only pinned keys tell
    return a.verify(pinned=True)


@case(8, "truncated", says=f"attests seq {ENTRIES}")
def tail_truncated_and_head_rewound(a: Attack) -> VerificationResult:
    keep = _row(a.conn, 7)
    a.conn.execute("DELETE FROM audit_entries WHERE seq > 7")
    a.conn.execute("DELETE FROM audit_checkpoints WHERE seq > 7")
    a.conn.execute("UPDATE audit_chain_head SET seq = 7, head_hash = %s, recorded_at = %s",
                   (keep["entry_hash"], keep["recorded_at"]))
    inside = a.verify()
    assert inside.valid and inside.checked == 7  # undetectable inside the database (docs/audit.md)
    return a.verify_outside()


@case(9, "truncated")
def tail_deleted_head_kept(a: Attack) -> VerificationResult:
    a.conn.execute("DELETE FROM audit_entries WHERE seq > 8")
    return a.verify()


@case(8, "checkpoint")
def stored_checkpoint_edited(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_checkpoints SET head_hash = decode(repeat('ab', 32), 'hex') WHERE seq = 8")
    return a.verify()


@case(ENTRIES, "checkpoint", says="is for log")
def checkpoint_of_another_log(a: Attack) -> VerificationResult:
    store = AuditStore.from_url(a.url, pooled=False)
    head = store.head()
    store.dispose()
    other = build_checkpoint(log_id=str(uuid.uuid4()), seq=head.seq, head_hash=head.head_hash,
                             recorded_at=head.recorded_at, key=a.pristine.key)  # type: ignore[arg-type]
    write_checkpoint_file(a.tmp / "other-log.json", other)
    return a.verify(outside=[a.tmp / "other-log.json"])


@case(ENTRIES + 5, "checkpoint", says="unknown key")
def checkpoint_forged(a: Attack) -> VerificationResult:
    store = AuditStore.from_url(a.url, pooled=False)
    head = store.head()
    store.dispose()
    forged = build_checkpoint(log_id=head.log_id, seq=head.seq + 5, head_hash=bytes(32),
                              recorded_at=head.recorded_at, key=SigningKey.generate())  # type: ignore[arg-type]
    write_checkpoint_file(a.tmp / "forged.json", forged)
    return a.verify(outside=[a.tmp / "forged.json"])


@case(5, "link")
def entry_resigned_with_the_real_key_out_of_chain(a: Attack) -> VerificationResult:
    previous = _row(a.conn, 3)
    entry = build_entry(prepare_fields(decision_fields(42)), seq=5, prev_hash=bytes(previous["entry_hash"]),
                        recorded_at=_row(a.conn, 5)["recorded_at"], key=a.pristine.key)
    a.conn.execute(
        "UPDATE audit_entries SET body = %s, entry_hash = %s, signature = %s, prev_hash = %s WHERE seq = 5",
        (entry.body, entry.entry_hash, entry.signature, entry.prev_hash))
    return a.verify()


# -- new: swapped public keys -----------------------------------------------------------------


@case(1, "unknown_key", says="audit_signing_keys")
def public_key_swapped_in_keys_table(a: Attack) -> VerificationResult:
    """The real key's row now holds the attacker's public key (its id kept)."""
    a.conn.execute("UPDATE audit_signing_keys SET public_key = %s WHERE key_id = %s",
                   (SigningKey.generate().public.raw, a.pristine.key.key_id))
    return a.verify()


@case(1, "unknown_key")
def chain_resigned_under_a_swapped_key(a: Attack) -> VerificationResult:
    """The attacker re-signs the whole chain with a key of its own and swaps the keys table:
    the database alone then vouches for it; the pinned keyring does not."""
    intruder = SigningKey.generate()
    previous: dict[str, Any] = {"entry_hash": GENESIS_PREV_HASH}
    for seq in range(1, ENTRIES + 1):
        original = _row(a.conn, seq)
        forged = {**_forge(previous, json.loads(original["body"]), key=intruder, claim_key_id=intruder.key_id),
                  "recorded_at": original["recorded_at"]}
        a.conn.execute("DELETE FROM audit_entries WHERE seq = %s", (seq,))
        _insert(a.conn, forged)
        previous = forged
    a.conn.execute("UPDATE audit_chain_head SET head_hash = %s", (previous["entry_hash"],))
    a.conn.execute("DELETE FROM audit_checkpoints")
    a.conn.execute("DELETE FROM audit_signing_keys")
    a.conn.execute("INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)",
                   (intruder.key_id, intruder.public.raw))
    assert a.verify().valid  # internally perfect
    outside = a.verify_outside()  # the exported checkpoint is signed by a key the database dropped
    assert not outside.valid and outside.check == "checkpoint"
    return a.verify(pinned=True)


# -- new: forks -------------------------------------------------------------------------------


def _append_through_service(a: Attack, count: int) -> None:
    """The service, restarted on the restored database, goes on appending (same signing key)."""
    services = Services.start(make_settings(a.pristine.home, a.url,
                                            checkpoint_file=a.tmp / "fork-checkpoint.json"))
    try:
        _decide(services, count, first=1000, checkpoint_every=4)
    finally:
        services.close()


@case(ENTRIES, "checkpoint", says="differs", template="snapshot")
def fork_restored_then_appended_past_the_checkpoint(a: Attack) -> VerificationResult:
    _append_through_service(a, ENTRIES - SNAPSHOT_AT + 3)
    inside = a.verify()
    assert inside.valid and inside.checked == ENTRIES + 3  # a fork is internally perfect
    return a.verify_outside()


@case(SNAPSHOT_AT + 3, "truncated", says=f"attests seq {ENTRIES}", template="snapshot")
def fork_restored_then_appended_short_of_the_checkpoint(a: Attack) -> VerificationResult:
    _append_through_service(a, 2)
    assert a.verify().valid
    return a.verify_outside()


# -- the run ----------------------------------------------------------------------------------


@pytest.fixture
def attack(pristine: Pristine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Case], Attack]]:
    made: list[str] = []

    def make(c: Case) -> Attack:
        name = f"clearance_tamper_case_{uuid.uuid4().hex[:10]}"
        made.append(name)
        template = pristine.snapshot if c.template == "snapshot" else pristine.name
        url = _create_from(pristine.server_url, name, template)
        return Attack(url=url, conn=None, pristine=pristine, tmp=tmp_path)  # type: ignore[arg-type]

    yield make
    for name in made:
        drop_database(pristine.server_url, name)


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_tampering_is_caught(attack: Callable[[Case], Attack], c: Case, figures: Figures) -> None:
    a = attack(c)
    with superuser(a.url) as conn, triggers_disabled(conn):
        a.conn = conn
        result = c.attack(a)
    caught = (not result.valid and result.first_bad_seq == c.seq and result.check == c.check
              and str(c.seq) in (result.reason or "") and c.says in (result.reason or ""))
    figures.tamper_cases[c.name] = caught
    assert caught, f"expected seq {c.seq} / {c.check} ({c.says!r}), got {result}"


def test_an_untouched_copy_verifies(attack: Callable[[Case], Attack], pristine: Pristine) -> None:
    """The control: the copy itself is not what verification objects to."""
    a = attack(Case("control", lambda _: VerificationResult(valid=True, checked=0), 0, ""))
    store = AuditStore.from_url(a.url, pooled=False)
    try:
        result = verify_database(store, keyring=pristine.pinned, checkpoint_files=[pristine.outside])
    finally:
        store.dispose()
    assert result.valid and result.checked == ENTRIES and result.checkpoints_checked >= 4, result


def test_a_swapped_public_key_is_reported_over_http(attack: Callable[[Case], Attack], pristine: Pristine,
                                                    tmp_path: Path) -> None:
    """``GET /v1/audit/verify`` names it (no 500), and ``GET /v1/audit/keys`` never serves the
    swapped key under the real key's id."""
    a = attack(Case("http", lambda _: VerificationResult(valid=True, checked=0), 0, ""))
    intruder = SigningKey.generate()
    with superuser(a.url) as conn, triggers_disabled(conn):
        conn.execute("UPDATE audit_signing_keys SET public_key = %s WHERE key_id = %s",
                     (intruder.public.raw, pristine.key.key_id))
    services = Services.start(make_settings(tmp_path / "home", a.url))
    try:
        auditor, _ = create_key(services.db, role=Role.auditor, app_id=None)
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            verified = client.get("/v1/audit/verify", headers=bearer(auditor))
            keys = client.get("/v1/audit/keys")
    finally:
        services.close()
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert (body["valid"], body["first_bad_seq"], body["check"]) == (False, 1, "unknown_key"), body
    assert keys.status_code == 200, keys.text
    served = {k["key_id"]: k["public_key"] for k in keys.json()["keys"]}
    import base64

    assert served.get(pristine.key.key_id) != base64.b64encode(intruder.public.raw).decode()

"""Verification: an intact chain verifies; every kind of tampering is named with its seq."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from audit import (
    AuditStore,
    Keyring,
    SigningKey,
    StoredEntry,
    export_keyring,
    verify_database,
    verify_entries,
    write_checkpoint_file,
)
from audit.canonical import canonical_bytes, entry_hash, entry_signing_input, format_time
from audit.chain import build_entry
from audit.entry import prepare_fields, queryable_columns
from audit.checkpoints import build_checkpoint

from audit.chain import encode_members
from audit.entry import prepare_fields

from .helpers import decision_fields, superuser, triggers_disabled

ENTRIES = 10


@dataclass
class Chain:
    url: str
    store: AuditStore
    key: SigningKey
    pinned: Keyring  # public keys exported before any attack


@pytest.fixture
def chain(migrated_database: str, store: AuditStore, signing_key: SigningKey) -> Chain:
    """A v1 chain (batches of 4): v1 verification keeps checking what v1 recorded."""
    store.register_key(signing_key.public)
    fields = [encode_members(prepare_fields(decision_fields(i))) for i in (*range(ENTRIES), 99)]
    for start in range(0, len(fields), 4):
        store.append_v1_batch(fields[start:start + 4], key=signing_key)
    return Chain(migrated_database, store, signing_key, Keyring(store.list_keys()))


@pytest.fixture
def attacker(chain: Chain) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection with the append-only triggers switched off."""
    with superuser(chain.url) as conn, triggers_disabled(conn):
        yield conn


def _row(conn: psycopg.Connection[Any], seq: int) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM audit_entries WHERE seq = %s", (seq,))
    names = [d.name for d in cur.description or []]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def _insert(conn: psycopg.Connection[Any], row: dict[str, Any]) -> None:
    names = list(row)
    conn.execute(
        f"INSERT INTO audit_entries ({', '.join(names)}) "
        f"VALUES ({', '.join('%s' for _ in names)})",
        list(row.values()),
    )


def _forge(
    previous: dict[str, Any], doc: dict[str, Any], *, key: SigningKey, claim_key_id: str
) -> dict[str, Any]:
    """A well-formed row for ``doc`` chained after ``previous``, signed by ``key``."""
    doc = {**doc, "key_id": claim_key_id, "prev_hash": bytes(previous["entry_hash"]).hex()}
    body = canonical_bytes(doc)
    hash_ = entry_hash(bytes(previous["entry_hash"]), body)
    parsed = json.loads(body)
    row = {k: v for k, v in queryable_columns(parsed).items()}
    row.update(entry_hash=hash_, signature=key.sign(entry_signing_input(hash_)), body=body)
    return row


def _expect_bad(result: Any, seq: int, check: str) -> None:
    assert not result.valid, result
    assert (result.first_bad_seq, result.check) == (seq, check), result
    assert result.reason and str(seq) in result.reason


# -- intact -----------------------------------------------------------------------------------


def test_an_intact_chain_verifies(chain: Chain) -> None:
    result = verify_database(chain.store, keyring=chain.pinned)
    assert result.valid, result
    assert result.checked == ENTRIES + 1
    assert (result.first_bad_seq, result.reason) == (None, None)
    assert result.to_dict()["valid"] is True


def test_a_range_verifies_from_its_anchor(chain: Chain) -> None:
    result = verify_database(chain.store, from_seq=4, to_seq=7)
    assert result.valid and result.checked == 4


def test_progress_is_reported(chain: Chain) -> None:
    calls: list[tuple[int, int | None]] = []
    verify_database(chain.store, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (ENTRIES + 1, ENTRIES + 1)


# -- tampering --------------------------------------------------------------------------------


def test_an_edited_body_is_detected(chain: Chain, attacker: psycopg.Connection[Any]) -> None:
    row = _row(attacker, 5)
    doc = json.loads(row["body"])
    doc["outcome"] = "deny" if doc["outcome"] == "allow" else "allow"
    body = canonical_bytes(doc)  # columns kept consistent: only the hash can tell
    attacker.execute(
        "UPDATE audit_entries SET body = %s, outcome = %s WHERE seq = 5",
        (body, doc["outcome"]),
    )
    _expect_bad(verify_database(chain.store), 5, "entry_hash")


@pytest.mark.parametrize(
    ("assignment", "column"),
    [
        ("outcome = CASE outcome WHEN 'allow' THEN 'deny' ELSE 'allow' END", "outcome"),
        ("app_id = 'someone-else'", "app_id"),
        ("models_allowed = array_append(models_allowed, 'gpt-9')", "models_allowed"),
        ("reason_codes = '{}'", "reason_codes"),
        ("policy_revision = 'sha256:forged'", "policy_revision"),
        ("decision_id = gen_random_uuid()", "decision_id"),
        ("recorded_at = recorded_at + interval '1 second'", "recorded_at"),
    ],
)
def test_an_edited_queryable_column_alone_is_detected(
    chain: Chain, attacker: psycopg.Connection[Any], assignment: str, column: str
) -> None:
    attacker.execute(f"UPDATE audit_entries SET {assignment} WHERE seq = 6")
    result = verify_database(chain.store)
    _expect_bad(result, 6, "column")
    assert column in (result.reason or "")


def test_a_deleted_middle_row_is_detected(chain: Chain, attacker: psycopg.Connection[Any]) -> None:
    attacker.execute("DELETE FROM audit_entries WHERE seq = 5")
    result = verify_database(chain.store)
    _expect_bad(result, 5, "missing")
    assert result.checked == 4


def test_two_swapped_rows_are_detected(chain: Chain, attacker: psycopg.Connection[Any]) -> None:
    attacker.execute("UPDATE audit_entries SET seq = 1000004 WHERE seq = 4")
    attacker.execute("UPDATE audit_entries SET seq = 4 WHERE seq = 5")
    attacker.execute("UPDATE audit_entries SET seq = 5 WHERE seq = 1000004")
    _expect_bad(verify_database(chain.store), 4, "seq")


def test_swapped_bodies_are_detected(chain: Chain, attacker: psycopg.Connection[Any]) -> None:
    four, five = _row(attacker, 4), _row(attacker, 5)
    for target, source in ((4, five), (5, four)):
        attacker.execute(
            "UPDATE audit_entries SET body = %s, entry_hash = %s, signature = %s, prev_hash = %s "
            "WHERE seq = %s",
            (source["body"], source["entry_hash"], source["signature"], source["prev_hash"], target),
        )
    _expect_bad(verify_database(chain.store), 4, "seq")


def test_a_duplicated_seq_is_detected(chain: Chain, attacker: psycopg.Connection[Any]) -> None:
    copy = _row(attacker, 5)
    copy["recorded_at"] = copy["recorded_at"] + timedelta(microseconds=1)
    _insert(attacker, copy)
    _expect_bad(verify_database(chain.store), 5, "duplicate")


def test_a_forged_row_is_detected(chain: Chain, attacker: psycopg.Connection[Any]) -> None:
    """Rewritten entry, correctly chained and hashed, but not signed by the real key."""
    original, previous = _row(attacker, 5), _row(attacker, 4)
    doc = json.loads(original["body"])
    doc["outcome"] = "allow"
    doc["result"]["allowed"] = [{"model": "forged", "deployment": "x", "rank": 1,
                                 "price_per_mtok": 0, "provenance": "open_western",
                                 "obligations": []}]
    forged = _forge(previous, doc, key=SigningKey.generate(), claim_key_id=chain.key.key_id)
    attacker.execute("DELETE FROM audit_entries WHERE seq = 5")
    _insert(attacker, {**forged, "recorded_at": original["recorded_at"]})
    _expect_bad(verify_database(chain.store), 5, "signature")


def test_an_entry_signed_by_an_unknown_key_is_detected(
    chain: Chain, attacker: psycopg.Connection[Any]
) -> None:
    last = ENTRIES + 1
    intruder = SigningKey.generate()
    previous = _row(attacker, last)
    doc = json.loads(previous["body"])
    doc.update(seq=last + 1, decision_id="01900000-0000-7000-8000-000000000000",
               recorded_at=format_time(previous["recorded_at"]))
    forged = _forge(previous, doc, key=intruder, claim_key_id=intruder.key_id)
    _insert(attacker, forged)
    attacker.execute(
        "UPDATE audit_chain_head SET seq = %s, head_hash = %s", (last + 1, forged["entry_hash"])
    )
    result = verify_database(chain.store)
    _expect_bad(result, last + 1, "unknown_key")
    assert intruder.key_id in (result.reason or "")

    # The intruder also registers its key in the database: only a pinned keyring catches it.
    attacker.execute(
        "INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)",
        (intruder.key_id, intruder.public.raw),
    )
    assert verify_database(chain.store).valid
    _expect_bad(verify_database(chain.store, keyring=chain.pinned), last + 1, "unknown_key")


def test_a_truncated_tail_is_caught_by_an_outside_checkpoint(
    chain: Chain, tmp_path: Path
) -> None:
    last = ENTRIES + 1
    checkpoint = chain.store.checkpoint(key=chain.key, force=True)
    assert checkpoint is not None and checkpoint.seq == last
    outside = tmp_path / "checkpoint.json"
    write_checkpoint_file(outside, checkpoint)

    with superuser(chain.url) as conn, triggers_disabled(conn):
        # A thorough attacker: drop the tail, rewind the head, remove the tail's checkpoints.
        keep = _row(conn, 7)
        conn.execute("DELETE FROM audit_entries WHERE seq > 7")
        conn.execute("DELETE FROM audit_checkpoints WHERE seq > 7")
        conn.execute(
            "UPDATE audit_chain_head SET seq = 7, head_hash = %s, recorded_at = %s",
            (keep["entry_hash"], keep["recorded_at"]),
        )

    # What cannot be detected without an outside checkpoint (docs/audit.md says so):
    inside_only = verify_database(chain.store)
    assert inside_only.valid and inside_only.checked == 7

    result = verify_database(chain.store, checkpoint_files=[outside])
    _expect_bad(result, 8, "truncated")
    assert f"attests seq {last}" in (result.reason or "")


def test_a_deleted_tail_without_rewinding_the_head_is_detected(
    chain: Chain, attacker: psycopg.Connection[Any]
) -> None:
    attacker.execute("DELETE FROM audit_entries WHERE seq > 8")
    _expect_bad(verify_database(chain.store), 9, "truncated")


def test_a_stored_checkpoint_edited_apart_from_its_signature_is_detected(
    chain: Chain,
) -> None:
    chain.store.checkpoint(key=chain.key, force=True)
    with superuser(chain.url) as conn, triggers_disabled(conn):
        conn.execute("UPDATE audit_checkpoints SET head_hash = decode(repeat('ab', 32), 'hex')")
    _expect_bad(verify_database(chain.store), ENTRIES + 1, "checkpoint")


def test_a_checkpoint_file_of_another_log_or_forged_is_refused(
    chain: Chain, tmp_path: Path
) -> None:
    head = chain.store.head()
    other_log = build_checkpoint(
        log_id="00000000-0000-4000-8000-000000000000", seq=head.seq, head_hash=head.head_hash,
        recorded_at=head.recorded_at, key=chain.key,  # type: ignore[arg-type]
    )
    write_checkpoint_file(tmp_path / "other.json", other_log)
    result = verify_database(chain.store, checkpoint_files=[tmp_path / "other.json"])
    _expect_bad(result, head.seq, "checkpoint")

    forged = build_checkpoint(
        log_id=head.log_id, seq=head.seq + 5, head_hash=bytes(32),
        recorded_at=head.recorded_at, key=SigningKey.generate(),  # type: ignore[arg-type]
    )
    write_checkpoint_file(tmp_path / "forged.json", forged)
    result = verify_database(chain.store, checkpoint_files=[tmp_path / "forged.json"])
    _expect_bad(result, head.seq + 5, "checkpoint")
    assert "unknown key" in (result.reason or "")


# -- offline ----------------------------------------------------------------------------------


def _export(chain: Chain, from_seq: int = 1) -> list[str]:
    with chain.store.snapshot() as snapshot:
        return [json.dumps(e.to_export_dict()) for e in snapshot.fetch_entries(from_seq)]


def test_an_exported_range_verifies_offline_with_only_the_public_keys(
    chain: Chain, tmp_path: Path
) -> None:
    keyring = Keyring.from_dict(json.loads(export_keyring(chain.store.list_keys())))
    lines = _export(chain)
    entries = [StoredEntry.from_export_dict(json.loads(line)) for line in lines]
    assert verify_entries(entries, keyring=keyring).valid
    assert verify_entries(entries[3:], keyring=keyring).valid  # a range from seq 4

    tampered = json.loads(lines[2])
    tampered["body"] = tampered["body"].replace('"regorus"', '"opa"')
    entries[2] = StoredEntry.from_export_dict(tampered)
    _expect_bad(verify_entries(entries, keyring=keyring), 3, "entry_hash")


def test_an_exported_range_shorter_than_a_checkpoint_reports_truncation(chain: Chain) -> None:
    checkpoint = chain.store.checkpoint(key=chain.key, force=True)
    assert checkpoint is not None
    entries = [StoredEntry.from_export_dict(json.loads(x)) for x in _export(chain)][:-2]
    result = verify_entries(entries, keyring=chain.pinned, checkpoints=[checkpoint])
    _expect_bad(result, ENTRIES, "truncated")


def test_a_body_signed_by_the_real_key_but_not_matching_its_row_is_detected(
    chain: Chain, attacker: psycopg.Connection[Any]
) -> None:
    """An entry re-signed with the real key (key compromise) but out of the chain: link."""
    previous = _row(attacker, 3)
    entry = build_entry(
        prepare_fields(decision_fields(42)), seq=5, prev_hash=bytes(previous["entry_hash"]),
        recorded_at=_row(attacker, 5)["recorded_at"], key=chain.key,
    )
    attacker.execute(
        "UPDATE audit_entries SET body = %s, entry_hash = %s, signature = %s, prev_hash = %s "
        "WHERE seq = 5",
        (entry.body, entry.entry_hash, entry.signature, entry.prev_hash),
    )
    _expect_bad(verify_database(chain.store), 5, "link")

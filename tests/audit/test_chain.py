"""Entry fields, building and signing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from audit.canonical import GENESIS_PREV_HASH, canonical_bytes, entry_hash, entry_signing_input
from audit.chain import StoredEntry, build_entry
from audit.entry import prepare_fields, queryable_columns
from audit.errors import AuditEntryInvalid
from audit.keys import SigningKey

from .helpers import decision_fields

MOMENT = datetime(2025, 11, 21, 1, 34, 0, 123456, tzinfo=UTC)


def test_the_body_has_every_field_and_the_signature_covers_the_hash() -> None:
    key = SigningKey.generate()
    fields = decision_fields(1, policy_git={"commit": "abc"})
    entry = build_entry(
        prepare_fields(fields), seq=1, prev_hash=GENESIS_PREV_HASH, recorded_at=MOMENT, key=key
    )
    body = json.loads(entry.body)
    assert set(body) == {
        "seq", "kind", "decision_id", "recorded_at", "app_id", "caller_key_id", "input",
        "result", "outcome", "policy_revision", "engine", "key_id", "prev_hash", "policy_git",
    }
    assert body["seq"] == 1
    assert body["recorded_at"] == "2025-11-21T01:34:00.123456Z"
    assert body["prev_hash"] == "0" * 64
    assert body["key_id"] == key.key_id
    assert entry.body == canonical_bytes(body)
    assert entry.entry_hash == entry_hash(GENESIS_PREV_HASH, entry.body)
    assert key.public.verify(entry.signature, entry_signing_input(entry.entry_hash))
    receipt = entry.receipt()
    assert receipt.seq == 1 and receipt.entry_hash == entry.entry_hash.hex()
    assert receipt.decision_id == fields["decision_id"]


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"kind": "decision"}, "needs fields"),
        ({"outcome": "allow"}, "'kind' is required"),
        ({**decision_fields(), "seq": 5}, "assigned by the writer"),
        ({**decision_fields(), "prev_hash": "00"}, "assigned by the writer"),
        ({**decision_fields(), "outcome": "maybe"}, "outcome"),
        ({**decision_fields(), "decision_id": "not-a-uuid"}, "UUID"),
        ({**decision_fields(), "app_id": 7}, "app_id"),
        ("not a mapping", "mapping"),
    ],
)
def test_unusable_fields_are_refused_with_the_field_named(fields: object, match: str) -> None:
    with pytest.raises(AuditEntryInvalid, match=match):
        prepare_fields(fields)  # type: ignore[arg-type]


def test_other_kinds_are_generic() -> None:
    skeleton = prepare_fields({"kind": "policy_reload", "policy_revision": "sha256:x"})
    assert skeleton["decision_id"] is None and skeleton["outcome"] is None


def test_entries_jsonb_cannot_store_are_refused() -> None:
    key = SigningKey.generate()
    skeleton = prepare_fields(decision_fields(context="a\x00b"))
    with pytest.raises(AuditEntryInvalid, match="NUL"):
        build_entry(skeleton, seq=1, prev_hash=GENESIS_PREV_HASH, recorded_at=MOMENT, key=key)


def test_queryable_columns_are_derived_from_the_body() -> None:
    columns = queryable_columns(json.loads(canonical_bytes(decision_fields(1))))
    assert columns["models_allowed"] == ["gemma-4-31b", "qwen-3-32b"]
    assert columns["models_denied"] == ["deepseek-v4", "llama-4-maverick"]
    assert columns["reason_codes"] == ["FOREIGN_HOSTED_API", "LICENCE_MAU_CAP", "UNSUITABLE_PRICE"]
    assert columns["provenances_allowed"] == ["open_chinese", "open_western"]
    assert columns["regulatory_tier"] == "regulated"
    assert columns["sector"] == "financial_services"


def test_export_form_round_trips() -> None:
    key = SigningKey.generate()
    entry = build_entry(
        prepare_fields(decision_fields()), seq=1, prev_hash=GENESIS_PREV_HASH,
        recorded_at=MOMENT, key=key,
    )
    stored = StoredEntry(
        seq=1, key_id=key.key_id, prev_hash=entry.prev_hash, entry_hash=entry.entry_hash,
        signature=entry.signature, body=entry.body, recorded_at=MOMENT,
    )
    again = StoredEntry.from_export_dict(json.loads(json.dumps(stored.to_export_dict())))
    assert again == stored

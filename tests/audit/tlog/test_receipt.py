"""Receipts: an app checks its decision offline with the pinned key alone; each forgery fails
at the step that guards against it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from audit.tlog.checkpoint import Checkpoint, sign_checkpoint
from audit.tlog.cosignature import CosignatureSigner, cosignature_line
from audit.tlog.errors import ReceiptVerificationError
from audit.tlog.leaf import entry_bytes, entry_leaf_hash, result_blob, result_sha256
from audit.tlog.note import Ed25519Signer, parse_note
from audit.tlog.receipt import Receipt, verify_receipt

from .builders import MemoryLog, decision


@pytest.fixture(scope="module")
def log() -> MemoryLog:
    memory_log = MemoryLog()
    for i in range(13):
        memory_log.record(decision(i))
    return memory_log


def _fails_at(step: int, receipt: dict[str, Any], log: MemoryLog, **kwargs: Any) -> ReceiptVerificationError:
    kwargs.setdefault("trusted_keys", [log.signer.verifier_key])
    with pytest.raises(ReceiptVerificationError) as caught:
        verify_receipt(receipt, **kwargs)
    assert caught.value.step == step, str(caught.value)
    return caught.value


@pytest.mark.parametrize("seq", [1, 2, 7, 12, 13])
def test_every_receipt_verifies_with_the_pinned_key_and_its_decision(log: MemoryLog, seq: int) -> None:
    receipt = log.receipt(seq)
    answered = {**decision(seq - 1), "audit": receipt}
    signed = verify_receipt(receipt, trusted_keys=[log.signer.verifier_key], decision=answered, origin=log.origin)
    assert (signed.size, signed.signers) == (13, (log.origin,))
    # The receipt survives a JSON round trip (as an app would store it).
    verify_receipt(Receipt.model_validate_json(json.dumps(receipt)), trusted_keys=[log.signer.verifier()])


def test_the_result_blob_is_the_decision_without_audit_and_decision_id() -> None:
    answered = {**decision(0), "audit": {"seq": 1}}
    blob = result_blob(answered)
    assert set(blob) == {"outcome", "allowed", "denied", "policy_revision"}
    same_but_other_id = {**decision(0), "decision_id": "00000000-0000-4000-8000-000000000000"}
    assert result_sha256(answered) == result_sha256(same_but_other_id)  # one blob for equal results


def test_step_1_an_edited_entry_or_leaf_hash(log: MemoryLog) -> None:
    receipt = log.receipt(5)
    edited = copy.deepcopy(receipt)
    edited["entry"]["outcome"] = "deny"
    error = _fails_at(1, edited, log)
    assert error.check == "step 1: leaf hash of the entry"
    assert error.expected == bytes.fromhex(receipt["leaf_hash"])
    # Rehashing the edited entry does not help: the proof then fails (step 4).
    edited["leaf_hash"] = entry_leaf_hash(edited["entry"]).hex()
    _fails_at(4, edited, log)


def test_step_1_receipt_fields_must_be_the_entry_s(log: MemoryLog) -> None:
    receipt = log.receipt(5)
    _fails_at(1, {**receipt, "recorded_at": "2030-01-01T00:00:00.000000Z"}, log)
    # Another leaf's receipt relabelled with this seq.
    _fails_at(1, {**log.receipt(6), "seq": 5}, log)


def test_step_2_the_decision_must_be_the_recorded_one(log: MemoryLog) -> None:
    receipt = log.receipt(3)
    changed = {**decision(2), "outcome": "deny"}
    error = _fails_at(2, receipt, log, decision=changed)
    assert error.expected == result_sha256(changed) and error.found == receipt["entry"]["result_sha256"]
    _fails_at(2, receipt, log, decision=decision(3))  # another decision's id


def test_step_3_a_checkpoint_re_signed_with_an_unpinned_key(log: MemoryLog) -> None:
    receipt = log.receipt(4)
    insider = Ed25519Signer.generate(log.origin)  # same name, the insider's own key
    body = parse_note(receipt["checkpoint"]).text
    error = _fails_at(3, {**receipt, "checkpoint": sign_checkpoint(Checkpoint.parse(body), [insider])}, log)
    assert insider.key_id.hex() in str(error)
    _fails_at(3, receipt, log, origin="other.example/log")
    _fails_at(3, receipt, log, trusted_keys=[])


def test_step_4_proof_tampering(log: MemoryLog) -> None:
    receipt = log.receipt(9)
    flipped = copy.deepcopy(receipt)
    flipped["inclusion_proof"][1] = ("0" if flipped["inclusion_proof"][1][0] != "0" else "1") \
        + flipped["inclusion_proof"][1][1:]
    error = _fails_at(4, flipped, log)
    assert "root computed from the inclusion proof" in error.check
    _fails_at(4, {**receipt, "inclusion_proof": receipt["inclusion_proof"][:-1]}, log)
    _fails_at(4, {**receipt, "inclusion_proof": receipt["inclusion_proof"][::-1]}, log)
    # A valid proof against an older checkpoint, presented with the newest one.
    old = log.receipt(9, size=10)
    _fails_at(4, {**receipt, "inclusion_proof": old["inclusion_proof"]}, log)
    # The same proof with the checkpoint it belongs to verifies.
    verify_receipt(old, trusted_keys=[log.signer.verifier_key])


def test_step_4_a_seq_beyond_the_checkpoint(log: MemoryLog) -> None:
    receipt = log.receipt(12, size=12)
    newer = log.receipt(13)
    error = _fails_at(4, {**newer, "checkpoint": receipt["checkpoint"]}, log)
    assert "seq is within the checkpoint's tree" in error.check


def test_step_5_witness_cosignatures(log: MemoryLog) -> None:
    witnesses = [CosignatureSigner.generate(f"w{i}.example") for i in range(3)]
    receipt = log.receipt(2)
    body = parse_note(receipt["checkpoint"]).text
    cosigned = {**receipt, "checkpoint": receipt["checkpoint"] + cosignature_line(witnesses[0], body)
                + cosignature_line(witnesses[1], body)}
    verifiers = [w.verifier() for w in witnesses]
    verify_receipt(cosigned, trusted_keys=[log.signer.verifier_key], witnesses=verifiers, min_cosignatures=2)
    error = _fails_at(5, cosigned, log, witnesses=verifiers, min_cosignatures=3)
    assert (error.expected, error.found) == (">= 3", 2)


@pytest.mark.parametrize("change", [
    {"seq": 0}, {"seq": "5"}, {"leaf_hash": "AB" * 32}, {"leaf_hash": "ab"}, {"extra": 1},
    {"inclusion_proof": ["zz" * 32]}, {"checkpoint": None},
])
def test_malformed_receipts_fail_before_any_check(log: MemoryLog, change: dict[str, Any]) -> None:
    error = _fails_at(0, {**log.receipt(2), **change}, log)
    assert "receipt is well-formed" in error.check


def test_entry_bytes_are_rfc_8785() -> None:
    assert entry_bytes({"b": 1, "a": "é", "c": 0.1}) == '{"a":"é","b":1,"c":0.1}'.encode()


def test_a_witness_key_is_not_a_pinned_log_key(log: MemoryLog) -> None:
    witness = CosignatureSigner.generate("w.example")
    _fails_at(3, log.receipt(2), log, trusted_keys=[witness.verifier_key])


def test_an_entry_whose_seq_is_not_an_integer_is_refused() -> None:
    memory_log = MemoryLog()
    memory_log.record(decision(0))
    memory_log.entries[0]["seq"] = True  # equal to 1 in Python, not in JSON
    memory_log.tree = type(memory_log.tree)([entry_leaf_hash(memory_log.entries[0])])
    _fails_at(1, memory_log.receipt(1), memory_log)

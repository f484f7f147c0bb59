"""verify_receipt: valid receipts pass; every tampering fails naming its check."""

from __future__ import annotations

import base64
import copy
import hashlib

import pytest
import rfc8785
from tlog_factory import NoteSigner, TestLog, audit_path, checkpoint_text, decision_json, mth, sha256, sign_note

from clearance_client import Decision, ReceiptError, verify_receipt


@pytest.fixture
def log() -> TestLog:
    return TestLog()


def decide(log: TestLog, filler: int = 6, **kw) -> dict:
    return log.decide(filler=filler, **kw)


def check(decision: dict, log: TestLog, **kw):
    return verify_receipt(Decision.from_json(decision), [log.signer.vkey], **kw)


def fails(decision: dict, log: TestLog, check_name: str, **kw) -> ReceiptError:
    with pytest.raises(ReceiptError) as info:
        check(decision, log, **kw)
    assert info.value.check == check_name, info.value.diagnostics()
    return info.value


@pytest.mark.parametrize("filler", [0, 1, 2, 6, 7, 14, 31])
def test_a_valid_receipt_verifies(log, filler):
    decision = decide(log, filler)
    verified = check(decision, log, app_id="claims-summariser", origin=log.origin)
    assert verified.seq == filler + 1 and verified.tree_size == filler + 1
    assert verified.origin == log.origin and verified.signed_by == (log.signer.name,)
    assert verified.root_hash == mth(log.leaves()).hex()


def test_receipts_of_older_entries_verify_against_a_newer_checkpoint(log):
    first = decide(log, 3)
    seq = first["audit"]["seq"]
    for _ in range(10):
        decide(log, 0)
    refreshed = {**first, "audit": log.receipt(seq)}
    assert check(refreshed, log).tree_size == 14


def test_a_deny_decision_verifies(log):
    decision = log.decide(decision_json(allowed=[]), filler=2)
    assert Decision.from_json(decision).outcome == "deny"
    check(decision, log)


def test_keys_given_as_keys_file_text(log):
    decision = decide(log)
    assert verify_receipt(Decision.from_json(decision), f"# keys\n{log.signer.vkey}\n").seq == 7


# --- the decision and the entry --------------------------------------------------------------

def test_wrong_result_fails(log):
    decision = decide(log)
    decision["allowed"][0]["rank"] = 2  # the app was told something the log did not record
    fails(decision, log, "entry.result_sha256")


def test_a_route_moved_from_denied_to_allowed_fails(log):
    decision = decide(log)
    moved = decision["denied"].pop()
    decision["allowed"].append({"model": moved["model"], "deployment": moved["deployment"], "rank": 3,
                                "price_per_mtok": 1.0, "provenance": "open_chinese", "obligations": []})
    fails(decision, log, "entry.result_sha256")


def test_another_decisions_receipt_fails(log):
    one, two = decide(log), decide(log, 0)
    swapped = {**one, "audit": two["audit"]}
    err = fails(swapped, log, "entry.decision_id")
    assert (err.expected, err.found) == (one["decision_id"], two["decision_id"])


def test_result_hash_excludes_decision_id_and_audit(log):
    decision = decide(log)
    result = {k: v for k, v in decision.items() if k not in ("decision_id", "audit")}
    assert decision["audit"]["entry"]["result_sha256"] == hashlib.sha256(rfc8785.dumps(result)).hexdigest()
    check(decision, log)


@pytest.mark.parametrize(("field", "value", "check_name"), [
    ("app_id", "other-app", "leaf_hash"),
    ("outcome", "deny", "leaf_hash"),
    ("policy_revision", "sha256:" + "00" * 32, "leaf_hash"),
    ("input_sha256", "00" * 32, "leaf_hash"),
    ("seq", 3, "entry.seq"),
    ("recorded_at", "2020-01-01T00:00:00Z", "entry.recorded_at"),
    ("decision_id", "0192e0e0-0000-7000-8000-000000000000", "entry.decision_id"),
    ("result_sha256", "00" * 32, "entry.result_sha256"),
])
def test_an_edited_entry_field_fails(log, field, value, check_name):
    decision = decide(log)
    decision["audit"]["entry"][field] = value
    fails(decision, log, check_name)


def test_an_added_entry_member_fails(log):
    decision = decide(log)
    decision["audit"]["entry"]["note"] = "harmless?"
    fails(decision, log, "leaf_hash")


def test_leaf_hash_changed_to_match_an_edited_entry_fails_at_the_proof(log):
    decision = decide(log)
    entry = decision["audit"]["entry"]
    entry["app_id"] = "other-app"
    decision["audit"]["leaf_hash"] = sha256(b"\x00" + rfc8785.dumps(entry)).hex()
    fails(decision, log, "inclusion_proof")


def test_expected_app_and_origin(log):
    decision = decide(log)
    fails(decision, log, "entry.app_id", app_id="someone-else")
    fails(decision, log, "checkpoint.origin", origin="another.log/origin")


# --- the proof -------------------------------------------------------------------------------

def test_a_flipped_proof_hash_fails(log):
    decision = decide(log)
    proof = decision["audit"]["inclusion_proof"]
    proof[1] = bytes(b ^ 1 if i == 0 else b for i, b in enumerate(bytes.fromhex(proof[1]))).hex()
    fails(decision, log, "inclusion_proof")


def test_proof_hashes_in_another_order_fail(log):
    decision = decide(log)
    proof = decision["audit"]["inclusion_proof"]
    assert len(proof) >= 2
    proof[0], proof[1] = proof[1], proof[0]
    fails(decision, log, "inclusion_proof")
    decision["audit"]["inclusion_proof"] = list(reversed(log.receipt(7)["inclusion_proof"]))
    fails(decision, log, "inclusion_proof")


@pytest.mark.parametrize("change", ["drop", "extra"])
def test_a_proof_of_the_wrong_length_fails(log, change):
    decision = decide(log)
    proof = decision["audit"]["inclusion_proof"]
    proof.pop() if change == "drop" else proof.append("00" * 32)
    err = fails(decision, log, "inclusion_proof")
    assert "hashes" in str(err)


@pytest.mark.parametrize(("filler", "claimed"), [(6, 6), (7, 7), (7, 1), (15, 9)])
def test_a_receipt_claiming_another_index_fails(log, filler, claimed):
    # An entry and leaf hash made consistent for another seq, carrying the genuine proof: folded
    # at the claimed leaf index it does not reach the root (in a tree of 8 or 16 leaves every
    # proof has the same length, so only the hashes can tell).
    decision = decide(log, filler)
    receipt = decision["audit"]
    receipt["seq"] = receipt["entry"]["seq"] = claimed
    receipt["leaf_hash"] = sha256(b"\x00" + rfc8785.dumps(receipt["entry"])).hex()
    err = fails(decision, log, "inclusion_proof")
    assert f"index {claimed - 1}" in str(err)


def test_a_seq_beyond_the_checkpoint_fails(log):
    decision = decide(log)
    receipt = decision["audit"]
    receipt["seq"] = receipt["entry"]["seq"] = 8  # the tree has 7 leaves
    receipt["leaf_hash"] = sha256(b"\x00" + rfc8785.dumps(receipt["entry"])).hex()
    err = fails(decision, log, "inclusion_proof")
    assert "outside" in str(err)


def test_a_checkpoint_of_an_older_tree_fails(log):
    decision = decide(log)
    decision["audit"]["checkpoint"] = log.checkpoint(size=4)
    fails(decision, log, "inclusion_proof")


# --- the checkpoint --------------------------------------------------------------------------

def test_checkpoint_re_signed_with_an_untrusted_key_fails(log):
    decision = decide(log)
    forger = NoteSigner(log.signer.name)  # same name, another key
    text = decision["audit"]["checkpoint"].split("\n\n")[0] + "\n"
    decision["audit"]["checkpoint"] = sign_note(text, forger)
    err = fails(decision, log, "checkpoint.signature")
    assert "no signature by a trusted key" in str(err)


def test_a_forged_tree_signed_by_an_untrusted_key_fails(log):
    # Rewrite history: a different result, recomputed entry, leaf, tree and proof, all consistent,
    # signed by a key the app does not pin.
    decision = decide(log)
    decision["allowed"][0]["model"] = "deepseek-v4"
    result = {k: v for k, v in decision.items() if k not in ("decision_id", "audit")}
    log.entries[-1]["result_sha256"] = hashlib.sha256(rfc8785.dumps(result)).hexdigest()
    log.signer = NoteSigner(log.signer.name)
    trusted = TestLog().signer  # stands in for the genuine log's pinned key
    decision["audit"] = log.receipt(7)
    assert verify_receipt(Decision.from_json(decision), [log.signer.vkey]).seq == 7  # consistent...
    with pytest.raises(ReceiptError) as info:
        verify_receipt(Decision.from_json(decision), [trusted.vkey])  # ...but not signed by the pinned key
    assert info.value.check == "checkpoint.signature"


def test_a_checkpoint_whose_root_was_edited_fails_the_trusted_signature(log):
    decision = decide(log)
    note = decision["audit"]["checkpoint"]
    lines = note.split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    decision["audit"]["checkpoint"] = "\n".join(lines)
    err = fails(decision, log, "checkpoint.signature")
    assert "does not verify" in str(err)


def test_extra_signatures_by_unknown_keys_are_ignored(log):
    decision = decide(log)
    decision["audit"]["checkpoint"] = log.checkpoint(NoteSigner("witness.example"), NoteSigner("x"))
    check(decision, log)


def test_signed_by_the_trusted_key_but_not_a_checkpoint_fails(log):
    decision = decide(log)
    decision["audit"]["checkpoint"] = sign_note("just a note\n", log.signer)
    fails(decision, log, "checkpoint.body")


def test_a_valid_checkpoint_of_another_tree_fails(log):
    decision = decide(log)
    other = [sha256(bytes([i])) for i in range(7)]
    decision["audit"]["checkpoint"] = sign_note(checkpoint_text(log.origin, 7, mth(other)), log.signer)
    fails(decision, log, "inclusion_proof")


# --- receipt shape ---------------------------------------------------------------------------

def test_a_decision_without_a_receipt_fails(log):
    decision = decide(log)
    del decision["audit"]
    fails(decision, log, "receipt")


def test_a_v1_receipt_is_not_a_v2_receipt(log):
    decision = decide(log)
    decision["audit"] = {"seq": 7, "entry_hash": "ab" * 32, "signature": "c2ln", "key_id": "k1",
                         "recorded_at": "2026-11-21T05:02:07Z"}
    fails(decision, log, "receipt.leaf_hash")


@pytest.mark.parametrize(("field", "value", "check_name"), [
    ("seq", 0, "receipt.seq"), ("seq", True, "receipt.seq"), ("seq", "7", "receipt.seq"),
    ("leaf_hash", "AB" * 32, "receipt.leaf_hash"), ("recorded_at", None, "receipt.recorded_at"),
    ("entry", [], "receipt.entry"), ("checkpoint", None, "receipt.checkpoint"),
    ("inclusion_proof", "00" * 32, "receipt.inclusion_proof"), ("inclusion_proof", ["zz" * 32], "receipt.inclusion_proof"),
])
def test_malformed_receipt_members_fail(log, field, value, check_name):
    decision = decide(log)
    decision["audit"][field] = value
    fails(decision, log, check_name)


def test_diagnostics_name_the_check_with_expected_and_found(log):
    decision = decide(log)
    decision["audit"]["entry"]["result_sha256"] = "00" * 32
    err = fails(decision, log, "entry.result_sha256")
    text = err.diagnostics()
    assert "entry.result_sha256" in text and "00" * 32 in text and err.expected in text


def test_the_receipt_is_checked_on_the_bytes_received_not_a_reserialisation(log):
    # A member this client does not model is still covered by the result hash.
    decision = log.decide({**decision_json(), "explanation": "cheapest adequate route first"}, filler=2)
    check(decision, log)
    tampered = copy.deepcopy(decision)
    tampered["explanation"] = "strongest first"
    fails(tampered, log, "entry.result_sha256")


def test_a_receipt_for_the_first_leaf_of_a_one_leaf_tree(log):
    decision = log.decide()
    assert decision["audit"]["inclusion_proof"] == [] and audit_path(0, log.leaves()) == []
    assert check(decision, log).tree_size == 1

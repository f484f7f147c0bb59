"""Blobs made once with the members of an evaluation (audit/entry.py): the blob an entry gets
from them is the blob the writer would make of the member itself, for its own revision."""

from __future__ import annotations

import hashlib

import pytest

from audit.canonical import canonical
from audit.chain import encode_members
from audit.entry import BlobMember, DecisionMembers, blob_member, draft_leaf, prepare_fields

from .helpers import decision_fields

DID = "0190f000-0000-7000-8000-0000000000d1"


def test_the_result_blob_is_made_for_each_revision() -> None:
    fields = decision_fields(1)
    members = DecisionMembers.encode(fields["input"], fields["result"])
    for revision in ("sha256:a", "sha256:b", "sha256:a"):
        blob = members.result_blob(policy_revision=revision)
        plain = {"outcome": members.outcome, "allowed": members.allowed.value, "denied": members.denied.value,
                 "policy_revision": revision}
        assert blob.data == canonical(plain).data
        assert blob.blob.sha256 == hashlib.sha256(blob.data).digest()
        assert blob.blob.facets[-1] == revision  # policy_revision is the last facet
    assert members.result_blob(policy_revision="sha256:a") is members.result_blob(policy_revision="sha256:a")


@pytest.mark.parametrize("slot", ["input", "result"])
def test_a_member_with_its_blob_drafts_as_the_plain_member(slot: str) -> None:
    fields = {**decision_fields(1), "decision_id": DID}
    with_blob = {**fields, slot: blob_member(canonical(fields[slot]), result=slot == "result")}
    assert isinstance(with_blob[slot], BlobMember)
    got, expected = (draft_leaf(encode_members(prepare_fields(f))) for f in (with_blob, fields))
    assert got.members == expected.members and got.blobs == expected.blobs


def test_a_blob_made_for_the_other_slot_is_not_taken() -> None:
    # An input's blob has input facets: put in the result slot, the result's are derived anew.
    fields = {**decision_fields(1), "decision_id": DID}
    swapped = {**fields, "result": blob_member(canonical(fields["result"]), result=False)}
    got, expected = (draft_leaf(encode_members(prepare_fields(f))) for f in (swapped, fields))
    assert got.blobs == expected.blobs


def test_a_decision_id_in_canonical_form_is_kept_and_any_other_form_normalised() -> None:
    assert prepare_fields({**decision_fields(1), "decision_id": DID})["decision_id"] == DID
    assert prepare_fields({**decision_fields(1), "decision_id": DID.upper()})["decision_id"] == DID
    assert prepare_fields({**decision_fields(1), "decision_id": "{" + DID + "}"})["decision_id"] == DID

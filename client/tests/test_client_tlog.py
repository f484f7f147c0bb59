"""Signed notes, verifier keys, checkpoints (against the C2SP specs' published examples) and the
RFC 9162 proof fold (against RFC 6962's recursive definitions in tlog_factory)."""

from __future__ import annotations

import base64

import pytest
from tlog_factory import NoteSigner, audit_path, checkpoint_text, mth, sha256, sign_note

from clearance_client._merkle import ProofError, leaf_hash, root_from_inclusion_proof
from clearance_client._note import Checkpoint, NoteError, SignedNote, VerifierKey, parse_verifier_keys

# c2sp.org/signed-note, section "Verifier keys", "Example" (C2SP/C2SP, signed-note.md).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = ("This is an example message.\n\n"
             "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
# c2sp.org/tlog-checkpoint, first example (C2SP/C2SP, tlog-checkpoint.md); its key is not published.
SPEC_CHECKPOINT = ("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
                   "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n")


def test_spec_example_note_verifies_with_the_spec_example_key():
    key = VerifierKey.parse(SPEC_VKEY)
    assert key.name == "example.com/foo" and key.key_id.hex() == "530d903a"
    assert str(key) == SPEC_VKEY
    note = SignedNote.parse(SPEC_NOTE)
    assert note.text == "This is an example message.\n"
    assert note.verified_by([key]) == [key]


def test_spec_example_note_with_its_text_changed_fails():
    note = SignedNote.parse(SPEC_NOTE.replace("example message", "example massage"))
    with pytest.raises(NoteError, match="does not verify"):
        note.verified_by([VerifierKey.parse(SPEC_VKEY)])


def test_spec_example_checkpoint_parses():
    note = SignedNote.parse(SPEC_CHECKPOINT)
    cp = Checkpoint.parse(note.text)
    assert (cp.origin, cp.tree_size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert base64.b64encode(cp.root_hash).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert note.verified_by([VerifierKey.parse(SPEC_VKEY)]) == []  # a signature by an unknown key is ignored


def test_a_key_id_that_does_not_match_the_key_is_refused():
    with pytest.raises(NoteError, match="does not match"):
        VerifierKey.parse(SPEC_VKEY.replace("530d903a", "530d903b"))


@pytest.mark.parametrize("bad", [
    "example.com/foo+530d903a", "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    "example.com/foo+530d903a+AmkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # type byte 0x02
    "example.com/foo+530d903a+not base64", "a b+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
])
def test_malformed_verifier_keys_are_refused(bad):
    with pytest.raises(NoteError):
        VerifierKey.parse(bad)


def test_keys_file_text_with_comments():
    signer = NoteSigner("log.example/a")
    keys = parse_verifier_keys(f"# pinned\n\n{signer.vkey}\n{SPEC_VKEY}\n")
    assert [k.name for k in keys] == ["log.example/a", "example.com/foo"]
    with pytest.raises(NoteError, match="no trusted"):
        parse_verifier_keys("# nothing\n")


def test_cosigned_note_verifies_with_either_key_and_ignores_unknown_ones():
    log, witness, stranger = NoteSigner("log.example"), NoteSigner("witness.example"), NoteSigner("other")
    note = SignedNote.parse(sign_note("log.example\n3\n" + base64.b64encode(bytes(32)).decode() + "\n",
                                      log, witness, stranger))
    assert [k.name for k in note.verified_by([VerifierKey.parse(log.vkey)])] == ["log.example"]
    both = [VerifierKey.parse(log.vkey), VerifierKey.parse(witness.vkey)]
    assert [k.name for k in note.verified_by(both)] == ["log.example", "witness.example"]


def test_same_name_other_key_is_ignored_not_trusted():
    genuine, impostor = NoteSigner("log.example"), NoteSigner("log.example")
    note = SignedNote.parse(sign_note("body\n", impostor))
    assert note.verified_by([VerifierKey.parse(genuine.vkey)]) == []


@pytest.mark.parametrize("bad", [
    "text\n",  # no signatures
    "text\n\n",  # blank line, then nothing
    "text\n\n\u2014 name c2ln\n",  # signature too short
    "text\n\n- name " + base64.b64encode(bytes(68)).decode() + "\n",  # hyphen, not em dash
    "text\n\n\u2014 name " + base64.b64encode(bytes(68)).decode(),  # no final newline
    "te\x07xt\n\n\u2014 name " + base64.b64encode(bytes(68)).decode() + "\n",  # control character
    "text\n\n\u2014 na me " + base64.b64encode(bytes(68)).decode() + "\n",
])
def test_malformed_notes_are_refused(bad):
    with pytest.raises(NoteError):
        SignedNote.parse(bad)


@pytest.mark.parametrize("text", [
    "origin\n5\n", "origin\n05\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "origin\n5\n" + base64.b64encode(bytes(31)).decode() + "\n",
    "origin\n5\n" + base64.b64encode(bytes(32)).decode() + "\n\n",  # empty extension line
    "\n5\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "origin\n\u0661\n" + base64.b64encode(bytes(32)).decode() + "\n",  # a non-ASCII digit
])
def test_malformed_checkpoints_are_refused(text):
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_checkpoint_extension_lines_are_kept():
    cp = Checkpoint.parse("o\n0\n" + base64.b64encode(bytes(32)).decode() + "\next one\next two\n")
    assert cp.tree_size == 0 and cp.extensions == ("ext one", "ext two")


def test_checkpoint_text_round_trip_with_the_factory():
    root = sha256(b"x")
    assert Checkpoint.parse(checkpoint_text("o", 7, root)) == Checkpoint("o", 7, root, ())


@pytest.mark.parametrize("size", list(range(1, 34)) + [63, 64, 65, 100, 127, 128, 129])
def test_every_proof_folds_to_the_rfc6962_root(size):
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    root = mth(leaves)
    for index in range(size):
        proof = audit_path(index, leaves)
        assert root_from_inclusion_proof(leaf_index=index, tree_size=size, leaf=leaves[index], proof=proof) == root


@pytest.mark.parametrize("size", [2, 3, 5, 8, 13, 21])
def test_a_proof_for_another_index_does_not_fold_to_the_root(size):
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    root = mth(leaves)
    for index in range(size):
        proof = audit_path(index, leaves)
        for other in range(size):
            if other == index:
                continue
            try:
                got = root_from_inclusion_proof(leaf_index=other, tree_size=size, leaf=leaves[index], proof=proof)
            except ProofError:
                continue
            assert got != root


def test_proofs_of_the_wrong_length_are_refused():
    leaves = [leaf_hash(bytes([i])) for i in range(6)]
    proof = audit_path(2, leaves)
    with pytest.raises(ProofError, match="too few"):
        root_from_inclusion_proof(leaf_index=2, tree_size=6, leaf=leaves[2], proof=proof[:-1])
    with pytest.raises(ProofError, match="more hashes"):
        root_from_inclusion_proof(leaf_index=2, tree_size=6, leaf=leaves[2], proof=proof + [bytes(32)])
    with pytest.raises(ProofError, match="outside"):
        root_from_inclusion_proof(leaf_index=6, tree_size=6, leaf=leaves[2], proof=proof)
    with pytest.raises(ProofError, match="outside"):
        root_from_inclusion_proof(leaf_index=0, tree_size=0, leaf=leaves[0], proof=[])

"""C2SP tlog-checkpoint: the spec's example and its validation rules."""

from __future__ import annotations

import base64
import re

import pytest

from audit.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from audit.tlog.errors import NoteVerificationError, TlogFormatError
from audit.tlog.merkle import EMPTY_ROOT
from audit.tlog.note import Ed25519Signer, parse_note

from . import c2sp_vectors as c2sp

ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def test_the_spec_example_checkpoint_parses_and_formats_back() -> None:
    text = parse_note(c2sp.CHECKPOINT_NOTE).text
    checkpoint = Checkpoint.parse(text)
    assert checkpoint == Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)
    assert checkpoint.body() == text


def test_extension_lines_round_trip() -> None:
    checkpoint = Checkpoint("log.example", 5, ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(checkpoint.body()) == checkpoint
    assert checkpoint.body().endswith("\next one\next two\n")


def test_the_empty_tree_has_size_zero() -> None:
    body = Checkpoint("log.example", 0, EMPTY_ROOT).body()
    assert body.split("\n")[1] == "0"
    assert Checkpoint.parse(body).size == 0


@pytest.mark.parametrize(("body", "reason"), [
    ("log.example\n5\n", "needs origin, size and root hash lines"),
    ("log.example\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", "end with a newline"),
    ("\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "line 1 (origin) is empty"),
    ("log.example\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "leading zeros"),
    ("log.example\n-5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "line 2 (size)"),
    ("log.example\n+5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "line 2 (size)"),
    ("log.example\n 5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "line 2 (size)"),
    ("log.example\n٥\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "line 2 (size)"),
    (f"log.example\n{2**63}\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "larger than 2**63 - 1"),
    ("log.example\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2\n", "line 3 (root hash)"),
    ("log.example\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", "line 3 (root hash)"),
    ("log.example\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "line 3 (root hash)"),
    ("log.example\n5\nAAAA\n", "line 3 (root hash)"),
    ("log.example\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n", "line 4 (extension) is empty"),
])
def test_malformed_checkpoints_are_refused_naming_the_line(body: str, reason: str) -> None:
    with pytest.raises(TlogFormatError, match=re.escape(reason)):
        Checkpoint.parse(body)


def test_open_checkpoint_needs_the_pinned_log_key_and_origin() -> None:
    log_key = Ed25519Signer.generate("log.example")
    checkpoint = Checkpoint("log.example", 7, ROOT)
    note = sign_checkpoint(checkpoint, [log_key])
    signed = open_checkpoint(note, [log_key.verifier()], origin="log.example")
    assert (signed.origin, signed.size, signed.root_hash) == ("log.example", 7, ROOT)
    assert signed.signers == ("log.example",) and signed.note == note

    with pytest.raises(NoteVerificationError, match="checkpoint origin"):
        open_checkpoint(note, [log_key.verifier()], origin="other.example")
    # Re-signed by a key that is not pinned (an insider's own key under the log's name).
    insider = Ed25519Signer.generate("log.example")
    with pytest.raises(NoteVerificationError, match="trusted key"):
        open_checkpoint(sign_checkpoint(Checkpoint("log.example", 8, ROOT), [insider]), [log_key.verifier()])
    # The pinned signature on one checkpoint cannot be moved onto another body.
    moved = Checkpoint("log.example", 8, ROOT).body() + note[note.index("\n\n") + 1:]
    with pytest.raises(NoteVerificationError, match="invalid for this text"):
        open_checkpoint(moved, [log_key.verifier()])


def test_checkpoint_values_are_validated_on_construction() -> None:
    for bad in (dict(origin="", size=1, root_hash=ROOT), dict(origin="a\nb", size=1, root_hash=ROOT),
                dict(origin="a", size=-1, root_hash=ROOT), dict(origin="a", size=1, root_hash=ROOT[:31]),
                dict(origin="a", size=1, root_hash=ROOT, extensions=("",))):
        with pytest.raises(TlogFormatError):
            Checkpoint(**bad)  # type: ignore[arg-type]

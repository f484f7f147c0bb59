"""C2SP signed-note: the spec's example, keys, and every way a note can be refused."""

from __future__ import annotations

import base64
import re

import pytest

from audit.tlog.errors import NoteVerificationError, TlogFormatError
from audit.tlog.note import (
    MAX_SIGNATURES,
    Ed25519Signer,
    Ed25519Verifier,
    NoteSignature,
    format_verifier_key,
    key_id,
    open_note,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)

from . import c2sp_vectors as c2sp


def test_the_spec_example_note_verifies_with_the_spec_example_key() -> None:
    verifier = Ed25519Verifier.from_key(c2sp.SIGNED_NOTE_VKEY)
    opened = open_note(c2sp.SIGNED_NOTE, [verifier])
    assert opened.text == "This is an example message.\n"
    assert opened.signer_names == ("example.com/foo",)
    # The key ID is SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4], as the spec's vkey says.
    parsed = parse_verifier_key(c2sp.SIGNED_NOTE_VKEY)
    assert key_id(parsed.name, 0x01, parsed.public_key).hex() == "530d903a"
    assert str(parsed) == c2sp.SIGNED_NOTE_VKEY == verifier.verifier_key


def test_the_spec_example_note_with_any_change_is_refused() -> None:
    verifier = Ed25519Verifier.from_key(c2sp.SIGNED_NOTE_VKEY)
    with pytest.raises(NoteVerificationError, match="invalid for this text"):
        open_note(c2sp.SIGNED_NOTE.replace("example message", "exemplary message"), [verifier])


def test_a_note_whose_text_has_empty_lines_splits_at_the_last_one() -> None:
    note = parse_note(c2sp.QUASIMODO_NOTE)
    assert note.text.endswith("\n\ned è subito sera.\n")
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert str(note) == c2sp.QUASIMODO_NOTE
    # Signed by a key we do not trust: refused, naming who we trust and who signed.
    with pytest.raises(NoteVerificationError, match="quasimodo.example/salvatore") as caught:
        open_note(c2sp.QUASIMODO_NOTE, [Ed25519Verifier.from_key(c2sp.SIGNED_NOTE_VKEY)])
    assert caught.value.check == "note has a signature by a trusted key"
    assert caught.value.expected == "example.com/foo+530d903a"


def test_sign_and_open_round_trip_with_key_strings() -> None:
    signer = Ed25519Signer.generate("log.example/clearance")
    name, alg, seed = parse_signer_key(signer.signer_key)
    assert (name, alg) == ("log.example/clearance", 0x01)
    assert signer.signer_key.startswith("PRIVATE+KEY+log.example/clearance+")
    assert Ed25519Signer(name, seed).verifier_key == signer.verifier_key
    note = sign_note("hello\nworld\n", [signer])
    assert open_note(note, [Ed25519Verifier.from_key(signer.verifier_key)]).text == "hello\nworld\n"
    assert "PRIVATE" not in repr(signer)


def test_unknown_signatures_are_ignored_and_kept() -> None:
    trusted, other = Ed25519Signer.generate("log.example"), Ed25519Signer.generate("other.example")
    note = sign_note("text\n", [other, trusted])
    opened = open_note(note, [trusted.verifier()])
    assert [s.name for s in opened.verified] == ["log.example"]
    assert [s.name for s in opened.unverified] == ["other.example"]


def test_a_known_name_with_another_key_is_ignored_and_named_when_nothing_else_verifies() -> None:
    pinned, impostor = Ed25519Signer.generate("log.example"), Ed25519Signer.generate("log.example")
    note = sign_note("checkpoint\n", [impostor])
    with pytest.raises(NoteVerificationError) as caught:
        open_note(note, [pinned.verifier()])
    assert f"key ID {impostor.key_id.hex()}" in str(caught.value)
    assert f"key ID {pinned.key_id.hex()}" in str(caught.value)
    # With a valid pinned signature too, the impostor's is just ignored.
    both = sign_note("checkpoint\n", [impostor, pinned])
    assert open_note(both, [pinned.verifier()]).signer_names == ("log.example",)


def test_a_known_key_id_under_another_name_is_ignored() -> None:
    signer = Ed25519Signer.generate("log.example")
    raw = base64.b64encode(signer.key_id + signer.sign(b"t\n")).decode()
    note = f"t\n\n— somebody.else {raw}\n"
    with pytest.raises(NoteVerificationError, match="trusted key"):
        open_note(note, [signer.verifier()])


def test_a_trusted_signature_that_fails_rejects_the_note_even_if_another_verifies() -> None:
    a, b = Ed25519Signer.generate("a.example"), Ed25519Signer.generate("b.example")
    good = sign_note("x\n", [a])
    forged_b = NoteSignature(b.name, b.key_id, bytes(64)).line()
    with pytest.raises(NoteVerificationError, match="b.example"):
        open_note(good + forged_b, [a.verifier(), b.verifier()])


def test_sixteen_signatures_are_accepted_and_the_limit_is_enforced() -> None:
    signers = [Ed25519Signer.generate(f"w{i}.example") for i in range(16)]
    note = sign_note("x\n", signers)
    assert len(open_note(note, [s.verifier() for s in signers]).verified) == 16
    line = NoteSignature("n.example", bytes(4), bytes(64)).line()
    with pytest.raises(TlogFormatError, match="limit"):
        parse_note("x\n\n" + line * (MAX_SIGNATURES + 1))


@pytest.mark.parametrize(("note", "reason"), [
    ("no blank line\n— a.example AAAAAAA=\n", "no blank line"),
    ("text\n\n", "no signature lines"),
    ("text\n\n— a.example AAAAAAA=", "does not end with a newline"),
    ("te\x01xt\n\n— a.example AAAAAAA=\n", "control character"),
    ("text\r\n\n— a.example AAAAAAA=\n", "control character"),
    ("text\n\n- a.example AAAAAAA=\n", "em dash"),
    ("text\n\n— a.example\n", "expected '— <key name> <base64 signature>'"),
    ("text\n\n— a+b.example AAAAAAA=\n", "'+'"),
    ("text\n\n— a.example AAAA\n", "at least one byte"),
    ("text\n\n— a.example AAAAAA==\n", "at least one byte"),
    ("text\n\n— a.example AAAAAAA\n", "base64"),
    ("text\n\n— a.example AAAAAA=A\n", "base64"),
    ("text\n\n— a\u00a0b AAAAAAA=\n", "space"),
])
def test_malformed_notes_are_refused_with_the_reason(note: str, reason: str) -> None:
    with pytest.raises(TlogFormatError, match=re.escape(reason)):
        parse_note(note)


def test_notes_must_be_utf8_and_bounded() -> None:
    with pytest.raises(TlogFormatError, match="UTF-8"):
        parse_note(b"caf\xe9\n\n\xe2\x80\x94 a.example AAAAAAA=\n")
    with pytest.raises(TlogFormatError, match="longer than"):
        parse_note(b"x" * (1 << 20) + b"\n\n")


@pytest.mark.parametrize(("vkey", "reason"), [
    ("example.com/foo+530d903a", "three parts"),
    ("example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "lowercase hex"),
    ("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match"),
    ("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match"),
    ("example.com/foo+530d903a+" + base64.b64encode(b"\x01" + bytes(31)).decode(), "32 bytes"),
    ("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k=", "base64"),
    ("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "non-empty"),
])
def test_malformed_verifier_keys_are_refused(vkey: str, reason: str) -> None:
    with pytest.raises(TlogFormatError, match=re.escape(reason)):
        parse_verifier_key(vkey)


def test_a_cosignature_key_is_not_a_log_key() -> None:
    public = parse_verifier_key(c2sp.SIGNED_NOTE_VKEY).public_key
    with pytest.raises(TlogFormatError, match="not Ed25519"):
        Ed25519Verifier.from_key(format_verifier_key("w.example", 0x04, public))


def test_signer_key_must_match_its_key_id() -> None:
    signer = Ed25519Signer.generate("a.example")
    name_swapped = signer.signer_key.replace("a.example", "b.example")
    with pytest.raises(TlogFormatError, match="key ID does not match"):
        parse_signer_key(name_swapped)
    with pytest.raises(TlogFormatError, match="PRIVATE"):
        parse_signer_key(signer.verifier_key)


def test_only_controls_below_u0020_are_refused() -> None:
    # The spec forbids "ASCII control characters (those below U+0020) other than newline"; DEL is not one.
    assert parse_note("a\x7fb\n\n— a.example AAAAAAA=\n").text == "a\x7fb\n"

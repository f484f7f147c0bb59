"""The pinned verifier keys file: read with errors that name the line, written atomically,
extended by appending only, compared with the database's keyring."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit import Keyring, SigningKey
from audit.tlog.note import Ed25519Signer, Ed25519Verifier
from audit.trust import (
    TrustedKeysError,
    check_keyring,
    keyring_from_verifier_keys,
    load_trusted_keys,
    pin_key,
    pinned_keyring,
    require_pinned,
    trusted_keys_path_for,
    verifier_for,
    write_trusted_keys,
)

ORIGIN = "example.com/clearance"


def _verifier(name: str = ORIGIN) -> Ed25519Verifier:
    return Ed25519Signer.generate(name).verifier()


def test_round_trip_with_comments_and_blank_lines(tmp_path: Path) -> None:
    keys = [_verifier(), _verifier(), _verifier("witness.example")]
    path = write_trusted_keys(tmp_path / "trusted", keys)
    path.write_text(path.read_text() + "\n   \n# a comment\n")
    loaded = load_trusted_keys(path)
    assert [v.verifier_key for v in loaded] == [v.verifier_key for v in keys]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(TrustedKeysError, match="no such file.*clearance keys init"):
        load_trusted_keys(tmp_path / "absent")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not-a-key", "three parts"),
        (f"{ORIGIN}+deadbeef+AQ==", "key material|32 bytes"),
        ("name with space+00000000+AA==", "space"),
    ],
)
def test_a_malformed_line_is_named(tmp_path: Path, bad: str, reason: str) -> None:
    path = tmp_path / "trusted"
    path.write_text(f"# header\n{_verifier().verifier_key}\n\n{bad}\n")
    with pytest.raises(TrustedKeysError, match=rf"trusted:4: .*({reason})") as caught:
        load_trusted_keys(path)
    assert caught.value.line == 4


def test_a_wrong_key_id_is_refused(tmp_path: Path) -> None:
    good = _verifier().verifier_key
    name, key_id, material = good.split("+", 2)
    forged = f"{name}+{'0' * 8 if key_id != '0' * 8 else '1' * 8}+{material}"
    path = tmp_path / "trusted"
    path.write_text(forged + "\n")
    with pytest.raises(TrustedKeysError, match=r":1: key ID .* does not match"):
        load_trusted_keys(path)


def test_a_duplicate_names_both_lines(tmp_path: Path) -> None:
    key = _verifier().verifier_key
    path = tmp_path / "trusted"
    path.write_text(f"{key}\n# again\n{key}\n")
    with pytest.raises(TrustedKeysError, match=r"trusted:3: .*already listed on line 1"):
        load_trusted_keys(path)


def test_a_file_without_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trusted"
    path.write_text("# nothing pinned\n")
    with pytest.raises(TrustedKeysError, match="lists no keys"):
        load_trusted_keys(path)


def test_pinning_appends_and_never_drops(tmp_path: Path) -> None:
    path = trusted_keys_path_for(tmp_path / "signing.key")
    assert path.name == "signing.key.trusted"
    first, second = SigningKey.generate(), SigningKey.generate()
    assert pin_key(path, verifier_for(first.public, ORIGIN), note="first")
    before = path.read_text()
    assert not pin_key(path, verifier_for(first.public, ORIGIN))  # already there: unchanged
    assert path.read_text() == before
    assert pin_key(path, verifier_for(second.public, ORIGIN), note="second")
    after = path.read_text()
    assert after.startswith(before) and "# second\n" in after
    assert [v.public_key for v in load_trusted_keys(path)] == [first.public.raw, second.public.raw]


def test_pinning_refuses_to_extend_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "trusted"
    path.write_text("garbage\n")
    with pytest.raises(TrustedKeysError, match=":1:"):
        pin_key(path, _verifier())
    assert path.read_text() == "garbage\n"


def test_check_keyring_names_database_only_keys() -> None:
    pinned_key, forged = SigningKey.generate(), SigningKey.generate()
    unregistered = _verifier()
    keyring = Keyring([pinned_key.public, forged.public])
    pinned = [verifier_for(pinned_key.public, ORIGIN), unregistered]
    report = check_keyring(keyring, pinned, first_seq=lambda ids: {i: 42 for i in ids})
    assert not report.trusted
    assert [k.key_id for k in report.database_only] == [forged.key_id]
    assert report.pinned_only == (unregistered,)
    assert report.problems() == [f"signing key {forged.key_id} is in the database but not pinned in "
                                 "CLEARANCE_TRUSTED_KEYS; it signs from seq 42"]
    assert check_keyring(Keyring([pinned_key.public]), pinned).trusted


def test_pinned_keyring_and_require_pinned() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    pinned = [verifier_for(key.public, ORIGIN), verifier_for(other.public, "another/log")]
    assert set(pinned_keyring(pinned)) == {key.key_id, other.key_id}
    assert set(pinned_keyring(pinned, origin=ORIGIN)) == {key.key_id}
    assert set(keyring_from_verifier_keys([v.verifier_key for v in pinned])) == {key.key_id, other.key_id}
    require_pinned(key.public, pinned, source="f")
    with pytest.raises(TrustedKeysError, match="is not pinned"):
        require_pinned(SigningKey.generate().public, pinned, source="f")

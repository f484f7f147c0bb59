"""Signing keys: files (0600), environment, rotation, keyrings."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from audit.errors import InsecureKeyFile, SigningKeyError
from audit.keys import (
    ENV_VAR,
    Keyring,
    PublicKey,
    SigningKey,
    export_keyring,
    init_key,
    key_id_for,
    load_signing_key,
    rotate_key,
)


class Registry:
    def __init__(self) -> None:
        self.keys: list[PublicKey] = []

    def register_key(self, key: PublicKey) -> None:
        self.keys.append(key)


def test_key_id_is_the_truncated_sha256_of_the_raw_public_key() -> None:
    key = SigningKey.generate()
    assert key.key_id == hashlib.sha256(key.public.raw).hexdigest()[:32]
    assert key_id_for(key.public.raw) == key.key_id


def test_init_writes_a_0600_pem_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    registry = Registry()
    key = init_key(path, registry=registry)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_signing_key(path)
    assert loaded.key_id == key.key_id
    assert registry.keys == [key.public]
    with pytest.raises(SigningKeyError, match="already exists"):
        init_key(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.pem"
    init_key(path)
    path.chmod(mode)
    with pytest.raises(InsecureKeyFile, match="chmod 600"):
        load_signing_key(path)


def test_key_from_environment_as_pem_base64_or_path(tmp_path: Path) -> None:
    key = SigningKey.generate()
    pem = key.private_pem().decode()
    raw = key.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert load_signing_key(environ={ENV_VAR: pem}).key_id == key.key_id
    assert load_signing_key(environ={ENV_VAR: base64.b64encode(raw).decode()}).key_id == key.key_id
    path = tmp_path / "k.pem"
    init_key(path)
    assert load_signing_key(environ={ENV_VAR: str(path)}).source == str(path)
    with pytest.raises(SigningKeyError, match="neither"):
        load_signing_key(environ={ENV_VAR: "not a key"})
    with pytest.raises(SigningKeyError, match="no signing key"):
        load_signing_key(environ={})


def test_a_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "ec.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match="Ed25519"):
        load_signing_key(path)


def test_rotation_keeps_the_old_key_retired_and_registers_both(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    old = init_key(path)
    registry = Registry()
    new, retired = rotate_key(path, registry=registry)
    assert new.key_id != old.key_id
    assert load_signing_key(path).key_id == new.key_id
    assert retired.name == f"signing.pem.{old.key_id}.retired"
    assert load_signing_key(retired).key_id == old.key_id
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert {k.key_id for k in registry.keys} == {old.key_id, new.key_id}


def test_keyring_export_round_trip_and_verification(tmp_path: Path) -> None:
    keys = [SigningKey.generate(), SigningKey.generate()]
    path = tmp_path / "keyring.json"
    export_keyring([k.public for k in keys], path)
    keyring = Keyring.from_file(path)
    assert set(keyring) == {k.key_id for k in keys}
    signature = keys[0].sign(b"data")
    assert keyring[keys[0].key_id].verify(signature, b"data")
    assert not keyring[keys[1].key_id].verify(signature, b"data")
    assert not keyring[keys[0].key_id].verify(signature, b"other")


def test_a_public_key_whose_id_is_not_its_fingerprint_is_refused() -> None:
    raw = SigningKey.generate().public.raw
    with pytest.raises(SigningKeyError, match="fingerprint"):
        PublicKey(key_id="0" * 32, raw=raw)

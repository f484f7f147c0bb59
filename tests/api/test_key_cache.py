"""The API-key caches (api/apikeys.py ``KeyVerifier``) over a real key table: refused keys are
remembered briefly so that the same wrong key does not reach the database each time, within a
bound, and no cached refusal ever turns a good key away."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from api.apikeys import MISS, KeyVerifier, Role, create_key, revoke_key
from audit._db import sqlalchemy_url


@pytest.fixture
def db(migrated_database: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(migrated_database), poolclass=NullPool)
    yield engine
    engine.dispose()


def unknown() -> str:
    return f"clr_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def test_an_unknown_key_is_looked_up_once_while_remembered(db: Engine) -> None:
    verifier = KeyVerifier(db, ttl=0, negative_ttl=60)
    key = unknown()
    assert [verifier.verify(key) for _ in range(50)] == [None] * 50
    assert verifier.lookups == 1
    # Any secret with that unknown id: remembered by id.
    same_id = key[:21] + secrets.token_urlsafe(32)
    assert verifier.cached(same_id) is None and verifier.lookups == 1


def test_a_refusal_expires(db: Engine) -> None:
    verifier = KeyVerifier(db, ttl=0, negative_ttl=0.2)
    key = unknown()
    assert verifier.verify(key) is None and verifier.cached(key) is None
    time.sleep(0.3)
    assert verifier.cached(key) is MISS
    assert verifier.verify(key) is None and verifier.lookups == 2


def test_a_wrong_secret_does_not_shut_out_the_right_key(db: Engine) -> None:
    verifier = KeyVerifier(db, ttl=0, negative_ttl=60)
    good, principal = create_key(db, role=Role.auditor, app_id=None)
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert verifier.verify(wrong) is None and verifier.verify(wrong) is None
    assert verifier.lookups == 1
    assert verifier.verify(good) == principal  # same id, right secret: still looked up and let in


def test_a_revoked_key_is_refused_by_id(db: Engine) -> None:
    verifier = KeyVerifier(db, ttl=60, negative_ttl=60)
    key, principal = create_key(db, role=Role.auditor, app_id=None)
    assert verifier.verify(key) == principal
    revoke_key(db, principal.key_id)
    fresh = KeyVerifier(db, ttl=60, negative_ttl=60)
    assert fresh.verify(key) is None and fresh.cached(key) is None and fresh.lookups == 1


def test_the_caches_are_bounded(db: Engine) -> None:
    verifier = KeyVerifier(db, ttl=60, negative_ttl=60, max_entries=100)
    keys = [unknown() for _ in range(250)]
    for key in keys:
        assert verifier.verify(key) is None
    assert verifier.lookups == 250
    assert all(verifier.cached(k) is MISS for k in keys[:150])  # the oldest went first
    assert all(verifier.cached(k) is None for k in keys[150:])


def test_malformed_keys_never_reach_the_database(db: Engine) -> None:
    verifier = KeyVerifier(db, ttl=0, negative_ttl=0)
    for bad in ("", "clr_", "Bearer x", "clr_" + "g" * 16 + "_" + "a" * 43, unknown() + "x"):
        assert verifier.verify(bad) is None
    assert verifier.lookups == 0

"""Misses of the key caches read in batches (api/key_misses.py ``KeyMisses``) over a real key
table: each miss gets the answer a lookup of its own would have given, from a read that began
after it arrived, while a flood of unknown keys costs one statement per batch instead of one per
request; a failed read fails its misses and nothing else stays stuck."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from api.apikeys import KeyStoreUnavailable, KeyVerifier, Principal, Role, create_key, revoke_key
from api.app import create_app
from api.key_misses import KeyMisses
from api.services import Services
from api.workpool import WorkPool
from audit._db import sqlalchemy_url
from tests.api.conftest import bearer, make_settings


@pytest.fixture
def db(migrated_database: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(migrated_database), poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def pool() -> Iterator[WorkPool]:
    pool = WorkPool("test-keys", threads=2)
    yield pool
    pool.close()


def unknown() -> str:
    return f"clr_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def test_misses_that_wait_for_a_thread_are_read_together_each_with_its_own_answer(
        db: Engine, pool: WorkPool) -> None:
    """Both threads held: the first two misses each start a read (queued for a thread), the
    rest wait and go in one read once a thread is free. A key created while they wait is found,
    a revoked key and a wrong secret are refused, requests with one key share its answer."""
    keys = KeyVerifier(db, ttl=60, negative_ttl=60)
    misses = KeyMisses(keys, pool)
    release = threading.Event()
    revoked, revoked_principal = create_key(db, role=Role.auditor, app_id=None)
    revoke_key(db, revoked_principal.key_id)
    early, _ = create_key(db, role=Role.auditor, app_id=None)

    async def flood() -> tuple[list[Principal | None], str, str]:
        for _ in range(pool.threads):
            pool.start(release.wait, 30)
        first = [asyncio.ensure_future(misses.verify(key)) for key in (unknown(), unknown())]
        await asyncio.sleep(0)
        late, late_principal = create_key(db, role=Role.app, app_id="claims-summariser")  # after the misses began
        wrong_secret = early[:21] + secrets.token_urlsafe(32)
        presented = [unknown() for _ in range(100)] + [revoked, wrong_secret]
        presented += [late] * 10 + [early] * 5
        rest = [asyncio.ensure_future(misses.verify(key)) for key in presented]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in first + rest)  # all wait: no thread is free
        release.set()
        answers = await asyncio.wait_for(asyncio.gather(*first, *rest), 10)
        return answers, late_principal.key_id, early

    answers, late_id, early_key = asyncio.run(flood())
    assert answers[:104] == [None] * 104  # two unknown, 100 unknown, the revoked key, the wrong secret
    assert {a.key_id for a in answers[104:114]} == {late_id} and all(a.role is Role.app for a in answers[104:114])
    assert len({a.key_id for a in answers[114:]}) == 1 and answers[114] is not None
    assert keys.lookups == misses.batches == 3  # one read each for the first two, one for the 115 after
    assert keys.cached(early_key) == answers[114]  # remembered as a lookup of its own would be


def test_a_miss_alone_is_read_at_once(db: Engine, pool: WorkPool) -> None:
    keys = KeyVerifier(db, ttl=60)
    misses = KeyMisses(keys, pool)
    key, principal = create_key(db, role=Role.auditor, app_id=None)

    async def one_by_one() -> list[Principal | None]:
        return [await asyncio.wait_for(misses.verify(k), 5) for k in (key, unknown(), unknown())]

    answers = asyncio.run(one_by_one())
    assert answers[0] == principal and answers[1:] == [None, None]
    assert misses.batches == keys.lookups == 3


def test_a_failed_read_fails_its_misses_and_the_next_ones_are_read_again(
        migrated_database: str, pool: WorkPool) -> None:
    """The table cannot be read: every miss of the read gets KeyStoreUnavailable (503), and
    the reads under way are counted down, so later misses are not left waiting."""
    gone = make_url(sqlalchemy_url(migrated_database)).set(database="clearance_no_such_database")
    engine = create_engine(gone, poolclass=NullPool)
    misses = KeyMisses(KeyVerifier(engine, ttl=60), pool)

    async def rounds() -> list[object]:
        outcomes: list[object] = []
        for _ in range(3 * pool.threads):
            results = await asyncio.wait_for(asyncio.gather(
                *(misses.verify(unknown()) for _ in range(5)), return_exceptions=True), 10)
            outcomes.extend(results)
        return outcomes

    try:
        outcomes = asyncio.run(rounds())
    finally:
        engine.dispose()
    assert len(outcomes) == 30 and all(isinstance(o, KeyStoreUnavailable) for o in outcomes)


def test_a_miss_whose_caller_went_away_does_not_disturb_the_others(db: Engine, pool: WorkPool) -> None:
    keys = KeyVerifier(db, ttl=60)
    misses = KeyMisses(keys, pool)
    key, principal = create_key(db, role=Role.auditor, app_id=None)
    release = threading.Event()

    async def one_cancelled() -> list[Principal | None]:
        for _ in range(pool.threads):
            pool.start(release.wait, 30)
        waiting = [asyncio.ensure_future(misses.verify(k)) for k in (unknown(), unknown(), key, key, unknown())]
        await asyncio.sleep(0.05)
        waiting[2].cancel()
        release.set()
        return await asyncio.wait_for(asyncio.gather(*waiting[3:]), 10)

    answers = asyncio.run(one_cancelled())
    assert answers == [principal, None]


def test_a_flood_of_unknown_keys_is_refused_with_few_reads(migrated_database: str, tmp_path: Path) -> None:
    """300 requests at once, each with a key id nobody holds (nothing to cache): all 401, and
    the table is read far fewer times than once per request."""
    services = Services.start(make_settings(tmp_path, migrated_database))
    try:
        async def flood() -> list[int]:
            app = create_app(services=services)
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://clearance") as client:
                answers = await asyncio.gather(*(client.get("/v1/policy", headers=bearer(unknown()))
                                                 for _ in range(300)))
            return [answer.status_code for answer in answers]

        assert asyncio.run(flood()) == [401] * 300
        assert services.keys.lookups == services.key_misses.batches < 100
    finally:
        services.close()

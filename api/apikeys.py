"""API keys: created by an operator, stored hashed, looked up per request.

A key reads ``clr_<key id>_<secret>``. The key id is public (it is recorded in audit entries);
only SHA-256 of the secret is stored. The secret has 256 bits of entropy, so a fast hash is
enough: there is nothing to brute-force as there would be with a password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ARRAY, DateTime, LargeBinary, String, Text, any_, bindparam, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from clearance.errors import ClearanceError

KEY_PATTERN = re.compile(r"^clr_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")


class Role(StrEnum):
    app = "app"
    auditor = "auditor"
    admin = "admin"
    gateway = "gateway"  # decides on behalf of the apps listed with the key (rego/data/gateways.yaml)


class _Base(DeclarativeBase):
    pass


class ApiKey(_Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    role: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str | None] = mapped_column(String(64))
    # role gateway: the apps it may decide for, and optionally the gateway it is (gateways.yaml).
    apps: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    gateway: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request."""

    key_id: str
    role: Role
    app_id: str | None
    # A gateway key: the apps it may decide for, and the gateway it is bound to (None: any
    # gateway of gateways.yaml, named by the call).
    apps: frozenset[str] = frozenset()
    gateway: str | None = None

    def may_act_for(self, app_id: str) -> bool:
        """Whether this key may decide (or report) for ``app_id``."""
        if self.role is Role.app:
            return self.app_id == app_id
        return self.role is Role.gateway and app_id in self.apps


class KeyStoreUnavailable(ClearanceError):
    """The key table could not be read (database down): the caller gets 503, not 401."""


class ApiKeyError(ClearanceError):
    """A key could not be created or changed (unknown id, bad role/app combination)."""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_role(role: Role, app_id: str | None, apps: list[str] | None = None, gateway: str | None = None) -> None:
    """Refuse a role and apps that do not go together (``ApiKeyError``)."""
    if role is Role.app and not app_id:
        raise ApiKeyError("an app key needs --app: it may decide only for that app")
    if role is not Role.app and app_id:
        raise ApiKeyError(f"a {role.value} key is not tied to an app; leave out --app"
                          + (" and list its apps with --apps a,b" if role is Role.gateway else ""))
    if role is Role.gateway and not apps:
        raise ApiKeyError("a gateway key needs --apps a,b: the apps it may decide for")
    if role is not Role.gateway and (apps or gateway):
        raise ApiKeyError(f"only a gateway key has --apps and --gateway; a {role.value} key has neither")


# Called inside the transaction that changes a key, before it commits: the admin CLI appends
# the key's audit entry there, so a key works only once its creation (or revocation) is recorded.
Record = Callable[[Principal, str | None], None]


def create_key(db: Engine, *, role: Role, app_id: str | None, label: str | None = None,
               apps: list[str] | None = None, gateway: str | None = None,
               record: Record | None = None) -> tuple[str, Principal]:
    """Create a key; returns the full key (shown once, never stored) and its principal.

    ``record(principal, label)`` runs before the insert commits; if it raises, no key exists.
    """
    check_role(role, app_id, apps, gateway)
    listed = sorted(set(apps)) if role is Role.gateway and apps else None
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with Session(db) as s, s.begin():
        s.add(
            ApiKey(
                key_id=key_id,
                secret_sha256=_digest(secret),
                role=role.value,
                app_id=app_id,
                apps=listed,
                gateway=gateway,
                label=label,
                created_at=datetime.now(UTC),
                revoked_at=None,
            )
        )
        principal = Principal(key_id, role, app_id, frozenset(listed or ()), gateway)
        if record is not None:
            s.flush()  # the row exists (uncommitted, invisible to others) before it is recorded
            record(principal, label)
    return f"clr_{key_id}_{secret}", principal


def revoke_key(db: Engine, key_id: str, *, record: Record | None = None) -> None:
    """Revoke the active key ``key_id``; ``record(principal, label)`` runs before the commit."""
    with Session(db) as s, s.begin():
        row = s.execute(
            update(ApiKey).where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(ApiKey.role, ApiKey.app_id, ApiKey.apps, ApiKey.gateway, ApiKey.label)
        ).one_or_none()
        if row is None:
            raise ApiKeyError(f"no active key with id {key_id!r}")
        if record is not None:
            record(Principal(key_id, Role(row.role), row.app_id, frozenset(row.apps or ()), row.gateway), row.label)


def list_keys(db: Engine) -> list[ApiKey]:
    with Session(db) as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))


# Keys' rows, read without the ORM's session and identity map: about half the CPU of
# ``Session.get`` (bench/key_lookup.py); one statement for all the keys of a batch of misses
# (api/key_misses.py), or for the one key a renewal reads on threads beside the event loop.
_LOOKUP = select(ApiKey.key_id, ApiKey.secret_sha256, ApiKey.role, ApiKey.app_id, ApiKey.apps, ApiKey.gateway,
                 ApiKey.revoked_at).where(ApiKey.key_id == any_(bindparam("key_ids", type_=ARRAY(String(16)))))


class _Miss:
    """Not in the caches: the table must be asked."""


MISS = _Miss()


class KeyVerifier:
    """Verifies bearer keys against the table, with short caches of good and of bad answers.

    A good answer is kept for ``ttl`` seconds, so a revoked key is refused at the latest ``ttl``
    seconds after the revocation (``ttl=0``: not kept). A bad answer is kept for
    ``negative_ttl`` seconds, so that the same wrong key presented again and again does not
    reach the database each time: a key id that does not exist or is revoked (whatever secret
    comes with it), or a secret that does not match its id (that exact key). Neither can turn
    good later (ids are random and never reused; a revocation is final), so this delays
    nothing. Each cache holds at most ``max_entries``; past that the oldest entries go first.

    :meth:`cached` answers from the caches alone (``MISS`` when it cannot), without blocking;
    :meth:`lookup` asks the table (blocking: run it off the event loop, ``api/deps.py``).

    A good answer in use is renewed before it expires (:meth:`claim_refresh`, then
    :meth:`refresh` off the request's path), so a key in steady use never misses. Why: when an
    answer expired, every request then in flight with that key missed at once and queued for
    the lookup threads, and at a few thousand requests a second some waited a second or more
    (docs/performance.md, "The key cache renewed ahead"). A renewal is a lookup: its answer
    counts from before its read, so a revocation still takes effect within ``ttl``, and a
    renewal that finds the key revoked drops the good answer at once.
    """

    def __init__(self, db: Engine, *, ttl: float, negative_ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self._db = db
        self._ttl, self._negative_ttl, self._max = ttl, negative_ttl, max_entries
        self._good: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._bad: OrderedDict[str, float] = OrderedDict()  # "id:<key id>" or the presented key
        # Keys whose answer is being renewed, or whose renewal failed (until their next lookup answers):
        # at most one per valid key, since only a cached good answer is ever claimed.
        self._renewing: set[str] = set()
        self._lock = threading.Lock()
        self.lookups = 0  # how many times the table was asked (for tests and metrics)
        self.renewals = 0  # how many of those lookups renewed a good answer ahead of its expiry

    def verify(self, presented: str) -> Principal | None:
        """The principal of ``presented``, or None; may block on the database."""
        return self.verify_many([presented])[presented]

    def cached(self, presented: str) -> Principal | None | _Miss:
        """The answer for ``presented`` if the pattern or the caches give it, else ``MISS``."""
        match = KEY_PATTERN.match(presented)
        if not match:
            return None
        now = time.monotonic()
        with self._lock:
            good = self._good.get(presented)
            if good is not None and good[0] > now:
                return good[1]
            for name in (f"id:{match['id']}", presented):
                expires = self._bad.get(name)
                if expires is not None and expires > now:
                    return None
        return MISS

    def lookup(self, presented: str) -> Principal | None:
        """Ask the table (blocking) and remember the answer."""
        return self.lookup_many([presented])[presented]

    def verify_many(self, presented: Iterable[str]) -> dict[str, Principal | None]:
        """:meth:`verify` of several keys with one read of the table for those the caches miss."""
        answers: dict[str, Principal | None] = {}
        missed = []
        for key in presented:
            hit = self.cached(key)
            if hit is MISS:
                missed.append(key)
            else:
                answers[key] = hit  # type: ignore[assignment]
        return answers | self.lookup_many(missed) if missed else answers

    def lookup_many(self, presented: Iterable[str]) -> dict[str, Principal | None]:
        """Ask the table (blocking) for several keys in one read and remember the answers."""
        answers: dict[str, Principal | None] = {}
        wanted: dict[str, re.Match[str]] = {}  # presented key -> its id and secret
        for key in presented:
            match = KEY_PATTERN.match(key)
            if match:
                wanted[key] = match
            else:
                answers[key] = None
        if not wanted:
            return answers
        self.lookups += 1
        read_at = time.monotonic()  # a good answer counts from before the read: the ttl bound holds
        try:
            key_ids = sorted({match["id"] for match in wanted.values()})
            with self._db.connect() as connection:
                rows = {row.key_id: row for row in connection.execute(_LOOKUP, {"key_ids": key_ids})}
        except SQLAlchemyError as exc:
            raise KeyStoreUnavailable(f"cannot read API keys: {type(exc).__name__}") from None
        for key, match in wanted.items():
            answers[key] = self._judge(key, match, rows.get(match["id"]), read_at)
        return answers

    def _judge(self, presented: str, match: re.Match[str], row: Any, read_at: float) -> Principal | None:
        """The answer for ``presented`` (``match``: its id and secret) from its row (None: no
        such key id), remembered."""
        if row is None or row.revoked_at is not None:
            self._remember_bad(f"id:{match['id']}", presented)
            return None
        if not hmac.compare_digest(row.secret_sha256, _digest(match["secret"])):
            self._remember_bad(presented, presented)
            return None
        principal = Principal(row.key_id, Role(row.role), row.app_id, frozenset(row.apps or ()), row.gateway)
        if self._ttl > 0:
            with self._lock:
                self._good[presented] = (read_at + self._ttl, principal)
                self._good.move_to_end(presented)
                self._trim(self._good)
                self._renewing.discard(presented)
        return principal

    def claim_refresh(self, presented: str) -> bool:
        """Whether the caller should renew the good answer for ``presented`` now (then call
        :meth:`refresh`, off the event loop): True once per answer in the second half of its
        life, False while a renewal is under way, for an answer not cached or expired."""
        now = time.monotonic()
        with self._lock:
            good = self._good.get(presented)
            if good is None or not good[0] - self._ttl / 2 <= now < good[0] or presented in self._renewing:
                return False
            self._renewing.add(presented)
            return True

    def refresh(self, presented: str) -> None:
        """Renew a claimed answer (blocking). A database that cannot answer renews nothing and
        the claim is kept, so that this answer is not tried again request after request: it
        expires as it would have, and the next request looks the key up itself."""
        self.renewals += 1
        try:
            self.lookup(presented)  # any answer it stores or refuses lets the claim go
        except KeyStoreUnavailable:
            pass

    def _remember_bad(self, name: str, presented: str) -> None:
        with self._lock:
            self._good.pop(presented, None)  # a refusal seen ends a good answer at once
            self._renewing.discard(presented)
            if self._negative_ttl > 0:
                self._bad[name] = time.monotonic() + self._negative_ttl
                self._bad.move_to_end(name)
                self._trim(self._bad)

    def _trim(self, cache: OrderedDict[str, Any]) -> None:  # holds the lock
        while len(cache) > self._max:
            cache.popitem(last=False)

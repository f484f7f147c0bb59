"""One reload, every worker: PostgreSQL ``LISTEN``/``NOTIFY`` between the processes of one service.

The worker that reloads (``POST /v1/policy/reload``, or SIGHUP, which the supervisor passes to
one worker: ``api/supervisor.py``) checks, records and swaps as ``api/reload.py`` says, then
announces what it swapped in on the channel ``clearance_policy_reload``: its pid, the audit seq
of the ``policy_reload`` entry and the revisions now active (and shadow). Every other worker of
every service on the same database listens and *follows*: it builds the bundle from the same
directory and swaps it in if its revision is the announced one and the announced seq is the
``policy_reload`` entry that made it active — no check of its own (the leader's passed for
exactly those files), no entry of its own (the reload is recorded once).

If the files changed on disk between the reload and the follow, the follower's build has another
revision: it keeps what it serves and logs an error (reload again once the change is complete).
A worker that is not listening when a reload is announced (its connection to PostgreSQL was
lost) does not see it. Once it listens again it catches up from the log itself
(:func:`catch_up`): the newest ``policy_reload`` leaf of its policy directory recorded since
shortly before the loss is followed like an announcement (same checks: the leaf says which
revision it made active, the files on disk must build to it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from pydantic import BaseModel, ValidationError
from sqlalchemy import text

from api.services import Services, build_policy, build_shadow
from policy import ActivePolicy

log = logging.getLogger("clearance.reload")

CHANNEL = "clearance_policy_reload"
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)
# How far before the loss of the connection catching up looks: a reload committed just before
# the loss may not have reached this worker either, and another host's clock may be behind.
CATCH_UP_MARGIN = timedelta(minutes=5)
# Who announced: pids repeat across hosts that share the database, this does not. Each worker
# is a process of its own (spawned), so each draws its own.
PROCESS = uuid.uuid4().hex


class Announcement(BaseModel):
    """What a reload swapped in, as announced on the channel."""

    process: str  # PROCESS of the announcer
    pid: int
    seq: int  # of the policy_reload entry that recorded it
    directory: str
    revision: str  # active after the reload
    shadow_revision: str | None = None  # the shadow candidate after it, when one is configured


def announce(services: Services, announcement: Announcement) -> None:
    """NOTIFY the other workers (after the entry was committed). Blocking. A failure is logged:
    the reload stands, recorded; the others serve the previous bundle until the next one."""
    try:
        with services.store.engine.connect() as conn:
            conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                         {"channel": CHANNEL, "payload": announcement.model_dump_json()})
            conn.commit()
    except Exception:
        log.exception("reload of %s (audit seq %d) could not be announced to the other workers",
                      announcement.revision, announcement.seq)


@dataclass(frozen=True)
class Followed:
    revision: str
    swapped: bool
    # Replaced policies, released by the caller on the event loop's thread (see api/reload.py).
    retired: tuple[ActivePolicy, ...] = ()


def follow(services: Services, announced: Announcement) -> Followed:
    """Swap in the announced bundle, built from disk, if that is the revision found there.
    Blocking (run it in a thread); under the reload lock, like a reload."""
    retired: list[ActivePolicy] = []
    if not _recorded(services, announced):
        log.error("reload to %s announced by pid %d not followed: audit seq %d is not the policy_reload "
                  "entry that made it active", announced.revision, announced.pid, announced.seq)
        return Followed(services.policy.current.revision, False)
    with services.reload_lock:
        current = services.policy.current
        if announced.revision != current.revision:
            if announced.directory != str(services.settings.policy_dir):
                log.error("reload announced for %s, this process serves %s: not followed",
                          announced.directory, services.settings.policy_dir)
                return Followed(current.revision, False)
            built = build_policy(services.settings)
            if built.revision == announced.revision:
                retired.append(current)
                services.policy.current = built
            else:
                log.error("reload to %s (audit seq %d, pid %d) not followed: the files in %s are now %s; "
                          "this process keeps serving %s until the next reload", announced.revision,
                          announced.seq, announced.pid, announced.directory, built.revision, current.revision)
        shadow, directory = services.shadow, services.settings.shadow_policy_dir
        if (shadow is not None and directory is not None and announced.shadow_revision is not None
                and announced.shadow_revision != shadow.current.revision):
            candidate = build_shadow(directory)
            if candidate.revision == announced.shadow_revision:
                retired.append(shadow.current)
                shadow.current = candidate
        revision = services.policy.current.revision
    swapped = revision == announced.revision and revision != current.revision
    if swapped:
        log.info("policy reload followed (audit seq %d, by pid %d): %s -> %s", announced.seq, announced.pid,
                 current.revision, revision)
    return Followed(revision, swapped, tuple(retired))


LEAF_BODY_SQL = "SELECT body FROM audit_leaves WHERE seq = %s"
# Bounded by the time index: a log of millions of decisions and no reload is not scanned.
NEWEST_RELOADS_SQL = ("SELECT seq, body FROM audit_leaves WHERE kind = 'policy_reload' AND recorded_at >= %s "
                      "ORDER BY seq DESC")


def missed(services: Services, since: datetime) -> Announcement | None:
    """The newest reload of this worker's policy directory recorded at or after ``since``, as
    the announcement its worker would have sent (None if there is none)."""
    directory = str(services.settings.policy_dir)
    with services.audit_reads.log_snapshot() as conn:
        for seq, data in conn.execute(NEWEST_RELOADS_SQL, (since,)):
            body = orjson.loads(bytes(data))
            reload = body.get("reload") or {}
            if reload.get("directory") != directory:
                continue  # another service on the same database
            shadow = reload.get("shadow") or {}
            return Announcement(process="", pid=int(reload.get("pid") or 0), seq=int(seq), directory=directory,
                                revision=str(body.get("policy_revision")),
                                shadow_revision=shadow.get("revision"))
    return None


def catch_up(services: Services, since: datetime) -> Followed | None:
    """Follow the newest reload recorded since ``since`` (blocking): what a worker does once
    it listens again after losing its connection. None when there was none."""
    announced = missed(services, since)
    if announced is None:
        return None
    followed = follow(services, announced)
    if followed.swapped:
        log.warning("caught up with a reload missed while not listening (audit seq %d): now serving %s",
                    announced.seq, followed.revision)
    return followed


def _recorded(services: Services, announced: Announcement) -> bool:
    """Whether the announced seq is a ``policy_reload`` entry after which the announced revision
    was active: a follower swaps in nothing the log does not record (the v2 leaf's bytes)."""
    with services.audit_reads.log_snapshot() as conn:
        row = conn.execute(LEAF_BODY_SQL, (announced.seq,)).fetchone()
    if row is None:
        return False
    body = orjson.loads(bytes(row[0]))
    return bool(body.get("kind") == "policy_reload" and body.get("policy_revision") == announced.revision)


def _conninfo(services: Services) -> str:
    return services.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(services: Services, *, ready: asyncio.Event | None = None) -> None:
    """Follow the reloads other workers announce, until cancelled. Reconnects when the
    connection is lost. ``ready`` is set once the first LISTEN is in place."""
    attempt = 0
    lost_at: datetime | None = None
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(_conninfo(services), autocommit=True,
                                                             connect_timeout=5) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                if lost_at is not None:  # listening again: what was announced meanwhile is in the log
                    log.warning("listening for policy reloads again; catching up from the audit log")
                    if await _caught_up(services, lost_at - CATCH_UP_MARGIN):
                        lost_at = None
                attempt = 0
                if ready is not None:
                    ready.set()
                async for notification in conn.notifies():
                    await _on_notification(services, notification.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away: try again, later and later
            lost_at = lost_at or datetime.now(UTC)
            delay = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
            attempt += 1
            log.warning("not listening for policy reloads (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)


async def _caught_up(services: Services, since: datetime) -> bool:
    """False if the log could not be read (tried again at the next reconnection)."""
    try:
        followed = await asyncio.to_thread(catch_up, services, since)
    except Exception:
        log.exception("could not catch up with reloads missed while not listening; the running policy keeps "
                      "serving")
        return False
    del followed  # the retired policies are dropped here, on the event loop's thread
    return True


async def _on_notification(services: Services, payload: str) -> None:
    try:
        announced = Announcement.model_validate_json(payload)
    except ValidationError:
        log.error("ignored a malformed reload announcement: %.200r", payload)
        return
    if announced.process == PROCESS:
        return  # our own
    try:
        followed = await asyncio.to_thread(follow, services, announced)
    except Exception:
        log.exception("reload to %s (audit seq %d) could not be followed; the running policy keeps serving",
                      announced.revision, announced.seq)
        return
    del followed  # the retired policies are dropped here, on the event loop's thread


def start_listening(services: Services) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Start :func:`listen` as a task of the running loop (the app's lifespan)."""
    ready = asyncio.Event()
    return asyncio.get_running_loop().create_task(listen(services, ready=ready), name="clearance-reload-listener"), ready

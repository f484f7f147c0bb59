"""Hot reload of the policy bundle from disk: ``POST /v1/policy/reload`` and SIGHUP.

One function, :func:`reload_policy`, serves both. Under ``Services.reload_lock`` it

1. checks the bundle in ``CLEARANCE_POLICY_DIR`` (``policy.review.check.check_bundle``: compiles, data
   validates, reason codes documented) and, if clean, builds it with the configured engine;
2. refuses it when the check found errors, when it does not build, when its files changed
   between the check and the build (the revision checked must be the revision swapped in), when
   one of its own Rego tests fails or when the invariant search (``policy.review.invariants``, quick
   size) finds a violated invariant — each named in the errors;
3. checks and builds the shadow candidate too, when one is configured (a broken candidate
   keeps the previous one and is reported; it never refuses the active reload);
4. records the attempt — accepted or refused — in the signed audit chain (kind
   ``policy_reload``: old and new revision, git commit and dirtiness, who asked, outcome,
   errors) and only then swaps what was accepted, each in one assignment (``PolicyHolder``):
   a request holds one bundle from start to end, never half of two. No durable record, no
   swap: if the entry cannot be committed, ``AuditUnavailable`` propagates and the running
   bundles keep serving.

Every worker: each uvicorn worker holds its own policy. The worker that reloads (the one that
served the request, or the one SIGHUP reached: ``clearance serve`` passes the signal it gets to
one worker, ``api/supervisor.py``) records the reload once and, once anything was swapped,
announces it; every other worker follows within moments, without an entry of its own
(``api/reload_broadcast.py``: PostgreSQL LISTEN/NOTIFY). See docs/policy-authoring.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from api.reload_broadcast import PROCESS, Announcement, announce
from api.services import Services, build_policy, build_shadow
from audit import Receipt, reload_fields
from policy import ActivePolicy, GitInfo
from policy.bundle import bundle_files, revision_of
from policy.engine import RegorusEngine
from policy.errors import ClearanceError, PolicyError
from policy.review.check import check_bundle
from policy.review.gitinfo import git_info
from policy.review.invariants import reload_gate

log = logging.getLogger("clearance.reload")

SIGHUP_REQUESTER = "SIGHUP"


@dataclass(frozen=True)
class ReloadResult:
    outcome: Literal["accepted", "refused"]
    previous_revision: str
    revision: str  # active after this reload
    candidate_revision: str | None  # what was found on disk (None: not even readable)
    changed: bool
    git: GitInfo | None  # of the active policy after this reload
    directory: str
    requested_by: str
    errors: tuple[PolicyError, ...]
    receipt: Receipt
    shadow: dict[str, Any] | None
    pid: int
    # The policies this reload replaced. regorus VMs must be dropped on the thread that made
    # them (the event loop's, for decisions); the reload runs in a worker thread, so it hands
    # them back for the caller to release there instead of dropping them itself.
    retired: tuple[ActivePolicy, ...] = field(default=(), repr=False, compare=False)

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"


def _disk_revision(directory: Path) -> str | None:
    try:
        return revision_of(bundle_files(directory)) if directory.is_dir() else None
    except OSError:
        return None


def _build_checked(services: Services) -> tuple[ActivePolicy | None, str | None, list[PolicyError]]:
    """(policy, revision found on disk, errors) for the configured policy directory."""
    directory = Path(services.settings.policy_dir)
    before = _disk_revision(directory)
    errors = check_bundle(directory)
    if errors:
        return None, before, errors
    try:
        built = build_policy(services.settings, directory)
    except ClearanceError as exc:
        found = getattr(exc, "errors", None)
        return None, before, list(found) if found else [PolicyError(str(directory), None, "reload_failed", str(exc))]
    if built.revision != before:
        return None, built.revision, [PolicyError(str(directory), None, "bundle_changed",
                                                  f"the files changed while being checked ({before} became "
                                                  f"{built.revision}); reload again once the change is complete")]
    gate = _gate(built)
    if gate:
        return None, built.revision, gate
    return built, built.revision, []


def _gate(built: ActivePolicy) -> list[PolicyError]:
    """The bundle's own Rego tests and its invariants (a quick search), unless its revision
    passed them before in this process. Evaluated by an engine of this thread's own, dropped
    here: the VMs of ``built`` stay those of the threads that decide."""
    return reload_gate(built.revision,
                       lambda: ActivePolicy(bundle=built.bundle, engine=RegorusEngine(built.bundle)))


def _check_shadow(services: Services) -> tuple[ActivePolicy | None, dict[str, Any] | None]:
    """(the candidate to swap in, or None; what to record) for the shadow directory."""
    holder, directory = services.shadow, services.settings.shadow_policy_dir
    if holder is None or directory is None:
        return None, None
    errors = check_bundle(directory)
    candidate = None
    if not errors:
        try:
            candidate = build_shadow(directory)
        except ClearanceError as exc:
            errors = list(getattr(exc, "errors", None) or [PolicyError(str(directory), None, "reload_failed", str(exc))])
    return candidate, {
        "outcome": "accepted" if candidate is not None else "refused",
        "directory": str(directory),
        "previous_revision": holder.current.revision,
        "revision": (candidate or holder.current).revision,
        "errors": [e.to_dict() for e in errors],
    }


def reload_policy(services: Services, *, requested_by: str, caller_key_id: str | None = None) -> ReloadResult:
    """Check, record and (if clean) swap in the bundle on disk. Blocking: run it in a thread
    from async code. Raises ``AuditUnavailable`` when the attempt cannot be recorded (then
    nothing was swapped)."""
    with services.reload_lock:
        old = services.policy.current
        directory = str(services.settings.policy_dir)
        # (1)-(2) check and build
        built, candidate_revision, errors = _build_checked(services)
        active = built or old
        # (3) the shadow candidate follows the same directory-on-disk rule
        shadow_candidate, shadow = _check_shadow(services)
        outcome: Literal["accepted", "refused"] = "accepted" if built is not None else "refused"
        git = built.bundle.git if built is not None else git_info(directory)
        # (4) record, then swap
        receipt = services.writer.append(reload_fields(
            caller_key_id=caller_key_id,
            policy_revision=active.revision,
            engine=active.engine.name,
            policy_git=_git_dict(active.bundle.git),
            reload={
                "outcome": outcome,
                "requested_by": requested_by,
                "directory": directory,
                "old_revision": old.revision,
                "new_revision": candidate_revision,
                "old_git": _git_dict(old.bundle.git),
                "new_git": _git_dict(git),
                "errors": [e.to_dict() for e in errors],
                "pid": os.getpid(),
                "shadow": shadow,
            },
        ))
        retired: list[ActivePolicy] = []
        if built is not None:
            retired.append(old)
            services.policy.current = built  # the one atomic swap
        if shadow_candidate is not None and services.shadow is not None:
            retired.append(services.shadow.current)
            services.shadow.current = shadow_candidate
        services.metrics.policy_reloads.labels(outcome=outcome).inc()
    if built is not None or shadow_candidate is not None:  # the other workers follow (api/reload_broadcast.py)
        announce(services, Announcement(
            process=PROCESS, pid=os.getpid(), seq=receipt.seq, directory=directory, revision=active.revision,
            shadow_revision=services.shadow.current.revision if services.shadow is not None else None))
    level = logging.INFO if built is not None else logging.ERROR
    log.log(level, "policy reload %s (asked by %s): %s -> %s%s", outcome, requested_by, old.revision,
            candidate_revision, "".join(f"\n  {e}" for e in errors))
    return ReloadResult(
        outcome=outcome, previous_revision=old.revision, revision=active.revision,
        candidate_revision=candidate_revision, changed=active.revision != old.revision,
        git=active.bundle.git, directory=directory, requested_by=requested_by, errors=tuple(errors),
        receipt=receipt, shadow=shadow, pid=os.getpid(), retired=tuple(retired),
    )


def _git_dict(git: GitInfo | None) -> dict[str, object] | None:
    return git.to_dict() if git is not None else None


# -- SIGHUP ------------------------------------------------------------------------------------


async def reload_on_signal(services: Services) -> ReloadResult | None:
    """What SIGHUP does: the same reload, asked by ``SIGHUP``; never raises (it runs as a task)."""
    try:
        return await asyncio.to_thread(reload_policy, services, requested_by=SIGHUP_REQUESTER)
    except Exception:
        log.exception("SIGHUP reload could not be completed; the running policy keeps serving")
        return None


def install_sighup(services: Services) -> Callable[[], None] | None:
    """Reload on SIGHUP in this process; returns the function that uninstalls the handler, or
    None where signals cannot be handled (not the main thread, e.g. under a test client; or no
    SIGHUP on this platform). Call from the running event loop (the app's lifespan)."""
    if not hasattr(signal, "SIGHUP"):
        return None
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[ReloadResult | None]] = set()  # keep tasks alive until done

    def on_signal() -> None:
        task = loop.create_task(reload_on_signal(services))
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_signal)
    except (RuntimeError, ValueError, NotImplementedError):
        return None
    log.info("SIGHUP reloads the policy in process %d", os.getpid())

    def uninstall() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return uninstall

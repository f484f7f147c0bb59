"""``GET /v1/audit/verify`` in processes of its own, at a lower CPU priority than decisions.

Verifying a trail is CPU work in Python (hashes, canonical bytes, signatures): on threads of the
server it held the interpreter lock against the event loop, and decisions' p99 grew fourfold
while verifications ran. In a process of its own, niced, it neither holds that lock nor wins
the CPU against a decision. The processes start on the first verification (``spawn``: a
threaded server is never forked) and are reused; ``CLEARANCE_VERIFY_CONCURRENCY`` (default 1)
bounds how many run at once, the others wait their turn.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import threading
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from audit.errors import AuditError, AuditUnavailable
from clearance.children import exit_with_parent
from clearance.errors import ClearanceError

NICENESS = 19  # CFS weight 15 against a decision's 1024


def _init_child(parent: int) -> None:
    os.nice(NICENESS)
    exit_with_parent(parent)


def verify_with_keys(store: Any, keys: list[str], **options: Any) -> Any:
    """``audit.logverify.verify_trail`` trusting only the pinned verifier keys ``keys`` (strings:
    verifier objects do not pickle, so their key strings cross the process boundary): the v2
    log's checkpoints with them, the v1 chain before it with the same keys as a keyring."""
    from audit.logverify import verify_trail
    from audit.tlog.note import Ed25519Verifier
    from audit.trust import keyring_from_verifier_keys

    trusted = [Ed25519Verifier.from_key(k) for k in keys]
    options.setdefault("keyring", keyring_from_verifier_keys(keys))
    return verify_trail(store, trusted=trusted, **options)


def _verify(url: str, options: dict[str, Any]) -> tuple[str, Any]:
    """In the child: verify, and bring back the result or the error as plain data (an error
    whose constructor takes other arguments could not be unpickled by the server)."""
    from audit import AuditStore

    store = AuditStore.from_url(url, pooled=False)
    try:
        return "ok", verify_with_keys(store, options.pop("trusted_keys"), **options).to_dict()
    except ClearanceError as exc:
        kind = type(exc)
        return "error", (kind.__module__, kind.__qualname__, str(exc))
    except Exception:  # a bug: its traceback travels to the server's log
        return "bug", traceback.format_exc()
    finally:
        store.dispose()


def _rebuild(module: str, name: str, message: str) -> Exception:
    """The Clearance error the child raised, as its own type when it takes just a message."""
    try:
        kind = getattr(importlib.import_module(module), name)
        if isinstance(kind, type) and issubclass(kind, ClearanceError):
            return kind(message)
    except (ImportError, AttributeError, TypeError):
        pass
    return AuditError(f"{name}: {message}")


class VerifierProcesses:
    """A pool of ``processes`` verification processes for the database at ``url``.

    :param url: the SQLAlchemy URL of the audit database (password included; it stays in memory).
    :param processes: at most this many verifications at once.
    """

    def __init__(self, url: str, *, processes: int) -> None:
        self._url, self._processes = url, processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self._processes, initializer=_init_child,
                                                 initargs=(os.getpid(),), mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    async def verify(self, **options: Any) -> dict[str, Any]:
        """``audit.logverify.verify_trail(store, **options).to_dict()`` (``trusted_keys``: the
        verifier key strings), computed in a child. Calls
        beyond ``processes`` wait in the pool's queue (no thread held); one whose caller is
        cancelled before it starts never runs."""
        pool = self._executor()
        try:
            kind, value = await asyncio.wrap_future(pool.submit(_verify, self._url, options))
        except BrokenProcessPool:
            with self._lock:  # a child died (killed, out of memory): start afresh next time
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise AuditUnavailable("the verification process ended unexpectedly; retry") from None
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        if kind == "error":
            raise _rebuild(*value)
        raise RuntimeError(f"verification failed in its process:\n{value}")

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

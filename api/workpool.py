"""Bounded thread pools, one per kind of blocking work, so one kind cannot take what another needs.

Every synchronous endpoint of FastAPI shares one pool of threads (AnyIO's, 40), and whatever
they do with the database shares the service's connection pool. Sixteen verifications of a
long trail then held the threads and the connections, and the API-key lookups of decisions
queued behind them. The service keeps two pools of its own (``api/services.py``): the key
lookups, and the auditor's heavy reads (verify, export, statistics, search), each with as many
threads as it may use at once; the auditor's reads also have their own database connections.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class WorkPool:
    """At most ``threads`` calls of blocking work at once, awaited from the event loop.

    :param name: prefix of the threads' names (seen in ``py-spy`` and thread dumps).
    :param threads: how many calls run at once; the rest wait their turn without a thread.
    """

    def __init__(self, name: str, *, threads: int) -> None:
        if threads < 1:
            raise ValueError("a work pool needs at least one thread")
        self.name, self.threads = name, threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on one of the pool's threads. If the caller is cancelled
        (the client went away), the call itself still runs to its end: a thread cannot be
        interrupted."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def start(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """``fn(*args, **kwargs)`` on one of the pool's threads, not awaited: ``fn`` handles its
        own errors. Nothing starts once the pool is closed."""
        try:
            self._executor.submit(fn, *args, **kwargs)
        except RuntimeError:  # closed: the service is stopping
            pass

    def close(self) -> None:
        """Refuse new work; calls not started yet are dropped, running ones finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)

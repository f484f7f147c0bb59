"""Misses of the API-key caches, looked up together.

Why: each request whose key the caches did not know took a thread hand-off, a pooled connection
and a statement of its own. A flood of made-up keys (each a new key id, so nothing to cache)
cost that much per request and saturated the worker, and the real keys' requests waited behind
it (docs/performance.md, "A flood of unknown API keys").

What: at most ``pool.threads`` reads of ``api_keys`` run at once. A miss that finds them all
busy waits for the next read, which takes every key missed meanwhile in one statement
(``KeyVerifier.verify_many``: ``key_id = ANY(...)``), and requests presenting the same key
share its answer. A miss that finds a thread free is read at once, as before: batching costs
nothing when there is nothing to batch with.

Every miss is answered by a read that began after it arrived, so a key created just before its
first request is found, and a revocation is seen as before; a read that fails answers each of
its misses with its error (503, ``KeyStoreUnavailable``).
"""

from __future__ import annotations

import asyncio

from api.apikeys import KeyVerifier, Principal
from api.workpool import WorkPool

_Waiters = dict[str, list["asyncio.Future[Principal | None]"]]


class KeyMisses:
    """The key-cache misses of one event loop, read in batches on ``pool``'s threads.

    :param max_batch: the most keys one read asks for (a bound on the statement, not a queue limit).
    """

    def __init__(self, keys: KeyVerifier, pool: WorkPool, *, max_batch: int = 256) -> None:
        self._keys, self._pool, self._max_batch = keys, pool, max_batch
        self._waiting: _Waiters = {}  # presented key -> the requests waiting for it, oldest first
        self._reads = 0  # reads under way
        self._tasks: set[asyncio.Task[None]] = set()  # the reads' tasks, kept until done
        self.batches = 0  # reads started (for tests and bench/key_flood.py)

    async def verify(self, presented: str) -> Principal | None:
        """The principal of ``presented`` (None: unknown, revoked or wrong), from a read of the
        table that begins after this call; raises what the read raised."""
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(presented, []).append(future)
        if self._reads < self._pool.threads:
            self._start()
        return await future

    def _start(self) -> None:
        batch: _Waiters = {}
        while self._waiting and len(batch) < self._max_batch:
            key = next(iter(self._waiting))
            batch[key] = self._waiting.pop(key)
        self._reads += 1
        self.batches += 1
        task = asyncio.get_running_loop().create_task(self._read(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, batch: _Waiters) -> None:
        try:
            answers = await self._pool.run(self._keys.verify_many, list(batch))
        except asyncio.CancelledError:
            for future in _pending(batch):
                future.cancel()
            raise
        except Exception as exc:  # KeyStoreUnavailable, or the pool closed as the service stops
            for future in _pending(batch):
                future.set_exception(exc)
        else:
            for key, futures in batch.items():
                answer = answers.get(key)  # absent only by a bug: refused, never left waiting
                for future in futures:
                    if not future.done():  # its request may have gone away
                        future.set_result(answer)
        finally:
            self._reads -= 1
            if self._waiting and self._reads < self._pool.threads:
                self._start()


def _pending(batch: _Waiters) -> list[asyncio.Future[Principal | None]]:
    return [future for futures in batch.values() for future in futures if not future.done()]

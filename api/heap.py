"""Python's cyclic collector and what a serving process caches.

The start-up heap is frozen once (``api/app.py``). What is cached later is not: one evaluation per
new input (``api/decider.py``: about a hundred containers each, up to
``CLEARANCE_DECISION_CACHE_SIZE`` per worker, 4,096 when this was measured), which every full
collection traverses again — 20–125 ms pauses of the event loop and the audit writer,
several a second when every request is a new input, the p99 of such traffic (~70 ms at one
caller; docs/performance.md, "the first decision of a new input"). Once every
``freeze_seconds`` a :class:`HeapFreezer` moves what survived a young collection into the
permanent generation (``gc.freeze``), which collections skip (p99 ~8 ms in the same runs). Cyclic
garbage frozen with it would stay there, so every ``thaw_seconds`` it moves everything back
(``gc.unfreeze``), collects it all once and freezes again: one long pause a period, not several a
second.

Why a tenth of a second (``CLEARANCE_GC_FREEZE_SECONDS=0.1``), not one: once the cache is full,
each new evaluation evicts an old one, so allocations and deallocations cancel out in the
collector's counters and its young generations grow to all that was cached since the last step
(~100 k containers a second at a few hundred new inputs a second); collecting them took 20–85 ms
each time, the p99 of such traffic again (~25 ms at one caller). A step every 0.1 s keeps them a
tenth as large (p99 6–7.5 ms). The request path leaves no cyclic garbage (a probe counted none
collected in 30 s of new inputs): what these collections find is live, and the young collection
before each freeze is there for the error paths (an exception's traceback is a cycle).
"""

from __future__ import annotations

import gc
import threading


class HeapFreezer:
    """Freezes the heap on a thread of its own (:meth:`start`, :meth:`stop`), a step per period."""

    def __init__(self, *, freeze_seconds: float, thaw_seconds: float) -> None:
        if freeze_seconds <= 0 or thaw_seconds <= 0:
            raise ValueError("freeze_seconds and thaw_seconds must be positive")
        self._freeze_seconds = freeze_seconds
        self._steps_per_thaw = max(1, round(thaw_seconds / freeze_seconds))
        self._steps = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        """Freeze what survives a young collection; every thaw period, collect everything first."""
        self._steps += 1
        if self._steps % self._steps_per_thaw == 0:
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clearance-heap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self._freeze_seconds):
            self.step()

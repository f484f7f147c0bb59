"""Verification of a long database range by several processes, each in the same snapshot."""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from clearance.children import exit_with_parent

from ._checks import Failure, Progress, Walker, body_time, first
from .keys import Keyring
from .snapshot import read_entries


def conninfo(store: Any) -> str:
    url = make_url(store.engine.url.render_as_string(hide_password=False))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ParallelWalk:
    """Steps (2)–(9) over ``from_seq..end`` in slices, by a pool of processes.

    Each slice is walked by a :class:`Walker` in a worker that joins the coordinator's exported
    snapshot and starts from the stored hash and time of the entry before the slice (that entry
    is verified by the previous slice, whose failure, if any, comes first). Results are merged
    in seq order, so the first failure and ``checked`` are those of a sequential walk.
    """

    def __init__(self, *, conninfo: str, snapshot_id: str, keyring: Keyring, workers: int,
                 end: int, open_end: bool, slice_entries: int) -> None:
        self.conninfo, self.snapshot_id, self.workers = conninfo, snapshot_id, workers
        self.keys = [(k.key_id, k.raw) for k in keyring.values()]
        self.end, self.open_end, self.slice_entries = end, open_end, slice_entries

    def __call__(self, walker: Walker, from_seq: int, to_seq: int | None,
                 progress: Progress | None) -> None:
        total = self.end - from_seq + 1
        size = max(1, min(self.slice_entries, -(-total // self.workers)))
        slices = [(lo, min(lo + size - 1, self.end)) for lo in range(from_seq, self.end + 1, size)]
        first_state = (walker.prev_hash, walker.prev_time)
        jobs = [
            dict(conninfo=self.conninfo, snapshot_id=self.snapshot_id, keys=self.keys,
                 wanted=sorted(walker.wanted), lo=lo, hi=hi,
                 open_end=self.open_end and hi == self.end,
                 start=first_state if i == 0 else None)
            for i, (lo, hi) in enumerate(slices)
        ]
        context = multiprocessing.get_context("spawn")  # never fork a threaded server process
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context, initializer=exit_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            try:
                for outcome in pool.map(walk_slice, jobs):
                    walker.checked += outcome["checked"]
                    walker.seen_hashes.update(outcome["seen"])
                    if outcome["failure"] is not None:
                        raise Failure(*outcome["failure"])
                    walker.prev_hash, walker.prev_time = outcome["last"]
                    walker.expected = outcome["expected"]
                    if progress is not None:
                        progress(walker.checked, total)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def walk_slice(job: dict[str, Any]) -> dict[str, Any]:
    """In a worker process: walk entries ``lo..hi`` (``..end of log`` if ``open_end``)."""
    from .keys import PublicKey

    keyring = Keyring(PublicKey(key_id=k, raw=raw) for k, raw in job["keys"])
    seen: dict[int, bytes] = {}
    walker = Walker(keyring=keyring, wanted=set(job["wanted"]), seen_hashes=seen)
    walker.expected = job["lo"]
    with psycopg.connect(job["conninfo"]) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(job["snapshot_id"])))
        read = functools.partial(read_entries, conn)
        try:
            if job["start"] is not None:
                walker.prev_hash, walker.prev_time = job["start"]
            else:  # the entry before the slice: verified by the previous slice
                before = first(read(job["lo"] - 1, job["lo"] - 1))
                if before is None:
                    raise Failure(job["lo"] - 1, "missing", f"entry {job['lo'] - 1} is missing")
                walker.prev_hash, walker.prev_time = before.entry_hash, body_time(before)
            for entry in read(job["lo"], None if job["open_end"] else job["hi"]):
                walker.check(entry)
            if not job["open_end"] and walker.expected <= job["hi"]:
                raise Failure(walker.expected, "missing", f"entry {walker.expected} is missing "
                               f"(range ends at {job['hi']})")
        except Failure as failure:
            return {"checked": walker.checked, "seen": seen, "last": None, "expected": None,
                    "failure": (failure.seq, failure.check, failure.reason)}
    return {"checked": walker.checked, "seen": seen, "failure": None,
            "last": (walker.prev_hash, walker.prev_time), "expected": walker.expected}

"""How long a durable write takes on this machine's disk, back to back and after an idle gap.

    python bench/flush_latency.py [--dir DIR] [--gaps 0,0.0002,0.001] [--writes 1500] [--json OUT]

An audited decision waits for PostgreSQL's commit, whose WAL flush is one ``fdatasync`` (the
default ``wal_sync_method``). ``pg_test_fsync`` times flushes back to back; one caller's
commits come about a millisecond apart, with the disk idle between them. Per gap: an 8 kB
``pwrite`` then ``fdatasync`` on a scratch file in ``--dir`` (default: the PostgreSQL data
directory's file system when it can be written, else the temporary directory), after sleeping
the gap, ``--writes`` times; the deciles of the flush's wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import emit  # noqa: E402

_PG_DATA = Path("/var/lib/postgresql")
_SPAN = 1 << 20  # the writes cycle through the first MiB of the file


def flushes(directory: Path, gap: float, writes: int) -> list[int]:
    """Nanoseconds of each ``fdatasync`` after an 8 kB write, ``gap`` seconds apart."""
    fd, name = tempfile.mkstemp(prefix="clearance-flush-", dir=directory)
    try:
        os.pwrite(fd, b"\0" * _SPAN, 0)
        os.fsync(fd)
        page = b"x" * 8192
        out = []
        for i in range(writes):
            if gap:
                time.sleep(gap)
            os.pwrite(fd, page, (i * len(page)) % _SPAN)
            started = time.perf_counter_ns()
            os.fdatasync(fd)
            out.append(time.perf_counter_ns() - started)
        return out
    finally:
        os.close(fd)
        os.unlink(name)


def default_directory() -> Path:
    """PostgreSQL's data directory's file system when this user can write there, else /tmp's."""
    return _PG_DATA if os.access(_PG_DATA, os.W_OK) else Path(tempfile.gettempdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=default_directory())
    parser.add_argument("--gaps", default="0,0.0002,0.001", help="seconds of idle before each write, comma-separated")
    parser.add_argument("--writes", type=int, default=1500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"dir": str(args.dir), "writes": args.writes, "gaps": {}}
    for gap in (float(g) for g in args.gaps.split(",")):
        samples = flushes(args.dir, gap, args.writes)
        deciles = [round(q / 1e3) for q in statistics.quantiles(samples, n=10)] if len(samples) > 1 else []
        results["gaps"][str(gap)] = {"deciles_us": deciles, "max_us": round(max(samples) / 1e3)}
    table = "".join(f"gap {gap} s: fdatasync of 8 kB, deciles {r['deciles_us']} µs, max {r['max_us']} µs\n"
                    for gap, r in results["gaps"].items())
    emit(f"on {args.dir}\n" + table, results, args.json)


if __name__ == "__main__":
    main()

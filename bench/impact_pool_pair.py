"""One pooled impact run of a checkout's code: wall, this process's CPU and the pool's.

    python bench/impact_pool_pair.py CHECKOUT [N] [WORKERS]

Replays N distinct synthetic requests (default 6,000; bench/impact_bench.py's generator, head =
the Llama cap lowered) through ``analyse`` of the checkout at CHECKOUT (put first on sys.path),
with WORKERS processes (default 2). Start it for two checkouts at the same moment (``A & B;
wait``) to compare them under the same load on a shared machine.
"""

from __future__ import annotations

import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    repo = Path(sys.argv[1]).resolve()
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6_000
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    sys.path.insert(0, str(repo))
    from bench.impact_bench import synthetic_requests, write_jsonl
    from policy.review.impact import analyse
    from policy.review.replay import read_jsonl

    with tempfile.TemporaryDirectory(prefix="impact-pool-") as scratch:
        tmp = Path(scratch)
        head = tmp / "head"
        shutil.copytree(repo / "rego", head)
        models = head / "data" / "models.yaml"
        models.write_text(models.read_text().replace("threshold: 700000000", "threshold: 1000000"))
        inputs = write_jsonl(tmp / "a.jsonl", synthetic_requests(n, seed=2))
        me, pool, started = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
        report = analyse(repo / "rego", head, read_jsonl(inputs), base_ref="base", workers=workers)
        wall = time.perf_counter() - started
        me, pool = _cpu(resource.RUSAGE_SELF) - me, _cpu(resource.RUSAGE_CHILDREN) - pool
    print(f"{repo}: {n} distinct replays, {report.workers} processes: wall {wall:.2f} s ({n / wall:.0f}/s); "
          f"CPU this process {me:.2f} s, pool {pool:.2f} s ({n / (me + pool):.0f} replays per CPU-second)")


if __name__ == "__main__":
    main()

"""CPU of one distinct impact replay, the reference judging against ``Judge``, alternated in one
process (so that a shared machine's load weighs on both alike).

    python bench/impact_judge_ab.py [N]

Reference: what impact replay did before wave 2 — each side resolves the recorded request and
decides alone, both answers become ``Summary`` objects, ``compare`` (``reference_change`` in
tests/policy/review/test_diff.py, which checks that both give the same changes). Head: the
Llama 4 cap lowered to 1M, as in bench/impact_bench.py. Reports CPU (``time.thread_time``) per
replay of each over the same N distinct synthetic requests (default 2,000), in chunks of 25
taken in alternating order.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.impact_bench import synthetic_requests, write_jsonl  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.review.impact import Judge  # noqa: E402
from policy.review.replay import Replay, read_jsonl  # noqa: E402
from tests.bundles import lower_llama_cap  # noqa: E402
from tests.policy.review.test_diff import reference_change  # noqa: E402

CHUNK = 25


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    with tempfile.TemporaryDirectory(prefix="impact-judge-ab-") as scratch:
        tmp = Path(scratch)
        head_dir = tmp / "rego"
        shutil.copytree(REPO / "rego", head_dir)
        lower_llama_cap(head_dir)
        base, head = load_policy(REPO / "rego"), load_policy(head_dir)
        replays = [r for r in read_jsonl(write_jsonl(tmp / "a.jsonl", synthetic_requests(n, seed=1)))
                   if isinstance(r, Replay)]
    judge = Judge(base, head)
    for replay in replays[:40]:  # warm both (each thread's VMs, caches)
        judge.judge(replay)
        reference_change(base, head, replay)
    gc.set_threshold(100_000, 50, 1000)  # as impact replay runs
    spent = {"reference": 0.0, "judge": 0.0}
    for i in range(0, len(replays), CHUNK):
        chunk = replays[i:i + CHUNK]
        order = ("reference", "judge") if (i // CHUNK) % 2 else ("judge", "reference")
        for which in order:
            started = time.thread_time()
            if which == "judge":
                for replay in chunk:
                    judge.judge(replay)
            else:
                for replay in chunk:
                    reference_change(base, head, replay)
            spent[which] += time.thread_time() - started
    old, new = spent["reference"] / len(replays), spent["judge"] / len(replays)
    print(f"{len(replays)} distinct replays, load average {os.getloadavg()[0]:.1f}: reference {old * 1e3:.3f} ms "
          f"CPU a replay, Judge {new * 1e3:.3f} ms ({(1 - new / old) * 100:.1f} % less)")


if __name__ == "__main__":
    main()

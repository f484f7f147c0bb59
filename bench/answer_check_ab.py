"""The answer's check in one pass (msgspec) against the two passes before it (orjson.loads +
the TypedDict check: what ``ActivePolicy.evaluate`` does when ``_raw`` is None, as for an engine
without ``evaluate_raw``), alternated in one process so that a shared machine's load weighs on
both alike.

    python bench/answer_check_ab.py [N]

Reports the CPU (``time.thread_time``) of a distinct impact replay (``Judge.judge`` over N
distinct synthetic requests, default 2,000, the head lowering the Llama cap as in
bench/impact_bench.py, in chunks of 25 taken in alternating order) and the CPU p50 of
``ActivePolicy.evaluate`` (the six realistic workloads, then 200 random inputs, the two paths
alternating evaluation by evaluation).
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.impact_bench import synthetic_requests, write_jsonl  # noqa: E402
from bench.inprocess import WORKLOADS  # noqa: E402
from policy import ActivePolicy, Caller, DecisionRequest, load_policy  # noqa: E402
from policy.review.impact import Judge  # noqa: E402
from policy.review.replay import Replay, read_jsonl  # noqa: E402
from tests.bundles import lower_llama_cap  # noqa: E402
from tests.engines.workloads import policy_inputs  # noqa: E402

CHUNK = 25


def _sides(tmp: Path, n: int) -> tuple[ActivePolicy, ActivePolicy, list[Replay]]:
    head_dir = tmp / "rego"
    shutil.copytree(REPO / "rego", head_dir)
    lower_llama_cap(head_dir)
    replays = [r for r in read_jsonl(write_jsonl(tmp / "a.jsonl", synthetic_requests(n, seed=2)))
               if isinstance(r, Replay)]
    return load_policy(REPO / "rego"), load_policy(head_dir), replays


class _Switch:
    """Turns the one-pass check on or off for some policies (off: ``_raw`` None)."""

    def __init__(self, *policies: ActivePolicy) -> None:
        self._raw = {p: p._raw for p in policies}  # noqa: SLF001 - the switch under test

    def set(self, one_pass: bool) -> None:
        for policy, raw in self._raw.items():
            object.__setattr__(policy, "_raw", raw if one_pass else None)


def replay_cpu(judge: Judge, replays: list[Replay], switch: _Switch) -> dict[bool, float]:
    """CPU seconds per replay with the one-pass check (True) and without (False)."""
    for replay in replays[:40]:
        judge.judge(replay)
    spent = {True: 0.0, False: 0.0}
    for i in range(0, len(replays), CHUNK):
        for one_pass in ((True, False) if (i // CHUNK) % 2 else (False, True)):
            switch.set(one_pass)
            started = time.thread_time()
            for replay in replays[i:i + CHUNK]:
                judge.judge(replay)
            spent[one_pass] += time.thread_time() - started
    return {k: v / len(replays) for k, v in spent.items()}


def evaluate_p50(policy: ActivePolicy, inputs: list[dict[str, Any]], switch: _Switch, n: int) -> dict[bool, float]:
    """CPU µs (median) of ActivePolicy.evaluate with and without the one-pass check."""
    samples: dict[bool, list[int]] = {True: [], False: []}
    for k in range(2 * n):
        one_pass = bool(k % 2)
        switch.set(one_pass)
        policy_input = inputs[(k // 2) % len(inputs)]
        started = time.thread_time_ns()
        policy.evaluate(policy_input)
        samples[one_pass].append(time.thread_time_ns() - started)
    return {k: statistics.median(v) / 1e3 for k, v in samples.items()}


def _less(before: float, after: float) -> str:
    return f"{(1 - after / before) * 100:.1f} % less"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    with tempfile.TemporaryDirectory(prefix="answer-check-ab-") as scratch:
        base, head, replays = _sides(Path(scratch), n)
    switch = _Switch(base, head)
    gc.set_threshold(100_000, 50, 1000)  # as impact replay runs
    cpu = replay_cpu(Judge(base, head), replays, switch)
    print(f"{len(replays)} distinct replays, load {os.getloadavg()[0]:.2f}: two passes {cpu[False] * 1e3:.3f} ms "
          f"CPU a replay, one pass {cpu[True] * 1e3:.3f} ms ({_less(cpu[False], cpu[True])})")
    caller = Caller(key_id="bench", role="app")
    mixes = {"six realistic": [base.input_for(DecisionRequest.model_validate(w), caller) for w in WORKLOADS],
             "200 random": policy_inputs(base.bundle, 200, seed=5)}
    for name, inputs in mixes.items():
        p50 = evaluate_p50(base, inputs, switch, 1_200)
        print(f"ActivePolicy.evaluate CPU p50, {name}, load {os.getloadavg()[0]:.2f}: two passes {p50[False]:.1f} µs, "
              f"one pass {p50[True]:.1f} µs ({_less(p50[False], p50[True])})")


if __name__ == "__main__":
    main()

"""Instructions executed per first evaluation, counted by valgrind (callgrind): a figure the
shared machine's load does not move, for before/after comparisons of the pack.

    python bench/instructions.py                     # reference catalog: HEAD~'s *.rego and this checkout's
    python bench/instructions.py --baseline e53a018 --evaluations 120

It runs ``valgrind --tool=callgrind`` on a small driver four times (each pack with 0 and with N
evaluations of the six realistic workloads of bench/inprocess.py, uncached) and reports
(instructions with N − instructions with 0) / N: the x86 instructions one evaluation executes,
start-up excluded. PYTHONHASHSEED is fixed so that the runs are alike. Needs valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.first_eval_bench import baseline_bundle  # noqa: E402

DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from bench.inprocess import WORKLOADS
from policy import Caller, DecisionRequest, load_policy
policy = load_policy(sys.argv[1])
inputs = [policy.input_for(DecisionRequest.model_validate(w), Caller(key_id="bench", role="app")) for w in WORKLOADS]
for i in inputs:
    policy.engine.evaluate(i)
for k in range(int(sys.argv[2])):
    policy.engine.evaluate(inputs[k % len(inputs)])
"""


def collected(driver: Path, bundle: Path, n: int, out: Path) -> int:
    run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(driver),
                          str(bundle), str(n)], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
                         check=True)
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~")
    parser.add_argument("--evaluations", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        driver = work / "driver.py"
        driver.write_text(DRIVER.format(repo=str(REPO)))
        packs = {f"baseline ({args.baseline})": baseline_bundle(args.baseline, work / "base"),
                 "this checkout": REPO / "rego"}
        jobs = {(name, n): (bundle, n) for name, bundle in packs.items() for n in (0, args.evaluations)}
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = dict(zip(jobs, pool.map(lambda kv: collected(driver, kv[1][0], kv[1][1], work / f"cg.{kv[0][1]}.{abs(hash(kv[0][0]))}"),
                                             jobs.items()), strict=True))
    per = {name: (counts[(name, args.evaluations)] - counts[(name, 0)]) / args.evaluations for name in packs}
    for name, value in per.items():
        print(f"{name:<24}{value / 1e6:8.2f} M instructions per evaluation")
    print(json.dumps({"evaluations": args.evaluations, "instructions_per_evaluation": per}, indent=2))


if __name__ == "__main__":
    main()

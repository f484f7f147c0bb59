"""Instructions executed per first evaluation, counted by valgrind (callgrind): a figure the
shared machine's load does not move, for before/after comparisons of the pack.

    python bench/instructions.py                     # reference catalog: HEAD~'s *.rego and this checkout's
    python bench/instructions.py --baseline e53a018 --evaluations 120
    python bench/instructions.py --baseline-tree /tmp/base --checked   # another checkout's code and pack

It runs ``valgrind --tool=callgrind`` on a small driver four times (each pack with 0 and with N
evaluations of the six realistic workloads of bench/inprocess.py, uncached) and reports
(instructions with N − instructions with 0) / N: the x86 instructions one evaluation executes,
start-up excluded. PYTHONHASHSEED is fixed so that the runs are alike. Needs valgrind.

``--checked`` counts ``ActivePolicy.evaluate`` (the engine plus the answer's decode and check)
instead of ``RegorusEngine.evaluate``; ``--baseline-tree`` compares with another checkout (code
and pack, run by its own ``.venv`` when it has one) instead of another revision's pack.
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.first_eval_bench import baseline_bundle  # noqa: E402

DRIVER = """
import sys
sys.path.insert(0, sys.argv[3])
from bench.inprocess import WORKLOADS
from policy import Caller, DecisionRequest, load_policy
policy = load_policy(sys.argv[1])
evaluate = policy.evaluate if sys.argv[4] == "checked" else policy.engine.evaluate
inputs = [policy.input_for(DecisionRequest.model_validate(w), Caller(key_id="bench", role="app")) for w in WORKLOADS]
for i in inputs:
    evaluate(i)
for k in range(int(sys.argv[2])):
    evaluate(inputs[k % len(inputs)])
"""


@dataclass(frozen=True)
class Side:
    """What one count runs: a pack, with the code of a checkout, by a Python."""

    bundle: Path
    repo: Path
    python: str


def tree_side(tree: Path) -> Side:
    venv = tree / ".venv" / "bin" / "python"
    return Side(tree / "rego", tree, str(venv) if venv.exists() else sys.executable)


def collected(driver: Path, side: Side, n: int, out: Path, mode: str) -> int:
    run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", side.python, str(driver),
                          str(side.bundle), str(n), str(side.repo), mode], capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~")
    parser.add_argument("--evaluations", type=int, default=120)
    parser.add_argument("--baseline-tree", type=Path, help="another checkout (code and pack) to compare with")
    parser.add_argument("--checked", action="store_true", help="count ActivePolicy.evaluate (decode and check included)")
    args = parser.parse_args()
    mode = "checked" if args.checked else "engine"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        driver = work / "driver.py"
        driver.write_text(DRIVER)
        here = Side(REPO / "rego", REPO, sys.executable)
        packs = ({f"baseline ({args.baseline_tree})": tree_side(args.baseline_tree)} if args.baseline_tree else
                 {f"baseline ({args.baseline})": Side(baseline_bundle(args.baseline, work / "base"), REPO, sys.executable)})
        packs["this checkout"] = here
        jobs = {(name, n): (side, n) for name, side in packs.items() for n in (0, args.evaluations)}
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = dict(zip(jobs, pool.map(lambda kv: collected(driver, kv[1][0], kv[1][1],
                                                                  work / f"cg.{kv[0][1]}.{abs(hash(kv[0][0]))}", mode),
                                             jobs.items()), strict=True))
    per = {name: (counts[(name, args.evaluations)] - counts[(name, 0)]) / args.evaluations for name in packs}
    for name, value in per.items():
        print(f"{name:<40}{value / 1e6:8.3f} M instructions per evaluation ({mode})")
    print(json.dumps({"evaluations": args.evaluations, "measured": mode, "instructions_per_evaluation": per}, indent=2))


if __name__ == "__main__":
    main()

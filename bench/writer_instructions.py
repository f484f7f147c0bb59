"""Instructions the audit writer's process executes per entry, one caller, counted by valgrind
(callgrind): the writer thread's and the checkpoint file thread's Python work per batch of one,
a figure the shared machine's load does not move (PostgreSQL's side is another process, not
counted here: ``bench/writer_latency.py`` reports its CPU).

    python bench/writer_instructions.py                          # this checkout
    python bench/writer_instructions.py --baseline-tree /tmp/base --entries 200

Each side runs ``valgrind --tool=callgrind`` on a small driver twice: a scratch database at the
newest schema, a writer with a checkpoint file, 30 warm-up appends, then 0 or ``--entries``
more from one thread (each waits for its receipt, as one HTTP connection does, and for its note
in the file: without that wait how many notes the file thread skips depends on timing). It reports
(instructions with N − instructions with 0) / N. Needs valgrind and the machine's PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.append_cost import DEFAULT_URL  # noqa: E402

DRIVER = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from audit import AuditStore, AuditWriter, SigningKey, upgrade
from audit.checkpoints import CheckpointPolicy
from bench.append_cost import decision_entries, scratch_database
from bench.inprocess import WORKLOADS
samples = decision_entries(len(WORKLOADS))
with scratch_database(sys.argv[2]) as url, tempfile.TemporaryDirectory() as tmp:
    upgrade(url)
    store = AuditStore.from_url(url)
    writer = AuditWriter(store, key=SigningKey.generate(),
                         checkpoints=CheckpointPolicy(export_path=Path(tmp) / "checkpoint"))
    with writer:
        for i in range(30 + int(sys.argv[3])):
            writer.append(samples[i % len(samples)])
            writer.flush_checkpoint_file()  # every entry's note written: a count timing does not move
    store.dispose()
"""


def python_of(tree: Path) -> str:
    venv = tree / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def collected(driver: Path, tree: Path, database: str, n: int, out: Path, *, valgrind: bool = True) -> int:
    tool = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] if valgrind else []
    run = subprocess.run([*tool, python_of(tree), str(driver), str(tree), database, str(n)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    if not valgrind:
        return 0
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--baseline-tree", type=Path, help="another checkout to compare with")
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--keep", type=Path, help="keep callgrind's output files here (callgrind_annotate)")
    parser.add_argument("--smoke", action="store_true", help="run the driver once without valgrind (it still works)")
    args = parser.parse_args()
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            driver = Path(tmp) / "driver.py"
            driver.write_text(DRIVER)
            collected(driver, REPO, args.database, 2, Path(tmp) / "cg", valgrind=False)
        print("driver ran")
        return
    trees = {"this checkout": REPO}
    if args.baseline_tree:
        trees = {f"baseline ({args.baseline_tree})": args.baseline_tree, **trees}
    per: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "driver.py"
        driver.write_text(DRIVER)
        for name, tree in trees.items():  # one at a time: the runs share the machine's PostgreSQL
            out = args.keep or Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            counts = [collected(driver, tree, args.database, n, out / f"cg.{tree.name}.{n}") for n in (0, args.entries)]
            per[name] = (counts[1] - counts[0]) / args.entries
            print(f"{name:<40}{per[name] / 1e6:8.3f} M instructions per entry", flush=True)
    print(json.dumps({"entries": args.entries, "instructions_per_entry": per}, indent=2))


if __name__ == "__main__":
    main()

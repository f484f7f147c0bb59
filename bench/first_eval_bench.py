"""First evaluation of a new input on the reference catalog: this checkout's pack against the
pack of another git revision, in the same process, and where the time goes.

    python bench/first_eval_bench.py                       # against HEAD~ (the previous commit)
    python bench/first_eval_bench.py --baseline e53a018 --repeat 5 --json OUT.json

Both packs evaluate the same policy inputs (the six realistic workloads of bench/inprocess.py
and 200 random ones of tests/engines/workloads.py) on the reference catalog's data (the
baseline's *.rego with this checkout's data/, so only the rules differ), each through
``ActivePolicy.evaluate`` (the engine and the checks around it, as the service evaluates) with no cache, in runs that alternate between the two so that the
shared machine's load hits both alike. It reports the median over runs of each run's p50, both
in wall-clock time and in the thread's CPU time (``time.thread_time_ns``: what the evaluation
itself costs, without the time the thread waited for a core), and for this checkout a breakdown
of one evaluation: cutting the input to what the pack reads and encoding it (orjson), handing it to the VM, the VM's execution of
``data.clearance.assembly`` (the tables) and the decision assembled from them in Python
(policy/assembly.py), and, for comparison, the VM's execution of the whole
``data.clearance.decision`` with its answer's decode and checks (decoded and checked in one pass
by msgspec; orjson + the TypedDict check for what msgspec refuses), the path of a pack whose
main.rego is not the pinned one; and what recording a new input adds in the service: the
canonical bytes of its input and route lists (RFC 8785; orjson in the subset where it writes the
same bytes, else the pure-Python rfc8785, audit/canonical.py) and its entry's members.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from bench.inprocess import WORKLOADS  # noqa: E402
from policy import ActivePolicy, Caller, DecisionRequest, load_policy  # noqa: E402
from policy.decision import _BODY, _fast_checked  # noqa: E402
import rfc8785  # noqa: E402

from audit import DecisionMembers  # noqa: E402
from audit.canonical import canonical_bytes  # noqa: E402
from policy.answer_text import decodable  # noqa: E402
from policy.assembly import ASSEMBLY_RULE, assembled  # noqa: E402
from policy.engine import ENTRY_POINT, RegorusEngine  # noqa: E402
from policy.input_paths import pruned  # noqa: E402
from tests.engines.workloads import policy_inputs  # noqa: E402


def baseline_bundle(ref: str, dest: Path) -> Path:
    """This checkout's rego/ with the *.rego files of ``ref``."""
    shutil.copytree(REPO / "rego", dest, ignore=shutil.ignore_patterns("*.rego"))
    archive = subprocess.run(["git", "archive", ref, "rego"], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".rego"):
                (dest / Path(member.name).name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    return dest


def reference_mixes(policy: ActivePolicy) -> dict[str, list[dict[str, Any]]]:
    """The inputs judged here (and by ``bench/targets.py``): the six realistic workloads of
    bench/inprocess.py and 200 random inputs of the reference catalog."""
    caller = Caller(key_id="bench", role="app")
    return {"realistic": [policy.input_for(DecisionRequest.model_validate(w), caller) for w in WORKLOADS],
            "random": policy_inputs(policy.bundle, 200, seed=5)}


def run_p50(fn: Callable[[dict[str, Any]], Any], inputs: list[dict[str, Any]], n: int) -> tuple[float, float]:
    wall, cpu = [], []
    for i in range(n):
        policy_input = inputs[i % len(inputs)]
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn(policy_input)
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - w0)
    return statistics.median(wall) / 1e3, statistics.median(cpu) / 1e3


def breakdown(policy: ActivePolicy, inputs: list[dict[str, Any]], n: int) -> dict[str, float]:
    """CPU µs (median) of each step of one evaluation, this checkout."""
    engine = policy.engine
    assert isinstance(engine, RegorusEngine)
    vm = engine._vm()  # noqa: SLF001 - the steps of RegorusEngine.evaluate, one by one
    paths = engine._input_paths  # noqa: SLF001 - the input cut to what the pack reads
    encoded = [orjson.dumps(pruned(i, paths)).decode() for i in inputs]
    answers, tables = [], []
    for text in encoded:  # as the engine hands them to the decoders (policy/answer_text.py)
        vm.set_input_json(text)
        answers.append(decodable(vm.execute_entry_point(ENTRY_POINT), engine._escapes))  # noqa: SLF001
        tables.append(decodable(vm.execute_entry_point(ASSEMBLY_RULE), engine._escapes))  # noqa: SLF001
    model_ids = engine._model_ids[0]  # noqa: SLF001
    checked = [policy.evaluate(i) for i in inputs]
    parts = [(i, a["allowed"], a["denied"]) for i, a in zip(inputs, checked, strict=True)]
    steps: dict[str, Callable[[int], Any]] = {
        "cut and encode input (orjson)": lambda k: orjson.dumps(pruned(inputs[k % len(inputs)], paths)),
        "VM set_input_json": lambda k: vm.set_input_json(encoded[k % len(encoded)]),
        "VM set_input_json + execute (tables)": lambda k: (vm.set_input_json(encoded[k % len(encoded)]),
                                                           vm.execute_entry_point(ASSEMBLY_RULE)),
        "assemble (msgspec decode + Python)": lambda k: assembled(tables[k % len(tables)], model_ids),
        "VM set_input_json + execute (whole decision)": lambda k: (vm.set_input_json(encoded[k % len(encoded)]),
                                                                   vm.execute_entry_point(ENTRY_POINT)),
        "decode answer (orjson)": lambda k: orjson.loads(answers[k % len(answers)]),
        "decode + check (orjson, TypedDicts)": lambda k: _BODY.validate_python(orjson.loads(answers[k % len(answers)])),
        "decode + check (one pass, msgspec)": lambda k: _fast_checked(answers[k % len(answers)]),
        "RegorusEngine.evaluate": lambda k: engine.evaluate(inputs[k % len(inputs)]),
        "ActivePolicy.evaluate (+ checks)": lambda k: policy.evaluate(inputs[k % len(inputs)]),
        # What recording a new input adds in the service (api/decider.py): its entry's members.
        "canonical bytes of input + routes (rfc8785 alone)": lambda k: [rfc8785.dumps(v) for v in parts[k % len(parts)]],
        "canonical bytes of input + routes (canonical_bytes)": lambda k: [canonical_bytes(v) for v in parts[k % len(parts)]],
        "DecisionMembers.encode (recording a new input)": lambda k: DecisionMembers.encode(inputs[k % len(inputs)],
                                                                                          checked[k % len(checked)]),
    }
    out = {}
    for name, step in steps.items():
        samples = []
        for k in range(n):
            c0 = time.thread_time_ns()
            step(k)
            samples.append(time.thread_time_ns() - c0)
        out[name] = round(statistics.median(samples) / 1e3, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~", help="git revision of the pack to compare with")
    parser.add_argument("--repeat", type=int, default=5, help="alternating runs per pack")
    parser.add_argument("--evaluations", type=int, default=600, help="evaluations per run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    current = load_policy(REPO / "rego")
    reference = reference_mixes(current)
    realistic, random_inputs = reference["realistic"], reference["random"]
    with tempfile.TemporaryDirectory() as tmp:
        baseline = load_policy(baseline_bundle(args.baseline, Path(tmp) / "rego"))
    packs = {f"baseline ({args.baseline})": baseline, "this checkout": current}
    mixes = {"six realistic workloads": realistic, "200 random inputs": random_inputs}
    for policy in packs.values():  # warm-up, and the same answers
        for policy_input in realistic + random_inputs[:50]:
            policy.engine.evaluate(policy_input)
    for policy_input in realistic + random_inputs:
        assert baseline.engine.evaluate(policy_input) == current.engine.evaluate(policy_input)
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {(p, m): [] for p in packs for m in mixes}
    for _ in range(args.repeat):
        for mix, inputs in mixes.items():
            for name, policy in packs.items():
                runs[(name, mix)].append(run_p50(policy.evaluate, inputs, args.evaluations))
    rows = [{"pack": p, "inputs": m, "wall_p50_us": round(statistics.median(r[0] for r in v), 1),
             "cpu_p50_us": round(statistics.median(r[1] for r in v), 1),
             "runs_cpu_p50_us": [round(r[1], 1) for r in v]} for (p, m), v in runs.items()]
    report = {"routes": current.route_count(), "models": len(current.bundle.catalog.models), "rows": rows,
              "breakdown_cpu_us": breakdown(current, realistic, args.evaluations)}
    print(f"{'pack':<22}{'inputs':<26}{'wall p50 µs':>12}{'cpu p50 µs':>12}")
    for r in rows:
        print(f"{r['pack']:<22}{r['inputs']:<26}{r['wall_p50_us']:>12}{r['cpu_p50_us']:>12}")
    for step, us in report["breakdown_cpu_us"].items():
        print(f"  {step:<54}{us:>8} µs")
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()

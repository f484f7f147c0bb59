"""What "a smaller answer from the VM" would save (docs/performance.md, "Engine (first
evaluation of an input)"): a prototype, not the engine's path.

    python bench/small_answer.py                      # same answers on 6 + 400 inputs
    python bench/small_answer.py --instructions 120   # and callgrind counts of both paths

The prototype evaluates, on the RVM, only the tables main.rego assembles the decision from
(``denials``, ``obligations`` and the cleared routes' ranking keys in order, ``ordered``), added
to a scratch copy of rego/ as ``data.clearance.probe.tables``, and assembles the contract's
lists in Python the way main.rego does (a model's reasons: the workload's merged with its own;
a route's: its model's merged with its own; codes and obligations sorted; the routes in the
catalog's order), then checks the result with ActivePolicy's TypedDict check. It verifies that
the answers are those of ``ActivePolicy.evaluate`` (equal JSON) and counts, with callgrind, the
x86 instructions of one evaluation on each path, everything in the process included (input
encoding, VM, decoding, assembly, checks).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
import regorus  # noqa: E402

from bench.inprocess import WORKLOADS  # noqa: E402
from policy import ActivePolicy, Caller, DecisionRequest, load_policy  # noqa: E402
from policy.decision import _BODY  # noqa: E402
from policy.engine import with_derived  # noqa: E402
from tests.engines.workloads import policy_inputs  # noqa: E402

PROBE = """package clearance.probe

import rego.v1

tables := {"denials": data.clearance.denials, "obligations": data.clearance.obligations,
	"ordered": data.clearance.ordered}
"""
TABLES = "data.clearance.probe.tables"


def _sorted_reasons(found: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"code": code, "message": found[code]} for code in sorted(found)]


def assemble(tables: dict[str, Any], routes: list[tuple[str, list[str]]], model_ids: list[str]) -> dict[str, Any]:
    """main.rego's ``decision`` from its tables (model_found, model_reasons, route_reasons,
    denied, allowed, outcome)."""
    denials, obligations = tables["denials"], tables["obligations"]
    workload, by_model, by_route = denials["workload"], denials["model"], denials["route"]
    found = {m: {**workload, **by_model.get(m, {})} for m in model_ids} if workload else by_model
    model_reasons = {m: _sorted_reasons(f) for m, f in found.items()}
    denied = []
    for mid, deployments in routes:
        own, model_found, model_level = by_route.get(mid, {}), found.get(mid, {}), model_reasons.get(mid)
        for did in deployments:
            route_level = own.get(did)
            reasons = _sorted_reasons({**model_found, **route_level}) if route_level is not None else model_level
            if reasons is not None:
                denied.append({"model": mid, "deployment": did, "reasons": reasons})
    o_workload, o_model, o_route = obligations["workload"], obligations["model"], obligations["route"]
    allowed = [{"model": k[2], "deployment": k[3], "rank": rank, "price_per_mtok": k[1], "provenance": k[4],
                "obligations": sorted([*o_workload.values(), *o_model.get(k[2], {}).values(),
                                       *o_route.get(k[2], {}).get(k[3], {}).values()])}
               for rank, k in enumerate(tables["ordered"], start=1)]
    return {"outcome": "allow" if allowed else "deny", "allowed": allowed, "denied": denied}


class SmallAnswer:
    """The prototype path for one bundle directory (its copy gets the probe module)."""

    def __init__(self, bundle_dir: Path) -> None:
        self.policy = load_policy(bundle_dir)
        modules = sorted(self.policy.bundle.modules.items())
        document = with_derived([self.policy.bundle.data_document()], modules)[0]
        self.routes = [(entry[0], list(entry[1])) for entry in document["derived"]["ranking"]["deployments"]]
        self.model_ids = [m["id"] for m in document["models"]]
        data_json = orjson.dumps(document).decode()
        program = regorus.Program.compile_from_modules(data_json, modules, [TABLES])
        self.vm = regorus.Rvm()
        self.vm.load_program(program)
        self.vm.set_data_json(data_json)

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        self.vm.set_input_json(orjson.dumps(policy_input).decode())
        tables = orjson.loads(self.vm.execute_entry_point(TABLES))
        return dict(_BODY.validate_python(assemble(tables, self.routes, self.model_ids)))


def scratch_pack(dest: Path) -> Path:
    shutil.copytree(REPO / "rego", dest)
    (dest / "probe.rego").write_text(PROBE)
    return dest


def inputs_of(policy: ActivePolicy, random_inputs: int) -> list[dict[str, Any]]:
    caller = Caller(key_id="bench", role="app")
    return ([policy.input_for(DecisionRequest.model_validate(w), caller) for w in WORKLOADS]
            + policy_inputs(policy.bundle, random_inputs, seed=5))


def _count(pack: Path, mode: str, n: int, out: Path) -> int:
    run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                          "--pack", str(pack), "--driver", mode, "--driver-n", str(n)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))  # type: ignore[union-attr]


def _drive(pack: Path, mode: str, n: int) -> None:
    small = SmallAnswer(pack)
    inputs = inputs_of(small.policy, 0)
    evaluate = small.evaluate if mode == "small" else small.policy.evaluate
    for policy_input in inputs:
        evaluate(policy_input)
    for k in range(n):
        evaluate(inputs[k % len(inputs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=400, help="random inputs besides the six realistic ones")
    parser.add_argument("--instructions", type=int, default=0, help="evaluations per callgrind count (0: none)")
    parser.add_argument("--pack", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--driver", choices=("small", "current"), help=argparse.SUPPRESS)
    parser.add_argument("--driver-n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        _drive(args.pack, args.driver, args.driver_n)
        return
    with tempfile.TemporaryDirectory() as tmp:
        pack = scratch_pack(Path(tmp) / "rego")
        small = SmallAnswer(pack)
        inputs = inputs_of(small.policy, args.inputs)
        for policy_input in inputs:
            expected = orjson.dumps(small.policy.evaluate(policy_input))
            assert orjson.dumps(small.evaluate(policy_input)) == expected, policy_input
        print(f"same answers (equal JSON) on {len(inputs)} inputs")
        if args.instructions:
            jobs = {(mode, n): Path(tmp) / f"cg.{mode}.{n}" for mode in ("current", "small") for n in (0, args.instructions)}
            counts = {job: _count(pack, job[0], job[1], out) for job, out in jobs.items()}
            for mode, label in (("current", "ActivePolicy.evaluate"), ("small", "tables on the VM + Python assembly")):
                per = (counts[(mode, args.instructions)] - counts[(mode, 0)]) / args.instructions
                print(f"{label:<40}{per / 1e6:8.3f} M instructions per evaluation (six realistic workloads)")


if __name__ == "__main__":
    main()

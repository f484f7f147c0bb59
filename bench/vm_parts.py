"""Where the VM's instructions go: x86 instructions per evaluation of parts of the pack, the VM
alone (``set_input_json`` + ``execute_entry_point``), counted by valgrind (callgrind).

    python bench/vm_parts.py                                  # the decision and its parts, this checkout's pack
    python bench/vm_parts.py --pack /tmp/base/rego count:data.clearance.denials data.clearance.decision

An ENTRY is a rule evaluated as the entry point (its answer serialised, as the engine does), or
``count:RULE`` (``count(RULE)``, so that the answer is small: the part and what it depends on),
or ``expr:REGO`` (any expression, e.g. a probe of one construct's cost). Each entry is compiled
into its own program with the bundle's data and its ``data.derived``, as the engine does,
evaluated once on each of the six realistic workloads of bench/inprocess.py, then
``--evaluations`` times inside one ``functools.reduce`` call; callgrind counts only inside
that call (``--toggle-collect``) and dumps once per entry, so one valgrind run measures every
entry without start-up or compilation. PYTHONHASHSEED is fixed. Needs valgrind.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PARTS = ["expr:0", "count:data.clearance.denials", "count:data.clearance.obligations", "count:data.clearance.model_found",
         "count:data.clearance.model_reasons", "count:data.clearance.route_reasons", "count:data.clearance.denied",
         "count:data.clearance.cleared", "count:data.clearance.ordered", "count:data.clearance.allowed",
         "count:data.clearance.decision", "data.clearance.decision"] + [
    f"count:data.clearance.{module}.deny"
    for module in ("licence", "fitness", "regulatory", "capability", "provenance", "residency", "availability")]


def prepared(pack: Path) -> dict[str, object]:
    """The pack's modules, its data with ``data.derived``, and the six inputs as JSON texts."""
    sys.path.insert(0, str(REPO))
    import orjson

    from bench.inprocess import WORKLOADS
    from policy import Caller, DecisionRequest, load_policy
    from policy.engine import with_derived

    policy = load_policy(pack)
    modules = sorted(policy.bundle.modules.items())
    document = with_derived([policy.bundle.data_document()], modules)[0]
    caller = Caller(key_id="bench", role="app")
    return {"modules": modules, "data": orjson.dumps(document).decode(),
            "inputs": [orjson.dumps(policy.input_for(DecisionRequest.model_validate(w), caller)).decode()
                       for w in WORKLOADS]}


def _probe(entry: str) -> tuple[str, str | None]:
    """(entry point, probe module or None) for an ENTRY."""
    for prefix, body in (("count:", "n := count({})"), ("expr:", "n := {}")):
        if entry.startswith(prefix):
            return "data.clearance.probe.n", f"package clearance.probe\nimport rego.v1\n{body.format(entry[len(prefix):])}\n"
    return entry, None


def _drive(prep_file: Path, n: int, entries: list[str]) -> None:
    import regorus

    prep = json.loads(prep_file.read_text())
    runs = []
    for entry in entries:
        point, probe = _probe(entry)
        modules = [tuple(m) for m in prep["modules"]] + ([("probe.rego", probe)] if probe else [])
        vm = regorus.Rvm()
        vm.load_program(regorus.Program.compile_from_modules(prep["data"], modules, [point]))
        vm.set_data_json(prep["data"])
        for text in prep["inputs"]:
            vm.set_input_json(text)
            vm.execute_entry_point(point)
        runs.append((vm, point))
    inputs = [prep["inputs"][k % len(prep["inputs"])] for k in range(n)]
    for vm, point in runs:
        def step(acc: None, text: str, vm=vm, point=point) -> None:  # type: ignore[no-untyped-def]
            vm.set_input_json(text)
            vm.execute_entry_point(point)
            return acc
        functools.reduce(step, inputs, None)  # callgrind counts inside this call only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("entries", nargs="*", metavar="ENTRY", help="default: the decision and its parts")
    parser.add_argument("--pack", type=Path, default=REPO / "rego", help="a bundle directory")
    parser.add_argument("--evaluations", type=int, default=30)
    parser.add_argument("--driver", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    entries = args.entries or PARTS
    if args.driver:
        _drive(args.driver, args.evaluations, entries)
        return
    with tempfile.TemporaryDirectory() as tmp:
        prep_file = Path(tmp) / "prep.json"
        prep_file.write_text(json.dumps(prepared(args.pack)))
        out = Path(tmp) / "cg"
        subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
                        "--dump-after=functools_reduce", f"--callgrind-out-file={out}", sys.executable, __file__,
                        "--driver", str(prep_file), "--evaluations", str(args.evaluations), *entries],
                       capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
        if not Path(f"{out}.1").exists():
            sys.exit(f"callgrind found no functools_reduce in {sys.executable} (a stripped build, as Debian's "
                     "python3 is): run this with a Python that keeps its symbols (pyenv's, a venv of it)")
        for i, entry in enumerate(entries, start=1):
            dump = Path(f"{out}.{i}").read_text()
            total = next(int(line.split()[1]) for line in dump.splitlines() if line.startswith(("totals:", "summary:")))
            print(f"{entry:<56}{total / args.evaluations / 1e3:9.0f} k instructions per evaluation")


if __name__ == "__main__":
    main()

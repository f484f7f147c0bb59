"""Same answers from two packs: this checkout's rego/ against another checkout's, on many inputs.

    python bench/pack_equivalence.py --baseline-tree /tmp/base          # 6 + 400 inputs, 2 synthetic catalogs
    python bench/pack_equivalence.py --baseline-tree /tmp/base --random 1000 --synthetic 30,60

For a change that should make the pack cheaper without changing an answer. The baseline's
answers come from its own code and pack (run by its own ``.venv`` when it has one), as
``ActivePolicy.evaluate`` gives them (the engine's answer checked: what every path uses). This
checkout's pack is evaluated three ways, and each must give the baseline's answer as the same
JSON bytes (key order included):

* ``ActivePolicy.evaluate`` (the RVM with ``data.derived``, or parts for a large catalog; the
  decision assembled in Python when main.rego is the pinned one, policy/assembly.py);
* regorus' interpreter on the same data (``data.derived`` included);
* the interpreter without ``data.derived``: the pack computes its catalog tables itself, as in
  the rego tests and on OPA.

(The interpreter's answers are checked as ``ActivePolicy`` checks answers, a price of ``30``
becoming ``30.0``, and compared with their keys sorted: the interpreter's objects have their keys
in order, a checked answer the contract's order; lists and values must be equal.)

Inputs: the six realistic workloads of bench/inprocess.py and ``--random`` of
tests/engines/workloads.py on the reference catalog, and ``--random // 4`` on each synthetic
catalog of bench/synthetic.py (``--synthetic``; sizes over 24 models, or 96 when the decision is
assembled in Python, are judged in parts).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _answers(tree: Path, bundle: Path, inputs: Path) -> list[bytes]:
    """The answers of ``tree``'s code and pack (the pack's .rego files copied into ``bundle``)."""
    python = tree / ".venv" / "bin" / "python"
    run = subprocess.run([str(python) if python.exists() else sys.executable, __file__, "--driver", str(tree),
                          str(bundle), str(inputs)], capture_output=True, check=True)
    return run.stdout.splitlines()


def _drive(tree: Path, bundle: Path, inputs: Path) -> None:
    sys.path.insert(0, str(tree))
    import orjson

    from policy import load_policy

    policy = load_policy(bundle)
    out = sys.stdout.buffer
    for policy_input in orjson.loads(inputs.read_bytes()):
        out.write(orjson.dumps(policy.evaluate(policy_input)) + b"\n")


def _with_pack(tree: Path, data: Path, dest: Path) -> Path:
    """A bundle of ``tree``'s modules (tests left out) and the data directory ``data``."""
    dest.mkdir(parents=True)
    for module in (tree / "rego").glob("*.rego"):
        if not module.name.endswith("_test.rego"):
            shutil.copy(module, dest / module.name)
    shutil.copytree(data, dest / "data")
    return dest


def _interpreted(bundle: Path, inputs: list[dict[str, Any]], *, derived: bool) -> list[bytes]:
    import orjson
    import regorus

    from policy import load_policy
    from policy.decision import _checked
    from policy.engine import ENTRY_POINT, decision_document

    loaded = load_policy(bundle).bundle
    engine = regorus.Engine()
    for name, text in sorted(loaded.modules.items()):
        engine.add_policy(name, text)
    engine.add_data_json(orjson.dumps(decision_document(loaded) if derived else loaded.data_document()).decode())
    answers = []
    for policy_input in inputs:
        engine.set_input_json(orjson.dumps(policy_input).decode())
        checked = _checked(orjson.loads(engine.eval_rule_as_json(ENTRY_POINT)))  # as ActivePolicy checks it
        answers.append(orjson.dumps(checked, option=orjson.OPT_SORT_KEYS))
    return answers


def compare(baseline: Path, data: Path, inputs: list[dict[str, Any]], work: Path, label: str) -> int:
    """Checks this checkout's pack against ``baseline``'s on ``inputs``; the number of answers."""
    import orjson

    inputs_file = work / f"{label}.inputs.json"
    inputs_file.write_bytes(orjson.dumps(inputs))
    expected = _answers(baseline, _with_pack(baseline, data, work / f"{label}.base"), inputs_file)
    mine = _with_pack(REPO, data, work / f"{label}.here")
    paths = {"ActivePolicy.evaluate": _answers(REPO, mine, inputs_file),
             "interpreter, data.derived": _interpreted(mine, inputs, derived=True),
             "interpreter, no data.derived": _interpreted(mine, inputs, derived=False)}
    for path, answers in paths.items():
        assert len(answers) == len(expected), (label, path)
        wanted = expected if path == "ActivePolicy.evaluate" else [
            orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS) for text in expected]
        for policy_input, want, got in zip(inputs, wanted, answers, strict=True):
            if want != got:
                at = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
                start = max(0, at - 80)
                sys.exit(f"{label}, {path}: a different answer for the workload {json.dumps(policy_input['workload'])}"
                         f" of app {policy_input['app']['id']}, from byte {at}:\n"
                         f"baseline:  {want[start:at + 400].decode(errors='replace')}\n"
                         f"this pack: {got[start:at + 400].decode(errors='replace')}")
    return len(inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-tree", type=Path, help="the other checkout (code and pack)")
    parser.add_argument("--random", type=int, default=400, help="random inputs on the reference catalog")
    parser.add_argument("--synthetic", default="17,30", help="synthetic catalog sizes, comma-separated ('' for none)")
    parser.add_argument("--driver", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        _drive(*args.driver)
        return
    if args.baseline_tree is None:
        parser.error("--baseline-tree is required")
    sys.path.insert(0, str(REPO))
    from bench.inprocess import WORKLOADS
    from bench.synthetic import write_bundle
    from policy import Caller, DecisionRequest, load_policy
    from tests.engines.workloads import policy_inputs

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        reference = load_policy(REPO / "rego")
        caller = Caller(key_id="bench", role="app")
        inputs = ([reference.input_for(DecisionRequest.model_validate(w), caller) for w in WORKLOADS]
                  + policy_inputs(reference.bundle, args.random, seed=5))
        done = {"reference catalog": compare(args.baseline_tree, REPO / "rego" / "data", inputs, work, "reference")}
        for size in [int(s) for s in args.synthetic.split(",") if s]:
            bundle = write_bundle(size, work / f"synthetic{size}.src")
            synthetic = policy_inputs(load_policy(bundle).bundle, max(1, args.random // 4), seed=size)
            done[f"synthetic catalog of {size} models"] = compare(args.baseline_tree, bundle / "data", synthetic, work,
                                                                   f"synthetic{size}")
    for label, n in done.items():
        print(f"{label}: the same answers (equal JSON) on {n} inputs, three paths")


if __name__ == "__main__":
    main()

"""``clearance policy test``: run the pack's ``test_*`` rules like ``opa test``, with coverage.

A test is a rule named ``test_*`` (not a function, not a partial rule) in a ``*_test.rego``
module; it passes when it evaluates to ``true``. Tests are found in the modules' syntax trees
(regorus ``get_ast_as_json``), not by pattern matching the text.

The regorus engine (default) evaluates every test in one interpreter holding all modules and
the bundle's validated ``data`` (``input`` is left undefined, as ``opa test`` leaves it), with
coverage on: regorus reports, per module, the Rego lines that evaluation reached and those it
did not. Coverage is reported for the policy modules (tests excluded) and in total.

``engine="opa"`` evaluates the same tests through an OPA server (:func:`run_rego_tests_opa`, which
installs the bundle as ``policy.opa`` does); OPA's REST API reports no coverage, so coverage
needs the regorus engine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import regorus

from policy.bundle import Bundle, load_bundle
from policy.engine import OPA_TIMEOUT

Status = Literal["PASS", "FAIL", "ERROR"]
EngineName = Literal["regorus", "opa"]
_RULE_LINE = "-" * 80
_LOCATION = re.compile(r"-->\s*(\S+?:\d+:\d+)")
_MESSAGE = re.compile(r"^error:\s*(.+)$", re.M)


@dataclass(frozen=True, order=True)
class RegoTest:
    file: str  # path relative to the bundle root
    package: str  # e.g. clearance.licence_test
    rule: str  # e.g. test_mau_above_cap_is_denied
    line: int

    @property
    def ref(self) -> str:
        return f"data.{self.package}.{self.rule}"


@dataclass(frozen=True)
class TestResult:
    test: RegoTest
    status: Status
    seconds: float
    message: str | None = None  # what it evaluated to instead of true, or the error

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class FileCoverage:
    file: str
    covered: frozenset[int]
    not_covered: frozenset[int]

    @property
    def lines(self) -> int:
        return len(self.covered) + len(self.not_covered)

    @property
    def percent(self) -> float:
        return 100.0 * len(self.covered) / self.lines if self.lines else 100.0


@dataclass(frozen=True)
class Coverage:
    files: tuple[FileCoverage, ...]

    @property
    def covered(self) -> int:
        return sum(len(f.covered) for f in self.files)

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.lines if self.lines else 100.0


@dataclass(frozen=True)
class TestRun:
    engine: str
    results: tuple[TestResult, ...]
    coverage: Coverage | None = None
    seconds: float = 0.0
    root: str = field(default="")

    __test__ = False

    def shown(self, rel: str) -> str:
        """A module's path as the user named the bundle (``rego/licence.rego``)."""
        return (Path(self.root) / rel).as_posix() if self.root else rel

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status == "PASS" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "engine": self.engine,
            "root": self.root,
            "seconds": round(self.seconds, 6),
            "summary": {s.lower(): self.count(s) for s in ("PASS", "FAIL", "ERROR")} | {"total": len(self.results)},
            "tests": [
                {"file": r.test.file, "line": r.test.line, "package": r.test.package, "name": r.test.rule,
                 "status": r.status, "seconds": round(r.seconds, 6), "message": r.message}
                for r in self.results
            ],
        }
        if self.coverage is not None:
            out["coverage"] = {
                "percent": round(self.coverage.percent, 2),
                "covered": self.coverage.covered,
                "lines": self.coverage.lines,
                "files": [
                    {"file": f.file, "percent": round(f.percent, 2), "covered": len(f.covered), "lines": f.lines,
                     "not_covered": sorted(f.not_covered)}
                    for f in self.coverage.files
                ],
            }
        return out


# -- discovery ---------------------------------------------------------------------------------


def discover_tests(test_sources: Mapping[str, str]) -> list[RegoTest]:
    """Every ``test_*`` rule definition of these modules (relative path -> text), in order.

    A name defined twice in one package is listed twice (``policy check`` refuses that).
    Raises ``RuntimeError`` (regorus' parse error) for a module that does not parse.
    """
    found: list[RegoTest] = []
    for rel, text in sorted(test_sources.items()):
        engine = regorus.Engine()
        engine.add_policy(rel, text)
        (module,) = orjson.loads(engine.get_ast_as_json())
        ast = module["ast"]
        package = _ref_text(ast["package"]["refr"])
        for rule in ast.get("rules", []):
            head = rule.get("Spec", {}).get("head", {}).get("Compr")
            ref = head.get("refr", {}).get("Var") if head else None
            if ref and str(ref["value"]).startswith("test_"):
                found.append(RegoTest(file=rel, package=package, rule=ref["value"], line=ref["span"]["line"]))
    return found


def _ref_text(node: dict[str, Any]) -> str:
    """``clearance.licence_test`` from a package reference node (Var / RefDot chain)."""
    if "Var" in node:
        return str(node["Var"]["value"])
    dot = node["RefDot"]
    return f"{_ref_text(dot['refr'])}.{dot['field'][1]}"


# -- running -----------------------------------------------------------------------------------


def run_tests(
    root: Path | str,
    *,
    coverage: bool = False,
    engine: EngineName = "regorus",
    opa_url: str | None = None,
    timeout: float = 30.0,
) -> TestRun:
    """Run every test of the bundle in ``root``; raises ``BundleError`` if it does not load.

    :param coverage: collect Rego line coverage (regorus only).
    :param engine: ``regorus`` (in-process) or ``opa`` (the server at ``opa_url``).
    :param timeout: seconds per request to the OPA server.
    """
    bundle = load_bundle(root)
    started = time.perf_counter()
    tests = discover_tests(bundle.test_modules)
    if engine == "opa":
        if coverage:
            raise ValueError("coverage needs the regorus engine: OPA's REST API reports no coverage")
        results = _run_opa(bundle, tests, opa_url=opa_url, timeout=timeout)
        cov = None
    elif engine == "regorus":
        results, cov = _run_regorus(bundle, tests, coverage=coverage)
    else:
        raise ValueError(f"engine must be 'regorus' or 'opa', not {engine!r}")
    return TestRun(engine=engine, results=tuple(results), coverage=cov,
                   seconds=time.perf_counter() - started, root=bundle.root.as_posix())


def run_bundle_tests(bundle: Bundle) -> list[TestResult]:
    """Every test of an already loaded bundle (regorus, no coverage): what a reload requires."""
    return _run_regorus(bundle, discover_tests(bundle.test_modules), coverage=False)[0]


def _interpreter(bundle: Bundle, *, coverage: bool) -> Any:
    engine = regorus.Engine()
    engine.set_enable_coverage(coverage)
    for rel, text in sorted({**bundle.modules, **bundle.test_modules}.items()):
        engine.add_policy(rel, text)
    engine.add_data_json(orjson.dumps(bundle.data_document()).decode())
    return engine


def _run_regorus(bundle: Bundle, tests: Sequence[RegoTest], *, coverage: bool) -> tuple[list[TestResult], Coverage | None]:
    engine = _interpreter(bundle, coverage=coverage)
    results = []
    for test in tests:
        started = time.perf_counter()
        try:
            value = orjson.loads(engine.eval_rule_as_json(test.ref))
        except Exception as exc:  # a runtime error in the test or the rules it calls
            results.append(TestResult(test, "ERROR", time.perf_counter() - started, _first_line(exc)))
            continue
        elapsed = time.perf_counter() - started
        if value is True:
            results.append(TestResult(test, "PASS", elapsed))
        else:
            shown = "undefined" if value == "<undefined>" else orjson.dumps(value).decode()[:200]
            results.append(TestResult(test, "FAIL", elapsed, f"evaluated to {shown}, not true"))
    cov = _coverage(engine, bundle) if coverage else None
    return results, cov


def _coverage(engine: Any, bundle: Bundle) -> Coverage:
    report = orjson.loads(engine.get_coverage_report_as_json())
    by_file = {f["path"]: f for f in report.get("files", [])}
    files = []
    for rel in sorted(bundle.modules):  # policy modules only: tests covering tests is noise
        entry = by_file.get(rel) or _never_evaluated(bundle, rel)
        files.append(FileCoverage(file=rel, covered=frozenset(entry.get("covered", ())),
                                  not_covered=frozenset(entry.get("not_covered", ()))))
    return Coverage(files=tuple(files))


def _never_evaluated(bundle: Bundle, rel: str) -> dict[str, Any]:
    """A module no test reached is absent from regorus' report; evaluate its package once in a
    separate engine just to learn which lines are coverable, and count them all as not covered."""
    engine = _interpreter(bundle, coverage=True)
    try:
        (module,) = orjson.loads(_single_ast(rel, bundle.modules[rel]))
        engine.eval_query_as_json("data." + _ref_text(module["ast"]["package"]["refr"]))
    except Exception:
        pass  # a package that cannot evaluate without input still had its lines visited
    entry = next((f for f in orjson.loads(engine.get_coverage_report_as_json()).get("files", []) if f["path"] == rel), None)
    lines = set(entry.get("covered", ())) | set(entry.get("not_covered", ())) if entry else set()
    return {"covered": [], "not_covered": sorted(lines)}


def _single_ast(rel: str, text: str) -> str:
    engine = regorus.Engine()
    engine.add_policy(rel, text)
    return str(engine.get_ast_as_json())


def _run_opa(bundle: Bundle, tests: Sequence[RegoTest], *, opa_url: str | None, timeout: float) -> list[TestResult]:
    if not opa_url:
        raise ValueError("the opa engine needs the server's URL (--opa-url or CLEARANCE_OPA_URL)")
    return run_rego_tests_opa(bundle, opa_url, timeout)


def run_rego_tests_opa(bundle: Bundle, url: str, timeout: float = OPA_TIMEOUT, *,
                       push_timeout: float | None = None) -> list[TestResult]:
    """Run every Rego test of ``bundle`` through the OPA at ``url``; one result per test.

    Pushes the modules and data as ``OpaEngine`` does, plus the ``*_test.rego`` modules, then
    asks ``POST /v1/data/<package>/<rule>`` for each test with ``input`` null (undefined, as
    ``opa test`` leaves it); a test passes when the answer is ``true``. One result per test,
    in discovery order. Afterwards the test modules are deleted, and so is everything else that
    was pushed if this revision was not installed before. An OPA holding another Clearance
    revision is refused (``OpaError``).
    """
    from policy.opa import PUSH_TIMEOUT, Installer, OpaTarget, policy_id  # loads opa-python-client

    target = OpaTarget.parse(url)
    installer = Installer(target, bundle, timeout=push_timeout or PUSH_TIMEOUT)
    tests = discover_tests(bundle.test_modules)  # the same discovery as the embedded runner
    pushed_tests = [policy_id(bundle.revision, p) for p in sorted(bundle.test_modules)]
    client = target.client(timeout=timeout, retries=1)
    try:
        existing = installer.install({**bundle.modules, **bundle.test_modules}, replace=False)
        try:
            return [_run_one_opa(client, test, url=target.url, timeout=timeout) for test in tests]
        finally:
            installer.delete(pushed_tests)
            if not any(i.startswith(installer.prefix) for i in existing):
                installer.remove_revision(bundle.modules)
    finally:
        client.close_connection()
        installer.close()


def _run_one_opa(client: Any, test: RegoTest, *, url: str, timeout: float) -> TestResult:
    import requests

    from policy.opa import STRICT_QUERY, OpaError, explain

    started = time.perf_counter()

    def result(status: Status, message: str | None) -> TestResult:
        return TestResult(test, status, time.perf_counter() - started, message)

    try:
        # input null: left undefined, as `opa test` leaves it
        body = client.query_rule(None, test.package, test.rule, query_params=STRICT_QUERY)
    except requests.Timeout as exc:
        return result("ERROR", explain(exc, url=url, timeout=timeout))
    except requests.ConnectionError as exc:  # OPA is gone: no point asking for the others
        raise OpaError(f"running {test.ref}: {explain(exc, url=url, timeout=timeout)}") from None
    except Exception as exc:
        return result("ERROR", explain(exc, url=url, timeout=timeout))
    if isinstance(body, dict) and body.get("result") is True:
        return result("PASS", None)
    value = body.get("result", "undefined") if isinstance(body, dict) else body
    return result("FAIL", f"{test.ref} is {value!r}, not true")


def _first_line(exc: BaseException) -> str:
    """regorus' located text (``--> file:line:col`` … ``error: msg``) as ``line:col: msg``."""
    text = str(exc).split("Stack backtrace")[0]
    loc, msg = _LOCATION.search(text), _MESSAGE.search(text)
    if msg is None:
        return " ".join(line.strip() for line in text.splitlines() if line.strip())[:500]
    return msg.group(1).strip() + (f" (at {loc.group(1)})" if loc else "")


# -- reporting ---------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}µs" if seconds < 1e-3 else f"{seconds * 1e3:.1f}ms"


def format_run(run: TestRun, *, verbose: bool = False, threshold: float | None = None) -> str:
    """Text like ``opa test``: failures first, the per-file listing (always when verbose or on a
    failure), then ``PASS: n/m`` (and ``FAIL``/``ERROR`` counts); then coverage, if collected."""
    lines: list[str] = []
    bad = [r for r in run.results if r.status != "PASS"]
    if bad:
        lines += ["FAILURES", _RULE_LINE]
        for r in bad:
            lines.append(f"{r.test.ref}: {r.status} ({_duration(r.seconds)})")
            lines.append(f"  {run.shown(r.test.file)}:{r.test.line}: {r.message}")
            lines.append("")
    if verbose or bad:
        lines += ["SUMMARY", _RULE_LINE]
        for file, results in _by_file(run.results):
            lines.append(f"{run.shown(file)}:")
            lines += [f"{r.test.ref}: {r.status} ({_duration(r.seconds)})" for r in results]
            lines.append("")
        lines.append(_RULE_LINE)
    total = len(run.results)
    if total == 0:
        lines.append("no tests found (test rules are named test_* in *_test.rego modules)")
    for status in ("PASS", "FAIL", "ERROR"):
        n = run.count(status)  # type: ignore[arg-type]
        if n or (status == "PASS" and total):
            lines.append(f"{status}: {n}/{total}")
    if run.coverage is not None:
        lines += ["", format_coverage(run.coverage, threshold=threshold, root=run.root)]
    return "\n".join(lines)


def _by_file(results: Iterable[TestResult]) -> list[tuple[str, list[TestResult]]]:
    grouped: dict[str, list[TestResult]] = {}
    for r in results:
        grouped.setdefault(r.test.file, []).append(r)
    return list(grouped.items())


def format_coverage(coverage: Coverage, *, threshold: float | None = None, root: str = "") -> str:
    names = {f.file: (Path(root) / f.file).as_posix() if root else f.file for f in coverage.files}
    width = max([len(n) for n in names.values()] + [5])
    lines = ["COVERAGE (Rego lines reached by the tests; policy modules)", _RULE_LINE]
    for f in coverage.files:
        missing = f"   not covered: {_ranges(sorted(f.not_covered))}" if f.not_covered else ""
        lines.append(f"{names[f.file]:<{width}}  {len(f.covered):>5}/{f.lines:<5} {f.percent:6.1f}%{missing}")
    lines.append(_RULE_LINE)
    lines.append(f"{'TOTAL':<{width}}  {coverage.covered:>5}/{coverage.lines:<5} {coverage.percent:6.1f}%")
    if threshold is not None:
        verdict = "meets" if coverage.percent >= threshold else "is BELOW"
        lines.append(f"coverage {coverage.percent:.1f}% {verdict} the threshold {threshold:.1f}%")
    return "\n".join(lines)


def _ranges(numbers: Sequence[int]) -> str:
    """``3, 7-9, 12`` from [3, 7, 8, 9, 12]."""
    parts: list[str] = []
    start = prev = None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:  # type: ignore[operator]
            prev = n
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = n
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)

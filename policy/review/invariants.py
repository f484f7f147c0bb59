"""Policy invariants: a search over the workload space for a request that breaks a promise.

The bundle declares its invariants in Rego (package ``clearance.invariants``, see
``rego/invariants.rego``): ``declared`` maps each name to the promise, and ``violation`` is a
set of ``{"invariant", "route", "message"}`` over ``{"input": <policy input>, "decision":
<decision>}``. :func:`search` builds requests, turns each into its policy input exactly as the
service does (the app's profile applied: ``ActivePolicy.input_for``), has the **real engine**
decide it, and evaluates the invariants on the pair. Requests the service would refuse (outside
the profile) are not decisions and are skipped.

The search, in order:

1. **enumerated**, per app: every task (of the profile) × regulatory tier × data classification
   × dangerous capability, sector and jurisdictions left to the profile; then one field at a time
   from each of the app's named workloads (or a plain base): every sector and jurisdiction of
   the profile (group members included), every quality tier, both ``commercial`` values, every
   non-empty set of deployment modes, and boundary numbers from the catalog (each context
   window ±1, each route's blended price and just below); and every named workload as such
   (licence MAU caps are judged on the org's figures in org.yaml, not on the request);
2. **Hypothesis** for the rest: requests drawn field by field within each profile (boundary-
   biased numbers), until ``examples`` have been tried without a new violation; Hypothesis
   shrinks what it finds;
3. every counterexample is **shrunk** greedily: optional fields dropped, values lowered, list
   items removed, while the same invariant stays violated — the printed request is minimal in
   that no single such step keeps it failing.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import regorus
from pydantic import ValidationError

from policy.catalog import (
    DangerousCapability,
    DataClassification,
    DeploymentMode,
    QualityTier,
    RegulatoryTier,
    Task,
)
from policy.decision import ActivePolicy, Caller
from policy.errors import ClearanceError, EvaluationError, PolicyError
from policy.profile import ProfileViolation
from policy.workload import DecisionRequest

PACKAGE = "data.clearance.invariants"
CALLER = Caller(key_id=None, role="invariant-search")
TASKS = [t.value for t in Task]
TIERS = [t.value for t in RegulatoryTier]
CLASSES = [c.value for c in DataClassification]
DANGEROUS = [d.value for d in DangerousCapability]
QUALITY = [q.value for q in QualityTier]
MODES = [m.value for m in DeploymentMode]
MODE_SETS = [list(c) for n in (1, 2, 3) for c in itertools.combinations(MODES, n)]
# Fields a request may leave out, in the order the shrinker tries to drop them.
OPTIONAL = ("max_price_per_mtok", "min_context_tokens", "monthly_active_users", "deployment_modes", "commercial",
            "dangerous_capability", "jurisdictions", "sector")
DEFAULT_EXAMPLES = 1000


class InvariantsMissing(ClearanceError):
    """The bundle declares no invariants (package clearance.invariants)."""


@dataclass(frozen=True)
class Violation:
    invariant: str
    route: str | None
    message: str


@dataclass
class Counterexample:
    invariant: str
    promise: str
    request: dict[str, Any]  # a POST /v1/decisions body, minimal
    violations: list[Violation]  # of this invariant, for the minimal request
    phase: str  # enumerated | hypothesis

    def to_dict(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "promise": self.promise, "request": self.request, "phase": self.phase,
                "violations": [{"route": v.route, "message": v.message} for v in self.violations]}


@dataclass
class SearchReport:
    declared: dict[str, str]
    counterexamples: list[Counterexample] = field(default_factory=list)
    requests: int = 0  # requests built (enumerated + Hypothesis + shrinking)
    refused: int = 0  # of those, outside their app's profile (no decision)
    evaluated: int = 0  # distinct policy inputs decided by the engine and checked
    by_phase: dict[str, int] = field(default_factory=dict)  # distinct inputs first seen per phase
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.counterexamples

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "declared": self.declared, "requests": self.requests, "refused": self.refused,
                "evaluated": self.evaluated, "by_phase": self.by_phase, "seconds": round(self.seconds, 3),
                "counterexamples": [c.to_dict() for c in self.counterexamples]}

    def format(self) -> str:
        lines = []
        for c in self.counterexamples:
            lines.append(f"invariant violated: {c.invariant} — {c.promise}")
            lines += [f"  {v.route}: {v.message}" if v.route else f"  {v.message}" for v in c.violations[:5]]
            if len(c.violations) > 5:
                lines.append(f"  … and {len(c.violations) - 5} more routes")
            lines.append(f"  minimal counterexample ({c.phase}): {orjson.dumps(c.request).decode()}")
        phases = ", ".join(f"{k} {v}" for k, v in self.by_phase.items())
        lines.append(f"invariants: {len(self.declared)} declared, {len({c.invariant for c in self.counterexamples})} "
                     f"violated; {self.evaluated} distinct workloads evaluated ({phases}; {self.refused} requests "
                     f"outside their profile skipped) in {self.seconds:.1f} s")
        return "\n".join(lines)


class Checker:
    """The bundle's invariants over {input, decision}: compiled to regorus' RVM (about twice as
    fast as its interpreter), the interpreter where the RVM cannot run them. Bound to the
    thread that made it (regorus objects are)."""

    def __init__(self, policy: ActivePolicy) -> None:
        bundle = policy.bundle
        data = orjson.dumps(bundle.data_document()).decode()
        self._engine: Any = regorus.Engine()
        for rel, text in sorted(bundle.modules.items()):
            self._engine.add_policy(rel, text)
        self._engine.add_data_json(data)
        self._vm: Any = None
        try:
            program = regorus.Program.compile_from_modules(data, sorted(bundle.modules.items()), [f"{PACKAGE}.violation"])
            self._vm = regorus.Rvm()
            self._vm.load_program(program)
            self._vm.set_data_json(data)
        except Exception:  # noqa: BLE001 - not compilable for the RVM: the interpreter judges
            self._vm = None
        try:
            self.declared: dict[str, str] = self._declared()
        except BaseException:  # the traceback keeps this frame, and so this checker: let go now
            self.close()
            raise

    def _declared(self) -> dict[str, str]:
        try:
            declared = orjson.loads(self._engine.eval_rule_as_json(f"{PACKAGE}.declared"))
        except Exception as exc:  # noqa: BLE001 - regorus raises RuntimeError for an unknown rule
            raise InvariantsMissing(f"the bundle declares no invariants ({PACKAGE}.declared): {exc}") from None
        if not isinstance(declared, dict) or not declared:
            raise InvariantsMissing(f"{PACKAGE}.declared must be an object of name -> promise")
        return {str(k): str(v) for k, v in declared.items()}

    def close(self) -> None:
        """Let go of the regorus objects now, on this thread. A search ends in reference cycles
        (Hypothesis keeps the closures that reach this checker); left to the collector, they
        would be dropped by whichever thread collects, and regorus objects dropped on another
        thread than their own are leaked (the server's collector runs on a thread of its own)."""
        self._engine = self._vm = None

    def violations(self, policy_input: dict[str, Any], decision: dict[str, Any], *,
                   interpreter: bool = False) -> list[Violation]:
        pair = orjson.dumps({"input": policy_input, "decision": decision}).decode()
        raw: Any = None
        if self._vm is not None and not interpreter:
            try:
                self._vm.set_input_json(pair)
                raw = orjson.loads(self._vm.execute_entry_point(f"{PACKAGE}.violation"))
            except Exception:  # noqa: BLE001 - e.g. the RVM's instruction limit: the interpreter decides
                raw = None
        if raw is None:
            self._engine.set_input_json(pair)
            raw = orjson.loads(self._engine.eval_rule_as_json(f"{PACKAGE}.violation"))
        if not isinstance(raw, list):
            return []
        return sorted((Violation(str(v.get("invariant")), v.get("route"), str(v.get("message"))) for v in raw),
                      key=lambda v: (v.invariant, v.route or "", v.message))


class _Search:
    def __init__(self, policy: ActivePolicy, checker: Checker, report: SearchReport) -> None:
        self.policy, self.checker, self.report = policy, checker, report
        self.seen: dict[bytes, list[Violation]] = {}
        self.phase = "enumerated"

    def check(self, body: dict[str, Any]) -> list[Violation] | None:
        """The invariants violated by the decision on ``body`` (None: the service refuses it)."""
        self.report.requests += 1
        try:
            request = DecisionRequest.model_validate_json(orjson.dumps(body))
            policy_input = self.policy.input_for(request, CALLER)
        except (ValidationError, ProfileViolation):
            self.report.refused += 1
            return None
        key = orjson.dumps(policy_input, option=orjson.OPT_SORT_KEYS)
        found = self.seen.get(key)
        if found is None:
            try:
                decision = self.policy.engine.evaluate(policy_input)  # unchecked: the invariants judge it
                found = self.checker.violations(policy_input, decision)
            except EvaluationError as exc:  # the service would fail closed; the pack is still unfit
                found = [Violation("decision_defined", None, f"the engine fails on this input: {exc}")]
            self.seen[key] = found
            self.report.by_phase[self.phase] = self.report.by_phase.get(self.phase, 0) + 1
        return found


def search(policy: ActivePolicy, *, examples: int = DEFAULT_EXAMPLES, quick: bool = False) -> SearchReport:
    """Search the workload space of ``policy``'s bundle for violated invariants (``quick``: a
    smaller enumeration, see :func:`enumerated`)."""
    started = time.perf_counter()
    checker = Checker(policy)
    try:
        return _searched(policy, checker, examples=examples, quick=quick, started=started)
    finally:
        checker.close()


def _searched(policy: ActivePolicy, checker: Checker, *, examples: int, quick: bool, started: float) -> SearchReport:
    report = SearchReport(declared=dict(checker.declared))
    report.declared.setdefault("decision_defined", "the engine answers a decision for every valid request")
    run = _Search(policy, checker, report)
    found: dict[str, tuple[dict[str, Any], str]] = {}

    def record(body: dict[str, Any], violations: list[Violation], phase: str) -> None:
        for v in violations:
            found.setdefault(v.invariant, (body, phase))

    for body in enumerated(policy, quick=quick):
        violations = run.check(body)
        if violations:
            record(body, violations, "enumerated")
    if examples > 0:
        run.phase = "hypothesis"
        for body, violations in _hypothesis(policy, run, set(found), examples=examples):
            record(body, violations, "hypothesis")
    run.phase = "shrinking"
    for name, (body, phase) in sorted(found.items()):
        minimal = shrink(body, lambda b, name=name: any(v.invariant == name for v in run.check(b) or []))
        violations = [v for v in run.check(minimal) or [] if v.invariant == name]
        report.counterexamples.append(Counterexample(name, report.declared.get(name, "(not declared)"), minimal,
                                                     violations, phase))
    report.evaluated = len(run.seen)
    report.seconds = time.perf_counter() - started
    return report


# -- 1. enumeration ----------------------------------------------------------------------------


def enumerated(policy: ActivePolicy, *, quick: bool = False) -> Iterator[dict[str, Any]]:
    """The enumerated requests (``quick``: every tier × classification × dangerous capability
    with each named workload's task, and the one-at-a-time variants of the first named
    workload only, group members left out — what a reload runs)."""
    catalog = policy.bundle.catalog
    groups = catalog.jurisdictions
    for app in catalog.apps:
        tasks = [t.value for t in app.tasks] if app.tasks is not None else TASKS
        bases = [dict(w) for w in app.workloads.values()] or [
            {"task": tasks[0], "quality_tier": "commodity", "regulatory_tier": "minimal", "data_classification": "public"}]
        product_tasks = sorted({str(b["task"]) for b in bases}) if quick else tasks
        for task, tier, data, danger in itertools.product(product_tasks, TIERS, CLASSES, DANGEROUS):
            yield _body(app.id, {"task": task, "quality_tier": "commodity", "regulatory_tier": tier,
                                 "data_classification": data, "dangerous_capability": danger})
        codes = sorted({c for c in app.jurisdictions} | ({m for g in groups.groups if g in app.jurisdictions
                                                         for m in groups.members(g)} if not quick else set()))
        for base in bases[:1] if quick else bases:
            variants: list[dict[str, Any]] = [{"sector": s.value} for s in app.sectors]
            variants += [{"jurisdictions": [c]} for c in codes] + [{"jurisdictions": list(app.jurisdictions)}]
            variants += [{"quality_tier": q} for q in QUALITY] + [{"commercial": b} for b in (True, False)]
            variants += [{"deployment_modes": modes} for modes in MODE_SETS]
            variants += [{"min_context_tokens": n} for n in context_boundaries(policy)]
            variants += [{"max_price_per_mtok": p} for p in price_boundaries(policy)]
            for variant in variants:
                yield _body(app.id, {**base, **variant})
        for name in app.workloads:
            yield {"app_id": app.id, "workload_profile": name}


def _body(app_id: str, workload: dict[str, Any]) -> dict[str, Any]:
    return {"app_id": app_id, "workload": workload}


def context_boundaries(policy: ActivePolicy) -> list[int]:
    out = {0}
    for m in policy.bundle.catalog.models:
        out |= {m.context_tokens, m.context_tokens + 1}
    return sorted(n for n in out if n <= 100_000_000)


def price_boundaries(policy: ActivePolicy) -> list[float]:
    out: set[float] = set()
    for m in policy.bundle.catalog.models:
        for d in m.deployments:
            price = round((3 * d.price_in_per_mtok + d.price_out_per_mtok) / 4, 4)
            out |= {price, round(price - 0.0001, 4)}
    return sorted(p for p in out if 0 < p <= 10_000)


# -- 2. Hypothesis -----------------------------------------------------------------------------


def _requests_strategy(policy: ActivePolicy) -> Any:
    from hypothesis import strategies as st  # review tooling only: not imported by the service

    catalog = policy.bundle.catalog
    groups = catalog.jurisdictions

    def for_app(app: Any) -> Any:
        tasks = [t.value for t in app.tasks] if app.tasks is not None else TASKS
        codes = sorted({c for c in app.jurisdictions} | {m for g in groups.groups if g in app.jurisdictions
                                                        for m in groups.members(g)})
        optional = {
            "sector": st.sampled_from([s.value for s in app.sectors]),
            "jurisdictions": st.lists(st.sampled_from(codes), min_size=1, max_size=4, unique=True),
            "dangerous_capability": st.sampled_from(DANGEROUS),
            "commercial": st.booleans(),
            # Recorded only (licence caps are judged on org.yaml's figures): any value will do.
            "monthly_active_users": st.integers(0, 100_000_000_000),
            # The ranges' extremes are drawn explicitly too: Hypothesis also draws constants it finds
            # in the loaded modules, so how often it reaches an extreme by itself depends on what the
            # process imported before (derandomize alone does not make the search repeatable).
            "min_context_tokens": st.one_of(st.sampled_from(context_boundaries(policy)),
                                            st.sampled_from([0, 100_000_000]), st.integers(0, 100_000_000)),
            "max_price_per_mtok": st.one_of(st.sampled_from(price_boundaries(policy)),
                                            st.sampled_from([0.0001, 10_000.0]),
                                            st.floats(min_value=0.0001, max_value=10_000, allow_nan=False)),
            "deployment_modes": st.sampled_from(MODE_SETS),
        }
        required = st.fixed_dictionaries({
            "task": st.sampled_from(tasks), "quality_tier": st.sampled_from(QUALITY),
            "regulatory_tier": st.sampled_from(TIERS), "data_classification": st.sampled_from(CLASSES),
        }, optional=optional)
        return required.map(lambda w, app_id=app.id: _body(app_id, w))

    by_app = [for_app(app) for app in catalog.apps]
    named = [{"app_id": app.id, "workload_profile": name} for app in catalog.apps for name in app.workloads]
    return st.one_of(*by_app, *([st.sampled_from(named)] if named else []))


def _hypothesis(policy: ActivePolicy, run: _Search, known: set[str], *,
                examples: int) -> Iterator[tuple[dict[str, Any], list[Violation]]]:
    """Counterexamples of invariants not in ``known``: ``hypothesis.find`` until it finds none
    in ``examples`` tries (each find shrinks what it returns)."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    strategy = _requests_strategy(policy)
    targets = set(run.report.declared) - known
    config = settings(max_examples=examples, database=None, derandomize=True, deadline=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    # derandomize: the same bundle gives the same search, in CI and on a laptop.
    while targets:
        def violates(body: dict[str, Any]) -> bool:
            return any(v.invariant in targets for v in run.check(body) or [])
        try:
            body = find(strategy, violates, settings=config)
        except NoSuchExample:
            return
        violations = [v for v in run.check(body) or [] if v.invariant in targets]
        yield body, violations
        targets -= {v.invariant for v in violations}


# -- 3. shrinking ------------------------------------------------------------------------------


def shrink(body: dict[str, Any], fails: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The smallest request reachable from ``body`` by single steps that keep ``fails`` true."""
    current = body
    changed = True
    while changed:
        changed = False
        for candidate in _smaller(current):
            if fails(candidate):
                current, changed = candidate, True
                break
    return current


_ORDER = {"task": TASKS, "quality_tier": QUALITY, "regulatory_tier": TIERS, "data_classification": CLASSES,
          "dangerous_capability": DANGEROUS}


def _smaller(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    workload = body.get("workload")
    if not isinstance(workload, dict):
        return
    def with_(**changes: Any) -> dict[str, Any]:
        w = {k: v for k, v in {**workload, **changes}.items() if v is not _DROP}
        return {**body, "workload": w}
    for name in OPTIONAL:
        if name in workload:
            yield with_(**{name: _DROP})
    for name, order in _ORDER.items():
        value = workload.get(name)
        if value in order:
            for lower in order[: order.index(value)]:
                yield with_(**{name: lower})
    for name in ("jurisdictions", "deployment_modes"):
        items = workload.get(name)
        if isinstance(items, list) and len(items) > 1:
            for i in range(len(items)):
                yield with_(**{name: items[:i] + items[i + 1:]})
    for name in ("monthly_active_users", "min_context_tokens"):
        n = workload.get(name)
        if isinstance(n, int) and n > 0:
            yield with_(**{name: n // 2})


_DROP = object()


# -- the gate: what check and reload refuse ----------------------------------------------------


def invariant_errors(policy: ActivePolicy, report: SearchReport) -> list[PolicyError]:
    """One located error per violated invariant (at its ``declared`` entry in the module)."""
    where = _declaration_lines(policy)
    out = []
    for c in report.counterexamples:
        file, line = where.get(c.invariant, where.get("", (policy.bundle.root.as_posix(), None)))
        first = c.violations[0].message if c.violations else ""
        out.append(PolicyError(file, line, "invariant_violated",
                               f"{c.invariant} ({c.promise}): {first}; minimal counterexample: "
                               f"{orjson.dumps(c.request).decode()}"))
    return out


def _declaration_lines(policy: ActivePolicy) -> dict[str, tuple[str, int | None]]:
    out: dict[str, tuple[str, int | None]] = {}
    for rel, text in policy.bundle.modules.items():
        if "package clearance.invariants" not in text:
            continue
        shown = (policy.bundle.root / rel).as_posix()
        out[""] = (shown, None)
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith('"') and '":' in stripped:
                out.setdefault(stripped.split('"')[1], (shown, number))
    return out


RELOAD_EXAMPLES = 200  # Hypothesis examples when a reload checks a bundle (quick enumeration)


def gate_errors(policy: ActivePolicy, *, quick: bool = False,
                examples: int = DEFAULT_EXAMPLES) -> tuple[list[PolicyError], SearchReport | None]:
    """What makes a bundle that compiles and validates still unfit to serve: its own Rego tests
    failing, or an invariant violated. ``clearance policy check`` and every reload refuse it."""
    from policy.review.testing import run_bundle_tests

    root = policy.bundle.root
    errors = [PolicyError((root / r.test.file).as_posix(), r.test.line, "test_failed",
                          f"{r.test.package}.{r.test.rule}: {r.status}: {r.message or 'not true'}")
              for r in run_bundle_tests(policy.bundle) if r.status != "PASS"]
    try:
        report = search(policy, examples=examples, quick=quick)
    except InvariantsMissing as exc:
        return [*errors, PolicyError(root.as_posix(), None, "invariants_missing", str(exc))], None
    return errors + invariant_errors(policy, report), report


class PassedRevisions:
    """Bundle revisions whose reload gate passed in this process (bounded, thread-safe).

    The gate is a pure function of the bundle's content — its revision hashes every module, test
    and data file — and of the search's fixed settings (enumeration, derandomised Hypothesis),
    so a revision that passed would pass again: re-checking it is skipped. Refusals are not
    remembered (their errors name the directory they were found in, and they are rare).
    """

    def __init__(self, maxsize: int = 256) -> None:
        self._maxsize = maxsize
        self._passed: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, revision: object) -> bool:
        with self._lock:
            if revision not in self._passed:
                return False
            self._passed.move_to_end(str(revision))
            return True

    def add(self, revision: str) -> None:
        with self._lock:
            self._passed[revision] = None
            self._passed.move_to_end(revision)
            while len(self._passed) > self._maxsize:
                self._passed.popitem(last=False)


# A memo of the pure function below, not state that can change an answer.
PASSED = PassedRevisions()


def reload_gate(revision: str, policy: Callable[[], ActivePolicy]) -> list[PolicyError]:
    """The errors that refuse a reload of the bundle with this ``revision`` (its Rego tests and a
    quick search); ``policy`` builds what to evaluate, only when the revision has not passed
    before in this process."""
    if revision in PASSED:
        return []
    errors, _ = gate_errors(policy(), quick=True, examples=RELOAD_EXAMPLES)
    if not errors:
        PASSED.add(revision)
    return errors

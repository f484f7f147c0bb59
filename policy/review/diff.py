"""What changes between two decisions on the same workload: the unit of impact analysis and of
shadow mode.

A decision is reduced to a :class:`Summary` (outcome, the cleared routes, each denied route's
reasons); :func:`compare` tells what a candidate policy would do differently from a baseline:
the outcome flip (``allow→deny`` is *breaking*: the app would lose every route it had), the
routes newly cleared and newly denied (with the reasons that now deny them), and per reason
code how many routes gained or lost it. A route absent from one side (a model added to or
removed from the catalog) counts as not cleared there.

A side that could not be evaluated (app not in that side's ``apps.yaml``, an evaluation error)
is a ``deny`` with no routes and its ``error``: the service fails closed the same way.

:func:`compare_answers` gives the same :class:`Change` as ``compare(Summary.of(a), Summary.of(b))``
straight from the two answers (impact replay's hot path): equal route lists are not looked into,
and only the routes whose entries differ are reduced to codes and obligations
(tests/policy/review/test_diff.py checks it against the summaries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Route = tuple[str, str]  # (model, deployment)
Reasons = tuple[tuple[str, str], ...]  # ((code, message), …) sorted by code
_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Summary:
    outcome: str  # allow | deny
    cleared: frozenset[Route]
    denied: dict[Route, Reasons]
    error: str | None = None
    # Derived once here, so that comparing two summaries is mostly dict equality in C.
    codes: dict[Route, frozenset[str]] = field(default_factory=dict)  # of denied routes
    obligations: dict[Route, frozenset[str]] = field(default_factory=dict)  # of cleared routes with some

    @classmethod
    def of(cls, result: dict[str, Any]) -> Summary:
        """From a decision (``{"outcome", "allowed", "denied"}``, as answered and recorded)."""
        denied: dict[Route, Reasons] = {}
        codes: dict[Route, frozenset[str]] = {}
        for r in result["denied"]:
            route = (r["model"], r["deployment"])
            reasons = tuple((x["code"], x["message"]) for x in r["reasons"])
            denied[route] = reasons
            codes[route] = frozenset(code for code, _ in reasons)
        return cls(
            outcome=result["outcome"],
            cleared=frozenset((r["model"], r["deployment"]) for r in result["allowed"]),
            denied=denied,
            codes=codes,
            obligations={(r["model"], r["deployment"]): frozenset(r["obligations"])
                         for r in result["allowed"] if r.get("obligations")},
        )

    @classmethod
    def failed(cls, error: str) -> Summary:
        return cls(outcome="deny", cleared=frozenset(), denied={}, error=error)


@dataclass(frozen=True, slots=True)
class Change:
    """How a candidate's decision differs from the baseline's on one workload."""

    base_outcome: str
    head_outcome: str
    newly_cleared: tuple[Route, ...] = ()
    newly_denied: tuple[tuple[Route, Reasons], ...] = ()  # with the candidate's reasons
    codes_appeared: tuple[tuple[str, int], ...] = ()  # (code, routes that gained it)
    codes_disappeared: tuple[tuple[str, int], ...] = ()
    obligations_appeared: tuple[tuple[str, int], ...] = ()  # (obligation, routes that gained it)
    obligations_disappeared: tuple[tuple[str, int], ...] = ()
    base_error: str | None = None
    head_error: str | None = None

    @property
    def flipped(self) -> bool:
        return self.base_outcome != self.head_outcome

    @property
    def breaking(self) -> bool:
        return self.base_outcome == "allow" and self.head_outcome == "deny"

    @property
    def differs(self) -> bool:
        return bool(self.flipped or self.newly_cleared or self.newly_denied or self.codes_appeared
                    or self.codes_disappeared or self.obligations_appeared or self.obligations_disappeared
                    or self.base_error != self.head_error)

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON (for an audit entry or a report); keys only for what changed."""
        out: dict[str, Any] = {}
        if self.flipped:
            out["outcome"] = {"from": self.base_outcome, "to": self.head_outcome}
        if self.newly_cleared:
            out["newly_cleared"] = [{"model": m, "deployment": d} for m, d in self.newly_cleared]
        if self.newly_denied:
            out["newly_denied"] = [
                {"model": m, "deployment": d, "reasons": [{"code": c, "message": msg} for c, msg in reasons]}
                for (m, d), reasons in self.newly_denied
            ]
        if self.codes_appeared:
            out["codes_appeared"] = dict(self.codes_appeared)
        if self.codes_disappeared:
            out["codes_disappeared"] = dict(self.codes_disappeared)
        if self.obligations_appeared:
            out["obligations_appeared"] = dict(self.obligations_appeared)
        if self.obligations_disappeared:
            out["obligations_disappeared"] = dict(self.obligations_disappeared)
        for side, error in (("base_error", self.base_error), ("head_error", self.head_error)):
            if error:
                out[side] = error
        return out


def compare(base: Summary, head: Summary) -> Change:
    """What ``head`` (the candidate) decides differently from ``base`` for the same workload."""
    newly_cleared = tuple(sorted(head.cleared - base.cleared))
    newly_denied = tuple((route, head.denied.get(route, ())) for route in sorted(base.cleared - head.cleared))
    appeared: dict[str, int] = {}
    disappeared: dict[str, int] = {}
    gained: dict[str, int] = {}
    lost: dict[str, int] = {}
    if base.error is None and head.error is None:
        if base.codes != head.codes:
            for route in base.codes.keys() | head.codes.keys():
                _count(base.codes.get(route, _NONE), head.codes.get(route, _NONE), appeared, disappeared)
        if base.obligations != head.obligations:
            for route in base.cleared & head.cleared:
                _count(base.obligations.get(route, _NONE), head.obligations.get(route, _NONE), gained, lost)
    return _change(base.outcome, head.outcome, newly_cleared, newly_denied, (appeared, disappeared, gained, lost),
                   base.error, head.error)


def _change(base_outcome: str, head_outcome: str, newly_cleared: tuple[Route, ...],
            newly_denied: tuple[tuple[Route, Reasons], ...], counts: tuple[dict[str, int], ...],
            base_error: str | None, head_error: str | None) -> Change:
    appeared, disappeared, gained, lost = (tuple(sorted(c.items())) for c in counts)
    return Change(base_outcome=base_outcome, head_outcome=head_outcome, newly_cleared=newly_cleared,
                  newly_denied=newly_denied, codes_appeared=appeared, codes_disappeared=disappeared,
                  obligations_appeared=gained, obligations_disappeared=lost, base_error=base_error,
                  head_error=head_error)


# A side's answer: the decision (``{"outcome", "allowed", "denied", …}``) or, for a side that
# could not be evaluated, its error (what ``Summary.failed`` is made from).
Answer = dict[str, Any] | str
_NO_ROUTES: dict[Route, Any] = {}


def compare_answers(base: Answer, head: Answer) -> Change:
    """``compare(Summary.of(base), Summary.of(head))`` (a ``str`` side: ``Summary.failed``),
    without building either summary. Answers must be well formed (``ActivePolicy.evaluate``'s,
    or a recorded one that passed :func:`well_formed`)."""
    base_error = base if isinstance(base, str) else None
    head_error = head if isinstance(head, str) else None
    base_outcome = "deny" if base_error is not None else base["outcome"]  # type: ignore[index]
    head_outcome = "deny" if head_error is not None else head["outcome"]  # type: ignore[index]
    if base_error is None and head_error is None:
        assert isinstance(base, dict) and isinstance(head, dict)
        if base["allowed"] == head["allowed"] and base["denied"] == head["denied"]:
            return Change(base_outcome=base_outcome, head_outcome=head_outcome)  # nothing else to see
    base_allowed = _routes(base, "allowed")
    head_allowed = _routes(head, "allowed")
    base_denied = _routes(base, "denied")
    head_denied = _routes(head, "denied")
    if None in (base_allowed, head_allowed, base_denied, head_denied):
        # A route listed twice on one side: the summaries' last-one-wins rules decide.
        return compare(_summary_of(base), _summary_of(head))
    assert base_allowed is not None and head_allowed is not None
    assert base_denied is not None and head_denied is not None
    newly_cleared = tuple(sorted(head_allowed.keys() - base_allowed.keys()))
    newly_denied = tuple((route, _reasons(head_denied.get(route)))
                         for route in sorted(base_allowed.keys() - head_allowed.keys()))
    appeared: dict[str, int] = {}
    disappeared: dict[str, int] = {}
    gained: dict[str, int] = {}
    lost: dict[str, int] = {}
    if base_error is None and head_error is None:
        # A route's codes can differ only where its entries do (equal lists, equal code sets).
        for route, entry in head_denied.items():
            before = base_denied.get(route)
            if before is None or before["reasons"] != entry["reasons"]:
                _count(_codes(before), _codes(entry), appeared, disappeared)
        for route, entry in base_denied.items():
            if route not in head_denied:
                _count(_codes(entry), _NONE, appeared, disappeared)
        for route, entry in head_allowed.items():
            before = base_allowed.get(route)
            if before is not None and before.get("obligations") != entry.get("obligations"):
                _count(_obligations(before), _obligations(entry), gained, lost)
    return _change(base_outcome, head_outcome, newly_cleared, newly_denied, (appeared, disappeared, gained, lost),
                   base_error, head_error)


def well_formed(result: Any) -> bool:
    """Whether a recorded decision has the shape :func:`compare_answers` reads (the types
    ``ActivePolicy.evaluate`` guarantees for an evaluation's answer)."""
    if not isinstance(result, dict) or not isinstance(result.get("outcome"), str):
        return False
    allowed, denied = result.get("allowed"), result.get("denied")
    if not isinstance(allowed, list) or not isinstance(denied, list):
        return False
    for r in allowed:
        if not (isinstance(r, dict) and type(r.get("model")) is str and type(r.get("deployment")) is str):
            return False
        obligations = r.get("obligations")
        if obligations and not (isinstance(obligations, list) and all(type(o) is str for o in obligations)):
            return False
    for r in denied:
        if not (isinstance(r, dict) and type(r.get("model")) is str and type(r.get("deployment")) is str
                and isinstance(r.get("reasons"), list)):
            return False
        for x in r["reasons"]:
            if not (isinstance(x, dict) and type(x.get("code")) is str and type(x.get("message")) is str):
                return False
    return True


def _routes(answer: Answer, key: str) -> dict[Route, dict[str, Any]] | None:
    """The answer's entries under ``key`` by route (none for an error); ``None`` if a route repeats."""
    if isinstance(answer, str):
        return _NO_ROUTES
    entries = answer[key]
    routes = {(r["model"], r["deployment"]): r for r in entries}
    return routes if len(routes) == len(entries) else None


def _reasons(entry: dict[str, Any] | None) -> Reasons:
    return tuple((x["code"], x["message"]) for x in entry["reasons"]) if entry is not None else ()


def _codes(entry: dict[str, Any] | None) -> frozenset[str]:
    return frozenset(x["code"] for x in entry["reasons"]) if entry is not None else _NONE


def _obligations(entry: dict[str, Any]) -> frozenset[str]:
    obligations = entry.get("obligations")
    return frozenset(obligations) if obligations else _NONE


def _summary_of(answer: Answer) -> Summary:
    return Summary.failed(answer) if isinstance(answer, str) else Summary.of(answer)


def _count(before: frozenset[str], after: frozenset[str], appeared: dict[str, int], disappeared: dict[str, int]) -> None:
    if before == after:
        return
    for name in after - before:
        appeared[name] = appeared.get(name, 0) + 1
    for name in before - after:
        disappeared[name] = disappeared.get(name, 0) + 1

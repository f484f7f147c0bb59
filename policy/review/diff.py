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
    return Change(
        base_outcome=base.outcome,
        head_outcome=head.outcome,
        newly_cleared=newly_cleared,
        newly_denied=newly_denied,
        codes_appeared=tuple(sorted(appeared.items())),
        codes_disappeared=tuple(sorted(disappeared.items())),
        obligations_appeared=tuple(sorted(gained.items())),
        obligations_disappeared=tuple(sorted(lost.items())),
        base_error=base.error,
        head_error=head.error,
    )


def _count(before: frozenset[str], after: frozenset[str], appeared: dict[str, int], disappeared: dict[str, int]) -> None:
    if before == after:
        return
    for name in after - before:
        appeared[name] = appeared.get(name, 0) + 1
    for name in before - after:
        disappeared[name] = disappeared.get(name, 0) + 1

"""Choosing the route to call: the best-ranked cleared route the app can reach."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar, Union, overload

from clearance_client.models import ClearedRoute, Decision

T = TypeVar("T")
Route = tuple[str, str]


@dataclass(frozen=True)
class Pick(Generic[T]):
    """The chosen cleared route, and what the app reaches it by: the value the ``reachable``
    mapping holds for it (an endpoint, an alias…), or the (model, deployment) pair itself when
    ``reachable`` was a set."""

    route: ClearedRoute
    target: T


@overload
def best_route(decision: Decision, reachable: Mapping[Route, T]) -> Pick[T] | None: ...
@overload
def best_route(decision: Decision, reachable: Iterable[Route]) -> Pick[Route] | None: ...


def best_route(decision: Decision, reachable: Union[Mapping[Route, T], Iterable[Route]]) -> Pick | None:
    """The best-ranked route the decision cleared among those the app can reach, or None.

    ``reachable`` is a set (or any iterable) of ``(model, deployment)`` pairs, or a mapping from
    such pairs to whatever the app calls the route by. Only cleared routes are considered, lowest
    rank first (ties keep the decision's order); a route the decision also lists as denied is never
    chosen, and a ``deny`` decision yields None.
    """
    targets: dict[Route, object] = {}
    items = reachable.items() if isinstance(reachable, Mapping) else ((r, r) for r in reachable)
    for key, target in items:
        if (not isinstance(key, tuple) or len(key) != 2
                or not all(isinstance(part, str) for part in key)):
            raise TypeError(f"reachable routes are (model, deployment) pairs of strings, got {key!r}; "
                            "for a model reachable through any deployment, list each deployment")
        targets.setdefault(key, target)
    if not decision.is_allowed:
        return None
    denied = {d.route for d in decision.denied}
    candidates = [r for r in decision.allowed if r.route in targets and r.route not in denied]
    if not candidates:
        return None
    best = min(candidates, key=lambda r: r.rank)  # min keeps the first of equal ranks
    return Pick(route=best, target=targets[best.route])

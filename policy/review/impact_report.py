"""The impact report: the tally of how the head's decisions differ from the base's, as JSON.

``ImpactReport.to_dict()`` is what ``clearance policy impact --format json`` prints and what
``policy/review/markdown.py`` renders for a pull-request comment.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from policy.review.diff import Change
from policy.review.replay import Replay, Skipped

EXAMPLES = 5  # concrete examples kept, breaking ones first

SEMANTICS = (
    "Each recorded request (what was asked: input.requested) is replayed with its recorded caller; "
    "the app's entitlements and profile (input.app, and the effective workload) are re-derived by "
    "app id from each side's own apps.yaml, so changes to entitlements and profiles count as "
    "policy changes."
)


@dataclass(frozen=True)
class Side:
    name: str  # base | head
    ref: str  # the git ref, or "work tree"
    directory: str
    revision: str
    commit: str | None = None
    dirty: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "directory": self.directory, "revision": self.revision,
                "commit": self.commit, "dirty": self.dirty}


@dataclass
class Routes:
    deployments: set[str] = field(default_factory=set)
    decisions: int = 0
    codes: Counter[str] = field(default_factory=Counter)


@dataclass
class Tally:
    examples_wanted: int
    replayed: int = 0
    reused: int = 0  # replays whose base answer was the one recorded under the base revision
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    changed: int = 0
    cleared: dict[tuple[str, str], Routes] = field(default_factory=dict)
    denied: dict[tuple[str, str], Routes] = field(default_factory=dict)
    appeared: Counter[str] = field(default_factory=Counter)
    appeared_in: Counter[str] = field(default_factory=Counter)
    disappeared: Counter[str] = field(default_factory=Counter)
    disappeared_in: Counter[str] = field(default_factory=Counter)
    gained: Counter[str] = field(default_factory=Counter)
    gained_in: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    lost_in: Counter[str] = field(default_factory=Counter)
    base_errors: Counter[str] = field(default_factory=Counter)
    head_errors: Counter[str] = field(default_factory=Counter)
    examples: dict[int, list[tuple[Replay, Change]]] = field(default_factory=dict)
    example_keys: set[bytes] = field(default_factory=set)

    def skip(self, skipped: Skipped) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 10:
            self.skipped_examples.append(f"{skipped.source}: {skipped.reason}")

    def add(self, replay: Replay, change: Change, key: bytes) -> None:
        self.replayed += 1
        self.outcomes[(change.base_outcome, change.head_outcome)] += 1
        if not change.differs:
            return
        self.changed += 1
        for tally, routes in ((self.cleared, [(r, ()) for r in change.newly_cleared]), (self.denied, change.newly_denied)):
            touched: set[tuple[str, str]] = set()
            for (model, deployment), reasons in routes:
                row = tally.setdefault((replay.app_id, model), Routes())
                row.deployments.add(deployment)
                row.codes.update(code for code, _ in reasons)
                touched.add((replay.app_id, model))
            for k in touched:
                tally[k].decisions += 1
        for pairs, routes, decisions in ((change.codes_appeared, self.appeared, self.appeared_in),
                                         (change.codes_disappeared, self.disappeared, self.disappeared_in),
                                         (change.obligations_appeared, self.gained, self.gained_in),
                                         (change.obligations_disappeared, self.lost, self.lost_in)):
            for name, n in pairs:
                routes[name] += n
                decisions[name] += 1
        if change.base_error and change.base_error != change.head_error:
            self.base_errors[change.base_error] += 1
        if change.head_error and change.head_error != change.base_error:
            self.head_errors[change.head_error] += 1
        self._maybe_example(replay, change, key)

    def _maybe_example(self, replay: Replay, change: Change, key: bytes) -> None:
        rank = (0 if change.breaking else 1 if change.flipped else 2 if change.newly_denied
                else 3 if change.newly_cleared else 4)
        bucket = self.examples.setdefault(rank, [])
        if len(bucket) < self.examples_wanted and key not in self.example_keys:
            bucket.append((replay, change))
            self.example_keys.add(key)

    def chosen_examples(self) -> list[tuple[Replay, Change]]:
        ordered = itertools.chain.from_iterable(self.examples[r] for r in sorted(self.examples))
        return list(itertools.islice(ordered, self.examples_wanted))


@dataclass(frozen=True)
class ImpactReport:
    base: Side
    head: Side
    inputs: str
    apps_changed: bool
    tally: Tally
    seconds: float
    build_seconds: float
    evaluated: int  # distinct workloads judged (the rest came from the cache)
    workers: int

    @property
    def breaking(self) -> int:
        return self.tally.outcomes[("allow", "deny")]

    @property
    def replays_per_second(self) -> float:
        replay_seconds = self.seconds - self.build_seconds
        return self.tally.replayed / replay_seconds if replay_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        t = self.tally
        return {
            "base": self.base.to_dict(),
            "head": self.head.to_dict(),
            "inputs": self.inputs,
            "semantics": SEMANTICS,
            "apps_yaml_changed": self.apps_changed,
            "replayed": t.replayed,
            "distinct_workloads": self.evaluated,
            "base_from_trail": t.reused,
            "skipped": t.skipped,
            "skipped_examples": t.skipped_examples,
            "changed": t.changed,
            "outcomes": {f"{b}->{h}": n for (b, h), n in sorted(t.outcomes.items())},
            "breaking": self.breaking,
            "flipped": {"allow->deny": self.breaking, "deny->allow": t.outcomes[("deny", "allow")]},
            "newly_cleared": _route_rows(t.cleared),
            "newly_denied": _route_rows(t.denied),
            "codes_appeared": _code_rows(t.appeared, t.appeared_in),
            "codes_disappeared": _code_rows(t.disappeared, t.disappeared_in),
            "obligations_appeared": _code_rows(t.gained, t.gained_in, key="obligation"),
            "obligations_disappeared": _code_rows(t.lost, t.lost_in, key="obligation"),
            "base_errors": [{"error": e, "decisions": n} for e, n in t.base_errors.most_common(10)],
            "head_errors": [{"error": e, "decisions": n} for e, n in t.head_errors.most_common(10)],
            "examples": [_example(r, c) for r, c in t.chosen_examples()],
            "timing": {
                "seconds": round(self.seconds, 3),
                "build_seconds": round(self.build_seconds, 3),
                "replays_per_second": round(self.replays_per_second, 1),
                "workers": self.workers,
            },
        }


def _route_rows(tally: dict[tuple[str, str], Routes]) -> list[dict[str, Any]]:
    rows = [
        {"app_id": app, "model": model, "deployments": sorted(r.deployments), "decisions": r.decisions,
         "reasons": dict(r.codes.most_common())}
        for (app, model), r in tally.items()
    ]
    return sorted(rows, key=lambda row: (-row["decisions"], row["app_id"], row["model"]))


def _code_rows(routes: Counter[str], decisions: Counter[str], *, key: str = "code") -> list[dict[str, Any]]:
    return [{key: name, "routes": n, "decisions": decisions[name]} for name, n in routes.most_common()]


_SHOWN_WORKLOAD = ("task", "quality_tier", "regulatory_tier", "sector", "data_classification",
                   "dangerous_capability", "jurisdictions")


def _example(replay: Replay, change: Change) -> dict[str, Any]:
    return {
        "decision_id": replay.decision_id,
        "source": replay.source,
        "app_id": replay.app_id,
        "workload": {k: (replay.workload or {}).get(k) for k in _SHOWN_WORKLOAD},
        "workload_profile": replay.workload_profile,
        "base_outcome": change.base_outcome,
        "head_outcome": change.head_outcome,
        "breaking": change.breaking,
        "diff": change.to_dict(),
    }

"""Shadow mode: a candidate bundle decides beside the active one on live traffic.

The candidate never changes an answer: the caller gets the active policy's decision whatever
the candidate says, does or raises. Its verdict goes into the decision's own audit entry as
``shadow`` — ``{"revision", "git", "outcome", "differs", "diff"}``, where ``diff`` is
``policy.review.diff.Change.to_dict()`` (outcome flip, routes newly cleared/denied, codes gained or
lost) — so each disagreement is signed with the decision it concerns and can be found with
it: ``SELECT decision_id FROM audit_log WHERE (body_json->'shadow'->>'differs')::boolean``
(the view derives ``body_json`` from the signed bytes). ``clearance_shadow_decisions_total``
counts the evaluations by agreement (``same``, ``differs``, ``error``).

As in impact analysis, the candidate judges the workload with its own ``apps.yaml``: the
entitlements are part of what is under review.

Cost: one more evaluation per decision, only when ``CLEARANCE_SHADOW_POLICY_DIR`` is set;
without it the decision path does not call into this module at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from policy import ActivePolicy
from policy.review.diff import Summary, compare

log = logging.getLogger("clearance.shadow")

Evaluate = Callable[[ActivePolicy], dict[str, Any]]


def shadow_verdict(
    candidate: ActivePolicy, *, result: dict[str, Any], evaluate: Evaluate,
) -> tuple[dict[str, Any], str]:
    """The candidate's verdict on a decision the active policy has made (``result``), and the
    agreement (``same``, ``differs``, ``error``); ``evaluate`` is the service's one evaluation of
    this request by a policy (the candidate applies its own apps' profiles: a request its profile
    refuses is an ``error`` verdict)."""
    outcome: str | None = None
    try:
        answer = evaluate(candidate)
        theirs = Summary.of(answer)
        outcome = answer["outcome"]
    except Exception as exc:  # noqa: BLE001 - whatever the candidate does, the answer stands
        log.warning("shadow policy %s failed on decision %s: %s", candidate.revision, result["decision_id"], exc)
        theirs = Summary.failed(f"{type(exc).__name__}: {exc}")
    change = compare(Summary.of(result), theirs)
    agreement = "error" if theirs.error else ("differs" if change.differs else "same")
    git = candidate.bundle.git
    verdict: dict[str, Any] = {
        "revision": candidate.revision,
        "git": git.to_dict() if git else None,
        "outcome": outcome,
        "differs": change.differs,
    }
    if change.differs:
        verdict["diff"] = change.to_dict()
    return verdict, agreement

"""Shadow mode: a candidate bundle decides beside the active one on live traffic.

The candidate never changes an answer: the caller gets the active policy's decision whatever
the candidate says, does or raises. Its verdict goes into the decision's own audit entry as
``shadow`` — ``{"revision", "git", "outcome", "differs", "diff"}``, where ``diff`` is
``policy.diff.Change.to_dict()`` (outcome flip, routes newly cleared/denied, codes gained or
lost) — so each disagreement is signed with the decision it concerns and can be found with
it: ``SELECT decision_id FROM audit_entries_json WHERE (body_json->'shadow'->>'differs')::boolean``
(the view derives ``body_json`` from the signed bytes). ``clearance_shadow_decisions_total``
counts the evaluations by agreement (``same``, ``differs``, ``error``).

As in impact analysis, the candidate judges the workload with its own ``apps.yaml``: the
entitlements are part of what is under review.

Cost: one more evaluation per decision, only when ``CLEARANCE_SHADOW_POLICY_DIR`` is set;
without it the decision path does not call into this module at all.
"""

from __future__ import annotations

import logging
from typing import Any

from api.services import Services
from policy import Caller, DecisionRequest
from policy.decision import decide_plain
from policy.diff import Summary, compare

log = logging.getLogger("clearance.shadow")


def shadow_verdict(
    services: Services, request: DecisionRequest, *, caller: Caller, result: dict[str, Any]
) -> dict[str, Any] | None:
    """The shadow policy's verdict on a decision the active policy has made (``result``)."""
    holder = services.shadow
    if holder is None:
        return None
    candidate = holder.current  # one bundle for the whole evaluation, as for the active one
    outcome: str | None = None
    try:
        _, decision = decide_plain(candidate, request, caller=caller, decision_id=result["decision_id"])
        theirs = Summary.of(decision)
        outcome = decision["outcome"]
    except Exception as exc:  # noqa: BLE001 - whatever the candidate does, the answer stands
        log.warning("shadow policy %s failed on decision %s: %s", candidate.revision, result["decision_id"], exc)
        theirs = Summary.failed(f"{type(exc).__name__}: {exc}")
    change = compare(Summary.of(result), theirs)
    agreement = "error" if theirs.error else ("differs" if change.differs else "same")
    services.metrics.shadow_decisions.labels(agreement=agreement).inc()
    git = candidate.bundle.git
    verdict: dict[str, Any] = {
        "revision": candidate.revision,
        "git": git.to_dict() if git else None,
        "outcome": outcome,
        "differs": change.differs,
    }
    if change.differs:
        verdict["diff"] = change.to_dict()
    return verdict

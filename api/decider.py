"""The hot path's bookkeeping: a decision's result and its audit entry fields, encoded once.

Deciding is memoised by the policy (``ActivePolicy.evaluate_key``); here the other expensive
part is memoised the same way: the RFC 8785 bytes of the two large members of every entry body,
``input`` and the result's route lists (pure-Python canonicalisation of a few KB costs about as
much as the evaluation). Per request only the small members (ids, times, caller) are encoded, and
``audit.canonical`` splices the bytes together. The cache is bounded and keyed by the policy
object, so a reload does not reuse the old bundle's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from audit.canonical import Canonical, canonical, canonical_object
from policy import ActivePolicy
from policy.decision import input_key


@dataclass(frozen=True, slots=True)
class Prepared:
    """One distinct (policy, input): its answer and the canonical bytes of its large parts."""

    input: Canonical
    outcome: str
    allowed: Canonical
    denied: Canonical


class DecisionEncoder:
    """Prepares decisions for recording; thread-safe (``functools.lru_cache``)."""

    def __init__(self, *, cache_size: int = 4096) -> None:
        self._prepare = lru_cache(maxsize=cache_size)(self._prepare_uncached)

    def prepare(self, policy: ActivePolicy, policy_input: dict[str, Any]) -> Prepared:
        """Evaluate (``EvaluationError`` fails closed) and encode; cached per distinct input."""
        return self._prepare(policy, input_key(policy_input))

    @staticmethod
    def _prepare_uncached(policy: ActivePolicy, key: bytes) -> Prepared:
        raw = policy.evaluate_key(key)
        return Prepared(
            input=canonical(orjson.loads(key)),
            outcome=raw["outcome"],
            allowed=canonical(raw["allowed"]),
            denied=canonical(raw["denied"]),
        )

    @staticmethod
    def result(prepared: Prepared, *, decision_id: str, policy_revision: str) -> Canonical:
        """The decision (DESIGN.md's shape without ``audit``), with its canonical bytes."""
        members = {
            "decision_id": decision_id,
            "outcome": prepared.outcome,
            "allowed": prepared.allowed,
            "denied": prepared.denied,
            "policy_revision": policy_revision,
        }
        value = {
            "decision_id": decision_id,
            "outcome": prepared.outcome,
            "allowed": prepared.allowed.value,
            "denied": prepared.denied.value,
            "policy_revision": policy_revision,
        }
        return Canonical(value, canonical_object(members))

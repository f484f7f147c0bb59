"""The service's one decision path: evaluate (memoised), judge in shadow, record, answer.

``POST /v1/decisions``, ``POST /v1/policy/simulate`` and ``clearance decide`` all decide here, and
shadow mode evaluates through the same :meth:`Decider.evaluate`, so every path answers the same
question the same way.

One cache, owned by the service: a decision is a pure function of the policy revision and the
input (the determinism the tests pin), and the input a pure function of the revision, the
request and the caller; apps ask the same few questions over and over, so each distinct
``(revision, request, caller)`` is resolved and evaluated once. A hit skips the app's profile
(the effective workload, about four times the cost of the rest of the path) and the engine;
the key is ``policy.profile.request_key``, made from the validated fields without encoding
anything. The cached :class:`Evaluation` also keeps, made the first time it is recorded, what
every audited decision of it shares: the canonical bytes of the entry's large members (``input``
and the route lists; the pure-Python RFC 8785 encoder costs about as much as evaluating), the
input and result blobs with their SHA-256 and facets (``audit.entry.DecisionMembers``), and the
JSON of the answer without its id and receipt. Per decision only the id, the context and the
receipt are encoded (docs/performance.md, "The audited path on the v2 log"). The per-policy
members (engine, git) are encoded once per loaded policy, never per revision: an equal bundle
loaded again from another commit shares the answers but records its own ``policy_git``. A
reload changes the revision, so the old bundle's answers are never reused for the new one. A
request the profile refuses (``ProfileViolation``) or an evaluation that fails is not cached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from fastapi.concurrency import run_in_threadpool

from api.metrics import Metrics
from api.settings import Settings
from api.shadow import shadow_verdict
from audit import AuditUnavailable, AuditWriter, DecisionMembers, Receipt, decision_fields
from audit.canonical import Canonical, canonical
from policy import ActivePolicy, Caller, DecisionRequest
from policy.decision import new_decision_id
from policy.profile import request_key
from policy.workload import RequestContext

CACHE_SIZE: int = Settings.model_fields["decision_cache_size"].default  # CLEARANCE_DECISION_CACHE_SIZE


class PolicyHolder:
    """Holds the active policy. Readers take ``current`` once per request; a reload rebinds it
    in one assignment, which is atomic, so no request sees half of two bundles."""

    def __init__(self, policy: ActivePolicy) -> None:
        self.current = policy


@dataclass(slots=True, eq=False)
class Evaluation:
    """One distinct ``(revision, request, caller)``: its policy input, the checked answer
    ``{"outcome", "allowed", "denied"}`` and, once recorded, what its entries and answers share
    (:meth:`members`, :meth:`answer_json`). Shared between requests: do not mutate."""

    input: dict[str, Any]
    answer: dict[str, Any]
    _members: DecisionMembers | None = field(default=None, repr=False)
    _answer_json: tuple[str, bytes] | None = field(default=None, repr=False)

    def members(self) -> DecisionMembers:
        # Made on first use only: simulate and shadow never record. Two threads may both make
        # it; the results are equal.
        if self._members is None:
            self._members = DecisionMembers.encode(self.input, self.answer)
        return self._members

    def answer_json(self, policy_revision: str) -> bytes:
        """``,"outcome":…,"allowed":[…],"denied":[…],"policy_revision":…``: the bytes orjson
        writes of the decision (``DecisionMembers.decision``) between its id and its end."""
        made = self._answer_json
        if made is None or made[0] != policy_revision:  # one revision per cached evaluation
            written = orjson.dumps(self.members().decision(decision_id="", policy_revision=policy_revision))
            made = self._answer_json = (policy_revision, written[len(_NO_ID):-1])
        return made[1]


_NO_ID = b'{"decision_id":""'


@dataclass(frozen=True, slots=True)
class _PolicyMembers:
    """The members of an entry that come from the loaded policy, encoded once per policy."""

    policy: ActivePolicy
    engine: str
    policy_git: Canonical


# The context of a request that sent none (or only nulls): what most entries record.
_NO_CONTEXT = canonical(RequestContext().recorded())


class Decider:
    """Decides for the service; thread-safe (``functools.lru_cache``)."""

    def __init__(self, *, policy: PolicyHolder, shadow: PolicyHolder | None, writer: AuditWriter,
                 metrics: Metrics, cache_size: int = CACHE_SIZE) -> None:
        self.policy = policy
        self.shadow = shadow
        self._writer = writer
        self._metrics = metrics
        self._evaluated = lru_cache(maxsize=cache_size)(self._evaluate_uncached)
        self._policy_members: _PolicyMembers | None = None
        self._decided = {outcome: metrics.decisions.labels(outcome=outcome) for outcome in ("allow", "deny")}

    def evaluate(self, policy: ActivePolicy, request: DecisionRequest, caller: Caller) -> Evaluation:
        """``policy``'s input and checked answer for ``request`` from ``caller``, from the cache
        when it was asked before. Raises what ``ActivePolicy.input_for`` raises (``UnknownApp``,
        ``ProfileViolation``) and ``EvaluationError`` (fail closed); none of them is cached."""
        return self._evaluated(policy.revision, request_key(request), caller, _Unkeyed((policy, request)))

    @staticmethod
    def _evaluate_uncached(revision: str, key: object, caller: Caller, carried: _Unkeyed) -> Evaluation:
        policy, request = carried.take()
        # A private copy (the app's record in the input is the policy's, shared): the cached
        # evaluation outlives the request.
        policy_input = orjson.loads(orjson.dumps(policy.input_for(request, caller)))
        return Evaluation(input=policy_input, answer=policy.evaluate(policy_input))

    async def evaluate_async(self, policy: ActivePolicy, request: DecisionRequest, caller: Caller) -> Evaluation:
        """:meth:`evaluate` from the event loop: an engine that waits on I/O runs in a thread."""
        if policy.blocking:
            return await run_in_threadpool(self.evaluate, policy, request, caller)
        return self.evaluate(policy, request, caller)  # in-process, well under 1 ms

    async def simulate(self, request: DecisionRequest, *, caller: Caller) -> dict[str, Any]:
        """What ``request`` would be answered, without recording it (no id, no receipt)."""
        policy = self.policy.current
        evaluation = await self.evaluate_async(policy, request, caller)
        return {"simulated": True, **evaluation.answer, "policy_revision": policy.revision}

    async def decide(self, request: DecisionRequest, *, caller: Caller) -> dict[str, Any]:
        """Decide, record the signed entry, and return the decision with its ``audit`` receipt.

        The durability contract: the answer is built only from the receipt of a committed
        entry; ``AuditUnavailable`` (no decision) otherwise.
        """
        decision, receipt, _ = await self._recorded(request, caller)
        return {**decision, "audit": receipt.to_dict()}

    async def decide_json(self, request: DecisionRequest, *, caller: Caller) -> bytes:
        """:meth:`decide` as the bytes ``orjson.dumps`` writes of it, spliced: the members
        every decision of one evaluation shares are written once (``POST /v1/decisions``)."""
        decision, receipt, evaluation = await self._recorded(request, caller)
        return b"".join((b'{"decision_id":', orjson.dumps(decision["decision_id"]),
                         evaluation.answer_json(decision["policy_revision"]),
                         b',"audit":', orjson.dumps(receipt.to_dict()), b"}"))

    async def _recorded(self, request: DecisionRequest, caller: Caller) -> tuple[dict[str, Any], Receipt, Evaluation]:
        started = time.perf_counter()
        policy = self.policy.current  # one bundle for the whole request
        evaluation = await self.evaluate_async(policy, request, caller)
        fields, decision = self.entry(policy, request, caller, evaluation)
        try:
            receipt = await self._writer.append_async(fields)
        except AuditUnavailable:
            self._metrics.audit_failures.inc()
            raise
        self._answered(evaluation, started)
        return decision, receipt, evaluation

    def decide_blocking(self, request: DecisionRequest, *, caller: Caller) -> dict[str, Any]:
        """:meth:`decide` for a caller without an event loop (``clearance decide``)."""
        started = time.perf_counter()
        policy = self.policy.current
        evaluation = self.evaluate(policy, request, caller)
        fields, decision = self.entry(policy, request, caller, evaluation)
        try:
            receipt = self._writer.append(fields)
        except AuditUnavailable:
            self._metrics.audit_failures.inc()
            raise
        self._answered(evaluation, started)
        return {**decision, "audit": receipt.to_dict()}

    def entry(self, policy: ActivePolicy, request: DecisionRequest, caller: Caller,
              evaluation: Evaluation) -> tuple[dict[str, Any], dict[str, Any]]:
        """The audit entry's fields for ``evaluation`` (a new decision id; the shadow policy's
        verdict in shadow mode) and the decision, which is the entry's ``result``. The shared
        members come encoded (blobs, policy git, an absent context): the writer splices them."""
        members = evaluation.members()
        revision = policy.revision
        decision = members.decision(decision_id=new_decision_id(), policy_revision=revision)
        constant = self._policy_members_of(policy)
        context = request.context
        fields = decision_fields(
            members=members, result=decision, app_id=request.app_id, caller_key_id=caller.key_id,
            policy_revision=revision, engine=constant.engine,
            context=_NO_CONTEXT if _empty(context) else context.recorded(), policy_git=constant.policy_git,
            shadow=self._shadow(request, caller, decision),
        )
        return fields, decision

    def _policy_members_of(self, policy: ActivePolicy) -> _PolicyMembers:
        # Keyed by the policy object, not its revision: a reload swaps the object (even for an
        # equal bundle, whose git commit may differ). One slot: there is one current policy.
        known = self._policy_members
        if known is None or known.policy is not policy:
            git = policy.bundle.git
            known = self._policy_members = _PolicyMembers(
                policy, policy.engine.name, canonical(git.to_dict() if git else None))
        return known

    def _shadow(self, request: DecisionRequest, caller: Caller, result: dict[str, Any]) -> dict[str, Any] | None:
        if self.shadow is None:  # without shadow mode the path never calls into api/shadow.py
            return None
        verdict, agreement = shadow_verdict(
            self.shadow.current, result=result,
            evaluate=lambda policy: self.evaluate(policy, request, caller).answer)
        self._metrics.shadow_decisions.labels(agreement=agreement).inc()
        return verdict

    def _answered(self, evaluation: Evaluation, started: float) -> None:
        self._decided[evaluation.answer["outcome"]].inc()
        self._metrics.decision_seconds.observe(time.perf_counter() - started)

    def cache_info(self) -> Any:
        return self._evaluated.cache_info()  # type: ignore[attr-defined]


def _empty(context: RequestContext) -> bool:
    # Every member null: recorded as _NO_CONTEXT whatever members the model has.
    return all(value is None for value in context.__dict__.values())


class _Unkeyed:
    """Carries the policy and the request into the cached function without making them part of
    the cache key: the key is the revision (the content hash, so an equal bundle loaded again
    shares the answers) and the request's key.

    ``lru_cache`` keeps the arguments as the key of what it caches, so the function takes the
    value out (:meth:`take`): a key that held its policy kept every reloaded bundle (engine, VMs,
    data: several MB) alive for as long as one of its answers stayed cached — with few distinct
    inputs, for ever, one more bundle per reload."""

    __slots__ = ("value",)

    def __init__(self, value: tuple[ActivePolicy, DecisionRequest]) -> None:
        self.value: tuple[ActivePolicy, DecisionRequest] | None = value

    def take(self) -> tuple[ActivePolicy, DecisionRequest]:
        value, self.value = self.value, None
        assert value is not None, "an _Unkeyed is taken once, by the call it was made for"
        return value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unkeyed)

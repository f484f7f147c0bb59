"""Clearance's decision core: catalog and workload schemas, bundle loading, engines, decisions.

Free of HTTP and storage: ``api`` builds on it, never the reverse. The reviewer's tools (check,
Rego tests and coverage, impact analysis, git) are in ``policy.review``, which builds on the
core; the core never imports it.
"""

from __future__ import annotations

from policy.bundle import Bundle, GitInfo, load_bundle
from policy.decision import ActivePolicy, Caller, Decision, decide, evaluate_input
from policy.engine import OPA_TIMEOUT, Engine, EngineConfigError, EngineName, RegorusEngine
from policy.errors import BundleError, ClearanceError, EvaluationError, PolicyError, UnknownApp
from policy.loading import load_policy, make_engine
from policy.workload import DecisionRequest, Workload

__all__ = [
    "OPA_TIMEOUT",
    "ActivePolicy",
    "Bundle",
    "BundleError",
    "Caller",
    "ClearanceError",
    "Decision",
    "DecisionRequest",
    "Engine",
    "EngineConfigError",
    "EngineName",
    "EvaluationError",
    "GitInfo",
    "PolicyError",
    "RegorusEngine",
    "UnknownApp",
    "Workload",
    "decide",
    "evaluate_input",
    "load_bundle",
    "load_policy",
    "make_engine",
]

"""Clearance's decision core: catalog and workload schemas, bundle loading, engines, decisions.

Free of HTTP and storage: ``api`` and the CLI build on it, never the reverse.
"""

from __future__ import annotations

from pathlib import Path

from policy.bundle import Bundle, load_bundle
from policy.decision import ActivePolicy, Caller, Decision, decide, evaluate_input
from policy.engine import Engine, RegorusEngine
from policy.errors import BundleError, EvaluationError, PolicyError, UnknownApp
from policy.workload import DecisionRequest, Workload

__all__ = [
    "ActivePolicy",
    "Bundle",
    "BundleError",
    "Caller",
    "Decision",
    "DecisionRequest",
    "Engine",
    "EvaluationError",
    "PolicyError",
    "RegorusEngine",
    "UnknownApp",
    "Workload",
    "decide",
    "evaluate_input",
    "load_bundle",
    "load_policy",
]


def load_policy(root: Path | str) -> ActivePolicy:
    """Load, validate and compile a bundle with the embedded engine; raises ``BundleError``."""
    bundle = load_bundle(root)
    return ActivePolicy(bundle=bundle, engine=RegorusEngine(bundle))

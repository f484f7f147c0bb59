"""Clearance's decision core: catalog and workload schemas, bundle loading, engines, decisions.

Free of HTTP and storage: ``api`` and the CLI build on it, never the reverse.
"""

from __future__ import annotations

from pathlib import Path

from policy.bundle import Bundle, load_bundle
from policy.decision import ActivePolicy, Caller, Decision, decide, evaluate_input
from policy.engine import OPA_TIMEOUT, Engine, EngineConfigError, EngineName, RegorusEngine, make_engine
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
    "EngineConfigError",
    "EvaluationError",
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


def load_policy(
    root: Path | str,
    *,
    engine: EngineName = "regorus",
    opa_url: str | None = None,
    opa_timeout: float = OPA_TIMEOUT,
    opa_replace: bool = False,
) -> ActivePolicy:
    """Load and validate a bundle, and compile it (regorus) or install it in OPA (``opa``).

    Raises ``BundleError``, ``EngineConfigError`` or ``policy.opa.OpaError`` with a message that
    says what to do.
    """
    bundle = load_bundle(root)
    chosen = make_engine(bundle, name=engine, opa_url=opa_url, timeout=opa_timeout, replace=opa_replace)
    return ActivePolicy(bundle=bundle, engine=chosen)

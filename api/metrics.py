"""Prometheus metrics, kept in a registry owned by the app (not the process-global one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    decisions: Counter
    decision_seconds: Histogram
    audit_batch_size: Histogram
    audit_failures: Counter
    audit_log_refused: Counter
    shadow_decisions: Counter
    policy_reloads: Counter
    gateway_checks: Counter
    served_routes: Counter

    @classmethod
    def create(cls) -> Metrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            decisions=Counter("clearance_decisions", "Recorded decisions by outcome", ["outcome"], registry=reg),
            decision_seconds=Histogram(
                "clearance_decision_seconds", "Time to decide and durably record one decision",
                buckets=_LATENCY_BUCKETS, registry=reg),
            audit_batch_size=Histogram(
                "clearance_audit_batch_size", "Entries per audit group commit", buckets=_BATCH_BUCKETS, registry=reg),
            audit_failures=Counter(
                "clearance_audit_failures", "Decisions refused because the audit entry could not be committed",
                registry=reg),
            audit_log_refused=Counter(
                "clearance_audit_log_refused", "Audit batches refused because the stored log head is not the "
                "newest checkpoint signed by a trusted key (the log was changed around the writer)",
                registry=reg),
            shadow_decisions=Counter(
                "clearance_shadow_decisions",
                "Decisions also evaluated by the shadow policy, by agreement (same, differs, error)",
                ["agreement"], registry=reg),
            policy_reloads=Counter(
                "clearance_policy_reloads", "Policy reloads by outcome (accepted, refused)", ["outcome"],
                registry=reg),
            gateway_checks=Counter(
                "clearance_gateway_checks", "Gateway checks of a call, by gateway and verdict "
                "(cleared, substituted, blocked; decided: no route named)", ["gateway", "verdict"], registry=reg),
            served_routes=Counter(
                "clearance_served_routes", "Served-route reports by whether the decision cleared the route "
                "(uncleared: a route served that its decision did not clear)", ["status"], registry=reg),
        )

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
    audit_stalled: Counter
    shadow_decisions: Counter
    policy_reloads: Counter
    gateway_checks: Counter
    served_routes: Counter
    witness_cosignatures: Counter
    witness_errors: Counter
    witness_alarms: Counter
    apikey_lookups: Counter

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
                "clearance_audit_log_refused", "Times the audit writer refused to append because the stored log head "
                "is not the newest checkpoint signed by a pinned key, or is behind / inconsistent with the checkpoint "
                "file (the log was changed around the writer), at startup or before a batch", ["when"], registry=reg),
            audit_stalled=Counter(
                "clearance_audit_stalled", "Times an audit batch had waited in the database for "
                "CLEARANCE_AUDIT_STALLED_SECONDS (5), and again as often while it waits: a lock on the log head "
                "held elsewhere, or a stalled database; the writer's log names the sessions that block it", registry=reg),
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
            witness_cosignatures=Counter(
                "clearance_witness_cosignatures", "Witness cosignatures verified and stored, by witness",
                ["witness"], registry=reg),
            witness_errors=Counter(
                "clearance_witness_errors", "Failed pushes to a witness (unreachable, 5xx, bad answer), retried "
                "with backoff", ["witness"], registry=reg),
            witness_alarms=Counter(
                "clearance_witness_alarms", "ALARM: a witness refused the log's checkpoint as inconsistent with "
                "the tree it cosigned (or has cosigned a larger one)", ["witness"], registry=reg),
            apikey_lookups=Counter(
                "clearance_apikey_lookups", "API-key lookups in the database: a request missed the cache and "
                "waited (miss), or a key in use was renewed ahead of its expiry (renewal)", ["why"], registry=reg),
        )

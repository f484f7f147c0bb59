"""A trace search holds when PostgreSQL plans it in parallel (migration 0012).

``audit_trace_keys`` catches a body that is not JSON in an EXCEPTION block: a subtransaction,
which PostgreSQL refuses in a parallel query. While the function was declared PARALLEL SAFE, a
large log (60,000 leaves, default settings) got a parallel plan for a gateway's entries and the
count failed. Here the planner is made to see this small log as it sees a large one (parallel
plans cost nothing, scans instead of the index), and each product query with a trace filter must
answer what the bodies say.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from audit import AuditStore, AuditWriter, SigningKey
from audit.filters import EntryFilter
from audit.queries import query_entries, stats
from tests.audit.helpers import decision_fields, libpq

# What the planner does on a large table, made cheap on a small one.
PARALLEL_PLANS = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0", "min_parallel_table_scan_size": "0",
                  "max_parallel_workers_per_gather": "2", "enable_bitmapscan": "off", "enable_indexscan": "off"}
GATEWAY = (("gateway", "litellm-prod"),)


def _fields(i: int) -> dict[str, Any]:
    gateway = "litellm-prod" if i % 3 == 0 else "portkey"
    return {**decision_fields(i), "context": {"request_id": f"req-{i}", "gateway": {"name": gateway, "call_id": f"c-{i}"}}}


@pytest.fixture
def parallel_log(migrated_database: str, signing_key: SigningKey) -> str:
    """A log of 30 entries (10 through the gateway ``litellm-prod``) in a database whose
    sessions plan as on a large log; its URL."""
    store = AuditStore.from_url(migrated_database)
    try:
        with AuditWriter(store, key=signing_key) as writer:
            for i in range(30):
                writer.append(_fields(i))
    finally:
        store.dispose()
    name = make_url(migrated_database).database
    with psycopg.connect(libpq(migrated_database), autocommit=True) as conn:
        conn.execute("ANALYZE")
        for setting, value in PARALLEL_PLANS.items():
            conn.execute(f'ALTER DATABASE "{name}" SET {setting} = {value}')
    return migrated_database


def _plan(url: str, where: str) -> str:
    with psycopg.connect(libpq(url)) as conn:  # a new session: the database's settings apply
        return "\n".join(r[0] for r in conn.execute(f"EXPLAIN SELECT count(*) FROM audit_leaves WHERE {where}"))


def test_a_trace_filter_answers_under_parallel_plans(parallel_log: str) -> None:
    store = AuditStore.from_url(parallel_log)
    try:
        assert stats(store, EntryFilter(trace=GATEWAY)).total == 10
        page = query_entries(store, EntryFilter(trace=GATEWAY), limit=50)
        assert sorted(item["seq"] for item in page.items) == list(range(1, 31, 3))
        assert stats(store, EntryFilter(trace=GATEWAY, app_id=page.items[0]["app_id"])).total >= 1
    finally:
        store.dispose()
    # The planner does go parallel here, but not where the function is called.
    assert "Parallel Seq Scan" in _plan(parallel_log, "seq > 0")
    assert "Parallel" not in _plan(parallel_log, "audit_trace_keys(body) @> ARRAY['gateway:litellm-prod']")

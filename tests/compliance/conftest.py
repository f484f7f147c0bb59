"""A real app over a real PostgreSQL holding a known set of entries with varied, past times.

The dataset is written by an ``AuditWriter`` whose store has a fake clock (one hour between
entries, from ``T0``), signed with the same key the service then loads; every expected answer
is computed from ``Dataset.fields`` in Python, so a filter that were ignored would return more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uuid_utils

from audit import AuditStore, AuditWriter, CheckpointPolicy, load_signing_key, upgrade
from tests.api.conftest import client, keys, make_settings, services  # noqa: F401 (fixtures)
from tests.conftest import create_database, drop_database

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
COUNT = 48
APPS = ("claims-summariser", "internal-helpdesk", "citizen-services")
TIERS = ("minimal", "standard", "regulated", "critical")
# The sectors a decision was judged for: several when the request left the sector to an app
# whose profile has several.
SECTORS = (["general"], ["financial_services", "insurance"], ["healthcare"], ["general", "healthcare"])
REV_A, REV_B = "sha256:" + "aa" * 32, "sha256:" + "bb" * 32


def dataset_fields(i: int) -> dict[str, Any]:
    """Entry ``i`` of the dataset: every filter dimension varies with ``i``."""
    decision_id = str(uuid_utils.uuid7())
    outcome = "deny" if i % 5 == 0 else "allow"
    allowed: list[dict[str, Any]] = []
    denied: list[dict[str, Any]] = [
        {"model": "gpt-5.4", "deployment": "openai-api",
         "reasons": [{"code": "LICENCE_PROHIBITED_USE" if i % 2 else "UNSUITABLE_PRICE",
                      "message": f"reason for entry {i}"}]},
    ]
    if outcome == "allow":
        allowed.append({"model": "gemma-4-31b", "deployment": "self-hosted", "rank": 1,
                        "price_per_mtok": 0.1, "provenance": "open_western", "obligations": []})
        if i % 3 == 1:
            allowed.append({"model": "deepseek-v4", "deployment": "self-hosted", "rank": 2,
                            "price_per_mtok": 0.2, "provenance": "open_chinese", "obligations": []})
    if not any(r["model"] == "deepseek-v4" for r in allowed):
        denied.append({"model": "deepseek-v4", "deployment": "deepseek-api",
                       "reasons": [{"code": "PROVENANCE_RESTRICTED", "message": "restricted"}]})
    app_id = APPS[i % 3]
    revision = REV_A if i < COUNT // 2 else REV_B
    workload = {"task": "summarization", "quality_tier": "commodity",
                "regulatory_tier": TIERS[i % 4], "sectors": SECTORS[(i // 2) % 4],
                "jurisdictions": ["EEA", "EU"], "data_classification": "internal",
                "dangerous_capability": "none", "commercial": True,
                "monthly_active_users": 1000 + i, "min_context_tokens": 0,
                "max_price_per_mtok": None, "deployment_modes": ["self_hosted"]}
    if i % 7 == 3:  # recorded before app profiles: one sector, under its old name
        workload = {**{k: v for k, v in workload.items() if k != "sectors"}, "sector": workload["sectors"][0]}
    return {
        "kind": "decision", "decision_id": decision_id, "app_id": app_id,
        "caller_key_id": "0123456789abcdef",
        "input": {"app": {"id": app_id}, "workload": workload,
                  "caller": {"key_id": "0123456789abcdef", "role": "app"}},
        "result": {"decision_id": decision_id, "outcome": outcome, "allowed": allowed,
                   "denied": denied, "policy_revision": revision},
        "outcome": outcome, "policy_revision": revision, "engine": "regorus",
        "context": {"request_id": f"req-{i}"},
    }


def sectors_of(fields: dict[str, Any]) -> list[str]:
    """The sectors of an entry's workload, whichever way it was recorded."""
    workload = fields["input"]["workload"]
    return list(workload["sectors"]) if "sectors" in workload else [workload["sector"]]


class StepClock:
    """recorded_at of the dataset: T0, T0 + 1 h, … (one step per batch; batches are of one)."""

    def __init__(self) -> None:
        self.now = T0 - timedelta(hours=1)

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


@dataclass
class Dataset:
    url: str
    home: Path
    fields: list[dict[str, Any]]  # index i = seq i + 1
    times: list[datetime]

    def seqs(self, predicate: Any) -> list[int]:
        return [i + 1 for i, f in enumerate(self.fields) if predicate(f, self.times[i])]


@pytest.fixture(scope="module")
def dataset(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    name = f"clearance_cmp_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    upgrade(url)
    home = tmp_path_factory.mktemp("home")
    settings = make_settings(home, url)  # creates the signing key file
    key = load_signing_key(home / "signing.key")
    store = AuditStore.from_url(url, clock=StepClock())
    fields = [dataset_fields(i) for i in range(COUNT)]
    with AuditWriter(store, key=key, max_batch=1,
                     checkpoints=CheckpointPolicy(every_entries=10, every_seconds=10**9)) as writer:
        receipts = [writer.append(f) for f in fields]
    store.dispose()
    assert [r.seq for r in receipts] == list(range(1, COUNT + 1))
    times = [T0 + timedelta(hours=i) for i in range(COUNT)]
    yield Dataset(url=url, home=settings.home, fields=fields, times=times)
    drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def api_home(dataset: Dataset) -> Path:
    """The service signs with the key that signed the dataset: the only key it trusts (nothing
    else is pinned), as in production after a restart."""
    return dataset.home


@pytest.fixture(scope="module")
def api_database(dataset: Dataset) -> str:
    """The service of tests/api (services, keys, client) runs over this module's dataset."""
    return dataset.url

"""Keyset paging stays stable while new entries are appended."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.services import Services
from audit import queries
from tests.api.conftest import Keys, bearer
from tests.compliance.conftest import COUNT, Dataset, dataset_fields


def test_pages_stay_stable_while_entries_arrive(
    client: TestClient, keys: Keys, services: Services, dataset: Dataset
) -> None:
    auditor = bearer(keys.auditor)
    first = client.get("/v1/audit/decisions", params={"limit": 10}, headers=auditor).json()
    seen = [i["seq"] for i in first["items"]]
    assert seen == list(range(COUNT, COUNT - 10, -1))
    cursor = first["next_cursor"]
    appended: list[int] = []
    while cursor is not None:
        # New decisions arrive between every two pages (the service's own writer, real clock).
        appended += [services.writer.append(dataset_fields(100 + len(appended) + k)).seq for k in range(3)]
        page = client.get("/v1/audit/decisions", params={"limit": 10, "cursor": cursor}, headers=auditor).json()
        seen += [i["seq"] for i in page["items"]]
        cursor = page["next_cursor"]
    # Every original entry exactly once, newest first; none of the new ones slipped in.
    assert seen == list(range(COUNT, 0, -1))
    assert appended and min(appended) == COUNT + 1
    # A fresh first page starts with the newest entry.
    fresh = client.get("/v1/audit/decisions", params={"limit": 1}, headers=auditor).json()
    assert fresh["items"][0]["seq"] == max(appended)


@pytest.mark.parametrize("window", [5000, 3])
def test_asc_paging_with_a_filter_while_entries_arrive(
    client: TestClient, keys: Keys, services: Services, dataset: Dataset, window: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries, "WINDOW", window)  # 3: most pages come through the facets index
    auditor = bearer(keys.auditor)
    dataset_last = len(dataset.fields)
    params = {"limit": 4, "order": "asc", "outcome": "deny"}
    seen: list[int] = []
    cursor = None
    while True:
        page = client.get("/v1/audit/decisions", params={**params, **({"cursor": cursor} if cursor else {})},
                          headers=auditor).json()
        seen += [i["seq"] for i in page["items"]]
        services.writer.append(dataset_fields(0))  # a deny entry (i % 5 == 0), appended at the end
        cursor = page["next_cursor"]
        if cursor is None or len(seen) > 200:
            break
    denies = dataset.seqs(lambda f, t: f["outcome"] == "deny")
    assert seen[: len(denies)] == denies and all(s > dataset_last for s in seen[len(denies):])  # the original ones in chain order, no gaps, no repeats
    assert len(seen) == len(set(seen))

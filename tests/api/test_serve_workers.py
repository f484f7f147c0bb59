"""`clearance serve` worker count: the flag, else CLEARANCE_WORKERS, else one per core."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from api.settings import MAX_WORKERS, Settings, default_workers


def test_default_is_one_worker_per_usable_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARANCE_WORKERS", raising=False)
    assert default_workers() == min(len(os.sched_getaffinity(0)), MAX_WORKERS)
    assert Settings(database_url="postgresql://unused/none").serve_workers() == default_workers()


def test_environment_then_flag_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARANCE_WORKERS", "3")
    settings = Settings(database_url="postgresql://unused/none")
    assert settings.serve_workers() == 3
    assert settings.serve_workers(5) == 5


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_environment_value_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CLEARANCE_WORKERS", value)
    with pytest.raises(ValidationError, match="workers"):
        Settings(database_url="postgresql://unused/none")

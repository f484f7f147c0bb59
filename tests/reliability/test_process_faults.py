"""The server is SIGKILLed in the middle of a load and started again, several times.

Afterwards every decision answered 200 is in the trail at its receipt's seq, seqs run from 1
with no gap and no repeat, and the chain verifies (checkpoints exported before a kill too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from api.apikeys import Role

from .conftest import LONG, make_api_key
from .figures import Figures
from .load import Load, ok_after, summarise
from .server import ServerProcess
from .trail import assert_trail_intact, check_trail

pytestmark = pytest.mark.slow

CYCLES = 6 if LONG else 2
THREADS = 8


@pytest.mark.parametrize("workers", [1, 2] if LONG else [1])
def test_server_sigkilled_under_load_and_restarted(
    migrated_database: str, start_server: Callable[..., ServerProcess], figures: Figures, workers: int
) -> None:
    key = make_api_key(migrated_database, Role.app, "claims-summariser")
    server = start_server(migrated_database, workers=workers, CLEARANCE_CHECKPOINT_EVERY="25")
    load = Load([server.url], key, threads=THREADS, limit=1_000_000).start()
    windows: list[tuple[float, float]] = []
    try:
        load.wait_until(ok_after(0, 40), timeout=60, what="the first 40 decisions")
        for cycle in range(CYCLES):
            load.wait_until(ok_after(time.monotonic(), 25), timeout=60, what="decisions before the kill")
            killed = time.monotonic()
            server.kill()  # mid-load: requests in flight, a batch possibly mid-transaction
            time.sleep(0.3)
            server.start()
            restarted = time.monotonic()
            windows.append((killed, restarted))
            load.wait_until(ok_after(restarted, 25), timeout=60, what=f"decisions after restart {cycle + 1}")
    finally:
        answers = load.stop()

    assert server.starts == CYCLES + 1
    # An answer is a decision (200) or no answer at all (the process died): nothing else.
    assert {a.status for a in answers} <= {200, None}, summarise(answers)
    outside = [a for a in answers if a.status is None and not any(k <= a.answered <= r + 1 for k, r in windows)]
    assert not outside, f"connection errors while the server was up: {outside[:3]}"
    under_fault = [a for a in answers if any(k <= a.sent <= r for k, r in windows)]
    assert under_fault
    figures.requests_under_fault += len(under_fault)

    check = check_trail(migrated_database, answers,
                        checkpoint_files=[p for p in [Path(server.env["CLEARANCE_HOME"]) / "checkpoint.json"]
                                          if p.exists()])
    assert_trail_intact(check, figures)
    figures.notes.append(
        f"process faults ({workers} worker(s)): {CYCLES} SIGKILLs, {len(under_fault)} requests during "
        f"kill..restart, {check.answered} decisions recorded, seq 1..{check.head_seq} contiguous, "
        f"{check.unanswered_entries} entries committed whose caller never got the answer")

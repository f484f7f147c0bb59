"""bench/profile_summary.py reads py-spy's collapsed stacks: shares per thread and per function."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import REPO

sys.path.insert(0, str(REPO))
from bench.profile_summary import summarise  # noqa: E402


def test_shares_are_inclusive_and_per_function(tmp_path: Path) -> None:
    collapsed = tmp_path / "worker-1.txt"
    collapsed.write_text(
        "thread (7): MainThread;run (a.py:1);handle (b.py:5);handle (b.py:9) 3\n"
        "thread (7): MainThread;run (a.py:1);send (c.py:2) 1\n"
        "thread (8): writer;commit (d.py:3) 4\n")
    text = summarise(collapsed, top=10)
    assert "8 samples" in text
    assert " 50.0%  MainThread" in text and " 50.0%  writer" in text
    assert " 37.5%  handle (b.py)" in text  # two lines of one function count once per sample
    assert " 50.0%  run (a.py)" in text and " 12.5%  send (c.py)" in text

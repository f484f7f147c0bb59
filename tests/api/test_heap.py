"""api/heap.py: the heap frozen out of the collector's full passes, and thawed once a period so
that cyclic garbage frozen with it is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from api.heap import HeapFreezer
from api.settings import Settings


class _Node:
    other: _Node | None = None


@pytest.fixture
def collector_held() -> Iterator[None]:
    """No automatic collection during the test; the heap unfrozen before and after."""
    enabled = gc.isenabled()
    gc.disable()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_step_freezes_what_survives_and_a_full_pass_skips_it(collector_held: None) -> None:
    freezer = HeapFreezer(freeze_seconds=1, thaw_seconds=60)
    kept = [[] for _ in range(1000)]
    freezer.step()
    assert gc.get_freeze_count() >= len(kept)
    # A cycle still referenced when frozen, dropped afterwards: a full pass does not see it.
    a = _Node()
    a.other = _Node()
    a.other.other = a
    ref = weakref.ref(a)
    freezer.step()
    del a
    gc.collect()
    assert ref() is not None


def test_cyclic_garbage_frozen_is_collected_at_the_thaw(collector_held: None) -> None:
    freezer = HeapFreezer(freeze_seconds=1, thaw_seconds=3)  # a thaw every third step
    a = _Node()
    a.other = _Node()
    a.other.other = a
    ref = weakref.ref(a)
    freezer.step()  # frozen while referenced
    del a
    freezer.step()
    gc.collect()
    assert ref() is not None, "frozen: not collected before the thaw"
    freezer.step()  # the thaw: unfrozen, collected, frozen again
    assert ref() is None
    assert gc.get_freeze_count() > 0


def test_garbage_of_young_generations_is_collected_before_freezing(collector_held: None) -> None:
    ref = _cycle()
    HeapFreezer(freeze_seconds=1, thaw_seconds=60).step()
    assert ref() is None


def test_the_thread_steps_and_stops(collector_held: None) -> None:
    freezer = HeapFreezer(freeze_seconds=0.01, thaw_seconds=1)
    freezer.start()
    ref = _cycle()
    for _ in range(200):
        if ref() is None:
            break
        import time
        time.sleep(0.01)
    freezer.stop()
    assert ref() is None


def test_settings() -> None:
    assert Settings().gc_freeze_seconds == 0.1 and Settings().gc_thaw_seconds == 600.0
    with pytest.raises(ValueError):
        HeapFreezer(freeze_seconds=0, thaw_seconds=1)

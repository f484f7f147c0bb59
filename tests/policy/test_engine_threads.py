"""regorus' objects (a VM, an interpreter) may only be dropped by the thread that made them: they
are PyO3 "unsendable" classes, and one dropped on another thread is leaked, with a RuntimeError
printed as unraisable. A policy reload lets the old engine go on whichever thread drops it last
(the reload's, the event loop's) while the threads that evaluated with it live on; every reload
then leaked their VMs (~1 MB each, the catalog's data and the program). The engine leaves its
regorus objects with the threads that made them (``policy/engine.py``)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import regorus

from policy import ActivePolicy, Caller, DecisionRequest
from policy.engine import RegorusEngine, thread_held_engines
from tests.policy.test_engine import HEAVY


@contextmanager
def unraisables() -> Iterator[list[Any]]:
    caught: list[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = caught.append
    try:
        yield caught
    finally:
        sys.unraisablehook = hook


@pytest.mark.parametrize("part_models", [None, 5], ids=["whole", "parts"])
def test_engines_dropped_on_another_thread_are_released_by_the_threads_that_used_them(
    policy: ActivePolicy, part_models: int | None
) -> None:
    policy_input = policy.input_for(DecisionRequest.model_validate(HEAVY), Caller(key_id="k", role="app"))
    expected = policy.engine.evaluate(policy_input)
    with unraisables() as caught, ThreadPoolExecutor(1) as pool:
        for _ in range(4):  # four reloads: each engine used by a pool thread and this one, dropped here
            engine = RegorusEngine(policy.bundle, part_models=part_models)
            assert pool.submit(engine.evaluate, policy_input).result() == expected
            assert engine.evaluate(policy_input) == expected
            del engine
            gc.collect()
            # What the pool thread holds: the live engines' objects and those of engines gone
            # since it last took up a new one, not one per reload.
            assert pool.submit(thread_held_engines).result() == 1
        del policy_input
    gc.collect()
    assert not caught, [str(u.exc_value) for u in caught]


def test_the_invariant_search_leaves_no_regorus_object_to_the_collector() -> None:
    """The reload gate's invariant search (``policy.review.invariants``) ends in reference cycles
    (Hypothesis keeps the closures that reach its checker). Its checker's interpreter and VM are
    let go when the search ends, on its thread; left in those cycles, the server's collector (the
    heap thread, ``api/heap.py``) dropped them on its own thread, leaking both on every reload."""
    from policy import load_policy
    from policy.review.invariants import search
    from tests.conftest import REPO

    policy = load_policy(REPO / "rego")
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        search(policy, examples=20, quick=True)
        gc.collect()
        held = [type(r).__name__ for o in gc.garbage for r in gc.get_referents(o)
                if type(r) in (regorus.Engine, regorus.Rvm, regorus.Program)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert held == []

"""Impact analysis: what a policy change would do to the decisions actually served.

``analyse(base_dir, head_dir, replays)`` judges every recorded workload with both bundles and
tallies how the candidate (*head*) differs from the baseline (*base*):

* outcome flips, ``allow→deny`` being **breaking** (the app would lose every route it had);
* routes newly cleared and newly denied, per app and model (with the reasons that now deny);
* reason codes appearing on or disappearing from routes, and obligations gained or lost by
  routes cleared on both sides;
* up to five concrete examples, breaking ones first, with their decision ids;
* how long it took.

Replay semantics (also stated in every report): what was asked (``input.requested``) and the
caller are replayed as recorded; the app's entitlements and profile (``input.app``, and so the
effective workload) are looked up by app id in *each side's own* ``apps.yaml``, because they are
governance data under review like the rules — a pull request that withdraws an approval or
narrows a profile shows its effect. An app missing from one side's
``apps.yaml`` is a ``deny`` there (the service would refuse it), reported as an error of that side.

Speed: a decision recorded under the base's revision (with the base's record of the app) *is*
the base's answer, so the base does not decide it again; identical workloads are judged once (a
bounded cache keyed on the canonical replay); an app whose record and profile are the same on
both sides is resolved once for both; the two answers are compared as the engine gave them
(``diff.compare_answers``); and past one batch (``BATCH`` replays) every batch is judged by a
pool of processes, one per core this process may use (regorus holds the GIL while it
evaluates), while this process reads the next batch and tallies the previous one. Measured by
``bench/impact_bench.py``.

``bundle_at(policy_dir, ref, dest)`` builds a side from git (``git archive``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import hashlib
import itertools
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from clearance.children import exit_with_parent
from policy import ActivePolicy, load_policy
from policy.errors import ClearanceError, EvaluationError, UnknownApp
from policy.profile import ProfileViolation
from policy.review.diff import Answer, Change, compare_answers, well_formed
from policy.review.gitinfo import GitError, export_tree, git_info
from policy.review.impact_report import EXAMPLES, ImpactReport, Side, Tally
from policy.review.replay import Replay, Skipped

BATCH = 2048  # replays read, de-duplicated and judged together; one batch runs in-process
CHUNK = 128  # at most this many replays per task sent to a pool process
CACHE_ENTRIES = 500_000  # distinct workloads remembered (16-byte digests: ~100 MB at most)


class ImpactError(ClearanceError):
    """The analysis cannot run (a ref does not resolve, a bundle is missing…)."""


def bundle_at(policy_dir: Path, ref: str, dest: Path) -> tuple[Path, str]:
    """``(directory, commit)`` of the policy directory exported at ``ref``."""
    try:
        tree = export_tree(policy_dir, ref, dest)
    except GitError as exc:
        raise ImpactError(str(exc)) from None
    return tree.directory, tree.commit


def side_of(name: str, directory: Path, *, ref: str | None, commit: str | None, policy: ActivePolicy,
            shown: str | None = None) -> Side:
    """Describe a side: an exported ref (commit known) or the work tree (git asked)."""
    if ref is not None:
        return Side(name, ref, shown or directory.as_posix(), policy.revision, commit, False)
    git = git_info(directory)
    return Side(name, "work tree", directory.as_posix(), policy.revision,
                git.commit if git else None, git.dirty if git else None)


# -- judging -----------------------------------------------------------------------------------


class Judge:
    """Both policies side by side: what each decides for one replay, and how they differ."""

    def __init__(self, base: ActivePolicy, head: ActivePolicy) -> None:
        self.base, self.head = base, head
        self._same: dict[tuple[str, str], Change] = {}
        # Apps whose record and profile are the same on both sides: a replay of one resolves
        # to the same policy input (or the same refusal) on both, so it is resolved once.
        self._shared_input = _same_profiles(base, head)

    def judge(self, replay: Replay) -> Change:
        head_input: dict[str, Any] | str
        base = _recorded(replay)
        if base is None:
            base_input = _input(self.base, replay)
            base = _answer(self.base, base_input)
            head_input = base_input if replay.app_id in self._shared_input else _input(self.head, replay)
        else:
            head_input = _input(self.head, replay)
        change = compare_answers(base, _answer(self.head, head_input))
        if change.differs:
            return change
        # Most replays change nothing: share one object per outcome pair (memory, pickling).
        return self._same.setdefault((change.base_outcome, change.head_outcome), change)


def _same_profiles(base: ActivePolicy, head: ActivePolicy) -> frozenset[str]:
    """Ids of the apps that resolve a request identically on both sides: the same record,
    profile and named workloads in ``apps.yaml``, under the same jurisdiction groups."""
    if base.bundle.catalog.jurisdictions.groups != head.bundle.catalog.jurisdictions.groups:
        return frozenset()
    heads = {a.id: a.model_dump(mode="json") for a in head.bundle.catalog.apps}
    return frozenset(a.id for a in base.bundle.catalog.apps if heads.get(a.id) == a.model_dump(mode="json"))


def _recorded(replay: Replay) -> dict[str, Any] | None:
    """The recorded answer, when it may stand for the base's (see ``_with_reusable_record``)."""
    if replay.recorded_result is None or not well_formed(replay.recorded_result):
        return None  # none, or not a decision's shape: let the base decide
    return replay.recorded_result


_FAILURES = (UnknownApp, EvaluationError, ProfileViolation)  # what the service answers as a deny


def _input(policy: ActivePolicy, replay: Replay) -> dict[str, Any] | str:
    """The policy input ``policy`` builds for the replay, or why it refuses it."""
    try:
        return policy.input_for_recorded(replay.app_id, replay.requested, replay.caller)
    except _FAILURES as exc:
        return str(exc)


def _answer(policy: ActivePolicy, policy_input: dict[str, Any] | str) -> Answer:
    """What ``policy`` decides; fails closed (a deny with the error) as the service would."""
    if isinstance(policy_input, str):
        return policy_input
    try:
        return policy.evaluate(policy_input)
    except _FAILURES as exc:
        return str(exc)


# One Judge per pool process, made by its initializer (process-local by construction).
_PROCESS_JUDGE: Judge | None = None


def _init_process(base_dir: str, head_dir: str, parent: int) -> None:
    global _PROCESS_JUDGE
    exit_with_parent(parent)
    _PROCESS_JUDGE = Judge(load_policy(base_dir), load_policy(head_dir))
    gc.set_threshold(*_REPLAY_GC_THRESHOLD)  # this process only replays: see _rare_collections


# Replay allocates many short-lived, acyclic objects (parsed JSON), and the batch keeps
# thousands alive: at the default thresholds the cyclic collector rescans them all again and
# again (measured: 15-20 % of the replay's CPU). Reference counting frees them anyway.
_REPLAY_GC_THRESHOLD = (100_000, 50, 1000)


@contextlib.contextmanager
def _rare_collections() -> Iterator[None]:
    """Collect rarely while replaying; the previous thresholds are restored afterwards."""
    previous = gc.get_threshold()
    gc.set_threshold(*_REPLAY_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _judge_chunk(replays: list[Replay]) -> list[Change]:
    assert _PROCESS_JUDGE is not None, "pool process not initialised"
    return [_PROCESS_JUDGE.judge(r) for r in replays]


class _Cache:
    """Bounded LRU of judged workloads, keyed by a 16-byte digest of the canonical replay."""

    def __init__(self, entries: int) -> None:
        self._entries, self._data = entries, collections.OrderedDict[bytes, Change]()

    @staticmethod
    def digest(key: bytes) -> bytes:
        return hashlib.blake2b(key, digest_size=16).digest()

    def get(self, digest: bytes) -> Change | None:
        found = self._data.get(digest)
        if found is not None:
            self._data.move_to_end(digest)
        return found

    def put(self, digest: bytes, change: Change) -> None:
        self._data[digest] = change
        if len(self._data) > self._entries:
            self._data.popitem(last=False)


def analyse(
    base_dir: Path,
    head_dir: Path,
    replays: Iterable[Replay | Skipped],
    *,
    base_ref: str | None,
    head_ref: str | None = None,
    base_commit: str | None = None,
    head_commit: str | None = None,
    inputs: str = "",
    shown_dir: str | None = None,
    workers: int = 0,
    examples: int = EXAMPLES,
    batch: int = BATCH,
) -> ImpactReport:
    """Replay ``replays`` through both bundles and tally the differences.

    :param base_ref/head_ref: the git refs the directories were exported from (``None``: the
        work tree, whose git state is asked); shown in the report.
    :param workers: processes to judge in; ``1`` keeps everything in this process, ``0``
        (default) one per core this process may run on (``default_workers``); either way a
        run of at most ``BATCH`` replays stays in this process (a pool's start-up would cost
        more than it saves).
    :param examples: how many concrete examples to keep.
    :param batch: replays read and judged together (memory bound; tests make it small).
    :param shown_dir: how to name an exported side's directory in the report (its path in the
        repository rather than a temporary directory).
    Raises ``BundleError`` (naming the side's files) if either bundle does not load.
    """
    started = time.perf_counter()
    base, head = load_policy(base_dir), load_policy(head_dir)
    judge = Judge(base, head)
    sides = (side_of("base", base_dir, ref=base_ref, commit=base_commit, policy=base, shown=shown_dir),
             side_of("head", head_dir, ref=head_ref, commit=head_commit, policy=head, shown=shown_dir))
    apps_changed = [a.model_dump() for a in base.bundle.catalog.apps] != [a.model_dump() for a in head.bundle.catalog.apps]
    build_seconds = time.perf_counter() - started

    # Room for the batches in flight besides what is remembered (see _tally).
    tally, cache = Tally(examples_wanted=examples), _Cache(max(CACHE_ENTRIES, 4 * batch))
    evaluated = 0
    pool: Any = None
    wanted = workers if workers > 0 else default_workers()
    in_flight: collections.deque[_Submitted] = collections.deque()
    pending: set[bytes] = set()  # workloads sent to the pool, not yet back
    with _rare_collections(), contextlib.ExitStack() as cleanup:
        for replays_batch, more in _lookahead(_batches(replays, tally, batch, base)):
            # A run of more than one batch is spread over the pool; a smaller one stays here.
            if pool is None and wanted > 1 and more:
                pool = _start_pool(wanted, base_dir, head_dir)
                cleanup.callback(_stop_pool, pool)
            if pool is None:
                evaluated += _judge_batch(replays_batch, tally, cache, judge=judge)
                continue
            # Every batch goes to the pool (the first waits there for the processes to start);
            # this process reads and sends the next one while the pool judges, and tallies in order.
            in_flight.append(_submit(replays_batch, cache, pending, pool, wanted))
            if len(in_flight) > 1:
                evaluated += _finish(in_flight.popleft(), tally, cache, pending)
        while in_flight:
            evaluated += _finish(in_flight.popleft(), tally, cache, pending)
    return ImpactReport(
        base=sides[0], head=sides[1], inputs=inputs, apps_changed=apps_changed, tally=tally,
        seconds=time.perf_counter() - started, build_seconds=build_seconds, evaluated=evaluated,
        workers=wanted if pool is not None else 1,
    )


def _batches(replays: Iterable[Replay | Skipped], tally: Tally, size: int, base: ActivePolicy) -> Iterator[list[Replay]]:
    batch: list[Replay] = []
    for item in replays:
        if isinstance(item, Skipped):
            tally.skip(item)
            continue
        batch.append(_with_reusable_record(item, base, tally))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _with_reusable_record(replay: Replay, base: ActivePolicy, tally: Tally) -> Replay:
    """Keep the recorded answer only where it is the base's: recorded under the base's
    revision with the base's own record of the app; otherwise the base decides again."""
    if replay.recorded_result is None:
        return replay
    try:
        same = (replay.recorded_result.get("policy_revision") == base.revision
                and replay.recorded_app == base.app_record(replay.app_id))
    except UnknownApp:
        same = False
    if same:
        tally.reused += 1
        return replay
    return dataclasses.replace(replay, recorded_result=None, recorded_app=None)


def _lookahead(batches: Iterator[list[Replay]]) -> Iterator[tuple[list[Replay], bool]]:
    """Each batch with whether another one follows."""
    current = next(batches, None)
    while current is not None:
        following = next(batches, None)
        yield current, following is not None
        current = following


def default_workers() -> int:
    """One process per core this process may run on (``os.cpu_count()`` where affinity is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _stop_pool(pool: Any) -> None:
    pool.terminate()
    pool.join()


def _start_pool(processes: int, base_dir: Path, head_dir: Path) -> Any:
    # spawn, not fork: the parent may hold database connections and regorus objects that a
    # forked child must not inherit.
    context = multiprocessing.get_context("spawn")
    return context.Pool(processes, initializer=_init_process, initargs=(str(base_dir), str(head_dir), os.getpid()))


def _judge_batch(batch: list[Replay], tally: Tally, cache: _Cache, *, judge: Judge) -> int:
    """Judge the batch's workloads not seen before here, then tally every replay; returns how
    many workloads were judged."""
    keys, digests, todo = _unseen(batch, cache, set())
    fresh = {digest: judge.judge(replay) for digest, replay in todo.items()}
    _tally(batch, keys, digests, fresh, tally, cache)
    return len(fresh)


@dataclasses.dataclass
class _Submitted:
    """A batch whose unseen workloads are being judged by the pool."""

    batch: list[Replay]
    keys: list[bytes]
    digests: list[bytes]
    sent: list[bytes]  # digests of the workloads sent, in order
    result: Any  # the pool's AsyncResult (None: nothing to judge)


def _submit(batch: list[Replay], cache: _Cache, pending: set[bytes], pool: Any, processes: int) -> _Submitted:
    keys, digests, todo = _unseen(batch, cache, pending)
    pending.update(todo)
    replays = list(todo.values())
    result = None
    if replays:
        # Enough chunks to keep every process busy, none so small that IPC dominates.
        size = max(1, min(CHUNK, -(-len(replays) // (2 * processes))))
        chunks = [replays[i:i + size] for i in range(0, len(replays), size)]
        result = pool.map_async(_judge_chunk, chunks, chunksize=1)
    return _Submitted(batch, keys, digests, list(todo), result)


def _finish(submitted: _Submitted, tally: Tally, cache: _Cache, pending: set[bytes]) -> int:
    """Wait for a submitted batch and tally it; returns how many workloads were judged."""
    changes = list(itertools.chain.from_iterable(submitted.result.get())) if submitted.result is not None else []
    fresh = dict(zip(submitted.sent, changes, strict=True))
    pending.difference_update(fresh)
    _tally(submitted.batch, submitted.keys, submitted.digests, fresh, tally, cache)
    return len(fresh)


def _unseen(batch: list[Replay], cache: _Cache, pending: set[bytes]) -> tuple[list[bytes], list[bytes], dict[bytes, Replay]]:
    """The batch's keys and digests, and its workloads neither judged (cached) nor being judged."""
    keys = [r.key() for r in batch]
    digests = [_Cache.digest(k) for k in keys]
    todo: dict[bytes, Replay] = {}
    for replay, digest in zip(batch, digests, strict=True):
        if digest not in todo and digest not in pending and cache.get(digest) is None:
            todo[digest] = replay
    return keys, digests, todo


def _tally(batch: list[Replay], keys: list[bytes], digests: list[bytes], fresh: dict[bytes, Change], tally: Tally,
           cache: _Cache) -> None:
    for digest, change in fresh.items():
        cache.put(digest, change)
    for replay, key, digest in zip(batch, keys, digests, strict=True):
        # A workload judged for an earlier batch is in the cache: batches are tallied in order,
        # and the cache holds more than the few batches in flight put in it (``analyse``).
        change = fresh.get(digest) or cache.get(digest)
        assert change is not None
        tally.add(replay, change, key)

"""HTTP end to end over loopback with the real PostgreSQL, driven by wrk.

    python bench/http_bench.py [--duration 30] [--connections 32] [--workers N] [--json OUT]

Starts `clearance serve` as a subprocess on a fresh database, then, with the same server:
audited decisions (`POST /v1/decisions`, a rotating mix of workloads across six apps),
`GET /healthz`, the unaudited `POST /v1/policy/simulate`, and audited decisions again at low
concurrency (`--low-connections`: the latency one app sees when the service is not saturated).
Afterwards it checks that every decision id answered with 200 is in the audit trail and that the
chain verifies, and reads each worker's peak RSS (VmHWM). Needs `wrk` (Debian package `wrk`).

During the main audited run it also reports where the CPU went (server workers, PostgreSQL, wrk,
idle; from /proc) and how busy the log-head lock was, sampled from PostgreSQL every 10 ms: the share
of samples in which an appending transaction held the v2 log's head row lock, and in which another
waited for it. The chain is serial by design (docs/contract.md), so a held share near 1 is its ceiling.

`--profile DIR` also records each server worker with py-spy (`pip install -e '.[bench]'`) during
the audited run, sampling only the thread holding the GIL: DIR/worker-<pid>.txt, collapsed stacks
(grep them, or open them in speedscope or flamegraph.pl); `python bench/profile_summary.py DIR`
prints the functions by share of samples.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit import AuditStore, init_key, upgrade  # noqa: E402
from audit.logverify import verify_trail  # noqa: E402
from audit.trust import trusted_verifiers  # noqa: E402
from bench.api_keys import create_keys  # noqa: E402
from bench.inprocess import WORKLOADS  # noqa: E402

LUA = REPO / "bench" / "wrk" / "decisions.lua"
MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_database(server_url: str) -> tuple[str, str]:
    name = f"clearance_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wrk(url: str, lines: list[str], *, duration: int, connections: int, threads: int, tmp: Path,
        name: str) -> dict[str, Any]:
    requests_file = tmp / f"{name}.requests"
    requests_file.write_text("\n".join(lines) + "\n")
    ids_file = tmp / f"{name}.ids"
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(LUA), url,
         "--", str(requests_file), str(ids_file)],
        capture_output=True, text=True, check=True, timeout=duration + 60)
    match = re.search(r"^WRK_JSON (.+)$", out.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(match.group(1))
    result["rate_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
    result["ids"] = ids_file.read_text().split() if ids_file.exists() else []
    return result


def service_env(sa_url: str, home: Path, settings: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a bench's ``clearance serve``: this database, ``home`` (where the caller
    made ``signing.key``), this checkout's policy, then ``settings`` (``NAME=VALUE``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
    env.update(CLEARANCE_DATABASE_URL=sa_url, CLEARANCE_HOME=str(home), CLEARANCE_SIGNING_KEY=str(home / "signing.key"),
               CLEARANCE_POLICY_DIR=str(REPO / "rego"))
    env.update(setting.split("=", 1) for setting in settings)
    return env


def start_server(env: dict[str, str], *, log: Path, workers: int | None = None) -> tuple[subprocess.Popen[Any], str]:
    """``clearance serve`` on a free port, once ``/readyz`` answers 200: the process and its base
    URL (stop it with :func:`stop_server`). Its stderr goes to ``log``."""
    port = free_port()
    serve = [sys.executable, "-m", "api", "serve", "--port", str(port)]
    if workers:
        serve += ["--workers", str(workers)]
    server = subprocess.Popen(serve, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            stop_server(server)
            raise RuntimeError(f"server did not start:\n{log.read_text()}")
        time.sleep(0.3)


def stop_server(server: subprocess.Popen[Any]) -> None:
    """Stop ``clearance serve`` as an operator does (SIGINT), killed if it takes over a minute."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a bench that starts its own :func:`bench_server`: its settings, the
    PostgreSQL server it makes its database on, where to write the JSON result."""
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", MACHINE_PG),
                        help="a PostgreSQL server URL (a fresh database is created on it)")
    parser.add_argument("--json", type=Path)


@dataclass
class BenchServer:
    """A running ``clearance serve`` of :func:`bench_server`."""

    base: str  # its URL
    env: dict[str, str]  # its environment (the CLI with it acts on its database)
    tmp: Path  # a scratch directory that lives as long as the server (its home, its log)
    process: subprocess.Popen[Any]
    log: Path  # its stderr


@contextmanager
def bench_server(database: str, settings: Iterable[str] = (), *,
                 prepare: Callable[[Path], Iterable[str]] = lambda tmp: ()) -> Iterator[BenchServer]:
    """``clearance serve`` on a fresh, migrated database of the PostgreSQL server at ``database``,
    with a new signing key and ``settings`` (``NAME=VALUE``), plus those ``prepare(tmp)`` returns;
    stopped and its database dropped afterwards."""
    db_name, db_url = create_database(database)
    sa_url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            upgrade(sa_url)
            init_key(tmp / "signing.key")
            env = service_env(sa_url, tmp, [*settings, *prepare(tmp)])
            log = tmp / "server.log"
            server, base = start_server(env, log=log)
            try:
                yield BenchServer(base, env, tmp, server, log)
            finally:
                stop_server(server)
    finally:
        drop_database(database, db_name)


def worker_pids(master: int) -> list[int]:
    """uvicorn's worker processes (children of the master), or the master itself with one worker.
    multiprocessing's resource tracker, another python child of the master, is not a worker."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", text, re.MULTILINE)
        if (ppid and int(ppid.group(1)) == master and "python" in text.split("\n", 1)[0].lower()
                and b"resource_tracker" not in cmdline):
            children.append(int(status.parent.name))
    return children or [master]


def status_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory figure of /proc/PID/status in MB: VmHWM (peak resident), VmRSS (resident now)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


@contextmanager
def rss_sampler(pids: list[int], every: float | None) -> Iterator[list[list[float]]]:
    """Each worker's resident memory (VmRSS, MB) every ``every`` seconds while the block runs, as
    rows [seconds since start, MB of each worker]: how memory goes over a long run (the heap
    freezer's thaw period, the evaluation cache filling). Nothing sampled when ``every`` is None."""
    rows: list[list[float]] = []
    if not every:
        yield rows
        return
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while True:
            rows.append([round(time.monotonic() - t0, 1), *(round(status_mb(pid, "VmRSS"), 1) for pid in pids)])
            if stop.wait(every):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield rows
    finally:
        stop.set()
        thread.join()


# One sample: appending transactions holding the table lock their SELECT … FOR UPDATE took on
# the v2 log's head (audit_tlog_head), split into those waiting for the row (wait_event_type Lock) and the one past it.
CHAIN_LOCK_SQL = """
SELECT count(*) FILTER (WHERE a.wait_event_type IS DISTINCT FROM 'Lock'),
       count(*) FILTER (WHERE a.wait_event_type = 'Lock')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.relation = 'audit_tlog_head'::regclass AND l.mode = 'RowShareLock' AND l.granted
"""


@contextmanager
def chain_lock_sampler(db_url: str, every: float = 0.01) -> Iterator[dict[str, Any]]:
    """Sample the log-head lock while the block runs; fills the yielded dict at the end."""
    found: dict[str, Any] = {}
    samples: list[tuple[int, int]] = []
    stop, connected = threading.Event(), threading.Event()

    def sample() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            found["backend_pid"] = conn.info.backend_pid  # its own CPU is not the service's
            connected.set()
            while not stop.wait(every):
                samples.append(conn.execute(CHAIN_LOCK_SQL).fetchone())  # type: ignore[arg-type]

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    connected.wait(10)
    try:
        yield found
    finally:
        stop.set()
        thread.join()
        n = len(samples) or 1
        found.update(samples=len(samples), held_share=sum(1 for h, _ in samples if h) / n,
                     writer_waiting_share=sum(1 for _, w in samples if w) / n)


@contextmanager
def profiled(pids: list[int], out: Path | None, duration: int) -> Iterator[None]:
    """py-spy each process while the block runs (from 1 s in, for most of ``duration``)."""
    if out is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    seconds = str(max(1, duration - 2))
    spies = [subprocess.Popen(
        ["sh", "-c", f"sleep 1; exec py-spy record --gil --threads --rate 200 -d {seconds} -p {pid} "
                     f"-f raw -o {out / f'worker-{pid}.txt'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid in pids]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(timeout=60)


def _ticks(pid: int, tid: int | None = None) -> int:
    """utime + stime of process ``pid``, or of its thread ``tid`` (the main thread: ``tid=pid``)."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _postgres_pids() -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


def _thread_ticks(pid: int) -> dict[int, int]:
    """utime + stime of each thread of ``pid`` (by thread id)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        found[int(task.name)] = _ticks(pid, int(task.name))
    return found


# The PostgreSQL processes that work for this run: the backends connected to the bench's database
# (the server's, the lock sampler's) and the server-wide helpers every commit uses (WAL writer,
# checkpointer, background writer). Other sessions' backends on the same server are left out.
BACKENDS_SQL = """
SELECT pid, CASE WHEN datname = current_database() AND pid = pg_backend_pid() THEN 'bench'
                 WHEN datname = current_database() THEN backend_type
                 WHEN datname IS NULL AND backend_type <> 'client backend' THEN 'shared: ' || backend_type END
FROM pg_stat_activity
"""


def postgres_roles(db_url: str, sampler_pid: int | None) -> dict[int, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(BACKENDS_SQL).fetchall()
    return {pid: ("lock sampler" if pid == sampler_pid else role) for pid, role in rows if role and role != "bench"}


def cpu_during(run: Callable[[], dict[str, Any]], workers: list[int], *, db_url: str,
               sampler_pid: int | None = None) -> tuple[dict[str, Any], dict[str, float], dict[str, Any]]:
    """Run ``run`` (a wrk run) and say how many cores each part used meanwhile; also the CPU
    seconds by process and thread (the third value: divided by the requests answered, CPU per
    request)."""
    hz = os.sysconf("SC_CLK_TCK")

    def snapshot() -> tuple[float, int, int, float, list[int], int]:
        machine = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        wrk_ticks = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (time.monotonic(), sum(_ticks(p) for p in workers), sum(_ticks(p) for p in _postgres_pids()),
                (wrk_ticks.ru_utime + wrk_ticks.ru_stime), machine, sum(_ticks(p, p) for p in workers))

    roles = postgres_roles(db_url, sampler_pid)
    threads0 = {pid: _thread_ticks(pid) for pid in workers}
    pg0 = {pid: _ticks(pid) for pid in roles}
    t0, w0, p0, c0, m0, l0 = snapshot()
    result = run()
    t1, w1, p1, c1, m1, l1 = snapshot()
    threads1 = {pid: _thread_ticks(pid) for pid in workers}
    # Backends that connected during the run (a connection kept idle too long is replaced) count
    # from zero; those that ended during it are lost (rare: the writer keeps its connection).
    roles = postgres_roles(db_url, sampler_pid) | roles
    pg1 = {pid: _ticks(pid) for pid in roles}
    seconds = t1 - t0
    machine = [b - a for a, b in zip(m0, m1, strict=True)]
    cores = os.cpu_count() or 1
    by_worker = []
    for pid in workers:
        ticks = {tid: threads1[pid].get(tid, 0) - threads0[pid].get(tid, 0) for tid in threads1[pid]}
        others = sorted((t for tid, t in ticks.items() if tid != pid), reverse=True)
        # Threads are not named in /proc (Python 3.11): besides the event loop (the main thread),
        # the two busiest are the audit writer's batching thread, then its checkpoint-file thread.
        by_worker.append({"event_loop": ticks.get(pid, 0) / hz, "busiest_other_threads": [t / hz for t in others[:3]],
                          "rest": sum(others[3:]) / hz})
    by_pg: dict[str, float] = {}
    for pid, role in roles.items():
        by_pg[role] = by_pg.get(role, 0.0) + max(0, pg1.get(pid, 0) - pg0.get(pid, 0)) / hz
    seconds_by_part = {"workers": by_worker, "postgresql": by_pg, "wrk": c1 - c0, "wall": seconds}
    return result, {
        "server_workers": (w1 - w0) / hz / seconds,
        # Their main threads: the event loops (the rest is the audit writer's and file threads).
        "server_event_loops": (l1 - l0) / hz / seconds,
        "postgresql": (p1 - p0) / hz / seconds,  # every postgres process of that server
        "wrk": (c1 - c0) / seconds,
        "idle": machine[3] / sum(machine) * cores,
        "cores": cores,
    }, seconds_by_part


def cpu_per_request(seconds: dict[str, Any], requests: int) -> dict[str, Any]:
    """CPU µs per answered request: the service's (workers and this database's PostgreSQL
    processes, the lock sampler's backend left out) in all and by part."""
    us = 1e6 / max(1, requests)
    workers = seconds["workers"]
    loops = sum(w["event_loop"] for w in workers)
    writer = sum(w["busiest_other_threads"][0] for w in workers if w["busiest_other_threads"])
    file_ = sum(w["busiest_other_threads"][1] for w in workers if len(w["busiest_other_threads"]) > 1)
    rest = sum(sum(w["busiest_other_threads"][2:]) + w["rest"] for w in workers)
    pg = {role: s for role, s in seconds["postgresql"].items() if role != "lock sampler"}
    backends = sum(s for role, s in pg.items() if not role.startswith("shared: "))
    shared = sum(s for role, s in pg.items() if role.startswith("shared: "))
    service = loops + writer + file_ + rest + backends + shared
    return {
        "service_total": round(service * us, 1),
        "event_loops": round(loops * us, 1), "writer_threads": round(writer * us, 1),
        "checkpoint_file_threads": round(file_ * us, 1), "other_worker_threads": round(rest * us, 1),
        "postgresql_backends": round(backends * us, 1), "postgresql_shared_processes": round(shared * us, 1),
        "postgresql_by_role": {role: round(s * us, 1) for role, s in seconds["postgresql"].items()},
        "wrk": round(seconds["wrk"] * us, 1),
    }


LOG_COUNTS_SQL = "SELECT (SELECT count(*) FROM audit_tlog_checkpoints), (SELECT size FROM audit_tlog_head)"


def log_counts(db_url: str) -> tuple[int, int]:
    """Checkpoints stored (one per batch) and leaves (the head's size)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(LOG_COUNTS_SQL).fetchone()
    assert row is not None
    return int(row[0]), int(row[1] or 0)


def writer_stats(server_log: Path) -> list[dict[str, Any]]:
    """Each worker's ``AuditWriter.stats`` as it logged them when closing (audit/writer.py)."""
    found = []
    for line in server_log.read_text(errors="replace").splitlines():
        match = re.search(r"audit writer closed: (\{.*\})", line)
        if match:
            found.append(ast.literal_eval(match.group(1)))
    return found


def phases_per_batch(stats: dict[str, Any], key: str = "phase_s") -> dict[str, float]:
    """A writer's time per phase of a batch (``WriterStats.phase_s``, or ``phase_cpu_s``: its
    thread's CPU), in ms per batch over the server's life, and their sum: under load, a worker's
    batch cycle but the wait for a first entry."""
    batches = max(1, int(stats.get("batches", 0)))
    phases = {name: round(seconds * 1e3 / batches, 3) for name, seconds in stats.get(key, {}).items()}
    return {**phases, "sum": round(sum(phases.values()), 3)}


def _body(request: dict[str, Any], *, distinct: bool, invalid: bool = False) -> str:
    """A request's JSON body; with ``distinct``, its MAU a placeholder the wrk script fills with a
    number unique in the run (bench/wrk/decisions.lua); with ``invalid``, a task no policy knows."""
    if invalid:
        request = {**request, "workload": {**request["workload"], "task": "nonsense"}}
    if not distinct:
        return json.dumps(request)
    placeholder = {**request, "workload": {**request["workload"], "monthly_active_users": "__DISTINCT__"}}
    return json.dumps(placeholder).replace('"__DISTINCT__"', "__DISTINCT__")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int,
                        help="server worker processes (default: none given, `clearance serve` picks one per core)")
    parser.add_argument("--low-connections", type=int, default=4,
                        help="connections of the low-concurrency audited run (0: skip it)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the server (repeatable), e.g. CLEARANCE_HTTP_COALESCE=false")
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", MACHINE_PG),
                        help="a PostgreSQL server URL (a fresh database is created on it)")
    parser.add_argument("--batch-ms", type=float, help="CLEARANCE_AUDIT_BATCH_MS for the server (default: its own)")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the workers during the audited run")
    parser.add_argument("--distinct", action="store_true",
                        help="every audited decision a new input (its workload's monthly_active_users unique): "
                             "the first decision of an input, evaluated and encoded, not a cached one")
    parser.add_argument("--invalid", action="store_true",
                        help="every audited request refused 422 (its workload's task 'nonsense'): the error path "
                             "under load, where a stall shows in the maximum and wrk's timeouts")
    parser.add_argument("--others-duration", type=int, metavar="SECONDS",
                        help="seconds of the /healthz, simulate and low-concurrency runs (default: --duration)")
    parser.add_argument("--rss-every", type=float, metavar="SECONDS",
                        help="sample each worker's resident memory this often during the audited run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.threads = min(args.threads, args.connections)  # wrk refuses more threads than connections
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    if args.profile and not shutil.which("py-spy"):
        sys.exit("py-spy not found: pip install -e '.[bench]'")

    tmp = Path(tempfile.mkdtemp(prefix="clearance-bench-"))
    db_name, db_url = create_database(args.database)
    sa_url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    upgrade(sa_url)
    init_key(tmp / "signing.key")
    settings = ([f"CLEARANCE_AUDIT_BATCH_MS={args.batch_ms}"] if args.batch_ms is not None else []) + args.server_env
    env = service_env(sa_url, tmp, settings)  # e.g. CLEARANCE_HTTP_COALESCE=false
    server, base = start_server(env, log=tmp / "server.log", workers=args.workers)
    try:
        *keys, admin = create_keys(env, *(f"app:{w['app_id']}" for w in WORKLOADS), "admin")
        app_keys = {w["app_id"]: key for w, key in zip(WORKLOADS, keys, strict=True)}
        decisions = [f"/v1/decisions\t{app_keys[w['app_id']]}\t{_body(w, distinct=args.distinct, invalid=args.invalid)}"
                     for w in WORKLOADS]
        simulations = [f"/v1/policy/simulate\t{admin}\t{json.dumps(w)}" for w in WORKLOADS]

        common = {"duration": args.duration, "connections": args.connections, "threads": args.threads, "tmp": tmp}
        workers = worker_pids(server.pid)
        counts0 = log_counts(db_url)
        with chain_lock_sampler(db_url) as chain_lock, profiled(workers, args.profile, args.duration), \
                rss_sampler(workers, args.rss_every) as rss_rows:
            audited, cpu, cpu_seconds = cpu_during(lambda: wrk(base, decisions, name="decisions", **common), workers,
                                                   db_url=db_url, sampler_pid=chain_lock.get("backend_pid"))
        counts1 = log_counts(db_url)
        others = args.others_duration or args.duration
        health = subprocess.run(["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{others}s", f"{base}/healthz"],
                                capture_output=True, text=True, check=True, timeout=others + 60).stdout
        health_rate = float(re.search(r"Requests/sec:\s+([\d.]+)", health).group(1))  # type: ignore[union-attr]
        simulated = wrk(base, simulations, name="simulate", **{**common, "duration": others})
        low = (wrk(base, decisions, name="decisions-low", duration=max(2, others // 2),
                   connections=args.low_connections, threads=min(args.threads, args.low_connections), tmp=tmp)
               if args.low_connections else None)
        rss = {pid: status_mb(pid) for pid in workers}
    finally:
        stop_server(server)

    # Every decision answered 200 must be in the trail, and the chain must verify.
    answered = set(audited.pop("ids")) | set(low.pop("ids") if low else ())
    simulated.pop("ids")
    with psycopg.connect(db_url) as conn:
        recorded = {str(r[0]) for r in conn.execute("SELECT decision_id FROM audit_leaves WHERE kind = 'decision'")}
    store = AuditStore.from_url(sa_url, pooled=False)
    t0 = time.perf_counter()
    verification = verify_trail(store, trusted=trusted_verifiers(store.list_keys(), store.log_origin()))
    verify_seconds = time.perf_counter() - t0
    store.dispose()
    drop_database(args.database, db_name)

    result = {
        "setup": {"workers": args.workers, "audit_batch_ms": args.batch_ms, "distinct": args.distinct,
                  "connections": args.connections,
                  "low_connections": args.low_connections, "wrk_threads": args.threads,
                  "duration_s": args.duration, "cpus": os.cpu_count()},
        "audited_decisions": audited,
        "cpu_cores_during_audited": cpu,
        # CPU per audited decision answered, by process and thread (the main figure on a shared machine).
        "cpu_us_per_audited_decision": cpu_per_request(cpu_seconds, audited["statuses"].get("200", 0)),
        "cpu_seconds_during_audited": cpu_seconds,
        # Batches of the 32-connection run (one checkpoint each) and their mean size; how each worker's
        # writer went over the server's whole life (the low-concurrency run too: its batches are of one).
        "batches_during_audited": {"batches": counts1[0] - counts0[0], "leaves": counts1[1] - counts0[1],
                                   "mean_batch": (counts1[1] - counts0[1]) / max(1, counts1[0] - counts0[0])},
        "writer_stats_per_worker": (stats := writer_stats(tmp / "server.log")),
        "writer_phases_ms_per_batch": [phases_per_batch(w) for w in stats],
        "writer_phases_cpu_ms_per_batch": [phases_per_batch(w, "phase_cpu_s") for w in stats],
        "chain_lock_during_audited": chain_lock,
        "audited_decisions_low_concurrency": low,
        "healthz": {"rate_per_s": health_rate},
        "simulate": simulated,
        "ratios": {"audited_over_healthz": audited["rate_per_s"] / health_rate,
                   "audited_over_simulate": audited["rate_per_s"] / simulated["rate_per_s"]},
        "trail": {"answered_200": len(answered), "missing_from_trail": len(answered - recorded),
                  "chain_valid": verification.valid, "entries_verified": verification.checked,
                  "verify_seconds": verify_seconds, "first_bad_seq": verification.first_bad_seq},
        "peak_rss_mb_per_worker": list(rss.values()),
    }
    if args.rss_every:
        result["rss_mb_during_audited"] = rss_rows
    # The server's home (its signing key, its log) is read above: gone with the run. A run that
    # failed before here leaves it, with server.log, for a look.
    shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if result["trail"]["missing_from_trail"] or not verification.valid:
        sys.exit("FAILED: a decision answered 200 is missing from the trail, or the chain does not verify")


if __name__ == "__main__":
    main()

"""The benchmarks, run in a short smoke mode only to keep them working (no timing asserted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run(script: str, *args: str, tmp_path: Path) -> dict[str, object]:
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), *args, "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_inprocess_smoke(tmp_path: Path) -> None:
    result = run("inprocess.py", "--iterations", "30", "--sizes", "40", tmp_path=tmp_path)
    catalogs = result["catalogs"]
    assert set(catalogs) == {"reference", "synthetic-40"}  # type: ignore[arg-type]
    assert result["entry"]["body_bytes"] > 1000  # type: ignore[index]


def test_catalog_bench_smoke(tmp_path: Path) -> None:
    result = run("catalog_bench.py", "--sizes", "100", "--repeat", "1", "--budget", "0.05", tmp_path=tmp_path)
    rows = {r["catalog"]: r for r in result["catalogs"]}  # type: ignore[union-attr]
    assert set(rows) == {"reference", "synthetic-100"}
    assert rows["synthetic-100"]["part_count"] == 2 and rows["synthetic-100"]["parts"]["instruction_limit_hits"] == 0


def test_first_eval_bench_smoke(tmp_path: Path) -> None:
    result = run("first_eval_bench.py", "--baseline", "HEAD", "--repeat", "1", "--evaluations", "12", tmp_path=tmp_path)
    assert len(result["rows"]) == 4 and result["breakdown_cpu_us"]  # type: ignore[arg-type]


def test_reload_memory_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("reload_memory.py", "--rounds", "2", "--decisions", "2", "--every", "1", "--thaw", "1",
                 "--database", server, tmp_path=tmp_path)
    assert result["reloads_accepted"] == 2  # each round's edit is a new revision, its second reload is not
    assert [s["round"] for s in result["samples"]] == [0, 1, 2, "2 + thaw"]  # type: ignore[union-attr,index]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_http_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("http_bench.py", "--duration", "2", "--connections", "4", "--threads", "1", "--workers", "1",
                 "--database", server, tmp_path=tmp_path)
    trail = result["trail"]
    assert trail["missing_from_trail"] == 0 and trail["chain_valid"] is True  # type: ignore[index]
    assert result["audited_decisions"]["statuses"].get("200", 0) > 0  # type: ignore[index, union-attr]
    low = result["audited_decisions_low_concurrency"]
    assert low["statuses"].get("200", 0) > 0  # type: ignore[index, union-attr]
    cpu = result["cpu_cores_during_audited"]
    assert {"server_workers", "postgresql", "wrk", "idle"} <= cpu.keys()  # type: ignore[union-attr]
    assert cpu["server_workers"] > 0  # type: ignore[index]
    assert result["chain_lock_during_audited"]["samples"] > 0  # type: ignore[index]
    per_decision = result["cpu_us_per_audited_decision"]
    assert per_decision["service_total"] > 0 and per_decision["event_loops"] > 0  # type: ignore[index]
    assert result["batches_during_audited"]["batches"] > 0  # type: ignore[index]
    assert result["writer_stats_per_worker"] and result["writer_stats_per_worker"][0]["batches"] > 0  # type: ignore[index]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_http_invalid_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("http_bench.py", "--invalid", "--duration", "2", "--connections", "4", "--threads", "1",
                 "--workers", "1", "--low-connections", "0", "--database", server, tmp_path=tmp_path)
    statuses = result["audited_decisions"]["statuses"]  # type: ignore[index]
    assert set(statuses) == {"422"} and statuses["422"] > 0  # type: ignore[union-attr]
    assert result["trail"]["chain_valid"] is True  # type: ignore[index]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_key_flood_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("key_flood.py", "--duration", "3", "--connections", "8", "--database", server, tmp_path=tmp_path)
    assert int(result["flood"]["requests"]) > 0 and result["flood"]["non_2xx"] == result["flood"]["requests"]  # type: ignore[index]
    during = result["during_flood"]
    assert during["statuses"].get("cached 200", 0) > 0 and during["statuses"].get("fresh 200", 0) > 0  # type: ignore[index, union-attr]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_targets_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("targets.py", "--runs", "1", "--duration", "2", "--database", server, tmp_path=tmp_path)
    summary = result["summary"]
    assert summary["runs"] == 1 and summary["target_6_trail_held_in"] == 1  # type: ignore[index]
    (round_,) = result["rounds"]  # type: ignore[misc]
    assert round_["one_caller"]["p50_ms"] > 0 and round_["load"]["rate_per_s"] > 0
    assert isinstance(round_["load"]["met"], bool)
    assert round_["machine"]["python_loop_10m_s"] > 0 and round_["machine"]["flush_after_idle_us"] > 0
    assert set(round_["first_evaluation"]["cpu_p50_us"]) == {"realistic", "random"}
    assert all(us > 0 for us in round_["first_evaluation"]["cpu_p50_us"].values())
    assert summary["target_3_first_evaluation_met_in"] in (0, 1)  # type: ignore[index]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_suite_runner_smoke() -> None:
    """`python bench/run.py --smoke`: the suite of docs/performance.md, in its short mode."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--smoke"], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| HTTP audited decisions" in (REPO / "bench" / "results" / "results.md").read_text()


def test_flush_latency_smoke(tmp_path: Path) -> None:
    result = run("flush_latency.py", "--dir", str(tmp_path), "--gaps", "0,0.0001", "--writes", "20", tmp_path=tmp_path)
    gaps = result["gaps"]
    assert set(gaps) == {"0.0", "0.0001"} and all(len(g["deciles_us"]) == 9 for g in gaps.values())  # type: ignore[union-attr]


def test_writer_pair_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("writer_pair.py", "--threads", "2", "--seconds", "1", "--database", server, tmp_path=tmp_path)
    assert result["entries"] > 0 and result["batches"]["batches"] > 0  # type: ignore[index]


def test_fast_path_pair_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("fast_path_pair.py", "--rounds", "1", "--decisions", "40", "--concurrency", "4",
                 "--database", server, tmp_path=tmp_path)
    assert set(result["median"]) == {"fast", "route"}  # type: ignore[arg-type]


def test_append_cost_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("append_cost.py", "--batches", "3", "--batch", "4", "--variants", "shipped,no_facets",
                 "--database", server, tmp_path=tmp_path)
    assert [r["variant"] for r in result] == ["shipped", "no_facets"]  # type: ignore[index, union-attr]
    assert all(r["entries"] == 12 and r["python_cpu_us_per_entry"] > 0 for r in result)  # type: ignore[index, union-attr]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_sweep_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("sweep.py", "--workers", "1", "--batch-ms", "1", "--repeat", "1", "--duration", "2",
                 "--database", server, tmp_path=tmp_path)
    assert result[0]["workers"] == 1 and result[0]["rates_per_s"][0] > 0  # type: ignore[index]


def test_tlog_bench_smoke(tmp_path: Path, pg_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARANCE_BENCH_DATABASE_URL", pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1))
    result = run("tlog_bench.py", "--entries", "300", "--workloads", "5", "--tree", "3000", "--proofs", "20",
                 tmp_path=tmp_path)
    storage = result["storage_and_verification"]
    assert storage["blobs_stored"] == 10 and storage["bytes_per_entry_total"] > 0  # type: ignore[index]
    assert result["proofs"]["checked_against_root"] is True  # type: ignore[index]


def test_connection_split_smoke(pg_server_url: str) -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "connection_split.py"), "--rounds", "1",
                           "--connections", "4", "--database", pg_server_url], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CLEARANCE_REUSEPORT=false" in done.stdout and "CLEARANCE_REUSEPORT=true" in done.stdout


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_response_cpu_smoke(pg_server_url: str) -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "response_cpu.py"), "--pairs", "1", "--seconds", "1",
                           "--database", pg_server_url], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CLEARANCE_HTTP_COALESCE=true: median" in done.stdout and "CLEARANCE_HTTP_COALESCE=false: median" in done.stdout


def test_writer_instructions_smoke(pg_server_url: str) -> None:
    """The driver that valgrind counts still runs (valgrind itself is too slow for the suite)."""
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    done = subprocess.run([sys.executable, str(REPO / "bench" / "writer_instructions.py"), "--smoke",
                           "--database", server], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "driver ran" in done.stdout


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/install-tools.sh installs it)")
def test_http_floor_smoke(tmp_path: Path) -> None:
    result = run("http_floor.py", "--rounds", "1", "--seconds", "1", "--connections", "2", tmp_path=tmp_path)
    assert {"uvicorn-asgi", "uvicorn-fastapi"} <= set(result)


def test_pack_equivalence_smoke() -> None:
    # This checkout against itself: the three paths agree with its own engine.
    done = subprocess.run([sys.executable, str(REPO / "bench" / "pack_equivalence.py"), "--baseline-tree", str(REPO),
                           "--random", "4", "--synthetic", "30"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reference catalog: the same answers (equal JSON) on 10 inputs, three paths" in done.stdout
    assert "synthetic catalog of 30 models: the same answers (equal JSON) on 1 inputs" in done.stdout


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_vm_parts_smoke() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "vm_parts.py"), "--evaluations", "2", "expr:0",
                           "data.clearance.decision"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 and "callgrind found no functools_reduce" in done.stderr:
        pytest.skip("this Python is stripped (Debian's python3): callgrind cannot find where to count")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["expr:0", "data.clearance.decision"]


def test_key_lookup_smoke(tmp_path: Path, pg_server_url: str) -> None:
    server = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    result = run("key_lookup.py", "--lookups", "20", "--rounds", "1", "--database", server, tmp_path=tmp_path)
    (round_,) = result["rounds"]  # type: ignore[misc]
    assert round_["cpu_us"] > 0 and round_["wall_us"] >= round_["cpu_us"] * 0.5

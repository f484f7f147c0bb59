"""Run the benchmark suite and write bench/results/results.json and results.md.

    python bench/run.py            # full: in-process (reference, 100, 1000 models) + HTTP 30 s runs
    python bench/run.py --smoke    # a few seconds of each, only to keep the scripts working

Targets (issue 7, 2-core machine) are printed beside the figures; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.report import markdown_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def run(script: str, *args: str) -> dict[str, Any]:
    out = RESULTS / f"{Path(script).stem}.json"
    subprocess.run([sys.executable, str(REPO / "bench" / script), *args, "--json", str(out)], check=True, cwd=REPO)
    return json.loads(out.read_text())


def table(inproc: dict[str, Any], http: dict[str, Any]) -> str:
    ref = inproc["catalogs"]["reference"]
    rows = [
        ("in-process, reference catalog, repeated workload (hot path)", f"p50 {ref['decide_hot_path_us']['p50']:.0f} µs, p99 {ref['decide_hot_path_us']['p99']:.0f} µs", "p50 ≤ 150 µs"),
        ("in-process, reference catalog, first evaluation (engine)", f"p50 {ref['engine_uncached_us']['p50']:.0f} µs, p99 {ref['engine_uncached_us']['p99']:.0f} µs", "p50 ≤ 150 µs"),
    ]
    for name, cat in inproc["catalogs"].items():
        if name != "reference":
            rows.append((f"in-process, {cat['models']} models / {cat['routes']} routes, first evaluation",
                         f"p50 {cat['engine_uncached_us']['p50'] / 1000:.1f} ms ({cat['engine_us_per_route_p50']:.0f} µs/route); hot path p50 {cat['decide_hot_path_us']['p50']:.0f} µs",
                         "no worse than linear"))
    entry = inproc["entry"]
    rows.append(("per entry: canonical body (spliced / whole) + SHA-256 + Ed25519",
                 f"{entry['spliced_body_us']['p50']:.0f} / {entry['rfc8785_whole_body_us']['p50']:.0f} µs + {entry['sha256_us']['p50']:.0f} µs + {entry['ed25519_sign_us']['p50']:.0f} µs ({entry['body_bytes']} B)", "—"))
    a, s = http["audited_decisions"], http["simulate"]
    lat = a["latency_us"]
    setup = http["setup"]
    rows += [
        (f"HTTP audited decisions ({setup['workers']} workers, {setup['connections']} connections, {setup['duration_s']} s)",
         f"{a['rate_per_s']:.0f}/s; p50 {lat['p50'] / 1000:.1f} ms, p95 {lat['p95'] / 1000:.1f} ms, p99 {lat['p99'] / 1000:.1f} ms; errors {sum(a['errors'].values())}",
         "≥ 2,000/s, p99 ≤ 10 ms"),
    ]
    if low := http.get("audited_decisions_low_concurrency"):
        ll = low["latency_us"]
        rows.append((f"HTTP audited decisions, same server, {setup.get('low_connections', 4)} connections",
                     f"{low['rate_per_s']:.0f}/s; p50 {ll['p50'] / 1000:.1f} ms, p99 {ll['p99'] / 1000:.1f} ms", "—"))
    cpu, lock = http["cpu_cores_during_audited"], http["chain_lock_during_audited"]
    rows += [
        (f"CPU during the audited run (of {cpu['cores']} cores)",
         f"server workers {cpu['server_workers']:.2f}, PostgreSQL {cpu['postgresql']:.2f}, wrk {cpu['wrk']:.2f}, idle {cpu['idle']:.2f}", "—"),
        ("chain-head lock during the audited run (sampled every 10 ms)",
         f"held {lock['held_share']:.0%} of the time; a writer waiting for it {lock['writer_waiting_share']:.0%}", "—"),
        ("HTTP GET /healthz, same server", f"{http['healthz']['rate_per_s']:.0f}/s", "—"),
        ("HTTP POST /v1/policy/simulate (unaudited), same server", f"{s['rate_per_s']:.0f}/s", "—"),
        ("audited ÷ healthz", f"{http['ratios']['audited_over_healthz']:.2f}", "≥ 0.5"),
        ("audited ÷ simulate", f"{http['ratios']['audited_over_simulate']:.2f}", "≥ 0.85"),
        ("decisions answered 200 missing from the trail; chain valid",
         f"{http['trail']['missing_from_trail']} of {http['trail']['answered_200']}; {http['trail']['chain_valid']}", "0; true"),
        ("peak RSS per server worker", ", ".join(f"{m:.0f} MB" for m in http["peak_rss_mb_per_worker"]), "≤ 300 MB"),
    ]
    return markdown_table(("what", "measured", "target"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds of each benchmark")
    parser.add_argument("--workers", default="2")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        inproc = run("inprocess.py", "--iterations", "30", "--sizes", "40")
        http = run("http_bench.py", "--duration", "2", "--connections", "4", "--threads", "1", "--workers", "1")
    else:
        inproc = run("inprocess.py")
        http = run("http_bench.py", "--duration", "30", "--connections", "32", "--workers", args.workers)
    meta = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.machine(),
            "python": platform.python_version(), "smoke": args.smoke}
    (RESULTS / "results.json").write_text(json.dumps({"meta": meta, "inprocess": inproc, "http": http}, indent=2) + "\n")
    markdown = table(inproc, http)
    (RESULTS / "results.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()

"""The latency Clearance adds to a call through each gateway, on loopback with the real gateways.

    python bench/gateway_bench.py [--calls 200] [--warmup 20] [--json OUT]

Starts Clearance (``clearance serve`` on a fresh database of the machine's PostgreSQL), then for
each gateway the same calls with and without Clearance in front, sequentially (one call at a
time: the latency one call sees, not throughput):

- LiteLLM (``.venv-litellm``, mocked deployment): the proxy with no guardrail, with the
  ``ClearanceGuardrail`` class (two recorded checks per call: the model group before routing and
  the deployment on the attempt, plus the served-route report after the answer, off the path),
  and with LiteLLM's generic guardrail pointed at Clearance (one recorded check).
- Portkey (Node.js, in a private network namespace, a mock backend on loopback): the config with
  no hook, and the shipped config with the Clearance webhook (one recorded check).

Prints the median and 95th percentile of each and the difference of the medians (what Clearance
adds). Needs scripts/install-gateways.sh to have run; the Portkey half needs unshare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import MACHINE_PG  # noqa: E402
from tests.gateways import conftest as gateways  # noqa: E402


def timed(call: Callable[[], httpx.Response], *, calls: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        assert call().status_code == 200
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2), "calls": calls}


def litellm(clearance: gateways.Clearance, tmp: Path, calls: int, warmup: int) -> dict[str, Any]:
    key = clearance.gateway_keys["litellm-main"]
    plain = gateways.litellm_config(clearance.url, substitute=True)
    plain = plain.split("guardrails:")[0] + "general_settings:" + plain.split("general_settings:")[1]
    results = {}
    for name, config in (("no guardrail", plain),
                         ("ClearanceGuardrail class", gateways.litellm_config(clearance.url, substitute=True)),
                         ("generic guardrail API", gateways.litellm_config(clearance.url, substitute=False,
                                                                            generic=True))):
        with gateways.litellm_proxy(tmp / name.replace(" ", "-"), config, gateway_key=key) as proxy:
            results[name] = timed(lambda: gateways.chat(proxy, "sk-helpdesk", "safe"), calls=calls, warmup=warmup)
    return results


def portkey(clearance: gateways.Clearance, calls: int, warmup: int) -> dict[str, Any]:
    import pytest

    from tests.gateways import test_portkey

    class Factory:
        def mktemp(self, name: str) -> Path:
            return Path(tempfile.mkdtemp(prefix=name))

    fixture = test_portkey.portkey.__wrapped__  # type: ignore[attr-defined]
    try:
        generator = fixture(clearance, Factory())
        gateway = next(generator)
    except pytest.skip.Exception as exc:
        return {"skipped": str(exc)}
    try:
        with_hook = gateway.config()
        without = {k: v for k, v in with_hook.items() if k != "before_request_hooks"}
        return {"no hook": timed(lambda: gateway.call("gemma-4-31b", config=without), calls=calls, warmup=warmup),
                "Clearance webhook (shipped config)": timed(lambda: gateway.call("gemma-4-31b", config=with_hook),
                                                            calls=calls, warmup=warmup)}
    finally:
        generator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    server = MACHINE_PG.rsplit("/", 1)[0] + "/test"
    with tempfile.TemporaryDirectory() as tmp, gateways.clearance_server(server, Path(tmp)) as clearance:
        report = {"litellm": litellm(clearance, Path(tmp), args.calls, args.warmup),
                  "portkey": portkey(clearance, args.calls, args.warmup)}
    for gateway, runs in report.items():
        base = next(iter(runs.values())) if runs and "skipped" not in runs else None
        for name, figures in runs.items():
            if name == "skipped":
                print(f"{gateway}: skipped ({figures})")
                continue
            added = "" if figures is base else f"  (+{figures['median_ms'] - base['median_ms']:.2f} ms median)"
            print(f"{gateway:8} {name:36} median {figures['median_ms']:7.2f} ms  p95 {figures['p95_ms']:7.2f} ms{added}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

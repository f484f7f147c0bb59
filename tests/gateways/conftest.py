"""The real gateways against a real Clearance, on loopback.

Clearance runs as ``python -m api serve`` on a migrated database of its own; the LiteLLM proxy
from .venv-litellm and the Portkey gateway from tests/gateways/portkey/node_modules, both
installed by scripts/install-gateways.sh (which scripts/test runs). Model backends are mocks:
LiteLLM's ``mock_response``, and for Portkey a small OpenAI-compatible server in this process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.apikeys import Role
from audit import init_key, upgrade
from tests.conftest import REPO, create_database, drop_database
from tests.reliability.cluster import free_port
from tests.reliability.conftest import make_api_key
from tests.reliability.server import ServerProcess, server_env

HERE = Path(__file__).parent
LITELLM = REPO / ".venv-litellm" / "bin" / "litellm"
GATEWAY_APPS = ["internal-helpdesk", "claims-summariser"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here starts real gateways: marked ``gateways`` and ``slow``."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)


@dataclass
class Clearance:
    server: ServerProcess
    database_url: str
    gateway_keys: dict[str, str]  # gateway name -> a key bound to it (for GATEWAY_APPS)
    auditor_key: str

    @property
    def url(self) -> str:
        return self.server.url

    def audit(self, **filters: str) -> list[dict[str, object]]:
        answer = httpx.get(f"{self.url}/v1/audit/decisions", params={"order": "asc", "limit": "100", **filters},
                           headers={"Authorization": f"Bearer {self.auditor_key}"}, timeout=10)
        answer.raise_for_status()
        return answer.json()["items"]  # type: ignore[no-any-return]

    def entry(self, decision_id: str) -> dict[str, object]:
        answer = httpx.get(f"{self.url}/v1/decisions/{decision_id}",
                           headers={"Authorization": f"Bearer {self.auditor_key}"}, timeout=10)
        answer.raise_for_status()
        return answer.json()["body"]  # type: ignore[no-any-return]

    def wait_for(self, what: Callable[[], list[dict[str, object]]], timeout: float = 10) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while True:
            found = what()
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@contextlib.contextmanager
def clearance_server(pg_server_url: str, home: Path) -> Iterator[Clearance]:
    name = f"clearance_gw_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    server = None
    try:
        upgrade(url)
        key_file = home / "signing.key"
        init_key(key_file)
        keys = {gateway: make_api_key(url, Role.gateway, None, apps=GATEWAY_APPS, gateway=gateway)
                for gateway in ("litellm-main", "portkey-main")}
        auditor = make_api_key(url, Role.auditor)
        server = ServerProcess(env=server_env(database_url=url, home=home, signing_key=str(key_file)),
                               log_path=home / "clearance.log").start()
        yield Clearance(server, url, keys, auditor)
    finally:
        if server is not None:
            server.stop()
        drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def clearance(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clearance]:
    with clearance_server(pg_server_url, tmp_path_factory.mktemp("clearance")) as running:
        yield running


@dataclass
class Process:
    """A gateway process in a session of its own (so a stop reaches everything it started)."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=20)


def wait_until_up(process: Process, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {process.process.returncode}:\n{process.log()}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if probe():
                return
        time.sleep(0.25)
    process.stop()
    raise RuntimeError(f"the gateway was not up within {timeout}s:\n{process.log()}")


@dataclass
class LiteLLMProxy:
    url: str
    master_key: str
    process: Process


@contextlib.contextmanager
def litellm_proxy(workdir: Path, config: str, *, gateway_key: str, **env: str) -> Iterator[LiteLLMProxy]:
    """The LiteLLM proxy on loopback with ``config`` (its custom auth beside it)."""
    if not LITELLM.exists():
        pytest.skip("the LiteLLM proxy is not installed: run scripts/install-gateways.sh (scripts/test does)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(config)
    shutil.copy(HERE / "litellm" / "custom_auth.py", workdir / "custom_auth.py")
    port = free_port()
    master = "sk-" + secrets.token_hex(24)  # the proxy refuses to start with a weak master key
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARANCE_", "LITELLM_"))}
    process_env.update(LITELLM_MASTER_KEY=master, LITELLM_LOCAL_MODEL_COST_MAP="True",
                       CLEARANCE_GATEWAY_KEY=gateway_key, PYTHONPATH=str(REPO / "client"),
                       PYTHONUNBUFFERED="1", **env)
    log_path = workdir / "litellm.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen([str(LITELLM), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
                                 cwd=workdir, env=process_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
    proxy = Process(popen, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proxy, lambda: httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200, 120)
        yield LiteLLMProxy(url, master, proxy)
    finally:
        proxy.stop()


def litellm_config(clearance_url: str, *, substitute: bool, generic: bool = False) -> str:
    """tests/gateways/litellm/config.yaml for this Clearance: the guardrail class, or (``generic``)
    LiteLLM's own generic guardrail pointed at Clearance's endpoint instead."""
    text = (HERE / "litellm" / "config.yaml").read_text()
    text = text.replace("{clearance}", clearance_url).replace("{substitute}", "true" if substitute else "false")
    if generic:
        head, _, tail = text.partition("guardrails:")
        _, _, rest = tail.partition("general_settings:")
        text = head + GENERIC_GUARDRAIL.format(clearance=clearance_url) + "\ngeneral_settings:" + rest
    return text


GENERIC_GUARDRAIL = """guardrails:
  - guardrail_name: clearance-generic
    litellm_params:
      guardrail: generic_guardrail_api
      mode: pre_call
      default_on: true
      api_base: "{clearance}/v1/gateways/litellm-main/litellm"
      api_key: os.environ/CLEARANCE_GATEWAY_KEY
      unreachable_fallback: fail_closed
"""


def chat(proxy: LiteLLMProxy, key: str, model: str, **extra: object) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}, timeout=60)

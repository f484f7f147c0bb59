"""Fixtures for the engine tests: the reference bundle, a replaying OPA stand-in, a live OPA.

A live OPA is used when ``CLEARANCE_TEST_OPA_URL`` names one (it must be disposable: the tests
replace any Clearance bundle in it) or when an ``opa`` binary is on PATH (started here on a
free port); otherwise the live tests are skipped with the reason shown by ``-ra``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from policy import Bundle, RegorusEngine, load_bundle
from tests.conftest import REPO
from tests.engines.replay import ReplayServer, install_routes, replay_server

NO_OPA = (
    "no OPA server: put an `opa` binary on PATH or set CLEARANCE_TEST_OPA_URL=http://host:port "
    "(OPA is on no package registry reachable from this machine)"
)


@pytest.fixture(scope="session")
def bundle() -> Bundle:
    return load_bundle(REPO / "rego")


@pytest.fixture(scope="session")
def regorus_engine(bundle: Bundle) -> RegorusEngine:
    return RegorusEngine(bundle)


@pytest.fixture
def opa_stand_in() -> Iterator[ReplayServer]:
    """The replay server answering a bundle install with OPA's documented responses."""
    with replay_server() as server:
        install_routes(server)
        yield server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, *, seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"opa exited with {process.returncode}: {stderr[-2000:]}")
        try:
            if requests.get(f"{url}/health", timeout=0.5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"OPA at {url} did not become healthy within {seconds} s")


@pytest.fixture(scope="session")
def live_opa_url() -> Iterator[str]:
    url = os.environ.get("CLEARANCE_TEST_OPA_URL")
    if url:
        _wait_healthy(url.rstrip("/"), seconds=5)
        yield url.rstrip("/")
        return
    binary = shutil.which("opa")
    if binary is None:
        pytest.skip(NO_OPA)
    url = f"http://127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [binary, "run", "--server", "--addr", url.removeprefix("http://"), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(url, seconds=15, process=process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

"""Fixtures for the client's tests: loopback servers standing in for Clearance and an OpenAI-style
backend (stub_servers), and the test-only log that signs their receipts (tlog_factory)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from stub_servers import MockOpenAI, StubClearance


@pytest.fixture
def clearance() -> Iterator[StubClearance]:
    stub = StubClearance()
    yield stub
    stub.stop()


@pytest.fixture
def backend() -> Iterator[MockOpenAI]:
    mock = MockOpenAI()
    yield mock
    mock.stop()


@pytest.fixture
def dead_url() -> str:
    """An address on loopback where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"

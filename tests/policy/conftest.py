from __future__ import annotations

import pytest

from policy import ActivePolicy, load_policy
from tests.conftest import REPO


@pytest.fixture(scope="session")
def policy() -> ActivePolicy:
    """The reference bundle, compiled once for the session."""
    return load_policy(REPO / "rego")

"""Secrets are masked in every log line and error of the process (api/redact.py): the database
password in the start-up banner, in log records of any logger (message, arguments, traceback),
in the CLI's error paragraphs and in an uncaught exception's traceback.

The database server of the tests trusts every local connection, so a password in the URL is
accepted and ignored: a real server starts with one.
"""

from __future__ import annotations

import base64
import io
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from api import redact
from api.redact import SecretFilter, inline_key
from audit import SigningKey
from tests.conftest import REPO

from .cluster import free_port
from .server import ServerProcess, server_env

# Fixed, not random: the test ids carry it, and parallel workers must collect the same tests.
PASSWORD = "pw-29420862fac1419a8d94493c59d5b5f4"
API_KEY = "clr_0123456789abcdef_" + "S" * 43


def with_password(url: str, password: str = PASSWORD) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


@pytest.mark.parametrize(("text", "masked"), [
    (f"postgresql+psycopg://clearance:{PASSWORD}@db.internal:5432/clearance",
     "postgresql+psycopg://clearance:***@db.internal:5432/clearance"),
    (f"connect to postgresql://u:{PASSWORD}@h/db?sslmode=require failed", "connect to postgresql://u:***@h/db?sslmode=require failed"),
    (f"postgresql://u:p@ss{PASSWORD}@h/db", "postgresql://u:***@h/db"),
    (f"host=db user=u password={PASSWORD} dbname=x", "host=db user=u password=*** dbname=x"),
    (f"host=db password='{PASSWORD} with space' dbname=x", "host=db password=*** dbname=x"),
    (f"key {API_KEY} refused", "key clr_0123456789abcdef_*** refused"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
    ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----",
     "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----"),
    # not secrets: left as they are
    ("http://127.0.0.1:8000/docs", "http://127.0.0.1:8000/docs"),
    ("send 'Authorization: Bearer <key>'", "send 'Authorization: Bearer <key>'"),
    ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
])
def test_redact(text: str, masked: str) -> None:
    assert redact.redact(text) == masked


def test_an_inline_signing_key_is_masked_as_a_literal_but_a_path_is_not(tmp_path: Path) -> None:
    key = SigningKey.generate()
    pem = key.private_pem().decode()
    assert pem.strip() in inline_key(pem)
    assert inline_key(base64.b64encode(b"k" * 32).decode()) == [base64.b64encode(b"k" * 32).decode()]
    assert inline_key(str(tmp_path / "signing.key")) == [] and inline_key(None) == []


@pytest.fixture
def process_wide() -> Iterator[io.StringIO]:
    """Masking installed for the process; a handler of its own (no filter) on a fresh logger."""
    redact.install(["literal-secret-value"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger(f"anywhere.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def test_every_log_record_of_the_process_is_masked(process_wide: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    url = with_password("postgresql+psycopg://clearance@db.internal/clearance")
    logger = logging.getLogger(next(n for n in logging.Logger.manager.loggerDict if n.startswith("anywhere.")))
    logger.warning("database at %s", url)  # in the arguments
    logger.warning(f"database at {url}")  # in the message itself
    logger.warning("key %s and %d tries", API_KEY, 3)  # other arguments keep their types
    logger.warning("%(who)s used literal-secret-value", {"who": "someone"})
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        logger.exception("start-up failed")
    logger.warning("here", stack_info=True)
    text = process_wide.getvalue()
    assert PASSWORD not in text and "S" * 43 not in text and "literal-secret-value" not in text
    assert "postgresql+psycopg://clearance:***@db.internal/clearance" in text
    assert "clr_0123456789abcdef_*** and 3 tries" in text
    assert "ConnectionError: cannot reach postgresql+psycopg://clearance:***@db.internal" in text
    assert "someone used ***" in text


def test_the_filter_keeps_the_arguments_a_formatter_unpacks() -> None:
    """uvicorn's access log formatter unpacks the record's arguments: they stay a tuple."""
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/v1/decisions/{API_KEY}", "1.1", 404), None)
    assert SecretFilter().filter(record) is True
    assert isinstance(record.args, tuple) and len(record.args) == 5 and record.args[4] == 404
    assert record.getMessage() == '127.0.0.1:5 - "GET /v1/decisions/clr_0123456789abcdef_*** HTTP/1.1" 404'


def test_an_uncaught_traceback_is_masked() -> None:
    script = ("from api import redact\nredact.install()\n"
              f"raise RuntimeError('cannot connect to postgresql://u:{PASSWORD}@db/x')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "RuntimeError: cannot connect to postgresql://u:***@db/x" in done.stderr and PASSWORD not in done.stderr


def test_cli_errors_are_masked(tmp_path: Path) -> None:
    """An unreachable database whose URL carries a password: the paragraph does not repeat it."""
    env = server_env(database_url=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/nowhere",
                     home=tmp_path, signing_key=str(tmp_path / "signing.key"))
    for args in (["apikeys", "list"], ["db", "upgrade"], ["audit", "verify"]):
        done = subprocess.run([sys.executable, "-m", "api", *args], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 1, (args, done.stderr)
        assert PASSWORD not in done.stdout + done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_banner_and_the_server_log_mask_the_database_password(migrated_database: str, tmp_path: Path) -> None:
    from audit import init_key

    init_key(tmp_path / "signing.key")
    url = with_password(migrated_database)
    server = ServerProcess(env=server_env(database_url=url, home=tmp_path, signing_key=str(tmp_path / "signing.key")),
                           log_path=tmp_path / "server.log").start()
    try:
        assert server.process is not None
    finally:
        server.stop()
    log = server.log_text()
    assert "Clearance listening on" in log and "Application startup complete" in log, log
    assert PASSWORD not in log
    masked = with_password(migrated_database, "***").replace("%2A%2A%2A", "***")
    assert f"database: {masked};" in log, log

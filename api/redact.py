"""Secrets never reach a log line, an error message or a traceback.

:func:`redact` masks what looks like a secret in any text: the password of a URL
(``postgresql://user:***@host/db``) or of a libpq string (``password=***``), API keys
(``clr_<id>_***``: the id is public, recorded in every entry), bearer tokens, PEM private keys,
and the literal values registered with :func:`install` (a signing key given inline, say).

:func:`install` applies it to the whole process: every log record is masked as it is created
(whatever logger, handler or formatter later handles it), and an uncaught exception's traceback
is masked before it is printed. :class:`SecretFilter` is the same masking as a logging filter,
for logging configurations (``clearance serve`` puts it on uvicorn's handlers).
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any

MASK = "***"

_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<secret>[^\s/]+)(?=@)")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_API_KEY = re.compile(r"(?P<head>\bclr_[0-9a-f]{16}_)(?P<secret>[A-Za-z0-9_-]+)")
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<secret>[^\s'\",;<][^\s'\",;]*)", re.IGNORECASE)
_PEM = re.compile(r"-----BEGIN (?P<kind>[A-Z ]*PRIVATE KEY)-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL)
_PATTERNS = (_URL_PASSWORD, _KEYWORD_PASSWORD, _API_KEY, _BEARER)

_lock = threading.Lock()
_literals: frozenset[str] = frozenset()  # registered by install(); read without the lock


def redact(text: str) -> str:
    """``text`` with every secret it contains replaced by ``***``."""
    for literal in _literals:
        if literal in text:
            text = text.replace(literal, MASK)
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(lambda m: f"-----BEGIN {m['kind']}-----{MASK}-----END {m['kind']}-----", text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m["head"] + MASK, text)
    return text


class SecretFilter(logging.Filter):
    """Masks the message, arguments, traceback and stack of each record it sees; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> None:
    if getattr(record, "_redacted", False):
        return
    record._redacted = True  # noqa: SLF001 - once per record, whichever way it comes first
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: logging reports it later
        message = None
    if message is not None and redact(message) != message:
        if isinstance(record.args, tuple):
            # Keep the arguments (formatters such as uvicorn's access log unpack them), masked.
            record.msg = redact(str(record.msg))
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if record.getMessage() != redact(message):
            record.msg, record.args = redact(message), ()
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def inline_key(signing_key: str | None) -> list[str]:
    """The spellings to mask of ``CLEARANCE_SIGNING_KEY`` when it is the key itself (PEM, or
    base64 of the 32 raw bytes); none when it names a key file."""
    value = (signing_key or "").strip()
    if "PRIVATE KEY" in value:
        return [value, *(line for line in value.splitlines() if line and not line.startswith("-----"))]
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return []
    return [value] if len(raw) == 32 else []


def install(secrets: Iterable[str | None] = ()) -> None:
    """Mask secrets in every log record and uncaught traceback of this process from now on.

    ``secrets`` are literal values to mask wherever they appear (in addition to the patterns
    above); values shorter than 8 characters are ignored (they would mask ordinary words).
    Calling it again adds secrets; the hooks are installed once.
    """
    global _literals
    with _lock:
        _literals = _literals | {s for s in secrets if s and len(s) >= 8}
        factory = logging.getLogRecordFactory()
        if not getattr(factory, "_clearance_redacts", False):
            logging.setLogRecordFactory(_masking_factory(factory))
        if not getattr(sys.excepthook, "_clearance_redacts", False):
            sys.excepthook = _masking_excepthook(sys.excepthook)


def _masking_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        _mask_record(record)
        return record

    factory._clearance_redacts = True  # type: ignore[attr-defined]
    return factory


def _masking_excepthook(previous: Any) -> Any:
    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))
        sys.stderr.flush()

    hook._clearance_redacts = True  # type: ignore[attr-defined]
    return hook

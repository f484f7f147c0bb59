"""Streamed exports of the trail: JSONL (every entry with its signed bytes) and CSV (summaries).

Streams (``stream_jsonl``, ``stream_csv``) read keyset pages of ``page_size`` rows, each in its
own short query, so memory stays constant whatever the number of rows and no transaction stays
open while a slow client reads. The export is bounded by the chain head at its start: entries
appended meanwhile are not included. Evidence packs, which verify offline, are
``audit/pack.py``'s.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from psycopg.rows import namedtuple_row
from sqlalchemy import text

from ._db import map_errors
from .canonical import format_time
from .filters import EntryFilter
from .store import AuditStore

__all__ = ["CSV_COLUMNS", "export_dict", "export_line", "stream_csv", "stream_jsonl"]

PAGE_SIZE = 1000

CSV_COLUMNS = (
    "seq", "recorded_at", "decision_id", "app_id", "caller_key_id", "outcome", "regulatory_tier",
    "sector", "policy_revision", "engine", "models_allowed", "models_denied", "reason_codes",
    "provenances_allowed", "key_id", "leaf_hash", "input_sha256", "result_sha256",
)
ROW_COLUMNS = (
    "seq, recorded_at, decision_id, app_id, caller_key_id, outcome, regulatory_tier, sector, "
    "policy_revision, engine, models_allowed, models_denied, reason_codes, provenances_allowed, "
    "key_id, leaf_hash, input_sha256, result_sha256"
)
SIGNED_COLUMNS = "seq, recorded_at, leaf_hash, body, input_data, result_data"
SELECT_SIZE_SQL = "SELECT size FROM audit_tlog_head WHERE id = 1"
# -- streams ----------------------------------------------------------------------------------


def _seq_range(store: AuditStore, filt: EntryFilter) -> tuple[int, int] | None:
    """The seq range an export of ``filt`` covers: its time bounds as seqs (time never goes
    backwards along the chain), capped by the chain head at the start of the export."""
    with map_errors("reading the seq range"), store.engine.connect() as conn:
        head = int(conn.execute(text(SELECT_SIZE_SQL)).scalar_one())
        low, high = 1, head if filt.max_seq is None else min(head, filt.max_seq)
        if filt.start is not None:
            first = conn.execute(text(
                "SELECT seq FROM audit_log WHERE recorded_at >= :t "
                "ORDER BY recorded_at, seq LIMIT 1"), {"t": filt.start}).scalar()
            if first is None:
                return None
            low = int(first)
        if filt.end is not None:
            last = conn.execute(text(
                "SELECT seq FROM audit_log WHERE recorded_at < :t "
                "ORDER BY recorded_at DESC, seq DESC LIMIT 1"), {"t": filt.end}).scalar()
            if last is None:
                return None
            high = min(high, int(last))
    return (low, high) if low <= high else None


def _pages(
    store: AuditStore, filt: EntryFilter, columns: str, *, page_size: int
) -> Iterator[Sequence[Any]]:
    """Pages of rows matching ``filt`` in chain (seq) order, one short query per page.

    Keyset on ``(seq, recorded_at)`` within the seq range
    of the export, so each page starts where the last one stopped. Read through psycopg's binary
    protocol: the signed bytes arrive as stored instead of hex-encoded (3× faster).
    """
    bounds = _seq_range(store, filt)
    if bounds is None:
        return
    where, params = filt.sql()
    where.append("seq <= :high")
    params.update(high=bounds[1], c_seq=bounds[0] - 1, c_at="-infinity", page_size=page_size)
    where.append("(seq, recorded_at) > (:c_seq, CAST(:c_at AS timestamptz))")
    sql = psycopg_params(
        f"SELECT {columns} FROM audit_log WHERE {' AND '.join(where)} "
        "ORDER BY seq, recorded_at LIMIT :page_size")
    while True:
        with map_errors("exporting audit entries"):
            proxied = store.engine.raw_connection()
            try:
                conn = proxied.driver_connection
                with conn.cursor(binary=True, row_factory=namedtuple_row) as cur:
                    rows = cur.execute(sql, params).fetchall()
                conn.rollback()
            finally:
                proxied.close()
        if rows:
            yield rows
        if len(rows) < page_size:
            return
        params.update(c_seq=rows[-1].seq, c_at=rows[-1].recorded_at)


def psycopg_params(sql: str) -> str:
    """``:name`` placeholders (EntryFilter's, SQLAlchemy style) -> psycopg's ``%(name)s``."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


def export_dict(row: Any) -> dict[str, Any]:
    """One line of a JSONL export or of an evidence pack's entries.jsonl: the leaf's exact
    bytes (``entry``, RFC 8785 text) and its blobs' (``input``, ``result``: RFC 8785 text or
    null), with ``seq``, ``recorded_at`` and ``leaf_hash`` for reading."""
    return {
        "seq": row.seq,
        "recorded_at": format_time(row.recorded_at),
        "leaf_hash": bytes(row.leaf_hash).hex(),
        "entry": bytes(row.body).decode("utf-8"),
        "input": bytes(row.input_data).decode("utf-8") if row.input_data is not None else None,
        "result": bytes(row.result_data).decode("utf-8") if row.result_data is not None else None,
    }


# JSON allows U+2028, U+2029 and U+0085 raw inside strings, but line splitters (Python's
# str.splitlines, JavaScript, some log shippers) end a line at each: written as \u escapes, every
# entry stays one line and json.loads still gives back the same text. In UTF-8 these byte
# sequences start with a lead byte, so they never match inside another character.
LINE_BREAKS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"), (b"\xc2\x85", b"\\u0085"))


def export_line(row: Any) -> bytes:
    """One line of a JSONL export or of an evidence pack's entries.jsonl."""
    line = orjson.dumps(export_dict(row))
    for raw, escaped in LINE_BREAKS:
        line = line.replace(raw, escaped)
    return line + b"\n"


def stream_jsonl(
    store: AuditStore, filt: EntryFilter, *, page_size: int = PAGE_SIZE
) -> Iterator[bytes]:
    """JSONL chunks (one per page): every matching leaf with its exact bytes and its blobs
    (:func:`export_dict`); each line's ``leaf_hash`` and blob digests check on their own, and
    an evidence pack (``audit/pack.py``) adds the proofs and the checkpoint."""
    for rows in _pages(store, filt, SIGNED_COLUMNS, page_size=page_size):
        yield b"".join(export_line(row) for row in rows)


def stream_csv(
    store: AuditStore, filt: EntryFilter, *, page_size: int = PAGE_SIZE
) -> Iterator[bytes]:
    """CSV chunks: a header, then one summary row per entry (arrays joined by spaces).

    The body is not in the CSV (it is JSON); use JSONL or an evidence pack for the signed bytes.
    """
    buffer = io.StringIO()
    # RFC 4180 line ends: the writer then quotes every cell holding a CR or an LF (with "\n" alone
    # a bare CR in a cell was written unquoted, and readers took it for the end of the row).
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode("utf-8")
    for rows in _pages(store, filt, ROW_COLUMNS, page_size=page_size):
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow(_csv_row(row))
        yield buffer.getvalue().encode("utf-8")


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    """``cell`` with a single quote in front if a spreadsheet would read it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _csv_row(row: Any) -> list[Any]:
    text = [
        row.decision_id, row.app_id, row.caller_key_id, row.outcome, row.regulatory_tier, row.sector,
        row.policy_revision, row.engine, " ".join(row.models_allowed), " ".join(row.models_denied),
        " ".join(row.reason_codes), " ".join(row.provenances_allowed), row.key_id,
    ]
    # The hashes (hex) are not text anyone chose; they stay as stored so that they can be
    # compared with the JSONL export.
    return [
        row.seq, format_time(row.recorded_at), *(neutralised(str(cell or "")) for cell in text),
        bytes(row.leaf_hash).hex(),
        bytes(row.input_sha256).hex() if row.input_sha256 is not None else "",
        bytes(row.result_sha256).hex() if row.result_sha256 is not None else "",
    ]

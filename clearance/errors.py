"""The root of every error Clearance raises on purpose.

``policy`` and ``audit`` may not import each other, so their error families derive from this
one class, and the CLI and the HTTP layer catch ``ClearanceError`` alone. Foreign exceptions
(psycopg, SQLAlchemy, regorus, requests, cryptography) are mapped into subclasses at the edge of
the package that calls the foreign library; they never travel further up.
"""

from __future__ import annotations


class ClearanceError(Exception):
    """Base of every error Clearance raises on purpose."""

    def diagnostics(self) -> str:
        """The paragraph the CLI prints on stderr before it exits 1."""
        return str(self)

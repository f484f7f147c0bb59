"""A Python client for Clearance: decide, pick the best cleared route, verify the receipt
offline, and keep the OpenAI SDK to cleared models (``ClearanceTransport``)."""

from clearance_client._http import __version__
from clearance_client._note import VerifierKey
from clearance_client.client import AsyncClient, Client
from clearance_client.errors import (
    ClearanceError,
    FieldError,
    Forbidden,
    InvalidRequest,
    ReceiptError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from clearance_client.models import ClearedRoute, Decision, DeniedRoute, Reason, ReceiptJSON
from clearance_client.receipt import VerifiedReceipt, verify_receipt
from clearance_client.routes import Pick, best_route
from clearance_client.transport import AsyncClearanceTransport, ClearanceTransport

__all__ = [
    "AsyncClearanceTransport",
    "AsyncClient",
    "ClearanceError",
    "ClearanceTransport",
    "ClearedRoute",
    "Client",
    "Decision",
    "DeniedRoute",
    "FieldError",
    "Forbidden",
    "InvalidRequest",
    "Pick",
    "Reason",
    "ReceiptError",
    "ReceiptJSON",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "VerifiedReceipt",
    "VerifierKey",
    "__version__",
    "best_route",
    "verify_receipt",
]

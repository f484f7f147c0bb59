"""RFC 8785 (JSON Canonicalization Scheme) encoding of parsed JSON values.

The receipt check hashes the canonical bytes of the entry and of the decision's result; the
server computes the same bytes with a maintained RFC 8785 package. This encoder exists only
because the client may depend on nothing but httpx; it is tested against that package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from clearance_client.errors import ClearanceError

# RFC 8785 numbers are IEEE 754 doubles: integers beyond 2**53 - 1 would lose precision.
_INT_LIMIT = 2**53 - 1

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class CanonicalizationError(ClearanceError):
    """A value has no RFC 8785 form (NaN, infinity, a lone surrogate, a non-string key, …)."""


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (None, bool, int, float, str, list/tuple, str-keyed mapping)."""
    parts: list[str] = []
    _encode(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a "\ud800" escape
        raise CanonicalizationError("a string holds a lone UTF-16 surrogate, which RFC 8785 forbids") from exc


def _encode(value: Any, out: list[str]) -> None:
    # bool before int: True is an int in Python.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > _INT_LIMIT:
            raise CanonicalizationError(f"integer {value} is outside the IEEE 754 exact range ±(2**53 - 1)")
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalizationError(f"object key {key!r} is not a string")
        # Members are ordered by the UTF-16 code units of their names (RFC 8785 §3.2.3);
        # comparing big-endian UTF-16 bytes gives exactly that order.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    else:
        raise CanonicalizationError(f"{type(value).__name__} is not a JSON value")


def _string(text: str) -> str:
    chars = []
    for ch in text:
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            chars.append(escaped)
        elif ch < " ":
            chars.append(f"\\u{ord(ch):04x}")
        else:
            chars.append(ch)
    return '"' + "".join(chars) + '"'


def _number(value: float) -> str:
    """ECMAScript's Number-to-String (ECMA-262 §7.1.12.1), as RFC 8785 §3.2.2.3 requires."""
    if math.isnan(value) or math.isinf(value):
        raise CanonicalizationError(f"{value} is not a JSON number")
    if value == 0:
        return "0"  # -0 included
    sign = "-" if value < 0 else ""
    # repr gives the shortest digit string that round-trips, as ECMAScript requires.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # n: the position of the decimal point relative to the digit string, as ECMA-262 uses it.
    n = len(whole) + (int(exp_text) if exp_text else 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    exponent = n - 1
    exp = ("+" if exponent > 0 else "-") + str(abs(exponent))
    if k == 1:
        return sign + digits + "e" + exp
    return sign + digits[0] + "." + digits[1:] + "e" + exp

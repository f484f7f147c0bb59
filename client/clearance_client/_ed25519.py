"""Ed25519 signature verification (RFC 8032 §5.1.7), in pure Python.

Verification only: it handles public data, so constant time does not matter here. It refuses
every non-canonical encoding (a public key or R whose y is not reduced, or whose x is zero with
the sign bit set; S not below the group order), and checks the cofactorless equation
[S]B = R + [k]A by comparing the encoding of [S]B - [k]A with R byte for byte, which is what
OpenSSL (and so the ``cryptography`` package) does.
"""

from __future__ import annotations

import hashlib

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point
_D = -121665 * pow(121666, _P - 2, _P) % _P
_D2 = 2 * _D % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

# Points in extended twisted Edwards coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, x*y = T/Z.
_Point = tuple[int, int, int, int]
_IDENTITY: _Point = (0, 1, 1, 0)


def _add(a: _Point, b: _Point) -> _Point:
    # Unified addition for a = -1 (Hisil–Wong–Carter–Dawson 2008, "add-2008-hwcd-3").
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = t1 * _D2 * t2 % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(a: _Point) -> _Point:
    # "dbl-2008-hwcd" for a = -1, with every intermediate negated (the products are unchanged).
    x1, y1, z1, _ = a
    aa = x1 * x1 % _P
    bb = y1 * y1 % _P
    cc = 2 * z1 * z1 % _P
    h = aa + bb
    e = h - (x1 + y1) * (x1 + y1)
    g = aa - bb
    f = cc + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _negate(a: _Point) -> _Point:
    x, y, z, t = a
    return (-x % _P, y, z, -t % _P)


def _decode(data: bytes) -> _Point | None:
    """RFC 8032 §5.1.3 point decoding; None for anything that is not a canonical encoding."""
    if len(data) != 32:
        return None
    number = int.from_bytes(data, "little")
    sign = number >> 255
    y = number & ((1 << 255) - 1)
    if y >= _P:
        return None  # non-canonical: y not reduced modulo p
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vx2 = v * x * x % _P
    if vx2 == (-u) % _P:
        x = x * _SQRT_M1 % _P
    elif vx2 != u:
        return None  # not on the curve
    if x == 0 and sign:
        return None  # non-canonical: "negative zero"
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _encode(point: _Point) -> bytes:
    x, y, z, _ = point
    zinv = pow(z, _P - 2, _P)
    x, y = x * zinv % _P, y * zinv % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_BASE = _decode((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))
assert _BASE is not None


def _double_scalar_mult(s: int, p: _Point, t: int, q: _Point) -> _Point:
    """[s]p + [t]q, one doubling per bit (Straus–Shamir)."""
    both = _add(p, q)
    result = _IDENTITY
    for bit in range(max(s.bit_length(), t.bit_length()) - 1, -1, -1):
        result = _double(result)
        pick = ((s >> bit) & 1, (t >> bit) & 1)
        if pick == (1, 1):
            result = _add(result, both)
        elif pick == (1, 0):
            result = _add(result, p)
        elif pick == (0, 1):
            result = _add(result, q)
    return result


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    # (1) Decode A and R, refusing non-canonical encodings; S must be below the group order.
    a_point = _decode(public_key)
    r_bytes, s_bytes = signature[:32], signature[32:]
    if a_point is None or _decode(r_bytes) is None:
        return False
    s = int.from_bytes(s_bytes, "little")
    if s >= _L:
        return False
    # (2) k = SHA-512(R || A || M) mod L (Ed25519: no dom2 prefix, PH is the identity).
    k = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % _L
    # (3) [S]B - [k]A must encode to exactly R.
    return _encode(_double_scalar_mult(s, _BASE, k, _negate(a_point))) == r_bytes

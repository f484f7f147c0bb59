"""The package's RFC 8785 encoder against the maintained ``rfc8785`` package (test-only)."""

from __future__ import annotations

import json
import math
import struct

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance_client._jcs import CanonicalizationError, canonical_bytes

INT_LIMIT = 2**53 - 1

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-INT_LIMIT, max_value=INT_LIMIT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",)))  # no lone surrogates
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_matches_rfc8785_package_on_generated_values(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=2000, deadline=None)
@given(scalars | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=("Cs",))), st.none(), max_size=12))
def test_matches_rfc8785_package_on_generated_scalars_and_member_names(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=3000, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_every_bit_pattern_of_a_double_matches(bits):
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if math.isnan(value) or math.isinf(value):
        with pytest.raises(CanonicalizationError):
            canonical_bytes(value)
    else:
        assert canonical_bytes(value) == rfc8785.dumps(value)


# ECMAScript Number-to-String results (ECMA-262 §7.1.12.1), the form RFC 8785 §3.2.2.3 prescribes.
NUMBERS = [
    (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.0, "-1"), (0.1, "0.1"), (0.1 + 0.2, "0.30000000000000004"),
    (100.0, "100"), (1e20, "100000000000000000000"), (1e21, "1e+21"), (1.5e21, "1.5e+21"),
    (123456789012345680000.0, "123456789012345680000"), (1e-6, "0.000001"), (1.5e-6, "0.0000015"),
    (1e-7, "1e-7"), (1.25e-7, "1.25e-7"), (5e-324, "5e-324"), (-5e-324, "-5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (2.2250738585072014e-308, "2.2250738585072014e-308"),
    (9007199254740992.0, "9007199254740992"), (333333333.3333333, "333333333.3333333"),
    (4.5, "4.5"), (0.002, "0.002"), (1e-27, "1e-27"), (1e30, "1e+30"),
]


@pytest.mark.parametrize(("value", "text"), NUMBERS)
def test_number_forms(value, text):
    assert canonical_bytes(value) == text.encode()
    assert rfc8785.dumps(value) == text.encode()


STRINGS = [
    "", "plain", "quote\" backslash\\ slash/", "\b\f\n\r\t", "\x00\x01\x1f", "\x7f", "é", "€", "\u2028\u2029",
    "😀", "\U0010ffff", "\ufeff", "<script>", "a\u0000b",
]


@pytest.mark.parametrize("text", STRINGS)
def test_string_escapes(text):
    assert canonical_bytes(text) == rfc8785.dumps(text)
    assert json.loads(canonical_bytes(text)) == text


def test_member_order_is_by_utf16_code_units_not_code_points():
    # U+FFFF sorts after U+1F600 in code points, before it in UTF-16 (0xD83D < 0xFFFF)...
    value = {"\uffff": 1, "\U0001f600": 2, "a": 3, "é": 4, "A": 5, "": 6, "aa": 7}
    encoded = canonical_bytes(value)
    assert encoded == rfc8785.dumps(value)
    assert list(json.loads(encoded)) == ["", "A", "a", "aa", "é", "\U0001f600", "\uffff"]


def test_rfc8785_example_structure():
    # The shape of RFC 8785 §3.2.3's sorting example: numbers, literals, a nested object.
    value = {"numbers": [333333333.3333333, 1e30, 4.5, 2e-3, 1e-27], "string": "€$\u000f\nA'B\"\\\\\"/",
             "literals": [None, True, False]}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes(value).startswith(b'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]')


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 2**53, -(2**53), {1: "x"}, {"k": {b"x"}}, object(),
                                 "\ud800", {"\udfff": 1}])
def test_values_without_a_canonical_form_are_refused(bad):
    with pytest.raises(CanonicalizationError):
        canonical_bytes(bad)


def test_tuples_are_arrays_and_bools_are_not_numbers():
    assert canonical_bytes((1, True, None)) == b"[1,true,null]"
    assert canonical_bytes({"b": False, "a": 0}) == b'{"a":0,"b":false}'

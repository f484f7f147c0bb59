"""Engine pinning: what regorus 0.13.0 does with every Rego feature and built-in the pack uses.

Each case is evaluated on BOTH of regorus' paths — the tree-walking interpreter
(``regorus.Engine``: the Rego unit tests, and decisions past the RVM's instruction limit) and
the compiled program (``regorus.Program`` + ``regorus.Rvm``: what the service runs) — and both
answers are pinned. Where the two paths differ from each other (the divergences listed at the
top of rego/routes.rego, built-in errors, ``with``, default functions), the difference itself
is pinned, so an engine upgrade that changes it fails here and is looked at, not discovered
in decisions.

Upgrading ``gordon-to-regorus`` is a reviewed change: bump the version pin below, run this
file, and for every failure decide whether the pack relies on the old behaviour (then fix the
pack or refuse the upgrade) before updating the pin. Where OPA is known or likely to answer
differently, the case says so (``# OPA: …``); tests/engines/test_opa_live.py compares whole
decisions with a real OPA when one is available.

Two guards keep the pins complete: every built-in called in rego/*.rego and every keyword
used there must have a pin in this file.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import regorus

from tests.conftest import REPO

REGORUS_DIST = "gordon-to-regorus"
PINNED_VERSION = "0.13.0"
UNDEFINED = "<undefined>"  # what both paths answer for an undefined rule


@dataclass(frozen=True)
class Raised:
    """An evaluation (or, for the RVM, compilation) that raised, with a fragment of the message."""

    fragment: str


def _first_line(exc: BaseException) -> str:
    return str(exc).split("Stack backtrace")[0].strip()


def interpreter(module: str, rule: str, data: dict[str, Any], policy_input: dict[str, Any]) -> Any:
    engine = regorus.Engine()
    try:
        engine.add_policy("pin.rego", module)
        engine.add_data_json(json.dumps(data))
        engine.set_input_json(json.dumps(policy_input))
        return json.loads(engine.eval_rule_as_json(rule))
    except Exception as exc:  # regorus raises RuntimeError (and PanicException) alike
        return _first_line(exc)


def compiled(module: str, rule: str, data: dict[str, Any], policy_input: dict[str, Any]) -> Any:
    try:
        program = regorus.Program.compile_from_modules(json.dumps(data), [("pin.rego", module)], [rule])
        vm = regorus.Rvm()
        vm.load_program(program)
        vm.set_data_json(json.dumps(data))
        vm.set_input_json(json.dumps(policy_input))
        return json.loads(vm.execute_entry_point(rule))
    except Exception as exc:
        return _first_line(exc)


def both(body: str, *, rule: str = "data.pin.x", data: dict[str, Any] | None = None,
         policy_input: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """(interpreter's answer, RVM's answer) for ``body`` in ``package pin`` (Rego v1).
    An answer is the JSON value, ``UNDEFINED``, or the error text when evaluation raised."""
    module = "package pin\n\nimport rego.v1\n\n" + body + "\n"
    args = (module, rule, data or {}, {} if policy_input is None else policy_input)
    return interpreter(*args), compiled(*args)


def check(answer: Any, expected: Any) -> None:
    if isinstance(expected, Raised):
        assert isinstance(answer, str) and expected.fragment in answer, f"expected an error with {expected.fragment!r}, got {answer!r}"
    else:
        assert answer == expected and type(answer) is type(expected), f"expected {expected!r}, got {answer!r}"


INPUT = {"s": "abc", "n": "12", "f": 1.5, "xs": [1, 2, 3], "flag": False, "none": None}

# (id, body defining x, the answer of BOTH paths)
SAME_ON_BOTH_PATHS: list[tuple[str, str, Any]] = [
    # --- sets
    ("set-comprehension-dedupes-and-sorts", "x := {v | some v in [3, 1, 3, 2]}", [1, 2, 3]),
    ("set-operators", "x := [{1, 2} | {2, 3}, {1, 2} & {2, 3}, {1, 2} - {2, 3}]", [[1, 2, 3], [2], [1]]),
    ("set-membership", 'x := ["a" in {"a", "b"}, "c" in {"a", "b"}]', [True, False]),
    ("set-inside-object-is-a-sorted-array", 'x := {"s": {"b", "a"}}', {"s": ["a", "b"]}),
    ("set-of-objects-sorted", 'x := {{"k": 2}, {"k": 1}}', [{"k": 1}, {"k": 2}]),
    # --- comprehensions
    ("array-comprehension-keeps-order", "x := [y | some v in [3, 1]; y := v * 2]", [6, 2]),
    # `a * b | …` parses as a set union with `some`: arithmetic in a head needs a binding.
    ("arithmetic-head-of-a-comprehension-is-refused", "x := [v * 2 | some v in [3, 1]]", Raised("unexpected keyword `some`")),
    ("object-comprehension", 'x := {k: count(k) | some k in ["aa", "b"]}', {"aa": 2, "b": 1}),
    ("comprehension-without-match-is-empty", "x := [v | some v in [1, 2]; v > 5]", []),
    ("nested-comprehensions", "x := [[i, [j | some j in [1, 2]; j > i]] | some i in [0, 1, 2]]",
     [[0, [1, 2]], [1, [2]], [2, []]]),
    ("comprehension-filter-then-bind-from-input", "x := [v | some v in input.xs; v != 2]", [1, 3]),
    # --- some … in, membership, not
    ("some-in-array-with-index", 'x := [[i, v] | some i, v in ["p", "q"]]', [[0, "p"], [1, "q"]]),
    ("some-in-object-key-value-sorted", 'x := [[k, v] | some k, v in {"b": 2, "a": 1}]', [["a", 1], ["b", 2]]),
    ("some-in-undefined-collection", "x := [v | some v in input.missing]", []),
    ("membership-in-array", "x := [2 in input.xs, 9 in input.xs]", [True, False]),
    ("not-of-undefined-is-true", "x if not input.missing", True),
    ("not-of-false-is-true", "x if not input.flag", True),
    # --- every
    ("every-true", "x if { every v in input.xs { v > 0 } }", True),
    ("every-false-falls-to-default", "default x := false\n\nx if { every v in input.xs { v > 1 } }", False),
    ("every-over-empty-is-true", "x if { every v in [] { v > 1 } }", True),
    ("every-key-value", 'x if { every k, v in {"a": 1} { k == "a"; v == 1 } }', True),
    ("every-over-undefined-is-undefined", "x if { every v in input.missing { v > 1 } }", UNDEFINED),
    # --- sort, max, min, sum on multi-digit numbers and mixed types
    ("sort-numbers-numerically", "x := sort([10, 9, 100, 2, -3, 1.5])", [-3, 1.5, 2, 9, 10, 100]),
    ("sort-strings-bytewise", 'x := sort(["b", "a", "B", "10", "9"])', ["10", "9", "B", "a", "b"]),
    ("sort-arrays-element-by-element", 'x := sort([[2, "a"], [10, "b"], [1, "c"], [10, "a"]])',
     [[1, "c"], [2, "a"], [10, "a"], [10, "b"]]),
    ("sort-mixed-types-by-type-order", 'x := sort([{"a": 1}, [1], "s", 2, true, null])', [None, True, 2, "s", [1], {"a": 1}]),
    ("sort-negative-price-keys", "x := sort([[0 - 87, 0.5], [0 - 9, 0.1], [0, 2]])", [[-87, 0.5], [-9, 0.1], [0, 2]]),
    ("max-min-multi-digit", "x := [max([10, 9, 100, 2]), min([10, 9, 100, 2]), max([0.5, 10, 9.99]), min([0.5, 10, -1])]",
     [100, 2, 10, -1]),
    ("max-of-empty-is-undefined", "x := max([])", UNDEFINED),
    ("sum", "x := sum([1, 2.5])", 3.5),
    # --- sprintf (%s %d %v) and large numbers
    ("sprintf-d-large-ints", 'x := sprintf("%d MAU exceeds the %d cap", [800000000, 700000000])',
     "800000000 MAU exceeds the 700000000 cap"),
    ("sprintf-d-beyond-int64", 'x := sprintf("%d", [12345678901234567890])', "12345678901234567890"),
    # licence.rego prints MAU figures with thousands separators and as millions
    ("sprintf-03d-groups", 'x := sprintf("%d,%03d,%03d|%dM", [floor(700000001 / 1000000), floor(700000001 / 1000) % 1000, 700000001 % 1000, 812000000 / 1000000])',
     "700,000,001|812M"),
    ("sprintf-v-scalars", 'x := sprintf("%v|%v|%v|%v|%v|%v", [1.5, 0.1, 1.7499, true, null, "s"])', "1.5|0.1|1.7499|true|null|s"),
    ("sprintf-v-float-that-is-whole", 'x := sprintf("%v %v", [5.0, 70.0])', "5 70"),
    ("sprintf-v-binary-float-noise", 'x := sprintf("%v", [0.1 + 0.2])', "0.30000000000000004"),  # OPA: likely 0.3
    ("sprintf-v-1e21", 'x := sprintf("%v", [1e21])', "1000000000000000000000"),  # OPA (Go %v): 1e+21
    ("sprintf-v-collections", 'x := sprintf("%v %v %v", [[1, "a"], {"b": 1, "a": [2]}, {3, 1}])', '[1, "a"] {"a": [2], "b": 1} {1, 3}'),
    ("sprintf-s-of-number-and-null", 'x := sprintf("%s %s", [1.25, null])', "1.25 null"),
    ("sprintf-s-unicode", 'x := sprintf("%s (%s)", ["Mistral Small 4", "é"])', "Mistral Small 4 (é)"),
    ("sprintf-2f", 'x := sprintf("%.2f", [1.005])', "1.00"),
    # --- object.get, object.union, object.union_n, object.keys, object.remove
    ("object-get-present-missing", 'x := [object.get({"a": 1}, "a", 0), object.get({"a": 1}, "b", 0)]', [1, 0]),
    ("object-get-path", 'x := [object.get({"a": {"b": 1}}, ["a", "b"], 0), object.get({"a": {"b": 1}}, ["a", "c"], 0)]', [1, 0]),
    ("object-get-path-into-array", "x := [object.get(input, [\"xs\", 0], 0), object.get(input, [\"xs\", 9], 0)]", [1, 0]),
    ("object-get-null-value-is-not-default", 'x := object.get(input, "none", "d")', None),
    ("object-union-deep-merges-objects-replaces-arrays",
     'x := object.union({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"c": 3}, "l": [2]})', {"a": {"b": 1, "c": 3}, "l": [2]}),
    ("object-union-n", 'x := object.union_n([{"a": {"x": 1}}, {"a": {"y": 2}}, {"b": 3}, {}])', {"a": {"x": 1, "y": 2}, "b": 3}),
    ("object-union-n-later-wins", 'x := object.union_n([{"a": "first"}, {"a": "second"}])', {"a": "second"}),
    ("object-union-n-of-nothing", "x := object.union_n([])", {}),
    ("object-keys-is-a-sorted-set", 'x := object.keys({"b": 1, "a": 2})', ["a", "b"]),
    ("object-remove", 'x := object.remove({"a": 1, "b": 2}, ["a"])', {"b": 2}),
    # --- concat, count, array.concat, array.reverse, string built-ins
    ("concat", 'x := [concat(", ", ["a", "b"]), concat("", []), concat("-", {"b", "a"})]', ["a, b", "", "a-b"]),
    ("count", 'x := [count([1, 2]), count({}), count("héllo"), count({1}), count("")]', [2, 0, 5, 1, 0]),
    ("array-concat", "x := array.concat(array.concat([1, 2], [2]), [])", [1, 2, 2]),
    ("array-reverse", "x := array.reverse([1, 2, 3])", [3, 2, 1]),
    ("string-builtins",
     'x := [upper("ab"), lower("AB"), startswith("abc", "ab"), endswith("abc", "bc"), contains("abc", "b"), '
     'split("a,b", ","), trim_space(" a "), replace("aXa", "X", "-"), substring("abcdef", 1, 3), indexof("abc", "c")]',
     ["AB", "ab", True, True, True, ["a", "b"], "a", "a-a", "bcd", 2]),
    # --- is_* (false, not undefined, for the wrong type)
    ("is-star", 'x := [is_string("a"), is_number(1), is_number(null), is_array([]), is_array({1}), is_set({1}), '
                "is_object({}), is_boolean(false), is_null(null), is_number(\"1\")]",
     [True, True, False, True, False, True, True, True, True, False]),
    # --- arithmetic, rounding, comparisons
    ("decimal-arithmetic", "x := [0.1 + 0.2, (3 * 0.1 + 0.2) / 4, 100 * 0.7, 1 / 3, 7 / 2, 10 / 5, 2.5 * 4]",
     [0.30000000000000004, 0.125, 70, 0.3333333333333333, 3.5, 2, 10]),  # OPA: arbitrary precision, may differ
    ("integers-beyond-2-pow-53-stay-exact", "x := [800000000 * 1000000, 9007199254740993, 9007199254740993 + 0]",
     [800000000000000, 9007199254740993, 9007199254740993]),
    ("floor-and-modulo-of-large-integers", "x := [floor(99999999999 / 1000), floor(2.5), floor(-2.5), 100000000001 % 1000, floor(12 / 1000)]",
     [99999999, 2, -3, 1, 0]),
    ("round-half-away-from-zero", "x := [round(2.5), round(-2.5), round(0.49999), round(1.00005 * 10000) / 10000]",
     [3, -3, 0, 1.0001]),
    ("blended-price-formula",
     "x := [q | some p in [[0.1, 0.2], [3, 15], [0.28, 0.42], [1.75, 0.2]]; q := round((((3 * p[0]) + p[1]) / 4) * 10000) / 10000]",
     [0.125, 6, 0.315, 1.3625]),
    ("integer-and-float-compare-equal", "x := [1 == 1.0, {1.0} == {1}, [1] == [1.0], 2 > 1.5]", [True, True, True, True]),
    ("cross-type-order", 'x := [1 > null, null < false, "a" > 1, [] > "z", {} > []]', [True, True, True, True, True]),
    ("number-compared-with-null-cap", "x := [v | some v in [null, 700000000]; is_number(v); 800000000 > v]", [700000000]),
    # --- default rules, else chains
    ("default-when-body-undefined", 'default x := "d"\n\nx := v if { v := input.missing }', "d"),
    ("default-not-used-when-defined", 'default x := "d"\n\nx := "set" if input.xs', "set"),
    ("else-chain", 'f(n) := "big" if { n > 100 } else := "mid" if { n > 10 } else := "small"\n\nx := [f(1000), f(50), f(1)]',
     ["big", "mid", "small"]),
    ("else-with-undefined-value", 'f(n) := "pos" if { n > 0 } else := input.missing\n\nx := [f(1), f(-1)]', UNDEFINED),
    ("function-with-one-definition-per-case",
     'kind(d, true) := "self-hosted"\n\nkind(d, false) := concat(":", ["api", d])\n\nx := [kind("a", true), kind("b", false)]',
     ["self-hosted", "api:b"]),
    ("partial-object-rule", 'p[k] := v if { some k, v in {"a": 1, "b": 2}; v > 1 }\n\nx := p', {"b": 2}),
    ("partial-set-rule", 'p contains v if { some v in [3, 1, 3] }\n\nx := p', [1, 3]),
    ("comprehension-in-object-value-with-false-condition", 'x := {"a": [1 | input.flag], "b": 2}', {"a": [], "b": 2}),
    ("to-number-of-a-number-string", "x := to_number(input.n)", 12),
    # --- used by the invariants' tests (rego/invariants_test.rego)
    ("empty-set-literal", "x := [set() == {v | some v in []}, count(set()), set() == [], set() == {}]",
     [True, 0, False, False]),
    # Rust's regex and Go's RE2 (OPA) agree on this syntax: anchors, classes, quantifiers.
    ("regex-match", 'x := [regex.match(`^[a-z_]+$`, "gated_capability"), regex.match(`^[a-z_]+$`, "Gated"), '
                    'regex.match(`^[a-z_]+$`, ""), regex.match(`b+`, "abbc")]',
     [True, False, False, True]),
]


@pytest.mark.parametrize(("body", "expected"), [(b, e) for _, b, e in SAME_ON_BOTH_PATHS],
                         ids=[i for i, _, _ in SAME_ON_BOTH_PATHS])
def test_same_answer_on_both_paths(body: str, expected: Any) -> None:
    interpreted, rvm = both(body, policy_input=INPUT)
    check(interpreted, expected)
    check(rvm, expected)


# --- pinned differences between the two paths (and OPA) --------------------------------
# (id, body, the interpreter's answer, the RVM's answer)
PATHS_DIFFER: list[tuple[str, str, Any, Any]] = [
    # Built-in errors: the interpreter raises; the RVM makes the expression undefined, as OPA does
    # without strict-builtin-errors (OpaEngine asks OPA for strict errors: it then fails like the
    # interpreter). The service runs the RVM: a built-in error in a rule silently makes it undefined.
    ("to-number-of-garbage", "x := to_number(input.s)", Raised("could not parse string as number"), UNDEFINED),
    ("sprintf-d-of-a-float", 'x := sprintf("%d", [input.f])', Raised("format verb d"), UNDEFINED),
    ("sprintf-missing-argument", 'x := sprintf("%s %s", [input.s])', Raised("no argument specified for format verb"), UNDEFINED),  # OPA: "abc %!s(MISSING)"
    ("sprintf-width-flags", 'x := sprintf("%05.1f", [3.14159])', Raised("number specified for format verb"), UNDEFINED),  # OPA: "003.1"
    ("count-of-a-number", "x := count(input.f)", Raised("`count` requires array/object/set/string argument"), UNDEFINED),
    ("adding-a-string", 'x := input.f + "a"', Raised("`add` expects numeric argument"), UNDEFINED),
    ("divide-by-zero", "x := input.f / 0", Raised("divide by zero"), UNDEFINED),
    ("concat-of-numbers", 'x := concat(", ", input.xs)', Raised("`concat` expects string collection"), UNDEFINED),
    ("default-rule-after-a-builtin-error", 'default x := "d"\n\nx := to_number(input.s)', Raised("could not parse"), "d"),
    ("else-after-a-builtin-error", 'x := y if { y := to_number(input.s) } else := "else"', Raised("could not parse"), UNDEFINED),
    ("comprehension-over-a-builtin-error", "x := [1 | to_number(input.s)]", Raised("could not parse"), []),
    # routes.rego: multi-value rules with a ref head lose their keys in the RVM.
    ("multi-value-ref-head", 'deny[k] contains r if { some k in ["a", "b"]; r := concat("-", [k, "x"]) }\n\nx := deny',
     {"a": ["a-x"], "b": ["b-x"]}, ["a-x", "b-x"]),
    # routes.rego: the RVM does not end a body at a binding of an undefined value.
    ("binding-undefined-does-not-end-the-body", 'x := "reached" if {\n\ty := input.missing\n\tz := 1\n}', UNDEFINED, "reached"),
    ("binding-undefined-in-a-comprehension", "x := [v | some i in [1, 2]; v := input.missing]", [], [UNDEFINED, UNDEFINED]),
    # routes.rego: a comprehension with no iteration of its own, inside an iterating one.
    ("comprehension-without-iteration-false", "x := [[i, r] | some i in [1, 2]; r := [i | input.flag]]",
     [[1, []], [2, []]], []),
    ("comprehension-without-iteration-mixed", "x := [[i, r] | some i in [1, 2]; r := {i | i > 1}]",
     [[1, []], [2, [2]]], []),
    ("comprehension-without-iteration-in-a-rule", "x := [1, r] if { some i in [1]; r := [i | input.flag] }",
     [1, []], UNDEFINED),
    # Functions with a default: the RVM answers undefined for the whole expression.
    ("default-function", 'default g(_) := "d"\n\ng(1) := "one"\n\nx := [g(1), g(2)]', ["one", "d"], UNDEFINED),
    # `with` (the Rego tests use it): the RVM compiler refuses it; the pack's modules have none.
    ("with-input", 'y := input.s\n\nx := v if { v := y with input.s as "w" }', "w", Raised("`with` keyword is not supported")),
    ("with-data", "y := count(data.models)\n\nx := v if { v := y with data.models as [1, 2, 3] }", 3,
     Raised("`with` keyword is not supported")),
    ("with-on-a-function-call", 'f(z) := concat("-", [z, input.s])\n\nx := v if { v := f("a") with input.s as "w" }', "a-w",
     Raised("`with` keyword is not supported")),
]


@pytest.mark.parametrize(("body", "on_interpreter", "on_rvm"), [(b, i, r) for _, b, i, r in PATHS_DIFFER],
                         ids=[i for i, *_ in PATHS_DIFFER])
def test_pinned_difference_between_the_paths(body: str, on_interpreter: Any, on_rvm: Any) -> None:
    interpreted, rvm = both(body, policy_input=INPUT, data={"models": [0]})
    check(interpreted, on_interpreter)
    check(rvm, on_rvm)


def test_rvm_instruction_limit_is_25000_and_the_interpreter_has_none() -> None:
    """policy/engine.py falls back to the interpreter on this error; the limit is not settable."""
    body = "x := count([v | some v in data.big; v >= 0])"
    interpreted, rvm = both(body, data={"big": list(range(30_000))})
    assert interpreted == 30_000
    check(rvm, Raised("maximum instruction limit"))
    small_interpreted, small_rvm = both(body, data={"big": list(range(100))})
    assert small_interpreted == small_rvm == 100


def test_rvm_compiles_the_pack_and_refuses_with_in_it() -> None:
    modules = [(p.name, p.read_text()) for p in sorted((REPO / "rego").glob("*.rego")) if not p.name.endswith("_test.rego")]
    regorus.Program.compile_from_modules("{}", modules, ["data.clearance.decision"])
    with_module = ("extra.rego", "package clearance.extra\n\nimport rego.v1\n\nx := v if { v := input.a with input.a as 1 }\n")
    with pytest.raises(Exception, match="`with` keyword is not supported"):
        regorus.Program.compile_from_modules("{}", [*modules, with_module], ["data.clearance.extra.x"])


def test_pinned_regorus_version() -> None:
    found = importlib.metadata.version(REGORUS_DIST)
    assert found == PINNED_VERSION, (
        f"{REGORUS_DIST} is {found}, the pins in this file are for {PINNED_VERSION}. Upgrading the "
        "embedded engine is a reviewed change: run tests/engines/test_pinning.py, decide about every "
        "changed behaviour (does the pack rely on it?), then update PINNED_VERSION and pyproject.toml"
    )


# --- the pins cover what the pack uses --------------------------------------------------

PINNED_BUILTINS = {
    "sprintf", "count", "object.union_n", "object.union", "object.get", "object.keys", "object.remove",
    "is_array", "is_string", "is_number", "is_set", "is_object", "is_boolean", "is_null",
    "sort", "max", "min", "sum", "round", "floor", "concat", "array.concat", "array.reverse", "to_number",
    "upper", "lower", "startswith", "endswith", "contains", "split", "trim_space", "replace", "substring", "indexof",
    "set", "regex.match",
}
PINNED_KEYWORDS = {"some", "in", "every", "not", "default", "else", "with", "contains", "if", "import", "package", "as"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_COMMENT = re.compile(r"#.*")
_CALL = re.compile(r"(?<![\w.])([a-z_][\w]*(?:\.[a-z_][\w]*)*)\(")
_DEFINED = re.compile(r"^([a-z_]\w*)\(", re.M)
_KEYWORD = re.compile(r"\b(some|in|every|not|default|else|with|contains|if|import|package|as)\b")


def _pack_sources() -> dict[str, str]:
    return {p.name: _STRING.sub('""', _COMMENT.sub("", p.read_text())) for p in sorted((REPO / "rego").glob("*.rego"))}


def test_every_builtin_the_pack_calls_is_pinned() -> None:
    sources = _pack_sources()
    own = {name for text in sources.values() for name in _DEFINED.findall(text)}
    called = set()
    for text in sources.values():
        for name in _CALL.findall(text):
            last = name.rsplit(".", 1)[-1]
            if name.startswith("data.") or last in own or name in own:
                continue  # the pack's own functions (data.clearance.x.f, alias.f, f)
            called.add(name)
    assert called, "no built-in found: the scan is broken"
    assert called <= PINNED_BUILTINS, f"built-ins without a pin: {sorted(called - PINNED_BUILTINS)}"


def test_every_keyword_the_pack_uses_is_pinned() -> None:
    used = {k for text in _pack_sources().values() for k in _KEYWORD.findall(text)}
    assert {"some", "in", "every", "default", "else", "with", "not"} <= used  # the scan sees them
    assert used <= PINNED_KEYWORDS, f"keywords without a pin: {sorted(used - PINNED_KEYWORDS)}"

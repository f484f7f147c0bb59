"""The VM's answer handed to a JSON decoder without re-encoding it.

regorus hands an answer over as a Python ``str``. A ``str`` with a character past ASCII is stored
one byte per character (Latin-1), and a JSON decoder (msgspec, orjson) reads UTF-8: CPython
re-encodes the whole text first, about 6 % of a first evaluation on the reference catalog for
the one ``§`` its licence clauses cite (docs/performance.md). Latin-1 bytes are a copy of that
storage, and a JSON string may spell any character as ``\\u00XX``; outside its strings JSON
text is ASCII. So the characters of U+0080–U+00FF the pack can put into an answer (those of its
data and modules: :func:`escapes_for`) are escaped in the Latin-1 bytes, and the decoder gets
ASCII bytes that decode to the same values. Any other text (a character from the input, or one
past U+00FF) is handed over as the ``str`` it is.
"""

from __future__ import annotations

from collections.abc import Iterable

# (the character's Latin-1 byte, its JSON escape), for each character the pack can emit.
Escapes = tuple[tuple[bytes, bytes], ...]


def escapes_for(texts: Iterable[str]) -> Escapes:
    """The escapes of the characters of U+0080–U+00FF in ``texts`` (a pack's data and modules)."""
    found: set[str] = set()
    for text in texts:
        if not text.isascii():
            found.update(c for c in text if "\x80" <= c <= "\xff")
    return tuple((c.encode("latin-1"), f"\\u{ord(c):04x}".encode("ascii")) for c in sorted(found))


def decodable(text: str, escapes: Escapes) -> str | bytes:
    """``text`` (JSON) as ASCII bytes when :func:`escapes_for` covers its characters, else as is:
    either decodes to the same value."""
    if text.isascii() or not escapes:
        return text
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:  # a character past U+00FF
        return text
    for raw, escaped in escapes:
        if raw in data:
            data = data.replace(raw, escaped)
    return data if data.isascii() else text

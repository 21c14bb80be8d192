"""The one loop behind every target's quoting: each target keeps its own escape table as data."""

from __future__ import annotations


def quote_with(text: str, escapes: dict[str, str], control: str, quote: str = "'") -> str:
    """`text` between `quote`s, characters in `escapes` replaced, other control characters
    written with the `control` format (given the code point)."""
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(control.format(ord(ch)))
        else:
            out.append(ch)
    return quote + "".join(out) + quote

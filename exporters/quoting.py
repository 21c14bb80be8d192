"""Quoted names, both ways, from one escape table per target.

A name from an ONNX file can be anything, so every target quotes it: a `Quoting` holds the
target's table (character -> escape) and its form for other control characters, and derives
both `quote` and `unquote` from them: nothing is written twice, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Quoting:
    escapes: Mapping[str, str]  # character -> its escape sequence
    control: str  # format of any other control character, given its code point: "\\x{:02x}"
    control_pattern: str  # regex for that form, one group with the code point's digits
    control_base: int = 16
    mark: str = "'"
    _scan: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        inverse = sorted(self.escapes.values(), key=len, reverse=True)
        alt = "|".join(re.escape(e) for e in inverse)
        scan = rf"(?P<esc>{alt})|(?P<ctl>{self.control_pattern})|(?P<bad>\\.?)|(?P<text>[^\\]+)"
        object.__setattr__(self, "_scan", re.compile(scan, re.S))

    def quote(self, text: str) -> str:
        """`text` between marks, with the table's escapes and control characters escaped."""
        out = []
        for ch in text:
            if ch in self.escapes:
                out.append(self.escapes[ch])
            elif ord(ch) < 32 or ord(ch) == 127:
                out.append(self.control.format(ord(ch)))
            else:
                out.append(ch)
        return self.mark + "".join(out) + self.mark

    def unquote(self, token: str) -> str:
        """The text of a quoted token; ValueError on an escape this target never writes."""
        if len(token) < 2 or token[0] != self.mark or token[-1] != self.mark:
            raise ValueError(f"{token[:20]!r} is not a {self.mark}-quoted name")
        inverse = {v: k for k, v in self.escapes.items()}
        out = []
        for m in self._scan.finditer(token[1:-1]):
            if m.group("esc") is not None:
                out.append(inverse[m.group("esc")])
            elif m.group("ctl") is not None:
                code = int(next(g for g in m.groups()[2:] if g is not None), self.control_base)
                if code > 0x10FFFF:
                    raise ValueError(f"escape {m.group('ctl')!r} names no character")
                out.append(chr(code))
            elif m.group("bad") is not None:
                raise ValueError(f"unknown escape {m.group('bad')!r}")
            else:
                out.append(m.group("text"))
        return "".join(out)

"""The .mofn text form of a program: `to_mofn` and `parse_mofn` are exact inverses.

The grammar is `grammars/mofn.lark` (LALR), loaded from the package. Names are single-quoted
with backslash escapes, so a name from an ONNX file can be anything; floats are written with
`repr`, so they read back bit for bit.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from lark import Lark, Transformer, UnexpectedInput

from mofn2logic.errors import RuleSyntaxError
from mofn2logic.exporters.base import Printer
from mofn2logic.exporters.quoting import Quoting
from mofn2logic.ir.program import (
    AtomLiteral,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
)
from mofn2logic.ir.steps import MaxPool

VERSION = 1
NAMES = Quoting({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}, "\\x{:02x}", r"\\x([0-9a-fA-F]{2})")


def quote(name: str) -> str:
    return NAMES.quote(name)


def unquote(token: str) -> str:
    try:
        return NAMES.unquote(token)
    except ValueError as e:
        raise RuleSyntaxError(f"name {token[:40]}: {e}") from e


def _ints(values) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def _num(v: float) -> str:
    return repr(float(v))


def _source(s: str) -> str:
    return "input" if s == "" else quote(s)


class MofnPrinter(Printer):
    """The .mofn text: a header, the input tests, then each block with its rules, one per line."""

    target = ".mofn"
    options: dict[str, Any] = {}

    def _print_Program(self, p: Program) -> str:
        lines = [f"mofn2logic program {VERSION}", f"name {quote(p.name)}", f"decision {p.decision}",
                 self._print(p.input)]
        lines += [self._print(b) for b in p.blocks]
        for block, units in p.names:
            lines += [f"names {_source(block)}", *(f"  {u} {quote(n)}" for u, n in units)]
        return "\n".join(lines) + "\n"

    def _print_InputTests(self, inp: InputTests) -> str:
        head = f"input {quote(inp.tensor)} shape {_ints(inp.shape)} per {'channel' if inp.per_channel else 'unit'}"
        return "\n".join([head, *(f"  {i} >= {_num(t)}" for i, t in inp.tests)])

    def _print_RuleBlock(self, b: RuleBlock) -> str:
        head = f"{b.kind} {quote(b.name)} from {_source(b.source)} shape {_ints(b.shape)}"
        head += f" stride {_ints(b.stride)}" if b.kind == "conv" else ""
        return "\n".join([head, *(self._print(r) for r in b.rules)])

    def _print_MofNRule(self, r: MofNRule) -> str:
        thr = "" if r.threshold is None else f" >= {_num(r.threshold)}"
        return f"  {r.unit}{thr} :- {r.m} of [{', '.join(self._print(li) for li in r.lits)}]"

    def _print_AtomLiteral(self, li: AtomLiteral) -> str:
        text = ("" if li.positive else "~") + str(li.src)
        if li.offset is not None:
            text += f"@({li.offset[0]},{li.offset[1]})"
        return text

    def _print_PoolBlock(self, b: PoolBlock) -> str:
        k = b.pool
        return (f"pool {quote(b.name)} from {_source(b.source)} shape {_ints(b.shape)} kernel {_ints(k.kernel)} "
                f"stride {_ints(k.strides)} pad {_ints(k.pads)} dilation {_ints(k.dilations)}"
                + (" ceil" if k.ceil_mode else ""))

    def _print_DecisionListBlock(self, b: DecisionListBlock) -> str:
        head = f"list {quote(b.name)} from {_source(b.source)} shape {_ints(b.shape)}"
        return "\n".join([head, *(self._print(r) for r in b.rules), f"  default {b.default}"])

    def _print_IndexBlock(self, b: IndexBlock) -> str:
        return f"index {quote(b.name)} from {_source(b.source)} shape {_ints(b.shape)} map {_ints(b.index)}"


def to_mofn(program: Program, **options: Any) -> str:
    """The program as .mofn text; `parse_mofn` reads it back to an equal program."""
    return MofnPrinter(**options).doprint(program)


def write_mofn(program: Program, path: str | os.PathLike[str], **options: Any) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, to_mofn(program, **options))


class _ToIR(Transformer):
    """Parse tree -> program IR; one method per grammar rule."""

    def INT(self, t):
        return int(t)

    SIGNED_INT = INT

    def NUMBER(self, t):
        return float(t)

    def STRING(self, t):
        return unquote(str(t))

    def ints(self, items):
        return tuple(i for i in items if i is not None)

    def header(self, items):
        version, name, decision = items
        if version != VERSION:
            raise RuleSyntaxError(f"program format version {version}; this mofn2logic reads {VERSION}")
        return name, str(decision)

    def test(self, items):
        return (items[0], items[1])

    def input(self, items):
        tensor, shape, grain, *tests = items
        return InputTests(tensor, shape, str(grain) == "channel", tuple(tests))

    def named_source(self, items):
        return items[0]

    def input_source(self, _):
        return ""

    def offset(self, items):
        return (items[0], items[1])

    def lit(self, items):
        neg = len(items) > 0 and getattr(items[0], "type", None) == "NOT"
        rest = items[1:] if neg else items
        return AtomLiteral(rest[0], not neg, rest[1] if len(rest) > 1 else None)

    def head(self, items):
        return items[0] if items else None

    def rule(self, items):
        unit, threshold, m, *lits = items
        return MofNRule(unit, m, tuple(li for li in lits if li is not None), threshold)

    def dense(self, items):
        name, source, shape, *rules = items
        return RuleBlock(name, "dense", source, shape, tuple(rules))

    def conv(self, items):
        name, source, shape, stride, *rules = items
        return RuleBlock(name, "conv", source, shape, tuple(rules), stride)

    def pool(self, items):
        name, source, shape, kernel, stride, pads, dilation, ceil = items
        return PoolBlock(name, source, shape, MaxPool(kernel=kernel, strides=stride, pads=pads, dilations=dilation,
                                                      ceil_mode=ceil is not None))

    def index(self, items):
        name, source, shape, index = items
        return IndexBlock(name, source, shape, index)

    def dlist(self, items):
        name, source, shape, *rules, default = items
        return DecisionListBlock(name, source, shape, tuple(rules), default)

    def names(self, items):
        source, *units = items
        return ("names", source, tuple(units))

    def named(self, items):
        return (items[0], items[1])

    def start(self, items):
        (name, decision), inp, *rest = items
        blocks = tuple(b for b in rest if not isinstance(b, tuple))
        names = tuple((s, u) for _, s, u in (b for b in rest if isinstance(b, tuple)))
        return Program(name, inp, blocks, decision, names)


def _found(e: UnexpectedInput, text: str) -> str:
    token = getattr(e, "token", None)
    if token is not None and str(token):
        return repr(str(token)[:20])
    pos = getattr(e, "pos_in_stream", None)
    return repr(text[pos:pos + 1]) if pos is not None and pos < len(text) else "the end of the text"


@functools.cache
def _parser() -> Lark:
    return Lark.open_from_package("mofn2logic.grammars", "mofn.lark", parser="lalr", maybe_placeholders=True)


def parse_mofn(text: str, source: str = "<text>") -> Program:
    """A .mofn text as a checked program (`check_program`); errors carry line, column and a caret."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        context = e.get_context(text).rstrip("\n")
        raise RuleSyntaxError(f"{source}:{e.line}:{e.column}: syntax error at {_found(e, text)}\n{context}") from e
    try:
        program = _ToIR().transform(tree)
    except Exception as e:  # lark wraps errors raised in callbacks
        inner = getattr(e, "orig_exc", e)
        if isinstance(inner, RuleSyntaxError):
            raise RuleSyntaxError(f"{source}: {inner}") from e
        raise
    from mofn2logic.program.check import check_program

    check_program(program, source)
    return program


def read_mofn(path: str | os.PathLike[str]) -> Program:
    from mofn2logic.files import read_text

    return parse_mofn(read_text(path, "program"), source=str(path))

"""Read an exported Prolog program back into the IR (the facts between the exporter's markers),
with the Lark grammar `grammars/prolog_facts.lark`. Export then import gives the same program."""

from __future__ import annotations

import functools
import os

from lark import Lark, Transformer, UnexpectedInput

from mofn2logic.errors import RuleSyntaxError
from mofn2logic.exporters.prolog import ATOMS, BEGIN, END
from mofn2logic.ir.program import IndexBlock, InputTests, AtomLiteral, MofNRule, PoolBlock, Program, RuleBlock
from mofn2logic.ir.steps import MaxPool

def unquote_atom(token: str) -> str:
    try:
        return ATOMS.unquote(token)
    except ValueError as e:
        raise RuleSyntaxError(f"atom {token[:40]}: {e}") from e


class Compound(tuple):
    """(functor, args) of a Prolog compound term."""


class _Terms(Transformer):
    def quoted(self, items):
        return str(unquote_atom(str(items[0])))

    def plain(self, items):
        return str(items[0])

    def number(self, items):
        text = str(items[0])
        return float(text) if any(c in text for c in ".eE") else int(text)

    def list(self, items):
        return [i for i in items if i is not None]

    def compound(self, items):
        return Compound((items[0], tuple(items[1:])))

    def fact(self, items):
        return items[0]

    def start(self, items):
        return items


@functools.lru_cache(maxsize=None)
def _parser() -> Lark:
    return Lark.open_from_package("mofn2logic.grammars", "prolog_facts.lark", parser="lalr", maybe_placeholders=True)


def read_prolog_text(text: str, source: str = "<prolog>") -> Program:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        raise RuleSyntaxError(f"{source}: no mofn2logic program facts (the markers {BEGIN!r} ... {END!r} are missing)")
    body_start = start + len(BEGIN)
    body = text[body_start:end]
    try:
        facts = _Terms().transform(_parser().parse(body))
    except UnexpectedInput as e:
        line = text[:body_start].count("\n") + e.line
        raise RuleSyntaxError(f"{source}:{line}:{e.column}: not a fact mofn2logic writes") from e
    return _to_program(facts, source)


def _to_program(facts, source: str) -> Program:
    by: dict[str, list] = {}
    for f in facts:
        name, args = f if isinstance(f, Compound) else (f, ())
        by.setdefault(name, []).append(args)
    try:
        (name,), = by["program_name"]
        (decision,), = by["decision"]
        (tensor, shape, grain), = by["input_layer"]
        tests = tuple((int(i), float(t)) for i, t in by.get("input_test", []))
        names = {0: ""}
        for k, bname, *_ in by.get("block", []):
            names[k] = bname
        rules: dict[int, list[MofNRule]] = {}
        for k, unit, thr, m, lits in by.get("mofn", []):
            parsed = tuple(AtomLiteral(li[1][0], li[0] == "p", (li[1][1], li[1][2]) if len(li[1]) == 3 else None) for li in lits)
            rules.setdefault(k, []).append(MofNRule(unit, m, parsed, None if thr == "none" else float(thr)))
        maps = {k: tuple(m[1]) for k, m in by.get("index_map", [])}
        blocks = []
        for k, bname, kind, src, bshape, extra in sorted(by.get("block", []), key=lambda b: b[0]):
            if kind in ("dense", "conv"):
                stride = tuple(extra[1]) if kind == "conv" else (1, 1)
                blocks.append(RuleBlock(bname, kind, names[src], tuple(bshape), tuple(rules.get(k, [])), stride))
            elif kind == "pool":
                kernel, stride, pads, dil = extra[1]
                blocks.append(PoolBlock(bname, names[src], tuple(bshape), MaxPool(kernel=tuple(kernel), strides=tuple(stride), pads=tuple(pads), dilations=tuple(dil))))
            else:
                blocks.append(IndexBlock(bname, names[src], tuple(bshape), maps[k]))
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise RuleSyntaxError(f"{source}: the program facts are incomplete or malformed ({type(e).__name__}: {e})") from e
    program = Program(name, InputTests(tensor, tuple(shape), grain == "channel", tests), tuple(blocks), decision)
    from mofn2logic.program.check import check_program

    check_program(program, source)
    return program


def read_prolog(path: str | os.PathLike[str]) -> Program:
    from mofn2logic.files import read_text

    return read_prolog_text(read_text(path, "Prolog"), str(path))

"""SymPy export: one threshold expression per atom, usable with `lambdify` on numpy arrays.

Atoms are 0/1 integers. An input atom is ``Piecewise((1, x >= t), (0, True))`` over a symbol
for the cut tensor's value; a rule is ``Piecewise((1, sum of literals >= M), (0, True))`` where
a literal is a source atom's symbol ``a`` or ``1 - a``. A convolution's rule is one expression
per channel over symbols for its receptive field (first-order: the same at every position).
Pooling and index blocks are structure, not expressions, and stay in the program.

The expanded DNF (an Or of C(N, M) Ands) is offered only when it has at most `dnf_limit` terms:
it explodes past N of about 16.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from itertools import combinations

import sympy

from mofn2logic.exporters.base import Printer
from mofn2logic.ir.program import IndexBlock, InputTests, MofNRule, PoolBlock, Program, RuleBlock


def input_symbol(index: int) -> sympy.Symbol:
    """The cut tensor's value at `index` (flat, or the channel for a per-channel input)."""
    return sympy.Symbol(f"x_{index}", real=True)


def block_numbers(program: Program) -> dict[str, int]:
    """Blocks are numbered from 1 in program order (0 is the input): symbol names stay plain
    identifiers whatever the layers are called, and the names live in a table beside them."""
    numbers = {"": 0}
    numbers.update({b.name: k + 1 for k, b in enumerate(program.blocks)})
    return numbers


def _off(v: int) -> str:
    return f"m{-v}" if v < 0 else str(v)


def atom_symbol(source: int, index: int, offset: tuple[int, int] | None = None) -> sympy.Symbol:
    """Atom `index` of block number `source` (a conv literal: channel `index` at `offset`)."""
    where = f"_{_off(offset[0])}_{_off(offset[1])}" if offset is not None else ""
    return sympy.Symbol(f"a{source}_{index}{where}", integer=True, nonnegative=True)


def rule_expr(rule: MofNRule, source: int) -> sympy.Expr:
    terms = [atom_symbol(source, li.src, li.offset) if li.positive else 1 - atom_symbol(source, li.src, li.offset)
             for li in rule.lits]
    total = sympy.Add(*terms) if terms else sympy.Integer(0)
    return sympy.Piecewise((1, total >= rule.m), (0, True))


def rule_dnf(rule: MofNRule, source: int, limit: int) -> sympy.Expr | None:
    """The rule as a Boolean DNF over its literals, or None when it has more than `limit` terms."""
    if rule.m > rule.n:
        return sympy.false
    if rule.m == 0:
        return sympy.true
    if math.comb(rule.n, rule.m) > limit:
        return None
    lits = [sympy.Symbol(atom_symbol(source, li.src, li.offset).name) if li.positive
            else sympy.Not(sympy.Symbol(atom_symbol(source, li.src, li.offset).name)) for li in rule.lits]
    return sympy.Or(*[sympy.And(*c) for c in combinations(lits, rule.m)])


@dataclass(frozen=True)
class SympyProgram:
    """Expressions keyed by (block name, unit); input atoms keyed by ('', index)."""

    inputs: dict
    atoms: dict
    dnf: dict


class SympyPrinter(Printer):
    target = "SymPy"
    options = {"dnf_limit": 64}

    def build(self, p: Program) -> SympyProgram:
        inputs = {}
        inp = p.input
        for idx, t in inp.tests:
            inputs[("", idx)] = sympy.Piecewise((1, input_symbol(idx) >= sympy.Float(t, 17)), (0, True))
        atoms, dnf = {}, {}
        num = block_numbers(p)
        for b in p.blocks:
            if isinstance(b, RuleBlock):
                for r in b.rules:
                    atoms[(b.name, r.unit)] = rule_expr(r, num[b.source])
                    d = rule_dnf(r, num[b.source], self.settings["dnf_limit"])
                    if d is not None:
                        dnf[(b.name, r.unit)] = d
        return SympyProgram(inputs, atoms, dnf)

    def _print_Program(self, p: Program) -> str:
        sp = self.build(p)
        lines = [
            f"# SymPy expressions of the mofn2logic program {p.name!r} (generated).",
            "# exec() this file: `inputs`, `atoms` and `dnf` map (block, unit) to expressions;",
            "# input tests are keyed ('', index) (per channel when `per_channel`). Symbol a<K>_<i> is atom i of",
            "# block K in `blocks` (0: the input tests); a conv literal a<K>_<c>_<dy>_<dx> (m = minus).",
            "from sympy import *  # noqa: F401,F403",
            "from sympy.functions.elementary.piecewise import ExprCondPair  # noqa: F401  (srepr of Piecewise)",
            f"per_channel = {p.input.per_channel!r}",
            f"blocks = {{{', '.join(f'{v}: {k!r}' for k, v in block_numbers(p).items() if v)}}}",
            "inputs = {",
            *[f"    {k!r}: {sympy.srepr(v)}," for k, v in sp.inputs.items()],
            "}",
            "atoms = {",
            *[f"    {k!r}: {sympy.srepr(v)}," for k, v in sp.atoms.items()],
            "}",
            "dnf = {",
            *[f"    {k!r}: {sympy.srepr(v)}," for k, v in sp.dnf.items()],
            "}",
        ]
        return "\n".join(lines) + "\n"

    def _print_InputTests(self, node: InputTests) -> str:  # pragma: no cover - printed within Program
        return ""

    _print_PoolBlock = _print_IndexBlock = _print_InputTests  # structure, not expressions


def to_sympy_program(program: Program, **options) -> SympyProgram:
    return SympyPrinter(**options).build(program)


def to_sympy(program: Program, **options) -> str:
    return SympyPrinter(**options).doprint(program)


def write_sympy(program: Program, path: str | os.PathLike[str], **options) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, to_sympy(program, **options))


del PoolBlock, IndexBlock  # only named for the dispatch table above

"""SymPy export: one threshold expression per atom, usable with `lambdify` on numpy arrays.

Atoms are 0/1 integers. An input atom is ``Piecewise((1, x >= t), (0, True))`` over a symbol
for the cut tensor's value; a rule is ``Piecewise((1, count >= M), (0, True))`` where the count
sums the literals, a literal being a source atom's symbol ``a`` or ``1 - a``. A convolution's rule
is one expression per channel over symbols for its receptive field (first-order: the same at
every position). Pooling and index blocks are structure, not expressions, and stay in the program.

Rules of any length: a count of more than `CHUNK` literals is a sum of partial counts of at most
`CHUNK` literals each, every partial count an ``UnevaluatedExpr`` (so that SymPy keeps the sum
nested instead of flattening it) and, past `CHUNK` partial counts, the partial counts summed in
groups the same way. One flat sum of thousands of terms is slow to build and print, and the
Python code `lambdify` makes of it nests too deeply to compile; the nested form prints as
``(a + b + ...) + (c + (1 - d) + ...) + ...`` and compiles at any length. A rule of at most
`CHUNK` literals is one plain sum, as SymPy writes it.

The expanded DNF (an Or of C(N, M) Ands) is offered only when it has at most `dnf_limit` terms:
it explodes past N of about 16.

A decision list (the class block of a program with decision ``first``) is one integer-valued
``Piecewise((c1, count1 >= M1), (c2, count2 >= M2), ..., (default, True))``: SymPy's Piecewise is
itself first-true in order, so the list is written as it reads, one pair per rule (no DNF, no
products of negated conditions), and `lambdify` turns it into one ``select``. It is keyed by the
block's name in `decision_list`; the block's atoms are the one-hot of that class.

Symbols stay plain identifiers (``x_20``, ``a2_1``) whatever the atoms are called: a program with
names of atoms (`Program.names`) gets a table ``names`` beside the expressions, keyed like them,
``('', 20): 'worst radius'`` and ``('out', 1): 'malignant'``, written with Python's `repr`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import sympy

from mofn2logic.exporters.base import Printer
from mofn2logic.ir.program import DecisionListBlock, IndexBlock, InputTests, MofNRule, PoolBlock, Program, RuleBlock


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


CHUNK = 256  # literals per partial count: the most terms one SymPy sum of a rule holds


class LiteralTerms:
    """The terms of a source block's literals, each built once: SymPy's own cache holds too few
    symbols for a wide layer, and a long rule repeats the symbols of the rules before it."""

    def __init__(self, source: int) -> None:
        self.source = source
        self._symbols: dict[tuple[int, tuple[int, int] | None], sympy.Symbol] = {}
        self._negated: dict[tuple[int, tuple[int, int] | None], sympy.Expr] = {}

    def symbol(self, index: int, offset: tuple[int, int] | None = None) -> sympy.Symbol:
        key = (index, offset)
        if key not in self._symbols:
            self._symbols[key] = atom_symbol(self.source, index, offset)
        return self._symbols[key]

    def negated(self, index: int, offset: tuple[int, int] | None = None) -> sympy.Expr:
        """``1 - a`` kept whole: a term of a partial count that never prints with a leading minus
        (SymPy's string printer misplaces the sign of an unevaluated sum that starts with one)."""
        key = (index, offset)
        if key not in self._negated:
            self._negated[key] = sympy.UnevaluatedExpr(1 - self.symbol(index, offset))
        return self._negated[key]


def _sorted(lits: list[tuple[int, tuple[int, int] | None, bool]], terms: LiteralTerms,
            negated: Callable[[int, tuple[int, int] | None], sympy.Expr]) -> list[sympy.Expr]:
    """The literals' terms, positive ones first, by name: about SymPy's own order of the terms of
    a sum, so that its sort of them is nearly linear (only for speed: the sum is the same)."""
    keyed = sorted((not positive, terms.symbol(i, offset).name, i, offset) for i, offset, positive in lits)
    return [terms.symbol(i, offset) if not negative else negated(i, offset) for negative, _, i, offset in keyed]


def _partial(rule: MofNRule, terms: LiteralTerms) -> sympy.Expr:
    """The count of a rule of at most CHUNK literals, one canonical SymPy sum: the negated ones as
    ``1 - a`` (SymPy gathers the ones: the sum of the literal terms, built without them)."""
    negated = sum(1 for li in rule.lits if not li.positive)
    lits = [(li.src, li.offset, li.positive) for li in rule.lits]
    return sympy.Add(sympy.Integer(negated), *_sorted(lits, terms, lambda i, o: -terms.symbol(i, o)))


def _nested(rule: MofNRule, terms: LiteralTerms) -> sympy.Expr:
    """The count of a longer rule: partial counts of CHUNK consecutive literals, each kept whole
    (``UnevaluatedExpr``), summed CHUNK at a time."""
    lits = [(li.src, li.offset, li.positive) for li in rule.lits]
    parts: list[sympy.Expr] = [sympy.UnevaluatedExpr(sympy.Add(*_sorted(lits[i:i + CHUNK], terms, terms.negated)))
                               for i in range(0, len(lits), CHUNK)]
    while len(parts) > CHUNK:
        parts = [sympy.UnevaluatedExpr(sympy.Add(*parts[i:i + CHUNK])) for i in range(0, len(parts), CHUNK)]
    return sympy.Add(*parts)


def rule_count(rule: MofNRule, source: int, terms: LiteralTerms | None = None) -> sympy.Expr:
    """How many of the rule's literals hold: one sum, or nested partial counts for a rule of more
    than CHUNK literals (module docstring). `terms`: a cache of the source block's terms."""
    terms = terms or LiteralTerms(source)
    if not rule.lits:
        return sympy.Integer(0)
    return _partial(rule, terms) if rule.n <= CHUNK else _nested(rule, terms)


def _threshold(value: sympy.Expr, bound: sympy.Expr) -> sympy.Expr:
    """``Piecewise((1, value >= bound), (0, True))`` as SymPy evaluates it when `value` is a symbol
    or nested partial counts (nothing to decide or gather), built without asking SymPy: its
    assumptions queries cost most of the time on long rules and wide inputs."""
    return sympy.Piecewise((sympy.Integer(1), sympy.GreaterThan(value, bound, evaluate=False)),
                           (sympy.Integer(0), sympy.true), evaluate=False)


def input_expr(index: int, threshold: float) -> sympy.Expr:
    """The input test ``x >= t`` as a 0/1 atom."""
    return _threshold(input_symbol(index), sympy.Float(threshold, 17))


def rule_expr(rule: MofNRule, source: int, terms: LiteralTerms | None = None) -> sympy.Expr:
    count = rule_count(rule, source, terms)
    if is_nested(rule):
        return _threshold(count, sympy.Integer(rule.m))
    return sympy.Piecewise((1, count >= rule.m), (0, True))  # SymPy gathers the sum's constant into M


def rule_condition(rule: MofNRule, source: int, terms: LiteralTerms | None = None) -> sympy.Basic:
    """``count >= M`` unevaluated (a constant rule: true or false), as a Piecewise condition."""
    if rule.m == 0:
        return sympy.true
    if rule.m > rule.n:
        return sympy.false
    return sympy.GreaterThan(rule_count(rule, source, terms), sympy.Integer(rule.m), evaluate=False)


def list_expr(block: DecisionListBlock, source: int, terms: LiteralTerms | None = None) -> sympy.Expr:
    """The decided class of a decision list: ``Piecewise((class, condition), ..., (default, True))``,
    first true in order (module docstring)."""
    terms = terms or LiteralTerms(source)
    pairs = [(sympy.Integer(r.unit), rule_condition(r, source, terms)) for r in block.rules]
    return sympy.Piecewise(*pairs, (sympy.Integer(block.default), sympy.true), evaluate=False)


def is_nested(rule: MofNRule) -> bool:
    """Whether the rule's count is nested partial counts (more than CHUNK literals)."""
    return rule.n > CHUNK


def rule_dnf(rule: MofNRule, source: int, limit: int) -> sympy.Expr | None:
    """The rule as a Boolean DNF over its literals, or None when it has more than `limit` terms."""
    if rule.m > rule.n:
        return sympy.false
    if rule.m == 0:
        return sympy.true
    if (rule.n > limit and rule.m < rule.n) or math.comb(rule.n, rule.m) > limit:  # C(N, M) >= N for 0 < M < N
        return None
    lits = [sympy.Symbol(atom_symbol(source, li.src, li.offset).name) if li.positive
            else sympy.Not(sympy.Symbol(atom_symbol(source, li.src, li.offset).name)) for li in rule.lits]
    return sympy.Or(*[sympy.And(*c) for c in combinations(lits, rule.m)])


@dataclass(frozen=True)
class SympyProgram:
    """Expressions keyed by (block name, unit); input atoms keyed by ('', index); a decision list's
    class expression keyed by its block name."""

    inputs: dict
    atoms: dict
    dnf: dict
    decision_list: dict


def _srepr(expr: sympy.Expr, nested: bool) -> str:
    """`srepr`; for nested partial counts, the arguments of each sum in the order SymPy stores
    them (the order `exec` rebuilds), not re-sorted for display: sorting thousands of terms is
    most of the cost of printing a long rule."""
    return sympy.srepr(expr, order="none") if nested else sympy.srepr(expr)


def _list_srepr(expr: sympy.Piecewise, nested: bool) -> str:
    """A decision list's Piecewise, rebuilt unevaluated by `exec`: SymPy would otherwise merge and drop
    pairs (the same classes, but not the list as written) and take seconds on long lists."""
    return f"Piecewise({', '.join(_srepr(pair, nested) for pair in expr.args)}, evaluate=False)"


class SympyPrinter(Printer):
    target = "SymPy"
    options = {"dnf_limit": 64}

    def build(self, p: Program) -> SympyProgram:
        inputs = {}
        inp = p.input
        for idx, t in inp.tests:
            inputs[("", idx)] = input_expr(idx, t)
        atoms, dnf, lists = {}, {}, {}
        num = block_numbers(p)
        for b in p.blocks:
            if isinstance(b, DecisionListBlock):
                lists[b.name] = list_expr(b, num[b.source])
            elif isinstance(b, RuleBlock):
                terms = LiteralTerms(num[b.source])
                for r in b.rules:
                    atoms[(b.name, r.unit)] = rule_expr(r, terms.source, terms)
                    d = rule_dnf(r, terms.source, self.settings["dnf_limit"])
                    if d is not None:
                        dnf[(b.name, r.unit)] = d
        return SympyProgram(inputs, atoms, dnf, lists)

    def _print_Program(self, p: Program) -> str:
        sp = self.build(p)
        nested = {(b.name, r.unit): is_nested(r) for b in p.rule_blocks() for r in b.rules}
        lines = [
            f"# SymPy expressions of the mofn2logic program {p.name!r} (generated).",
            "# exec() this file: `inputs`, `atoms` and `dnf` map (block, unit) to expressions;",
            "# `decision_list` maps a decision list's block to its class (Piecewise: the first true condition wins);",
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
            *[f"    {k!r}: {_srepr(v, nested[k])}," for k, v in sp.atoms.items()],
            "}",
            "dnf = {",
            *[f"    {k!r}: {sympy.srepr(v)}," for k, v in sp.dnf.items()],
            "}",
            "decision_list = {",
            *[f"    {b.name!r}: {_list_srepr(sp.decision_list[b.name], any(is_nested(r) for r in b.rules))},"
              for b in p.blocks if isinstance(b, DecisionListBlock)],
            "}",
        ]
        if p.names:  # the user's names of atoms, keyed like `inputs` and `atoms` (a class: (last block, class))
            lines += ["names = {", *[f"    {(block, u)!r}: {n!r}," for block, units in p.names for u, n in units], "}"]
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

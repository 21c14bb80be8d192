"""Consistency of a program, checked before it reaches an engine or an exporter.

Types (a program read from a file can hold anything), finite thresholds, sizes within bounds,
sources defined before use, literals within their source, shapes that follow from their sources,
M within 0..N+1, and a dense class layer or a decision list last (the decision list only there,
with the decision ``first``; a class layer with ``margin``). The postcondition of compile and prune, and what
every reader runs on what it read. `check_program_for` adds what a program must share with the
network it is verified against.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from mofn2logic.errors import DataError, ProgramError
from mofn2logic.ir.program import (
    DECISIONS,
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

# Bounds that keep a hostile file from asking for huge allocations: atoms per block (the engines
# hold one bool per atom and sample), literals per program, offsets and pool geometry.
MAX_ATOMS = 1 << 26
MAX_LITERALS = 1 << 24
MAX_GEOMETRY = 1 << 12


def _int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _ints(v: Any, n: int | None = None, low: int | None = None, high: int | None = None) -> bool:
    return (isinstance(v, tuple) and (n is None or len(v) == n) and all(_int(x) for x in v)
            and (low is None or all(x >= low for x in v)) and (high is None or all(x <= high for x in v)))


def _finite(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _show(v: Any) -> str:
    """A value from a file as the user wrote it (a tuple as a list)."""
    return str(list(v)) if isinstance(v, tuple) else repr(v)


def _shape_size(shape: tuple[int, ...]) -> int:
    return math.prod(int(d) for d in shape)


class _Checker:
    def __init__(self, p: Program, where: str) -> None:
        self.p, self.where = p, where

    def fail(self, msg: str) -> None:
        raise ProgramError(f"{self.where}: {msg}")

    def shape(self, what: str, shape: Any, rank: int | None = None) -> tuple[int, ...]:
        if not _ints(shape, rank, low=1) or not shape:
            want = f"{rank} positive integers" if rank else "positive integers"
            self.fail(f"{what} has shape {shape!r}; expected {want}")
        if _shape_size(shape) > MAX_ATOMS:
            self.fail(f"{what} has shape {list(shape)}: {_shape_size(shape)} atoms, more than the {MAX_ATOMS} allowed")
        return shape

    def run(self) -> None:
        p = self.p
        if not isinstance(p, Program):
            raise ProgramError(f"{self.where}: expected a Program, got {type(p).__name__}")
        if not isinstance(p.name, str):
            self.fail(f"the program name is {p.name!r}; expected text")
        if p.decision not in DECISIONS:
            self.fail(f"decision {p.decision!r} is unknown; expected {' or '.join(DECISIONS)}")
        self.input(p.input)
        if not isinstance(p.blocks, tuple) or not p.blocks:
            self.fail("the program has no blocks; expected at least the class layer")
        shapes: dict[str, tuple[int, ...]] = {"": p.input.shape}
        literals = 0
        for b in p.blocks:
            if not isinstance(b, (RuleBlock, PoolBlock, IndexBlock, DecisionListBlock)):
                self.fail(f"a block is a {type(b).__name__}; expected a rule, pool, index or decision-list block")
            if not isinstance(b.name, str) or not b.name:
                self.fail(f"a block is named {b.name!r}; expected non-empty text")
            if b.name in shapes:
                self.fail(f"block {b.name!r} is defined twice")
            if not isinstance(b.source, str) or b.source not in shapes:
                self.fail(f"block {b.name!r} reads {b.source!r}, which is not defined before it")
            src = shapes[b.source]
            if isinstance(b, RuleBlock):
                literals += self.rule_block(b, src)
                if literals > MAX_LITERALS:
                    self.fail(f"the program has more than {MAX_LITERALS} literals")
            elif isinstance(b, DecisionListBlock):
                if b is not p.blocks[-1]:
                    self.fail(f"decision list {b.name!r} is not the last block; a decision list decides the class")
                literals += self.decision_list(b, src)
                if literals > MAX_LITERALS:
                    self.fail(f"the program has more than {MAX_LITERALS} literals")
            elif isinstance(b, PoolBlock):
                self.pool_block(b, src)
            else:
                self.index_block(b, src)
            shapes[b.name] = b.shape
        out = p.blocks[-1]
        if isinstance(out, DecisionListBlock):
            if p.decision != "first":
                self.fail(f"the program ends with decision list {out.name!r} but decides by {p.decision}; "
                          "expected decision first")
        elif not isinstance(out, RuleBlock) or out.kind != "dense":
            self.fail(f"the last block, {out.name!r}, must be a dense rule layer or a decision list (the classes)")
        elif p.decision != "margin":
            self.fail(f"the program ends with class layer {out.name!r} but decides by {p.decision}; "
                      "expected decision margin")
        self.names(p)

    def names(self, p: Program) -> None:
        """The names table: input tests and rule / decision-list blocks, each once, in program order; units
        ascending and within the block's atoms; every name text an exporter can write back."""
        from mofn2logic.ir.names import check_text

        if not isinstance(p.names, tuple):
            self.fail(f"the names table is a {type(p.names).__name__}; expected a tuple")
        sizes = {"": p.input.shape[0] if p.input.per_channel else _shape_size(p.input.shape)}
        sizes.update({b.name: b.shape[0] for b in p.blocks if isinstance(b, (RuleBlock, DecisionListBlock))})
        order = list(sizes)
        last = -1
        for entry in p.names:
            if not isinstance(entry, tuple) or len(entry) != 2 or entry[0] not in sizes:
                self.fail(f"the names table names atoms of {_show(entry)[:60]}; expected the input or a rule block")
            block, units = entry
            if order.index(block) <= last:
                self.fail(f"the names of {block!r} are out of order or given twice; expected program order")
            last = order.index(block)
            prev = -1
            if not isinstance(units, tuple) or not units:
                self.fail(f"the names of {block!r} are {_show(units)[:60]}; expected (unit, name) pairs")
            for item in units:
                if (not isinstance(item, tuple) or len(item) != 2 or not _int(item[0])
                        or not prev < item[0] < sizes[block]):
                    self.fail(f"the names of {block or 'the input'!r} hold {_show(item)[:60]}; expected (unit, name) "
                              f"with units ascending in 0..{sizes[block] - 1}")
                try:
                    check_text(item[1], f"the name of {block or 'input'} atom {item[0]}")
                except DataError as e:
                    self.fail(str(e))
                prev = item[0]

    def input(self, inp: Any) -> None:
        if not isinstance(inp, InputTests):
            self.fail(f"the input is a {type(inp).__name__}; expected input tests")
        if not isinstance(inp.tensor, str):
            self.fail(f"the input tensor is named {inp.tensor!r}; expected text")
        self.shape("the input", inp.shape)
        if not isinstance(inp.per_channel, bool):
            self.fail(f"the input's grain is {inp.per_channel!r}; expected per unit or per channel")
        limit = inp.shape[0] if inp.per_channel else _shape_size(inp.shape)
        if not isinstance(inp.tests, tuple):
            self.fail("the input tests are not a list")
        last = -1
        for t in inp.tests:
            if not (isinstance(t, tuple) and len(t) == 2 and _int(t[0]) and _finite(t[1])):
                self.fail(f"input test {t!r} is not an (index, finite threshold) pair")
            if not last < t[0] < limit:
                self.fail(f"input test of {'channel' if inp.per_channel else 'unit'} {t[0]} is out of order or "
                          f"outside the input's {limit} {'channels' if inp.per_channel else 'units'}")
            last = t[0]

    def rule_block(self, b: RuleBlock, src: tuple[int, ...]) -> int:
        if b.kind not in ("dense", "conv"):
            self.fail(f"block {b.name!r} is of kind {b.kind!r}; expected dense or conv")
        self.shape(f"block {b.name!r}", b.shape, 1 if b.kind == "dense" else 3)
        if b.kind == "conv":
            if len(src) != 3:
                self.fail(f"conv block {b.name!r} reads {b.source or 'the input'!r} of shape {list(src)}; "
                          "expected (channels, height, width)")
            if not _ints(b.stride, 2, low=1, high=MAX_GEOMETRY):
                self.fail(f"conv block {b.name!r} has stride {b.stride!r}; expected two positive integers")
        limit = src[0] if b.kind == "conv" else _shape_size(src)
        units = b.shape[0]
        if not isinstance(b.rules, tuple):
            self.fail(f"the rules of block {b.name!r} are not a list")
        last, count = -1, 0
        for r in b.rules:
            if not isinstance(r, MofNRule) or not _int(r.unit) or not _int(r.m) or not isinstance(r.lits, tuple):
                self.fail(f"block {b.name!r} holds {r!r}; expected M-of-N rules with integer unit and M")
            if not last < r.unit < units:
                self.fail(f"block {b.name!r} has a rule for unit {r.unit}, out of order or outside its {units} units")
            last = r.unit
            if r.threshold is not None and not _finite(r.threshold):
                self.fail(f"rule {r.unit} of {b.name!r} stands for threshold {r.threshold!r}; expected a finite number")
            if not 0 <= r.m <= r.n + 1:
                self.fail(f"rule {r.unit} of {b.name!r} asks {r.m} of {r.n} literals; expected 0 to {r.n + 1}")
            for li in r.lits:
                self.literal(b, r, li, limit)
            count += r.n
        return count

    def decision_list(self, b: DecisionListBlock, src: tuple[int, ...]) -> int:
        self.shape(f"decision list {b.name!r}", b.shape, 1)
        classes, limit = b.shape[0], _shape_size(src)
        if not _int(b.default) or not 0 <= b.default < classes:
            self.fail(f"decision list {b.name!r} has default class {b.default!r}; expected 0 to {classes - 1}")
        if not isinstance(b.rules, tuple):
            self.fail(f"the rules of decision list {b.name!r} are not a list")
        count = 0
        for k, r in enumerate(b.rules, 1):
            if not isinstance(r, MofNRule) or not _int(r.unit) or not _int(r.m) or not isinstance(r.lits, tuple):
                self.fail(f"decision list {b.name!r} holds {r!r}; expected M-of-N rules with integer class and M")
            if not 0 <= r.unit < classes:
                self.fail(f"rule {k} of decision list {b.name!r} names class {r.unit}; expected 0 to {classes - 1}")
            if r.threshold is not None:
                self.fail(f"rule {k} of decision list {b.name!r} stands for threshold {r.threshold!r}; "
                          "a class rule has none")
            if not 0 <= r.m <= r.n + 1:
                self.fail(f"rule {k} of decision list {b.name!r} asks {r.m} of {r.n} literals; expected 0 to {r.n + 1}")
            for li in r.lits:
                self.literal(b, r, li, limit)
            count += r.n
        return count

    def literal(self, b: RuleBlock | DecisionListBlock, r: MofNRule, li: Any, limit: int) -> None:
        if not isinstance(li, AtomLiteral) or not _int(li.src) or not isinstance(li.positive, bool):
            self.fail(f"rule {r.unit} of {b.name!r} holds {li!r}; expected literals over source atoms")
        if not 0 <= li.src < limit:
            self.fail(f"rule {r.unit} of {b.name!r} uses atom {li.src} of {b.source or 'input'!r}, which is not "
                      f"defined (it has {limit})")
        if b.kind == "conv":
            if not _ints(li.offset, 2, low=-MAX_GEOMETRY, high=MAX_GEOMETRY):
                self.fail(f"rule {r.unit} of {b.name!r}: conv literals need an offset (dy, dx) within "
                          f"+-{MAX_GEOMETRY}; got {li.offset!r}")
        elif li.offset is not None:
            self.fail(f"rule {r.unit} of {b.name!r}: dense literals take no offset")

    def pool_block(self, b: PoolBlock, src: tuple[int, ...]) -> None:
        self.shape(f"pool block {b.name!r}", b.shape, 3)
        k = b.pool
        if not isinstance(k, MaxPool) or not (_ints(k.kernel, 2, 1, MAX_GEOMETRY) and _ints(k.strides, 2, 1, MAX_GEOMETRY)
                                               and _ints(k.pads, 4, 0, MAX_GEOMETRY)
                                               and _ints(k.dilations, 2, 1, MAX_GEOMETRY)):
            what = (f"kernel {_show(k.kernel)}, strides {_show(k.strides)}, pads {_show(k.pads)}, dilations "
                    f"{_show(k.dilations)}" if isinstance(k, MaxPool) else type(k).__name__)
            self.fail(f"pool block {b.name!r} has {what}; expected a max pool with positive kernel, strides and "
                      f"dilations and non-negative pads, each at most {MAX_GEOMETRY}")
        if len(src) != 3:
            self.fail(f"pool block {b.name!r} reads a source of shape {list(src)}; expected (channels, height, width)")
        try:
            want = k.output_shape(src)
        except ProgramError as e:
            self.fail(f"pool block {b.name!r}: {e}")
        if b.shape != want:
            self.fail(f"pool block {b.name!r} has shape {list(b.shape)}; its kernel over {list(src)} gives {list(want)}")

    def index_block(self, b: IndexBlock, src: tuple[int, ...]) -> None:
        self.shape(f"index block {b.name!r}", b.shape)
        size = _shape_size(src)
        if not isinstance(b.index, tuple) or len(b.index) != _shape_size(b.shape):
            self.fail(f"index block {b.name!r} maps {len(b.index) if isinstance(b.index, tuple) else '?'} atoms; "
                      f"its shape {list(b.shape)} has {_shape_size(b.shape)}")
        if not all(_int(i) and 0 <= i < size for i in b.index):
            self.fail(f"index block {b.name!r} maps outside its source's {size} atoms")


def check_program(p: Program, where: str = "program") -> None:
    """Raise ProgramError (one line, naming what was expected and what arrived) unless `p` is sound."""
    _Checker(p, where).run()


def check_program_for(p: Program, tensors: dict[str, tuple[int, ...]], n_classes: int, where: str = "program") -> None:
    """`p` against a network: the tensor it reads exists with the same per-sample shape, and its
    class layer has as many classes as the network's output. `tensors` maps the network's tensor
    names to their per-sample shapes."""
    check_program(p, where)
    inp = p.input
    if inp.tensor not in tensors:
        raise ProgramError(f"{where} reads tensor {inp.tensor!r}, which this model does not compute "
                           f"(a program for another model?)")
    if tuple(tensors[inp.tensor]) != tuple(inp.shape):
        raise ProgramError(f"{where} reads {inp.tensor!r} as shape {list(inp.shape)}; the model computes "
                           f"{list(tensors[inp.tensor])}")
    if p.output.shape[0] != n_classes:
        raise ProgramError(f"{where} decides among {p.output.shape[0]} classes; the model has {n_classes}")

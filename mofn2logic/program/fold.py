"""Constant literals folded into M and N (docs/method.md, section 5).

A literal is constant when its atom has one value on every input the program can see:
- an input test ``x >= t`` whose threshold lies outside what the layer below can produce
  (``>= 0.0`` after a ReLU is always true, ``>= 1.5`` after a sigmoid always false);
- an atom whose own rule is constant (M = 0: always true; M > N: always false), through
  pool and index blocks.
A true literal is dropped with M lowered by one; a false one is dropped with M kept. Every
atom keeps its truth value; only the class margins (count - M) / max(N, 1) are now taken over
the literals that remain, which is what a reader of the program sees.
"""

from __future__ import annotations

import math

from mofn2logic.ir.program import (
    AtomLiteral,
    Block,
    IndexBlock,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
    pad_truth,
)

# What each activation can produce (closed: float rounding reaches the ends).
RANGES: dict[str, tuple[float, float]] = {
    "relu": (0.0, math.inf),
    "sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "log_softmax": (-math.inf, 0.0),
}


def activation_range(activation: str) -> tuple[float, float] | None:
    """The closed range of an activation's values, or None when it is unbounded both ways."""
    return RANGES.get(activation)


def _plane(shape: tuple[int, ...]) -> int:
    return math.prod(int(d) for d in shape[1:])


class _Constants:
    """Answers whether an atom of the partly folded program is constant (True/False) or not (None)."""

    def __init__(self, program: Program, ranges: dict[str, tuple[float, float] | None]) -> None:
        self.program = program
        self.ranges = ranges
        self.blocks: dict[str, Block] = {}
        self.tests = dict(program.input.tests)

    def _test(self, key: int) -> bool | None:
        t, r = self.tests.get(key), self.ranges.get("")
        if t is None or r is None:
            return None
        if t <= r[0]:
            return True
        return False if t > r[1] else None

    def atom(self, source: str, index: int, channel: bool) -> bool | None:
        """Atom `index` of `source` (a flat index, or a channel when `channel`)."""
        inp = self.program.input
        if source == "":
            if inp.per_channel:
                return self._test(index if channel else index // _plane(inp.shape))
            return None if channel else self._test(index)
        b = self.blocks[source]
        if isinstance(b, RuleBlock):
            unit = index if (channel or b.kind == "dense") else index // _plane(b.shape)
            rule = next((r for r in b.rules if r.unit == unit), None)
            if rule is None:
                return False  # a unit without a rule never fires
            if rule.m == 0:
                return True
            return False if rule.m > rule.n else None
        if isinstance(b, PoolBlock):  # an OR over windows that always hold an inside position
            return self.atom(b.source, index if channel else index // _plane(b.shape), True)
        if channel or not isinstance(b, IndexBlock):  # a decision list is last: never a source
            return None
        return self.atom(b.source, b.index[index], False)


def _fold_rule(rule: MofNRule, block: RuleBlock, consts: _Constants, is_output: bool) -> MofNRule:
    keep: list[AtomLiteral] = []
    m = rule.m
    for li in rule.lits:
        value = consts.atom(block.source, li.src, block.kind == "conv")
        if value is not None and block.kind == "conv" and value != pad_truth(consts.program, block.source, li.src):
            value = None  # the padding reads another value: not constant at the border
        if value is None:
            keep.append(li)
        elif value == li.positive:
            m -= 1
    m = min(max(m, 0), len(keep) + 1)
    if not is_output and (m == 0 or m > len(keep)):  # a constant hidden atom: say so plainly
        return MofNRule(rule.unit, 0 if m == 0 else 1, (), rule.threshold)
    return MofNRule(rule.unit, m, tuple(keep), rule.threshold)


def fold_constants(program: Program, ranges: dict[str, tuple[float, float] | None]) -> Program:
    """`program` with constant literals folded; `ranges` maps a rule block's name (and "" for the
    program's input) to the range of the activation its atoms threshold."""
    consts = _Constants(program, ranges)
    blocks: list[Block] = []
    for b in program.blocks:
        if isinstance(b, RuleBlock):
            is_output = b is program.output
            b = RuleBlock(b.name, b.kind, b.source, b.shape,
                          tuple(_fold_rule(r, b, consts, is_output) for r in b.rules), b.stride)
        consts.blocks[b.name] = b
        blocks.append(b)
    return Program(program.name, program.input, tuple(blocks), program.decision, program.names)

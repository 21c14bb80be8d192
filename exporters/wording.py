"""How atoms and thresholds are said in words: shared by the rule graph (DOT) and the rule cards."""

from __future__ import annotations

import math

import numpy as np

from mofn2logic.ir.program import AtomLiteral, DecisionListBlock, IndexBlock, PoolBlock, Program, RuleBlock


def shortest(value: float) -> str:
    """A threshold in the shortest form that reads back to the same number in the tensor's dtype:
    float32 when the value is a float32 (what networks compute), else float64."""
    f32 = np.float32(value)
    if math.isfinite(value) and float(f32) == value:
        return str(f32)
    return repr(float(value))


class AtomNames:
    """Words for the atoms of one program: input tests with their thresholds, hidden units, conv
    channels at offsets, followed through index and pool blocks to the atom they carry. An atom the
    user named (`Program.names`) is said by its name: ``worst radius >= 16.8``, ``malignant``."""

    def __init__(self, program: Program) -> None:
        self.p = program
        self.tests = dict(program.input.tests)

    def head(self, b: RuleBlock | DecisionListBlock, unit: int) -> str:
        """A rule's atom: its name, else ``class 3`` (the last block) or ``fc1 unit 21`` / ``c1 channel 2``."""
        name = self.p.atom_name(b.name, unit)
        if name is not None:
            return name
        if b is self.p.output:
            return f"class {unit}"
        return f"{b.name} {'channel' if isinstance(b, RuleBlock) and b.kind == 'conv' else 'unit'} {unit}"

    def literal(self, b: RuleBlock | DecisionListBlock, li: AtomLiteral) -> tuple[str, str]:
        """(short label, full text) of the atom that literal `li` of block `b` (a decision list's: a
        dense literal) reads."""
        p = self.p
        if isinstance(b, RuleBlock) and b.kind == "conv":
            dy, dx = li.offset or (0, 0)
            name, thr = self.channel(b.source, li.src)
            given = self.p.atom_name(self.origin(b.source), li.src)
            where = f"ch {li.src} at ({dy:+d}, {dx:+d})" if given is None else f"at ({dy:+d}, {dx:+d})"
            full = (f"{name} channel {li.src} at offset ({dy}, {dx})" if given is None
                    else f"{given} at offset ({dy}, {dx})") + (f" >= {shortest(thr)}" if thr is not None else "")
            return f"{given or name} {where}" + (f" >= {shortest(thr)}" if thr is not None else ""), full
        source, idx = b.source, li.src
        while source != "" and isinstance(p.block(source), IndexBlock):
            blk = p.block(source)
            idx, source = blk.index[idx], blk.source  # type: ignore[union-attr]
        shape = p.input.shape if source == "" else p.block(source).shape
        pos = np.unravel_index(idx, shape) if len(shape) > 1 else (idx,)
        at = "[" + ", ".join(str(int(v)) for v in pos) + "]"
        if source == "":
            key = int(pos[0]) if p.input.per_channel else idx
            thr = self.tests.get(key)
            given = p.atom_name("", key)
            word = (f"{p.input.tensor}{at}" if given is None else given if not p.input.per_channel
                    else f"{given}[" + ", ".join(str(int(v)) for v in pos[1:]) + "]")
            text = word + (f" >= {shortest(thr)}" if thr is not None else "")
            return text, text
        name, thr = self.channel(source, int(pos[0])) if len(shape) > 1 else (source, self.threshold(source, idx))
        given = p.atom_name(self.origin(source), int(pos[0]) if len(shape) > 1 else idx)
        pooled = " pooled" if isinstance(p.block(source), PoolBlock) else ""
        if given is None:
            word = f"{name}{pooled}{at}"
        elif len(shape) > 1:  # a named channel, at a position
            word = f"{given}{pooled}[" + ", ".join(str(int(v)) for v in pos[1:]) + "]"
        else:
            word = given
        text = word + (f" >= {shortest(thr)}" if thr is not None else "")
        return text, text + (" (max pooling of its window)" if pooled else "")

    def origin(self, source: str) -> str:
        """The rule block (or "" for the input) whose atoms `source` carries through pools."""
        while source != "" and isinstance(self.p.block(source), PoolBlock):
            source = self.p.block(source).source
        return source

    def channel(self, source: str, channel: int) -> tuple[str, float | None]:
        """The rule layer (or input) behind `source`'s channel, through pools, and its threshold."""
        while source != "" and isinstance(self.p.block(source), PoolBlock):
            source = self.p.block(source).source
        if source == "":
            return self.p.input.tensor, self.tests.get(channel) if self.p.input.per_channel else None
        return source, self.threshold(source, channel)

    def threshold(self, source: str, unit: int) -> float | None:
        b = self.p.block(source)
        if isinstance(b, RuleBlock):
            return next((r.threshold for r in b.rules if r.unit == unit), None)
        return None

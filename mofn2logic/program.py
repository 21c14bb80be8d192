"""The logic-program IR: plain frozen data, printed by the exporters and run by the engines.

A program is layered. Its input is a set of threshold tests on the cut layer's input tensor
(computed by the network): per unit for a dense cut, per channel for a convolution. Each block
then defines atoms from the atoms of its source block:

  RuleLayer  dense: atom u holds iff at least M of its literals hold; a literal is a source atom
             (by flat index), positive or negated.
             conv: one first-order rule per output channel, shared by every position (oy, ox);
             a literal (c, dy, dx) is the source atom of channel c at (oy*sy + dy, ox*sx + dx);
             outside the source it reads the padding: the truth of "0 >= threshold" of channel c.
  PoolLayer  max pooling of atoms: an OR over each window (exact for thresholded units).
  IndexLayer flatten / reshape / transpose: output atom k is source atom index[k].

The last block's atoms are the classes. Decision (``margin``): the class with the highest
margin (count - M) / max(N, 1), ties to the lowest class index -- the same in every engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

DECISIONS = ("margin",)


@dataclass(frozen=True, slots=True)
class Lit:
    src: int  # dense: source flat index; conv: source channel
    positive: bool = True
    offset: tuple[int, int] | None = None  # conv only: (dy, dx)


@dataclass(frozen=True, slots=True)
class MofN:
    unit: int  # dense unit or conv channel
    m: int
    lits: tuple[Lit, ...]
    threshold: float | None = None  # the head split (None for classes)

    @property
    def n(self) -> int:
        return len(self.lits)


@dataclass(frozen=True, slots=True)
class InputLayer:
    tensor: str
    shape: tuple[int, ...]  # per sample
    per_channel: bool  # conv cut: one threshold per channel; dense cut: per unit (flat index)
    tests: tuple[tuple[int, float], ...]  # (index or channel, threshold), ascending


@dataclass(frozen=True, slots=True)
class RuleLayer:
    name: str
    kind: str  # "dense" | "conv"
    source: str  # a block name, or "" for the program's input
    shape: tuple[int, ...]  # per sample: (units,) or (channels, height, width)
    rules: tuple[MofN, ...]  # ascending by unit; units without a rule are false
    stride: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class PoolLayer:
    name: str
    source: str
    shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class IndexLayer:
    name: str
    source: str
    shape: tuple[int, ...]
    index: tuple[int, ...]  # flat output index -> flat source index


Block = Union[RuleLayer, PoolLayer, IndexLayer]


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    input: InputLayer
    blocks: tuple[Block, ...]
    decision: str = "margin"

    @property
    def output(self) -> RuleLayer:
        return self.blocks[-1]  # type: ignore[return-value]

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        from mofn2logic.errors import ProgramError

        raise ProgramError(f"the program has no block {name!r}")

    def rule_layers(self) -> tuple[RuleLayer, ...]:
        return tuple(b for b in self.blocks if isinstance(b, RuleLayer))


def channel_threshold(program: Program, source: str, channel: int) -> float | None:
    """Threshold behind the atoms of `source`'s channel (for padding): input test, head split,
    or the head split of the layer a pool reads."""
    if source == "":
        return dict(program.input.tests).get(channel) if program.input.per_channel else None
    b = program.block(source)
    if isinstance(b, PoolLayer):
        return channel_threshold(program, b.source, channel)
    if isinstance(b, RuleLayer):
        for r in b.rules:
            if r.unit == channel:
                return r.threshold
    return None


def pad_truth(program: Program, source: str, channel: int) -> bool:
    """Truth of a padded position: the network pads with 0, so the atom is 0 >= threshold."""
    t = channel_threshold(program, source, channel)
    return t is not None and 0.0 >= t


def source_shape(program: Program, source: str) -> tuple[int, ...]:
    return program.input.shape if source == "" else program.block(source).shape

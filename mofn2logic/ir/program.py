"""The logic-program IR: plain frozen data, printed by the exporters and run by the engines
(docs/method.md, section 5).

A program is layered. Its input is a set of threshold tests on the cut layer's input tensor
(computed by the network): per unit for a dense cut, per channel for a convolution. Each block
then defines atoms from the atoms of its source block:

  RuleBlock   dense: atom u holds iff at least M of its literals hold; a literal is a source atom
              (by flat index), positive or negated.
              conv: one first-order rule per output channel, shared by every position (oy, ox);
              a literal (c, dy, dx) is the source atom of channel c at (oy*sy + dy, ox*sx + dx);
              outside the source it reads the padding: the truth of "0 >= threshold" of channel c.
  PoolBlock   max pooling of atoms (`mofn2logic.ir.steps.MaxPool`): an OR over each window,
              exact for thresholded units.
  IndexBlock  flatten / reshape / transpose: output atom k is source atom index[k].
  DecisionListBlock  the classes as an ordered decision list of dense M-of-N rules over the
              source atoms (only as the last block): the first rule that fires names the class
              (its `unit`), else the `default` class.

The last block's atoms are the classes. Decision (``margin``, a RuleBlock last): the class with
the highest margin (count - M) / max(N, 1), ties to the lowest class index -- the same in every
engine. Decision (``first``, a DecisionListBlock last): the class of the first rule that fires,
else the default; the block's atoms are the one-hot of that class, and its margins (what the
engines report) are that one-hot as 1.0 / 0.0, so the argmax is the decided class.

Names (`Program.names`, optional): the user's names of atoms, per block ("" for the input tests:
a flat index, or a channel for a per-channel input) and unit (a class for the last block), e.g.
``(("", ((20, "worst radius"),)), ("out", ((0, "benign"), (1, "malignant"))))``. Only input tests
and rule / decision-list blocks are named (index and pool blocks carry their source's atoms). The
exporters print them beside the numbered atoms and read them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from mofn2logic.ir.steps import MaxPool

DECISIONS = ("margin", "first")


@dataclass(frozen=True, slots=True)
class AtomLiteral:
    """A reference to a source atom, positive or negated."""

    src: int  # dense: source flat index; conv: source channel
    positive: bool = True
    offset: tuple[int, int] | None = None  # conv only: (dy, dx)


@dataclass(frozen=True, slots=True)
class MofNRule:
    """Atom `unit` holds iff at least `m` of `lits` hold."""

    unit: int  # dense unit or conv channel
    m: int
    lits: tuple[AtomLiteral, ...]
    threshold: float | None = None  # the head split the atom stands for (None for classes)

    @property
    def n(self) -> int:
        return len(self.lits)


@dataclass(frozen=True, slots=True)
class InputTests:
    tensor: str
    shape: tuple[int, ...]  # per sample
    per_channel: bool  # conv cut: one threshold per channel; dense cut: per unit (flat index)
    tests: tuple[tuple[int, float], ...]  # (index or channel, threshold), ascending


@dataclass(frozen=True, slots=True)
class RuleBlock:
    name: str
    kind: str  # "dense" | "conv"
    source: str  # a block name, or "" for the program's input
    shape: tuple[int, ...]  # per sample: (units,) or (channels, height, width)
    rules: tuple[MofNRule, ...]  # ascending by unit; units without a rule are false
    stride: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class PoolBlock:
    name: str
    source: str
    shape: tuple[int, int, int]
    pool: MaxPool


@dataclass(frozen=True, slots=True)
class IndexBlock:
    name: str
    source: str
    shape: tuple[int, ...]
    index: tuple[int, ...]  # flat output index -> flat source index


@dataclass(frozen=True, slots=True)
class DecisionListBlock:
    """Ordered rules over the flat atoms of `source`: rule k is an M-of-N rule (dense literals) whose
    `unit` is the class it names; the first that fires decides, else `default`."""

    name: str
    source: str
    shape: tuple[int]  # (classes,)
    rules: tuple[MofNRule, ...]  # in order; unit = the class named, threshold None
    default: int

    kind = "list"  # class-level: what the block is called in the text forms


Block = RuleBlock | PoolBlock | IndexBlock | DecisionListBlock
OutputBlock = RuleBlock | DecisionListBlock
AtomNamesTable = tuple[tuple[str, tuple[tuple[int, str], ...]], ...]  # ((block or "", ((unit, name), ...)), ...)


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    input: InputTests
    blocks: tuple[Block, ...]
    decision: str = "margin"  # "first" when the last block is a DecisionListBlock
    names: AtomNamesTable = ()  # the user's names of atoms (module docstring); () when none

    @property
    def output(self) -> OutputBlock:
        return self.blocks[-1]  # type: ignore[return-value]

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        from mofn2logic.errors import ProgramError

        raise ProgramError(f"the program has no block {name!r}")

    def atom_name(self, block: str, unit: int) -> str | None:
        """The user's name of atom `unit` of `block` ("" for the input tests), or None."""
        for name, units in self.names:
            if name == block:
                return next((n for u, n in units if u == unit), None)
        return None

    def rule_blocks(self) -> tuple[RuleBlock, ...]:
        return tuple(b for b in self.blocks if isinstance(b, RuleBlock))

    def atom_blocks(self) -> tuple[OutputBlock, ...]:
        """The blocks whose atoms the engines report: every rule block, and a decision list."""
        return tuple(b for b in self.blocks if isinstance(b, (RuleBlock, DecisionListBlock)))


def channel_threshold(program: Program, source: str, channel: int) -> float | None:
    """Threshold behind the atoms of `source`'s channel (for padding): input test, head split,
    or the head split of the layer a pool reads."""
    if source == "":
        return dict(program.input.tests).get(channel) if program.input.per_channel else None
    b = program.block(source)
    if isinstance(b, PoolBlock):
        return channel_threshold(program, b.source, channel)
    if isinstance(b, RuleBlock):
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


def literal_count(program: Program) -> int:
    """Literals over every rule of the program, a decision list's included (its size)."""
    return sum(r.n for b in program.atom_blocks() for r in b.rules)

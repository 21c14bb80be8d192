"""The rule-set IR: what the search found, per layer, unit and beta (plain frozen data).

A layer's units are in unit order. A unit's ``threshold`` is its head split (None for the
output layer, whose targets are the one-hot argmax). A dense literal's ``input`` is the
input unit (flat index); a convolution's is the input channel, with ``offset`` (dy, dx): the
input position is (oy * stride_y + dy, ox * stride_x + dx) for output position (oy, ox).
``method`` says which search found the rule (weight, std, gain or small). ``front`` is the
unit's Pareto front of (complexity, error). ``steps`` are the non-parametric steps between the
previous layer's output and this layer's input; shapes are per sample, as harvested.
The file form is ``rules.json`` (`mofn2logic.search.rules_file`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mofn2logic.errors import ProgramError
from mofn2logic.ir.names import Names
from mofn2logic.ir.network import ConvAttrs
from mofn2logic.ir.steps import Step


@dataclass(frozen=True, slots=True)
class ThresholdLiteral:
    """A test on an input unit: ``input >= threshold`` (positive) or ``input < threshold``."""

    input: int
    threshold: float
    positive: bool
    offset: tuple[int, int] | None = None

    def __reduce__(self):
        # rebuilt by the constructor: a slots dataclass's default state calls fields() per object, which
        # doubled the cost of moving a layer's rules (tens of thousands of literals) between processes
        return (ThresholdLiteral, (self.input, self.threshold, self.positive, self.offset))


@dataclass(frozen=True, slots=True)
class ScoredRule:
    """The best M-of-N rule of a unit for one beta, with its training error and complexity."""

    beta: float
    n: int
    m: int
    error: float
    complexity: float
    literals: tuple[ThresholdLiteral, ...]
    method: str = "weight"


@dataclass(frozen=True, slots=True)
class FrontPoint:
    n: int
    m: int
    error: float
    complexity: float


@dataclass(frozen=True, slots=True)
class UnitRules:
    unit: int
    threshold: float | None
    rules: tuple[ScoredRule, ...]
    front: tuple[FrontPoint, ...]

    def rule(self, beta: float) -> ScoredRule:
        for r in self.rules:
            if r.beta == beta:
                return r
        raise ProgramError(f"unit {self.unit} has no rule for beta {beta}; it has {[r.beta for r in self.rules]}")


@dataclass(frozen=True, slots=True)
class LayerRules:
    name: str
    kind: str  # "dense" | "conv"
    mode: str  # "chain" | "paper"
    order: str
    activation: str
    fan_in: int
    input_tensor: str
    output_tensor: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    n_examples: int
    units: tuple[UnitRules, ...]
    conv: ConvAttrs | None = None
    conv_position: str = "all"  # "all": one rule shared by every position; "best": the reference's single position
    steps: tuple[Step, ...] = ()  # between the previous layer's output and this layer's input
    # chain mode: True when the inputs' thresholds are the head splits of the layer below, carried
    # through the steps (the layers compose); False where new splits were made instead.
    chained: bool = False
    # what the rules were fitted on: "network" (the network's activations of the layer below, thresholded)
    # or "program" (the atoms that the program compiled from the rules below computes; chain mode)
    fit_on: str = "network"


@dataclass(frozen=True, slots=True)
class RuleSet:
    betas: tuple[float, ...]
    layers: tuple[LayerRules, ...]
    provenance: str = "{}"  # canonical JSON text: keeps the IR hashable and frozen
    names: Names | None = None  # the user's names of inputs, hidden units and classes (mofn2logic.ir.names)

    def layer(self, name: str) -> LayerRules:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ProgramError(f"the rule set has no layer {name!r}; it has {[la.name for la in self.layers]}")

"""The intermediate representations: plain frozen data, no I/O, no printing.

Glossary (docs/method.md has the definitions):

- **network** (`Network`, `Layer`, `ConvAttrs`): the imported classifier; a layer is an
  affine map and an element-wise activation; `steps` sit between layers.
- **step** (`Flatten`, `Reshape`, `Transpose`, `MaxPool`, `AvgPool`, `GlobalAvgPool`,
  `Identity`): a non-parametric operation that answers its output shape and moves values.
- **rule set** (`RuleSet`, `LayerRules`, `UnitRules`, `ScoredRule`, `ThresholdLiteral`,
  `FrontPoint`): what the search found, per layer, unit and beta; a literal is a threshold
  test on an input unit.
- **program** (`Program`, `InputTests`, `RuleBlock`, `PoolBlock`, `IndexBlock`,
  `DecisionListBlock`, `MofNRule`, `AtomLiteral`): the layered logic program compiled from a
  chain-mode rule set; a literal is a reference to a source atom.
"""

from mofn2logic.ir.network import Activation, ConvAttrs, Kind, Layer, Network, Shape
from mofn2logic.ir.program import (
    AtomLiteral,
    Block,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
    channel_threshold,
    literal_count,
    pad_truth,
    source_shape,
)
from mofn2logic.ir.rules import FrontPoint, LayerRules, RuleSet, ScoredRule, ThresholdLiteral, UnitRules
from mofn2logic.ir.steps import (
    INDEX_STEPS,
    STEP_TYPES,
    AvgPool,
    Flatten,
    GlobalAvgPool,
    Identity,
    MaxPool,
    Reshape,
    Step,
    Transpose,
    index_map,
    step_fields,
)

__all__ = [
    # network
    "Network", "Layer", "ConvAttrs", "Kind", "Activation", "Shape",
    # steps
    "Step", "Identity", "Flatten", "Reshape", "Transpose", "MaxPool", "AvgPool", "GlobalAvgPool",
    "STEP_TYPES", "INDEX_STEPS", "index_map", "step_fields",
    # rule set
    "RuleSet", "LayerRules", "UnitRules", "ScoredRule", "ThresholdLiteral", "FrontPoint",
    # program
    "Program", "InputTests", "RuleBlock", "PoolBlock", "IndexBlock", "DecisionListBlock", "Block", "MofNRule", "AtomLiteral",
    "channel_threshold", "pad_truth", "source_shape", "literal_count",
]

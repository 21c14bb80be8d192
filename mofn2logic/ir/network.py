"""The network IR: what mofn2logic knows about an imported classifier.

Plain frozen data, no ONNX objects. A network is a linear sequence of parametric
`Layer`s (an affine map followed by an element-wise activation) and non-parametric
`Step`s between them (`mofn2logic.ir.steps`: pooling, flatten, reshape, transpose, no-ops).

Weight orientation (the one documented convention):
  dense: ``weight.shape == (units, fan_in)``; pre-activation = x @ weight.T + bias
  conv:  ``weight.shape == (C_out, C_in // groups, kh, kw)`` (ONNX/PyTorch NCHW order)
Shapes are per sample (no batch dimension); ``None`` marks a dimension the file leaves open.

The explained part may start inside the graph (`Head`): then `Network.input` is the tensor
that feeds the first explained layer (the programs' input), while the data feed the graph's
own input and onnxruntime runs everything before the cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mofn2logic.ir.steps import Step

Kind = Literal["dense", "conv"]
Activation = Literal["relu", "leaky_relu", "tanh", "sigmoid", "softmax", "log_softmax", "identity"]
Shape = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class ConvAttrs:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right (ONNX order: begins then ends)
    dilations: tuple[int, int]
    groups: int


@dataclass(frozen=True, slots=True, eq=False)
class Layer:
    name: str
    kind: Kind
    weight: np.ndarray
    bias: np.ndarray
    activation: Activation
    input: str  # tensor entering the affine map
    preact: str  # tensor after the affine map (bias and folded batch norm included)
    output: str  # tensor after the activation (== preact for "identity")
    input_shape: Shape
    output_shape: Shape
    conv: ConvAttrs | None = None
    activation_alpha: float | None = None  # LeakyRelu slope
    nodes: tuple[str, ...] = ()  # ONNX nodes folded into this layer, for messages

    @property
    def units(self) -> int:
        """Dense: output neurons. Conv: output channels (one rule each, shared by positions)."""
        return int(self.weight.shape[0])

    @property
    def input_channels(self) -> int:
        """Conv: C_in of the input tensor (weight's C_in/groups times groups)."""
        return int(self.weight.shape[1]) * (self.conv.groups if self.conv else 1)

    @property
    def fan_in(self) -> int:
        """Inputs of one unit: dense columns, or C_in/groups * kh * kw for a convolution."""
        return int(np.prod(self.weight.shape[1:]))


@dataclass(frozen=True, slots=True, eq=False)
class Head:
    """The part of the graph before the explained layers: whatever onnxruntime runs (branches,
    residual adds, concatenations, custom ops). Only its input and a description are kept."""

    input: str  # the graph input the data feed
    input_shape: Shape
    dtype: np.dtype  # of the data
    nodes: int  # ONNX nodes before the cut
    reason: str  # why the explained part starts where it does (for messages and `inspect`)


@dataclass(frozen=True, slots=True, eq=False)
class Network:
    input: str
    input_shape: Shape
    dtype: np.dtype
    output: str
    sequence: tuple[Layer | Step, ...]
    source: str = ""
    opset: int = 0
    producer: str = ""
    head: Head | None = None  # None: the explained part starts at the graph input
    layers: tuple[Layer, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(s for s in self.sequence if isinstance(s, Layer)))

    @property
    def data_input(self) -> str:
        """The graph input the data feed (== `input` without a head)."""
        return self.head.input if self.head else self.input

    @property
    def data_shape(self) -> Shape:
        return self.head.input_shape if self.head else self.input_shape

    @property
    def data_dtype(self) -> np.dtype:
        return self.head.dtype if self.head else self.dtype

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        from mofn2logic.errors import SearchError

        known = ", ".join(repr(layer.name) for layer in self.layers)
        raise SearchError(f"no layer named {name!r}; the model has {known}")

    def boundary_tensors(self) -> tuple[str, ...]:
        """Every layer's input, pre-activation and output tensor, in network order, unique."""
        names: list[str] = []
        for layer in self.layers:
            for t in (layer.input, layer.preact, layer.output):
                if t not in names:
                    names.append(t)
        return tuple(names)

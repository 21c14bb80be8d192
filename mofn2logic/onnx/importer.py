"""Read an ONNX classifier into the network IR (`mofn2logic.ir.network`).

The graph must be a chain from one input to one output: affine maps (Gemm, MatMul [+ Add],
Conv [+ Add]) with optional BatchNormalization folded in, element-wise activations, and
non-parametric steps between them. Constants the layers read (weights, biases, reshape
targets, BatchNormalization parameters) may come from constant subgraphs; only those are
evaluated, within bounds (`mofn2logic.onnx.constants`). Anything else is refused with an error
that names the node, its op type and what is supported.

What arrives is checked, not trusted: the output must be one class vector per sample
(batch, classes >= 2) whose batch dimension follows the input's; every per-sample shape the
layers compute must match what the file declares; weights must be finite numbers.

Names. A node or tensor name is whatever the file says, and the exporters quote it (.mofn,
Prolog, DOT, SymPy): quotes, backslashes, spaces, `$x^2$`, unicode, tabs, newlines and
names of any length are read and round-trip. Refused at import, naming the node: names
that are not valid UTF-8, and names holding a control character other than tab and newline
(U+0000-U+0008, U+000B-U+001F, U+007F-U+009F), a lone surrogate or U+FFFE/U+FFFF. Why: NUL
ends a C string (graphviz stops reading the DOT file there); the other C0 controls and the
noncharacters are not allowed in XML, so the SVG rule graph and the report that embeds it
would not parse; C0/C1 controls (ESC, CSI) would reach the terminal through `inspect`; a
carriage return rewrites a terminal line and XML reads it back as a newline.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, shape_inference

from mofn2logic.errors import Mofn2LogicError, UnsupportedModelError
from mofn2logic.ir.network import Activation, ConvAttrs, Head, Kind, Layer, Network, Shape
from mofn2logic.ir.steps import (
    AvgPool,
    Flatten,
    GlobalAvgPool,
    Identity,
    MaxPool,
    Reshape,
    Step,
    Transpose,
)
from mofn2logic.onnx.constants import ConstantGraph, subgraph_inputs
from mofn2logic.onnx.load import check_no_external_data, default_opset, load_onnx, one_line, quiet

ACTIVATIONS: dict[str, Activation] = {
    "Relu": "relu", "LeakyRelu": "leaky_relu", "Tanh": "tanh", "Sigmoid": "sigmoid",
    "Softmax": "softmax", "LogSoftmax": "log_softmax",
}
STEPS = {
    "Flatten": "flatten", "Reshape": "reshape", "MaxPool": "maxpool", "AveragePool": "avgpool",
    "GlobalAveragePool": "globalavgpool", "Transpose": "transpose", "Dropout": "identity",
    "Identity": "identity", "Cast": "identity",
}
AFFINE = ("Gemm", "MatMul", "Conv")
SUPPORTED = ", ".join(sorted({*AFFINE, "Add", "BatchNormalization", *ACTIVATIONS, *STEPS}))
FLOAT_TYPES: dict[int, np.dtype[Any]] = {onnx.TensorProto.FLOAT: np.dtype(np.float32),
                                         onnx.TensorProto.DOUBLE: np.dtype(np.float64)}
# What the data may be when the explained part starts inside the graph (the head reads it).
DATA_TYPES: dict[int, np.dtype[Any]] = {**FLOAT_TYPES, onnx.TensorProto.FLOAT16: np.dtype(np.float16),
                                        onnx.TensorProto.INT32: np.dtype(np.int32),
                                        onnx.TensorProto.INT64: np.dtype(np.int64)}
CHAINS_ONLY = ": mofn2logic reads chains of layers only, not branching graphs"
MAX_SAMPLE = 1 << 31  # values in one sample of any tensor the layers read or write
MAX_ATTR = 1 << 31  # kernel sizes, strides, pads, dilations, groups
# Characters a name may not hold (see the module docstring for why).
REFUSED_NAME_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

__all__ = ["import_network", "layer_table", "load_onnx"]


def import_network(model: str | os.PathLike[str] | onnx.ModelProto, *, source: str | None = None,
                   start: str | None = None, output: str | None = None) -> Network:
    """Read an ONNX model into a `Network`: a file path (loaded with `load_onnx`) or a model
    already loaded, so a caller that needs the proto too (to run it) loads the file once.

    A two-class output ``Concat(1 - sigmoid(z), sigmoid(z))`` (skl2onnx) is rewritten in `model`
    as a two-unit softmax layer (`mofn2logic.onnx.binary`): the proto given is changed in place.
    `start` names the first explained layer (`--from`); by default the explained part starts at
    the graph input when the whole graph is a chain, else at the first layer after the last
    branch or unsupported node (a UserWarning says so). `output` names the classifier's output
    tensor (`--graph-output`) when the graph has several (`_choose_output` says the default).

    >>> net = import_network(load_onnx("model.onnx"), source="model.onnx")   # doctest: +SKIP
    """
    if not isinstance(model, onnx.ModelProto):
        source = source or str(model)
        model = load_onnx(model)
    else:
        check_no_external_data(model)
    importer = None
    with quiet():
        try:
            binary = _two_class(model, output)
            importer = _Importer(model, source=source or "<model>", output=output)
            if binary:
                importer.notes.insert(0, binary)
            net = importer.run(start)
        except Mofn2LogicError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as e:
            # A construct no check foresaw: still one line, naming the node being read.
            at = importer.at if importer is not None else "(the graph's inputs and outputs)"
            raise UnsupportedModelError(f"cannot read node {at}: {type(e).__name__}: {one_line(e)}") from e
    for note in importer.notes:  # after quiet(), which silences every warning
        warnings.warn(note, UserWarning, stacklevel=2)
    return net


def _two_class(model: onnx.ModelProto, output: str | None) -> str | None:
    """Rewrite a two-class sigmoid output (skl2onnx) as a two-unit softmax layer, in the proto
    that onnxruntime runs (`mofn2logic.onnx.binary`); the note for the user, or None."""
    from mofn2logic.onnx.binary import two_class_sigmoid

    producer = {o: n for n in model.graph.node for o in n.output if o}
    for name in ([output] if output else [o.name for o in model.graph.output]):
        node = producer.get(name)
        target = node.input[0] if node is not None and node.op_type == "ZipMap" and node.input else name
        note = two_class_sigmoid(model, target)
        if note:
            return note
    return None


def layer_status(model: onnx.ModelProto, *, output: str | None = None) -> list[dict[str, str]]:
    """Every affine node (Gemm, MatMul, Conv) the chosen output depends on, in graph order, with
    whether the explained part may start there (`--from`) and, if not, why: what the chain from
    it to the output meets (a branch, a node combining two paths, an unsupported op)."""
    check_no_external_data(model)
    with quiet():
        importer = _Importer(model, source="<model>", output=output)
        rows = []
        for name, node in importer.affine_nodes():
            try:
                importer.walk(node.input[0])
                status = "explainable"
            except UnsupportedModelError as e:
                status = "not explainable: " + str(e).removesuffix(CHAINS_ONLY)
            rows.append({"name": name, "op": node.op_type, "status": status})
    return rows


def shown(name: object, limit: int = 80) -> str:
    """A name for a message: repr (so control characters stay visible), long ones shortened."""
    text = repr(name)
    return text if len(text) <= limit else f"{text[:limit - 20]}...' ({len(str(name))} characters)"


def check_name(name: object, what: str) -> None:
    """Refuse a name the exporters could not write back (see the module docstring)."""
    if not isinstance(name, str):  # protobuf hands back invalid UTF-8 as bytes
        raise UnsupportedModelError(f"{what} has a name that is not valid UTF-8: {shown(name)}")
    bad = REFUSED_NAME_CHARS.search(name)
    if bad:
        raise UnsupportedModelError(
            f"{what} has a name with control character U+{ord(bad.group()):04X} at position {bad.start()}: "
            f"{shown(name)}; names may hold any character except controls other than tab and newline "
            "(U+0000-U+0008, U+000B-U+001F, U+007F-U+009F), lone surrogates and U+FFFE/U+FFFF")


def _printable(text: object) -> str:
    text = text if isinstance(text, str) else repr(text)
    return REFUSED_NAME_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class NotAChainError(UnsupportedModelError):
    """The graph from a tensor to the output is not a chain of layers (a branch, a join, an op
    that is not a layer or step): by default the explained part then starts after it. Other
    refusals (constants too large, non-finite weights, shapes that disagree) stop the import."""


@dataclass(slots=True)
class _PendingLayer:
    """An affine map read so far: the Add and BatchNormalization nodes that follow fold into its
    weight and bias until an activation (or anything else) closes it into a `Layer`."""

    node: onnx.NodeProto
    kind: Kind
    weight: np.ndarray
    bias: np.ndarray
    conv: ConvAttrs | None
    input: str  # the tensor entering the affine map
    out: str  # the tensor after the last folded node
    nodes: list[str]  # the ONNX nodes folded in, for messages


class _Importer:
    def __init__(self, model: onnx.ModelProto, source: str, output: str | None = None) -> None:
        self.source = source
        self.at = "(none yet)"
        g = model.graph
        self._check_names(g)
        try:
            self.model = shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # inference is a convenience; the import works without shapes
            self.model = model
        g = self.model.graph
        self.opset = default_opset(model)
        self.functions = {(f.domain, f.name) for f in model.functions}
        self.dims: dict[str, tuple[int | str | None, ...]] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                self.dims[vi.name] = tuple(
                    d.dim_value if d.HasField("dim_value") else (_symbol(d.dim_param))
                    for d in vi.type.tensor_type.shape.dim)
        self.elem: dict[str, int] = {vi.name: vi.type.tensor_type.elem_type
                                     for vi in [*g.input, *g.value_info, *g.output] if vi.type.HasField("tensor_type")}
        self.notes: list[str] = []
        self.consts = ConstantGraph(g, self.model.opset_import, self._declared, self._label)
        inputs = [i for i in g.input if not self.consts.is_constant(i.name)]
        if len(inputs) != 1:
            raise UnsupportedModelError(
                f"expected a model with one input tensor, got {len(inputs)}: {', '.join(shown(i.name) for i in inputs)}")
        self.input = inputs[0]
        self.producer = {o: n for n in g.node for o in n.output if o}
        self.output = self._choose_output(g, output)
        kind = self.input.type.WhichOneof("value")
        elem = self.input.type.tensor_type.elem_type if kind == "tensor_type" else 0
        if kind != "tensor_type" or elem not in DATA_TYPES:
            got = (onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else elem) \
                if kind == "tensor_type" else (kind or "no type")
            raise UnsupportedModelError(f"input {shown(self.input.name)} has element type {got}; "
                                        "supported: FLOAT, DOUBLE")
        self.data_dtype, self.data_elem = DATA_TYPES[elem], elem
        self.dtype = FLOAT_TYPES.get(elem, np.dtype(np.float32))
        self.input_dims = self.dims.get(self.input.name)
        self.data_shape = self._per_sample(self.input.name, "input") or ()
        self.input_shape = self.data_shape
        if self.input_dims is not None and len(self.input_dims) < 2:
            raise UnsupportedModelError(
                f"input {shown(self.input.name)} has shape {_fmt(self.input_dims)}; expected a batch axis and "
                "at least one axis per sample, e.g. (batch, features) or (batch, channels, height, width)")
        self._check_output_declared(batch=False)
        self._graph_nodes()

    # The classifier's output ----------------------------------------------------------
    def _choose_output(self, g: onnx.GraphProto, requested: str | None) -> str:
        """The tensor holding the class vector. A graph output made by ZipMap (skl2onnx) stands
        for the tensor it maps. `requested` may name any graph output or computed tensor. By
        default: the one graph output; else the float outputs of shape (batch, K >= 2), and among
        several the only one a Softmax makes (the probabilities); else an error naming them."""
        def mapped(name: str) -> str:
            node = self.producer.get(name)
            return node.input[0] if node is not None and node.op_type == "ZipMap" and node.input else name

        outputs = [o.name for o in g.output]
        listed = ", ".join(shown(o) for o in outputs) or "none"
        if requested is not None:
            if requested not in outputs and requested not in self.producer:
                raise UnsupportedModelError(f"the model has no tensor {shown(requested)} to explain; its graph outputs: "
                                            f"{listed}")
            return mapped(requested)
        if len(outputs) == 1:
            return mapped(outputs[0])
        if not outputs:
            raise UnsupportedModelError("expected a model with one output tensor, got 0")
        cands: list[str] = []
        for o in outputs:
            t = mapped(o)
            dims = self.dims.get(t)
            if (t not in cands and self.elem.get(t, onnx.TensorProto.FLOAT) in FLOAT_TYPES
                    and (dims is None or (len(dims) == 2 and not (isinstance(dims[1], int) and dims[1] < 2)))):
                cands.append(t)
        def made_by(t: str) -> str:  # through no-op nodes (skl2onnx: Softmax -> Identity -> probabilities)
            node = self.producer.get(t)
            while node is not None and node.op_type in ("Identity", "Cast") and node.input:
                node = self.producer.get(node.input[0])
            return node.op_type if node is not None else ""

        probs = [t for t in cands if made_by(t) == "Softmax"]
        if len(cands) == 1 or len(probs) == 1:
            chosen = cands[0] if len(cands) == 1 else probs[0]
            others = [shown(o) for o in outputs if mapped(o) != chosen]
            self.notes.append(f"the model has {len(outputs)} outputs; explaining {shown(chosen)} "
                              f"({'the probabilities' if chosen in probs else 'the only class vector'}; not "
                              f"{', '.join(others)}); --graph-output NAME picks another")
            return chosen
        if not cands:
            raise UnsupportedModelError(f"none of the model's outputs ({listed}) is a class vector; expected a float "
                                        "output of shape (batch, classes) with classes >= 2")
        raise UnsupportedModelError(f"the model has {len(cands)} outputs that could be the class vector "
                                    f"({', '.join(shown(c) for c in cands)}); --graph-output NAME says which to explain")

    # Names, shapes ------------------------------------------------------------------------
    def _check_names(self, g: onnx.GraphProto) -> None:
        for vi in (*g.input, *g.output, *g.value_info):
            check_name(vi.name, f"tensor {shown(vi.name)}")
        for t in g.initializer:
            check_name(t.name, f"initializer {shown(t.name)}")
        for k, node in enumerate(g.node):
            what = f"node #{k} {shown(node.name)} ({node.op_type})"
            check_name(node.name, what)
            for t in (*node.input, *node.output):
                check_name(t, f"tensor {shown(t)} of node #{k} ({node.op_type})")

    def _declared(self, name: str) -> tuple[int | None, ...] | None:
        dims = self.dims.get(name)
        return None if dims is None else tuple(d if isinstance(d, int) else None for d in dims)

    def _per_sample(self, name: str, what: str = "tensor") -> Shape | None:
        """The per-sample dims a tensor declares (None: rank unknown), checked for sense."""
        dims = self._declared(name)
        if dims is None:
            return None
        said = f"{what} {shown(name)} declares shape {_fmt(self.dims[name])}"
        if any(d is not None and d < 0 for d in dims):
            raise UnsupportedModelError(f"{said}; expected non-negative dimensions")
        sample = dims[1:]
        if 0 in sample:
            raise UnsupportedModelError(f"{said}: its samples hold no values")
        known = math.prod(d for d in sample if d is not None)
        if known > MAX_SAMPLE:
            raise UnsupportedModelError(f"{said}: {known} values per sample; at most {MAX_SAMPLE} are supported")
        return sample

    def _check_output_declared(self, batch: bool) -> None:
        """The declared output is (batch, classes >= 2); with `batch`, its batch dimension follows
        the input's (checked after the chain, whose nodes name the cause better)."""
        dims = self.dims.get(self.output)
        if dims is None:
            return
        expect = ("the classifier's output must be (batch, classes) with classes >= 2, its batch dimension "
                  "following the input's")
        out = shown(self.output)
        if len(dims) != 2:
            raise UnsupportedModelError(f"output {out} has shape {_fmt(dims)}; {expect}")
        self._per_sample(self.output, "output")
        if isinstance(dims[1], int) and dims[1] < 2:
            raise UnsupportedModelError(f"output {out} has shape {_fmt(dims)}: {dims[1]} class; {expect}")
        b_in = self.input_dims[0] if self.input_dims else None
        b_out = dims[0]
        if batch and isinstance(b_out, int) and (isinstance(b_in, str) or (isinstance(b_in, int) and b_in != b_out)):
            raise UnsupportedModelError(
                f"output {out} has shape {_fmt(dims)} while input {shown(self.input.name)} has "
                f"{_fmt(self.input_dims or ())}; {expect}")

    def _label(self, node: onnx.NodeProto) -> str:
        return f"{shown(node.name or (node.output[0] if node.output else '?'))} ({node.op_type})"

    # The chain ------------------------------------------------------------------------
    def _graph_nodes(self) -> None:
        """The data nodes the chosen output depends on, and who reads each tensor among them
        (nodes that only compute other outputs, such as skl2onnx's label, are not looked at)."""
        producer = {o: n for n in self.consts.data_nodes for o in n.output if o}
        keep: set[int] = set()
        stack = [producer[self.output]] if self.output in producer else []
        while stack:
            node = stack.pop()
            if id(node) in keep:
                continue
            keep.add(id(node))
            stack.extend(producer[i] for i in (*node.input, *subgraph_inputs(node)) if i in producer)
        self.nodes = [n for n in self.consts.data_nodes if id(n) in keep]
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for i in dict.fromkeys(i for i in node.input if self.consts.is_data(i)):
                self.consumers.setdefault(i, []).append(node)

    def affine_nodes(self) -> list[tuple[str, onnx.NodeProto]]:
        """The affine nodes the output depends on, in graph order, named as their layers would be."""
        out: list[tuple[str, onnx.NodeProto]] = []
        used: set[str] = set()
        for node in self.nodes:
            if node.op_type in AFFINE and node.domain in ("", "ai.onnx") and node.input:
                out.append((_unique(node.name or node.output[0], used), node))
        return out

    def run(self, start: str | None = None) -> Network:
        if not any(n.op_type in AFFINE for n in self.nodes):
            raise UnsupportedModelError(
                f"the model has no dense or conv layer (Gemm, MatMul, Conv) between {shown(self.input.name)} "
                f"and {shown(self.output)}: there is nothing to explain")
        if start is not None:
            layers = self.affine_nodes()
            node = next((n for name, n in layers if name == start), None)
            if node is None:
                names = [name for name, _ in layers]
                raise UnsupportedModelError(
                    f"--from {shown(start)}: the model has no layer of that name; its layers (Gemm, MatMul, Conv "
                    f"nodes): {', '.join(shown(n) for n in names[:20])}{' ...' if len(names) > 20 else ''}")
            try:
                seq = self.walk(node.input[0])
            except UnsupportedModelError as e:
                raise UnsupportedModelError(f"--from {shown(start)}: the part from it to the output "
                                            f"{shown(self.output)} is not a chain of layers: {e}") from e
            reason = f"--from {start}"
        else:
            seq, reason = self._default_start()
        cut = self.start
        head = None
        if cut != self.input.name:
            head = Head(input=self.input.name, input_shape=tuple(self.data_shape), dtype=self.data_dtype,
                        nodes=len(self.nodes) - (len(self.chain_tensors) - 1),
                        reason=_printable(reason))
        return Network(
            input=cut, input_shape=tuple(self.input_shape), dtype=self.dtype, output=self.output,
            sequence=tuple(seq), source=self.source, opset=self.opset,
            producer=_printable(self.model.producer_name), head=head,
        )

    def _default_start(self) -> tuple[list[Layer | Step], str]:
        """The chain from the graph input; failing that, from the first layer after which the
        graph is a chain (the last branch or unsupported node lies before it)."""
        try:
            return self.walk(self.input.name), ""
        except NotAChainError as e:
            whole = e
        for name, node in self.affine_nodes():
            if node.input[0] == self.input.name:
                continue
            try:
                seq = self.walk(node.input[0])
            except NotAChainError:
                continue
            reason = f"the graph before it is not a chain ({str(whole).removesuffix(CHAINS_ONLY)})"
            self.notes.append(f"explaining from layer {shown(name)} (its input {shown(node.input[0])}) to the "
                              f"output; {reason}; --from LAYER picks another start")
            return seq, reason
        raise whole

    def _check_joins(self, start: str) -> None:
        """No node after `start` reads two computed tensors (a join of two paths, or a weight
        computed from the data): named before the walk meets the branch that leads to it."""
        after, stack = set(), [start]
        while stack:
            for node in self.consumers.get(stack.pop(), []):
                if id(node) not in after:
                    after.add(id(node))
                    stack.extend(o for o in node.output if o)
        for node in self.nodes:
            if id(node) not in after:
                continue
            self.at = self._label(node)
            dyn = [i for i in node.input if self.consts.is_data(i)]
            if len(dyn) > 1:
                if node.op_type in AFFINE and node.input[0] == dyn[0]:
                    raise NotAChainError(
                        f"node {self._label(node)}: its weight {shown(dyn[1])} is computed from the data; "
                        "weights must be initializers, Constant nodes or constant subgraphs")
                raise NotAChainError(
                    f"node {self._label(node)} combines computed tensors {', '.join(shown(d) for d in dyn)}"
                    + CHAINS_ONLY)

    def walk(self, start: str) -> list[Layer | Step]:
        """The chain of layers and steps from tensor `start` to the output, or an
        UnsupportedModelError naming the first node that is not part of one."""
        self.start = start
        self.chain_tensors = {start}
        if start == self.input.name:
            if self.data_dtype not in FLOAT_TYPES.values():
                raise NotAChainError(f"input {shown(start)} has element type "
                                     f"{onnx.TensorProto.DataType.Name(self.data_elem)}; supported: FLOAT, DOUBLE")
            self.dtype = self.data_dtype
            self.input_shape = self.data_shape
        else:
            elem = self.elem.get(start, 0)
            if elem and elem not in FLOAT_TYPES:
                raise NotAChainError(f"tensor {shown(start)} has element type "
                                     f"{onnx.TensorProto.DataType.Name(elem)}; the explained part computes in "
                                     "FLOAT or DOUBLE")
            self.dtype = FLOAT_TYPES.get(elem, np.dtype(np.float32))
            self.input_shape = self._per_sample(start) or ()
        self._check_joins(start)
        seq: list[Layer | Step] = []
        pending: _PendingLayer | None = None
        cur = start
        used_names: set[str] = set()
        for _ in range(len(self.model.graph.node) + 1):
            if cur == self.output:
                break
            nodes = self.consumers.get(cur, [])
            if not nodes:
                raise NotAChainError(
                    f"tensor {shown(cur)} is not used by any node and is not the model output {shown(self.output)}")
            if len(nodes) > 1:
                raise NotAChainError(
                    f"tensor {shown(cur)} feeds {len(nodes)} nodes ({', '.join(self._label(n) for n in nodes[:4])})"
                    + CHAINS_ONLY)
            node = nodes[0]
            self.at = self._label(node)
            op = node.op_type
            if node.domain not in ("", "ai.onnx") or (node.domain, op) in self.functions:
                raise NotAChainError(
                    f"node {self._label(node)} is an op of domain {node.domain!r}"
                    f"{' defined by a model-local function' if (node.domain, op) in self.functions else ''}; "
                    f"supported: the default ONNX domain's {SUPPORTED}")
            out = node.output[0] if node.output else ""
            if not out:
                raise UnsupportedModelError(f"node {self._label(node)} has no output")
            if op in AFFINE:
                if pending:
                    seq.append(self._close(pending, None, used_names))
                pending = self._affine(node, cur, seq)
            elif op == "Add" and pending:
                self._fold_add(pending, node)
            elif op == "BatchNormalization" and pending:
                self._fold_bn(pending, node)
            elif op in ACTIVATIONS and pending:
                seq.append(self._close(pending, node, used_names))
                pending = None
            elif op in STEPS:
                if pending:
                    seq.append(self._close(pending, None, used_names))
                    pending = None
                seq.append(self._step(node, cur))
            elif op in ACTIVATIONS:
                raise NotAChainError(
                    f"node {self._label(node)} applies an activation that does not follow an affine map "
                    "(Gemm, MatMul, Conv); activations must come right after a layer")
            else:
                raise NotAChainError(
                    f"node {self._label(node)} has op type {op!r}, which mofn2logic cannot turn into layers; "
                    f"supported between input and output: {SUPPORTED}")
            if pending is not None:
                pending.out = out
            cur = out
            self.chain_tensors.add(out)
        else:
            raise NotAChainError(f"the chain from {shown(start)} never reaches the output "
                                 f"{shown(self.output)}")
        if pending:
            seq.append(self._close(pending, None, used_names))
        self.at = "(shapes)"
        for s in seq:
            if isinstance(s, Transpose) and (not s.perm or s.perm[0] != 0):
                raise UnsupportedModelError(
                    f"node {shown(s.node)} (Transpose) moves the batch axis (perm {list(s.perm)}); supported: "
                    "perm[0] = 0, or perm [1, 0] right before a Gemm with transA=1")
        if not any(isinstance(s, Layer) for s in seq):
            raise UnsupportedModelError(f"there is no dense or conv layer between {shown(start)} and the output "
                                        f"{shown(self.output)}: there is nothing to explain")
        self._check_output_declared(batch=True)
        return self._shapes(seq)

    def _const(self, node: onnx.NodeProto, idx: int, what: str) -> np.ndarray:
        """Input `idx` of `node`, a constant of real numbers, in the model's dtype."""
        if idx >= len(node.input) or not node.input[idx]:
            raise UnsupportedModelError(f"node {self._label(node)} lacks its {what}")
        name = node.input[idx]
        if not self.consts.is_constant(name):
            raise UnsupportedModelError(
                f"node {self._label(node)}: {what} {shown(name)} is computed from the data; "
                "weights must be initializers, Constant nodes or constant subgraphs")
        value = np.asarray(self.consts.value(name, f"node {self._label(node)}"))
        if value.dtype.kind not in "biuf":
            raise UnsupportedModelError(f"node {self._label(node)}: {what} {shown(name)} has dtype {value.dtype}; "
                                        "expected real numbers")
        value = value.astype(self.dtype)
        bad = ~np.isfinite(value)
        if bad.any():
            raise UnsupportedModelError(f"node {self._label(node)}: {what} {shown(name)} holds {int(bad.sum())} "
                                        f"non-finite values (NaN or Inf, or too large for {self.dtype}); "
                                        "expected finite numbers")
        return value

    def _finite(self, node: onnx.NodeProto, what: str, value: np.ndarray) -> np.ndarray:
        if not np.isfinite(value).all():
            raise UnsupportedModelError(f"node {self._label(node)}: folding it gives non-finite {what} "
                                        f"(overflow in {self.dtype}); expected finite numbers")
        return value

    def _attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def _ints(self, node: onnx.NodeProto, name: str, values: Any, n: int, low: int) -> tuple[int, ...]:
        vals = tuple(int(v) for v in values)
        if len(vals) != n or any(v < low or v > MAX_ATTR for v in vals):
            raise UnsupportedModelError(f"node {self._label(node)} has {name} {list(vals)}; expected {n} whole "
                                        f"numbers from {low} to {MAX_ATTR}")
        return vals

    # Affine maps ----------------------------------------------------------------------
    def _affine(self, node: onnx.NodeProto, cur: str, seq: list[Layer | Step]) -> _PendingLayer:
        attrs = self._attrs(node)
        op = node.op_type
        layer_input = cur
        conv = None
        if node.input[0] != cur:
            raise UnsupportedModelError(
                f"node {self._label(node)} takes the data as its second operand; "
                "supported: data as the first operand (A of Gemm/MatMul, X of Conv)")
        if op == "Gemm":
            b = self._const(node, 1, "weight B")
            if b.ndim != 2:
                raise UnsupportedModelError(f"node {self._label(node)} has a weight of shape {b.shape}; "
                                            "Gemm takes a 2-D weight")
            w = b if attrs.get("transB", 0) else b.T
            w = self._finite(node, "weights", w * self.dtype.type(attrs.get("alpha", 1.0)))
            units = w.shape[0]
            bias = np.zeros(units, self.dtype)
            if len(node.input) > 2 and node.input[2]:
                c = self._const(node, 2, "bias C") * self.dtype.type(attrs.get("beta", 1.0))
                bias = self._as_bias(node, self._finite(node, "biases", c), units, "dense")
            if attrs.get("transA", 0):
                # transA only makes sense after a Transpose that moved the batch axis; undo both.
                prev = seq[-1] if seq else None
                if not (isinstance(prev, Transpose) and prev.output == cur and tuple(prev.perm) == (1, 0)):
                    raise UnsupportedModelError(
                        f"node {self._label(node)} has transA=1 on data that is not a 2-D Transpose of the "
                        "batch; supported: transA=0, or transA=1 right after Transpose(perm=[1,0])")
                seq.pop()
                layer_input = prev.input
        elif op == "MatMul":
            b = self._const(node, 1, "weight B")
            if b.ndim != 2:
                raise UnsupportedModelError(f"node {self._label(node)} has a {b.ndim}-D weight; supported: 2-D")
            in_shape = self._declared(cur)
            if in_shape is not None and len(in_shape) != 2:
                raise UnsupportedModelError(
                    f"node {self._label(node)} multiplies a {len(in_shape)}-D tensor; supported: 2-D (batch, features)")
            w = b.T
            bias = np.zeros(w.shape[0], self.dtype)
        else:  # Conv
            w = self._const(node, 1, "weight W")
            if w.ndim != 4:
                raise UnsupportedModelError(
                    f"node {self._label(node)} is a {w.ndim - 2}-D convolution; supported: 2-D (NCHW)")
            bias = np.zeros(w.shape[0], self.dtype)
            if len(node.input) > 2 and node.input[2]:
                b = self._const(node, 2, "bias B")
                if b.shape != (w.shape[0],):
                    raise UnsupportedModelError(f"node {self._label(node)} has a bias of shape {b.shape} for "
                                                f"{w.shape[0]} output channels; expected ({w.shape[0]},)")
                bias = b
            conv = self._conv_attrs(node, attrs, w, cur)
        if 0 in w.shape:
            raise UnsupportedModelError(f"node {self._label(node)} has a weight of shape {w.shape}; expected "
                                        "at least one unit and one input")
        return _PendingLayer(node=node, kind="conv" if op == "Conv" else "dense", weight=w, bias=bias, conv=conv,
                             input=layer_input, out=node.output[0], nodes=[node.name or node.output[0]])

    def _conv_attrs(self, node: onnx.NodeProto, attrs: dict[str, Any], w: np.ndarray, cur: str) -> ConvAttrs:
        kernel = self._ints(node, "kernel_shape", attrs.get("kernel_shape", w.shape[2:]), 2, 1)
        if kernel != tuple(w.shape[2:]):
            raise UnsupportedModelError(f"node {self._label(node)} has kernel_shape {list(kernel)} but a weight of "
                                        f"shape {w.shape}; expected kernel_shape {list(w.shape[2:])}")
        strides = self._ints(node, "strides", attrs.get("strides", (1, 1)), 2, 1)
        dil = self._ints(node, "dilations", attrs.get("dilations", (1, 1)), 2, 1)
        pads = self._ints(node, "pads", attrs.get("pads", (0, 0, 0, 0)), 4, 0)
        groups = self._ints(node, "group", (attrs.get("group", 1),), 1, 1)[0]
        if w.shape[0] % groups:
            raise UnsupportedModelError(f"node {self._label(node)} has group {groups}, which does not divide its "
                                        f"{w.shape[0]} output channels")
        pads = self._auto_pads(node, attrs, cur, kernel, strides, dil, pads)
        return ConvAttrs(kernel=(kernel[0], kernel[1]), strides=(strides[0], strides[1]),
                         pads=(pads[0], pads[1], pads[2], pads[3]), dilations=(dil[0], dil[1]), groups=groups)

    def _as_bias(self, node: onnx.NodeProto, c: np.ndarray, units: int, kind: str) -> np.ndarray:
        """A constant added to the pre-activation, as one value per unit (dense: broadcast over the
        last axis; conv: over the channel axis of NCHW); anything else varies within a unit."""
        c = np.asarray(c, dtype=self.dtype)
        rank = 2 if kind == "dense" else 4
        axis = 1
        shape = (1,) * (rank - c.ndim) + c.shape if c.ndim <= rank else None
        ok = (shape is not None and all(d == 1 for i, d in enumerate(shape) if i != axis)
              and shape[axis] in (1, units))
        if not ok:
            expect = f"({units},) or (1, {units})" if kind == "dense" else f"({units}, 1, 1) or (1, {units}, 1, 1)"
            raise UnsupportedModelError(
                f"node {self._label(node)}: a bias of shape {tuple(c.shape)} does not give one value per unit "
                f"over {units} units; expected shape {expect} or a scalar")
        return np.broadcast_to(c.reshape(-1), (units,)).copy()

    def _fold_add(self, pending: _PendingLayer, node: onnx.NodeProto) -> None:
        other = [i for i in node.input if i != pending.out]
        if len(other) != 1 or not self.consts.is_constant(other[0]):
            raise UnsupportedModelError(f"node {self._label(node)} adds a computed tensor; supported: a constant bias")
        c = self._const(node, list(node.input).index(other[0]), "bias")
        pending.bias = self._finite(node, "biases", pending.bias + self._as_bias(node, c, pending.weight.shape[0],
                                                                                  pending.kind))
        pending.nodes.append(node.name or node.output[0])

    def _fold_bn(self, pending: _PendingLayer, node: onnx.NodeProto) -> None:
        attrs = self._attrs(node)
        if attrs.get("training_mode", 0) or not attrs.get("spatial", 1) or attrs.get("is_test", 1) == 0:
            raise UnsupportedModelError(f"node {self._label(node)} is a BatchNormalization in training mode or "
                                        "without spatial=1; supported: inference with per-channel statistics")
        units = pending.weight.shape[0]
        gamma, beta, mean, var = (self._const(node, i, w) for i, w in
                                  ((1, "scale"), (2, "bias B"), (3, "input_mean"), (4, "input_var")))
        for what, p in (("scale", gamma), ("bias B", beta), ("input_mean", mean), ("input_var", var)):
            if p.shape != (units,):
                raise UnsupportedModelError(f"node {self._label(node)}: {what} has shape {p.shape}; expected "
                                            f"({units},), one per unit of the layer it follows")
        denom = var + self.dtype.type(attrs.get("epsilon", 1e-5))
        if not (denom > 0).all():
            raise UnsupportedModelError(f"node {self._label(node)}: input_var + epsilon is not positive for "
                                        f"{int((denom <= 0).sum())} units; expected variances >= 0")
        scale = gamma / np.sqrt(denom)
        shape = (-1,) + (1,) * (pending.weight.ndim - 1)
        pending.weight = self._finite(node, "weights", pending.weight * scale.reshape(shape))
        pending.bias = self._finite(node, "biases", (pending.bias - mean) * scale + beta)
        pending.nodes.append(node.name or node.output[0])

    def _close(self, pending: _PendingLayer, act: onnx.NodeProto | None, used: set[str]) -> Layer:
        first = pending.node
        name = _unique(first.name or first.output[0], used)
        alpha = None
        activation: Activation = "identity"
        output = pending.out
        if act is not None:
            activation = ACTIVATIONS[act.op_type]
            attrs = self._attrs(act)
            if act.op_type == "LeakyRelu":
                alpha = float(attrs.get("alpha", 0.01))
                if not math.isfinite(alpha):
                    raise UnsupportedModelError(f"node {self._label(act)} has alpha {alpha}; expected a finite slope")
            if act.op_type in ("Softmax", "LogSoftmax"):
                axis = attrs.get("axis", -1 if self.opset >= 13 else 1)
                rank = len(self._declared(pending.out) or (0, 0))
                if pending.kind != "dense" or axis not in (-1, 1) or rank != 2:
                    raise UnsupportedModelError(
                        f"node {self._label(act)} normalises over axis {axis} of a {rank}-D tensor; supported: "
                        "the class axis of a 2-D tensor")
            output = act.output[0]
            pending.nodes.append(act.name or act.output[0])
        w = np.ascontiguousarray(pending.weight, dtype=self.dtype)
        b = np.ascontiguousarray(pending.bias, dtype=self.dtype)
        w.setflags(write=False)
        b.setflags(write=False)
        in_shape = self._per_sample(pending.input)
        out_shape = self._per_sample(output)
        return Layer(
            name=name, kind=pending.kind, weight=w, bias=b, activation=activation,
            input=pending.input, preact=pending.out, output=output,
            input_shape=in_shape or (), output_shape=out_shape or (),
            conv=pending.conv, activation_alpha=alpha, nodes=tuple(pending.nodes),
        )

    # Non-parametric steps ------------------------------------------------------------
    def _step(self, node: onnx.NodeProto, cur: str) -> Step:
        attrs = self._attrs(node)
        op = STEPS[node.op_type]
        where = {"input": cur, "output": node.output[0], "node": node.name or node.output[0]}
        rank = len(self._declared(cur) or ()) or None
        if op == "identity":
            if node.op_type == "Cast" and attrs.get("to") != helper.np_dtype_to_tensor_dtype(self.dtype):
                to = attrs.get("to", 0)
                raise NotAChainError(
                    f"node {self._label(node)} casts to "
                    f"{onnx.TensorProto.DataType.Name(to) if to in onnx.TensorProto.DataType.values() else to}; "
                    f"supported in the explained part: a Cast to its own type ({self.dtype}), a no-op")
            if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
                mode = node.input[2]
                if not self.consts.is_constant(mode) or bool(np.any(self.consts.value(mode, self._label(node)))):
                    raise UnsupportedModelError(f"node {self._label(node)} is a Dropout in training mode (random); "
                                                "supported: inference (training_mode absent or false)")
            return Identity(**where)
        if op == "flatten":
            axis = int(attrs.get("axis", 1))
            if axis != 1 and not (rank and axis == 1 - rank):
                raise UnsupportedModelError(
                    f"node {self._label(node)} flattens from axis {axis}, which mixes the samples of a batch "
                    "(the output would not be one row per sample); supported: axis 1")
            return Flatten(axis=1, **where)
        if op == "globalavgpool":
            return GlobalAvgPool(**where)
        if op == "reshape":
            shape_name = node.input[1] if len(node.input) > 1 else ""
            if self.consts.is_constant(shape_name):
                target = self.consts.value(shape_name, f"node {self._label(node)}")
                if target.dtype.kind not in "iu" or target.ndim != 1 or target.size > 64:
                    raise UnsupportedModelError(f"node {self._label(node)} reshapes to {target.dtype} of shape "
                                                f"{target.shape}; expected a 1-D integer shape")
                shape = tuple(int(v) for v in target)
                batch = self.input_dims[0] if self.input_dims else None
                if not shape or not (shape[0] in (0, -1) or (isinstance(batch, int) and shape[0] == batch)):
                    raise UnsupportedModelError(
                        f"node {self._label(node)} reshapes to {list(shape)}, which does not keep the batch as "
                        "the first axis; supported: a target starting with 0 or -1 (or the fixed batch size)")
                if attrs.get("allowzero", 0) and 0 in shape:
                    raise UnsupportedModelError(f"node {self._label(node)} reshapes to {list(shape)} with allowzero=1 "
                                                "(empty axes); supported: allowzero=0")
                return Reshape(shape=shape, **where)
            declared = self._declared(node.output[0])
            out = _full(declared[1:]) if declared else None
            if out is None:
                raise UnsupportedModelError(
                    f"node {self._label(node)} reshapes to a shape computed at run time that shape "
                    "inference cannot fix; supported: a constant target shape")
            return Reshape(shape=(-1, *out), **where)
        if op == "transpose":
            perm = attrs.get("perm")
            if perm is None:  # ONNX default: reverse the axes
                perm = tuple(reversed(range(rank))) if rank else (1, 0)
            perm = tuple(int(p) for p in perm)
            if sorted(perm) != list(range(len(perm))) or (rank and len(perm) != rank):
                raise UnsupportedModelError(f"node {self._label(node)} has perm {list(perm)}, which is not a "
                                            f"permutation of the {rank or len(perm)} axes")
            return Transpose(perm=perm, **where)
        if "kernel_shape" not in attrs:
            raise UnsupportedModelError(f"node {self._label(node)} has no kernel_shape")
        n = len(attrs["kernel_shape"])
        if n != 2:
            raise UnsupportedModelError(f"node {self._label(node)} pools over {n} axes; supported: 2-D pooling")
        if node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1:
            raise UnsupportedModelError(f"node {self._label(node)} also outputs indices; supported: values only")
        kernel = self._ints(node, "kernel_shape", attrs["kernel_shape"], 2, 1)
        strides = self._ints(node, "strides", attrs.get("strides", (1, 1)), 2, 1)
        pads = self._ints(node, "pads", attrs.get("pads", (0, 0, 0, 0)), 4, 0)
        dil = self._ints(node, "dilations", attrs.get("dilations", (1, 1)), 2, 1)
        pads = self._auto_pads(node, attrs, cur, kernel, strides, dil, pads)
        fields = dict(kernel=kernel, strides=strides, pads=pads, dilations=dil,
                      ceil_mode=bool(attrs.get("ceil_mode", 0)), **where)
        if op == "avgpool":
            return AvgPool(count_include_pad=bool(attrs.get("count_include_pad", 0)), **fields)
        return MaxPool(**fields)

    def _auto_pads(self, node: onnx.NodeProto, attrs: dict[str, Any], cur: str, kernel, strides, dil,
                   pads: tuple[int, ...]) -> tuple[int, ...]:
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode(errors="replace") if isinstance(auto, bytes) else str(auto)
        if auto in ("NOTSET", ""):
            return pads
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise UnsupportedModelError(f"node {self._label(node)} has auto_pad {auto!r}; supported: NOTSET, "
                                        "VALID, SAME_UPPER, SAME_LOWER")
        declared = self._declared(cur)
        spatial = _full(declared[2:]) if declared is not None and len(declared) == 4 else None
        if spatial is None:
            raise UnsupportedModelError(f"node {self._label(node)}: auto_pad={auto} needs a known input size, and "
                                        f"the input {shown(cur)} has shape "
                                        f"{_fmt(self.dims[cur]) if cur in self.dims else 'unknown'}")
        begins, ends = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dil):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            begins.append(large if auto == "SAME_LOWER" else small)
            ends.append(small if auto == "SAME_LOWER" else large)
        return (*begins, *ends)

    # Shapes through the chain -------------------------------------------------------
    def _shapes(self, seq: list[Layer | Step]) -> list[Layer | Step]:
        """Walk the per-sample shape through the chain: every layer and step must accept what
        reaches it, the declared shapes must agree, and the output is (classes >= 2,)."""
        from mofn2logic.errors import ProgramError

        shape = _full(self.input_shape) if self.input_shape else None
        out: list[Layer | Step] = []
        for item in seq:
            if isinstance(item, Layer):
                self.at = shown(item.name)
                declared_in = self._known(item.input)
                if shape is None:
                    shape = declared_in
                elif declared_in is not None and declared_in != shape:
                    self._disagree(item.input, declared_in, shape)
                if shape is None:
                    out.append(item)
                    shape = self._known(item.output)
                    continue
                computed = self._layer_shape(item, shape)
                for t in (item.preact, item.output):
                    declared = self._known(t)
                    if declared is not None and declared != computed:
                        self._disagree(t, declared, computed)
                out.append(dataclasses.replace(item, input_shape=shape, output_shape=computed))
                shape = computed
            else:
                self.at = shown(item.node)
                if shape is not None:
                    try:
                        shape = tuple(int(d) for d in item.output_shape(shape))
                    except ProgramError as e:
                        raise UnsupportedModelError(f"node {shown(item.node)} ({item.op}): {e}") from e
                    declared = self._known(item.output)
                    if declared is not None and declared != shape:
                        self._disagree(item.output, declared, shape)
                else:
                    shape = self._known(item.output)
                out.append(item)
        if shape is not None and (len(shape) != 1 or shape[0] < 2):
            raise UnsupportedModelError(
                f"output {shown(self.output)} holds per-sample shape {_fmt(shape)}; the classifier's output must "
                "be (batch, classes) with classes >= 2, its batch dimension following the input's")
        return out

    def _known(self, name: str) -> tuple[int, ...] | None:
        s = self._per_sample(name)
        return _full(s) if s is not None else None

    def _disagree(self, name: str, declared: tuple[int, ...], computed: tuple[int, ...]) -> None:
        raise UnsupportedModelError(f"tensor {shown(name)} is declared with per-sample shape {_fmt(declared)}, "
                                    f"but the layers before it compute {_fmt(computed)}")

    def _layer_shape(self, layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
        if layer.kind == "dense":
            if len(shape) != 1 or shape[0] != layer.fan_in:
                raise UnsupportedModelError(
                    f"layer {shown(layer.name)} takes {layer.fan_in} inputs per sample, but {shown(layer.input)} "
                    f"has per-sample shape {_fmt(shape)}; expected ({layer.fan_in},)")
            return (layer.units,)
        c = layer.conv
        assert c is not None
        if len(shape) != 3 or shape[0] != layer.input_channels:
            raise UnsupportedModelError(
                f"layer {shown(layer.name)} convolves {layer.input_channels} channels, but {shown(layer.input)} has "
                f"per-sample shape {_fmt(shape)}; expected ({layer.input_channels}, height, width)")
        size = []
        for i in range(2):
            span = shape[1 + i] + c.pads[i] + c.pads[i + 2] - c.dilations[i] * (c.kernel[i] - 1) - 1
            size.append(span // c.strides[i] + 1 if span >= 0 else 0)
        if min(size) < 1:
            raise UnsupportedModelError(f"layer {shown(layer.name)}: a {c.kernel[0]}x{c.kernel[1]} kernel leaves no "
                                        f"output of a {shape[1]}x{shape[2]} input")
        return (layer.units, size[0], size[1])


def _unique(name: str, used: set[str]) -> str:
    """`name`, or `name_2`, `name_3`, ... when taken; recorded in `used`."""
    base, k = name, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def _full(shape: Sequence[int | None]) -> tuple[int, ...] | None:
    """`shape` as integers, or None if a dimension is open."""
    dims = [d for d in shape if d is not None]
    return tuple(int(d) for d in dims) if len(dims) == len(shape) else None


def _symbol(param: str) -> str | None:
    """A named dimension, or None for an open one (shape inference names those unk__<n>)."""
    return None if not param or re.fullmatch(r"unk__\d+", param) else param


def _fmt(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def layer_table(net: Network) -> list[dict[str, object]]:
    """The layer table as plain dicts (what `inspect --json` prints)."""
    return [
        {
            "name": layer.name, "kind": layer.kind, "units": layer.units, "fan_in": layer.fan_in,
            "activation": layer.activation, "input": layer.input, "output": layer.output, "preact": layer.preact,
            "input_shape": list(layer.input_shape), "output_shape": list(layer.output_shape),
        }
        for layer in net.layers
    ]

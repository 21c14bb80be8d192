"""Read an ONNX classifier into the network IR (`mofn2logic.ir.network`).

The graph must be a chain from one input to one output: affine maps (Gemm, MatMul [+ Add],
Conv [+ Add]) with optional BatchNormalization folded in, element-wise activations, and
non-parametric steps between them. Constant subgraphs (Constant nodes, a Reshape of an
initializer, ...) are evaluated with onnx's ReferenceEvaluator. Anything else is refused
with an error that names the node, its op type and what is supported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from google.protobuf.message import DecodeError

from mofn2logic.errors import InputFileError, ModelFormatError, UnsupportedModelError
from mofn2logic.ir.network import ConvAttrs, Layer, Network, Shape
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

ACTIVATIONS = {
    "Relu": "relu", "LeakyRelu": "leaky_relu", "Tanh": "tanh", "Sigmoid": "sigmoid",
    "Softmax": "softmax", "LogSoftmax": "log_softmax",
}
STEPS = {
    "Flatten": "flatten", "Reshape": "reshape", "MaxPool": "maxpool", "AveragePool": "avgpool",
    "GlobalAveragePool": "globalavgpool", "Transpose": "transpose", "Dropout": "identity",
    "Identity": "identity",
}
AFFINE = ("Gemm", "MatMul", "Conv")
SUPPORTED = ", ".join(sorted({*AFFINE, "Add", "BatchNormalization", *ACTIVATIONS, *STEPS}))
FLOAT_TYPES = {onnx.TensorProto.FLOAT: np.dtype(np.float32), onnx.TensorProto.DOUBLE: np.dtype(np.float64)}


# --------------------------------------------------------------------------- loading

def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load and check a model file; external data must lie in the model's folder."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"model file {str(p)!r} does not exist")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as e:
        raise ModelFormatError(f"{str(p)!r} is not an ONNX model (protobuf decode failed: {_one_line(e)})") from e
    if not model.graph.node or not model.opset_import:
        # Random bytes can decode as an empty protobuf message without an error.
        raise ModelFormatError(f"{str(p)!r} is not an ONNX model (no graph nodes or opset after decoding)")
    base = p.resolve().parent
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = dict((e.key, e.value) for e in tensor.external_data).get("location", "")
        target = (base / location).resolve()
        if os.path.isabs(location) or not target.is_relative_to(base):
            raise ModelFormatError(
                f"tensor {tensor.name!r} refers to external data {location!r} outside the model's "
                f"folder {str(base)!r}; only files beside the model are read"
            )
        if not target.is_file():
            raise InputFileError(f"tensor {tensor.name!r} refers to external data file {str(target)!r}, which does not exist")
    try:
        onnx.load_external_data_for_model(model, str(base))
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, DecodeError, ValueError, OSError) as e:
        raise ModelFormatError(f"{str(p)!r} is not a valid ONNX model: {_one_line(e)}") from e
    return model


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] + ("..." if len(text) > 300 else "")


# --------------------------------------------------------------------------- import

def import_network(model: str | os.PathLike[str] | onnx.ModelProto, *, source: str | None = None) -> Network:
    """Read an ONNX model into a `Network`: a file path (loaded with `load_onnx`) or a model
    already loaded, so a caller that needs the proto too (to run it) loads the file once.

    >>> net = import_network(load_onnx("model.onnx"), source="model.onnx")   # doctest: +SKIP
    """
    if isinstance(model, onnx.ModelProto):
        return _Importer(model, source=source or "<model>").run()
    return _Importer(load_onnx(model), source=source or str(model)).run()


class _Importer:
    def __init__(self, model: onnx.ModelProto, source: str) -> None:
        self.source = source
        try:
            self.model = shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # inference is a convenience; the import works without shapes
            self.model = model
        g = self.model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        inputs = [i for i in g.input if i.name not in self.inits]
        if len(inputs) != 1:
            raise UnsupportedModelError(
                f"expected a model with one input tensor, got {len(inputs)}: {[i.name for i in inputs]}"
            )
        self.input = inputs[0]
        if len(g.output) != 1:
            raise UnsupportedModelError(
                f"expected a model with one output tensor, got {len(g.output)}: {[o.name for o in g.output]}"
            )
        self.output = g.output[0].name
        elem = self.input.type.tensor_type.elem_type
        if elem not in FLOAT_TYPES:
            raise UnsupportedModelError(
                f"input {self.input.name!r} has element type {onnx.TensorProto.DataType.Name(elem)}; "
                "supported: FLOAT, DOUBLE"
            )
        self.dtype = FLOAT_TYPES[elem]
        self.shapes: dict[str, Shape] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                dims = vi.type.tensor_type.shape.dim
                self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        self._classify_nodes()

    # Constant and shape-only subgraphs ----------------------------------------------
    def _classify_nodes(self) -> None:
        g = self.model.graph
        const: set[str] = set(self.inits)
        shape_only: set[str] = set()  # tensors computed from shapes only (Shape -> Gather -> Concat)
        const_nodes, self.shape_nodes, self.dyn_nodes = [], set(), []
        for node in g.node:
            ins = [i for i in node.input if i]
            if all(i in const for i in ins):
                const_nodes.append(node)
                const.update(node.output)
            elif node.op_type == "Shape" or (all(i in const or i in shape_only for i in ins) and ins):
                shape_only.update(node.output)
                self.shape_nodes.add(id(node))
            else:
                self.dyn_nodes.append(node)
        self.const_names, self.shape_only = const, shape_only
        self.consts: dict[str, np.ndarray] = dict(self.inits)
        needed = [o for n in const_nodes for o in n.output if o]
        if needed:
            self.consts.update(self._evaluate_constants(const_nodes, needed))

    def _evaluate_constants(self, nodes: list[onnx.NodeProto], outputs: list[str]) -> dict[str, np.ndarray]:
        from onnx.reference import ReferenceEvaluator

        g = self.model.graph
        graph = helper.make_graph(
            list(nodes), "constants", [],
            [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outputs],
            initializer=list(g.initializer),
        )
        m = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        try:
            values = ReferenceEvaluator(m).run(None, {})
        except Exception as e:
            raise UnsupportedModelError(f"could not evaluate the model's constant subgraph: {_one_line(e)}") from e
        return {name: np.asarray(v) for name, v in zip(outputs, values)}

    # The chain ------------------------------------------------------------------------
    def run(self) -> Network:
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.dyn_nodes:
            for i in node.input:
                if i and i not in self.const_names and i not in self.shape_only:
                    consumers.setdefault(i, []).append(node)
        for node in self.dyn_nodes:
            dyn = [i for i in node.input if i and i not in self.const_names and i not in self.shape_only]
            if len(dyn) > 1:
                raise UnsupportedModelError(
                    f"node {self._label(node)} combines two computed tensors {dyn}: "
                    "mofn2logic reads chains of layers only, not branching graphs"
                )
        if not any(n.op_type in AFFINE for n in self.dyn_nodes):
            raise UnsupportedModelError(
                f"the model has no dense or conv layer (Gemm, MatMul, Conv) between {self.input.name!r} "
                f"and {self.output!r}: there is nothing to explain"
            )
        seq: list[Layer | Step] = []
        pending: dict[str, Any] | None = None
        cur = self.input.name
        used_names: set[str] = set()
        while cur != self.output:
            nodes = consumers.get(cur, [])
            if not nodes:
                raise UnsupportedModelError(
                    f"tensor {cur!r} is not used by any node and is not the model output {self.output!r}"
                )
            if len(nodes) > 1:
                raise UnsupportedModelError(
                    f"tensor {cur!r} feeds {len(nodes)} nodes ({', '.join(self._label(n) for n in nodes)}): "
                    "mofn2logic reads chains of layers only, not branching graphs"
                )
            node = nodes[0]
            op = node.op_type
            out = node.output[0]
            if op in AFFINE:
                if pending:
                    seq.append(self._close(pending, None, used_names))
                pending = self._affine(node, cur, seq)
            elif op == "Add" and pending and pending["act"] is None:
                self._fold_add(pending, node)
            elif op == "BatchNormalization" and pending and pending["act"] is None:
                self._fold_bn(pending, node)
            elif op in ACTIVATIONS and pending and pending["act"] is None:
                seq.append(self._close(pending, node, used_names))
                pending = None
            elif op in STEPS:
                if pending:
                    seq.append(self._close(pending, None, used_names))
                    pending = None
                seq.append(self._step(node, cur))
            elif op in ACTIVATIONS:
                raise UnsupportedModelError(
                    f"node {self._label(node)} applies an activation that does not follow an affine map "
                    "(Gemm, MatMul, Conv); activations must come right after a layer"
                )
            else:
                raise UnsupportedModelError(
                    f"node {self._label(node)} has op type {op!r}, which mofn2logic cannot turn into layers; "
                    f"supported between input and output: {SUPPORTED}"
                )
            if pending is not None:
                pending["out"] = out
            cur = out
        if pending:
            seq.append(self._close(pending, None, used_names))
        dims = self.shapes.get(self.input.name, ())
        return Network(
            input=self.input.name, input_shape=tuple(dims[1:]), dtype=self.dtype, output=self.output,
            sequence=tuple(seq), source=self.source, opset=self.opset, producer=self.model.producer_name,
        )

    def _label(self, node: onnx.NodeProto) -> str:
        return f"{node.name or node.output[0]!r} ({node.op_type})"

    def _const(self, node: onnx.NodeProto, idx: int, what: str) -> np.ndarray:
        if idx >= len(node.input) or not node.input[idx]:
            raise UnsupportedModelError(f"node {self._label(node)} lacks its {what}")
        name = node.input[idx]
        if name not in self.consts:
            raise UnsupportedModelError(
                f"node {self._label(node)}: {what} {name!r} is computed from the data; "
                "weights must be initializers, Constant nodes or constant subgraphs"
            )
        return np.asarray(self.consts[name], dtype=self.dtype)

    # Affine maps ----------------------------------------------------------------------
    def _affine(self, node: onnx.NodeProto, cur: str, seq: list[Layer | Step]) -> dict[str, Any]:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        layer_input = cur
        conv = None
        if node.input[0] != cur:
            raise UnsupportedModelError(
                f"node {self._label(node)} takes the data as its second operand; "
                "supported: data as the first operand (A of Gemm/MatMul, X of Conv)"
            )
        if op == "Gemm":
            b = self._const(node, 1, "weight B")
            w = b if attrs.get("transB", 0) else b.T
            w = w * self.dtype.type(attrs.get("alpha", 1.0))
            units = w.shape[0]
            bias = np.zeros(units, self.dtype)
            if len(node.input) > 2 and node.input[2]:
                c = self._const(node, 2, "bias C") * self.dtype.type(attrs.get("beta", 1.0))
                bias = self._as_bias(node, c, units)
            if attrs.get("transA", 0):
                # transA only makes sense after a Transpose that moved the batch axis; undo both.
                prev = seq[-1] if seq else None
                if not (isinstance(prev, Transpose) and prev.output == cur and tuple(prev.perm) == (1, 0)):
                    raise UnsupportedModelError(
                        f"node {self._label(node)} has transA=1 on data that is not a 2-D Transpose of the "
                        "batch; supported: transA=0, or transA=1 right after Transpose(perm=[1,0])"
                    )
                seq.pop()
                layer_input = prev.input
        elif op == "MatMul":
            b = self._const(node, 1, "weight B")
            if b.ndim != 2:
                raise UnsupportedModelError(f"node {self._label(node)} has a {b.ndim}-D weight; supported: 2-D")
            in_shape = self.shapes.get(cur)
            if in_shape is not None and len(in_shape) != 2:
                raise UnsupportedModelError(
                    f"node {self._label(node)} multiplies a {len(in_shape)}-D tensor; supported: 2-D (batch, features)"
                )
            w = b.T
            bias = np.zeros(w.shape[0], self.dtype)
        else:  # Conv
            w = self._const(node, 1, "weight W")
            if w.ndim != 4:
                raise UnsupportedModelError(
                    f"node {self._label(node)} is a {w.ndim - 2}-D convolution; supported: 2-D (NCHW)"
                )
            bias = (self._as_bias(node, self._const(node, 2, "bias B"), w.shape[0])
                    if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0], self.dtype))
            conv = self._conv_attrs(node, attrs, w, cur)
        return {"node": node, "kind": "conv" if op == "Conv" else "dense", "w": w, "b": bias, "conv": conv,
                "input": layer_input, "act": None, "nodes": [node.name or node.output[0]]}

    def _conv_attrs(self, node: onnx.NodeProto, attrs: dict[str, Any], w: np.ndarray, cur: str) -> ConvAttrs:
        kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
        strides = tuple(attrs.get("strides", (1, 1)))
        dil = tuple(attrs.get("dilations", (1, 1)))
        pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = self._same_pads(node, cur, kernel, strides, dil, auto)
        elif auto == "VALID":
            pads = (0, 0, 0, 0)
        return ConvAttrs(kernel=(int(kernel[0]), int(kernel[1])), strides=(int(strides[0]), int(strides[1])),
                         pads=tuple(int(p) for p in pads), dilations=(int(dil[0]), int(dil[1])),
                         groups=int(attrs.get("group", 1)))

    def _as_bias(self, node: onnx.NodeProto, c: np.ndarray, units: int) -> np.ndarray:
        c = np.asarray(c, dtype=self.dtype)
        if c.size == 1:
            return np.full(units, c.reshape(()), dtype=self.dtype)
        squeezed = c.reshape(-1) if sum(d != 1 for d in c.shape) <= 1 else None
        if squeezed is None or squeezed.size != units:
            raise UnsupportedModelError(
                f"node {self._label(node)}: bias of shape {tuple(c.shape)} does not broadcast per unit "
                f"over {units} units"
            )
        return squeezed.copy()

    def _fold_add(self, pending: dict[str, Any], node: onnx.NodeProto) -> None:
        other = [i for i in node.input if i != pending["out"]]
        if len(other) != 1 or other[0] not in self.consts:
            raise UnsupportedModelError(f"node {self._label(node)} adds a computed tensor; supported: a constant bias")
        c = np.asarray(self.consts[other[0]], dtype=self.dtype)
        if pending["kind"] == "conv" and c.ndim >= 3:
            c = c.reshape(c.shape[-3:])[:, 0, 0] if c.shape[-1] == 1 and c.shape[-2] == 1 else c
        pending["b"] = pending["b"] + self._as_bias(node, c, pending["w"].shape[0])
        pending["nodes"].append(node.name or node.output[0])

    def _fold_bn(self, pending: dict[str, Any], node: onnx.NodeProto) -> None:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        gamma, beta, mean, var = (self._const(node, i, w) for i, w in
                                  ((1, "scale"), (2, "bias B"), (3, "input_mean"), (4, "input_var")))
        scale = gamma / np.sqrt(var + self.dtype.type(attrs.get("epsilon", 1e-5)))
        shape = (-1,) + (1,) * (pending["w"].ndim - 1)
        pending["w"] = pending["w"] * scale.reshape(shape)
        pending["b"] = (pending["b"] - mean) * scale + beta
        pending["nodes"].append(node.name or node.output[0])

    def _close(self, pending: dict[str, Any], act: onnx.NodeProto | None, used: set[str]) -> Layer:
        first = pending["node"]
        name = first.name or first.output[0]
        base, k = name, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        alpha = None
        activation = "identity"
        output = pending["out"]
        if act is not None:
            activation = ACTIVATIONS[act.op_type]
            attrs = {a.name: helper.get_attribute_value(a) for a in act.attribute}
            if act.op_type == "LeakyRelu":
                alpha = float(attrs.get("alpha", 0.01))
            if act.op_type in ("Softmax", "LogSoftmax"):
                axis = attrs.get("axis", -1 if self.opset >= 13 else 1)
                rank = len(self.shapes.get(pending["out"], ()) or (0, 0))
                if axis not in (-1, 1) or (axis == -1 and rank not in (0, 2)):
                    raise UnsupportedModelError(
                        f"node {self._label(act)} normalises over axis {axis}; supported: the class axis of a 2-D tensor"
                    )
            output = act.output[0]
            pending["nodes"].append(act.name or act.output[0])
        w = np.ascontiguousarray(pending["w"], dtype=self.dtype)
        b = np.ascontiguousarray(pending["b"], dtype=self.dtype)
        w.setflags(write=False)
        b.setflags(write=False)
        in_shape = self.shapes.get(pending["input"])
        out_shape = self.shapes.get(output)
        return Layer(
            name=name, kind=pending["kind"], weight=w, bias=b, activation=activation,
            input=pending["input"], preact=pending["out"], output=output,
            input_shape=tuple(in_shape[1:]) if in_shape else (),
            output_shape=tuple(out_shape[1:]) if out_shape else (),
            conv=pending["conv"], activation_alpha=alpha, nodes=tuple(pending["nodes"]),
        )

    # Non-parametric steps ------------------------------------------------------------
    def _step(self, node: onnx.NodeProto, cur: str) -> Step:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op = STEPS[node.op_type]
        where = {"input": cur, "output": node.output[0], "node": node.name or node.output[0]}
        if op == "identity":
            return Identity(**where)
        if op == "flatten":
            return Flatten(axis=int(attrs.get("axis", 1)), **where)
        if op == "globalavgpool":
            return GlobalAvgPool(**where)
        if op == "reshape":
            shape_name = node.input[1]
            if shape_name in self.consts:
                return Reshape(shape=tuple(int(v) for v in self.consts[shape_name].reshape(-1)), **where)
            out = self.shapes.get(node.output[0])
            if not out or None in out[1:]:
                raise UnsupportedModelError(
                    f"node {self._label(node)} reshapes to a shape computed at run time that shape "
                    "inference cannot fix; supported: a constant target shape"
                )
            return Reshape(shape=(-1, *out[1:]), **where)
        if op == "transpose":
            perm = attrs.get("perm")
            if perm is None:  # ONNX default: reverse the axes
                rank = len(self.shapes.get(cur) or ())
                perm = tuple(reversed(range(rank))) if rank else (1, 0)
            return Transpose(perm=tuple(int(p) for p in perm), **where)
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
        strides = tuple(int(s) for s in attrs.get("strides", (1,) * len(kernel)))
        pads = tuple(int(p) for p in attrs.get("pads", (0,) * 2 * len(kernel)))
        dil = tuple(int(d) for d in attrs.get("dilations", (1,) * len(kernel)))
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = self._same_pads(node, cur, kernel, strides, dil, auto)
        elif auto == "VALID":
            pads = (0,) * 2 * len(kernel)
        if len(kernel) != 2:
            raise UnsupportedModelError(f"node {self._label(node)} pools over {len(kernel)} axes; "
                                        "supported: 2-D pooling")
        fields = dict(kernel=kernel, strides=strides, pads=pads, dilations=dil,
                      ceil_mode=bool(attrs.get("ceil_mode", 0)), **where)
        if op == "avgpool":
            return AvgPool(count_include_pad=bool(attrs.get("count_include_pad", 0)), **fields)
        return MaxPool(**fields)

    def _same_pads(self, node: onnx.NodeProto, cur: str, kernel, strides, dil, auto: str) -> tuple[int, ...]:
        shape = self.shapes.get(cur)
        if not shape or len(shape) != 4 or None in shape[2:]:
            raise UnsupportedModelError(f"node {self._label(node)}: auto_pad={auto} needs a known input size")
        begins, ends = [], []
        for size, k, s, d in zip(shape[2:], kernel, strides, dil):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            begins.append(large if auto == "SAME_LOWER" else small)
            ends.append(small if auto == "SAME_LOWER" else large)
        return (*begins, *ends)


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

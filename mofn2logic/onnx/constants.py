"""Constant subgraphs, evaluated only where the layers read them, and bounded.

`ConstantGraph` sorts a graph's tensors into constants (initializers, Constant nodes and
everything computed from constants only), shape-only tensors (computed from `Shape` of the
data and constants) and data. It evaluates a constant only when the importer asks for it (a
weight, a bias, a reshape target, a BatchNormalization parameter), walking back from that
tensor through the nodes that produce it, so an unused node is never run.

Before anything runs, the nodes on that walk are checked: no control flow (Loop, If, Scan:
their cost cannot be known before running them), no random numbers, only ops whose cost is
linear in their input and output sizes (`FOLDABLE`), and no output whose declared or inferred
size exceeds `MAX_ELEMENTS`. Then the nodes run one at a time, and before each the size of
its outputs is bounded from the actual values of its inputs (a ConstantOfShape's shape, an
Expand's target, a Tile's repeats, a Range's bounds, ...). The sum of everything evaluated
is bounded by `MAX_TOTAL`, and the walk stops after `MAX_SECONDS`.

>>> consts = ConstantGraph(model.graph, model.opset_import, declared, label)   # doctest: +SKIP
>>> consts.value("w1")                                                         # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mofn2logic.errors import UnsupportedModelError
from mofn2logic.onnx.load import one_line

MAX_ELEMENTS = 1 << 28  # one constant tensor (1 GiB of float32)
MAX_TOTAL = 1 << 29  # every constant evaluated for one import together
MAX_MACS = 1 << 32  # multiply-adds of one MatMul/Gemm in a constant subgraph
MAX_SECONDS = 60.0

CONTROL_FLOW = frozenset({"Loop", "If", "Scan", "SequenceMap"})
RANDOM = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli"})
# Output no larger than the inputs together (NonZero: rank times that).
PRESERVING = frozenset({
    "Identity", "Cast", "CastLike", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Slice", "Split",
    "Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Floor", "Ceil", "Round", "Sign", "Not", "Relu", "LeakyRelu",
    "Sigmoid", "Tanh", "Erf", "Softmax", "LogSoftmax", "Clip", "IsNaN", "IsInf", "Dropout", "DequantizeLinear",
    "QuantizeLinear", "EyeLike", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceSumSquare", "ArgMax", "ArgMin", "Shape", "Size", "BatchNormalization", "NonZero",
    "GatherElements",
})
BROADCAST = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
    "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "BitShift", "PRelu",
})
SPECIAL = frozenset({"Constant", "ConstantOfShape", "Expand", "Tile", "Range", "Concat", "Pad", "Gather",
                     "MatMul", "Gemm"})
FOLDABLE = PRESERVING | BROADCAST | SPECIAL


def subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs (If branches, Loop/Scan bodies) read from the enclosing scope."""
    names: set[str] = set()
    for a in node.attribute:
        graphs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for g in graphs:
            defined = {i.name for i in g.input} | {t.name for t in g.initializer}
            defined |= {s.values.name for s in g.sparse_initializer}
            for n in g.node:
                for name in (*n.input, *subgraph_inputs(n)):
                    if name and name not in defined:
                        names.add(name)
                defined.update(n.output)
    return names


def tensor_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    """A TensorProto as an array, its declared size checked before anything is allocated."""
    size = _prod(int(d) for d in t.dims)
    if any(d < 0 for d in t.dims) or size > MAX_ELEMENTS:
        raise UnsupportedModelError(f"{what} declares shape {tuple(t.dims)} ({size} values); expected "
                                    f"non-negative dimensions and at most {MAX_ELEMENTS} values")
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # wrong byte count, unknown data type
        raise UnsupportedModelError(f"{what} (shape {tuple(t.dims)}, data type {t.data_type}) does not hold "
                                    f"its declared values: {one_line(e)}") from e


def sparse_array(s: onnx.SparseTensorProto, what: str) -> np.ndarray:
    """A SparseTensorProto made dense (indices: linear (NNZ,) or per axis (NNZ, rank))."""
    dims = tuple(int(d) for d in s.dims)
    size = _prod(dims)
    if any(d < 0 for d in dims) or size > MAX_ELEMENTS:
        raise UnsupportedModelError(f"{what} declares dense shape {dims} ({size} values); expected "
                                    f"non-negative dimensions and at most {MAX_ELEMENTS} values")
    values = tensor_array(s.values, what).reshape(-1)
    idx = tensor_array(s.indices, what).astype(np.int64)
    dense = np.zeros(size, values.dtype)
    if idx.ndim == 2 and idx.shape == (len(values), len(dims)):
        bad = (idx < 0) | (idx >= np.asarray(dims, np.int64))
        if bad.any():
            raise UnsupportedModelError(f"{what} has indices outside its shape {dims}")
        flat = np.ravel_multi_index(tuple(idx.T), dims) if len(values) else np.zeros(0, np.int64)
    elif idx.ndim == 1 and len(idx) == len(values):
        if len(idx) and (idx.min() < 0 or idx.max() >= size):
            raise UnsupportedModelError(f"{what} has indices outside its {size} values")
        flat = idx
    else:
        raise UnsupportedModelError(f"{what} has {len(values)} values but indices of shape {idx.shape}")
    dense[flat] = values
    return dense.reshape(dims)


class ConstantGraph:
    """The constant part of one graph: classified at once, evaluated on demand (module docstring).

    `declared(name)` gives a tensor's declared or inferred shape (None where unknown); `label(node)`
    names a node in messages.
    """

    def __init__(self, graph: onnx.GraphProto, opset_imports: Iterable[onnx.OperatorSetIdProto],
                 declared: Callable[[str], Sequence[int | None] | None],
                 label: Callable[[onnx.NodeProto], str]) -> None:
        self._opsets = list(opset_imports)
        self._declared = declared
        self._label = label
        self._inits = {t.name: t for t in graph.initializer}
        self._sparse = {s.values.name: s for s in graph.sparse_initializer}
        self._producer: dict[str, onnx.NodeProto] = {}
        self.values: dict[str, np.ndarray] = {}
        const: set[str] = set(self._inits) | set(self._sparse)
        shape_only: set[str] = set()  # computed from shapes only (Shape -> Gather -> Concat)
        self.data_nodes: list[onnx.NodeProto] = []
        for node in graph.node:
            ins = [i for i in node.input if i] + sorted(subgraph_inputs(node))
            outs = [o for o in node.output if o]
            for o in outs:
                self._producer[o] = node
            if all(i in const for i in ins):
                const.update(outs)
            elif node.op_type == "Shape" or all(i in const or i in shape_only for i in ins):
                shape_only.update(outs)
            else:
                self.data_nodes.append(node)
        self.constant = frozenset(const)
        self.shape_only = frozenset(shape_only)
        self._spent = 0
        self._deadline = 0.0

    def is_constant(self, name: str) -> bool:
        return name in self.constant

    def is_data(self, name: str) -> bool:
        return bool(name) and name not in self.constant and name not in self.shape_only

    def value(self, name: str, reader: str) -> np.ndarray:
        """The value of constant tensor `name`, which `reader` (for messages) needs."""
        if name in self.values or name in self._inits or name in self._sparse:
            return self._stored(name)
        plan = self._plan(name)
        self._check_plan(plan, name, reader)
        self._deadline = time.monotonic() + MAX_SECONDS
        for node in plan:
            self._run(node, name, reader)
        return self.values[name]

    def _stored(self, name: str) -> np.ndarray:
        """An evaluated constant or an initializer (converted once)."""
        if name not in self.values:
            if name in self._inits:
                self.values[name] = tensor_array(self._inits[name], f"initializer {name!r}")
            else:
                self.values[name] = sparse_array(self._sparse[name], f"sparse initializer {name!r}")
        return self.values[name]

    # --------------------------------------------------------------------------- planning

    def _plan(self, name: str) -> list[onnx.NodeProto]:
        """The nodes that compute `name` and are not evaluated yet, in an order that runs."""
        order: list[onnx.NodeProto] = []
        seen: set[int] = set()
        stack: list[tuple[onnx.NodeProto, bool]] = [(self._producer[name], False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for i in (*node.input, *sorted(subgraph_inputs(node))):
                if i and i not in self.values and i in self._producer and id(self._producer[i]) not in seen:
                    stack.append((self._producer[i], False))
        return order

    def _check_plan(self, plan: list[onnx.NodeProto], name: str, reader: str) -> None:
        for node in plan:
            op, at = node.op_type, f"node {self._label(node)}"
            why = f"it computes {name!r}, which {reader} reads"
            if node.domain not in ("", "ai.onnx"):
                raise UnsupportedModelError(f"{at} is an op of domain {node.domain!r} and {why}; "
                                            "constant subgraphs may use the default ONNX domain only")
            if op in CONTROL_FLOW:
                raise UnsupportedModelError(f"{at} is control flow and {why}; constant subgraphs with "
                                            "Loop, If or Scan are refused: their cost is unknown until they run")
            if op in RANDOM:
                raise UnsupportedModelError(f"{at} draws random numbers and {why}; weights must be fixed")
            if op not in FOLDABLE:
                raise UnsupportedModelError(f"{at} has op type {op!r} and {why}; constant subgraphs may use "
                                            f"{', '.join(sorted(FOLDABLE))}")
            for o in node.output:
                shape = self._declared(o) if o else None
                known = [int(d) for d in shape if d is not None] if shape is not None else []
                if shape is not None and len(known) == len(shape):
                    size = _prod(known)
                    if size > MAX_ELEMENTS:
                        raise UnsupportedModelError(
                            f"{at} produces {o!r} of shape {tuple(shape)} ({size} values) and {why}; "
                            f"a constant may hold at most {MAX_ELEMENTS} values")

    # --------------------------------------------------------------------------- running

    def _run(self, node: onnx.NodeProto, name: str, reader: str) -> None:
        at = f"node {self._label(node)}"
        if time.monotonic() > self._deadline:
            raise UnsupportedModelError(f"evaluating the constants {reader} reads took over {MAX_SECONDS:g} s "
                                        f"(stopped before {at})")
        if node.op_type == "Constant":
            outs = [self._constant_node(node, at)]
        else:
            ins = [self._stored(i) if i else None for i in node.input]
            bound = self._bound(node, ins, at)
            if bound > MAX_ELEMENTS:
                raise UnsupportedModelError(
                    f"{at} would produce {bound} values computing {name!r} for {reader}; "
                    f"a constant may hold at most {MAX_ELEMENTS} values")
            if self._spent + bound > MAX_TOTAL:
                raise UnsupportedModelError(
                    f"{at}: the constants {reader} reads would hold over {MAX_TOTAL} values together")
            outs = self._evaluate(node, ins, at)
        for o, v in zip(node.output, outs):
            if o:
                v = np.asarray(v)
                self._spent += v.size
                self.values[o] = v

    def _constant_node(self, node: onnx.NodeProto, at: str) -> np.ndarray:
        for a in node.attribute:
            if a.name == "value":
                return tensor_array(a.t, f"{at}'s value")
            if a.name == "sparse_value":
                return sparse_array(a.sparse_tensor, f"{at}'s sparse value")
            if a.name in ("value_float", "value_int"):
                return np.asarray(helper.get_attribute_value(a),
                                  dtype=np.float32 if a.name == "value_float" else np.int64)
            if a.name in ("value_floats", "value_ints"):
                return np.asarray(list(helper.get_attribute_value(a)),
                                  dtype=np.float32 if a.name == "value_floats" else np.int64)
            if a.name in ("value_string", "value_strings"):
                return np.asarray(helper.get_attribute_value(a), dtype=object)
        raise UnsupportedModelError(f"{at} is a Constant without a value")

    def _evaluate(self, node: onnx.NodeProto, ins: list[np.ndarray | None], at: str) -> list[np.ndarray]:
        from onnx.reference import ReferenceEvaluator

        feeds, inputs = {}, []
        for i, v in zip(node.input, ins):
            if i and v is not None and i not in feeds:
                feeds[i] = v
                inputs.append(helper.make_tensor_value_info(i, _elem_type(v), v.shape))
        graph = helper.make_graph([node], "constant", inputs,
                                  [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
                                   for o in node.output if o])
        model = helper.make_model(graph, opset_imports=self._opsets)
        try:
            return list(ReferenceEvaluator(model).run(None, feeds))
        except Exception as e:
            raise UnsupportedModelError(f"could not evaluate {at} of the constant subgraph: {one_line(e)}") from e

    def _bound(self, node: onnx.NodeProto, given: list[np.ndarray | None], at: str) -> int:
        """An upper bound on the values `node`'s outputs hold, from its inputs' values."""
        op = node.op_type
        present = [v for v in given if v is not None]
        # A missing input where a formula needs one fails as an IndexError or AttributeError below.
        ins: list[np.ndarray] = [v if v is not None else np.zeros(0) for v in given]
        sizes = [int(v.size) for v in present]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        try:
            if op in PRESERVING:
                total = sum(sizes) or 1
                return total * max((v.ndim for v in present), default=1) if op == "NonZero" else total
            if op in BROADCAST:
                return _prod(np.broadcast_shapes(*(v.shape for v in present)))
            if op == "ConstantOfShape":
                dims = _ints(ins[0]) if ins and ins[0] is not None else []
                if any(d < 0 for d in dims):
                    raise ValueError(f"negative shape {dims}")
                return _prod(dims)
            if op == "Expand":
                target = _ints(ins[1])
                if any(d < 0 for d in target):
                    raise ValueError(f"negative shape {target}")
                return _prod(_broadcast(ins[0].shape, target))
            if op == "Tile":
                reps = _ints(ins[1])
                if len(reps) != ins[0].ndim or any(r < 0 for r in reps):
                    raise ValueError(f"repeats {reps} for a {ins[0].ndim}-D input")
                return _prod(d * r for d, r in zip(ins[0].shape, reps))
            if op == "Range":
                start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in ins[:3])
                if delta == 0 or not all(math.isfinite(x) for x in (start, limit, delta)):
                    raise ValueError(f"start {start}, limit {limit}, delta {delta}")
                return max(math.ceil((limit - start) / delta), 0)
            if op == "Concat":
                return sum(sizes)
            if op == "Pad":
                pads = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else list(attrs.get("pads", []))
                grow = sum(max(p, 0) for p in pads)
                return _prod(d + grow for d in ins[0].shape)
            if op == "Gather":
                axis = int(attrs.get("axis", 0)) % max(ins[0].ndim, 1)
                return _prod((*ins[0].shape[:axis], *ins[1].shape, *ins[0].shape[axis + 1:]))
            if op in ("MatMul", "Gemm"):
                a, b = ins[0], ins[1]
                if op == "Gemm":
                    m, k = a.shape[::-1] if attrs.get("transA", 0) else a.shape
                    n = b.shape[0] if attrs.get("transB", 0) else b.shape[-1]
                    out, macs = m * n, m * n * k
                else:
                    a2 = a.reshape(1, -1) if a.ndim == 1 else a
                    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
                    batch = _prod(_broadcast(a2.shape[:-2], tuple(b2.shape[:-2])))
                    out = batch * a2.shape[-2] * b2.shape[-1]
                    macs = out * a2.shape[-1]
                if macs > MAX_MACS:
                    raise UnsupportedModelError(f"{at} would take {macs} multiply-adds in the constant subgraph; "
                                                f"at most {MAX_MACS} are evaluated")
                return out
        except UnsupportedModelError:
            raise
        except (ValueError, TypeError, IndexError, AttributeError, ZeroDivisionError, OverflowError) as e:
            raise UnsupportedModelError(f"{at} cannot run on its constant inputs: {one_line(e)}") from e
        raise UnsupportedModelError(f"{at}: no size bound for op type {op!r}")  # FOLDABLE and this agree


def _prod(dims: Iterable[int]) -> int:
    """The product of Python integers (never overflows)."""
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _ints(v: np.ndarray | None) -> list[int]:
    if v is None:
        raise ValueError("a missing input")
    a = np.asarray(v)
    if a.dtype.kind not in "iub" or a.ndim > 1:
        raise ValueError(f"expected a 1-D integer tensor, got {a.dtype} of shape {a.shape}")
    return [int(x) for x in a.reshape(-1)]


def _broadcast(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    """numpy broadcasting of two shapes with Python integers (no int64 overflow)."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ValueError(f"shapes {a} and {b} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def _elem_type(v: np.ndarray) -> int:
    try:
        return helper.np_dtype_to_tensor_dtype(v.dtype)
    except Exception:
        return onnx.TensorProto.UNDEFINED

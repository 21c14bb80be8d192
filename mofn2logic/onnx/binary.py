"""A two-class classifier that outputs one sigmoid, read as a two-unit softmax layer.

skl2onnx writes a binary classifier's probabilities as ``Concat(1 - s, s)`` with ``s =
Sigmoid(z)`` and ``z = h @ W + b`` (one unit). Since ``softmax([0, z]) = softmax([-z/2, z/2]) =
[1 - sigmoid(z), sigmoid(z)]`` exactly, the last layer becomes ``h @ [-W/2 | W/2] + [-b/2, b/2]``
(two units) followed by ``Softmax`` -- the same probabilities, and a chain the importer reads, with
one rule per class. The logits are the symmetric ones, not ``[0, z]``: a unit with all-zero weights
has no literals (docs/method.md, section 2), so class 0 would get a constant rule; with ``-W/2`` it
reads the same inputs as class 1 with the opposite signs. Halving is exact in floating point, so the
argmax is the sign of ``z`` as before. The rewrite is made in the proto that onnxruntime runs, so
the harvest reads the new tensors.

>>> note = two_class_sigmoid(model)   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def two_class_sigmoid(model: onnx.ModelProto, output: str) -> str | None:
    """Rewrite ``Concat(1 - Sigmoid(z), Sigmoid(z))`` producing tensor `output`, where ``z`` is a
    one-unit ``MatMul`` + ``Add`` or ``Gemm`` of initializers, as a two-unit layer and ``Softmax``
    (in place). Returns a note for the user, or None (and changes nothing) when the pattern is absent."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output if o}
    inits = {t.name: t for t in g.initializer}
    readers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1

    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[name]) if name in inits else None

    cat = producer.get(output)
    if cat is None or cat.op_type != "Concat" or len(cat.input) != 2:
        return None
    axis = next((helper.get_attribute_value(a) for a in cat.attribute if a.name == "axis"), None)
    neg, s = cat.input
    sig, sub = producer.get(s), producer.get(neg)
    if axis not in (1, -1) or sig is None or sub is None or sig.op_type != "Sigmoid" or sub.op_type != "Sub":
        return None
    one = const(sub.input[0])
    if sub.input[1] != s or one is None or one.size != 1 or float(one.reshape(-1)[0]) != 1.0 or readers.get(s) != 2:
        return None
    z = sig.input[0]
    last = producer.get(z)
    if last is None or readers.get(z) != 1:
        return None
    if last.op_type == "Add" and producer.get(last.input[0]) is not None and producer[last.input[0]].op_type == "MatMul":
        mm, bias_name = producer[last.input[0]], last.input[1]
        w_name = mm.input[1]
        w, b = const(w_name), const(bias_name)
        if w is None or b is None or w.ndim != 2 or w.shape[1] != 1 or b.size != 1 or readers.get(mm.output[0]) != 1:
            return None
        w2 = np.concatenate([-w / 2, w / 2], axis=1)
        changed = [mm.output[0], z]
        mm.input[1] = _add(g, f"{w_name}__two_class", w2)
    elif last.op_type == "Gemm" and len(last.input) == 3:
        attrs = {a.name: helper.get_attribute_value(a) for a in last.attribute}
        w_name, bias_name = last.input[1], last.input[2]
        w, b = const(w_name), const(bias_name)
        if w is None or b is None or w.ndim != 2 or attrs.get("transA", 0) or b.size != 1:
            return None
        axis_w = 0 if attrs.get("transB", 0) else 1
        if w.shape[axis_w] != 1:
            return None
        w2 = np.concatenate([-w / 2, w / 2], axis=axis_w)
        changed = [z]
        last.input[1] = _add(g, f"{w_name}__two_class", w2)
    else:
        return None
    bias = np.concatenate([-b.reshape(1) / 2, b.reshape(1) / 2]).astype(b.dtype)
    bias_name_2 = _add(g, f"{bias_name}__two_class", bias)
    if last.op_type == "Add":
        last.input[1] = bias_name_2
    else:
        last.input[2] = bias_name_2
    # The sigmoid, 1 - s and the Concat give way to one Softmax over [-z/2, z/2].
    softmax = helper.make_node("Softmax", [z], [output], axis=1, name=cat.name or f"{output}__softmax")
    nodes = [n for n in g.node if n is not sig and n is not sub and n is not cat]
    at = nodes.index(last) + 1
    nodes.insert(at, softmax)
    del g.node[:]
    g.node.extend(nodes)
    # Shapes declared for the one-unit tensors no longer hold.
    keep = [vi for vi in g.value_info if vi.name not in changed and vi.name not in (s, neg)]
    del g.value_info[:]
    g.value_info.extend(keep)
    return (f"the output {output!r} is 1 - sigmoid(z), sigmoid(z) (a two-class classifier with one output unit); "
            "read as softmax([0, z]) = softmax([-z/2, z/2]), the same probabilities, with a rule per class over the "
            "same inputs")


def _add(g: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    taken = {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    g.initializer.append(numpy_helper.from_array(value, name))
    return name

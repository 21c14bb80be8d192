"""ONNX models for the tests, in the layouts of the exporters users bring.

torch (dynamo and legacy), tf2onnx/keras2onnx (NHWC + Transpose, MatMul + Add) and CNTK
(Conv + Add bias, Reshape with an initializer shape, MatMul + Add), built with onnx.helper.
Weights are seeded random numbers: the tests compare evaluations, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Pinned so the suite means the same with any onnx/onnxruntime pair the pins allow (onnxruntime
# 1.17, the oldest, runs IR version 9 and opset 20); torch exports are stamped after export.
OPSET = 17
TORCH_OPSET = OPSET
IR_VERSION = 8


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _model(nodes, inits, in_name, in_shape, out_name, out_shape, dtype=TensorProto.FLOAT, opset=OPSET, name="m"):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(in_name, dtype, in_shape)],
        [helper.make_tensor_value_info(out_name, dtype, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _t(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)


def tf2onnx_cnn(seed: int = 1) -> onnx.ModelProto:
    """Keras via tf2onnx: NHWC input, Transpose to NCHW, Conv, Transpose back, Reshape, MatMul+Add."""
    r = _rng(seed)
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["nchw"], perm=[0, 3, 1, 2], name="conv2d/transpose"),
        helper.make_node("Conv", ["nchw", "k1", "b1"], ["c1"], kernel_shape=[3, 3], auto_pad="SAME_UPPER", name="conv2d/Conv2D"),
        helper.make_node("Relu", ["c1"], ["r1"], name="conv2d/Relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="max_pooling2d/MaxPool"),
        helper.make_node("Transpose", ["p1"], ["nhwc"], perm=[0, 2, 3, 1], name="max_pooling2d/transpose"),
        helper.make_node("Reshape", ["nhwc", "flat_shape"], ["flat"], name="flatten/Reshape"),
        helper.make_node("MatMul", ["flat", "w1"], ["mm1"], name="dense/MatMul"),
        helper.make_node("Add", ["mm1", "bd1"], ["a1"], name="dense/BiasAdd"),
        helper.make_node("Relu", ["a1"], ["d1"], name="dense/Relu"),
        helper.make_node("Dropout", ["d1"], ["dr"], name="dropout/Identity"),
        helper.make_node("MatMul", ["dr", "w2"], ["mm2"], name="dense_1/MatMul"),
        helper.make_node("Add", ["mm2", "bd2"], ["a2"], name="dense_1/BiasAdd"),
        helper.make_node("Softmax", ["a2"], ["dense_1"], axis=-1, name="dense_1/Softmax"),
    ]
    inits = [
        _t("k1", r.normal(0, 0.5, (4, 1, 3, 3))), _t("b1", r.normal(0, 0.1, 4)),
        numpy_helper.from_array(np.array([-1, 4 * 4 * 4], np.int64), "flat_shape"),
        _t("w1", r.normal(0, 0.3, (64, 12))), _t("bd1", r.normal(0, 0.1, 12)),
        _t("w2", r.normal(0, 0.3, (12, 5))), _t("bd2", r.normal(0, 0.1, 5)),
    ]
    return _model(nodes, inits, "input_1", ["N", 8, 8, 1], "dense_1", ["N", 5], name="keras")


def cntk_cnn(seed: int = 2) -> onnx.ModelProto:
    """CNTK style: Conv without bias + Add of a (C,1,1) bias, weight from a Constant node,
    Reshape with an initializer shape, a weight that is a Reshape of an initializer, MatMul+Add."""
    r = _rng(seed)
    w_flat = r.normal(0, 0.3, 3 * 2 * 5 * 5 * 6 // 6 * 6).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["k1"], value=_t("k1v", r.normal(0, 0.5, (3, 2, 3, 3))), name="Parameter5"),
        helper.make_node("Conv", ["Input3", "k1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                         name="Convolution28"),
        helper.make_node("Add", ["c1", "b1"], ["c1b"], name="Plus30"),
        helper.make_node("Tanh", ["c1b"], ["t1"], name="Tanh32"),
        helper.make_node("AveragePool", ["t1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="Pooling66"),
        helper.make_node("Reshape", ["p1", "shape"], ["flat"], name="Times212_reshape0"),
        helper.make_node("Reshape", ["w1_raw", "w1_shape"], ["w1"], name="Times212_reshape1"),
        helper.make_node("MatMul", ["flat", "w1"], ["mm"], name="Times212"),
        helper.make_node("Add", ["mm", "b2"], ["Plus214_Output_0"], name="Plus214"),
    ]
    inits = [
        _t("b1", r.normal(0, 0.1, (3, 1, 1))),
        numpy_helper.from_array(np.array([1, 3 * 3 * 3], np.int64), "shape"),
        _t("w1_raw", w_flat[: 27 * 6]),
        numpy_helper.from_array(np.array([27, 6], np.int64), "w1_shape"),
        _t("b2", r.normal(0, 0.1, (1, 6))),
    ]
    return _model(nodes, inits, "Input3", [1, 2, 6, 6], "Plus214_Output_0", [1, 6], name="CNTKGraph")


def gemm_zoo(seed: int = 3, dtype=np.float32) -> onnx.ModelProto:
    """Gemm with transA/transB/alpha/beta, BatchNormalization folded after Gemm, the other activations,
    Identity and Flatten. float32 or float64."""
    r = _rng(seed)
    et = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["g1"], transB=1, alpha=0.7, beta=1.3, name="fc1"),
        helper.make_node("BatchNormalization", ["g1", "s", "bb", "mean", "var"], ["bn"], epsilon=1e-3, name="bn1"),
        helper.make_node("LeakyRelu", ["bn"], ["h1"], alpha=0.1, name="lrelu"),
        helper.make_node("Transpose", ["h1"], ["h1t"], perm=[1, 0], name="tr"),
        helper.make_node("Gemm", ["h1t", "w2", "b2"], ["g2"], transA=1, transB=0, name="fc2"),
        helper.make_node("Sigmoid", ["g2"], ["h2"], name="sig"),
        helper.make_node("Identity", ["h2"], ["h2i"], name="id"),
        helper.make_node("Gemm", ["h2i", "w3"], ["g3"], transB=1, name="fc3"),
        helper.make_node("LogSoftmax", ["g3"], ["y"], axis=1, name="logsoftmax"),
    ]
    inits = [
        _t("w1", r.normal(0, 0.5, (7, 12)), dtype), _t("b1", r.normal(0, 0.1, 7), dtype),
        _t("s", r.uniform(0.5, 1.5, 7), dtype), _t("bb", r.normal(0, 0.1, 7), dtype),
        _t("mean", r.normal(0, 0.1, 7), dtype), _t("var", r.uniform(0.5, 1.5, 7), dtype),
        _t("w2", r.normal(0, 0.5, (7, 6)), dtype), _t("b2", r.normal(0, 0.1, (1, 6)), dtype),
        _t("w3", r.normal(0, 0.5, (4, 6)), dtype),
    ]
    return _model(nodes, inits, "x", ["N", 3, 4], "y", ["N", 4], dtype=et, name="gemmzoo")


def conv_bn_gap(seed: int = 4) -> onnx.ModelProto:
    """Conv + BatchNormalization + Relu, strided/dilated Conv, GlobalAveragePool, Flatten, Gemm, Softmax."""
    r = _rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "k1", "kb1"], ["c1"], kernel_shape=[3, 3], pads=[1, 0, 1, 2], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "s", "bb", "mean", "var"], ["bn"], name="bn1"),
        helper.make_node("Relu", ["bn"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "k2"], ["c2"], kernel_shape=[3, 3], strides=[2, 1], dilations=[1, 2], name="conv2"),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sig2"),
        helper.make_node("GlobalAveragePool", ["s2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1, name="fc"),
        helper.make_node("Softmax", ["g"], ["y"], axis=1, name="softmax"),
    ]
    inits = [
        _t("k1", r.normal(0, 0.5, (4, 3, 3, 3))), _t("kb1", r.normal(0, 0.1, 4)),
        _t("s", r.uniform(0.5, 1.5, 4)), _t("bb", r.normal(0, 0.1, 4)),
        _t("mean", r.normal(0, 0.1, 4)), _t("var", r.uniform(0.5, 1.5, 4)),
        _t("k2", r.normal(0, 0.15, (5, 4, 3, 3))),
        _t("w", w_fc := r.normal(0, 8.0, (3, 5))), _t("b", -0.65 * w_fc.sum(1)),  # centre the logits
    ]
    return _model(nodes, inits, "x", ["N", 3, 9, 9], "y", ["N", 3], name="convbn")


def unsupported_op() -> onnx.ModelProto:
    r = _rng(5)
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, name="fc"),
        helper.make_node("Sin", ["g"], ["y"], name="weird_sin"),
    ]
    return _model(nodes, [_t("w", r.normal(0, 1, (3, 4)))], "x", ["N", 4], "y", ["N", 3])


def no_layer() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Softmax", ["r"], ["y"], axis=1)]
    return _model(nodes, [], "x", ["N", 4], "y", ["N", 4])


def branching() -> onnx.ModelProto:
    r = _rng(6)
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, name="fc"),
        helper.make_node("Relu", ["g"], ["a"], name="relu"),
        helper.make_node("Add", ["a", "g"], ["y"], name="residual"),
    ]
    return _model(nodes, [_t("w", r.normal(0, 1, (3, 4)))], "x", ["N", 4], "y", ["N", 3])


def torch_mlp_bn(path: Path, dynamo: bool) -> Path:
    """A torch MLP with BatchNorm1d and Tanh, exported by dynamo or the legacy exporter."""
    import torch
    from torch import nn

    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=1))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 1.5)
        net[1].weight.uniform_(0.5, 1.5)
    net.eval()
    x = torch.randn(2, 6)
    kw = ({"dynamic_shapes": {"input": {0: torch.export.Dim("batch", min=1)}}, "external_data": False}
          if dynamo else {"dynamic_axes": {"x": {0: "batch"}}})
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=dynamo,
                      opset_version=TORCH_OPSET, **kw)
    return pin_versions(path)


def torch_cnn(path: Path, dynamo: bool) -> Path:
    """A torch CNN with Conv2d + BatchNorm2d + ReLU, MaxPool, Flatten, Dropout, Linear, exported either way."""
    import torch
    from torch import nn

    torch.manual_seed(8)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6 * 2 * 2, 5), nn.Softmax(dim=1),
    )
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 1.5)
    net.eval()
    x = torch.randn(2, 1, 8, 8)
    kw = ({"dynamic_shapes": {"input": {0: torch.export.Dim("batch", min=1)}}, "external_data": False}
          if dynamo else {"dynamic_axes": {"x": {0: "batch"}}})
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=dynamo,
                      opset_version=TORCH_OPSET, **kw)
    return pin_versions(path)


def pin_versions(path: Path) -> Path:
    """A torch export stamped with IR_VERSION: torch writes the IR version of the installed onnx,
    which an older onnxruntime of the pins may not run (the graph uses nothing IR 8 lacks)."""
    model = onnx.load(str(path))
    model.ir_version = IR_VERSION
    onnx.save(model, str(path))
    return path


def torch_branchy(path: Path, dynamo: bool, x=None, y=None, epochs: int = 3) -> Path:
    """A small ResNet/Inception-style CNN for 8x8 digits: a stem conv with BatchNorm, a residual
    block (two convs and a skip Add), an Inception block (1x1 and 3x3 convs, Concat), then MaxPool,
    Flatten, Linear 32 -> 16, ReLU, Linear 16 -> 10, Softmax. Trained for `epochs` passes (about a
    second) on `x` (N, 1, 8, 8) with labels `y` when given, then exported by dynamo or legacy."""
    import torch
    from torch import nn

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.res = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                     nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
            self.b1 = nn.Conv2d(8, 4, 1)
            self.b3 = nn.Conv2d(8, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(4)
            self.fc1 = nn.Linear(32, 16)
            self.fc2 = nn.Linear(16, 10)

        def forward(self, x):
            h = self.stem(x)
            h = torch.relu(h + self.res(h))
            h = torch.cat([torch.relu(self.b1(h)), torch.relu(self.b3(h))], dim=1)
            h = torch.flatten(self.pool(h), 1)
            return torch.softmax(self.fc2(torch.relu(self.fc1(h))), dim=1)

    torch.manual_seed(3)
    net = Branchy()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small trains several times faster on one thread (no contention)
    try:
        _train(net, x, y, epochs)
    finally:
        torch.set_num_threads(threads)
    net.eval()
    example = torch.zeros(2, 1, 8, 8)
    kw = ({"dynamic_shapes": {"x": {0: torch.export.Dim("batch", min=1)}}, "external_data": False}
          if dynamo else {"dynamic_axes": {"x": {0: "batch"}}})
    torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["y"], dynamo=dynamo,
                      opset_version=TORCH_OPSET, **kw)
    return pin_versions(path)


def _train(net, x, y, epochs: int) -> None:
    """A few passes of Adam (batches of 128) on probabilities `net` outputs."""
    import torch
    from torch import nn

    if x is not None and y is not None:
        xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(0)
        net.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(xt), generator=gen).split(128):
                opt.zero_grad()
                loss = nn.functional.nll_loss(torch.log(net(xt[idx]) + 1e-9), yt[idx])
                loss.backward()
                opt.step()


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def save_external(model: onnx.ModelProto, path: Path, location: str = "weights.bin") -> Path:
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=location, size_threshold=0)
    return path


def sample_input(model: onnx.ModelProto, n: int = 16, seed: int = 0) -> np.ndarray:
    """Random data fitting the model's input (open dims become `n` for the batch)."""
    vi = model.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else n for d in vi.type.tensor_type.shape.dim]
    dtype = np.float64 if vi.type.tensor_type.elem_type == TensorProto.DOUBLE else np.float32
    return _rng(seed).normal(0, 1, dims).astype(dtype)


def save_external_outside(model: onnx.ModelProto, folder: Path) -> Path:
    """A model in `folder` whose external data lies in the folder above (onnx.save refuses '..')."""
    folder.mkdir(parents=True, exist_ok=True)
    save_external(model, folder / "model.onnx")
    (folder / "weights.bin").rename(folder.parent / "weights.bin")
    m = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    (folder / "model.onnx").write_bytes(m.SerializeToString())
    return folder / "model.onnx"


# --------------------------------------------------------------------------- hostile-input builders
# For tests/test_hostile_onnx.py. Nothing here runs the checker: these models are meant to be wrong.
# IR version and opset are pinned, so the suite means the same with any onnx/onnxruntime pair.

HOSTILE_IR = IR_VERSION


def vinfo(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def raw_model(nodes, inits=(), inputs=None, outputs=None, *, opset=17, ir_version=HOSTILE_IR, value_info=(),
              sparse=(), name="hostile") -> onnx.ModelProto:
    """A model as given, unchecked. Inputs/outputs default to x (N, 4) and y (N, 3), float32."""
    graph = helper.make_graph(
        list(nodes), name,
        [vinfo("x", ["N", 4])] if inputs is None else list(inputs),
        [vinfo("y", ["N", 3])] if outputs is None else list(outputs),
        initializer=list(inits), value_info=list(value_info), sparse_initializer=list(sparse),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests")
    model.ir_version = ir_version
    return model


def mlp_parts(names=("fc1", "relu1", "fc2", "softmax"), tensors=("h", "a", "g"), seed: int = 9):
    """Nodes and initializers of x (N, 4) -> Gemm 5 -> Relu -> Gemm 3 -> Softmax -> y (N, 3),
    with the given node names and hidden tensor names, to be changed by a test."""
    r = _rng(seed)
    h, a, g = tensors
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], [h], transB=1, name=names[0]),
        helper.make_node("Relu", [h], [a], name=names[1]),
        helper.make_node("Gemm", [a, "w2", "b2"], [g], transB=1, name=names[2]),
        helper.make_node("Softmax", [g], ["y"], axis=1, name=names[3]),
    ]
    inits = [_t("w1", r.normal(0, 1, (5, 4))), _t("b1", r.normal(0, 0.1, 5)),
             _t("w2", r.normal(0, 1, (3, 5))), _t("b2", r.normal(0, 0.1, 3))]
    return nodes, inits


def mlp(**kw) -> onnx.ModelProto:
    """The `mlp_parts` model, valid (checked)."""
    nodes, inits = mlp_parts(**{k: v for k, v in kw.items() if k in ("names", "tensors", "seed")})
    model = raw_model(nodes, inits, **{k: v for k, v in kw.items() if k in ("opset", "ir_version")})
    onnx.checker.check_model(model)
    return model


def external(tensor: onnx.TensorProto, location: str, offset: int | None = None, length: int | None = None):
    """Point `tensor` at external data (its own bytes dropped)."""
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
    return tensor


def write_raw(model: onnx.ModelProto, path: Path) -> Path:
    """Serialize as is (onnx.save would check or rewrite external data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path

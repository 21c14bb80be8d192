"""Hostile and broken ONNX input through the real command line (in process).

Each refused model must give exit status 2 and exactly one line on stderr (the fd, so
onnxruntime's C++ log would show too) that starts with `mofn2logic <command>: error:` and says
what was expected and what arrived; no traceback, no warning, nothing on stdout, no output file
or folder left. Unused expensive nodes must not run, and legitimate odd names must work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_models as om
import pytest
from onnx import TensorProto, helper, numpy_helper

from mofn2logic.cli import main

COMMANDS = ("inspect", "extract", "run")


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], Path]  # writes the model under the folder given, returns its path
    pattern: str  # regex the message must match (after "error: ")
    commands: tuple[str, ...] = COMMANDS
    in_shape: tuple[int, ...] = (4,)
    dtype: type = np.float32
    # --from LAYER: what is not a chain before the last layer is a head by default (explained
    # after it, tests/test_onnx_head.py), and a refusal when the explained part must start before it
    start: str | None = None


def cli(capfd, *argv) -> tuple[int, str, str, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code
    out, err = capfd.readouterr()
    return code, out, err, list(caught)


def argv_for(command: str, model: Path, data: Path, out: Path, start: str | None = None) -> list[object]:
    given = ["--from", start] if start else []
    if command == "inspect":
        return ["inspect", model, *given]
    if command == "extract":
        return ["extract", model, "--data", data, "-o", out / "rules.json", "--device", "cpu", *given]
    return ["run", model, "--data", data, "-o", out / "run-out", "--device", "cpu", "--no-paper", *given]


def assert_refused(capfd, tmp_path: Path, command: str, model: Path, pattern: str, in_shape=(4,),
                   dtype=np.float32, start: str | None = None) -> str:
    data = tmp_path / "data" / "x.npy"
    data.parent.mkdir(exist_ok=True)
    np.save(data, np.random.default_rng(0).normal(size=(12, *in_shape)).astype(dtype))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    t0 = time.monotonic()
    code, stdout, stderr, caught = cli(capfd, *argv_for(command, model, data, out, start))
    assert time.monotonic() - t0 < 30
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), stderr
    prefix = f"mofn2logic {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert re.search(pattern, lines[0][len(prefix):]), lines[0]
    assert re.fullmatch(r"(== harvest: .*\n)?", stdout), stdout  # `run` announces its harvest
    assert not caught, [str(w.message) for w in caught]
    assert list(out.iterdir()) == []  # no rules.json, no run folder
    return lines[0]


# --------------------------------------------------------------------------- builders

def _save(model: onnx.ModelProto, d: Path, name: str = "m.onnx") -> Path:
    return om.write_raw(model, d / "model" / name)


def _mlp_with(d: Path, *, nodes=None, inits=None, edit=None, opset=17, **kw) -> Path:
    n, i = om.mlp_parts()
    if edit:
        n, i = edit(n, i)
    return _save(om.raw_model(nodes if nodes is not None else n, inits if inits is not None else i, opset=opset, **kw),
                 d)


def _t(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)


def _replace(nodes, k, node):
    nodes = list(nodes)
    nodes[k] = node
    return nodes


def missing(d):
    return d / "nope.onnx"


def folder(d):
    (d / "model.onnx").mkdir()
    return d / "model.onnx"


def empty(d):
    (d / "m.onnx").write_bytes(b"")
    return d / "m.onnx"


def random_bytes(d):
    (d / "m.onnx").write_bytes(np.random.default_rng(1).bytes(2048))
    return d / "m.onnx"


def truncated(d):
    blob = om.mlp().SerializeToString()
    (d / "m.onnx").write_bytes(blob[: len(blob) // 2])
    return d / "m.onnx"


def text_file(d):
    (d / "m.onnx").write_text("graph {\n  node { op_type: 'Relu' }\n}\nThis is not a model.\n")
    return d / "m.onnx"


def zero_nodes(d):
    return _save(om.raw_model([], []), d)


def no_output(d):
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, outputs=[]), d)


def two_inputs(d):
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, inputs=[om.vinfo("x", ["N", 4]), om.vinfo("x2", ["N", 4])]), d)


def int64_input(d):
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, inputs=[om.vinfo("x", ["N", 4], TensorProto.INT64)]), d)


def const_of_shape_used(d):
    """fc1's weight is ConstantOfShape([32768, 32768]): 2^30 values."""
    def edit(n, i):
        i = [t for t in i if t.name != "w1"] + [numpy_helper.from_array(np.array([32768, 32768], np.int64), "ws")]
        return [helper.make_node("ConstantOfShape", ["ws"], ["w1"], name="bomb",
                                 value=_t("v", [0.5])), *n], i
    return _mlp_with(d, edit=edit)


def tile_used(d):
    """fc1's weight is a Tile of a small constant by repeats only known once evaluated."""
    def edit(n, i):
        i = [t for t in i if t.name != "w1"] + [_t("w0", np.ones((5, 4))),
                                                 numpy_helper.from_array(np.array([1, 1 << 14], np.int64), "r0"),
                                                 numpy_helper.from_array(np.array([1, 1 << 14], np.int64), "r1")]
        return [helper.make_node("Mul", ["r0", "r1"], ["reps"], name="reps"),
                helper.make_node("Tile", ["w0", "reps"], ["w1"], name="tile_bomb"), *n], i
    return _mlp_with(d, edit=edit)


def loop_used(d):
    """fc1's bias comes out of a Loop: control flow in a constant subgraph."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body", [om.vinfo("i", [], TensorProto.INT64), om.vinfo("c_in", [], TensorProto.BOOL), om.vinfo("v_in", [5])],
        [om.vinfo("c_out", [], TensorProto.BOOL), om.vinfo("v_out", [5])], initializer=[_t("one", 1.0)])

    def edit(n, i):
        i = [t for t in i if t.name != "b1"] + [numpy_helper.from_array(np.array(10**12, np.int64), "M"),
                                                 _t("v0", np.zeros(5))]
        return [helper.make_node("Loop", ["M", "", "v0"], ["b1"], body=body, name="spin"), *n], i
    return _mlp_with(d, edit=edit)


def random_weight(d):
    def edit(n, i):
        i = [t for t in i if t.name != "w1"]
        return [helper.make_node("RandomNormal", [], ["w1"], shape=[5, 4], name="dice"), *n], i
    return _mlp_with(d, edit=edit)


def _external_folder(d):
    (d / "secret.bin").write_bytes(np.arange(20, dtype=np.float32).tobytes())
    (d / "model").mkdir()
    return d / "model"


def external_dotdot(d):
    _external_folder(d)
    n, i = om.mlp_parts()
    om.external(i[0], "../secret.bin", 0, 80)
    return _save(om.raw_model(n, i), d)


def external_symlink(d):
    m = _external_folder(d)
    os.symlink(d / "secret.bin", m / "weights.bin")
    n, i = om.mlp_parts()
    om.external(i[0], "weights.bin", 0, 80)
    return _save(om.raw_model(n, i), d)


def external_parent_symlink(d):
    m = _external_folder(d)
    os.symlink(d, m / "sub")
    n, i = om.mlp_parts()
    om.external(i[0], "sub/secret.bin", 0, 80)
    return _save(om.raw_model(n, i), d)


def external_in_if(d):
    """An unused If whose then-branch initializer reads ../secret.bin."""
    _external_folder(d)
    leak = om.external(_t("leak", np.zeros(20)), "../secret.bin", 0, 80)
    then = helper.make_graph([helper.make_node("Identity", ["leak"], ["o1"])], "then", [], [om.vinfo("o1", [20])],
                             initializer=[leak])
    other = helper.make_graph([helper.make_node("Identity", ["z"], ["o2"])], "else", [], [om.vinfo("o2", [20])],
                              initializer=[_t("z", np.zeros(20))])
    n, i = om.mlp_parts()
    n.append(helper.make_node("If", ["cond"], ["leaked"], then_branch=then, else_branch=other, name="sneak"))
    i.append(numpy_helper.from_array(np.array(True), "cond"))
    return _save(om.raw_model(n, i), d)


def external_in_attribute(d):
    """A Constant node inside a Loop body whose value tensor reads ../secret.bin."""
    _external_folder(d)
    leak = om.external(_t("leak", np.zeros(20)), "../secret.bin", 0, 80)
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Constant", [], ["k"], value=leak)],
        "body", [om.vinfo("i", [], TensorProto.INT64), om.vinfo("c_in", [], TensorProto.BOOL)],
        [om.vinfo("c_out", [], TensorProto.BOOL), om.vinfo("k", [20])])
    n, i = om.mlp_parts()
    n.append(helper.make_node("Loop", ["one", ""], ["ks"], body=body, name="sneak"))
    i.append(numpy_helper.from_array(np.array(1, np.int64), "one"))
    return _save(om.raw_model(n, i), d)


def sparse_external(d):
    _external_folder(d)
    values = om.external(_t("sp", np.zeros(3)), "../secret.bin", 0, 12)
    sparse = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([0, 5, 7], np.int64), "sp_i"), [4, 5])
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, sparse=[sparse]), d)


def external_past_end(d):
    m = _external_folder(d)
    (m / "w.bin").write_bytes(b"\0" * 16)
    n, i = om.mlp_parts()
    om.external(i[0], "w.bin", 8, 1 << 40)
    return _save(om.raw_model(n, i), d)


def ir_99(d):
    return _mlp_with(d, ir_version=99)


def opset_99(d):
    return _mlp_with(d, opset=99)


def opset_6(d):
    return _mlp_with(d, opset=6)


def branching(d):
    return _save(om.branching(), d)


def no_layer(d):
    return _save(om.no_layer(), d)


def einsum(d):
    return _mlp_with(d, edit=lambda n, i: (_replace(n, 1, helper.make_node("Einsum", ["h"], ["a"], equation="ij->ij",
                                                                          name="ein")), i))


def custom_domain_relu(d):
    def edit(n, i):
        return _replace(n, 1, helper.make_node("Relu", ["h"], ["a"], name="fake_relu", domain="evil.ops")), i
    m = om.raw_model(*edit(*om.mlp_parts()))
    m.opset_import.append(helper.make_opsetid("evil.ops", 1))
    return _save(m, d)


def activation_first(d):
    """A second activation after a layer's own (a Relu before the first layer is a head instead)."""
    n, i = om.mlp_parts()
    n = [*n[:2], helper.make_node("Relu", ["a"], ["a_r"], name="early"),
         helper.make_node("Gemm", ["a_r", "w2", "b2"], ["g"], transB=1, name="fc2"), n[3]]
    return _save(om.raw_model(n, i), d)


def flatten_axis0(d):
    n, i = om.mlp_parts()
    n = [*n[:3], helper.make_node("Flatten", ["g"], ["y"], axis=0, name="squash")]
    return _save(om.raw_model(n, i, outputs=[om.vinfo("y", [1, None])]), d)


def output_4d(d):
    n, i = om.mlp_parts()
    n = [*n, helper.make_node("Reshape", ["y"], ["y4"], name="to4d")]
    n[-1].input.append("s4")
    i.append(numpy_helper.from_array(np.array([-1, 3, 1, 1], np.int64), "s4"))
    return _save(om.raw_model(n, i, outputs=[om.vinfo("y4", ["N", 3, 1, 1])]), d)


def output_scalar(d):
    n, i = om.mlp_parts()
    n = [*n, helper.make_node("Reshape", ["y", "s0"], ["y0"], name="to_scalar")]
    i.append(numpy_helper.from_array(np.array([], np.int64), "s0"))
    return _save(om.raw_model(n, i, outputs=[om.vinfo("y0", [])]), d)


def one_class(d):
    def edit(n, i):
        r = np.random.default_rng(3)
        return n[:3], [*i[:2], _t("w2", r.normal(size=(1, 5))), _t("b2", [0.0])]
    nodes, inits = edit(*om.mlp_parts())
    nodes[-1].output[0] = "y"
    return _save(om.raw_model(nodes, inits, outputs=[om.vinfo("y", ["N", 1])]), d)


def one_class_undeclared(d):
    """The same, with the number of classes left open: inference or the layers' own shapes show it."""
    r = np.random.default_rng(3)
    nodes, inits = om.mlp_parts()
    nodes = nodes[:3]
    nodes[-1].output[0] = "y"
    inits = [*inits[:2], _t("w2", r.normal(size=(1, 5))), _t("b2", [0.0])]
    return _save(om.raw_model(nodes, inits, outputs=[om.vinfo("y", ["N", None])]), d)


def transpose_batch_out(d):
    n, i = om.mlp_parts()
    n = [*n, helper.make_node("Transpose", ["y"], ["yt"], perm=[1, 0], name="swap")]
    return _save(om.raw_model(n, i, outputs=[om.vinfo("yt", [3, "N"])]), d)


def reshape_mixes_batch(d):
    n, i = om.mlp_parts()
    n = [*n, helper.make_node("Reshape", ["y", "s"], ["yr"], name="mix")]
    i.append(numpy_helper.from_array(np.array([1, -1], np.int64), "s"))
    return _save(om.raw_model(n, i, outputs=[om.vinfo("yr", [1, None])]), d)


def huge_declared_dims(d):
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, inputs=[om.vinfo("x", ["N", 10**15, 10**15])]), d)


def huge_hidden_dims(d):
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, value_info=[om.vinfo("h", ["N", 4 * 10**18])]), d)


def negative_dim(d):
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, inputs=[om.vinfo("x", ["N", -4])]), d)


def huge_initializer(d):
    """An initializer that declares 10^30 values (dims 10^15 x 10^15) and holds none."""
    n, i = om.mlp_parts()
    w = TensorProto(name="w1", data_type=TensorProto.FLOAT, dims=[10**15, 10**15])
    return _save(om.raw_model(n, [w, *i[1:]]), d)


def nul_in_node_name(d):
    return _save(om.raw_model(*om.mlp_parts(names=("fc\x001", "relu1", "fc2", "softmax"))), d)


def bell_in_tensor_name(d):
    return _save(om.raw_model(*om.mlp_parts(tensors=("h\x07", "a", "g"))), d)


def escape_in_node_name(d):
    return _save(om.raw_model(*om.mlp_parts(names=("fc1", "\x1b[2Jrelu", "fc2", "softmax"))), d)


def invalid_utf8_name(d):
    blob = om.raw_model(*om.mlp_parts(names=("QQQQ", "relu1", "fc2", "softmax"))).SerializeToString()
    (d / "m.onnx").write_bytes(blob.replace(b"QQQQ", b"\xff\xfe\xed\xa0"))
    return d / "m.onnx"


def runtime_reshape(d):
    """A reshape whose target comes from Shape of the data, on a tensor whose size is open."""
    n, i = om.mlp_parts()
    n = [helper.make_node("Shape", ["x"], ["xs"], name="shape_of_x"),
         helper.make_node("Gather", ["xs", "one"], ["f"], axis=0, name="pick"),
         helper.make_node("Concat", ["minus1", "f"], ["tgt"], axis=0, name="target"),
         helper.make_node("Reshape", ["x", "tgt"], ["xr"], name="runtime_reshape"),
         helper.make_node("Gemm", ["xr", "w1", "b1"], ["h"], transB=1, name="fc1"), *n[1:]]
    i += [numpy_helper.from_array(np.array([1], np.int64), "one"),
          numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    return _save(om.raw_model(n, i, inputs=[om.vinfo("x", ["N", "F"])]), d)


def conv_same_unknown(d):
    r = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"], kernel_shape=[3, 3], auto_pad="SAME_UPPER", name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")]
    inits = [_t("k", r.normal(size=(2, 1, 3, 3))), _t("w", r.normal(size=(3, 2)))]
    return _save(om.raw_model(nodes, inits, inputs=[om.vinfo("x", ["N", 1, "H", "W"])]), d)


def gemm_trans_a(d):
    return _mlp_with(d, edit=lambda n, i: (_replace(n, 0, helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transA=1,
                                                                           transB=1, name="fc1")), i))


def weight_from_data(d):
    def edit(n, i):
        return [helper.make_node("Relu", ["x"], ["xw"], name="w_from_x"),
                helper.make_node("Gemm", ["x", "xw"], ["h"], transB=1, name="fc1"), *n[1:]], i
    return _mlp_with(d, edit=edit)


def maxpool_3d(d):
    r = np.random.default_rng(5)
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2, 2], name="pool3d"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")]
    return _save(om.raw_model(nodes, [_t("w", r.normal(size=(3, 8)))], inputs=[om.vinfo("x", ["N", 1, 4, 4, 4])]), d)


def negative_variance(d):
    def edit(n, i):
        bn = helper.make_node("BatchNormalization", ["h0", "s", "bb", "mu", "var"], ["h"], name="bn")
        n = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h0"], transB=1, name="fc1"), bn, *n[1:]]
        return n, [*i, _t("s", np.ones(5)), _t("bb", np.zeros(5)), _t("mu", np.zeros(5)),
                   _t("var", [1, 1, -3, 1, 1])]
    return _mlp_with(d, edit=edit)


def nan_weight(d):
    def edit(n, i):
        w = numpy_helper.to_array(i[2]).copy()
        w[1, 2] = np.nan
        return n, [i[0], i[1], _t("w2", w), i[3]]
    return _mlp_with(d, edit=edit)


def conv_bias_over_width(d):
    """Conv + Add of a 1-D (C,) constant: numpy broadcasting adds it along the width, not per channel."""
    r = np.random.default_rng(6)
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"], kernel_shape=[3, 3], name="conv"),
             helper.make_node("Add", ["c", "cb"], ["cc"], name="bias_w"),
             helper.make_node("Relu", ["cc"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")]
    inits = [_t("k", r.normal(size=(3, 1, 3, 3))), _t("cb", [0.1, 0.2, 0.3]), _t("w", r.normal(size=(3, 27)))]
    return _save(om.raw_model(nodes, inits, inputs=[om.vinfo("x", ["N", 1, 5, 5])]), d)


def dense_bias_per_sample(d):
    """MatMul + Add of a (5, 1) constant: broadcasting makes it a (5, 5) per-sample matrix."""
    def edit(n, i):
        n = [helper.make_node("MatMul", ["x", "w1t"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b1c"], ["h"], name="add"), *n[1:]]
        w = numpy_helper.to_array(i[0]).T.copy()
        return n, [_t("w1t", w), _t("b1c", np.ones((5, 1))), *i[2:]]
    return _mlp_with(d, edit=edit)


def lying_value_info(d):
    """value_info says the hidden layer has 7 units; the weights give 5."""
    n, i = om.mlp_parts()
    return _save(om.raw_model(n, i, value_info=[om.vinfo("a", ["N", 7])]), d)


def dropout_training(d):
    def edit(n, i):
        n = [*n[:1], helper.make_node("Dropout", ["h", "ratio", "train"], ["hd"], name="drop"),
             helper.make_node("Relu", ["hd"], ["a"], name="relu1"), *n[2:]]
        return n, [*i, _t("ratio", 0.5), numpy_helper.from_array(np.array(True), "train")]
    return _mlp_with(d, edit=edit)


def gemm_3d_weight(d):
    def edit(n, i):
        return n, [_t("w1", np.ones((5, 4, 1))), *i[1:]]
    return _mlp_with(d, edit=edit)


def pool_negative_pads(d):
    r = np.random.default_rng(7)
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[1, 1], pads=[-1, 0, 0, 0], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")]
    return _save(om.raw_model(nodes, [_t("w", r.normal(size=(3, 16)))], inputs=[om.vinfo("x", ["N", 1, 4, 4])]), d)


def conv_zero_stride(d):
    r = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"], kernel_shape=[3, 3], strides=[0, 1], name="conv0"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")]
    inits = [_t("k", r.normal(size=(2, 1, 3, 3))), _t("w", r.normal(size=(3, 18)))]
    return _save(om.raw_model(nodes, inits, inputs=[om.vinfo("x", ["N", 1, 5, 5])]), d)


def overflow(d):
    """Finite weights whose products overflow float32: onnxruntime computes Inf, then NaN."""
    n, i = om.mlp_parts()
    i[0] = _t("w1", np.full((5, 4), 1e30))
    i[2] = _t("w2", np.full((3, 5), 1e30))
    return _save(om.raw_model(n, i), d)


def float64_conv(d):
    """onnxruntime's CPU build has no float64 Conv: its error, in one line, nothing from its C++ log."""
    r = np.random.default_rng(9)
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"], kernel_shape=[3, 3], name="conv64"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")]
    inits = [_t("k", r.normal(size=(2, 1, 3, 3)), np.float64), _t("w", r.normal(size=(3, 18)), np.float64)]
    return _save(om.raw_model(nodes, inits, inputs=[om.vinfo("x", ["N", 1, 5, 5], TensorProto.DOUBLE)],
                              outputs=[om.vinfo("y", ["N", 3], TensorProto.DOUBLE)]), d)


IMPORT_EXPECT = r"the classifier's output must be \(batch, classes\) with classes >= 2"
CASES = [
    Case("missing_file", missing, r"model file '.*nope\.onnx' does not exist"),
    Case("folder", folder, r"'.*model\.onnx' is a folder; expected (an ONNX model file|a regular file)"),
    Case("empty_file", empty, r"is empty \(0 bytes\); expected an ONNX model"),
    Case("random_bytes", random_bytes, r"is not an ONNX model"),
    Case("truncated_protobuf", truncated, r"is not an ONNX model"),
    Case("text_file", text_file, r"is not an ONNX model"),
    Case("zero_nodes", zero_nodes, r"has no nodes; expected a classifier"),
    Case("no_graph_output", no_output, r"expected a model with one output tensor, got 0|is not a valid ONNX model"),
    Case("two_graph_inputs", two_inputs, r"expected a model with one input tensor, got 2: 'x', 'x2'"),
    Case("int64_input", int64_input, r"input 'x' has element type INT64; supported: FLOAT, DOUBLE"),
    Case("used_constant_of_shape_too_large", const_of_shape_used,
         r"'bomb' \(ConstantOfShape\) .*1073741824 values.* at most 268435456"),
    Case("used_tile_too_large", tile_used, r"'tile_bomb' \(Tile\) would produce 5368709120 values computing 'w1' "
                                           r"for node 'fc1' \(Gemm\); a constant may hold at most 268435456"),
    Case("loop_computes_a_bias", loop_used, r"'spin' \(Loop\) is control flow .*'b1', which node 'fc1'"),
    Case("random_weight", random_weight, r"'dice' \(RandomNormal\) draws random numbers"),
    Case("external_data_dotdot", external_dotdot, r"refers to external data '\.\./secret\.bin' outside the model's"),
    Case("external_data_symlink", external_symlink, r"refers to external data 'weights\.bin' outside the model's"),
    Case("external_data_parent_symlink", external_parent_symlink,
         r"refers to external data 'sub/secret\.bin' outside the model's"),
    Case("external_data_in_if_subgraph", external_in_if,
         r"tensor 'leak' \(initializer of graph 'then'\) refers to external data '\.\./secret\.bin' outside"),
    Case("external_data_in_loop_body_attribute", external_in_attribute,
         r"tensor 'leak' \(attribute of node .* in graph 'body'\) refers to external data '\.\./secret\.bin'"),
    Case("sparse_initializer_external", sparse_external,
         r"tensor 'sp' \(sparse initializer of graph 'hostile'\) refers to external data '\.\./secret\.bin'"),
    Case("external_data_past_end", external_past_end, r"reads bytes 8\.\.\d+ of '.*w\.bin', which holds 16 bytes"),
    Case("ir_version_99", ir_99, r"has IR version 99, newer than this installation supports: onnxruntime \S+ runs "
                                 r"up to IR version \d+ and opset \d+; onnx \S+ reads up to IR version \d+"),
    Case("opset_99", opset_99, r"uses opset 99 of the default ONNX domain, newer than this installation supports: "
                               r"onnxruntime \S+ runs up to IR version \d+ and opset \d+"),
    Case("opset_6", opset_6, r"uses opset 6 of the default ONNX domain; supported: opset 7 and later"),
    Case("branching_graph", branching, r"'residual' \(Add\) combines computed tensors 'a', 'g'"),
    Case("no_affine_layer", no_layer, r"no dense or conv layer \(Gemm, MatMul, Conv\)"),
    Case("unsupported_op_einsum", einsum, r"^--from 'fc1': the part from it to the output 'y' is not a chain of "
         r"layers: node 'ein' \(Einsum\) has op type 'Einsum'.*supported between input and output", start="fc1"),
    Case("op_from_another_domain", custom_domain_relu, r"'fake_relu' \(Relu\) is an op of domain 'evil\.ops'",
         start="fc1"),
    Case("activation_not_after_affine", activation_first,
         r"'early' \(Relu\) applies an activation that does not follow", start="fc1"),
    Case("flatten_axis0_output", flatten_axis0, r"'squash' \(Flatten\) flattens from axis 0, which mixes the samples "
                                                r"of a batch"),
    Case("output_4d", output_4d, r"output 'y4' has shape \(N, 3, 1, 1\); " + IMPORT_EXPECT),
    Case("output_scalar", output_scalar, r"output 'y0' has shape \(\); " + IMPORT_EXPECT),
    Case("output_one_class", one_class, r"output 'y' has shape \(N, 1\): 1 class; " + IMPORT_EXPECT),
    Case("output_one_class_undeclared", one_class_undeclared, r"(1 class|per-sample shape \(1,\)); " + IMPORT_EXPECT),
    Case("transpose_moves_batch", transpose_batch_out, r"'swap' \(Transpose\) moves the batch axis \(perm \[1, 0\]\)"),
    Case("reshape_mixes_batch", reshape_mixes_batch, r"'mix' \(Reshape\) reshapes to \[1, -1\], which does not keep "
                                                     r"the batch as the first axis"),
    Case("dims_1e30_input", huge_declared_dims, r"input 'x' declares shape \(N, 1000000000000000, 1000000000000000\): "
                                                r"1000000000000000000000000000000 values per sample; at most"),
    Case("dims_4e18_hidden", huge_hidden_dims, r"tensor '[ha]' declares shape \(N, 4000000000000000000\): "
                                               r"4000000000000000000 values per sample"),
    Case("negative_dim", negative_dim, r"input 'x' declares shape \(N, -4\); expected non-negative dimensions"),
    Case("initializer_1e30_values", huge_initializer, r"tensor 'w1' \(initializer of graph 'hostile'\) "
                                                      r"declares shape \(1000000000000000, 1000000000000000\) "
                                                      r"\(10{30} values\); expected .* fewer than"),
    Case("nul_in_node_name", nul_in_node_name, r"node #0 'fc\\x001' \(Gemm\) has a name with control character "
                                               r"U\+0000 at position 2"),
    Case("bell_in_tensor_name", bell_in_tensor_name, r"tensor 'h\\x07' .* control character U\+0007"),
    Case("escape_in_node_name", escape_in_node_name, r"node #1 '\\x1b\[2Jrelu' \(Relu\) .* U\+001B"),
    Case("invalid_utf8_name", invalid_utf8_name, r"node #0 .*has a name that is not valid UTF-8"),
    Case("reshape_to_runtime_shape", runtime_reshape, r"'runtime_reshape' \(Reshape\) reshapes to a shape computed "
                                                      r"at run time"),
    Case("conv_same_unknown_size", conv_same_unknown, r"'conv' \(Conv\): auto_pad=SAME_UPPER needs a known input "
                                                      r"size.*\(N, 1, H, W\)", in_shape=(1, 5, 5)),
    Case("gemm_transA_without_transpose", gemm_trans_a, r"'fc1' \(Gemm\) has transA=1 on data that is not"),
    Case("weight_from_data", weight_from_data, r"'fc1' \(Gemm\): its weight 'xw' is computed from the data",
         start="fc1"),
    Case("maxpool_3d", maxpool_3d, r"'pool3d' \(MaxPool\) pools over 3 axes; supported: 2-D", in_shape=(1, 4, 4, 4)),
    Case("batchnorm_negative_variance", negative_variance, r"'bn' \(BatchNormalization\): input_var \+ epsilon is "
                                                           r"not positive for 1 units"),
    Case("nan_weight", nan_weight, r"'fc2' \(Gemm\): weight B 'w2' holds 1 non-finite values"),
    Case("conv_bias_over_width", conv_bias_over_width, r"'bias_w' \(Add\): a bias of shape \(3,\) does not give one "
                                                       r"value per unit", in_shape=(1, 5, 5)),
    Case("dense_bias_per_sample", dense_bias_per_sample, r"'add' \(Add\): a bias of shape \(5, 1\) does not give"),
    Case("value_info_disagrees", lying_value_info, r"tensor 'a' is declared with per-sample shape \(7,\), but the "
                                                   r"layers before it compute \(5,\)"),
    Case("dropout_training_mode", dropout_training, r"'drop' \(Dropout\) is a Dropout in training mode"),
    Case("gemm_3d_weight", gemm_3d_weight, r"'fc1' \(Gemm\) has a weight of shape \(5, 4, 1\)"),
    Case("pool_negative_pads", pool_negative_pads, r"'pool' \(MaxPool\) has pads \[-1, 0, 0, 0\]; expected 4 whole "
                                                   r"numbers from 0", in_shape=(1, 4, 4)),
    Case("conv_zero_stride", conv_zero_stride, r"'conv0' \(Conv\) has strides \[0, 1\]; expected 2 whole numbers",
         in_shape=(1, 5, 5)),
    # the first non-finite tensor fetched: the logits 'g' where pre-activations are harvested, else the softmax 'y'
    Case("activations_overflow_at_harvest", overflow, r"onnxruntime computed \d+ non-finite values \(NaN or Inf\) "
                                                      r"in tensor '[gy]' on samples 0\.\.11", commands=("extract", "run")),
    Case("onnxruntime_cannot_run", float64_conv, r"onnxruntime cannot run this model: .*Conv",
         commands=("extract", "run"), in_shape=(1, 5, 5), dtype=np.float64),
]


def test_enough_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 35


@pytest.mark.parametrize("case, command", [pytest.param(c, cmd, id=f"{c.id}-{cmd}")
                                           for c in CASES for cmd in c.commands])
def test_refused_in_one_line(capfd, tmp_path, case, command):
    model = case.build(tmp_path)
    assert_refused(capfd, tmp_path, command, model, case.pattern, case.in_shape, case.dtype, case.start)


def test_external_data_outside_is_refused_by_the_api_too(tmp_path):
    from mofn2logic import import_network
    from mofn2logic.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match="outside the model's folder"):
        import_network(external_in_if(tmp_path))


# --------------------------------------------------------------------------- unused expensive nodes

def _unused_loop(d):
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body", [om.vinfo("i", [], TensorProto.INT64), om.vinfo("c_in", [], TensorProto.BOOL), om.vinfo("v_in", [])],
        [om.vinfo("c_out", [], TensorProto.BOOL), om.vinfo("v_out", [])], initializer=[_t("one", 1.0)])
    n, i = om.mlp_parts()
    n.insert(0, helper.make_node("Loop", ["M", "", "v0"], ["spun"], body=body, name="spin"))
    i += [numpy_helper.from_array(np.array(10**12, np.int64), "M"), _t("v0", 0.0)]
    return _save(om.raw_model(n, i, opset=16), d)


def _unused_constant_of_shape(d):
    n, i = om.mlp_parts()
    n.insert(0, helper.make_node("ConstantOfShape", ["s"], ["four_gib"], value=_t("v", [1.0]), name="bomb"))
    i.append(numpy_helper.from_array(np.array([1 << 30], np.int64), "s"))
    return _save(om.raw_model(n, i, opset=15), d)


@pytest.mark.parametrize("build", [_unused_loop, _unused_constant_of_shape], ids=["loop_1e12", "constant_of_shape_4gib"])
def test_unused_expensive_nodes_never_run(capfd, tmp_path, build):
    model = build(tmp_path)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32))
    for command in ("inspect", "extract"):
        out = tmp_path / command
        out.mkdir()
        t0 = time.monotonic()
        code, stdout, stderr, caught = cli(capfd, *argv_for(command, model, tmp_path / "x.npy", out))
        assert time.monotonic() - t0 < 20, command
        assert code == 0, stderr
        assert not caught and "Traceback" not in stderr
    rules = json.loads((tmp_path / "extract" / "rules.json").read_text())
    assert [la["name"] for la in rules["layers"]] == ["fc1", "fc2"]


# --------------------------------------------------------------------------- versions

def test_ir_version_newer_than_onnxruntime_is_stamped_down(capfd, tmp_path, monkeypatch):
    """A model stamped IR 8 where onnxruntime (pretend) runs IR 7 at most: nothing in it needs IR 8."""
    from mofn2logic.onnx import load

    monkeypatch.setattr(load, "KNOWN_RUNNABLE", (6, 20))
    monkeypatch.setattr(load, "runtime_limits", lambda: (7, 20))
    model = om.write_raw(om.mlp(), tmp_path / "m.onnx")
    assert onnx.load(str(model)).ir_version == 8
    assert load.load_onnx(model).ir_version == 7
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32))
    code, _, stderr, caught = cli(capfd, "extract", model, "--data", tmp_path / "x.npy", "-o", tmp_path / "r.json",
                                  "--device", "cpu")
    assert code == 0 and not caught, stderr


def test_ir_version_newer_than_onnxruntime_with_newer_types_is_refused(capfd, tmp_path, monkeypatch):
    from mofn2logic.onnx import load

    monkeypatch.setattr(load, "KNOWN_RUNNABLE", (6, 20))
    monkeypatch.setattr(load, "runtime_limits", lambda: (7, 20))
    n, i = om.mlp_parts()
    i.append(helper.make_tensor("f8", TensorProto.FLOAT8E4M3FN, [2], [1.0, 2.0]))
    model = _save(om.raw_model(n, i, ir_version=9), tmp_path)
    line = assert_refused(capfd, tmp_path, "inspect", model, r"has IR version 9, newer than this installation "
                          r"supports: .*the model uses element types FLOAT8E4M3FN that IR version 7 lacks")
    assert "onnxruntime" in line


def test_runtime_limits_are_real():
    import onnxruntime as ort

    from mofn2logic.onnx.load import runtime_limits

    ir, opset = runtime_limits()
    assert ir >= 9 and opset >= 20  # the pin: onnxruntime >= 1.17
    assert ort.__version__  # probed, not guessed from a table


# --------------------------------------------------------------------------- harvest checks the shapes it gets

def test_harvest_refuses_an_output_that_is_not_one_row_per_sample(tmp_path):
    """A network IR that does not match its proto (here the proto flattens the batch at the end):
    harvest checks every tensor's first dimension against the batch, not only the importer."""
    from mofn2logic import check_data, harvest, import_network
    from mofn2logic.errors import UnsupportedModelError

    net = import_network(om.mlp())
    n, i = om.mlp_parts()
    n = [*n[:3], helper.make_node("Softmax", ["g"], ["s"], axis=1, name="softmax"),
         helper.make_node("Flatten", ["s"], ["y"], axis=0, name="squash")]
    bad = om.raw_model(n, i, outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    x = check_data(np.random.default_rng(0).normal(size=(6, 4)), net.input_shape, net.dtype)
    with pytest.raises(UnsupportedModelError, match=r"tensor 'y' has shape \(1, 18\) on a batch of 6 samples"):
        harvest(net, bad, x)


# --------------------------------------------------------------------------- legitimate odd names

ODD_NAMES = ("$x^2$", "it's \"quoted\"", "a name with spaces", "ünïcødé ✓ 名前", "L" * 5000)


def test_odd_but_legitimate_names_import_extract_and_round_trip(capfd, tmp_path):
    from mofn2logic import api
    from mofn2logic.exporters import parse, to_text

    names = (ODD_NAMES[0], "tab\there", ODD_NAMES[4], ODD_NAMES[1])
    tensors = (ODD_NAMES[2], ODD_NAMES[3], "new\nline")
    model = om.write_raw(om.mlp(names=names, tensors=tensors), tmp_path / "model" / "m.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32))
    code, stdout, stderr, caught = cli(capfd, "inspect", model, "--json")
    assert code == 0 and not caught, stderr
    assert [la["name"] for la in json.loads(stdout)["layers"]] == [names[0], names[2]]
    out = tmp_path / "rules.json"
    code, stdout, stderr, caught = cli(capfd, "extract", model, "--data", tmp_path / "x.npy", "-o", out,
                                       "--device", "cpu")
    assert code == 0 and not caught, stderr
    rules = json.loads(out.read_text())
    assert [la["name"] for la in rules["layers"]] == [names[0], names[2]]
    program = api.compile(out)
    for fmt in ("mofn", "prolog"):
        assert parse(to_text(program, fmt), fmt) == program, fmt
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=to_text(program, "dot").encode(), capture_output=True,
                             timeout=60)
        assert svg.returncode == 0 and b"<svg" in svg.stdout, svg.stderr[:300]

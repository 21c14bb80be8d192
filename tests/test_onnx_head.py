"""The head of any classifier: a ResNet/Inception-style CNN (residual Add, Concat, BatchNorm)
trained briefly on the digits and exported by torch both ways; its layers after the last
branch are explained, the graph before the cut runs in onnxruntime only."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import onnx
import onnx_models
import onnxruntime as ort
import pytest
from conftest import require_tool

from mofn2logic import import_network
from mofn2logic.cli import main
from mofn2logic.inputs import load_dataset, load_model
from mofn2logic.onnx.harvest import harvest


def cli(capfd, *argv):
    with warnings.catch_warnings():
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture(scope="module", params=["legacy", "dynamo"])
def branchy(request, tmp_path_factory, digits):
    d = tmp_path_factory.mktemp(f"branchy_{request.param}")
    x, y = digits["images"], digits["labels"]
    train = ~digits["test"].astype(bool)
    path = onnx_models.torch_branchy(d / "branchy.onnx", request.param == "dynamo", x[train], y[train], epochs=3)
    test = digits["test"].astype(bool)
    np.save(d / "x.npy", x[test][:240].astype(np.float32))
    np.save(d / "y.npy", y[test][:240].astype(np.int64))
    return {"model": path, "x": d / "x.npy", "y": d / "y.npy", "dir": d, "kind": request.param}


def test_the_explained_part_starts_after_the_last_branch(branchy):
    model = onnx.load(str(branchy["model"]))
    ops = [n.op_type for n in model.graph.node]
    assert "Add" in ops and "Concat" in ops  # the skip connection and the Inception block
    assert model.ir_version == onnx_models.IR_VERSION
    with pytest.warns(UserWarning, match=r"explaining from layer .* the graph before it is not a chain .*"
                                         r"\(Add\) combines computed tensors"):
        net = import_network(branchy["model"])
    assert [(la.kind, la.activation, la.units) for la in net.layers] == [("dense", "relu", 16), ("dense", "softmax", 10)]
    assert net.head is not None and net.head.input == "x" and net.head.input_shape == (1, 8, 8)
    assert net.input == net.layers[0].input and net.input_shape == (32,)
    assert net.data_input == "x" and net.data_shape == (1, 8, 8)


def test_the_harvest_reads_the_cut_tensor_that_onnxruntime_computes(branchy):
    with pytest.warns(UserWarning):
        m = load_model(branchy["model"])
    data = load_dataset(branchy["x"], m)
    acts = harvest(m.network, m.proto, data.x)
    assert acts[m.network.input].shape == (len(data), 32)
    assert "x" not in acts  # the raw images are not a boundary tensor of the explained part
    sess = ort.InferenceSession(str(branchy["model"]), providers=["CPUExecutionProvider"])
    probs = sess.run(None, {"x": data.x})[0]
    np.testing.assert_allclose(acts[m.network.output], probs, rtol=1e-5, atol=1e-6)
    # the explained part recomputes the output from the cut tensor with the IR's weights
    fc1, fc2 = m.network.layers
    h = np.maximum(acts[m.network.input] @ fc1.weight.T + fc1.bias, 0)
    z = h @ fc2.weight.T + fc2.bias
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(1, keepdims=True), probs, rtol=1e-4, atol=1e-5)
    assert (probs.argmax(1) == np.load(branchy["y"])).mean() > 0.5  # trained, not random


def test_inspect_says_which_layers_are_explainable(capfd, branchy):
    code, out, err = cli(capfd, "inspect", branchy["model"])
    assert code == 0, err
    assert re.search(r"explained from '.*': the \d+ nodes before it \(from input 'x' \(1, 8, 8\)\) run in onnxruntime", out)
    rows = [line for line in out.splitlines() if line.startswith("  ") and "(Conv)" in line]
    assert len(rows) == 5 and all("not explainable" in r for r in rows), out  # stem, 2 residual, 2 inception
    assert any("combines computed tensors" in r for r in rows) and any("Concat" in r for r in rows)
    assert sum("(Gemm): explainable" in line for line in out.splitlines()) == 2
    code, out, _ = cli(capfd, "inspect", branchy["model"], "--json")
    doc = json.loads(out)
    assert doc["head"]["input"] == "x" and len(doc["graph_layers"]) == 7
    assert [r["status"] for r in doc["graph_layers"]][-2:] == ["explainable", "explainable"]


def test_from_a_layer_inside_the_head_is_one_line_naming_the_join(capfd, branchy, tmp_path):
    rows = json.loads(cli(capfd, "inspect", branchy["model"], "--json")[1])["graph_layers"]
    first_conv = rows[0]["name"]
    code, out, err = cli(capfd, "extract", branchy["model"], "--data", branchy["x"], "-o", tmp_path / "r.json",
                         "--from", first_conv)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert re.match(rf"mofn2logic extract: error: --from '{re.escape(first_conv)}': the part from it to the output "
                    r"'y' is not a chain of layers: .*(combines computed tensors|feeds 2 nodes)", err), err
    assert not (tmp_path / "r.json").exists()
    code, _, err = cli(capfd, "inspect", branchy["model"], "--from", "no_such_layer")
    assert code == 2 and "--from 'no_such_layer': the model has no layer of that name" in err


def test_extract_compile_verify_from_the_penultimate_and_the_softmax_layer(capfd, branchy, tmp_path):
    require_tool("swipl")
    rows = json.loads(cli(capfd, "inspect", branchy["model"], "--json")[1])["layers"]
    penultimate, softmax = rows[0]["name"], rows[1]["name"]
    rules = tmp_path / "rules.json"
    code, out, err = cli(capfd, "extract", branchy["model"], "--data", branchy["x"], "-o", rules, "--device", "cpu",
                         "--order", "weight", "--beta", "0,0.2")
    assert code == 0, err
    for cut in (penultimate, softmax):
        prog = tmp_path / f"{cut.replace('/', '_')}.mofn"
        code, _, err = cli(capfd, "compile", rules, "--cut", cut, "-o", prog)
        assert code == 0, err
        code, out, err = cli(capfd, "verify", prog, branchy["model"], "--data", branchy["x"], "--labels", branchy["y"],
                             "--engine", "all", "--json")
        assert code == 0, err
        rep = json.loads(out)
        assert rep["engines_agree"] is True, rep
        assert rep["fidelity"] > 0.3
    # --from the softmax layer: its input is the penultimate layer's output
    code, out, err = cli(capfd, "extract", branchy["model"], "--data", branchy["x"], "-o", tmp_path / "s.json",
                         "--device", "cpu", "--order", "weight", "--beta", "0", "--from", softmax)
    assert code == 0, err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert [la["name"] for la in doc["layers"]] == [softmax] and doc["layers"][0]["input_shape"] == [16]


def test_run_through_the_head_with_engines_agreeing(capfd, branchy, tmp_path):
    require_tool("swipl")
    out_dir = tmp_path / "run"
    code, out, err = cli(capfd, "run", branchy["model"], "--data", branchy["x"], "--labels", branchy["y"], "-o", out_dir,
                         "--device", "cpu", "--order", "weight", "--beta", "0,0.2", "--no-paper")
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    assert len(summary["checks"]) == 2
    assert re.findall(r"program verified: .* \((agree|DISAGREE)\)", out) == ["agree", "agree"], out


def test_an_integer_input_and_ops_mofn2logic_does_not_read_stay_in_the_head(tmp_path):
    """int64 data -> Cast -> Sin -> Gemm -> Relu -> Gemm -> Softmax: the head casts and applies Sin
    (no layer or step), the explained part is the two dense layers; the data are integers."""
    from onnx import TensorProto, helper

    nodes, inits = onnx_models.mlp_parts()
    nodes[0].input[0] = "s"
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Sin", ["xf"], ["s"], name="sin"), *nodes]
    model = onnx_models.raw_model(nodes, inits, inputs=[onnx_models.vinfo("x", ["N", 4], TensorProto.INT64)],
                                  ir_version=onnx_models.IR_VERSION)
    onnx.checker.check_model(model)
    path = onnx_models.save(model, tmp_path / "int.onnx")
    with pytest.warns(UserWarning, match=r"explaining from layer 'fc1' \(its input 's'\)"):
        m = load_model(path)
    assert m.network.head.dtype == np.int64 and m.network.dtype == np.float32
    assert [la.name for la in m.network.layers] == ["fc1", "fc2"]
    x = np.random.default_rng(0).integers(-5, 5, size=(20, 4))
    data = load_dataset(x, m)
    assert data.x.dtype == np.int64
    acts = harvest(m.network, m.proto, data.x)
    np.testing.assert_allclose(acts["s"], np.sin(x.astype(np.float32)), rtol=1e-6)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(acts["y"], sess.run(None, {"x": x})[0], rtol=1e-6)

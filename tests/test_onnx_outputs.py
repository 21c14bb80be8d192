"""Several graph outputs: skl2onnx classifiers (label + probabilities, with and without ZipMap),
a torch model with logits and probabilities, Keras through tf2onnx; `--graph-output` picks one."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx_models
import onnxruntime as ort
import pytest
from conftest import require_tool
from onnx import TensorProto, helper

from mofn2logic import import_network
from mofn2logic.cli import main
from mofn2logic.errors import UnsupportedModelError
from mofn2logic.inputs import load_dataset, load_model
from mofn2logic.onnx.harvest import harvest

DATA = Path(__file__).parent / "data"


def cli(capfd, *argv):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    out, err = capfd.readouterr()
    return code, out, err, caught


@pytest.fixture(scope="module")
def sklearn_mlp(tmp_path_factory, digits):
    """An sklearn MLPClassifier on the digits (64 features), exported by skl2onnx with ZipMap
    (label + a sequence of maps) and without (label + a probability tensor)."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    d = tmp_path_factory.mktemp("skl")
    x = digits["images"].reshape(len(digits["images"]), -1).astype(np.float32)
    y = digits["labels"].astype(np.int64)
    train = ~digits["test"].astype(bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations are enough here
        clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, random_state=0).fit(x[train], y[train])
    paths = {}
    for zipmap in (True, False):
        model = to_onnx(clf, x[:1], target_opset={"": onnx_models.OPSET, "ai.onnx.ml": 1},
                        options=None if zipmap else {"zipmap": False})
        model.ir_version = onnx_models.IR_VERSION
        paths[zipmap] = onnx_models.save(model, d / f"mlp_zipmap_{zipmap}.onnx")
    np.save(d / "x.npy", x[~train][:200])
    np.save(d / "y.npy", y[~train][:200])
    return {"paths": paths, "x": d / "x.npy", "y": d / "y.npy", "clf": clf}


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no_zipmap"])
def test_skl2onnx_mlp_imports_its_probabilities(sklearn_mlp, zipmap):
    path = sklearn_mlp["paths"][zipmap]
    outputs = [o.name for o in onnx.load(str(path)).graph.output]
    assert len(outputs) == 2  # the label and the probabilities
    with pytest.warns(UserWarning, match=r"the model has 2 outputs; explaining .* \(the probabilities; not "):
        m = load_model(path)
    net = m.network
    assert net.head is None and net.input == "X"
    assert [(la.kind, la.activation, la.units) for la in net.layers] == [("dense", "relu", 16), ("dense", "softmax", 10)]
    acts = harvest(net, m.proto, load_dataset(sklearn_mlp["x"], m).x)
    x = np.load(sklearn_mlp["x"])
    np.testing.assert_allclose(acts[net.output], sklearn_mlp["clf"].predict_proba(x), rtol=1e-4, atol=1e-5)


def test_skl2onnx_mlp_runs_with_engines_agreeing(capfd, sklearn_mlp, tmp_path):
    require_tool("swipl")
    out_dir = tmp_path / "run"
    code, out, err, _ = cli(capfd, "run", sklearn_mlp["paths"][True], "--data", sklearn_mlp["x"], "--labels",
                            sklearn_mlp["y"], "-o", out_dir, "--device", "cpu", "--order", "weight", "--beta", "0,0.2",
                            "--no-paper")
    assert code == 0, err
    assert re.findall(r"program verified: .* \((agree|DISAGREE)\)", out) == ["agree", "agree"], out
    assert "explaining 'out_activations_result' (the probabilities" in err  # the warning, one line on stderr


def two_outputs(names=("logits", "probs"), softmax_both=False) -> onnx.ModelProto:
    """x (N, 4) -> Gemm 5 -> Relu -> Gemm 3 = logits -> Softmax = probs; both graph outputs."""
    nodes, inits = onnx_models.mlp_parts(tensors=("h", "a", names[0]))
    nodes[-1] = helper.make_node("Softmax", [names[0]], [names[1]], axis=1, name="softmax")
    outputs = [onnx_models.vinfo(names[0], ["N", 3]), onnx_models.vinfo(names[1], ["N", 3])]
    if softmax_both:
        nodes.append(helper.make_node("Softmax", ["a"], ["other"], axis=1, name="softmax_hidden"))
        outputs.append(onnx_models.vinfo("other", ["N", 5]))
    model = onnx_models.raw_model(nodes, inits, outputs=outputs, ir_version=onnx_models.IR_VERSION)
    onnx.checker.check_model(model)
    return model


def test_logits_and_probabilities_default_to_the_probabilities(tmp_path, capfd):
    path = onnx_models.save(two_outputs(), tmp_path / "two.onnx")
    with pytest.warns(UserWarning, match=r"explaining 'probs' \(the probabilities; not 'logits'\); --graph-output"):
        net = import_network(path)
    assert net.output == "probs" and net.layers[-1].activation == "softmax"
    net = import_network(path, output="logits")
    assert net.output == "logits" and net.layers[-1].activation == "identity"
    code, out, err, _ = cli(capfd, "inspect", path, "--graph-output", "logits")
    assert code == 0 and "output 'logits'" in out, err
    code, out, err, _ = cli(capfd, "inspect", path, "--graph-output", "nope")
    assert code == 2 and len(err.splitlines()) == 1
    assert "the model has no tensor 'nope' to explain; its graph outputs: 'logits', 'probs'" in err


def test_ambiguous_outputs_are_one_line_naming_the_candidates(tmp_path, capfd):
    path = onnx_models.save(two_outputs(softmax_both=True), tmp_path / "three.onnx")
    with pytest.raises(UnsupportedModelError, match=r"3 outputs that could be the class vector \('logits', 'probs', 'other'\); "
                                                    r"--graph-output NAME says which"):
        import_network(path)
    assert import_network(path, output="probs").output == "probs"


def test_keras_through_tf2onnx(capfd, tmp_path):
    """A real tf2onnx export (tests/data/make_keras_tf2onnx.py): NHWC input and Transposes, the
    Flatten's shape computed from Shape/Gather/Slice/Concat, MatMul + Add, a named Softmax output,
    an `unk__` batch dimension. Its probabilities are the ones Keras computed."""
    path = DATA / "keras_tf2onnx.onnx"
    model = onnx.load(str(path))
    assert model.producer_name == "tf2onnx"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param.startswith("unk__")
    assert {"Transpose", "MatMul", "Add", "Shape", "Softmax"} <= {n.op_type for n in model.graph.node}
    m = load_model(path)
    assert [(la.kind, la.activation) for la in m.network.layers] == [("conv", "relu"), ("dense", "relu"),
                                                                     ("dense", "softmax")]
    x = np.load(DATA / "keras_tf2onnx.x.npy")
    acts = harvest(m.network, m.proto, load_dataset(x, m).x)
    np.testing.assert_allclose(acts["probs"], np.load(DATA / "keras_tf2onnx.probs.npy"), rtol=1e-4, atol=1e-6)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(acts["probs"], sess.run(None, {"input": x})[0], rtol=1e-6)
    code, out, err, _ = cli(capfd, "inspect", path, "--json")
    assert code == 0 and len(json.loads(out)["layers"]) == 3, err


def test_a_label_only_output_is_not_a_class_vector(tmp_path):
    nodes, inits = onnx_models.mlp_parts()
    nodes.append(helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0, name="argmax"))
    model = onnx_models.raw_model(nodes, inits, outputs=[onnx_models.vinfo("label", ["N"], TensorProto.INT64),
                                                         onnx_models.vinfo("y2", ["N", 3])],
                                  ir_version=onnx_models.IR_VERSION)
    model.graph.node.append(helper.make_node("Identity", ["y"], ["y2"], name="copy"))
    path = onnx_models.save(model, tmp_path / "label.onnx")
    with pytest.warns(UserWarning, match=r"explaining 'y2' \(the probabilities; not 'label'\)"):
        net = import_network(path)
    assert net.output == "y2"


def test_a_two_class_skl2onnx_mlp_is_read_as_a_two_unit_softmax(capfd, tmp_path):
    """Breast cancer (30 named features, 2 classes): skl2onnx writes Concat(1 - sigmoid(z), sigmoid(z));
    it is read as softmax([0, z]) (the same probabilities), and runs end to end from a CSV whose
    header names the features, with engines agreeing."""
    require_tool("swipl")
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier

    bc = load_breast_cancer()
    x, y = bc.data.astype(np.float32), bc.target.astype(np.int64)
    x = (x - x.mean(0)) / x.std(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0).fit(x, y)
    model = to_onnx(clf, x[:1], target_opset={"": onnx_models.OPSET, "ai.onnx.ml": 1})
    model.ir_version = onnx_models.IR_VERSION
    path = onnx_models.save(model, tmp_path / "bc.onnx")
    assert {"Sigmoid", "Sub", "Concat", "ZipMap"} <= {n.op_type for n in model.graph.node}
    with pytest.warns(UserWarning, match=r"is 1 - sigmoid\(z\), sigmoid\(z\) .* read as softmax\(\[0, z\]\)"):
        m = load_model(path)
    assert [(la.units, la.activation) for la in m.network.layers] == [(8, "relu"), (2, "softmax")]
    acts = harvest(m.network, m.proto, load_dataset(x, m).x)
    np.testing.assert_allclose(acts[m.network.output], clf.predict_proba(x), rtol=1e-4, atol=1e-5)
    assert onnx.load(str(path)).graph.node[-1].op_type == "Cast"  # the file itself is not changed
    csv = tmp_path / "bc.csv"
    names = [n.replace(" ", "_") for n in bc.feature_names]
    np.savetxt(csv, x[:300], delimiter=",", header=",".join(names), comments="", fmt="%.6f")
    np.save(tmp_path / "y.npy", y[:300])
    (tmp_path / "classes.txt").write_text("malignant\nbenign\n", encoding="utf-8")
    code, out, err, _ = cli(capfd, "run", path, "--data", csv, "--labels", tmp_path / "y.npy", "-o", tmp_path / "run",
                            "--device", "cpu", "--order", "weight", "--beta", "0,0.2", "--no-paper", "--class-names",
                            tmp_path / "classes.txt")
    assert code == 0, err
    assert re.findall(r"program verified: .* \((agree|DISAGREE)\)", out) == ["agree", "agree"], out
    rules = json.loads((tmp_path / "run" / "rules.json").read_text())
    assert rules["names"] == {"inputs": names, "classes": ["malignant", "benign"]}

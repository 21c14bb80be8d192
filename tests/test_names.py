"""Names of inputs, classes and hidden units: read from a CSV header or files, checked against
the network in one line, carried in the RuleSet and rules.json (old files still load)."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import onnx_models as om
import pytest
from conftest import require_tool

from mofn2logic.cli import main
from mofn2logic.engines import get_engine
from mofn2logic.errors import DataError, ProgramError
from mofn2logic.exporters import load_program
from mofn2logic.inputs import load_dataset, load_model, with_names
from mofn2logic.ir.names import Names, make_names, pixel_name
from mofn2logic.ir.program import Program
from mofn2logic.program.compile import compile_program
from mofn2logic.report.cards import rule_cards
from mofn2logic.search.rules_file import dumps, loads, read_rules

FEATURES = ["age", "income, net", "héight", "$x^2$"]  # a comma, non-ASCII, TeX: any text is a name


def cli(capfd, *argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture
def tabular(tmp_path):
    """The 4-feature, 3-class MLP of tests/onnx_models.py with a CSV of 40 samples whose header
    names the features (one name quoted: it holds a comma)."""
    model = om.save(om.mlp(), tmp_path / "mlp.onnx")
    x = np.random.default_rng(0).normal(size=(40, 4))
    header = ",".join(f'"{n}"' if "," in n else n for n in FEATURES)
    (tmp_path / "x.csv").write_text(header + "\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in x) + "\n",
                                    encoding="utf-8")
    return {"model": model, "csv": tmp_path / "x.csv", "dir": tmp_path}


def test_the_csv_header_names_the_inputs(tabular):
    m = load_model(tabular["model"])
    data = load_dataset(tabular["csv"], m)
    assert data.feature_names == tuple(FEATURES) and data.x.shape == (40, 4)
    named = with_names(m, data)
    assert named.names == Names(inputs=tuple(FEATURES), input_shape=(4,))
    assert named.names.input_name(1) == "income, net"


def test_extract_writes_the_names_into_rules_json_and_they_read_back(capfd, tabular):
    d = tabular["dir"]
    (d / "classes.txt").write_text("setosa\nversicolor\nvirginica\n", encoding="utf-8")
    (d / "units.json").write_text(json.dumps({"fc1": {"0": "big spender", "4": "young"}}), encoding="utf-8")
    code, out, err = cli(capfd, "extract", tabular["model"], "--data", tabular["csv"], "-o", d / "rules.json",
                         "--device", "cpu", "--order", "weight", "--beta", "0", "--class-names", d / "classes.txt",
                         "--names", d / "units.json")
    assert code == 0, err
    doc = json.loads((d / "rules.json").read_text(encoding="utf-8"))
    assert doc["names"] == {"inputs": FEATURES, "classes": ["setosa", "versicolor", "virginica"],
                            "units": {"fc1": {"0": "big spender", "4": "young"}}}
    rs = read_rules(d / "rules.json")
    assert rs.names.inputs == tuple(FEATURES) and rs.names.class_name(2) == "virginica"
    assert rs.names.unit_name("fc1", 4) == "young" and rs.names.unit_name("fc1", 1) is None
    assert loads(dumps(rs)) == rs  # the names round-trip, byte for byte through the writer
    assert dumps(loads(dumps(rs))) == dumps(rs)


def test_feature_names_from_a_file_override_the_header(capfd, tabular):
    d = tabular["dir"]
    (d / "f.json").write_text(json.dumps(["a", "b", "c", "d"]), encoding="utf-8")
    code, _, err = cli(capfd, "extract", tabular["model"], "--data", tabular["csv"], "-o", d / "r.json", "--device",
                       "cpu", "--order", "weight", "--beta", "0", "--feature-names", d / "f.json")
    assert code == 0, err
    assert json.loads((d / "r.json").read_text())["names"] == {"inputs": ["a", "b", "c", "d"]}


@pytest.mark.parametrize("files, pattern", [
    ({"--feature-names": "a\nb\nc\n"}, r"feature names '.*' give 3 names; the model's input 'x' has 4 values per sample"),
    ({"--feature-names": "a\nb\na\nc\n"}, r"name 'a' more than once; expected distinct names"),
    ({"--feature-names": '["a", 2, "c", "d"]'}, r"feature names #1 in '.*' is 2; expected a non-empty text"),
    ({"--feature-names": "a\nb\x1b[31m\nc\nd\n"}, r"holds control character U\+001B"),
    ({"--class-names": "one\ntwo\n"}, r"2 class names given; the model's output 'y' has 3 classes"),
    ({"--names": '{"fc9": {"0": "x"}}'}, r"unit names for layer 'fc9', which the explained part does not have; "
                                          r"it has 'fc1', 'fc2'"),
    ({"--names": '{"fc1": {"7": "x"}}'}, r"layer 'fc1' has units 0..4, not 7"),
    ({"--names": '{"fc1": {"one": "x"}}'}, r"layer 'fc1' has unit 'one'; expected unit numbers"),
    ({"--names": '["a"]'}, r"holds list; expected a JSON object"),
    ({"--names": '{"classes": ["a", "b"]}'}, r"2 class names given; the model's output 'y' has 3 classes"),
])
def test_names_that_do_not_fit_are_one_line(capfd, tabular, files, pattern):
    d = tabular["dir"]
    argv = []
    for flag, text in files.items():
        (d / "names.txt").write_text(text, encoding="utf-8")
        argv += [flag, d / "names.txt"]
    for command, out in (("extract", d / "r.json"), ("run", d / "run")):
        code, _, err = cli(capfd, command, tabular["model"], "--data", tabular["csv"], "-o", out, "--device", "cpu",
                           *argv)
        assert code == 2 and len(err.splitlines()) == 1, err
        assert re.search(pattern, err), err
        assert not out.exists()


def test_default_image_names_are_channel_aware():
    assert pixel_name((1, 8, 8), 0) == "pixel[0,0]" and pixel_name((1, 8, 8), 10) == "pixel[1,2]"
    assert pixel_name((3, 2, 2), 4 + 3) == "pixel[1,1,1]"
    assert pixel_name((16,), 3) is None and pixel_name((1, None, 8), 0) is None
    assert Names(input_shape=(1, 8, 8)).input_name(63) == "pixel[7,7]"
    assert Names(input_shape=(1, 8, 8)) and Names(input_shape=(1, 8, 8)).image  # an image is named by default
    assert not Names(input_shape=(30,))  # a vector of features has no default names


def test_input_names_need_the_explained_part_to_start_at_the_graph_input(tmp_path):
    nodes, inits = om.mlp_parts()
    net = load_model(om.save(om.mlp(), tmp_path / "m.onnx"), start="fc2").network
    assert net.head is not None and net.input == "a"
    with pytest.raises(DataError, match=r"name the model's input 'x', but the explained part starts at 'a'"):
        make_names(net, inputs=["a", "b", "c", "d"])
    assert make_names(net, classes=["p", "q", "r"]).classes == ("p", "q", "r")


def test_old_rules_files_load_without_names_and_bad_names_are_refused(default_rules):
    text = dumps(default_rules)
    assert '"names"' not in text and loads(text).names is None
    doc = json.loads(text)
    doc["names"] = {"classes": [str(k) for k in range(10)], "units": {doc["layers"][0]["name"]: {"3": "edge"}}}
    rs = loads(json.dumps(doc))
    assert rs.names.class_name(9) == "9" and rs.names.unit_name(doc["layers"][0]["name"], 3) == "edge"
    for bad, pattern in (({"inputs": "abc"}, r"names inputs is \"abc\""), ({"colours": []}, r"colours"),
                         ({"units": {"nope": {}}}, r"names units is \"nope\"; expected layers of the rule set"),
                         ({"classes": ["a\x00"]}, r"names classes #0 .*expected a non-empty name")):
        doc["names"] = bad
        with pytest.raises(ProgramError, match=pattern):
            loads(json.dumps(doc))


def test_names_flow_from_extract_through_compile_into_every_export(capfd, tabular):
    """Named features, units and classes: extract -> compile (at the inputs and at the later cut) ->
    every format; the readable ones read back the same program, the others show the names, and the
    engines decide the same with and without them."""
    d = tabular["dir"]
    (d / "classes.txt").write_text("setosa\nversicolor\nvirginica\n", encoding="utf-8")
    (d / "units.json").write_text(json.dumps({"fc1": {str(u): f"'unit' {u}\n" for u in range(5)}}), encoding="utf-8")
    code, _, err = cli(capfd, "extract", tabular["model"], "--data", tabular["csv"], "-o", d / "rules.json",
                       "--device", "cpu", "--order", "weight", "--beta", "0", "--class-names", d / "classes.txt",
                       "--names", d / "units.json")
    assert code == 0, err
    rs = read_rules(d / "rules.json")
    first = compile_program(rs)
    later = compile_program(rs, cut=rs.layers[1].name)
    # at the inputs: the features the tests read; at the later cut: fc1's units read as its inputs
    assert dict(first.names)[""] == tuple((i, FEATURES[i]) for i, _ in first.input.tests)
    assert dict(later.names)[""] == tuple((i, f"'unit' {i}\n") for i, _ in later.input.tests)
    for p in (first, later):
        assert dict(p.names)[p.output.name] == ((0, "setosa"), (1, "versicolor"), (2, "virginica"))
    x = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    for suffix in (".mofn", ".json", ".pl", ".py", ".dot"):
        out = d / f"program{suffix}"
        code, _, err = cli(capfd, "compile", d / "rules.json", "-o", out)
        assert code == 0, err
        text = out.read_text(encoding="utf-8")
        if suffix in (".mofn", ".json", ".pl"):
            assert load_program(out) == first
        assert "virginica" in text and any(f in text for f in FEATURES), suffix
    pl = (d / "program.pl").read_text(encoding="utf-8")
    assert re.search(r"^% 'setosa' :- at_least\(", pl, re.M) or re.search(r"^% 'versicolor' :- at_least\(", pl, re.M)
    cards = rule_cards(first)
    assert {c.head for c in cards if c.is_class} <= {"setosa", "versicolor", "virginica"}
    assert any(li.text.split(" >= ")[0] in FEATURES for c in cards for li in c.literals)
    require_tool("swipl")
    plain = Program(first.name, first.input, first.blocks, first.decision)
    ref = get_engine("python").run(plain, x).classes
    for engine in ("python", "sympy", "prolog"):
        np.testing.assert_array_equal(get_engine(engine).run(first, x).classes, ref, err_msg=engine)


def _image_mlp(tmp_path):
    """x (N, 1, 4, 4) -> Flatten -> Gemm 16x5 -> Relu -> Gemm 5x3 -> Softmax: a dense layer reading an image."""
    from onnx import helper

    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("Gemm", ["a", "w2", "b2"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    inits = [om._t("w1", rng.normal(size=(5, 16))), om._t("b1", rng.normal(size=5) * 0.1),
             om._t("w2", rng.normal(size=(3, 5)) * 3), om._t("b2", np.zeros(3))]
    model = om._model(nodes, inits, "x", ["N", 1, 4, 4], "y", ["N", 3])
    path = om.save(model, tmp_path / "image_mlp.onnx")
    data = tmp_path / "x.npy"
    np.save(data, rng.normal(size=(120, 1, 4, 4)).astype(np.float32))
    return path, data


def test_an_image_read_by_a_dense_layer_gets_pixel_names_by_default(capfd, tmp_path):
    """No names given: the inputs of an image are pixel[r,c] in rules.json (its shape), the programs
    and every readable format, also after rules.json is read back."""
    model, data = _image_mlp(tmp_path)
    assert load_model(model).names == Names(input_shape=(1, 4, 4))
    out = tmp_path / "rules.json"
    assert main(["extract", str(model), "--data", str(data), "-o", str(out), "--beta", "0"]) == 0
    capfd.readouterr()
    doc = json.loads(out.read_text())
    assert doc["names"] == {"image": [1, 4, 4]}
    rs = read_rules(out)
    assert dumps(rs) == out.read_text()  # the names section reads back as written
    program = compile_program(rs, cut=rs.layers[0].name, beta=0.0)
    labels = dict(dict(program.names)[""]) if program.names else {}
    assert labels and all(re.fullmatch(r"pixel\[\d,\d\]", n) for n in labels.values())
    assert all(labels[i] == pixel_name((1, 4, 4), i) for i in labels)
    for fmt in ("mofn", "prolog"):
        from mofn2logic.exporters import to_text

        text = to_text(program, fmt)
        assert "pixel[" in text
    # a rules.json with a malformed image shape is refused in one line
    bad = dict(doc, names={"image": [1, 4]})
    with pytest.raises(ProgramError, match=r"names image .* expected the shape"):
        loads(json.dumps(bad))


def test_a_tensor_after_a_head_gets_no_pixel_names(tmp_path):
    model = load_model(om.save(om.mlp(), tmp_path / "m.onnx"), start="fc2")
    assert model.names is None


def test_a_convolution_reading_the_image_gets_no_pixel_names(tmp_path):
    """Per-channel input tests name no pixel: the command line (with_names) and the library (load_model)
    agree, so rules.json is the same bytes either way."""
    m = load_model(om.save(om.conv_bn_gap(), tmp_path / "c.onnx"))
    assert m.network.layers[0].kind == "conv"
    assert m.names is None and with_names(m).names is None

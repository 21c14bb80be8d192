"""The tabular example (`make demo-tabular`): a scikit-learn MLP on breast cancer, explained from its
named features, run end to end by the command a user types."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
from conftest import require_tool
from sklearn.datasets import load_breast_cancer

from mofn2logic.cli import main
from mofn2logic.exporters import load_program
from mofn2logic.exporters.prolog import quote_atom
from mofn2logic.ir.program import RuleBlock
from mofn2logic.tabular_demo import build_inputs, run_tabular


def test_the_tabular_example_runs_with_engines_agreeing_and_speaks_in_names(capfd, tmp_path):
    require_tool("swipl")
    out = tmp_path / "demo-tabular-out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["demo", "--tabular", "-o", str(out), ])
    printed, err = capfd.readouterr()
    assert code == 0, err
    assert re.findall(r"program verified: .* \((agree|DISAGREE)\)", printed) == ["agree", "agree"], printed
    bc = load_breast_cancer()
    features = [n.replace(" ", "_") for n in bc.feature_names]
    classes = [str(c) for c in bc.target_names]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # the ONNX model reads the raw features: onnxruntime's held-out accuracy is scikit-learn's
    said = float(re.search(r"the MLP's held-out accuracy: ([0-9.]+)", printed).group(1))
    assert abs(summary["network_accuracy_held_out"] - said) < 1e-4
    first = summary["cuts"][0]
    program = load_program(out / first["program"])
    for block, units in program.names:
        allowed = features if block == "" else classes if block == program.output.name else None
        assert allowed is not None and {n for _, n in units} <= set(allowed)
    assert dict(program.names)[program.output.name] == tuple(enumerate(classes))
    tested = [features[i] for i, _ in program.input.tests]
    assert tested and dict(dict(program.names)[""]) == {i: features[i] for i, _ in program.input.tests}
    pl = (out / "replica.pl").read_text(encoding="utf-8")
    assert load_program(out / "replica.pl") == program  # the Prolog file reads back, names and all
    for name in tested:
        assert f"{quote_atom(name)} >= " in pl
    assert re.search(r"^% '(malignant|benign)' :- at_least\(", pl, re.M)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert all(name in html for name in tested) and "benign" in html
    assert "== the rules from the inputs" in printed and tested[0] in printed
    tree = re.search(rf"== cut {re.escape(first['cut'])}: program fidelity ([0-9.]+) with (\d+) literals; "
                     r"a decision tree of (\d+) tests: ([0-9.]+)", printed)
    assert tree and abs(float(tree.group(1)) - first["fidelity"]) < 1e-4 and int(tree.group(2)) == first["literals"]
    header = (out / "inputs" / "breast_cancer.csv").read_text(encoding="utf-8").split("\n", 1)[0]
    assert header.split(",") == features


def test_the_tabular_inputs_are_made_the_same_every_time(tmp_path):
    a, b = build_inputs(tmp_path / "a", max_iter=50), build_inputs(tmp_path / "b", max_iter=50)
    for name in ("model.onnx", "breast_cancer.csv", "labels.npy", "classes.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    np.testing.assert_array_equal(a.fit, b.fit)
    assert 0.5 < a.fit.mean() < 1


def test_at_beta_0_the_two_class_head_gives_both_classes_a_rule(tmp_path):
    """The one-sigmoid head read as a two-unit softmax: at beta 0 each class's rule reads the hidden units
    (neither class is left with no literals), so the programs are as faithful held out as the network's
    own rules allow, and the engines agree."""
    require_tool("swipl")

    summary, _ = run_tabular(tmp_path / "out", beta=0.0)
    assert summary.beta == 0.0
    for cut in summary.cuts:
        assert cut.report.engines_agree, cut.cut
        assert cut.fidelity >= 0.9, (cut.cut, cut.fidelity)
        program = load_program(tmp_path / "out" / cut.program)
        output = program.output
        assert isinstance(output, RuleBlock) and [r.unit for r in output.rules] == [0, 1]
        assert all(r.n > 0 for r in output.rules), output.rules  # no class is left with a constant rule

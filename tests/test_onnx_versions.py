"""Versions that disagree: a model newer than the installed onnxruntime runs is converted down
(opset) or stamped down (IR version) when nothing in it needs the newer version, with a warning;
otherwise one line names the model's and the installation's versions. The models the suite
builds pin their IR version and opset, so it means the same with any onnx/onnxruntime pair."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx_models as om
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from mofn2logic.cli import main
from mofn2logic.inputs import load_dataset, load_model
from mofn2logic.onnx import load
from mofn2logic.onnx.harvest import harvest


def cli(capfd, *argv):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err, caught


@pytest.fixture
def old_runtime(monkeypatch):
    """onnxruntime as if it ran IR version 8 and opset 17 at most (the probe is replaced, the
    session that runs the model afterwards is the real one)."""
    monkeypatch.setattr(load, "KNOWN_RUNNABLE", (6, 13))
    monkeypatch.setattr(load, "runtime_limits", lambda: (8, 17))


def test_a_too_new_ir_version_with_only_old_ops_loads_with_a_warning(old_runtime, tmp_path, capfd):
    path = om.write_raw(om.mlp(ir_version=10, opset=17), tmp_path / "ir10.onnx")
    with pytest.warns(UserWarning, match=r"has IR version 10, newer than onnxruntime runs; read as IR version 8 "
                                         r"\(the model uses nothing newer\): onnxruntime \S+ runs up to IR version 8"):
        m = load_model(path)
    assert m.proto.ir_version == 8 and onnx.load(str(path)).ir_version == 10  # the file is left as it was
    acts = harvest(m.network, m.proto, load_dataset(om.sample_input(m.proto, 12), m).x)
    assert acts["y"].shape == (12, 3)
    code, out, err, _ = cli(capfd, "inspect", path)
    assert code == 0 and err.count("\n") == 1 and "warning: " in err, err


def test_a_too_new_opset_with_old_ops_is_converted_down(old_runtime, tmp_path):
    path = om.write_raw(om.mlp(ir_version=8, opset=21), tmp_path / "opset21.onnx")
    with pytest.warns(UserWarning, match=r"uses opset 21, newer than onnxruntime runs; converted to opset 17 "
                                         r"\(onnx.version_converter\)"):
        m = load_model(path)
    assert load.default_opset(m.proto) == 17
    x = om.sample_input(m.proto, 8)
    ref = ReferenceEvaluator(om.mlp(ir_version=8, opset=21)).run(None, {"x": x})[0]
    np.testing.assert_allclose(harvest(m.network, m.proto, x)["y"], ref, rtol=1e-5, atol=1e-6)


def test_an_op_without_an_older_form_is_one_line_naming_both_versions(old_runtime, tmp_path, capfd):
    nodes, inits = om.mlp_parts()
    nodes[1] = helper.make_node("Gelu", ["h"], ["a"], name="gelu")  # Gelu came with opset 20
    path = om.write_raw(om.raw_model(nodes, inits, opset=20), tmp_path / "gelu.onnx")
    code, out, err, _ = cli(capfd, "inspect", path)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "uses opset 20 of the default ONNX domain, newer than this installation supports (onnxruntime" in err
    assert "runs up to IR version 8 and opset 17" in err and "cannot be converted to opset 17" in err


def test_a_truly_newer_ir_version_is_one_line(old_runtime, tmp_path, capfd):
    path = om.write_raw(om.raw_model(*om.mlp_parts(), ir_version=onnx.IR_VERSION + 1), tmp_path / "future.onnx")
    code, _, err, _ = cli(capfd, "inspect", path)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"has IR version {onnx.IR_VERSION + 1}, newer than this installation supports: onnxruntime" in err


def test_the_models_the_suite_builds_pin_their_versions(tmp_path):
    """Every builder of tests/onnx_models.py stamps IR version 8 and opset 17 (what onnxruntime
    1.17, the oldest of the pins, runs): no test depends on the installed onnx's defaults."""
    assert (om.IR_VERSION, om.OPSET, om.TORCH_OPSET) == (8, 17, 17)
    built = [om.tf2onnx_cnn(), om.cntk_cnn(), om.gemm_zoo(), om.conv_bn_gap(), om.mlp(), om.raw_model(*om.mlp_parts())]
    built += [onnx.load(str(om.torch_cnn(tmp_path / f"cnn_{d}.onnx", dynamo=d))) for d in (False, True)]
    for model in built:
        assert model.ir_version == 8 and load.default_opset(model) == 17, model.graph.name
    assert sys.modules["onnx_models"].__file__ == str(Path(om.__file__))

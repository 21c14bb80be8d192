"""The command line: tables, outputs, and one-line errors with exit status 2 and no partial files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx_models
import pytest

from mofn2logic.cli import main


def run_cli(capsys, *argv):
    """Exit status, stdout, stderr; the parser's errors exit through SystemExit(2) as argparse's do."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_json(capsys, default_model):
    code, out, _ = run_cli(capsys, "inspect", default_model, "--json")
    assert code == 0
    layers = json.loads(out)["layers"]
    assert [(la["name"], la["kind"], la["units"], la["fan_in"], la["activation"], la["input"], la["output"])
            for la in layers] == [
        ("node_conv2d", "conv", 8, 9, "relu", "image", "relu"),
        ("node_conv2d_1", "conv", 16, 72, "relu", "relu", "relu_1"),
        ("node_linear", "dense", 32, 256, "relu", "view", "relu_2"),
        ("node_linear_1", "dense", 10, 32, "softmax", "relu_2", "probabilities"),
    ]


def test_inspect_table(capsys, default_model):
    code, out, _ = run_cli(capsys, "inspect", default_model)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["#", "name", "kind", "input", "shape", "units", "fan-in", "activation", "input",
                                "->", "output"]
    assert lines[4].split() == ["2", "node_linear", "dense", "(256)", "32", "256", "relu", "view", "->", "relu_2"]


@pytest.mark.parametrize("kind", ["tf2onnx", "cntk", "torch_cnn_legacy", "torch_mlp_dynamo", "gemm64"])
def test_inspect_reads_every_exporter(capsys, model_zoo, kind):
    code, out, _ = run_cli(capsys, "inspect", model_zoo[kind], "--json")
    assert code == 0 and len(json.loads(out)["layers"]) >= 2


def test_harvest_writes_npz_with_layer_table(capsys, tmp_path, default_model, digits):
    np.save(tmp_path / "x.npy", digits["images"][:50])
    out_file = tmp_path / "acts.npz"
    code, out, _ = run_cli(capsys, "harvest", default_model, "--data", tmp_path / "x.npy", "-o", out_file)
    assert code == 0 and "harvested 50 samples, 10 tensors" in out
    with np.load(out_file) as z:
        meta = json.loads(str(z["__layers__"]))
        assert [la["name"] for la in meta["layers"]][0] == "node_conv2d"
        assert z["probabilities"].shape == (50, 10) and z["relu_1"].shape == (50, 16, 8, 8)


def test_harvest_is_deterministic(capsys, tmp_path, default_model, digits):
    np.save(tmp_path / "x.npy", digits["images"][:40])
    for name in ("a.npz", "b.npz"):
        assert run_cli(capsys, "harvest", default_model, "--data", tmp_path / "x.npy", "-o", tmp_path / name)[0] == 0
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def _bad_inputs(tmp_path, default_model, digits):
    good = tmp_path / "good.npy"
    np.save(good, digits["images"][:5])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(1).bytes(2000))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(default_model.read_bytes()[:3000])
    unsupported = onnx_models.save(onnx_models.unsupported_op(), tmp_path / "sin.onnx")
    nolayer = onnx_models.save(onnx_models.no_layer(), tmp_path / "nolayer.onnx")
    outside = onnx_models.save_external_outside(onnx_models.conv_bn_gap(), tmp_path / "inner")
    arrays = {
        "shape.npy": np.zeros((3, 7)), "dtype.npy": np.array([["x"] * 64]), "empty.npy": np.zeros((0, 64)),
        "nan.npy": np.full((2, 64), np.nan), "inf.npy": np.full((2, 64), np.inf),
    }
    for name, a in arrays.items():
        np.save(tmp_path / name, a)
    return [
        ("missing model", [tmp_path / "none.onnx", good], r"model file .* does not exist"),
        ("random bytes", [junk, good], r"is not (an|a valid) ONNX model"),
        ("truncated", [truncated, good], r"is not (an|a valid) ONNX model"),
        ("unsupported op", [unsupported, good], r"'weird_sin' \(Sin\)"),
        ("no layer", [nolayer, good], r"no dense or conv layer"),
        ("external outside", [outside, good], r"outside the model's folder"),
        ("missing data", [default_model, tmp_path / "none.npy"], r"data file .* does not exist"),
        ("wrong shape", [default_model, tmp_path / "shape.npy"],
         r"samples of shape \(7,\); the model expects \(1, 8, 8\)"),
        ("wrong dtype", [default_model, tmp_path / "dtype.npy"], r"dtype <U1; expected numbers"),
        ("empty", [default_model, tmp_path / "empty.npy"], r"is empty"),
        ("nan", [default_model, tmp_path / "nan.npy"], r"non-finite values \(first: NaN"),
        ("inf", [default_model, tmp_path / "inf.npy"], r"non-finite values \(first: Inf"),
    ]


def test_bad_input_one_line_exit_2_no_partial_file(capsys, tmp_path, default_model, digits):
    import re

    for label, (model, data), pattern in _bad_inputs(tmp_path, default_model, digits):
        out_file = tmp_path / f"out-{label.replace(' ', '_')}.npz"
        code, _, err = run_cli(capsys, "harvest", model, "--data", data, "-o", out_file)
        assert code == 2, label
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (label, err)
        assert re.search(pattern, err), (label, err)
        assert not out_file.exists(), label
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".out-*"))


def test_console_script_errors_without_traceback(tmp_path):
    """The real process: exit status 2, one line on stderr."""
    out_dir = tmp_path / "missing-folder" / "acts.npz"
    proc = subprocess.run([sys.executable, "-m", "mofn2logic", "inspect", str(tmp_path / "nope.onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "mofn2logic", "harvest", "x.onnx", "--data", "x.npy", "-o",
                           str(out_dir)], capture_output=True, text=True)
    assert proc.returncode == 2 and "folder" in proc.stderr and "does not exist" in proc.stderr


def test_one_version(capsys):
    """`mofn2logic.__version__` is the one version source; pyproject.toml must say the same."""
    from pathlib import Path

    import tomllib

    import mofn2logic

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == mofn2logic.__version__
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"mofn2logic {mofn2logic.__version__}"


def test_choices_and_defaults_come_from_the_library(capsys):
    from mofn2logic.engines import ENGINE_NAMES
    from mofn2logic.exporters import formats
    from mofn2logic.search import ORDERS

    parser_help = {}
    for cmd in ("export", "verify", "run"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        parser_help[cmd] = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(formats()) + "}" in parser_help["export"]
    assert "{" + ",".join((*ENGINE_NAMES, "all")) + "}" in parser_help["verify"]
    assert "{" + ",".join(ORDERS) + "}" in parser_help["run"]
    assert "--beta BETA betas of the trade-off curves" in parser_help["run"]
    assert "(default 0.2)" in parser_help["run"] and "(default best)" in parser_help["run"]


def test_bad_labels_one_line(capsys, tmp_path, default_model, digits):
    np.save(tmp_path / "x.npy", digits["images"][:20])
    np.save(tmp_path / "y.npy", np.where(np.arange(20) == 3, 0.5, 1.0))
    code, _, err = run_cli(capsys, "run", default_model, "--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                           "-o", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1
    assert "labels '" in err and "contain 1 non-integer values (first: 0.5 at sample 3)" in err
    code, _, err = run_cli(capsys, "run", default_model, "--data", tmp_path / "x.npy", "--holdout", "1", "-o",
                           tmp_path / "out")
    assert code == 2 and "error: argument --holdout: expected a share in [0, 1), got '1'" in err
    assert not (tmp_path / "out").exists()


def test_run_fit_on_network_fits_the_replicas_one_way(capsys, tmp_path, default_model, digits):
    """`run --fit-on network`: no extraction per cut, the cut table shows only the network-fitted replicas;
    the default fits them on the program's atoms too and prints both."""
    np.save(tmp_path / "x.npy", digits["images"][:300])
    args = ["run", default_model, "--data", tmp_path / "x.npy", "--no-paper", "--order", "weight", "--beta", "0,1",
            "--device", "cpu"]
    code, out, _ = run_cli(capsys, *args, "--fit-on", "network", "-o", tmp_path / "net")
    assert code == 0
    summary = json.loads((tmp_path / "net" / "summary.json").read_text())
    assert summary["fit_on"] == "network" and "extract_program" not in summary["timings"]
    assert all(c["fitted"]["program"] is None for c in summary["cuts"])
    assert not list((tmp_path / "net").glob("rules_program_*.json"))
    assert "on the program: --" in out and "== size/fidelity front" in out and "tree tests" in out
    code, out, _ = run_cli(capsys, *args, "-o", tmp_path / "both")
    assert code == 0
    summary = json.loads((tmp_path / "both" / "summary.json").read_text())
    assert summary["fit_on"] == "program"
    assert [p.name for p in sorted((tmp_path / "both").glob("rules_program_*.json"))] == [
        "rules_program_node_conv2d.json", "rules_program_node_conv2d_1.json", "rules_program_node_linear.json"]
    for c in summary["cuts"]:
        assert f"{c['cut']:<20} fidelity {c['fidelity']:.4f}" in out
        assert f"on the network: {c['fitted']['network']['fidelity']:.4f}" in out
        assert f"on the program: {c['fitted']['program']['fidelity']:.4f}" in out
    code, _, err = run_cli(capsys, *args, "--fit-on", "atoms", "-o", tmp_path / "bad")
    assert code == 2 and "argument --fit-on: invalid choice: 'atoms'" in err and not (tmp_path / "bad").exists()

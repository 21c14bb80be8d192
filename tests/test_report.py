"""`run` end to end on the embedded model (the pipeline: one model load, row views of the
activations, typed summary), and its report opened in a real headless Chromium."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import require_tool

import mofn2logic
from mofn2logic.cli import main
from mofn2logic.report import ReportTexts, write_report
from mofn2logic.run_summary import RunSummary

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, default_model, digits):
    require_tool("swipl")
    require_tool("dot")
    d = tmp_path_factory.mktemp("run")
    np.save(d / "x.npy", digits["images"][:500])
    np.save(d / "y.npy", digits["labels"][:500])
    code = main(["run", str(default_model), "--data", str(d / "x.npy"), "--labels", str(d / "y.npy"),
                 "-o", str(d / "out"), "--device", "cpu"])
    assert code == 0
    return d / "out"


def test_run_writes_everything(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"report.html", "report.md", "rules.json", "rules_paper.json", "summary.json", "softmax.pl", "softmax.svg",
            "replica.pl", "softmax_sympy.py"} <= names
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_held_out"] == 100 and summary["n_fit"] == 400
    assert [c["cut"] for c in summary["cuts"]] == ["node_conv2d", "node_conv2d_1", "node_linear", "node_linear_1"]
    assert all(chk["engines_agree"] for chk in summary["checks"].values())
    assert set(summary["checks"]["softmax"]["engines"]) == {"python", "sympy", "prolog"}
    md = (run_dir / "report.md").read_text()
    assert "## Cut table" in md and "| node_linear_1 |" in md


@pytest.mark.browser
def test_report_renders_in_chromium_without_console_errors(run_dir):
    require_tool("chromium")
    from browser import render_page

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    result = render_page(run_dir / "report.html", shot, width=1280)
    assert result["console_errors"] == [] and result["page_errors"] == []
    assert result["title"] == "mofn2logic report: default_cnn.onnx"
    assert result["svgs"] == 11  # 4 layers x 2 figures, the front, the rule graph, the pixel maps
    assert result["graph_overflow"] and max(result["graph_overflow"]) <= 0  # no figure box scrolls sideways
    assert result["height"] > 2000
    assert shot.stat().st_size > 50_000


def test_report_is_self_contained(run_dir):
    page = (run_dir / "report.html").read_text()
    # nothing to fetch: no scripts, stylesheets, images or links to other resources (XML namespaces are names)
    for needle in ("<script", "<link", " src=", 'href="http', "url(http", "@import"):
        assert needle not in page, needle
    assert page.count("<svg") >= 9


def test_run_is_deterministic(run_dir, default_model, tmp_path):
    x = run_dir.parent / "x.npy"
    assert main(["run", str(default_model), "--data", str(x), "-o", str(tmp_path / "again"), "--device", "cpu",
                 "--no-paper"]) == 0
    for name in ("rules.json", "softmax.pl", "program_node_linear_1.mofn", "softmax.svg", "softmax_sympy.py",
                 "rules_program_node_conv2d.json", "program_node_conv2d.mofn", "figures/front.svg"):
        assert (tmp_path / "again" / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_summary_has_each_cut_fitted_both_ways(run_dir, default_model, digits):
    """Per cut, the replica fitted on the network's activations (rules.json) and on the program's own atoms
    (rules_program_<cut>.json, the cut's program file): figures that a fresh verify of each reproduces."""
    from mofn2logic.files import file_stem
    from mofn2logic.pipeline import split

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fit_on"] == "program"
    held = ~split(500, holdout=0.2, seed=0)
    x = digits["images"][:500][held]
    last = summary["cuts"][-1]["cut"]
    for c in summary["cuts"]:
        on_network, on_program = c["fitted"]["network"], c["fitted"]["program"]
        network_program = mofn2logic.compile(run_dir / "rules.json", cut=c["cut"], beta=0)
        assert on_network["fidelity"] == mofn2logic.verify(network_program, default_model, x).fidelity
        assert on_network["literals"] == sum(r.n for b in network_program.rule_blocks() for r in b.rules)
        assert on_program["fidelity"] == c["fidelity"] == mofn2logic.verify(run_dir / c["program"], default_model,
                                                                              x).fidelity
        assert on_program["literals"] == c["literals"]
        rules_file = run_dir / f"rules_program_{file_stem(c['cut'])}.json"
        if c["cut"] == last:  # the output layer alone is fitted the same either way
            assert on_program == on_network and not rules_file.exists()
        else:
            program = mofn2logic.compile(rules_file, cut=c["cut"], beta=0)
            assert mofn2logic.verify(program, default_model, x).fidelity == on_program["fidelity"]
    assert summary["checks"]["replica"]["fidelity"] == summary["cuts"][0]["fitted"]["program"]["fidelity"]


def test_the_report_shows_the_front_beside_the_tree(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [f["cut"] for f in summary["front"]] == [c["cut"] for c in summary["cuts"]]
    from mofn2logic.report.front import TREE_GRID

    for f, c in zip(summary["front"], summary["cuts"]):
        assert {p["tests"] for p in f["programs"]} | set(TREE_GRID) == {t["budget"] for t in f["trees"]}
        if c is not summary["cuts"][-1]:  # decision lists only at the output layer (checked below)
            assert all(p["series"] != "decision list" for p in f["programs"])
        own = [p for p in f["programs"] if p.get("beta") == 0]  # the cut table's programs at the program beta
        assert {(p["series"], p["tests"], p["fidelity"]) for p in own} == (
            {("program", c["fitted"]["network"]["literals"], c["fitted"]["network"]["fidelity"])}
            | ({("program fitted on its atoms", c["literals"], c["fidelity"])} if c["cut"] != summary["cuts"][-1]["cut"]
               else set()))
    page = (run_dir / "report.html").read_text()
    figure = (run_dir / "figures" / "front.svg").read_text()
    assert "Size and fidelity: the program beside a decision tree" in page and figure in page
    assert "node_linear_1: decision tree" in figure and "node_conv2d: program fitted on its atoms" in figure
    assert "node_linear_1: program with a decision list" in figure
    assert [p["budget"] for p in summary["front"][-1]["programs"] if p["series"] == "decision list"] == [10, 30, 100]
    md = (run_dir / "report.md").read_text()
    assert "![front](figures/front.svg)" in md and "| node_linear_1 | program, β=0 |" in md


SUMMARY_KEYS = ["model", "n_samples", "n_fit", "n_held_out", "network_accuracy_held_out", "beta", "tradeoff", "fit_on",
                "cuts", "front", "checks", "timings"]


def test_summary_json_keeps_its_keys(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary) == SUMMARY_KEYS
    assert list(summary["cuts"][0]) == ["cut", "program", "fidelity", "accuracy", "rules", "literals", "input_tests",
                                        "fit_on", "fitted", "layers"]
    assert list(summary["front"][0]) == ["cut", "inputs", "programs", "trees"]
    assert list(summary["cuts"][0]["layers"][0]) == ["name", "units", "agreement", "min_agreement"]
    assert list(summary["checks"]) == ["softmax", "replica"]
    assert list(summary["checks"]["softmax"]) == ["cut", "engines", "engines_agree", "fidelity", "accuracy"]
    assert list(summary["checks"]["softmax"]["engines"]["python"]) == ["fidelity", "accuracy", "seconds"]
    assert list(summary["timings"]) == ["harvest", "extract_chain", "extract_program", "extract_paper",
                                        "compile_verify_cuts", "front", "exports_engines", "total"]
    assert summary["network_accuracy_held_out"] is not None and summary["cuts"][-1]["accuracy"] is not None


def _small_run(tmp_path, default_model, digits) -> list[str]:
    np.save(tmp_path / "x.npy", digits["images"][:300])
    return ["run", str(default_model), "--data", str(tmp_path / "x.npy"), "--no-paper", "--order", "weight",
            "--beta", "0", "--device", "cpu"]


def test_run_loads_the_model_once(tmp_path, default_model, digits, monkeypatch):
    loads = []
    real = onnx.load
    monkeypatch.setattr(onnx, "load", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    monkeypatch.setattr(onnx, "load_model", onnx.load)
    assert main([*_small_run(tmp_path, default_model, digits), "-o", str(tmp_path / "out")]) == 0
    assert loads == [str(default_model)]


def test_run_gathers_only_the_rows_and_tensors_it_reads(tmp_path, default_model, digits, monkeypatch):
    """The fitting and held-out samples are row views of one store; the predicted class is computed once."""
    from mofn2logic.onnx.harvest import Activations
    from mofn2logic.search.network import predicted_class

    views, preds = [], []
    real_rows, real_pred = Activations.rows, predicted_class

    def rows(self, index):
        views.append(real_rows(self, index))
        return views[-1]

    monkeypatch.setattr(Activations, "rows", rows)
    monkeypatch.setattr("mofn2logic.pipeline.predicted_class", lambda *a: preds.append(1) or real_pred(*a))
    summary = mofn2logic.run(default_model, digits["images"][:300], tmp_path / "out", holdout=0.25, order="weight",
                             betas=[0], device="cpu", paper_mode=False, engines=["python"])
    held, fit = views
    assert (held.n_samples, fit.n_samples) == (75, 225) and np.intersect1d(held.index, fit.index).size == 0
    assert preds == [1]
    net = mofn2logic.load_model(default_model).network
    unused = {la.preact for la in net.layers if la.preact != la.output}
    assert unused and not unused & set(held.gathered) and not unused & set(fit.gathered)
    assert isinstance(summary, RunSummary) and summary.n_fit == 225 and summary.n_held_out == 75
    assert [c.cut for c in summary.cuts] == [la.name for la in net.layers]
    assert summary.check("softmax").report.fidelity == summary.cuts[-1].fidelity


def test_the_report_shows_what_the_pipeline_hands_it(tmp_path, run_dir):
    """write_report reads no file back: in an empty folder it shows the texts it is given."""
    from mofn2logic.search.rules_file import read_rules

    summary = mofn2logic.run(mofn2logic.default_model_path(), run_dir.parent / "x.npy", tmp_path / "run",
                             order="weight", betas=[0], device="cpu", paper_mode=False, engines=["python"])
    prolog = "".join(f"line_{i}.\n" for i in range(100))
    empty = tmp_path / "empty"
    empty.mkdir()
    write_report(empty, summary, read_rules(tmp_path / "run" / "rules.json"), None,
                 ReportTexts(mofn="MOFN <TEXT>", prolog=prolog, svg=None))
    page = (empty / "report.html").read_text()
    assert "MOFN &lt;TEXT&gt;" in page and "line_59." in page and "line_60." not in page
    assert "In Prolog (the first 60 lines of softmax.pl)" in page
    assert "(Graphviz not installed: no graph)" in page
    assert {p.name for p in empty.iterdir()} == {"figures", "report.html", "report.md"}


def test_the_report_shows_cards_and_pixel_maps(run_dir):
    page = (run_dir / "report.html").read_text()
    assert page.count("<div class='card'>") == 10  # one per class of the digits model
    assert re.search(r"class 3 if at least \d+ of these \d+ hold</div><div class='stats'>agrees with the network on "
                     r"\d+\.\d%; fires on \d+\.\d%</div>", page)
    assert "The first layer's rules on the input grid" in page and (run_dir / "figures" / "pixel_maps.svg").is_file()
    md = (run_dir / "report.md").read_text()
    assert "## Rule cards of the softmax layer" in md and "**class 0 if at least" in md


def test_the_report_shows_the_softmax_prolog(run_dir):
    page = (run_dir / "report.html").read_text()
    head = (run_dir / "softmax.pl").read_text().splitlines()[:60]
    assert html.escape("\n".join(head)) in page

"""`run` end to end on the embedded model, and its report opened in a real headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool
from mofn2logic.cli import main

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


def test_report_renders_in_chromium_without_console_errors(run_dir):
    require_tool("chromium")
    from browser import render_page

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    result = render_page(run_dir / "report.html", shot)
    assert result["console_errors"] == [] and result["page_errors"] == []
    assert result["title"] == "mofn2logic report: default_cnn.onnx"
    assert result["svgs"] >= 9  # 4 layers x 2 figures + the rule graph
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
    for name in ("rules.json", "softmax.pl", "program_node_linear_1.mofn", "softmax.svg", "softmax_sympy.py"):
        assert (tmp_path / "again" / name).read_bytes() == (run_dir / name).read_bytes(), name

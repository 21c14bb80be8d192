"""compile / export / verify from the command line, and their one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import require_tool

from mofn2logic.cli import main
from mofn2logic.search.rules_file import write_rules


@pytest.fixture()
def rules_file(tmp_path, default_rules):
    path = tmp_path / "rules.json"
    write_rules(default_rules, path)
    return path


@pytest.fixture()
def data_file(tmp_path, digits):
    path = tmp_path / "x.npy"
    np.save(path, digits["images"][:200])
    np.save(tmp_path / "y.npy", digits["labels"][:200])
    return path


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_compile_export_verify(capsys, tmp_path, rules_file, data_file, default_model):
    require_tool("swipl")
    require_tool("dot")
    prog = tmp_path / "soft.mofn"
    code, out, _ = cli(capsys, "compile", rules_file, "--cut", "node_linear_1", "--beta", "0.2", "-o", prog)
    assert code == 0 and "program from 'node_linear_1'" in out
    for fmt, name in (("prolog", "p.pl"), ("sympy", "p.py"), ("dot", "p.dot"), ("svg", "p.svg")):
        code, _, err = cli(capsys, "export", prog, "--to", fmt, "-o", tmp_path / name)
        assert code == 0, err
    assert "<svg" in (tmp_path / "p.svg").read_text()
    code, out, _ = cli(capsys, "verify", prog, default_model, "--data", data_file, "--labels", tmp_path / "y.npy",
                       "--engine", "all", "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) >= {"n_samples", "fidelity", "accuracy", "engines", "engines_agree", "layers"}
    assert report["n_samples"] == 200 and set(report["engines"]) == {"python", "sympy", "prolog"}
    assert report["engines_agree"] is True and 0.8 < report["fidelity"] <= 1.0
    assert report["layers"][0]["name"] == "node_linear_1"
    # the exported Prolog verifies too (read back through the fact grammar)
    code, out, _ = cli(capsys, "verify", tmp_path / "p.pl", default_model, "--data", data_file, "--engine", "prolog")
    assert code == 0 and f"fidelity to the network {report['fidelity']:.4f}" in out


def _one_line_error(capsys, argv, pattern, output=None):
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    if output is not None:
        assert not output.exists()


def test_bad_input(capsys, tmp_path, rules_file, data_file, default_model):
    prog = tmp_path / "p.mofn"
    cli(capsys, "compile", rules_file, "--cut", "node_linear_1", "-o", prog)
    text = prog.read_text()
    bad = tmp_path / "bad.mofn"
    bad.write_text(text.replace(" :- ", " :- oops ", 1))
    out = tmp_path / "out.pl"
    _one_line_error(capsys, ["export", bad, "--to", "prolog", "-o", out], r"bad\.mofn:\d+:\d+: syntax error", out)
    undefined = tmp_path / "undef.mofn"
    undefined.write_text(re.sub(r"of \[(~?)\d+", r"of [\g<1>999", text, count=1))
    _one_line_error(capsys, ["export", undefined, "--to", "prolog", "-o", out],
                    r"uses atom 999 of 'input', which is not defined", out)
    cycle = tmp_path / "cycle.mofn"
    cycle.write_text(text.replace("from input", "from 'node_linear_1'"))
    _one_line_error(capsys, ["export", cycle, "--to", "dot", "-o", out], r"cycle", out)
    _one_line_error(capsys, ["compile", rules_file, "--cut", "fc9", "-o", tmp_path / "x.mofn"],
                    r"cut layer 'fc9' does not exist", tmp_path / "x.mofn")
    _one_line_error(capsys, ["compile", rules_file, "-o", tmp_path / "missing" / "x.mofn"],
                    r"folder .*missing' does not exist")
    _one_line_error(capsys, ["export", prog, "--to", "prolog", "-o", tmp_path / "nope" / "p.pl"], r"does not exist")
    _one_line_error(capsys, ["export", tmp_path / "none.mofn", "--to", "prolog", "-o", out],
                    r"program file .* does not exist")
    assert not list(tmp_path.glob(".*.part"))


def test_missing_programs_say_how_to_install(tmp_path, rules_file, data_file, default_model):
    prog = tmp_path / "p.mofn"
    main(["compile", str(rules_file), "--cut", "node_linear_1", "-o", str(prog)])
    env = {**os.environ, "PATH": str(tmp_path / "empty-path")}
    for argv, pattern in [
        (["verify", str(prog), str(default_model), "--data", str(data_file), "--engine", "prolog"],
         r"SWI-Prolog \('swipl'\) is not installed; install SWI-Prolog with: sudo apt-get install swi-prolog-nox"),
        (["export", str(prog), "--to", "svg", "-o", str(tmp_path / "g.svg")],
         r"Graphviz 'dot' is not installed; install it with: sudo apt-get install graphviz"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "mofn2logic", *argv], capture_output=True, text=True, env=env)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert re.search(pattern, proc.stderr), proc.stderr
    assert not (tmp_path / "g.svg").exists()


def test_compile_writes_the_format_of_the_suffix(capsys, tmp_path, rules_file):
    from mofn2logic.exporters import load_program

    for name in ("p.json", "p.mofn", "p.txt"):
        code, _, err = cli(capsys, "compile", rules_file, "--cut", "node_linear", "-o", tmp_path / name)
        assert code == 0, err
    assert load_program(tmp_path / "p.json") == load_program(tmp_path / "p.mofn")
    assert (tmp_path / "p.txt").read_text() == (tmp_path / "p.mofn").read_text()  # no format's suffix: .mofn


def test_export_options(capsys, tmp_path, rules_file):
    prog = tmp_path / "p.mofn"
    cli(capsys, "compile", rules_file, "--cut", "node_linear", "-o", prog)
    code, _, err = cli(capsys, "export", prog, "--to", "dot", "--max-units", "2", "--option", "rankdir=TB",
                       "-o", tmp_path / "g.dot")
    assert code == 0, err
    text = (tmp_path / "g.dot").read_text()
    assert "rankdir=TB," in text and re.search(r"\.\.\. \d+ more rules of node_linear", text)
    _one_line_error(capsys, ["export", prog, "--to", "prolog", "--max-units", "2", "-o", tmp_path / "p.pl"],
                    r"the prolog format has no option 'max_units'", tmp_path / "p.pl")
    _one_line_error(capsys, ["export", prog, "--to", "dot", "--option", "max_units=many", "-o", tmp_path / "h.dot"],
                    r"option max_units of the dot format takes an int \(default 24\); got 'many'", tmp_path / "h.dot")
    _one_line_error(capsys, ["export", prog, "--to", "dot", "--option", "rankdir", "-o", tmp_path / "h.dot"],
                    r"option 'rankdir' is not NAME=VALUE", tmp_path / "h.dot")
    _one_line_error(capsys, ["export", tmp_path / "g.dot", "--to", "mofn", "-o", tmp_path / "q.mofn"],
                    r"is a dot file, which mofn2logic only writes", tmp_path / "q.mofn")


def test_show_prints_rule_cards(capsys, tmp_path):
    from test_exporters_goldens import dense_program

    from mofn2logic.exporters import write

    path = tmp_path / "d.mofn"
    write(dense_program(), path)
    code, out, _ = cli(capsys, "show", path, "--unit", "2")
    assert code == 0
    assert out == ("class 2 if at least 2 of these 2 hold\n"
                   "  + hidden[0] >= 0.125\n"
                   "  + hidden[1] >= 1.5\n")
    code, out, _ = cli(capsys, "show", path, "--block", "hidden")
    assert code == 0 and out.startswith("hidden unit 0 (>= 0.125) if at least 2 of these 3 hold\n")
    _one_line_error(capsys, ["show", path, "--unit", "1"], r"block 'Class Layer' has no rule for unit 1", None)
